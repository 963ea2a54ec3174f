package rabbitmq

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	rabbithole "github.com/michaelklishin/rabbit-hole/v3"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// FuzzFederationLinks feeds /api/federation-links answers, which rabbit-hole
// leaves untyped, through federationLinks: every link must come out once,
// in order, whatever types the values have.
func FuzzFederationLinks(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*/federation-links.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"type":"exchange","exchange":["x"],"vhost":1,"status":null,"error":{"a":1}}]`))
	f.Add([]byte(`[{"type":"queue","queue":"q","status":"running"},{"type":"queue","queue":"q","status":"error"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw rabbithole.FederationLinkMap
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		links := federationLinks(raw)
		if len(links) > len(raw) {
			t.Fatalf("%d links out of %d rows", len(links), len(raw))
		}
		type key struct{ vhost, upstream, typ, name string }
		seen := map[key]bool{}
		for i, l := range links {
			k := key{l.VHost, l.Upstream, l.Type, l.Name}
			if seen[k] {
				t.Fatalf("link %+v comes out twice", l)
			}
			seen[k] = true
			if i > 0 && sortKey(links[i-1]) > sortKey(l) {
				t.Fatalf("links %d and %d out of order: %+v, %+v", i-1, i, links[i-1], l)
			}
		}
	})
}

func sortKey(l topology.FederationLink) string {
	return l.VHost + "\x00" + l.Upstream + "\x00" + l.Type + "\x00" + l.Name
}
