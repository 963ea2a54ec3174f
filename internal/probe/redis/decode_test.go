package redis

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

const noQuorum = "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master. Not enough available Sentinels to reach the majority and authorize a failover"

// The replies in testdata were recorded from the Redis 7.0.15 lab (see
// testdata/README.md); the 6.0 cases are those replies without the fields
// Redis 6.2 and 7.0 added.
func TestSentinelReplies(t *testing.T) {
	const okQuorum = "OK 3 usable Sentinels. Quorum and failover authorization can be reached"
	replica := func(port, master string, linkUp bool) knownNode {
		return knownNode{addr: "127.0.0.1:" + port, role: topology.RedisReplica, master: master, linkUp: linkUp, priority: 100}
	}
	first, second := "127.0.0.1:40369", "127.0.0.1:33749"
	tests := []struct {
		dir   string
		want  topology.SentinelView
		nodes []knownNode
	}{
		{
			dir: "7.0-sentinel-healthy",
			want: topology.SentinelView{Up: true, MasterAddress: first, MasterFlags: []string{"master"},
				Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: true, CKQuorum: okQuorum},
			nodes: []knownNode{{addr: first, role: topology.RedisMaster}, replica("33749", first, true), replica("46333", first, true)},
		},
		{
			dir: "6.0-sentinel-healthy",
			want: topology.SentinelView{Up: true, MasterAddress: first, MasterFlags: []string{"master"},
				Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: true, CKQuorum: okQuorum},
			nodes: []knownNode{{addr: first, role: topology.RedisMaster}, replica("33749", first, true), replica("46333", first, true)},
		},
		{
			dir: "7.0-sentinel-s-down",
			want: topology.SentinelView{Up: true, MasterAddress: first, MasterFlags: []string{"s_down", "master", "disconnected"},
				Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: true, CKQuorum: okQuorum},
			nodes: []knownNode{{addr: first, role: topology.RedisMaster}, replica("33749", first, true), replica("46333", first, true)},
		},
		{
			dir: "7.0-sentinel-failover-in-progress",
			want: topology.SentinelView{Up: true, MasterAddress: first,
				MasterFlags:        []string{"s_down", "o_down", "master", "disconnected", "failover_in_progress"},
				FailoverInProgress: true, Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: true, CKQuorum: okQuorum},
			nodes: []knownNode{{addr: first, role: topology.RedisMaster}, replica("33749", first, true), replica("46333", first, false)},
		},
		{
			dir: "7.0-sentinel-after-failover",
			want: topology.SentinelView{Up: true, MasterAddress: second, MasterFlags: []string{"master"}, ConfigEpoch: 1,
				Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: true, CKQuorum: okQuorum},
			// The dead old master stays listed as a replica, down and masterless.
			nodes: []knownNode{{addr: second, role: topology.RedisMaster}, {addr: first, role: topology.RedisReplica, priority: 100}, replica("46333", second, true)},
		},
		{
			dir: "7.0-sentinel-noquorum",
			want: topology.SentinelView{Up: true, MasterAddress: second, MasterFlags: []string{"master"}, ConfigEpoch: 1,
				Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: false, CKQuorum: noQuorum},
			nodes: []knownNode{{addr: second, role: topology.RedisMaster}, {addr: first, role: topology.RedisReplica, priority: 100}, replica("46333", second, true)},
		},
		{
			dir: "7.0-sentinel-tilt",
			want: topology.SentinelView{Up: true, MasterAddress: first, MasterFlags: []string{"master"},
				Quorum: 2, KnownSentinels: 3, KnownReplicas: 2, CKQuorumOK: true, CKQuorum: okQuorum, TILT: true},
			nodes: []knownNode{{addr: first, role: topology.RedisMaster}, replica("33749", first, true), replica("46333", first, true)},
		},
		{
			dir:  "7.0-sentinel-unknown-master",
			want: topology.SentinelView{Error: "ERR No such master with that name"},
		},
		{
			// An ACL user without CKQUORUM: a misconfiguration, not a verdict.
			dir:  "7.0-sentinel-ckquorum-noperm",
			want: topology.SentinelView{Error: "NOPERM this user has no permissions to run the 'sentinel|ckquorum' command"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			addr := replay(t, filepath.Join("testdata", tt.dir))
			p := newTestClient(t, config.SentinelGroup{Site: "dc1", Sentinels: []config.Sentinel{{Address: addr}}})
			got, nodes := p.askSentinel(context.Background(), p.sentinels[0], p.cfg.Sentinels[0])
			tt.want.Address, tt.want.Site = addr, "dc1"
			assertEqual(t, "view", got, tt.want)
			assertEqual(t, "nodes", nodes, tt.nodes)
		})
	}
}

func TestNodeReplies(t *testing.T) {
	tests := []struct {
		dir  string
		want topology.RedisNode
	}{
		{"7.0-node-master", topology.RedisNode{Up: true, Role: topology.RedisMaster, ConnectedReplicas: 2, ReplOffset: 443}},
		{"7.0-node-replica", topology.RedisNode{Up: true, Role: topology.RedisReplica, MasterAddress: "127.0.0.1:40369",
			MasterLinkUp: true, ReplicaPriority: 100, ReplOffset: 443}},
		{"6.0-node-replica", topology.RedisNode{Up: true, Role: topology.RedisReplica, MasterAddress: "127.0.0.1:40369",
			MasterLinkUp: true, ReplicaPriority: 100, ReplOffset: 443}},
		// Master killed: the replica still answers, its link is down.
		{"7.0-node-replica-link-down", topology.RedisNode{Up: true, Role: topology.RedisReplica, MasterAddress: "127.0.0.1:40369",
			ReplicaPriority: 100, ReplOffset: 1143}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			addr := replay(t, filepath.Join("testdata", tt.dir))
			p := newTestClient(t, config.SentinelGroup{Site: "dc1", NodeSites: map[string]string{addr: "dc2"}})
			p.nodes[addr] = p.client(addr, p.cfg.Auth) // closed with the Client
			asked := &questions{byAddr: map[string]*question{}}
			p.ask(context.Background(), asked, addr, p.nodes[addr])
			asked.wg.Wait()
			got := p.nodeView(knownNode{addr: addr, role: topology.RedisReplica}, asked.byAddr[addr])
			tt.want.Address, tt.want.Site = addr, "dc2"
			assertEqual(t, "node", got, tt.want)
		})
	}
}

func TestMergeKnown(t *testing.T) {
	a, b, c := "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"
	views := [][]knownNode{
		{{addr: a, role: topology.RedisMaster}, {addr: b, role: topology.RedisReplica, master: a, linkUp: true}},
		nil, // a Sentinel that did not answer
		// A Sentinel that already follows b after a failover.
		{{addr: b, role: topology.RedisMaster}, {addr: a, role: topology.RedisReplica}, {addr: c, role: topology.RedisReplica, master: b}},
	}
	want := []knownNode{{addr: a, role: topology.RedisMaster}, {addr: b, role: topology.RedisMaster}, {addr: c, role: topology.RedisReplica, master: b}}
	assertEqual(t, "merged", mergeKnown(views), want)
}

func TestDecodeCKQuorum(t *testing.T) {
	ok, text := decodeCKQuorum("OK 3 usable Sentinels. Quorum and failover authorization can be reached", nil)
	if !ok || !strings.HasPrefix(text, "OK 3") {
		t.Errorf("OK reply: got %v %q", ok, text)
	}
	// Sentinels before 5.0 answer NOQUORUM without the count.
	for _, reply := range []string{noQuorum, "NOQUORUM Not enough available Sentinels to reach the specified quorum for this master"} {
		ok, text := decodeCKQuorum("", replyError(reply))
		if ok || text != reply {
			t.Errorf("%q: got %v %q", reply, ok, text)
		}
	}
}

type replyError string

func (e replyError) Error() string { return string(e) }

func newTestClient(t testing.TB, cfg config.SentinelGroup) *Client {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = model.Duration(5 * time.Second)
	}
	p, err := NewClient(configtest.Redis(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func assertEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// infoSeeds returns every recorded INFO payload, for the fuzz corpus.
func infoSeeds(t testing.TB) []string {
	paths, _ := filepath.Glob("testdata/*/info*.resp")
	if len(paths) == 0 {
		t.Fatal("no recorded INFO replies in testdata")
	}
	var out []string
	for _, p := range paths {
		out = append(out, recordedBulk(t, p))
	}
	return out
}

func FuzzParseInfo(f *testing.F) {
	for _, s := range infoSeeds(f) {
		f.Add(s)
	}
	f.Add("role:slave\r\nmaster_host:?\r\nmaster_port:x\r\nslave_priority:-1\r\n")
	f.Fuzz(func(t *testing.T, info string) {
		fields := parseInfo(info)
		for k := range fields {
			if strings.ContainsAny(k, "\r\n") || (k != "" && k[0] == '#') {
				t.Errorf("key %q kept", k)
			}
		}
		var n topology.RedisNode
		decodeReplication(fields, &n)
		if n.Role != "" && n.Role != topology.RedisMaster && n.Role != topology.RedisReplica {
			t.Errorf("role %q", n.Role)
		}
		if n.Role == topology.RedisMaster && (n.MasterAddress != "" || n.MasterLinkUp) {
			t.Errorf("a master with a master link: %+v", n)
		}
	})
}

// FuzzDecodeSentinelMaps feeds SENTINEL MASTER and REPLICAS decoding with
// maps written as "key\x00value\x00…" strings.
func FuzzDecodeSentinelMaps(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*/sentinel_*.resp")
	for _, p := range paths {
		if b, _ := os.ReadFile(p); len(b) == 0 || b[0] != '*' {
			continue // error and status replies have no map
		}
		for _, m := range recordedMaps(f, p) {
			var b strings.Builder
			for k, v := range m {
				b.WriteString(k + "\x00" + v + "\x00")
			}
			f.Add(b.String())
		}
	}
	f.Fuzz(func(t *testing.T, flat string) {
		parts := strings.Split(flat, "\x00")
		m := map[string]string{}
		for i := 0; i+1 < len(parts); i += 2 {
			m[parts[i]] = parts[i+1]
		}
		var v topology.SentinelView
		decodeMaster(m, &v)
		if (v.MasterAddress != "") != (m["ip"] != "" && m["port"] != "") {
			t.Errorf("address %q from ip %q port %q", v.MasterAddress, m["ip"], m["port"])
		}
		if v.FailoverInProgress != slices.Contains(v.MasterFlags, "failover_in_progress") {
			t.Errorf("failover %v with flags %q", v.FailoverInProgress, v.MasterFlags)
		}
		if n, ok := decodeReplica(m); ok && (n.addr == "" || n.role != topology.RedisReplica) {
			t.Errorf("replica %+v", n)
		}
	})
}
