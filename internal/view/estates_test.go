package view

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// estates is a fixed set of estate sources.
type estates map[string]Source

func (e estates) Names() []string {
	var out []string
	for _, n := range []string{"emea", "hung", "lab"} { // sorted, as Estates gives them
		if _, ok := e[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func (e estates) Source(name string) Source { return e[name] }

// hungSource never finishes a round: its Scrape ends only with its
// context. rounds counts the rounds begun.
type hungSource struct{ rounds *atomic.Int32 }

func (hungSource) Latest() *topology.Observation { return nil }
func (h hungSource) Scrape(ctx context.Context) (*topology.Observation, error) {
	if h.rounds != nil {
		h.rounds.Add(1)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// manyEstates is any number of estates.
type manyEstates map[string]Source

func (m manyEstates) Names() []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (m manyEstates) Source(name string) Source { return m[name] }

// The index takes one page timeout for all its estates, not one each: with
// many estates hung, those whose turn comes after the timeout are not
// probed at all, and every one says it has no round.
func TestIndexOfHungEstatesCostsOneTimeout(t *testing.T) {
	const n = 3 * indexParallel
	var rounds atomic.Int32
	src := manyEstates{}
	for i := range n {
		src[fmt.Sprintf("e%02d", i)] = hungSource{&rounds}
	}
	code, body := serveWith(t, Options{Estates: src, Timeout: 100 * time.Millisecond}, "/api/v1/estates")
	if code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	if got := strings.Count(body, "no round available: context deadline exceeded"); got != n {
		t.Errorf("%d of %d hung estates say they have no round:\n%s", got, n, body)
	}
	if r := rounds.Load(); r >= n {
		t.Errorf("%d rounds begun for %d hung estates: each estate was given a timeout of its own", r, n)
	}
}

// observed is a round whose model judged the estate observed, declared
// expected.
func observed(observed, expected string, at time.Time) *fixedSource {
	return &fixedSource{latest: true, scrape: &topology.Observation{
		Config:   &config.Config{Architecture: expected},
		Snapshot: &topology.Snapshot{Time: at},
		Verdict:  &topology.Verdict{Architecture: topology.ArchitectureVerdict{Observed: observed, Expected: expected}},
	}}
}

// The index of estates shows each estate's observed and declared class and
// whether it is degraded (observed below declared), with its page and its
// probe; an estate whose round cannot finish shows why, within the page's
// timeout, and holds none of the others back.
func TestIndexOfEstates(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	src := estates{
		"emea": observed(config.ArchHA3, config.ArchHA6, at), // HA-6 declared, HA-3 left: degraded
		"lab":  observed(config.ArchHA0, config.ArchHA0, at),
		"hung": hungSource{},
	}
	opts := Options{Estates: src, Timeout: 200 * time.Millisecond, Now: func() time.Time { return at.Add(time.Second) }}
	code, body := serveWith(t, opts, "/api/v1/estates")
	if code != 200 {
		t.Fatalf("/api/v1/estates: HTTP %d\n%s", code, body)
	}
	var doc EstatesDocument
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	want := []EstateSummary{
		{Name: "emea", Observed: "HA-3", Expected: "HA-6", Degraded: true, AgeSeconds: 1, Topology: "topology?estate=emea", Probe: "probe?estate=emea"},
		{Name: "hung", Error: "no round available: context deadline exceeded", Topology: "topology?estate=hung", Probe: "probe?estate=hung"},
		{Name: "lab", Observed: "HA-0", Expected: "HA-0", AgeSeconds: 1, Topology: "topology?estate=lab", Probe: "probe?estate=lab"},
	}
	if len(doc.Estates) != len(want) {
		t.Fatalf("estates %+v, want %+v", doc.Estates, want)
	}
	for i := range want {
		if doc.Estates[i] != want[i] {
			t.Errorf("estate %d: %+v, want %+v", i, doc.Estates[i], want[i])
		}
	}

	code, page := serveWith(t, opts, "/topology")
	if code != 200 {
		t.Fatalf("/topology: HTTP %d", code)
	}
	for _, w := range []string{
		`<tr data-estate="emea" data-degraded="true">`, `<tr data-estate="lab">`, `href="probe?estate=lab"`,
		`href="topology?estate=emea"`, `id="degraded-count" class="bad">1 degraded`, "context deadline exceeded",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("the index lacks %s:\n%s", w, page)
		}
	}
}

// With estates, the topology page and its JSON name their estate; without
// one the JSON is refused (400), an unknown one is not found (404).
func TestTopologyPerEstate(t *testing.T) {
	src := estates{"emea": &fixedSource{scrape: ha6Scrape(), latest: true}}
	opts := Options{Estates: src, Now: justAfter(src["emea"])}
	for _, c := range []struct {
		path string
		code int
		says string
	}{
		{"/api/v1/topology", 400, "missing the estate parameter"},
		{"/api/v1/topology?estate=apac", 404, `unknown estate "apac"`},
		{"/topology?estate=apac", 404, `unknown estate "apac"`},
		{"/api/v1/topology?estate=emea", 200, `"estate": "emea"`},
		{"/topology?estate=emea", 200, `<span id="estate">emea</span>`},
		{"/topology?estate=emea", 200, `href="probe?estate=emea"`},
		{"/topology?estate=emea", 200, `href="api/v1/topology?estate=emea"`},
	} {
		code, body := serveWith(t, opts, c.path)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("GET %s: HTTP %d, want %d saying %s\n%.300s", c.path, code, c.code, c.says, body)
		}
	}
	// Single-estate mode has no index and ignores ?estate=.
	single := Options{Source: src["emea"], Now: justAfter(src["emea"])}
	if code, body := serveWith(t, single, "/api/v1/topology?estate=x"); code != 200 || strings.Contains(body, `"estate"`) {
		t.Errorf("single-estate /api/v1/topology?estate=x: HTTP %d\n%.300s", code, body)
	}
	if code, _ := serveWith(t, single, "/api/v1/estates"); code != 404 {
		t.Errorf("single-estate /api/v1/estates: HTTP %d, want 404", code)
	}
}
