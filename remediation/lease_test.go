package remediation

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	if ok, _, _, err := l.acquire(ctx, "prod"); err != nil || !ok {
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
	if ok, _, _, err := l.acquire(ctx, "prod"); err != nil || !ok {
		t.Errorf("released, the lease could not be taken again: %v %v", ok, err)
	}
}

// A lease that expired while its holder still worked (a pause longer than
// the TTL) was taken by another receiver: the first must not take another
// step. Simulated by a pre-check script that hands the lease to another
// holder, as SET NX by a second receiver after the expiry would. Every
// step, scripts included, receives the fencing token the lease was taken
// with, a counter that grows with every lease.
func TestLeaseLostBeforeTheStepsStopsThem(t *testing.T) {
	g := redisGroup(t)
	e := startEstate(t)
	cfg := e.config(t, nil)
	master, err := g.Master()
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(master, ":")
	key := "test:" + testRun(t) + ":lease:prod"
	steal := writeScript(t, e.dir, "steal.sh", fmt.Sprintf("redis-cli -h %s -p %s SET '%s' other-receiver >/dev/null\n", host, port, key))
	r := e.startReceiver(t, remediationYAML(t, "dc1", "scripts: {pre_check: ["+steal+"]}\n"), cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: lease_held"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v after the lease was lost", got)
	}
}

func TestStepsReceiveTheFencingToken(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	out := filepath.Join(e.dir, "tokens")
	hook := writeScript(t, e.dir, "token.sh", "echo \"$IAP_HA_FENCING_TOKEN\" >> "+out+"\n")
	yaml := strings.Replace(remediationYAML(t, "dc1", "scripts: {post_promotion: {dc1: ["+hook+"], dc2: ["+hook+"]}}\n"),
		"clusters: [{name: prod}]", "clusters: [{name: prod, allow_cross_site: true}]", 1)
	r := e.startReceiver(t, yaml, cfg, cfg)
	for _, s := range []string{"iap-dc1-1", "iap-dc1-2"} {
		e.down(t, s)
		r.post(t, alertFor(t, s, time.Now(), StatusFiring))
		r.settle(t)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if len(lines) != 2 {
		t.Fatalf("tokens %q, want one for each of two promotions", lines)
	}
	first, err1 := strconv.ParseInt(lines[0], 10, 64)
	second, err2 := strconv.ParseInt(lines[1], 10, 64)
	if err1 != nil || err2 != nil || first < 1 || second <= first {
		t.Errorf("fencing tokens %q, want two growing positive integers", lines)
	}
}
