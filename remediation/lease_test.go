package remediation

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// Redis replicates asynchronously: a lease written by SET NX to a master
// that fails before a replica has it is lost in the Sentinel failover, and
// a second receiver could take it. WAIT 1 makes the receiver act only on a
// lease a replica acknowledged; with every replica hung it does not act,
// and the resend after they recover does (lease_unavailable settles
// nothing).
func TestLeaseNeedsAReplicaAcknowledgement(t *testing.T) {
	g := redisGroup(t)
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	master, err := g.Master()
	if err != nil {
		t.Fatal(err)
	}
	var paused []string
	resume := func() {
		for _, a := range paused {
			if err := g.Resume(a); err != nil {
				t.Error(err)
			}
		}
		paused = nil
	}
	t.Cleanup(resume)
	for _, a := range g.NodeAddrs() {
		if a == master {
			continue
		}
		if err := g.Pause(a); err != nil {
			t.Fatal(err)
		}
		paused = append(paused, a)
	}
	if len(paused) == 0 {
		t.Fatal("the lab's Sentinel group has no replica")
	}
	e.down(t, "iap-dc1-1")
	incident := alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring)
	r.post(t, incident)
	r.settle(t)
	resume()
	r.post(t, incident)
	got := outcomes(r.settle(t))
	want := []string{"fp-iap-dc1-1: lease_unavailable", "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}
	if !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// SET NX PX expires the key after the TTL whatever its holder does: a lease
// kept while acting is renewed, so it outlives its first TTL; once released
// it is gone.
func TestLeaseKeptWhileActing(t *testing.T) {
	g := redisGroup(t)
	l, err := newLease(g.Config("dc1"), LeaseConfig{TTL: model.Duration(3 * time.Second), KeyPrefix: "test:" + testRun(t) + ":"}, "holder-a")
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	ctx := context.Background()
	if ok, _, err := l.acquire(ctx, "prod"); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	stop := l.keep(ctx, "prod", slog.New(slog.DiscardHandler))
	time.Sleep(7 * time.Second) // more than twice the TTL: only renewals keep it
	holder, err := l.client.Get(ctx, l.key("prod")).Result()
	stop()
	if err != nil || holder != "holder-a" {
		t.Errorf("after twice its TTL the lease is %q (%v), want still holder-a's", holder, err)
	}
	if err := l.release(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := l.acquire(ctx, "prod"); err != nil || !ok {
		t.Errorf("released, the lease could not be taken again: %v %v", ok, err)
	}
}
