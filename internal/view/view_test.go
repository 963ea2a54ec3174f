package view

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// fixedSource serves one scrape, and counts how often it was asked to probe.
type fixedSource struct {
	scrape *topology.Observation
	latest bool
	probes int
}

func (f *fixedSource) Latest() *topology.Observation {
	if f.latest {
		return f.scrape
	}
	return nil
}

func (f *fixedSource) Scrape(context.Context) (*topology.Observation, error) {
	f.probes++
	f.latest = true
	return f.scrape, nil
}

func ha6Scrape() *topology.Observation {
	cfg := &config.Config{Architecture: config.ArchHA6, Sites: []config.Site{{Name: "dc1"}, {Name: "dc2"}, {Name: "dc3"}}}
	snap := &topology.Snapshot{
		Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		IAP: []topology.IAPServer{
			{Name: "iap-dc1-1", Site: "dc1", DeclaredRole: "active", Up: true, TaskWorker: topology.True},
			{Name: "iap-dc1-2", Site: "dc1", DeclaredRole: "active", Error: "connection refused"},
			{Name: "iap-dc2-1", Site: "dc2", DeclaredRole: "standby", Up: true, TaskWorker: topology.False,
				APIUp: topology.True, AppsHealthy: topology.True, AdaptersHealthy: topology.True},
		},
		MongoDB: []topology.ReplicaSet{{Name: "rs0", Up: true, Primaries: 1, Members: []topology.MongoMember{
			{Name: "m1:27017", Site: "dc1", State: 1, StateStr: "PRIMARY", Healthy: true, Votes: 1, Priority: 2},
			{Name: "m2:27017", Site: "dc2", State: 2, StateStr: "SECONDARY", Healthy: true, Votes: 1, Priority: 1},
			{Name: "m3:27017", Site: "dc3", State: 7, StateStr: "ARBITER", Healthy: true, Votes: 1, ArbiterOnly: true},
		}}},
		Redis: []topology.SentinelGroup{{Name: "dc1", Site: "dc1", Quorum: 2,
			Sentinels: []topology.SentinelView{{Address: "s1:26379", Site: "dc1", Up: true, MasterAddress: "r1:6379"}},
			Nodes: []topology.RedisNode{
				{Address: "r1:6379", Site: "dc1", Up: true, Role: "master"},
				{Address: "r2:6379", Site: "dc1", Up: true, Role: "replica", MasterLinkUp: true, ReplicaPriority: 100},
			}}},
		RabbitMQ: []topology.RabbitCluster{{Name: "dc1", Site: "dc1", Up: true, Nodes: []topology.RabbitNode{
			{Name: "rabbit@a", Site: "dc1", Running: true}, {Name: "rabbit@b", Site: "dc1"},
		}}},
		Gateways: []topology.Gateway{{Name: "iag1", Site: "dc2", Up: true, Capacity: 5000, Devices: map[string]int{"devices": 4500}}},
		// HAProxy still routes to iap-dc1-2, which the exporter sees down.
		LoadBalancers: []topology.LoadBalancer{
			{Name: "lb1", Site: "dc1", Kind: "haproxy", Up: true, Servers: []topology.BalancerServer{
				{Name: "iap-dc1-1", IAPServer: "iap-dc1-1", Status: "UP", Reaches: topology.True, Routed: true},
				{Name: "iap-dc1-2", IAPServer: "iap-dc1-2", Status: "UP", Reaches: topology.True, Routed: true},
				{Name: "iap-dc2-1", IAPServer: "iap-dc2-1", Status: "UP", Backup: true, Reaches: topology.True},
			}},
			{Name: "lb2", Site: "dc2", Kind: "vip", Error: "connection refused"},
		},
	}
	return &topology.Observation{Config: cfg, Snapshot: snap, Verdict: topology.Evaluate(cfg, snap),
		Results: map[string]topology.ProbeResult{"iap": {Duration: 20 * time.Millisecond}}}
}

func serve(t *testing.T, src Source, rem func() RemediationState, path string) (int, string) {
	t.Helper()
	return serveWith(t, Options{Source: src, Remediation: rem, Now: justAfter(src)}, path)
}

// justAfter is a clock a second after the source's snapshot was taken.
func justAfter(src Source) func() time.Time {
	return func() time.Time { return src.(*fixedSource).scrape.Snapshot.Time.Add(time.Second) }
}

func serveWith(t *testing.T, opts Options, path string) (int, string) {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux, opts)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestBoxesClassEveryState(t *testing.T) {
	got := map[string]string{}
	for _, b := range Boxes(ha6Scrape().Snapshot) {
		got[b.Component+"/"+b.Name] = b.Class + " " + siteOf(b)
	}
	want := map[string]string{
		"iap/iap-dc1-1":     "head dc1",
		"iap/iap-dc1-2":     "down dc1",
		"iap/iap-dc2-1":     "follower dc2",
		"mongodb/m1:27017":  "head dc1",
		"mongodb/m2:27017":  "follower dc2",
		"mongodb/m3:27017":  "follower dc3",
		"redis/r1:6379":     "head dc1",
		"redis/r2:6379":     "follower dc1",
		"sentinel/s1:26379": "follower dc1",
		"rabbitmq/rabbit@a": "follower dc1",
		"rabbitmq/rabbit@b": "down dc1",
		"gateway/iag1":      "head dc2",
		// It routes, but disagrees with the exporter on iap-dc1-2.
		"loadbalancer/lb1": "unknown dc1",
		"loadbalancer/lb2": "down dc2",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d boxes, want %d: %v", len(got), len(want), got)
	}
	for _, b := range Boxes(ha6Scrape().Snapshot) {
		if b.Name == "lb1" && (b.State != "routes to iap-dc1-1, iap-dc1-2" || !strings.Contains(b.Detail, "disagrees with the exporter on iap-dc1-2")) {
			t.Errorf("lb1: state %q, detail %q", b.State, b.Detail)
		}
	}
}

func TestPageShowsMembersAndVerdicts(t *testing.T) {
	src := &fixedSource{scrape: ha6Scrape()}
	code, body := serve(t, src, func() RemediationState { return RemediationState{Enabled: true, DryRun: true} }, "/topology")
	if code != http.StatusOK {
		t.Fatalf("GET /topology = %d\n%s", code, body)
	}
	if src.probes != 1 {
		t.Errorf("page without a previous scrape probed %d times, want 1", src.probes)
	}
	for _, want := range []string{
		`data-name="iap-dc1-2" data-state="down" data-class="down"`,
		`data-name="m1:27017" data-state="primary" data-class="head"`,
		`<th data-site="dc3">dc3</th>`,
		// One server per site able to work tasks: no site holds an HA-3.
		`id="arch-observed" class="bad">HA-0</span>`,
		`id="arch-expected">HA-6</span>`,
		`data-site="dc1"><td>lose dc1</td>`,
		`<b>dry-run</b>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The second view within the refresh interval shows the same scrape.
	serve(t, src, nil, "/topology")
	if src.probes != 1 {
		t.Errorf("a second view probed again (%d probes)", src.probes)
	}
}

// The page says it refreshes every Refresh: a snapshot that old or older is
// taken anew (through Source.Scrape, which joins a scrape under way), a
// younger one is shown as it is, and the page says how old it is.
func TestPageTakesANewSnapshotOnceTheLastIsOlderThanItsRefresh(t *testing.T) {
	for _, tc := range []struct {
		name       string
		latest     bool
		age        time.Duration
		wantProbes int
	}{
		{"no snapshot yet", false, 0, 1},
		{"younger than the refresh", true, 9 * time.Second, 0},
		{"as old as the refresh", true, 10 * time.Second, 1},
		{"Prometheus stopped scraping an hour ago", true, time.Hour, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fixedSource{scrape: ha6Scrape(), latest: tc.latest}
			now := func() time.Time { return src.scrape.Snapshot.Time.Add(tc.age) }
			code, body := serveWith(t, Options{Source: src, Refresh: 10 * time.Second, Now: now}, "/topology")
			if code != http.StatusOK {
				t.Fatalf("GET /topology = %d\n%s", code, body)
			}
			if src.probes != tc.wantProbes {
				t.Errorf("probed %d times, want %d", src.probes, tc.wantProbes)
			}
			if !strings.Contains(body, "reloads every 10 s") {
				t.Errorf("the page does not say how often it reloads")
			}
		})
	}
}

func TestPageShowsTheSnapshotAge(t *testing.T) {
	src := &fixedSource{scrape: ha6Scrape(), latest: true}
	now := func() time.Time { return src.scrape.Snapshot.Time.Add(7 * time.Second) }
	_, body := serveWith(t, Options{Source: src, Refresh: 10 * time.Second, Now: now}, "/topology")
	if !strings.Contains(body, `<span id="age">7 s old</span>`) {
		t.Errorf("the page does not say the snapshot is 7 s old:\n%s", body)
	}
	_, body = serveWith(t, Options{Source: src, Refresh: 10 * time.Second, Now: now}, "/api/v1/topology")
	var doc Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.AgeSeconds != 7 {
		t.Errorf("age_seconds = %v (%v), want 7", doc.AgeSeconds, err)
	}
}

// The page links the metrics where --web.telemetry-path serves them,
// relative to itself so that a proxy's path prefix holds.
func TestPageLinksTheTelemetryPath(t *testing.T) {
	for path, want := range map[string]string{"": `href="metrics"`, "/metrics": `href="metrics"`, "/iap/metrics": `href="iap/metrics"`} {
		src := &fixedSource{scrape: ha6Scrape(), latest: true}
		_, body := serveWith(t, Options{Source: src, MetricsPath: path, Now: justAfter(src)}, "/topology")
		if !strings.Contains(body, want+">metrics</a>") {
			t.Errorf("--web.telemetry-path=%q: the page lacks %s", path, want)
		}
	}
}

func TestAPIServesSnapshotAndVerdict(t *testing.T) {
	code, body := serve(t, &fixedSource{scrape: ha6Scrape(), latest: true}, nil, "/api/v1/topology")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/topology = %d\n%s", code, body)
	}
	var doc Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Snapshot.IAP) != 3 || doc.Verdict.Architecture.Expected != "HA-6" || doc.Remediation.Enabled ||
		!doc.Collectors["iap"].Success || len(doc.Sites) != 3 {
		t.Fatalf("document does not carry the scrape: %+v", doc)
	}
	if regexp.MustCompile(`(?i)password|secret`).MatchString(body) {
		t.Errorf("the JSON mentions a secret field:\n%s", body)
	}
}

// Issue 27: with the dc2 secondary at priority 0 the primary is the set's
// only electable member, so its box is marked and the card names what
// would break; the arbiter's loss leaves 2 of 3 votes and the primary, so
// it is not marked.
func TestPageMarksSinglePointsOfFailure(t *testing.T) {
	sc := ha6Scrape()
	sc.Snapshot.MongoDB[0].Members[1].Priority = 0
	sc.Verdict = topology.Evaluate(sc.Config, sc.Snapshot)
	code, body := serve(t, &fixedSource{scrape: sc, latest: true}, nil, "/topology")
	if code != http.StatusOK {
		t.Fatalf("GET /topology = %d\n%s", code, body)
	}
	for _, want := range []string{
		`class="box head spof" data-component="mongodb" data-name="m1:27017" data-state="primary" data-class="head" data-spof="true"`,
		`single point of failure: m1:27017 is the only electable member of mongodb rs0`,
		`<tr data-component="mongodb" data-name="m1:27017"><td>mongodb m1:27017</td>`,
		`<div class="mark">single point of failure</div>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, `data-name="m3:27017" data-state="arbiter" data-class="follower" data-spof`) {
		t.Error("the arbiter is marked a single point of failure; without it 2 of 3 votes and the primary are left")
	}
	_, healthy := serve(t, &fixedSource{scrape: ha6Scrape(), latest: true}, nil, "/topology")
	if strings.Contains(healthy, `data-spof="true"`) || !strings.Contains(healthy, "none: no member's loss alone stops the estate") {
		t.Error("with a second electable member the page still marks a single point of failure")
	}
	// No server able to work tasks: nothing is left to stop, so no member
	// is judged, and the page does not claim there is none.
	down := ha6Scrape()
	for i := range down.Snapshot.IAP {
		down.Snapshot.IAP[i].Up = false
	}
	down.Verdict = topology.Evaluate(down.Config, down.Snapshot)
	_, stopped := serve(t, &fixedSource{scrape: down, latest: true}, nil, "/topology")
	if !strings.Contains(stopped, `id="single-points-unjudged"`) || strings.Contains(stopped, "none: no member") {
		t.Error("with no server able to work tasks the page does not say single points are not judged")
	}
}
