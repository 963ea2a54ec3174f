package remediation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// Alertmanager resends a firing alert every repeat_interval with the same
// fingerprint and startsAt: one incident. A gate that only holds for a while
// (paused here) must leave it open, so that the resend after the pause acts.
func TestPausedIncidentIsReevaluatedOnResend(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	pause := filepath.Join(e.dir, "pause")
	if err := os.WriteFile(pause, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.startReceiver(t, remediationYAML(t, "dc1", "pause_file: "+pause+"\n"), cfg, cfg)
	e.down(t, "iap-dc1-1")
	incident := alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring)
	r.post(t, incident)
	r.settle(t)
	if err := os.Remove(pause); err != nil {
		t.Fatal(err)
	}
	r.post(t, incident) // the repeat_interval resend
	got := outcomes(r.settle(t))
	want := []string{"fp-iap-dc1-1: paused", "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}
	if !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v, want one of iap-dc1-3", got)
	}
}

// A verification that failed (no healthy standby then) is not the last word
// on the incident: once a standby is healthy, the resend promotes it.
func TestFailedVerificationIsReevaluatedOnResend(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	for _, s := range []string{"iap-dc1-3", "iap-dc2-1"} {
		if err := e.sim.Server(s).SetService("mongo", false); err != nil {
			t.Fatal(err)
		}
	}
	incident := alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring)
	r.post(t, incident)
	r.settle(t)
	if err := e.sim.Server("iap-dc1-3").SetService("mongo", true); err != nil {
		t.Fatal(err)
	}
	r.post(t, incident)
	got := outcomes(r.settle(t))
	want := []string{"fp-iap-dc1-1: verification_failed", "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}
	if !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// Losing a site's two actives asks for two promotions within one cooldown:
// the cooldown guards a server against flapping, it does not stop the
// second failed server. A new incident of a server acted on less than the
// cooldown ago is held back, and the HA model's "working >= declared" stays
// the stop for anything more.
func TestCooldownGuardsTheServerNotTheSecondFailure(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "cooldown: 1ms", "cooldown: 1h", 1)
	yaml = strings.Replace(yaml, "clusters: [{name: prod}]", "clusters: [{name: prod, allow_cross_site: true}]", 1)
	r := e.startReceiver(t, yaml, cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.post(t, alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring))
	r.settle(t)
	e.down(t, "iap-dc1-2")
	r.post(t, alertFor(t, "iap-dc1-2", time.Now().Add(-time.Minute), StatusFiring))
	r.settle(t)
	// iap-dc1-1 flaps: a new episode (a new startsAt) of a server acted on.
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	recs := r.settle(t)
	got := outcomes(recs)
	want := []string{
		"fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3",
		"fp-iap-dc1-2: success iap-dc1-2 → iap-dc2-1",
		"fp-iap-dc1-1: cooldown",
	}
	if !equal(got, want) {
		t.Errorf("outcomes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	started := 0
	for _, rec := range recs {
		if rec.Kind == kindStarted {
			started++
		}
	}
	if started != 2 {
		t.Errorf("%d actions started, want 2", started)
	}
	for _, s := range []string{"iap-dc1-3", "iap-dc2-1"} {
		if task, job := e.sim.Server(s).Workers(); !task || !job {
			t.Errorf("%s workers: task %v job %v, want both running", s, task, job)
		}
	}
	if n := testutil.ToFloat64(r.metrics.skipped.WithLabelValues(reasonCooldown)); n != 1 {
		t.Errorf("skipped_total{reason=cooldown} = %v, want 1", n)
	}
}

// A refusal that holds for a while is not a decision a person hears of by
// itself: the declined gauge counts the open incidents by the reason last
// given, until an action or Alertmanager's resolved notice closes them.
func TestDeclinedIncidentsAreShownUntilClosed(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	pause := filepath.Join(e.dir, "pause")
	if err := os.WriteFile(pause, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.startReceiver(t, remediationYAML(t, "dc1", "pause_file: "+pause+"\n"), cfg, cfg)
	declined := func(reason string) float64 {
		return testutil.ToFloat64(r.metrics.declined.WithLabelValues(reason))
	}
	// The worker sets the gauge once it has read back what it journaled,
	// a moment after settle sees the journal.
	expect := func(when string, want map[string]float64) {
		t.Helper()
		err := lab.Retry(10*time.Second, 10*time.Millisecond, func() error {
			for reason, n := range want {
				if got := declined(reason); got != n {
					return fmt.Errorf("%s: declined{reason=%q} = %v, want %v", when, reason, got, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	e.down(t, "iap-dc1-1")
	start := time.Now().Add(-time.Minute)
	first := alertFor(t, "iap-dc1-1", start, StatusFiring)
	second := alertFor(t, "iap-dc1-2", start, StatusFiring) // iap-dc1-2 is up
	r.post(t, first)
	r.post(t, second)
	r.settle(t)
	expect("paused", map[string]float64{reasonPaused: 2})
	if err := os.Remove(pause); err != nil {
		t.Fatal(err)
	}
	r.post(t, first)  // acted on: closed
	r.post(t, second) // up: declined again, for another reason
	r.settle(t)
	expect("after the pause", map[string]float64{reasonPaused: 0, reasonVerificationFailed: 1})
	r.post(t, alertFor(t, "iap-dc1-2", start, StatusResolved))
	r.settle(t)
	expect("after the resolved notice", map[string]float64{reasonVerificationFailed: 0})
}

// One vantage point: the receiver's probes and its own health check run
// from one host. A failed server that does not answer there cannot be told
// from a partition between the two, and the fence cannot reach it: without
// allow_single_vantage the receiver refuses (and says so), it does not
// start a standby beside what may be a live active.
func TestSingleVantageRefusesAnUnreachableFence(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "allow_single_vantage: true\n", "", 1)
	r := e.startReceiver(t, yaml, cfg, cfg)
	if n := testutil.ToFloat64(r.metrics.vantagePoints); n != 1 {
		t.Errorf("vantage_points = %v, want 1", n)
	}
	if st := r.Status(); !st.SingleVantage {
		t.Errorf("status %+v does not say the receiver trusts one vantage point", st)
	}
	e.down(t, "iap-dc1-1") // the port refuses: the fence cannot reach it
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: single_vantage"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v", got)
	}
	if err := lab.Retry(10*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(r.metrics.declined.WithLabelValues(reasonSingleVantage)); n != 1 {
			return fmt.Errorf(`declined{reason="single_vantage"} = %v, want 1`, n)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
