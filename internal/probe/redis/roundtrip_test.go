package redis

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Offsets the fake data nodes report: every replica lags its master by 100.
const (
	fakeMasterOffset  = 1000
	fakeReplicaOffset = 900
)

// fakeGroup is one Sentinel and its data nodes served over TCP, every reply
// a delay after its command, as across a WAN. What the Sentinel names can
// change between probes; a node answers INFO replication as master or
// replica of whatever the Sentinel names now.
type fakeGroup struct {
	sentinel string
	nodes    map[string]*fakeNode // by name

	mu    sync.Mutex
	named []string // names of the nodes the Sentinel lists, master first; none: it knows no such master
}

type fakeNode struct {
	addr  string
	asked atomic.Int64 // INFO replication commands received
}

// startFakeGroup serves the Sentinel and one data node per name; the nodes
// named in hung read commands and never answer.
func startFakeGroup(t testing.TB, delay time.Duration, names []string, hung ...string) *fakeGroup {
	t.Helper()
	g := &fakeGroup{nodes: map[string]*fakeNode{}}
	g.sentinel = serveRESP(t, delay, g.sentinelReply)
	for _, name := range names {
		n := &fakeNode{}
		n.addr = serveRESP(t, delay, func(args []string) []byte {
			if !isInfo(args, "replication") {
				return unknownCommand(args)
			}
			n.asked.Add(1)
			if slices.Contains(hung, name) {
				return nil
			}
			return respBulk(g.info(name))
		})
		g.nodes[name] = n
	}
	return g
}

func (g *fakeGroup) name(names ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.named = names
}

func (g *fakeGroup) current() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.named
}

// asked returns how many INFO replication commands each node has received.
func (g *fakeGroup) asked() map[string]int64 {
	out := map[string]int64{}
	for name, n := range g.nodes {
		out[name] = n.asked.Load()
	}
	return out
}

func (g *fakeGroup) sentinelReply(args []string) []byte {
	named := g.current()
	switch {
	case strings.EqualFold(args[0], "info"):
		return respBulk("# Sentinel\r\nsentinel_masters:1\r\nsentinel_tilt:0\r\n")
	case len(args) < 2 || !strings.EqualFold(args[0], "sentinel"):
		return unknownCommand(args)
	case len(named) == 0:
		return []byte("-ERR No such master with that name\r\n")
	}
	master := g.nodes[named[0]].addr
	switch strings.ToLower(args[1]) {
	case "master":
		return respMap(addrFields(master, "flags", "master", "quorum", "1", "config-epoch", "0",
			"num-slaves", fmt.Sprint(len(named)-1))...)
	case "replicas":
		var replicas [][]byte
		for _, name := range named[1:] {
			host, port, _ := net.SplitHostPort(master)
			replicas = append(replicas, respMap(addrFields(g.nodes[name].addr, "flags", "slave",
				"master-host", host, "master-port", port, "master-link-status", "ok", "slave-priority", "100")...))
		}
		return respArray(replicas...)
	case "sentinels":
		return respArray()
	case "ckquorum":
		return []byte("+OK 1 usable Sentinels. Quorum and failover authorization can be reached\r\n")
	}
	return unknownCommand(args)
}

// info is node name's INFO replication as the Sentinel's current view has it.
func (g *fakeGroup) info(name string) string {
	named := g.current()
	if len(named) == 0 || named[0] == name || !slices.Contains(named, name) {
		return fmt.Sprintf("# Replication\r\nrole:master\r\nconnected_slaves:%d\r\nmaster_repl_offset:%d\r\n",
			max(len(named)-1, 0), fakeMasterOffset)
	}
	host, port, _ := net.SplitHostPort(g.nodes[named[0]].addr)
	return fmt.Sprintf("# Replication\r\nrole:slave\r\nmaster_host:%s\r\nmaster_port:%s\r\nmaster_link_status:up\r\n"+
		"slave_repl_offset:%d\r\nslave_priority:100\r\nconnected_slaves:0\r\n", host, port, fakeReplicaOffset)
}

// wantNodes is the snapshot's nodes when names are named, as the probe has
// always built it: the Sentinel's view, overridden by each node's own answer.
func (g *fakeGroup) wantNodes(named []string, hung []string, timeout time.Duration) []topology.RedisNode {
	out := []topology.RedisNode{}
	for i, name := range named {
		n := topology.RedisNode{Address: g.nodes[name].addr, Site: "dc1", Up: true}
		switch {
		case i == 0:
			n.Role, n.ConnectedReplicas, n.ReplOffset = topology.RedisMaster, len(named)-1, fakeMasterOffset
		case slices.Contains(hung, name):
			n.Up, n.Error = false, fmt.Sprintf("no answer within %s", timeout)
			n.Role, n.MasterAddress, n.ReplicaPriority = topology.RedisReplica, g.nodes[named[0]].addr, 100
		default:
			n.Role, n.MasterAddress, n.MasterLinkUp, n.ReplicaPriority = topology.RedisReplica, g.nodes[named[0]].addr, true, 100
			n.ReplOffset, n.LagBytes, n.HasLag = fakeReplicaOffset, fakeMasterOffset-fakeReplicaOffset, true
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b topology.RedisNode) int { return strings.Compare(a.Address, b.Address) })
	return out
}

func isInfo(args []string, section string) bool {
	return strings.EqualFold(args[0], "info") && len(args) == 2 && strings.EqualFold(args[1], section)
}

func addrFields(addr string, kv ...string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return append([]string{"name", config.DefaultSentinelMaster, "ip", host, "port", port}, kv...)
}

func respBulk(s string) []byte { return fmt.Appendf(nil, "$%d\r\n%s\r\n", len(s), s) }

func respArray(items ...[]byte) []byte {
	out := fmt.Appendf(nil, "*%d\r\n", len(items))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func respMap(kv ...string) []byte {
	items := make([][]byte, len(kv))
	for i, s := range kv {
		items[i] = respBulk(s)
	}
	return respArray(items...)
}

// A probe after the first asks the data nodes it knew at the same time as
// the Sentinels: one round trip where there were two. A node the Sentinels
// newly name is still asked, in the same probe; a node they stop naming is
// dropped without waiting for it; a hung node costs its timeout once.
func TestProbeRoundTrips(t *testing.T) {
	// Every reply, Sentinel's and nodes', comes this long after its command;
	// long enough that scheduling on a busy machine does not blur round trips.
	const delay = 150 * time.Millisecond
	const timeout = 3 * delay // more than two round trips
	m, r1, r2, h := "m", "r1", "r2", "h"
	g := startFakeGroup(t, delay, []string{m, r1, r2, h}, h)
	p := newTestClient(t, config.SentinelGroup{Site: "dc1", Sentinels: []config.Sentinel{{Address: g.sentinel}},
		Timeout: model.Duration(timeout)})

	steps := []struct {
		name     string
		named    []string // what the Sentinel lists, master first
		min, max time.Duration
		asked    []string // nodes asked INFO replication in this probe, once each
		mayAsk   []string // nodes that may be asked once, too
		pool     []string // nodes with a pooled client after the probe
	}{
		{
			// A new connection costs a round trip more: go-redis sends HELLO first.
			name:  "first probe: the Sentinel, then the nodes it names",
			named: []string{m, r1}, min: 4 * delay, max: 5 * delay,
			asked: []string{m, r1}, pool: []string{m, r1},
		},
		{
			name:  "second probe: the nodes with the Sentinel",
			named: []string{m, r1}, min: delay, max: 2 * delay,
			asked: []string{m, r1}, pool: []string{m, r1},
		},
		{
			name:  "a replica added is asked in the probe that finds it",
			named: []string{m, r1, r2}, min: 3 * delay, max: 4 * delay,
			asked: []string{m, r1, r2}, pool: []string{m, r1, r2},
		},
		{
			name:  "and with the Sentinel after that",
			named: []string{m, r1, r2}, min: delay, max: 2 * delay,
			asked: []string{m, r1, r2}, pool: []string{m, r1, r2},
		},
		{
			name:  "a replica no longer named: its answer dropped, its client closed",
			named: []string{m, r1}, min: delay, max: 2 * delay,
			asked: []string{m, r1, r2}, pool: []string{m, r1},
		},
		{
			name:  "the Sentinel names nothing: no nodes, clients kept",
			named: nil, min: delay, max: 2 * delay,
			asked: []string{m, r1}, pool: []string{m, r1},
		},
		{
			name:  "named again: asked with the Sentinel",
			named: []string{m, r1}, min: delay, max: 2 * delay,
			asked: []string{m, r1}, pool: []string{m, r1},
		},
		{
			name:  "failover: roles follow the Sentinel's new view",
			named: []string{r1, m}, min: delay, max: 2 * delay,
			asked: []string{m, r1}, pool: []string{m, r1},
		},
		{
			name:  "a hung node newly named: the Sentinel's round trip, then its timeout",
			named: []string{r1, m, h}, min: delay + timeout, max: 2*delay + timeout,
			asked: []string{m, r1, h}, pool: []string{m, r1, h},
		},
		{
			name:  "a hung node still named costs its timeout once",
			named: []string{r1, m, h}, min: timeout, max: delay + timeout,
			asked: []string{m, r1, h}, pool: []string{m, r1, h},
		},
		{
			// Its last connection timed out, so a new one is dialled: the
			// question is cut short before INFO was sent (behind HELLO) or after.
			name:  "a hung node no longer named is not waited for",
			named: []string{r1, m}, min: delay, max: 2 * delay,
			asked: []string{m, r1}, mayAsk: []string{h}, pool: []string{m, r1},
		},
	}
	for _, s := range steps {
		g.name(s.named...)
		before := g.asked()
		start := time.Now()
		got := p.Probe(context.Background())
		took := time.Since(start)
		t.Logf("%s: %s", s.name, took.Round(time.Millisecond))

		if took < s.min || took >= s.max {
			t.Errorf("%s: the probe took %s, want [%s, %s)", s.name, took, s.min, s.max)
		}
		if v := got.Sentinels[0]; v.Up != (len(s.named) > 0) {
			t.Errorf("%s: Sentinel %+v", s.name, v)
		}
		assertEqual(t, s.name+": nodes", got.Nodes, g.wantNodes(s.named, []string{h}, timeout))
		after := g.asked()
		for name := range g.nodes {
			want := int64(0)
			if slices.Contains(s.asked, name) {
				want = 1
			}
			if n := after[name] - before[name]; n != want && !(n < 2 && slices.Contains(s.mayAsk, name)) {
				t.Errorf("%s: node %s asked %d times, want %d", s.name, name, n, want)
			}
		}
		var pool []string
		for name, n := range g.nodes {
			if _, ok := p.nodes[n.addr]; ok {
				pool = append(pool, name)
			}
		}
		assertEqual(t, s.name+": pooled clients", slices.Sorted(slices.Values(pool)), slices.Sorted(slices.Values(s.pool)))
	}
}

// BenchmarkProbe probes a Sentinel naming a master and two replicas, every
// server answering at once: what a probe costs the exporter apart from the
// network. The servers run in the same process and count in the figures.
func BenchmarkProbe(b *testing.B) {
	names := []string{"m", "r1", "r2"}
	g := startFakeGroup(b, 0, names)
	g.name(names...)
	p := newTestClient(b, config.SentinelGroup{Site: "dc1", Sentinels: []config.Sentinel{{Address: g.sentinel}}})
	p.Probe(context.Background()) // dials
	b.ReportAllocs()
	for b.Loop() {
		if got := p.Probe(context.Background()); len(got.Nodes) != len(names) || !got.Nodes[0].Up {
			b.Fatalf("nodes %+v", got.Nodes)
		}
	}
}
