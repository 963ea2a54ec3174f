package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// A second Redis + Sentinel group, started on first use: the Redis of the
// second estate of the router tests (each estate's lease in its own Redis).
var (
	otherRedisOnce sync.Once
	otherRedisLab  *lab.SentinelGroup
	otherRedisErr  error
)

func otherRedisGroup(t testing.TB) *lab.SentinelGroup {
	t.Helper()
	otherRedisOnce.Do(func() {
		// One replica acknowledges the lease; one Sentinel is enough to
		// find the master.
		otherRedisLab, otherRedisErr = lab.StartSentinelGroup(lab.SentinelOptions{Site: "dc1", Replicas: 1, Sentinels: 1})
	})
	if otherRedisErr != nil {
		t.Fatalf("the router tests need a second Redis lab and it did not start: %v", otherRedisErr)
	}
	return otherRedisLab
}

// routed is one estate of a router test: its simulator, its exporter
// configuration, and its remediation file and journal.
type routed struct {
	*estate
	name    string
	cfg     *config.Config
	file    string // "" without a remediation file
	journal string
	redis   *lab.SentinelGroup
}

// routedEstate starts an estate named name on redis; yaml, when not empty,
// is its remediation file (written beside its secrets).
func routedEstate(t testing.TB, name string, redis *lab.SentinelGroup, yaml string) *routed {
	t.Helper()
	e := startEstate(t)
	r := &routed{estate: e, name: name, cfg: e.configOn(t, nil, redis), redis: redis}
	if yaml != "" {
		r.file = filepath.Join(e.dir, "remediation.yml")
		writeTestFile(t, r.file, yaml)
		rc, err := Load(r.file, r.cfg)
		if err != nil {
			t.Fatalf("%v\n%s", err, yaml)
		}
		r.journal = rc.JournalFile
	}
	return r
}

func (r *routed) asEstate(t testing.TB) Estate {
	return Estate{Name: r.name, File: r.file, Config: r.cfg, Scrape: scraper(t, r.cfg)}
}

// router is a Router of estates behind a real HTTP server.
type router struct {
	*Router
	url string
}

func startRouter(t testing.TB, estates ...*routed) *router {
	t.Helper()
	var list []Estate
	for _, e := range estates {
		list = append(list, e.asEstate(t))
	}
	rt, err := NewRouter(list, RouterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", rt)
	mux.Handle(PeerPath, rt.PeerHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	})
	return &router{Router: rt, url: srv.URL}
}

// send posts body with the bearer token and returns the status and body.
func (r *router) send(t *testing.T, body []byte, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/", bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// notification is the recorded firing notification, one alert per server,
// each labelled with the estate given beside it ("" for none).
func notification(t *testing.T, alerts ...[2]string) []byte {
	t.Helper()
	w, err := decodeWebhook(readTestdata(t, "firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	template := w.Alerts[0]
	w.Alerts = nil
	for _, a := range alerts {
		estate, server := a[0], a[1]
		al := template
		al.Labels = map[string]string{}
		for k, v := range template.Labels {
			al.Labels[k] = v
		}
		al.Labels["server"] = server
		if estate != "" {
			al.Labels[EstateLabel] = estate
		}
		al.Fingerprint = "fp-" + estate + "-" + server
		al.StartsAt = time.Now()
		w.Alerts = append(w.Alerts, al)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unrecorded fails unless the journal at path holds no record (or does not
// exist).
func unrecorded(t *testing.T, what, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("%s: the journal of %s holds records:\n%s", what, path, b)
	}
}

// fencingTokens is the number of leases taken in redis under the prefix
// of t's remediation files, for cluster prod.
func fencingTokens(t *testing.T, g *lab.SentinelGroup) int {
	t.Helper()
	master, err := g.Master()
	if err != nil {
		t.Fatal(err)
	}
	c := g.Client(master)
	defer c.Close()
	n, err := c.Get(context.Background(), "test:"+testRun(t)+":fencing:prod").Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return n
}

// Rule: a notification is acted on by the receiver of the estate its
// alerts name, alone: estate a's failed server is promoted in a, under a
// lease in a's Redis, journaled in a's journal; estate b (its own Redis,
// its own journal, the same server names and key prefix) is untouched.
func TestRouterActsInTheNotifiedEstateOnly(t *testing.T) {
	a := routedEstate(t, "a", redisGroup(t), remediationYAML(t, "dc1", ""))
	b := routedEstate(t, "b", otherRedisGroup(t), remediationYAML(t, "dc1", ""))
	rt := startRouter(t, a, b)
	a.down(t, "iap-dc1-1")
	b.down(t, "iap-dc1-1") // b's failure is real too: only a's alert arrives

	if code, body := rt.send(t, notification(t, [2]string{"a", "iap-dc1-1"}), testToken); code != http.StatusAccepted {
		t.Fatalf("estate a's notification: %d %s", code, body)
	}
	ra := &receiver{journal: a.journal}
	got := outcomes(ra.settle(t))
	if want := []string{"fp-a-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
		t.Errorf("estate a's outcomes %v, want %v", got, want)
	}
	if got := a.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("estate a's activations %v, want iap-dc1-3 once", got)
	}
	if got := b.activations(); len(got) != 0 {
		t.Errorf("estate b's activations %v: b was not notified", got)
	}
	unrecorded(t, "estate a's notification", b.journal)
	if n := fencingTokens(t, a.redis); n != 1 {
		t.Errorf("leases taken in a's Redis: %d, want 1", n)
	}
	if n := fencingTokens(t, b.redis); n != 0 {
		t.Errorf("leases taken in b's Redis: %d, want 0", n)
	}
	if n := testutil.ToFloat64(rt.metricsOf("a").actions.WithLabelValues(actionPromote, ResultSuccess)); n != 1 {
		t.Errorf("estate a's promotions on its metrics: %v, want 1", n)
	}
	if n := testutil.ToFloat64(rt.metricsOf("b").actions.WithLabelValues(actionPromote, ResultSuccess)); n != 0 {
		t.Errorf("estate b's promotions on its metrics: %v, want 0", n)
	}
}

// Rule: a notification is routed only when every alert names the same
// estate, one the exporter watches, and it is recorded only when it
// passes the authentication of that estate's receiver; otherwise nothing
// is recorded anywhere. An estate without a remediation file is answered
// 200, counted, never acted on.
func TestRouterRefusals(t *testing.T) {
	a := routedEstate(t, "a", redisGroup(t), remediationYAML(t, "dc1", ""))
	b := routedEstate(t, "b", otherRedisGroup(t), remediationYAML(t, "dc1", "max_body_bytes: 4096\n"))
	const otherToken = "b-token-for-tests"
	writeTestFile(t, filepath.Join(b.dir, "token"), otherToken+"\n")
	c := routedEstate(t, "c", redisGroup(t), "") // watched, not remediated
	c.down(t, "iap-dc1-1")
	rt := startRouter(t, a, b, c)

	large := notification(t, [2]string{"b", "iap-dc1-1"})
	w, _ := decodeWebhook(large)
	w.Alerts[0].Annotations = map[string]string{"pad": strings.Repeat("x", 4096)}
	large, _ = json.Marshal(w)
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)

	for _, tt := range []struct {
		name  string
		body  []byte
		token string
		want  int
		says  string
	}{
		{"alerts of two estates", notification(t, [2]string{"a", "iap-dc1-1"}, [2]string{"b", "iap-dc1-1"}), testToken, http.StatusBadRequest, `alerts[1] is of estate "b", alerts[0] of "a"`},
		{"an alert without estate", notification(t, [2]string{"a", "iap-dc1-1"}, [2]string{"", "iap-dc1-2"}), testToken, http.StatusBadRequest, "alerts[1] (IAPActiveServerDownStandbyAvailable) has no estate label"},
		{"no alerts", []byte(`{"version":"4","status":"firing","alerts":[]}`), testToken, http.StatusBadRequest, "no alerts"},
		{"an unknown estate", notification(t, [2]string{"z", "iap-dc1-1"}), testToken, http.StatusNotFound, `estate "z" is not an estate of this exporter`},
		{"no credentials", notification(t, [2]string{"a", "iap-dc1-1"}), "", http.StatusUnauthorized, "unauthorized"},
		{"estate a's token for estate b", notification(t, [2]string{"b", "iap-dc1-1"}), testToken, http.StatusUnauthorized, "unauthorized"},
		{"estate b's token for estate a", notification(t, [2]string{"a", "iap-dc1-1"}), otherToken, http.StatusUnauthorized, "unauthorized"},
		{"above estate b's max_body_bytes", large, otherToken, http.StatusRequestEntityTooLarge, "larger than 4096 bytes"},
		{"above every estate's max_body_bytes", append(large, make([]byte, DefaultMaxBodyBytes)...), otherToken, http.StatusRequestEntityTooLarge, "larger than"},
		{"malformed JSON", large[:100], testToken, http.StatusBadRequest, "bad notification"},
		{"nested too deep", []byte(deep), testToken, http.StatusBadRequest, "nested deeper"},
		{"an estate without remediation file", notification(t, [2]string{"c", "iap-dc1-1"}), testToken, http.StatusOK, `estate "c" is not remediated`},
	} {
		code, body := rt.send(t, tt.body, tt.token)
		if code != tt.want || !strings.Contains(body, tt.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tt.name, code, body, tt.want, tt.says)
		}
	}
	unrecorded(t, "refused notifications", a.journal)
	unrecorded(t, "refused notifications", b.journal)
	if n := testutil.ToFloat64(rt.skipped.WithLabelValues(reasonEstateNotRemediated)); n != 1 {
		t.Errorf("skipped_total{reason=%q} = %v, want 1", reasonEstateNotRemediated, n)
	}
	if got := c.activations(); len(got) != 0 {
		t.Errorf("estate c, without a remediation file, had workers activated: %v", got)
	}
	if task, job := c.sim.Server("iap-dc1-3").Workers(); task || job {
		t.Errorf("estate c's standby runs workers (task %v, job %v)", task, job)
	}
	// Each token still works for its own estate.
	if code, body := rt.send(t, notification(t, [2]string{"b", "iap-dc1-2"}), otherToken); code != http.StatusAccepted {
		t.Errorf("estate b's notification with b's token: %d %s", code, body)
	}
	if code, body := rt.send(t, notification(t, [2]string{"a", "iap-dc1-2"}), testToken); code != http.StatusAccepted {
		t.Errorf("estate a's notification with a's token: %d %s", code, body)
	}
}

// Rule: a peer asks a multi-estate exporter about one estate's server, by
// the estate in its url, through that estate's receiver.
func TestRouterPeerEndpointNamesTheEstate(t *testing.T) {
	a := routedEstate(t, "a", redisGroup(t), remediationYAML(t, "dc1", ""))
	rt := startRouter(t, a)
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"?estate=a&server=iap-dc1-1", http.StatusOK},
		{"?server=iap-dc1-1", http.StatusBadRequest},
		{"?estate=z&server=iap-dc1-1", http.StatusNotFound},
		{"?estate=a&server=nobody", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodGet, rt.url+PeerPath+tt.query, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ans PeerAnswer
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(resp.Body).Decode(&ans)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.want == http.StatusOK && (!ans.Up || ans.Server != "iap-dc1-1")) {
			t.Errorf("%s: %d %+v, want %d", tt.query, resp.StatusCode, ans, tt.want)
		}
	}
}

// Rule: what is an estate's own is not shared: two estates naming one
// journal_file are refused at load, as are two keeping their lease under
// one key prefix in one Redis (one's block, pause and claims would hold
// the other back); one Redis with prefixes of their own is accepted.
func TestRouterRefusesSharedJournalOrLease(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "journal")
	for _, tt := range []struct {
		name         string
		yamlA, yamlB string
		otherRedis   bool
		refused      string
	}{
		{"one journal", remediationYAML(t, "dc1", "") + "journal_file: " + journal + "\n", remediationYAML(t, "dc1", "") + "journal_file: " + journal + "\n", true,
			"estates a and b both name journal_file " + journal},
		{"one lease in one Redis", remediationYAML(t, "dc1", ""), remediationYAML(t, "dc1", ""), false,
			"estates a and b keep their lease under the same lease.key_prefix"},
		{"one Redis, prefixes of their own", remediationYAML(t, "dc1", ""), strings.Replace(remediationYAML(t, "dc1", ""), `key_prefix: "test:`, `key_prefix: "other:`, 1), false, ""},
		{"one prefix, Redis of their own", remediationYAML(t, "dc1", ""), remediationYAML(t, "dc1", ""), true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The journal_file line given last wins (the decoder keeps the last key).
			for _, y := range []*string{&tt.yamlA, &tt.yamlB} {
				if strings.Count(*y, "journal_file:") > 1 {
					*y = strings.Replace(*y, "journal_file: journal-dc1\n", "", 1)
				}
			}
			redisB := redisGroup(t)
			if tt.otherRedis {
				redisB = otherRedisGroup(t)
			}
			a := routedEstate(t, "a", redisGroup(t), tt.yamlA)
			b := routedEstate(t, "b", redisB, tt.yamlB)
			rt, err := NewRouter([]Estate{a.asEstate(t), b.asEstate(t)}, RouterOptions{})
			if err == nil {
				rt.Close()
			}
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("error %v, want one saying %q", err, tt.refused)
			}
		})
	}
}

// Rule: a reload touches only the estates whose remediation changed. An
// unchanged estate keeps its receiver (journal open, the same worker); a
// changed one keeps its receiver and journal and takes the new settings; a
// broken one keeps its old receiver; a removed one is closed, unlocking
// its journal; a new one sharing a running estate's journal is refused.
func TestRouterReloadsPerEstate(t *testing.T) {
	same := routedEstate(t, "same", redisGroup(t), remediationYAML(t, "dc1", ""))
	changed := routedEstate(t, "changed", otherRedisGroup(t), remediationYAML(t, "dc1", ""))
	broken := routedEstate(t, "broken", otherRedisGroup(t), strings.Replace(remediationYAML(t, "dc1", ""), `key_prefix: "test:`, `key_prefix: "broken:`, 1))
	removed := routedEstate(t, "removed", redisGroup(t), strings.Replace(remediationYAML(t, "dc1", ""), `key_prefix: "test:`, `key_prefix: "removed:`, 1))
	rt := startRouter(t, same, changed, broken, removed)
	before := map[string]*Receiver{}
	for name, r := range rt.table.Load().estates {
		before[name] = r.rcv
	}

	writeTestFile(t, changed.file, strings.Replace(remediationYAML(t, "dc1", ""), "dry_run: false", "dry_run: true", 1))
	writeTestFile(t, broken.file, "site: nowhere\n")
	newcomer := routedEstate(t, "newcomer", redisGroup(t), "")
	newcomer.file = filepath.Join(newcomer.dir, "remediation.yml")
	writeTestFile(t, newcomer.file, strings.Replace(remediationYAML(t, "dc1", ""), "journal_file: journal-dc1", "journal_file: "+same.journal, 1))
	problems := rt.Reload([]Estate{same.asEstate(t), changed.asEstate(t), broken.asEstate(t), newcomer.asEstate(t)})

	after := rt.table.Load().estates
	if after["same"].rcv != before["same"] {
		t.Error("the unchanged estate has a new receiver")
	}
	if after["changed"].rcv != before["changed"] {
		t.Error("the changed estate has a new receiver: its journal was reopened")
	} else if st, _ := rt.Status("changed"); !waitDryRun(t, rt, "changed") {
		t.Errorf("the changed estate's receiver did not take dry_run: %+v", st)
	}
	if err := problems["broken"]; err == nil || after["broken"].rcv != before["broken"] {
		t.Errorf("the broken estate: problem %v, receiver kept %v", err, after["broken"].rcv == before["broken"])
	}
	if err := problems["newcomer"]; err == nil || !strings.Contains(err.Error(), "estates same and newcomer both name journal_file") {
		t.Errorf("the newcomer sharing a journal: %v", err)
	}
	if rt.Remediated("newcomer") || rt.Remediated("removed") {
		t.Error("the newcomer or the removed estate has a receiver")
	}
	for _, name := range []string{"same", "changed"} {
		if err := problems[name]; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The removed estate's receiver closes in the background.
	err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		f, err := lockJournalFor(removed.journal)
		if err == nil {
			f.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("the removed estate's journal is still locked: %v", err)
	}
	if _, err := lockJournalFor(same.journal); err == nil {
		t.Error("the unchanged estate's journal is not locked: its receiver closed")
	}
	// The kept receivers still record.
	for _, name := range []string{"same", "broken"} {
		if code, body := rt.send(t, notification(t, [2]string{name, "iap-dc1-2"}), testToken); code != http.StatusAccepted {
			t.Errorf("estate %s after the reload: %d %s", name, code, body)
		}
	}
	if code, _ := rt.send(t, notification(t, [2]string{"removed", "iap-dc1-2"}), testToken); code != http.StatusNotFound {
		t.Errorf("the removed estate after the reload: %d, want 404", code)
	}
}

func waitDryRun(t *testing.T, rt *router, name string) bool {
	err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		if st, _ := rt.Status(name); !st.DryRun {
			return errors.New("not dry-run")
		}
		return nil
	})
	return err == nil
}

// Rule: a reload removing an estate while its notifications arrive closes
// its receiver after the requests handed to it: each is recorded (202) or
// refused as a resend can fix (404 once removed, 503 while it closes),
// never lost after a 202 nor answered 500.
func TestRouterRemovesAnEstateUnderLoad(t *testing.T) {
	gone := routedEstate(t, "gone", redisGroup(t), remediationYAML(t, "dc1", ""))
	rt := startRouter(t, gone)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		bad      []string
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 25 {
				body := notification(t, [2]string{"gone", "iap-dc1-" + string(rune('a'+i)) + string(rune('a'+j))})
				code, answer := rt.send(t, body, testToken)
				mu.Lock()
				switch code {
				case http.StatusAccepted:
					accepted++
				case http.StatusNotFound, http.StatusServiceUnavailable:
				default:
					bad = append(bad, answer)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if problems := rt.Reload(nil); len(problems) != 0 {
		t.Fatal(problems)
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("answers other than 202, 404, 503: %q", bad)
	}
	n := 0
	for _, r := range records(t, gone.journal) {
		if r.Kind == kindNotification {
			n++
		}
	}
	t.Logf("%d of 200 accepted before the estate was removed", accepted)
	if n != accepted {
		t.Errorf("%d notifications answered 202, %d in the journal", accepted, n)
	}
}

// Rule: in single-estate mode the receiver serves alone and ignores an
// estate label: alerts naming any estate, or two, are recorded and decided
// as today.
func TestSingleEstateIgnoresTheEstateLabel(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	if code := r.post(t, notification(t, [2]string{"prod-emea", "iap-dc1-1"}, [2]string{"staging", "iap-dc1-2"})); code != http.StatusAccepted {
		t.Fatalf("a notification naming two estates: %d, want 202", code)
	}
	got := outcomes(r.settle(t))
	if !strings.Contains(strings.Join(got, "\n"), "fp-prod-emea-iap-dc1-1: success iap-dc1-1 → iap-dc1-3") {
		t.Errorf("outcomes %v, want iap-dc1-1 promoted", got)
	}
}

// Rule: an estate added by a reload with a remediation file that does not
// load is not taken for an estate left unremediated: its alerts are 503,
// for Alertmanager to resend once the file is repaired and reloaded. An
// estate removed and added back at once gets a receiver on its journal
// again (the new one waits for the old one's close).
func TestRouterReloadBrokenNewcomerAndComeback(t *testing.T) {
	back := routedEstate(t, "back", redisGroup(t), remediationYAML(t, "dc1", ""))
	late := routedEstate(t, "late", otherRedisGroup(t), remediationYAML(t, "dc1", ""))
	rt := startRouter(t, back)
	good, _ := os.ReadFile(late.file)
	writeTestFile(t, late.file, "site: nowhere\n")

	if problems := rt.Reload([]Estate{late.asEstate(t)}); problems["late"] == nil {
		t.Errorf("the broken newcomer reloaded without a problem: %v", problems)
	}
	if problems := rt.Reload([]Estate{back.asEstate(t), late.asEstate(t)}); problems["back"] != nil || problems["late"] == nil {
		t.Errorf("back at once, the newcomer still broken: %v", problems)
	}
	if code, body := rt.send(t, notification(t, [2]string{"late", "iap-dc1-1"}), testToken); code != http.StatusServiceUnavailable {
		t.Errorf("an alert of the broken newcomer: %d %s, want 503", code, body)
	}
	writeTestFile(t, late.file, string(good))
	if problems := rt.Reload([]Estate{back.asEstate(t), late.asEstate(t)}); len(problems) != 0 {
		t.Fatalf("back and the repaired newcomer: %v", problems)
	}
	for _, name := range []string{"back", "late"} {
		if code, body := rt.send(t, notification(t, [2]string{name, "iap-dc1-2"}), testToken); code != http.StatusAccepted {
			t.Errorf("estate %s once added back or repaired: %d %s", name, code, body)
		}
	}
}
