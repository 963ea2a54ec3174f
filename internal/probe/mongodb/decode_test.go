package mongodb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// readExtJSON reads an Extended JSON file from testdata as BSON.
func readExtJSON(tb testing.TB, name string) bson.Raw {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON(data, false, &doc); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return doc
}

// The recorded documents have the shapes of MongoDB's manual: the decoder
// and the lag rules are tested on them, not only on what mongosim writes.
func TestRecordedDocuments(t *testing.T) {
	tests := []struct {
		status, config string
		sites          map[string]string
		term           int64
		primaries      int
		lagRef         string
		members        []string
	}{
		{
			status: "status-pss-primary.json", config: "config-pss.json",
			term: 3, primaries: 1, lagRef: LagFromPrimary,
			members: []string{
				"PRIMARY healthy ? votes=1 priority=1 site= lag=0",
				"SECONDARY healthy ? votes=1 priority=1 site= lag=10",
				// Hidden and without a vote.
				"SECONDARY healthy ? votes=0 priority=0 site= lag=0 hidden",
			},
		},
		{
			// Seen from the surviving secondary: the primary is gone, its
			// optime reads 1970. No lag for it, and no lag against it.
			status: "status-psa-secondary-primary-down.json", config: "config-psa.json",
			sites: map[string]string{"m3.example.net:27017": "witness"},
			term:  4, primaries: 0, lagRef: LagFromFreshest,
			members: []string{
				"(not reachable/healthy) unhealthy ? votes=1 priority=2 site=east lag=-",
				"SECONDARY healthy ? votes=1 priority=1 site=west lag=0",
				"ARBITER healthy ? votes=1 priority=0 site=witness lag=-",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			status, err := decodeStatus(readExtJSON(t, tt.status))
			if err != nil {
				t.Fatal(err)
			}
			conf, err := decodeConfig(readExtJSON(t, tt.config))
			if err != nil {
				t.Fatal(err)
			}
			rs := replicaSet("replset", tt.sites, "dc", status, conf, nil)
			if rs.Term != tt.term || rs.Primaries != tt.primaries || rs.LagReference != tt.lagRef {
				t.Errorf("term %d, primaries %d, lag reference %q; want %d, %d, %q", rs.Term, rs.Primaries, rs.LagReference, tt.term, tt.primaries, tt.lagRef)
			}
			var got []string
			for _, m := range rs.Members {
				got = append(got, summary(m))
			}
			if strings.Join(got, "\n") != strings.Join(tt.members, "\n") {
				t.Errorf("members:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.members, "\n"))
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		decode func(bson.Raw) error
		doc    bson.D
		want   string
	}{
		{"status without members", func(r bson.Raw) error { _, err := decodeStatus(r); return err },
			bson.D{{Key: "set", Value: "rs0"}, {Key: "ok", Value: 1.0}}, "no members"},
		{"status with a string health", func(r bson.Raw) error { _, err := decodeStatus(r); return err },
			bson.D{{Key: "members", Value: bson.A{bson.D{{Key: "health", Value: "up"}}}}}, "decoding replSetGetStatus"},
		{"config without members", func(r bson.Raw) error { _, err := decodeConfig(r); return err },
			bson.D{{Key: "config", Value: bson.D{{Key: "_id", Value: "rs0"}}}}, "no members"},
		{"hello with a numeric setName", func(r bson.Raw) error { _, err := decodeHello(r); return err },
			bson.D{{Key: "setName", Value: 3}}, "decoding hello"},
	}
	for _, tt := range tests {
		raw, err := bson.Marshal(tt.doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := tt.decode(raw); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// Members configured without explicit votes and priority take mongod's defaults.
func TestConfigDefaults(t *testing.T) {
	raw, err := bson.Marshal(bson.D{{Key: "config", Value: bson.D{{Key: "members", Value: bson.A{
		bson.D{{Key: "_id", Value: 0}, {Key: "host", Value: "a:27017"}},
		bson.D{{Key: "_id", Value: 1}, {Key: "host", Value: "b:27017"}, {Key: "arbiterOnly", Value: true}},
	}}}}})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := decodeConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	data, arb := conf.Config.Members[0], conf.Config.Members[1]
	if data.votes() != 1 || data.priority() != 1 || arb.votes() != 1 || arb.priority() != 0 {
		t.Errorf("defaults: data votes %d priority %g, arbiter votes %d priority %g; want 1 1 1 0",
			data.votes(), data.priority(), arb.votes(), arb.priority())
	}
}
