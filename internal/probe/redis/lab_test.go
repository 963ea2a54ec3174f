package redis

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	goredis "github.com/redis/go-redis/v9"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// These tests run against real redis-server and redis-sentinel processes
// (installed by the lab when missing). A lab that cannot start fails the test.

func startGroup(t *testing.T, opts lab.SentinelOptions) *lab.SentinelGroup {
	t.Helper()
	g, err := lab.StartSentinelGroup(opts)
	if err != nil {
		t.Fatalf("starting the Redis lab: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("stopping the Redis lab: %v", err)
		}
	})
	return g
}

func labClient(t *testing.T, cfg config.SentinelGroup) *Client {
	t.Helper()
	cfg.Timeout = model.Duration(time.Second)
	return newTestClient(t, cfg)
}

// waitFor probes until cond holds, and fails the test with the last reason
// and snapshot when it does not within timeout.
func waitFor(t *testing.T, p *Client, timeout time.Duration, cond func(topology.SentinelGroup) error) topology.SentinelGroup {
	t.Helper()
	var g topology.SentinelGroup
	err := lab.Retry(timeout, 100*time.Millisecond, func() error {
		g = p.Probe(context.Background())
		return cond(g)
	})
	if err != nil {
		t.Fatalf("after %s: %v\nlast snapshot: %+v", timeout, err, g)
	}
	return g
}

// failuresTolerated is what the HA model makes of the probed group: the
// smaller of reachable Sentinels − max(quorum, majority of Sentinels) and
// the promotable replicas; -1 when the model cannot judge it.
func failuresTolerated(g topology.SentinelGroup) int {
	v := topology.Evaluate(&config.Config{}, &topology.Snapshot{Redis: []topology.SentinelGroup{g}})
	for _, c := range v.Components {
		if c.Component == topology.ComponentRedis {
			return c.FailuresTolerated
		}
	}
	return -1
}

// healthyReplicas counts the replicas a failover could promote: answering,
// linked to their master, priority > 0.
func healthyReplicas(g topology.SentinelGroup) int {
	n := 0
	for _, r := range g.Nodes {
		if r.Up && r.Role == topology.RedisReplica && r.MasterLinkUp && r.ReplicaPriority > 0 {
			n++
		}
	}
	return n
}

func masters(g topology.SentinelGroup) []string {
	var out []string
	for _, v := range g.Sentinels {
		if v.Up && !slices.Contains(out, v.MasterAddress) {
			out = append(out, v.MasterAddress)
		}
	}
	return out
}

func node(g topology.SentinelGroup, addr string) topology.RedisNode {
	for _, n := range g.Nodes {
		if n.Address == addr {
			return n
		}
	}
	return topology.RedisNode{}
}

// settled is the healthy state: every Sentinel up, one master, CKQUORUM OK
// everywhere, no failover running, every replica linked.
func settled(replicas int) func(topology.SentinelGroup) error {
	return func(g topology.SentinelGroup) error {
		for _, v := range g.Sentinels {
			if !v.Up || !v.CKQuorumOK || v.FailoverInProgress {
				return fmt.Errorf("sentinel %s: up %v, ckquorum %q, failover %v %s", v.Address, v.Up, v.CKQuorum, v.FailoverInProgress, v.Error)
			}
		}
		if m := masters(g); len(m) != 1 {
			return fmt.Errorf("masters %v", m)
		}
		linked := 0
		for _, n := range g.Nodes {
			if n.Up && n.Role == topology.RedisReplica && n.MasterLinkUp && n.MasterAddress == masters(g)[0] {
				linked++
			}
		}
		if linked != replicas {
			return fmt.Errorf("%d replicas linked, want %d", linked, replicas)
		}
		return nil
	}
}

func TestLabHealthyGroup(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{Site: "dc1", SentinelSites: []string{"dc1", "dc2", "dc3"}})
	cfg := g.Config("dc1")
	cfg.NodeSites = map[string]string{g.Nodes[2].Addr: "dc2"}
	p := labClient(t, cfg)

	got := waitFor(t, p, 10*time.Second, settled(2))
	if got.Name != "dc1" || got.MasterName != "itentialmaster" || got.Quorum != 2 {
		t.Errorf("group %q %q quorum %d", got.Name, got.MasterName, got.Quorum)
	}
	for i, v := range got.Sentinels {
		if v.Site != []string{"dc1", "dc2", "dc3"}[i] || v.KnownSentinels != 3 || v.KnownReplicas != 2 || v.MasterAddress != g.Nodes[0].Addr {
			t.Errorf("sentinel %d: %+v", i, v)
		}
	}
	if len(got.Nodes) != 3 {
		t.Fatalf("nodes %+v", got.Nodes)
	}
	master := node(got, g.Nodes[0].Addr)
	if !master.Up || master.Role != topology.RedisMaster || master.ConnectedReplicas != 2 {
		t.Errorf("master %+v", master)
	}
	for _, r := range g.Nodes[1:] {
		n := node(got, r.Addr)
		if !n.HasLag || n.LagBytes < 0 || n.ReplicaPriority != 100 {
			t.Errorf("replica %+v", n)
		}
	}
	if s := node(got, g.Nodes[2].Addr).Site; s != "dc2" {
		t.Errorf("node_sites not applied: site %q", s)
	}
	if ft := failuresTolerated(got); ft != 1 {
		t.Errorf("failures tolerated %d, want 1", ft)
	}
}

// Five Sentinels (quorum 3) so that the Sentinel side (5 − 3 = 2) does not
// bound failures tolerated and the replicas' drop shows.
func TestLabMasterKilled(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{Sentinels: 5, Quorum: 3})
	p := labClient(t, g.Config("dc1"))
	before := waitFor(t, p, 10*time.Second, settled(2))
	if ft, n := failuresTolerated(before), healthyReplicas(before); ft != 2 || n != 2 {
		t.Fatalf("before the kill: failures tolerated %d, promotable replicas %d; want 2 and 2", ft, n)
	}

	old, err := g.KillMaster()
	if err != nil {
		t.Fatal(err)
	}
	after := waitFor(t, p, 30*time.Second, func(s topology.SentinelGroup) error {
		if m := masters(s); len(m) != 1 || m[0] == old {
			return fmt.Errorf("masters %v, old %s", m, old)
		}
		for _, v := range s.Sentinels {
			if v.FailoverInProgress || v.ConfigEpoch <= before.Sentinels[0].ConfigEpoch {
				return fmt.Errorf("sentinel %s: failover %v, epoch %d", v.Address, v.FailoverInProgress, v.ConfigEpoch)
			}
		}
		// The Sentinels reconfigure the surviving replica only after the
		// failover, and on a busy machine a second election can come first
		// (epoch 3, the first winner still a master): wait until every node
		// that answers is the new master or a replica that has synced with it.
		newMaster := masters(s)[0]
		for _, n := range s.Nodes {
			if n.Up && n.Address != newMaster && (n.Role != topology.RedisReplica || n.MasterAddress != newMaster || !n.MasterLinkUp) {
				return fmt.Errorf("node %s: %s of %q, link up %v", n.Address, n.Role, n.MasterAddress, n.MasterLinkUp)
			}
		}
		return nil
	})
	if n := node(after, old); n.Up || n.Error == "" {
		t.Errorf("old master %+v, want down with an error", n)
	}
	// The data side drops from 2 promotable replicas to 1.
	if n := healthyReplicas(after); n != 1 {
		t.Errorf("%d promotable replicas with the old master dead, want 1", n)
	}
	if ft := failuresTolerated(after); ft != 1 {
		t.Errorf("failures tolerated %d with the old master dead, want 1", ft)
	}

	if err := g.Restart(old); err != nil {
		t.Fatal(err)
	}
	back := waitFor(t, p, 30*time.Second, settled(2))
	if n := node(back, old); !n.Up || n.Role != topology.RedisReplica || !n.MasterLinkUp {
		t.Errorf("old master back as %+v, want a linked replica", n)
	}
	if n := healthyReplicas(back); n != 2 {
		t.Errorf("%d promotable replicas after the old master returned, want 2", n)
	}
	if ft := failuresTolerated(back); ft != 2 {
		t.Errorf("failures tolerated %d after the old master returned, want 2 again", ft)
	}
}

func TestLabTwoSentinelsKilled(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{})
	p := labClient(t, g.Config("dc1"))
	waitFor(t, p, 10*time.Second, settled(2))
	for _, i := range []int{1, 2} {
		if err := g.KillSentinel(i); err != nil {
			t.Fatal(err)
		}
	}
	// The survivor needs a moment (down-after 1 s) to see its peers gone.
	got := waitFor(t, p, 15*time.Second, func(s topology.SentinelGroup) error {
		if v := s.Sentinels[0]; v.CKQuorumOK {
			return fmt.Errorf("survivor still says %q", v.CKQuorum)
		}
		return nil
	})
	reachable := 0
	for _, v := range got.Sentinels {
		if v.Up {
			reachable++
		}
	}
	if reachable != 1 || !strings.HasPrefix(got.Sentinels[0].CKQuorum, "NOQUORUM") {
		t.Errorf("reachable %d, survivor %+v", reachable, got.Sentinels[0])
	}
	if reachable >= got.Quorum {
		t.Errorf("quorum-lost condition not visible: reachable %d, quorum %d", reachable, got.Quorum)
	}
	if ft := failuresTolerated(got); ft != 0 {
		t.Errorf("failures tolerated %d, want 0", ft)
	}
}

func TestLabReplicaKilled(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{Sentinels: 5, Quorum: 3})
	p := labClient(t, g.Config("dc1"))
	before := waitFor(t, p, 10*time.Second, settled(2))

	dead, err := g.KillReplica()
	if err != nil {
		t.Fatal(err)
	}
	got := p.Probe(context.Background())
	if n := node(got, dead); n.Up || n.MasterLinkUp || n.Role != topology.RedisReplica || n.HasLag {
		t.Errorf("killed replica %+v, want down, link down, still a replica", n)
	}
	if a, b := healthyReplicas(got), healthyReplicas(before); a != 1 || b != 2 {
		t.Errorf("promotable replicas %d after the kill, %d before; want 1 and 2", a, b)
	}
	if a, b := failuresTolerated(got), failuresTolerated(before); a != 1 || b != 2 {
		t.Errorf("failures tolerated %d after the kill, %d before; want 1 and 2", a, b)
	}
}

// A fourth Sentinel that monitors another master under the same name, as
// when two sites' groups both use itentialmaster and one Sentinel is listed
// under the wrong group.
func TestLabRogueSentinel(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{})
	rogue := startGroup(t, lab.SentinelOptions{NoReplicas: true, Sentinels: 1})
	cfg := g.Config("dc1")
	cfg.Sentinels = append(cfg.Sentinels, config.Sentinel{Address: rogue.Sentinels[0].Addr})
	p := labClient(t, cfg)

	got := p.Probe(context.Background())
	if m := masters(got); len(m) != 2 || !slices.Contains(m, g.Nodes[0].Addr) || !slices.Contains(m, rogue.Nodes[0].Addr) {
		t.Errorf("distinct masters %v, want %s and %s", m, g.Nodes[0].Addr, rogue.Nodes[0].Addr)
	}
	if v := got.Sentinels[3]; v.KnownSentinels != 1 {
		t.Errorf("the rogue Sentinel knows %d Sentinels, want 1", v.KnownSentinels)
	}
}

// Passwords, and ACL users allowed exactly the read-only commands the probe
// sends: what README recommends, and proof that it sends nothing else.
func TestLabAuthentication(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{Password: "node-secret", SentinelPassword: "sentinel-secret"})
	good := labClient(t, g.Config("dc1"))
	waitFor(t, good, 10*time.Second, settled(2))

	ctx := context.Background()
	for i := range g.Sentinels {
		c := g.Sentinel(i)
		err := c.Process(ctx, goredis.NewStatusCmd(ctx, "acl", "setuser", "exporter", "on", ">exporter-secret", "-@all",
			"+sentinel|master", "+sentinel|replicas", "+sentinel|sentinels", "+sentinel|ckquorum", "+info"))
		c.Close()
		if err != nil {
			t.Fatalf("ACL SETUSER on a Sentinel: %v", err)
		}
	}
	for _, addr := range g.NodeAddrs() {
		c := g.Client(addr)
		err := c.Do(ctx, "acl", "setuser", "exporter", "on", ">exporter-secret", "-@all", "+info").Err()
		c.Close()
		if err != nil {
			t.Fatalf("ACL SETUSER on a data node: %v", err)
		}
	}
	acl := g.Config("dc1")
	acl.SentinelAuth = config.Credentials{Username: "exporter", Password: "exporter-secret"}
	acl.Auth = config.Credentials{Username: "exporter", Password: "exporter-secret"}
	waitFor(t, labClient(t, acl), 10*time.Second, settled(2))

	cfg := g.Config("dc1")
	cfg.SentinelAuth.Password = promconfig.Secret("wrong-secret")
	got := labClient(t, cfg).Probe(context.Background())
	for _, v := range got.Sentinels {
		if v.Up || v.Error == "" || strings.Contains(v.Error, "secret") {
			t.Errorf("sentinel with a wrong password: up %v, error %q", v.Up, v.Error)
		}
	}
}

// A dead Sentinel costs nothing that grows: its dials fail fast, and the
// pools stay as they are scrape after scrape. A hung one costs its timeout.
func TestLabDeadAndHungSentinel(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{})
	p := labClient(t, g.Config("dc1"))
	waitFor(t, p, 10*time.Second, settled(2))
	if err := g.KillSentinel(2); err != nil {
		t.Fatal(err)
	}
	for range 5 { // let the pools reach their steady state
		p.Probe(context.Background())
	}
	goroutines := runtime.NumGoroutine()
	for range 50 {
		got := p.Probe(context.Background())
		if got.Sentinels[2].Up || !got.Sentinels[0].Up {
			t.Fatalf("sentinels %+v", got.Sentinels)
		}
	}
	// Slack for the runtime's own goroutines and go-redis' one redial loop per dead pool.
	if now := runtime.NumGoroutine(); now > goroutines+3 {
		t.Errorf("goroutines grew from %d to %d over 50 probes with a dead Sentinel", goroutines, now)
	}
	for i, c := range p.sentinels {
		if st := c.PoolStats(); st.TotalConns > 2 {
			t.Errorf("sentinel %d holds %d connections", i, st.TotalConns)
		}
	}

	// A hung Sentinel keeps its port open and never answers.
	hung := g.Sentinels[1].Addr
	if err := g.Pause(hung); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Resume(hung) })
	start := time.Now()
	got := p.Probe(context.Background())
	if took := time.Since(start); took > 5*time.Second { // timeout 1 s, generous bound
		t.Errorf("a probe with a hung Sentinel took %s", took)
	}
	if v := got.Sentinels[1]; v.Up || !strings.Contains(v.Error, "no answer within") {
		t.Errorf("hung sentinel %+v", v)
	}

	// The scrape deadline bounds the whole probe, too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	got = p.Probe(ctx)
	if v := got.Sentinels[1]; v.Error != "no answer before the scrape deadline" {
		t.Errorf("hung sentinel under the scrape deadline: %q", v.Error)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a probe under a 200 ms deadline took %s", took)
	}
}

// One hung Sentinel under a scrape deadline shorter than the group's
// timeout (Prometheus's 1 s scrape timeout leaves the exporter 0.5 s) must
// not hide the Sentinels that answered: the group's probe ends before the
// deadline the probe.Set waits for, with the hung one down and the others
// up, scrape after scrape. Found by the built binary against a stalled
// Sentinel (TestBinarySentinelTILTTakesASentinelOutOfTheQuorum): the probe
// and the Set's deadline raced, and now and then the whole group read down.
func TestLabHungSentinelHidesNoOther(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{})
	set, err := New([]config.SentinelGroup{g.Config("dc1")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	hung := g.Sentinels[1].Addr
	if err := g.Pause(hung); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Resume(hung) })
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		got := set.Probe(ctx)[0]
		cancel()
		for j, v := range got.Sentinels {
			if v.Up == (v.Address == hung) {
				t.Fatalf("probe %d: Sentinel %d %+v; want only %s down", i, j, v, hung)
			}
		}
	}
}

func TestLabTLS(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{TLS: true})
	p := labClient(t, g.Config("dc1"))
	waitFor(t, p, 10*time.Second, settled(2))

	// Another CA's certificate is refused, and the error says why.
	other, err := lab.WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := g.Config("dc1")
	cfg.TLS = &promconfig.TLSConfig{CAFile: other.CAFile}
	got := labClient(t, cfg).Probe(context.Background())
	for _, v := range got.Sentinels {
		if v.Up || !strings.Contains(v.Error, "certificate") {
			t.Errorf("sentinel trusted with the wrong CA: up %v, error %q", v.Up, v.Error)
		}
	}
}

// Issue 19, item 5: a replica made master by hand (REPLICAOF NO ONE) answers
// role:master beside the master the Sentinels follow. The Sentinels still
// agree, so only the data nodes show the two heads, until the Sentinels
// turn it back into a replica.
func TestLabTwoMasters(t *testing.T) {
	t.Parallel()
	g := startGroup(t, lab.SentinelOptions{})
	p := labClient(t, g.Config("dc1"))
	waitFor(t, p, 10*time.Second, settled(2))
	rogue := g.Nodes[1].Addr
	c := g.Client(rogue)
	defer c.Close()
	if err := c.ReplicaOf(context.Background(), "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, p, 10*time.Second, func(s topology.SentinelGroup) error {
		if n := node(s, rogue); !n.Up || n.Role != topology.RedisMaster {
			return fmt.Errorf("%s: %+v, want it answering as master", rogue, n)
		}
		return nil
	})
	if m := masters(got); len(m) != 1 {
		t.Errorf("the Sentinels disagree (%v): the case is two data nodes, one Sentinel view", m)
	}
	if sb := got.Split(); !sb.Active || !strings.Contains(sb.Reason, rogue) {
		t.Errorf("split brain %+v, want it active and naming %s", sb, rogue)
	}
}
