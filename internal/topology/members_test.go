package topology

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// fiftyMembers is an HA-6 estate of 50 members: 8 IAP servers, 7 MongoDB
// members, per site a Sentinel group of 3 data nodes and 5 Sentinels and a
// 5-node RabbitMQ cluster, and 9 gateways.
func fiftyMembers() (*config.Config, *Snapshot) {
	cfg := &config.Config{Architecture: config.ArchHA6,
		Sites: []config.Site{{Name: "dc1", Role: "active"}, {Name: "dc2", Role: "standby"}, {Name: "dc3", Role: "witness"}}}
	s := &Snapshot{}
	for i := range 8 {
		site, role, worker := "dc1", config.RoleActive, True
		if i >= 4 {
			site, role, worker = "dc2", config.RoleStandby, False
		}
		s.IAP = append(s.IAP, IAPServer{Name: fmt.Sprintf("iap-%d", i), Site: site, DeclaredRole: role, Redis: site, RabbitMQ: site,
			Up: true, TaskWorker: worker, APIUp: True, AppsHealthy: True, AdaptersHealthy: True})
		cfg.IAP.Servers = append(cfg.IAP.Servers, config.IAPServer{Name: fmt.Sprintf("iap-%d", i), Site: site, Role: role})
	}
	rs := ReplicaSet{Name: "rs0", Up: true, Primaries: 1}
	for i, site := range []string{"dc1", "dc1", "dc1", "dc2", "dc2", "dc2", "dc3"} {
		m := MongoMember{Name: fmt.Sprintf("m%d:27017", i), Site: site, State: MongoSecondary, Healthy: true, Votes: 1, Priority: 1}
		switch {
		case i == 0:
			m.State = MongoPrimary
		case site == "dc3":
			m.State, m.ArbiterOnly, m.Priority = MongoArbiter, true, 0
		}
		rs.Members = append(rs.Members, m)
	}
	s.MongoDB = []ReplicaSet{rs}
	cfg.MongoDB = []config.ReplicaSet{{Name: "rs0"}}
	for _, site := range []string{"dc1", "dc2"} {
		g := SentinelGroup{Name: site, Quorum: 3}
		for i := range 3 {
			n := RedisNode{Address: fmt.Sprintf("%s-r%d:6379", site, i), Site: site, Up: true, Role: RedisReplica, MasterLinkUp: true, ReplicaPriority: 100}
			if i == 0 {
				n.Role, n.MasterLinkUp = RedisMaster, false
			}
			g.Nodes = append(g.Nodes, n)
		}
		for i := range 5 {
			g.Sentinels = append(g.Sentinels, SentinelView{Address: fmt.Sprintf("%s-s%d:26379", site, i), Site: site, Up: true,
				MasterAddress: g.Nodes[0].Address, Quorum: 3, KnownSentinels: 5, CKQuorumOK: true})
		}
		s.Redis = append(s.Redis, g)
		cfg.Redis = append(cfg.Redis, config.SentinelGroup{Name: site})
		c := RabbitCluster{Name: site, Up: true, PartitionHandling: PartitionPauseMinority, MirroringSupported: true}
		for i := range 5 {
			c.Nodes = append(c.Nodes, RabbitNode{Name: fmt.Sprintf("rabbit@%s-%d", site, i), Site: site, Running: true})
		}
		s.RabbitMQ = append(s.RabbitMQ, c)
		cfg.RabbitMQ = append(cfg.RabbitMQ, config.RabbitCluster{Name: site})
	}
	for i := range 9 {
		s.Gateways = append(s.Gateways, Gateway{Name: fmt.Sprintf("iag-%d", i), Site: []string{"dc1", "dc2"}[i%2], Up: true,
			Devices: map[string]int{"devices": 100}})
	}
	return cfg, s
}

// The single-point evaluation fails members in copies: the snapshot the
// collectors, the page and the receiver read is the one the probes wrote.
func TestSinglePointsLeaveTheSnapshotAlone(t *testing.T) {
	cfg, s := fiftyMembers()
	before, _ := json.Marshal(s)
	v := Evaluate(cfg, s)
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Errorf("Evaluate changed the snapshot:\nbefore %s\nafter  %s", before, after)
	}
	if len(v.Members) != 50 {
		t.Fatalf("%d member verdicts, want one for each of the 50 members", len(v.Members))
	}
	if v.Architecture.Observed != config.ArchHA6 {
		t.Fatalf("observed %s (%s), want HA-6", v.Architecture.Observed, v.Architecture.Reason)
	}
	if sp := v.SinglePoints(); len(sp) != 0 {
		t.Errorf("single points of failure %+v in an estate where every component tolerates one failure", sp)
	}
	again := Evaluate(cfg, s)
	if !reflect.DeepEqual(v, again) {
		t.Error("two evaluations of one snapshot differ")
	}
}

// BenchmarkEvaluate50Members is the cost of the whole HA model, single
// points of failure included, over a 50-member HA-6 estate: once a scrape.
func BenchmarkEvaluate50Members(b *testing.B) {
	cfg, s := fiftyMembers()
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(cfg, s)
	}
}

// Sentinels commonly watch more than one master. A Sentinel shared by two
// groups is one member with one verdict (two would be one series twice on
// /metrics), and losing it takes it from both groups.
func TestSharedSentinelIsOneMember(t *testing.T) {
	cfg, s := fiftyMembers()
	shared := s.Redis[0].Sentinels
	for i := range s.Redis[1].Sentinels {
		s.Redis[1].Sentinels[i].Address, s.Redis[1].Sentinels[i].Site = shared[i].Address, shared[i].Site
	}
	v := Evaluate(cfg, s)
	seen := map[string]int{}
	for _, mv := range v.Members {
		seen[mv.Component+"/"+mv.Name]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s has %d verdicts, want one", k, n)
		}
	}
	if len(v.Members) != 45 {
		t.Errorf("%d member verdicts, want 45: five of the 50 Sentinels are the same five", len(v.Members))
	}
	// With two of five shared Sentinels down, three are left: the majority
	// of 5. Losing a third takes it from both groups, so the dc2 standbys,
	// whose group would otherwise keep its majority, are short too.
	for i := range 2 {
		s.Redis[0].Sentinels[i].Up, s.Redis[1].Sentinels[i].Up = false, false
	}
	v = Evaluate(cfg, s)
	found := false
	for _, mv := range v.Members {
		if mv.Component == ComponentSentinel && mv.Name == shared[3].Address {
			found = true
			if mv.Stops != True {
				t.Errorf("%s: stops %v (%s); both groups would keep 2 of 5 Sentinels, short of 3", mv.Name, mv.Stops, mv.Reason)
			}
		}
	}
	if !found {
		t.Errorf("no verdict for %s; unknown: %q", shared[3].Address, v.Unknown)
	}
}
