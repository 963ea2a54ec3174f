package topology

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// The layouts below are Itential's documented architectures (IAP_API.md,
// "Architectures Itential documents"), built by hand so that every expected
// number can be checked on paper.

func iapServer(name, site, role string, state string) IAPServer {
	s := IAPServer{Name: name, Site: site, DeclaredRole: role, Redis: site, RabbitMQ: site,
		Services: []IAPService{{"mongo", true}, {"redis", true}, {"rabbitmq", true}}, AppsHealthy: True, AdaptersHealthy: True}
	switch state {
	case StateActive:
		s.Up, s.TaskWorker, s.JobWorker = true, True, True
	case StateStandby:
		s.Up, s.TaskWorker, s.JobWorker = true, False, False
	}
	return s
}

func member(id int, site string, state int, priority float64) MongoMember {
	m := MongoMember{ID: id, Name: fmt.Sprintf("mongo-%d:27017", id), Site: site, State: state, Healthy: state != MongoDown, Votes: 1, Priority: priority}
	if state == MongoArbiter {
		m.ArbiterOnly, m.Priority = true, 0
	}
	return m
}

func replicaSet(members ...MongoMember) ReplicaSet {
	rs := ReplicaSet{Name: "rs0", Up: true, Members: members}
	for _, m := range members {
		if m.State == MongoPrimary {
			rs.Primaries++
		}
	}
	return rs
}

// sentinelGroup: master plus replicas in nodeSites[1:], one Sentinel per entry of sentinelSites.
func sentinelGroup(name string, sentinelSites, nodeSites []string) SentinelGroup {
	g := SentinelGroup{Name: name, MasterName: "itentialmaster", Quorum: 2}
	master := "10.0.0.1:6379"
	for i, site := range sentinelSites {
		g.Sentinels = append(g.Sentinels, SentinelView{Address: fmt.Sprintf("%s-s%d:26379", name, i), Site: site, Up: true,
			MasterAddress: master, Quorum: 2, KnownSentinels: len(sentinelSites), CKQuorumOK: true})
	}
	for i, site := range nodeSites {
		n := RedisNode{Address: fmt.Sprintf("%s-r%d:6379", name, i), Site: site, Up: true, Role: "replica", MasterLinkUp: true, ReplicaPriority: 100}
		if i == 0 {
			n.Role, n.MasterLinkUp = "master", false
		}
		g.Nodes = append(g.Nodes, n)
	}
	return g
}

func rabbitCluster(name string, sites ...string) RabbitCluster {
	c := RabbitCluster{Name: name, Site: sites[0], Up: true, MirroringSupported: true}
	for i, site := range sites {
		c.Nodes = append(c.Nodes, RabbitNode{Name: fmt.Sprintf("rabbit@%s-%d", name, i), Site: site, Running: true})
	}
	c.Queues = []QueueGroup{{VHost: "/", Type: "classic", Count: 10}}
	return c
}

func ha0() (*config.Config, *Snapshot) {
	cfg := &config.Config{Architecture: config.ArchHA0, Sites: []config.Site{{Name: "local", Role: config.SiteActive}},
		MongoDB: []config.ReplicaSet{{Name: "rs0"}}}
	return cfg, &Snapshot{
		IAP:      []IAPServer{iapServer("iap-1", "local", config.RoleActive, StateActive)},
		MongoDB:  []ReplicaSet{replicaSet(member(0, "local", MongoPrimary, 1))},
		Redis:    []SentinelGroup{sentinelGroup("local", []string{"local"}, []string{"local"})},
		RabbitMQ: []RabbitCluster{rabbitCluster("local", "local")},
	}
}

func ha3() (*config.Config, *Snapshot) {
	cfg := &config.Config{Architecture: config.ArchHA3, Sites: []config.Site{{Name: "dc1", Role: config.SiteActive}},
		MongoDB: []config.ReplicaSet{{Name: "rs0"}}}
	return cfg, &Snapshot{
		IAP: []IAPServer{
			iapServer("iap-1", "dc1", config.RoleActive, StateActive),
			iapServer("iap-2", "dc1", config.RoleActive, StateActive),
		},
		MongoDB:  []ReplicaSet{replicaSet(member(0, "dc1", MongoPrimary, 1), member(1, "dc1", MongoSecondary, 1), member(2, "dc1", MongoSecondary, 1))},
		Redis:    []SentinelGroup{sentinelGroup("dc1", []string{"dc1", "dc1", "dc1"}, []string{"dc1", "dc1", "dc1"})},
		RabbitMQ: []RabbitCluster{rabbitCluster("dc1", "dc1", "dc1", "dc1")},
	}
}

// ha6 is Itential's Active/Standby design: two active IAP servers in dc1, two
// standbys in dc2, MongoDB 2 + 2 with dc2 at a lower priority and the arbiter
// in dc3, a Sentinel group and a RabbitMQ cluster per data center.
func ha6() (*config.Config, *Snapshot) {
	cfg := &config.Config{Architecture: config.ArchHA6,
		Sites:   []config.Site{{Name: "dc1", Role: config.SiteActive}, {Name: "dc2", Role: config.SiteStandby}, {Name: "dc3", Role: config.SiteWitness}},
		MongoDB: []config.ReplicaSet{{Name: "rs0"}}}
	return cfg, &Snapshot{
		IAP: []IAPServer{
			iapServer("iap-dc1-1", "dc1", config.RoleActive, StateActive),
			iapServer("iap-dc1-2", "dc1", config.RoleActive, StateActive),
			iapServer("iap-dc2-1", "dc2", config.RoleStandby, StateStandby),
			iapServer("iap-dc2-2", "dc2", config.RoleStandby, StateStandby),
		},
		MongoDB: []ReplicaSet{replicaSet(
			member(0, "dc1", MongoPrimary, 2), member(1, "dc1", MongoSecondary, 2),
			member(2, "dc2", MongoSecondary, 1), member(3, "dc2", MongoSecondary, 1),
			member(4, "dc3", MongoArbiter, 0))},
		Redis: []SentinelGroup{
			sentinelGroup("dc1", []string{"dc1", "dc1", "dc1"}, []string{"dc1", "dc1", "dc1"}),
			sentinelGroup("dc2", []string{"dc2", "dc2", "dc2"}, []string{"dc2", "dc2", "dc2"}),
		},
		RabbitMQ: []RabbitCluster{rabbitCluster("dc1", "dc1", "dc1", "dc1"), rabbitCluster("dc2", "dc2", "dc2", "dc2")},
	}
}

// loseSite marks everything in site as a dead site looks to the probes.
func loseSite(s *Snapshot, site string) {
	for i := range s.IAP {
		if s.IAP[i].Site == site {
			s.IAP[i] = IAPServer{Name: s.IAP[i].Name, Site: site, DeclaredRole: s.IAP[i].DeclaredRole, Redis: s.IAP[i].Redis, RabbitMQ: s.IAP[i].RabbitMQ}
		}
	}
	for i := range s.MongoDB {
		for j := range s.MongoDB[i].Members {
			if m := &s.MongoDB[i].Members[j]; m.Site == site {
				m.State, m.Healthy = MongoDown, false
			}
		}
	}
	for i := range s.Redis {
		for j := range s.Redis[i].Sentinels {
			if sv := &s.Redis[i].Sentinels[j]; sv.Site == site {
				*sv = SentinelView{Address: sv.Address, Site: site}
			}
		}
		for j := range s.Redis[i].Nodes {
			if n := &s.Redis[i].Nodes[j]; n.Site == site {
				n.Up, n.MasterLinkUp = false, false
			}
		}
	}
	for i := range s.RabbitMQ {
		c := &s.RabbitMQ[i]
		running := 0
		for j := range c.Nodes {
			if c.Nodes[j].Site == site {
				c.Nodes[j].Running = false
			}
			if c.Nodes[j].Running {
				running++
			}
		}
		if running == 0 {
			c.Up = false
		}
	}
}

type want struct {
	tolerated  map[string]int // "component/name" → failures tolerated; absent means left out
	sites      map[string]bool
	siteReason map[string]string // substring
	observed   string
	archReason string // substring
	splitBrain []string
	unknown    []string // substrings
}

func TestEvaluate(t *testing.T) {
	cases := []struct {
		name   string
		layout func() (*config.Config, *Snapshot)
		change func(*Snapshot)
		want   want
	}{
		{
			name: "HA-0 all-in-one", layout: ha0,
			want: want{
				// MongoDB: 1 healthy − majority 1; Redis: 1 Sentinel − max(quorum 2, majority 1) < 0.
				tolerated:  map[string]int{"iap/servers": 0, "mongodb/rs0": 0, "redis/local": 0, "rabbitmq/local": 0},
				sites:      map[string]bool{"local": false},
				siteReason: map[string]string{"local": "no IAP server outside local can work tasks"},
				observed:   config.ArchHA0, archReason: "mongodb rs0 has 1 healthy voting members, HA-3 needs 3",
			},
		},
		{
			name: "HA-3 healthy", layout: ha3,
			want: want{
				// Redis: min(3 − max(2, 2), 2 replicas) = 1; RabbitMQ: 3 − 2 = 1.
				tolerated: map[string]int{"iap/servers": 1, "mongodb/rs0": 1, "redis/dc1": 1, "rabbitmq/dc1": 1},
				sites:     map[string]bool{"dc1": false},
				observed:  config.ArchHA3, archReason: "iap servers can work tasks in only one site",
			},
		},
		{
			name: "HA-6 healthy", layout: ha6,
			want: want{
				// IAP: 2 active + 2 promotable standbys − 1; MongoDB: 5 healthy voters − majority 3.
				tolerated: map[string]int{"iap/servers": 3, "mongodb/rs0": 2, "redis/dc1": 1, "redis/dc2": 1, "rabbitmq/dc1": 1, "rabbitmq/dc2": 1},
				sites:     map[string]bool{"dc1": true, "dc2": true, "dc3": true},
				observed:  config.ArchHA6,
			},
		},
		{
			name: "HA-6 with the arbiter down", layout: ha6,
			change: func(s *Snapshot) { loseSite(s, "dc3") },
			want: want{
				tolerated:  map[string]int{"iap/servers": 3, "mongodb/rs0": 1, "redis/dc1": 1, "redis/dc2": 1, "rabbitmq/dc1": 1, "rabbitmq/dc2": 1},
				sites:      map[string]bool{"dc1": false, "dc2": false, "dc3": true},
				siteReason: map[string]string{"dc1": "mongodb rs0 would keep 2 of 5 votes without dc1 (needs 3)"},
				observed:   config.ArchHA3, archReason: "losing dc1 is not survivable",
			},
		},
		{
			name: "HA-6 with dc2 lost", layout: ha6,
			change: func(s *Snapshot) { loseSite(s, "dc2") },
			want: want{
				// dc2's Redis group and RabbitMQ cluster cannot be judged: left out.
				// With dc2 gone, the arbiter is the third vote: losing dc3 too
				// would leave 2 of 5.
				tolerated:  map[string]int{"iap/servers": 1, "mongodb/rs0": 0, "redis/dc1": 1, "rabbitmq/dc1": 1},
				sites:      map[string]bool{"dc1": false, "dc2": true, "dc3": false},
				siteReason: map[string]string{"dc1": "no IAP server outside dc1 can work tasks", "dc3": "mongodb rs0 would keep 2 of 5 votes without dc3 (needs 3)"},
				observed:   config.ArchHA3, archReason: "iap servers can work tasks in only one site",
				unknown: []string{"redis dc2: no Sentinel answered", "rabbitmq dc2: no management API answered"},
			},
		},
		{
			name: "HA-6 with dc2's MongoDB members at priority 0", layout: ha6,
			change: func(s *Snapshot) {
				s.MongoDB[0].Members[2].Priority = 0
				s.MongoDB[0].Members[3].Priority = 0
			},
			want: want{
				tolerated:  map[string]int{"iap/servers": 3, "mongodb/rs0": 2},
				sites:      map[string]bool{"dc1": false, "dc2": true, "dc3": true},
				siteReason: map[string]string{"dc1": "mongodb rs0 would have no electable member (priority > 0) without dc1"},
				observed:   config.ArchHA3, archReason: "losing dc1 is not survivable: iap-dc2-1: mongodb rs0 would have no electable member",
			},
		},
		{
			name: "one Sentinel group, all three Sentinels in dc1, replicas across sites", layout: ha6,
			change: func(s *Snapshot) {
				s.Redis = []SentinelGroup{sentinelGroup("shared", []string{"dc1", "dc1", "dc1"}, []string{"dc1", "dc2", "dc2"})}
				for i := range s.IAP {
					s.IAP[i].Redis = "shared"
				}
			},
			want: want{
				tolerated:  map[string]int{"redis/shared": 1},
				sites:      map[string]bool{"dc1": false, "dc2": true, "dc3": true},
				siteReason: map[string]string{"dc1": "redis shared would keep 0 Sentinels without dc1 (needs 2)"},
				observed:   config.ArchHA3,
			},
		},
		{
			name: "HA-3 with a MongoDB member's votes set to 0", layout: ha3,
			change: func(s *Snapshot) { s.MongoDB[0].Members[2].Votes = 0 },
			want: want{
				// 2 voting members, majority 2, both healthy: nothing to spare.
				tolerated: map[string]int{"mongodb/rs0": 0, "iap/servers": 1},
				sites:     map[string]bool{"dc1": false},
				observed:  config.ArchHA0, archReason: "mongodb rs0 has 2 healthy voting members, HA-3 needs 3",
			},
		},
		{
			name: "HA-6 with one standby unhealthy", layout: ha6,
			change: func(s *Snapshot) { s.IAP[2].Services[0].Running = false },
			want: want{
				tolerated:  map[string]int{"iap/servers": 2},
				sites:      map[string]bool{"dc1": true, "dc2": true, "dc3": true},
				siteReason: map[string]string{"dc1": "iap-dc2-2 can work tasks without dc1"},
				observed:   config.ArchHA6,
			},
		},
		{
			name: "HA-6 with both standbys unhealthy", layout: ha6,
			change: func(s *Snapshot) {
				s.IAP[2].AppsHealthy = False
				s.IAP[3].Up = false
			},
			want: want{
				tolerated:  map[string]int{"iap/servers": 1},
				sites:      map[string]bool{"dc1": false, "dc2": true, "dc3": true},
				siteReason: map[string]string{"dc1": "no IAP server outside dc1 can work tasks"},
				observed:   config.ArchHA3,
			},
		},
		{
			name: "HA-3 with a Redis replica down", layout: ha3,
			change: func(s *Snapshot) { s.Redis[0].Nodes[2].Up = false },
			want: want{
				tolerated: map[string]int{"redis/dc1": 1},
				observed:  config.ArchHA3,
			},
		},
		{
			name: "HA-3 with two Sentinels down", layout: ha3,
			change: func(s *Snapshot) {
				s.Redis[0].Sentinels[0] = SentinelView{Address: "x", Site: "dc1"}
				s.Redis[0].Sentinels[1] = SentinelView{Address: "y", Site: "dc1"}
			},
			want: want{
				tolerated: map[string]int{"redis/dc1": 0},
				observed:  config.ArchHA0, archReason: "redis dc1 has 1 reachable Sentinels, HA-3 needs 3",
			},
		},
		{
			name: "HA-3 with a RabbitMQ node stopped and a mirror unsynchronised", layout: ha3,
			change: func(s *Snapshot) {
				s.RabbitMQ[0].Nodes[2].Running = false
				s.RabbitMQ[0].Queues[0].Unsynchronised = 4
			},
			want: want{
				tolerated: map[string]int{"rabbitmq/dc1": 0},
				observed:  config.ArchHA0, archReason: "rabbitmq dc1 has 2 running nodes, HA-3 needs 3",
			},
		},
		{
			name: "HA-3 with no MongoDB primary (election under way)", layout: ha3,
			change: func(s *Snapshot) { s.MongoDB[0].Members[0].State = MongoSecondary; s.MongoDB[0].Primaries = 0 },
			want: want{
				tolerated: map[string]int{"mongodb/rs0": 0},
				observed:  config.ArchHA0, archReason: "mongodb rs0 has no primary",
			},
		},
		{
			name: "split brain everywhere", layout: ha6,
			change: func(s *Snapshot) {
				s.MongoDB[0].Primaries = 2
				s.Redis[0].Sentinels[2].MasterAddress = "10.0.0.9:6379"
				s.RabbitMQ[1].Nodes[0].Partitions = []string{"rabbit@dc2-1"}
				s.IAP[3].TaskWorker = True
			},
			want: want{
				tolerated:  map[string]int{"iap/servers": 3},
				splitBrain: []string{"iap/servers", "mongodb/rs0", "rabbitmq/dc2", "redis/dc1"},
				observed:   config.ArchHA6,
			},
		},
		{
			// A standby working in place of a failed active is a takeover.
			name: "HA-6 after a promotion", layout: ha6,
			change: func(s *Snapshot) {
				s.IAP[0] = IAPServer{Name: "iap-dc1-1", Site: "dc1", DeclaredRole: config.RoleActive}
				s.IAP[2].TaskWorker, s.IAP[2].JobWorker = True, True
			},
			want: want{
				tolerated: map[string]int{"iap/servers": 2},
				observed:  config.ArchHA6,
			},
		},
		{
			name: "MongoDB probe failed: unknown, not healthy", layout: ha6,
			change: func(s *Snapshot) { s.MongoDB = nil },
			want: want{
				tolerated: map[string]int{"iap/servers": 3},
				observed:  config.ArchHA0, archReason: "mongodb state unknown",
				unknown: []string{"site loss: the MongoDB replica sets were not probed"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, s := c.layout()
			if c.change != nil {
				c.change(s)
			}
			v := Evaluate(cfg, s)
			got := map[string]int{}
			for _, cv := range v.Components {
				got[cv.Component+"/"+cv.Name] = cv.FailuresTolerated
			}
			for k, n := range c.want.tolerated {
				if g, ok := got[k]; !ok || g != n {
					t.Errorf("failures tolerated %s = %d (present %v), want %d", k, g, ok, n)
				}
			}
			if c.want.sites != nil {
				gotSites := map[string]bool{}
				for _, sv := range v.Sites {
					gotSites[sv.Site] = sv.Survivable
					if w, ok := c.want.siteReason[sv.Site]; ok && !strings.Contains(sv.Reason, w) {
						t.Errorf("site %s reason %q does not contain %q", sv.Site, sv.Reason, w)
					}
				}
				if !reflect.DeepEqual(gotSites, c.want.sites) {
					t.Errorf("site loss survivable = %v, want %v\n%+v", gotSites, c.want.sites, v.Sites)
				}
			}
			if v.Architecture.Observed != c.want.observed || !strings.Contains(v.Architecture.Reason, c.want.archReason) {
				t.Errorf("architecture = %+v, want observed %s with a reason containing %q", v.Architecture, c.want.observed, c.want.archReason)
			}
			if v.Architecture.Expected != cfg.Architecture {
				t.Errorf("expected architecture = %q, want %q", v.Architecture.Expected, cfg.Architecture)
			}
			var split []string
			for _, sb := range v.SplitBrain {
				if sb.Active {
					split = append(split, sb.Component+"/"+sb.Name)
					if sb.Reason == "" {
						t.Errorf("split brain %s/%s without a reason", sb.Component, sb.Name)
					}
				}
			}
			sort.Strings(split)
			if strings.Join(split, ",") != strings.Join(c.want.splitBrain, ",") {
				t.Errorf("split brain = %v, want %v", split, c.want.splitBrain)
			}
			for _, u := range c.want.unknown {
				if !strings.Contains(strings.Join(v.Unknown, "\n"), u) {
					t.Errorf("unknown = %q, want it to say %q", v.Unknown, u)
				}
			}
		})
	}
}

func TestGatewaysAreSinglePointsOfFailure(t *testing.T) {
	cfg, s := ha6()
	s.Gateways = []Gateway{
		{Name: "iag-dc1", Site: "dc1", Up: true, Devices: map[string]int{"devices": 4312, "netmiko": 100}},
		{Name: "iag-dc2", Site: "dc2", Up: true, Devices: map[string]int{"nornir": 10, "netconf": 5}},
	}
	v := Evaluate(cfg, s)
	for _, cv := range v.Components {
		if cv.Component == ComponentGateway && cv.FailuresTolerated != 0 {
			t.Errorf("gateway %s tolerates %d failures, want 0", cv.Name, cv.FailuresTolerated)
		}
	}
	devices := map[string]int{}
	for _, sv := range v.Sites {
		devices[sv.Site] = sv.DevicesWithoutGateway
	}
	if want := map[string]int{"dc1": 4312, "dc2": 15, "dc3": 0}; !reflect.DeepEqual(devices, want) {
		t.Errorf("devices without a gateway per lost site = %v, want %v", devices, want)
	}
}
