package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// The real Redis + Sentinel group that holds the leases, shared by every
// test of the binary (each test uses a key prefix of its own). It starts on
// first use, so that fuzz workers, which run this binary too, start none.
var (
	redisOnce sync.Once
	redisLab  *lab.SentinelGroup
	redisErr  error
)

func redisGroup(t testing.TB) *lab.SentinelGroup {
	t.Helper()
	redisOnce.Do(func() { redisLab, redisErr = lab.StartSentinelGroup(lab.SentinelOptions{Site: "dc1"}) })
	if redisErr != nil {
		t.Fatalf("remediation tests need the Redis lab and it did not start: %v", redisErr)
	}
	return redisLab
}

func TestMain(m *testing.M) {
	code := m.Run()
	if redisLab != nil {
		redisLab.Stop()
	}
	if otherRedisLab != nil {
		otherRedisLab.Stop()
	}
	os.Exit(code)
}

const (
	testToken    = "am-token-for-tests"
	testPassword = "iap-s3cret"
)

// estate is an iapsim estate of two sites: two active servers and a standby
// in dc1, a standby in dc2, one IAP cluster "prod"; and the exporter's
// configuration of it, with the lab's Sentinel group as dc1's Redis.
type estate struct {
	sim *iapsim.Sim
	dir string
}

func startEstate(t testing.TB) *estate {
	t.Helper()
	sim, err := iapsim.Start(iapsim.Topology{
		Users: map[string]string{"admin": testPassword},
		Servers: []iapsim.ServerSpec{
			{Name: "iap-dc1-1", Role: "active", Cluster: "dc1"},
			{Name: "iap-dc1-2", Role: "active", Cluster: "dc1"},
			{Name: "iap-dc1-3", Role: "standby", Cluster: "dc1"},
			{Name: "iap-dc2-1", Role: "standby", Cluster: "dc2"},
		},
	})
	if err != nil {
		t.Fatalf("starting the IAP simulator: %v", err)
	}
	t.Cleanup(sim.Close)
	dir := t.TempDir()
	for name, secret := range map[string]string{"iap-password": testPassword, "token": testToken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &estate{sim: sim, dir: dir}
}

// config is the exporter's configuration of the estate; urls replaces the
// URL of a server, as the receiver's own network may see it.
func (e *estate) config(t testing.TB, urls map[string]string) *config.Config {
	t.Helper()
	return e.configOn(t, urls, redisGroup(t))
}

// configOn is config with redis as dc1's Redis.
func (e *estate) configOn(t testing.TB, urls map[string]string, redis *lab.SentinelGroup) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("sites: [{name: dc1, role: active}, {name: dc2, role: standby}]\n")
	// Generous timeouts: a busy test machine must not make a healthy standby look down.
	b.WriteString("iap:\n  health_timeout: 5s\n  timeout: 10s\n  auth: {username: admin, password_file: iap-password}\n  servers:\n")
	for _, s := range e.sim.Servers() {
		url := s.URL()
		if u, ok := urls[s.Name()]; ok {
			url = u
		}
		site, role := s.Cluster(), "standby"
		if strings.HasPrefix(s.Name(), "iap-dc1-") && s.Name() != "iap-dc1-3" {
			role = "active"
		}
		fmt.Fprintf(&b, "    - {name: %s, url: %q, site: %s, role: %s, cluster: prod}\n", s.Name(), url, site, role)
	}
	b.WriteString("redis:\n  - name: dc1\n    site: dc1\n    sentinels:\n")
	for _, a := range redis.SentinelAddrs() {
		fmt.Fprintf(&b, "      - address: %s\n", a)
	}
	cfg, err := config.Parse([]byte(b.String()), e.dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return cfg
}

// scraper is the exporter's fresh view: the same collectors and HA model.
func scraper(t testing.TB, cfg *config.Config) ScrapeFunc {
	t.Helper()
	s, err := collector.NewScraper(cfg, slog.New(slog.DiscardHandler), "iap", "redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return func(ctx context.Context) (*topology.Observation, error) { return s.Probe(ctx), nil }
}

// receiver is a running receiver behind a real HTTP server.
type receiver struct {
	*Receiver
	url     string
	journal string
}

// remediationYAML is the receiver's file: acting (not dry-run), the lab's
// Redis for the lease under a key prefix of the test's own; extra lines
// are appended. The lab has one vantage point: the tests that do not test
// it accept it.
func remediationYAML(t testing.TB, site, extra string) string {
	return fmt.Sprintf(`site: %s
dry_run: false
allow_single_vantage: true
auth: {bearer_token_file: token}
journal_file: journal-%s
cooldown: 1ms
confirm_timeout: 5s
lease: {redis: dc1, ttl: 5m, key_prefix: "test:%s:"}
clusters: [{name: prod}]
%s`, site, site, testRun(t), extra)
}

var testRuns = struct {
	sync.Mutex
	ids map[testing.TB]string
}{ids: map[testing.TB]string{}}

// testRun names one run of a test: the receivers of one run share their
// Redis keys, and a run of `go test -count N` never meets the incidents an
// earlier run of the same test claimed in the lab's Redis.
func testRun(t testing.TB) string {
	testRuns.Lock()
	defer testRuns.Unlock()
	id, ok := testRuns.ids[t]
	if !ok {
		id = fmt.Sprintf("%s#%d", t.Name(), len(testRuns.ids))
		testRuns.ids[t] = id
	}
	return id
}

func (e *estate) startReceiver(t testing.TB, yaml string, own, truth *config.Config) *receiver {
	t.Helper()
	cfg, err := Parse([]byte(yaml), e.dir, own)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	r, err := New(Options{Config: cfg, ExporterConfig: own, Scrape: scraper(t, truth)})
	if err != nil {
		t.Fatal(err)
	}
	return e.serve(t, r, cfg)
}

// serve starts r's worker behind a real HTTP server.
func (e *estate) serve(t testing.TB, r *Receiver, cfg *Config) *receiver {
	t.Helper()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", r)
	mux.Handle(PeerPath, r.PeerHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return &receiver{Receiver: r, url: srv.URL, journal: cfg.JournalFile}
}

func (r *receiver) post(t *testing.T, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// records reads the journal file as another process would.
func records(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// What follows the last newline is a write still under way: another
	// process reading the file sees it so, and skips it as the journal does.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []record
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// settle waits until the worker has processed every journaled notification
// and returns the journal.
func (r *receiver) settle(t *testing.T) []record {
	t.Helper()
	var recs []record
	err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		recs = records(t, r.journal)
		pending := map[string]bool{}
		for _, rec := range recs {
			switch rec.Kind {
			case kindNotification:
				pending[rec.ID] = true
			case kindProcessed:
				for _, id := range rec.IDs {
					delete(pending, id)
				}
			}
		}
		if len(pending) > 0 {
			return fmt.Errorf("%d notifications not processed", len(pending))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// outcomes lists "server: outcome" for every decision and action result.
func outcomes(recs []record) []string {
	var out []string
	for _, r := range recs {
		switch r.Kind {
		case kindDecision:
			out = append(out, fmt.Sprintf("%s: %s", serverOf(r.Incident), r.Outcome))
			if r.Outcome == reasonVerificationFailed {
				log.Printf("%s: %s", serverOf(r.Incident), r.Error) // says why, should a test fail on it
			}
		case kindFinished:
			out = append(out, fmt.Sprintf("%s: %s %s → %s", serverOf(r.Incident), r.Result, r.Plan.From, r.Plan.To))
		}
	}
	return out
}

// serverOf names the server of the recorded incidents by their fingerprint.
func serverOf(incident string) string {
	fp, _, _ := strings.Cut(incident, "@")
	switch fp {
	case "6962e1f2901f7551":
		return "iap-dc1-1"
	case "2e8b00c2ab2f2744":
		return "iap-dc1-2"
	case "":
		return "(notification)"
	}
	return fp
}

// activations counts the worker activations each server received.
func (e *estate) activations() map[string]int {
	out := map[string]int{}
	for _, s := range e.sim.Servers() {
		if n := s.Requests("/workflow_engine/activate"); n > 0 {
			out[s.Name()] = n
		}
	}
	return out
}

func (e *estate) down(t *testing.T, name string) {
	t.Helper()
	if err := e.sim.Server(name).SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// alertFor rewrites the recorded firing notification to one alert about
// server, starting at startsAt (a new incident).
func alertFor(t *testing.T, server string, startsAt time.Time, status string) []byte {
	t.Helper()
	w, err := decodeWebhook(readTestdata(t, "firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := w.Alerts[0]
	a.Labels["server"] = server
	a.Fingerprint = "fp-" + server
	a.StartsAt, a.Status = startsAt, status
	if status == StatusResolved {
		a.EndsAt = startsAt.Add(time.Minute)
	}
	w.Alerts, w.Status = []Alert{a}, status
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ack is what `remediation ack` does for r: its journal's failure and the
// estate-wide block.
func (r *receiver) ack(t *testing.T, by, note string) {
	t.Helper()
	if _, _, err := AckAll(context.Background(), r.cur.cfg, r.cur.exporterCfg, by, note, nil); err != nil {
		t.Fatal(err)
	}
}
