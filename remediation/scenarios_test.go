package remediation

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

func TestWebhookRefusals(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", "max_body_bytes: 4096\n"), cfg, cfg)
	good := readTestdata(t, "firing.json")
	tests := []struct {
		name   string
		method string
		auth   string
		body   string
		want   int
	}{
		{"no credentials", http.MethodPost, "", string(good), http.StatusUnauthorized},
		{"wrong token", http.MethodPost, "Bearer nope", string(good), http.StatusUnauthorized},
		{"basic instead of bearer", http.MethodPost, "Basic YWRtaW46YWRtaW4=", string(good), http.StatusUnauthorized},
		{"GET", http.MethodGet, "Bearer " + testToken, "", http.StatusMethodNotAllowed},
		{"oversized body", http.MethodPost, "Bearer " + testToken, strings.Replace(string(good), `"receiver"`, `"pad":"`+strings.Repeat("x", 4096)+`","receiver"`, 1), http.StatusRequestEntityTooLarge},
		{"malformed JSON", http.MethodPost, "Bearer " + testToken, string(good[:100]), http.StatusBadRequest},
		{"wrong version", http.MethodPost, "Bearer " + testToken, strings.Replace(string(good), `"version":"4"`, `"version":"5"`, 1), http.StatusBadRequest},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, r.url, strings.NewReader(tt.body))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	if recs := records(t, r.journal); len(recs) != 0 {
		t.Errorf("refused notifications reached the journal: %+v", recs)
	}
	if code := r.post(t, good); code != http.StatusAccepted {
		t.Errorf("a good notification: %d", code)
	}
}

// The recorded mixed group: iap-dc1-1 firing (it is down), iap-dc1-2
// resolved. The standby of the same site is promoted, the resolved alert
// left alone; a repeat-interval resend changes nothing.
func TestPromotesStandbyOnce(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")

	if code := r.post(t, readTestdata(t, "mixed.json")); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	got := outcomes(r.settle(t))
	want := []string{"iap-dc1-1: success iap-dc1-1 → iap-dc1-3", "iap-dc1-2: resolved"}
	if !equal(got, want) {
		t.Errorf("outcomes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if task, job := e.sim.Server("iap-dc1-3").Workers(); !task || !job {
		t.Errorf("iap-dc1-3 workers: task %v job %v, want both running", task, job)
	}
	if task, _ := e.sim.Server("iap-dc2-1").Workers(); task {
		t.Error("the standby of the other site was activated too")
	}

	// The resend: the incident is decided, the resolved one stays resolved.
	if code := r.post(t, readTestdata(t, "firing.json")); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	got = outcomes(r.settle(t))[len(want):]
	if want := []string{"iap-dc1-1: dedup", "iap-dc1-2: resolved"}; !equal(got, want) {
		t.Errorf("after the resend: %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v, want one of iap-dc1-3", got)
	}

	err := testutil.CollectAndCompare(r.metrics, strings.NewReader(`
# HELP iap_ha_remediation_blocked 1 while the receiver acts on nothing until a person looks: after a failed remediation (until `+"`iap_ha_exporter remediation ack`"+`), or while its journal cannot be trusted (replaced under it, a line it cannot read, a record it could not write; until repaired and restarted).
# TYPE iap_ha_remediation_blocked gauge
iap_ha_remediation_blocked 0
`), "iap_ha_remediation_blocked")
	if err != nil {
		t.Error(err)
	}
	for action, result := range map[string]string{actionPromote: ResultSuccess, actionFence: resultUnreachable, actionActivate: ResultSuccess, actionConfirm: ResultSuccess} {
		if n := testutil.ToFloat64(r.metrics.actions.WithLabelValues(action, result)); n != 1 {
			t.Errorf("actions_total{action=%q,result=%q} = %v, want 1", action, result, n)
		}
	}
	if n := testutil.ToFloat64(r.metrics.lastAction); n < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last action timestamp %v", n)
	}
}

// The same incident from two Alertmanagers a moment apart, then 1,000
// concurrent duplicate deliveries: exactly one action.
func TestDuplicateDeliveriesActOnce(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	first := readTestdata(t, "firing.json")
	second := []byte(strings.Replace(string(first), "http://vm:19093", "http://am-2:9093", 1))

	var wg sync.WaitGroup
	codes := make(chan int, 1002)
	for _, body := range [][]byte{first, second} {
		wg.Go(func() { codes <- r.post(t, body) })
	}
	for range 1000 {
		wg.Go(func() { codes <- r.post(t, first) })
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("a delivery got %d", c)
		}
	}
	recs := r.settle(t)
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v, want exactly one, of iap-dc1-3", got)
	}
	counts := map[string]int{}
	for _, o := range outcomes(recs) {
		counts[o]++
	}
	if counts["iap-dc1-1: success iap-dc1-1 → iap-dc1-3"] != 1 {
		t.Errorf("outcomes %v", counts)
	}
	// The journal, over 1 MiB, was compacted: the decisions are counted by
	// the metric. iap-dc1-1's incident is settled by its action: 1,001
	// duplicates. iap-dc1-2 is up: its refusal settles nothing, each batch
	// verifies it again, and its duplicates within a batch are dedups.
	dedup := testutil.ToFloat64(r.metrics.skipped.WithLabelValues(reasonDedup))
	verified := testutil.ToFloat64(r.metrics.skipped.WithLabelValues(reasonVerificationFailed))
	if dedup < 1001 || dedup+verified != 1001+1002 {
		t.Errorf("dedup %v + verification_failed %v, want 1,001 dedups of iap-dc1-1 and 1,002 decisions of iap-dc1-2", dedup, verified)
	}
}

// Alertmanager retries a notification the receiver answered 5xx; the retry
// is the one acted on, once.
func TestRetryAfterJournalFailure(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.journal_().w.Close() // the disk fails under the writer

	body := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	if code := r.post(t, body); code != http.StatusInternalServerError {
		t.Fatalf("a notification that could not be recorded: %d, want 500", code)
	}
	if code := r.post(t, body); code != http.StatusAccepted {
		t.Fatalf("the retry: %d", code)
	}
	r.settle(t)
	if got := e.activations(); got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v", got)
	}
}

func (r *receiver) journal_() *Journal { return r.Receiver.journal }

// Two Alertmanagers deliver out of order: the resolved notice first. The
// firing that follows is for an incident already over.
func TestResolvedBeforeFiring(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	start := time.Now().Add(-time.Minute)
	r.post(t, alertFor(t, "iap-dc1-1", start, StatusResolved))
	r.post(t, alertFor(t, "iap-dc1-1", start, StatusFiring))
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: resolved", "fp-iap-dc1-1: resolved"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v", got)
	}
}

func TestTruncatedNotificationIsNotActedOn(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	body := strings.ReplaceAll(string(readTestdata(t, "truncated.json")), "iap-dc9-1", "iap-dc1-1")
	r.post(t, []byte(body))
	got := outcomes(r.settle(t))
	if want := []string{"(notification): truncated"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v", got)
	}
}

// A receiver killed after journaling "started": the next one marks the
// action interrupted and blocks; it never runs it again, even when the
// alert is resent; after an ack a new incident is acted on.
func TestRestartInTheMiddleOfAnAction(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := remediationYAML(t, "dc1", "")
	incident := alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring)
	w, _ := decodeWebhook(incident)

	// What the killed process left: the notification, processed, and the start of its action.
	j, err := OpenJournal(e.dir+"/journal-dc1", nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := &Plan{Incident: w.Alerts[0].Incident(), Cluster: "prod", From: "iap-dc1-1", To: "iap-dc1-3", FromSite: "dc1", ToSite: "dc1"}
	err = j.Append(context.Background(),
		record{Kind: kindNotification, ID: "n1", Webhook: w},
		record{Kind: kindProcessed, IDs: []string{"n1"}},
		record{Kind: kindStarted, Incident: plan.Incident, Cluster: "prod", Plan: plan})
	j.Close()
	if err != nil {
		t.Fatal(err)
	}

	e.down(t, "iap-dc1-1")
	r := e.startReceiver(t, yaml, cfg, cfg)
	if b := testutil.ToFloat64(r.metrics.blocked); b != 1 {
		t.Fatalf("blocked = %v after an interrupted action, want 1", b)
	}
	r.post(t, incident)
	r.post(t, alertFor(t, "iap-dc1-2", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	want := []string{"fp-iap-dc1-1: interrupted iap-dc1-1 → iap-dc1-3", "fp-iap-dc1-1: dedup", "fp-iap-dc1-2: blocked"}
	if !equal(got, want) {
		t.Errorf("outcomes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := e.activations(); len(got) != 0 {
		t.Fatalf("activations %v while blocked", got)
	}

	r.ack(t, "ops@example.net", "checked iap-dc1-3 by hand")
	if err := lab.Retry(10*time.Second, 50*time.Millisecond, func() error {
		if testutil.ToFloat64(r.metrics.blocked) != 0 {
			return errString("still blocked")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	r.settle(t)
	if got := e.activations(); got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v after the ack, want one of iap-dc1-3", got)
	}
	if _, _, err := AckAll(context.Background(), r.cur.cfg, r.cur.exporterCfg, "ops", "", nil); !errors.Is(err, ErrNotBlocked) {
		t.Errorf("an ack with nothing blocked, here nor estate-wide: %v, want ErrNotBlocked", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// Two receivers, one per site, fed the same alert at the same moment: one
// promotes, the other finds the lease held. The post-promotion hook keeps
// the lease held long enough for the other to find it so.
func TestTwoReceiversOnePromotion(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	hook := writeScript(t, e.dir, "slow-hook.sh", "sleep 2\n")
	extra := "scripts: {post_promotion: {dc1: [" + hook + "]}}\n"
	r1 := e.startReceiver(t, remediationYAML(t, "dc1", extra), cfg, cfg)
	r2 := e.startReceiver(t, remediationYAML(t, "dc2", extra), cfg, cfg)
	e.down(t, "iap-dc1-1")
	body := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	var wg sync.WaitGroup
	for _, r := range []*receiver{r1, r2} {
		wg.Go(func() { r.post(t, body) })
	}
	wg.Wait()
	got := append(outcomes(r1.settle(t)), outcomes(r2.settle(t))...)
	counts := map[string]int{}
	for _, o := range got {
		counts[o]++
	}
	if counts["fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"] != 1 || counts["fp-iap-dc1-1: lease_held"] != 1 || len(got) != 2 {
		t.Errorf("outcomes %v, want one promotion and one lease_held", got)
	}
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v", got)
	}
}

// iap-dc1-1 is healthy to the exporter's probes, unreachable only from the
// receiver: no action, and an outcome that pages.
func TestUnreachableOnlyFromReceiver(t *testing.T) {
	e := startEstate(t)
	truth := e.config(t, nil)
	closed, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	seenFromHere := e.config(t, map[string]string{"iap-dc1-1": "http://127.0.0.1:" + strconv.Itoa(closed[0])})
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), seenFromHere, truth)
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: unreachable_from_receiver"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v", got)
	}
}

func TestStandbyUnhealthyIsNotPromoted(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	for _, s := range []string{"iap-dc1-3", "iap-dc2-1"} {
		if err := e.sim.Server(s).SetService("mongo", false); err != nil {
			t.Fatal(err)
		}
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: verification_failed"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if n := testutil.ToFloat64(r.metrics.skipped.WithLabelValues(reasonVerificationFailed)); n != 1 {
		t.Errorf(`skipped_total{reason="verification_failed"} = %v`, n)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v", got)
	}
}

// A new episode (a new startsAt) of a server acted on less than the
// cooldown ago is held back: the server flaps.
func TestCooldownAfterAnAction(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, strings.Replace(remediationYAML(t, "dc1", ""), "cooldown: 1ms", "cooldown: 1h", 1), cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.post(t, alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring))
	r.settle(t)
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	want := []string{"fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3", "fp-iap-dc1-1: cooldown"}
	if !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// A promotion that fails blocks every later one until a person acknowledges.
func TestFailedPromotionBlocksUntilAck(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	standby := e.sim.Server("iap-dc1-3")
	if err := standby.SetFault(iapsim.Fault{Mode: iapsim.FaultError, Path: "/workflow_engine/activate"}); err != nil {
		t.Fatal(err)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	r.settle(t)
	if b := testutil.ToFloat64(r.metrics.blocked); b != 1 {
		t.Fatalf("blocked = %v after a failed promotion", b)
	}
	standby.ClearFault()
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	want := []string{"fp-iap-dc1-1: failure iap-dc1-1 → iap-dc1-3", "fp-iap-dc1-1: blocked"}
	if !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if task, _ := standby.Workers(); task {
		t.Fatal("the standby works tasks while blocked")
	}

	r.ack(t, "ops", "activate route fixed")
	if err := lab.Retry(10*time.Second, 50*time.Millisecond, func() error {
		if testutil.ToFloat64(r.metrics.blocked) != 0 {
			return errString("still blocked")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	recs := r.settle(t)
	if task, job := standby.Workers(); !task || !job {
		t.Errorf("after the ack the standby was not promoted: task %v job %v; %v", task, job, outcomes(recs))
	}
}

// Dry-run, the default: the plan is journaled and logged, iapsim untouched.
func TestDryRunChangesNothing(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, strings.Replace(remediationYAML(t, "dc1", ""), "dry_run: false\n", "", 1), cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	recs := r.settle(t)
	if got, want := outcomes(recs), []string{"fp-iap-dc1-1: dry_run"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	for _, rec := range recs {
		if rec.Outcome == reasonDryRun && (rec.Plan == nil || rec.Plan.To != "iap-dc1-3") {
			t.Errorf("the dry run journaled plan %+v", rec.Plan)
		}
	}
	for _, s := range e.sim.Servers() {
		for _, route := range []string{"/workflow_engine/activate", "/workflow_engine/deactivate", "/workflow_engine/jobWorker/activate", "/workflow_engine/jobWorker/deactivate"} {
			if n := s.Requests(route); n > 0 {
				t.Errorf("%s got %d requests for %s in a dry run", s.Name(), n, route)
			}
		}
	}
}

// Without a healthy standby in its own site, the standby of the DR site is
// chosen: only with approval. A person's promote goes through the same gates.
func TestCrossSiteNeedsApproval(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	e.down(t, "iap-dc1-1")
	if err := e.sim.Server("iap-dc1-3").SetService("redis", false); err != nil {
		t.Fatal(err)
	}
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	if got, want := outcomes(r.settle(t)), []string{"fp-iap-dc1-1: cross_site_not_approved"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}

	// A person, with approval configured: first a dry run, then for real.
	approved, err := Parse([]byte(strings.Replace(strings.Replace(remediationYAML(t, "dc1", ""), "clusters: [{name: prod}]", "clusters: [{name: prod, allow_cross_site: true}]", 1), "journal-dc1", "journal-manual", 1)), e.dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	person, err := New(Options{Config: approved, ExporterConfig: cfg, Scrape: scraper(t, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	defer person.Close()
	ctx := context.Background()
	if outcome, detail, err := person.Promote(ctx, "iap-dc1-1", "iap-dc2-1", true); err != nil || outcome != reasonDryRun {
		t.Fatalf("dry run: %s (%s), %v", outcome, detail, err)
	}
	if got := e.activations(); len(got) != 0 {
		t.Fatalf("a dry run activated %v", got)
	}
	if outcome, detail, err := person.Promote(ctx, "iap-dc1-1", "iap-dc2-1", false); err != nil || outcome != OutcomePromoted {
		t.Fatalf("promote: %s (%s), %v", outcome, detail, err)
	}
	if task, job := e.sim.Server("iap-dc2-1").Workers(); !task || !job {
		t.Errorf("iap-dc2-1 workers: task %v job %v", task, job)
	}
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
