package remediation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
)

// openShared is what the ack, pause and resume commands open: the estate's
// remediation state in the lease's Redis, as the receivers of yaml see it.
func (e *estate) openShared(t *testing.T, yaml string) *Shared {
	t.Helper()
	cfg := e.config(t, nil)
	rc, err := Parse([]byte(yaml), e.dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenShared(rc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// otherSite is yaml for the receiver of site dc2: a journal of its own, the
// same lease and keys.
func otherSite(yaml string) string {
	yaml = strings.Replace(yaml, "site: dc1", "site: dc2", 1)
	return strings.Replace(yaml, "journal_file: journal-dc1", "journal_file: journal-dc2", 1)
}

// lastOutcome is the last decision or action result in a receiver's journal.
func lastOutcome(t *testing.T, r *receiver) string {
	t.Helper()
	got := outcomes(r.settle(t))
	if len(got) == 0 {
		return ""
	}
	return got[len(got)-1]
}

// A promotion left half done (the standby refused to activate) blocks the
// estate, not only the receiver that ran it: the other site's receiver,
// sharing the lease's Redis, declines its own incident as blocked until a
// person acknowledges; the ack unblocks both.
func TestFailedActionBlocksEveryReceiverUntilAck(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "clusters: [{name: prod}]", "clusters: [{name: prod, allow_cross_site: true}]", 1)
	a := e.startReceiver(t, yaml, cfg, cfg)
	b := e.startReceiver(t, otherSite(yaml), cfg, cfg)
	standby := e.sim.Server("iap-dc1-3")
	if err := standby.SetFault(iapsim.Fault{Mode: iapsim.FaultError, Path: "/workflow_engine/activate"}); err != nil {
		t.Fatal(err)
	}
	e.down(t, "iap-dc1-1")
	a.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	if got, want := lastOutcome(t, a), "fp-iap-dc1-1: failure iap-dc1-1 → iap-dc1-3"; got != want {
		t.Fatalf("receiver A: %q, want %q", got, want)
	}
	standby.ClearFault()

	e.down(t, "iap-dc1-2")
	second := alertFor(t, "iap-dc1-2", time.Now(), StatusFiring)
	b.post(t, second)
	if got, want := lastOutcome(t, b), "fp-iap-dc1-2: blocked"; got != want {
		t.Fatalf("receiver B while A is blocked: %q, want %q", got, want)
	}
	if n := e.activations()["iap-dc2-1"] + e.activations()["iap-dc1-3"]; n != 1 {
		t.Fatalf("%d activations, want the one of A's failed attempt", n)
	}

	if _, _, err := ack(context.Background(), a.journal, "ops", "checked iap-dc1-3", nil); err != nil {
		t.Fatal(err)
	}
	was, err := e.openShared(t, yaml).Unblock(context.Background())
	if err != nil || !strings.Contains(was, "iap-dc1-3") {
		t.Fatalf("unblock: %q, %v; want the failure of A's action", was, err)
	}
	b.post(t, second)
	if got, want := lastOutcome(t, b), "fp-iap-dc1-2: success iap-dc1-2 → iap-dc1-3"; got != want {
		t.Errorf("receiver B after the ack: %q, want %q", got, want)
	}
}

// `remediation pause` holds every receiver of the estate, not one host's:
// both decline while paused, and the resend after `resume` acts.
func TestPauseHoldsEveryReceiver(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := remediationYAML(t, "dc1", "")
	a := e.startReceiver(t, yaml, cfg, cfg)
	b := e.startReceiver(t, otherSite(yaml), cfg, cfg)
	shared := e.openShared(t, yaml)
	if err := shared.Pause(context.Background(), "ops", "maintenance of dc1"); err != nil {
		t.Fatal(err)
	}
	e.down(t, "iap-dc1-1")
	incident := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	for name, r := range map[string]*receiver{"A": a, "B": b} {
		r.post(t, incident)
		if got, want := lastOutcome(t, r), "fp-iap-dc1-1: paused"; got != want {
			t.Errorf("receiver %s while paused: %q, want %q", name, got, want)
		}
	}
	if was, err := shared.Resume(context.Background()); err != nil || !strings.Contains(was, "maintenance of dc1") {
		t.Fatalf("resume: %q, %v", was, err)
	}
	b.post(t, incident)
	if got, want := lastOutcome(t, b), "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"; got != want {
		t.Errorf("receiver B after resume: %q, want %q", got, want)
	}
}

// The cooldown guards a server against flapping whichever receiver acted.
// Receiver A promotes iap-dc1-3 in place of iap-dc1-1; then iap-dc1-3's
// workers stop again (it flaps back to standby), so the estate again works
// with fewer servers than declared active, and a new episode of the
// iap-dc1-1 alert reaches receiver B: B holds back (cooldown of both
// servers), it does not activate iap-dc1-3 a second time.
func TestCooldownHoldsEveryReceiver(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "cooldown: 1ms", "cooldown: 1h", 1)
	a := e.startReceiver(t, yaml, cfg, cfg)
	b := e.startReceiver(t, otherSite(yaml), cfg, cfg)
	e.down(t, "iap-dc1-1")
	a.post(t, alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring))
	if got, want := lastOutcome(t, a), "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"; got != want {
		t.Fatalf("receiver A: %q, want %q", got, want)
	}
	e.sim.Server("iap-dc1-3").SetWorkers(false, false)
	b.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	if got, want := lastOutcome(t, b), "fp-iap-dc1-1: cooldown"; got != want {
		t.Errorf("receiver B within A's cooldown: %q, want %q", got, want)
	}
	if n := e.activations()["iap-dc1-3"]; n != 1 {
		t.Errorf("iap-dc1-3 activated %d times, want once", n)
	}
}
