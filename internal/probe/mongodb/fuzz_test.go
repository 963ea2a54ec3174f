package mongodb

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Every decoder gets arbitrary bytes: it may refuse them, never panic, and
// what it accepts must assemble into a consistent replica set.

func FuzzDecodeStatus(f *testing.F) {
	for _, name := range []string{"status-pss-primary.json", "status-psa-secondary-primary-down.json"} {
		f.Add([]byte(readExtJSON(f, name)))
	}
	conf, err := decodeConfig(readExtJSON(f, "config-psa.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		status, err := decodeStatus(bson.Raw(data))
		if err != nil {
			return
		}
		rs := replicaSet("rs", nil, "dc", status, conf, nil)
		if len(rs.Members) != len(status.Members) {
			t.Fatalf("%d members decoded, %d assembled", len(status.Members), len(rs.Members))
		}
		for _, m := range rs.Members {
			if m.HasLag && m.LagSeconds < 0 {
				t.Fatalf("negative lag %v for %s", m.LagSeconds, m.Name)
			}
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	for _, name := range []string{"config-psa.json", "config-pss.json"} {
		f.Add([]byte(readExtJSON(f, name)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		conf, err := decodeConfig(bson.Raw(data))
		if err != nil {
			return
		}
		for _, m := range conf.Config.Members {
			_, _ = m.votes(), m.priority()
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	for _, doc := range []bson.D{
		{{Key: "isWritablePrimary", Value: true}, {Key: "setName", Value: "rs0"}, {Key: "me", Value: "a:27017"}, {Key: "primary", Value: "a:27017"}},
		{{Key: "ismaster", Value: false}, {Key: "secondary", Value: true}, {Key: "setName", Value: "rs0"}},
	} {
		raw, err := bson.Marshal(doc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHello(bson.Raw(data))
		if err != nil {
			return
		}
		_ = h.primary()
	})
}
