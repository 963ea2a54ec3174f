package collector

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func TestTopologyCollector(t *testing.T) {
	cfg := &config.Config{Architecture: config.ArchHA3, Sites: []config.Site{{Name: "dc1"}, {Name: "dc2"}},
		MongoDB: []config.ReplicaSet{{Name: "rs0"}}}
	snap := &topology.Snapshot{
		IAP: []topology.IAPServer{
			{Name: "a", Site: "dc1", DeclaredRole: "active", Up: true, TaskWorker: topology.True},
			{Name: "b", Site: "dc2", DeclaredRole: "standby", Up: true, TaskWorker: topology.True},
		},
		MongoDB: []topology.ReplicaSet{{Name: "rs0", Up: true, Primaries: 1, Members: []topology.MongoMember{
			{Name: "m1:27017", Site: "dc1", State: topology.MongoPrimary, Healthy: true, Votes: 1, Priority: 1},
		}}},
		Gateways: []topology.Gateway{{Name: "g", Site: "dc2", Up: true, Devices: map[string]int{"devices": 42}}},
	}
	// Losing dc1 takes MongoDB's only member; losing dc2 leaves server a.
	// That member alone is a single point of failure; the class is below
	// the declared one already, so no member's loss can drop it there.
	scrape := &topology.Observation{Config: cfg, Snapshot: snap, Verdict: topology.Evaluate(cfg, snap)}
	c, err := newTopologyCollector(cfg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newScraperWith(cfg, promslog.NewNopLogger(), map[string]Collector{"topology": c})
	want := `
# HELP iap_ha_architecture_degraded 1 if the observed architecture class is below the declared one.
# TYPE iap_ha_architecture_degraded gauge
iap_ha_architecture_degraded 1
# HELP iap_ha_architecture_info The architecture class observed from the live topology and the one the configuration declares.
# TYPE iap_ha_architecture_info gauge
iap_ha_architecture_info{expected="HA-3",observed="HA-0"} 1
# HELP iap_ha_component_failures_tolerated How many more member failures this component instance survives, by the HA model; absent while unknown.
# TYPE iap_ha_component_failures_tolerated gauge
iap_ha_component_failures_tolerated{component="gateway",name="g"} 0
iap_ha_component_failures_tolerated{component="iap",name="servers"} 1
iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 0
# HELP iap_ha_member_single_point_of_failure 1 if losing this member alone would leave no IAP server able to work tasks with all it depends on; absent while unknown or while the estate cannot work tasks.
# TYPE iap_ha_member_single_point_of_failure gauge
iap_ha_member_single_point_of_failure{component="gateway",member="g",site="dc2"} 0
iap_ha_member_single_point_of_failure{component="iap",member="a",site="dc1"} 0
iap_ha_member_single_point_of_failure{component="iap",member="b",site="dc2"} 0
iap_ha_member_single_point_of_failure{component="mongodb",member="m1:27017",site="dc1"} 1
# HELP iap_ha_site_loss_devices_without_gateway Devices whose Automation Gateway stands in this site and would be lost with it.
# TYPE iap_ha_site_loss_devices_without_gateway gauge
iap_ha_site_loss_devices_without_gateway{site="dc1"} 0
iap_ha_site_loss_devices_without_gateway{site="dc2"} 42
# HELP iap_ha_site_loss_survivable 1 if losing every member in this site would leave an IAP server able to work tasks with all it depends on; absent while unknown.
# TYPE iap_ha_site_loss_survivable gauge
iap_ha_site_loss_survivable{site="dc1"} 0
iap_ha_site_loss_survivable{site="dc2"} 1
# HELP iap_ha_split_brain 1 when the HA model sees two heads in this component instance.
# TYPE iap_ha_split_brain gauge
iap_ha_split_brain{component="iap",name="servers"} 1
iap_ha_split_brain{component="mongodb",name="rs0"} 0
`
	scrape.Results = map[string]topology.ProbeResult{"topology": {}}
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want),
		"iap_ha_architecture_degraded", "iap_ha_architecture_info", "iap_ha_component_failures_tolerated",
		"iap_ha_site_loss_devices_without_gateway", "iap_ha_site_loss_survivable", "iap_ha_split_brain",
		"iap_ha_member_single_point_of_failure", "iap_ha_member_loss_degrades_architecture"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(s.Metrics(scrape)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// Unknown is no sample (issue 19, item 11): with the IAP servers unread, no
// site verdict and no class are published, rather than 0 or a guess.
func TestTopologyCollectorUnknownIsNoSample(t *testing.T) {
	cfg := &config.Config{Architecture: config.ArchHA6, Sites: []config.Site{{Name: "dc1"}, {Name: "dc2"}},
		IAP:     config.IAP{Servers: []config.IAPServer{{Name: "a", Site: "dc1"}}},
		MongoDB: []config.ReplicaSet{{Name: "rs0"}}, Redis: []config.SentinelGroup{{Name: "dc1"}}}
	snap := &topology.Snapshot{}
	scrape := &topology.Observation{Config: cfg, Snapshot: snap, Verdict: topology.Evaluate(cfg, snap)}
	c, err := newTopologyCollector(cfg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newScraperWith(cfg, promslog.NewNopLogger(), map[string]Collector{"topology": c})
	scrape.Results = map[string]topology.ProbeResult{"topology": {}}
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(""),
		"iap_ha_architecture_degraded", "iap_ha_architecture_info", "iap_ha_component_failures_tolerated",
		"iap_ha_site_loss_survivable", "iap_ha_member_single_point_of_failure", "iap_ha_member_loss_degrades_architecture"); err != nil {
		t.Error(err)
	}
}

// An estate of its declared class has a class verdict per member: an HA-0
// all-in-one cannot fall below HA-0, so every one is 0, while its single
// MongoDB member, Sentinel and server each stop it.
func TestTopologyCollectorMemberLoss(t *testing.T) {
	cfg := &config.Config{Architecture: config.ArchHA0, Sites: []config.Site{{Name: "local"}},
		MongoDB: []config.ReplicaSet{{Name: "rs0"}}, Redis: []config.SentinelGroup{{Name: "local"}}}
	snap := &topology.Snapshot{
		IAP: []topology.IAPServer{{Name: "a", Site: "local", DeclaredRole: "active", Up: true, TaskWorker: topology.True, Redis: "local"}},
		MongoDB: []topology.ReplicaSet{{Name: "rs0", Up: true, Primaries: 1, Members: []topology.MongoMember{
			{Name: "m1:27017", Site: "local", State: topology.MongoPrimary, Healthy: true, Votes: 1, Priority: 1},
		}}},
		Redis: []topology.SentinelGroup{{Name: "local", Quorum: 1,
			Sentinels: []topology.SentinelView{{Address: "s1:26379", Site: "local", Up: true, KnownSentinels: 1, CKQuorumOK: true}},
			Nodes:     []topology.RedisNode{{Address: "r1:6379", Site: "local", Up: true, Role: topology.RedisMaster}}}},
	}
	scrape := &topology.Observation{Config: cfg, Snapshot: snap, Verdict: topology.Evaluate(cfg, snap)}
	c, err := newTopologyCollector(cfg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newScraperWith(cfg, promslog.NewNopLogger(), map[string]Collector{"topology": c})
	scrape.Results = map[string]topology.ProbeResult{"topology": {}}
	want := `
# HELP iap_ha_member_loss_degrades_architecture 1 if losing this member alone would leave the observed architecture class below the declared one; absent without a declared class met now.
# TYPE iap_ha_member_loss_degrades_architecture gauge
iap_ha_member_loss_degrades_architecture{component="iap",member="a",site="local"} 0
iap_ha_member_loss_degrades_architecture{component="mongodb",member="m1:27017",site="local"} 0
iap_ha_member_loss_degrades_architecture{component="redis",member="r1:6379",site="local"} 0
iap_ha_member_loss_degrades_architecture{component="sentinel",member="s1:26379",site="local"} 0
# HELP iap_ha_member_single_point_of_failure 1 if losing this member alone would leave no IAP server able to work tasks with all it depends on; absent while unknown or while the estate cannot work tasks.
# TYPE iap_ha_member_single_point_of_failure gauge
iap_ha_member_single_point_of_failure{component="iap",member="a",site="local"} 1
iap_ha_member_single_point_of_failure{component="mongodb",member="m1:27017",site="local"} 1
iap_ha_member_single_point_of_failure{component="redis",member="r1:6379",site="local"} 1
iap_ha_member_single_point_of_failure{component="sentinel",member="s1:26379",site="local"} 1
`
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want),
		"iap_ha_member_single_point_of_failure", "iap_ha_member_loss_degrades_architecture"); err != nil {
		t.Error(err)
	}
}

// Two RabbitMQ clusters of one site whose nodes have the same name (cloned
// hosts) are two members: losing one leaves the other cluster's servers
// working, so neither is a single point of failure, and the two verdicts
// share one series rather than repeating it (a registry error).
func TestTopologyCollectorMembersSharingLabels(t *testing.T) {
	cfg := &config.Config{Sites: []config.Site{{Name: "dc1"}}}
	node := []topology.RabbitNode{{Name: "rabbit@rmq1", Site: "dc1", Running: true}}
	snap := &topology.Snapshot{
		IAP: []topology.IAPServer{
			{Name: "a", Site: "dc1", DeclaredRole: "active", Up: true, TaskWorker: topology.True, RabbitMQ: "c1"},
			{Name: "b", Site: "dc1", DeclaredRole: "active", Up: true, TaskWorker: topology.True, RabbitMQ: "c2"},
		},
		RabbitMQ: []topology.RabbitCluster{{Name: "c1", Up: true, Nodes: node}, {Name: "c2", Up: true, Nodes: node}},
	}
	scrape := &topology.Observation{Config: cfg, Snapshot: snap, Verdict: topology.Evaluate(cfg, snap)}
	if n := len(scrape.Verdict.Members); n != 4 {
		t.Fatalf("%d member verdicts, want 4 (two servers, two nodes): %+v", n, scrape.Verdict.Members)
	}
	c, err := newTopologyCollector(cfg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newScraperWith(cfg, promslog.NewNopLogger(), map[string]Collector{"topology": c})
	scrape.Results = map[string]topology.ProbeResult{"topology": {}}
	want := `
# HELP iap_ha_member_single_point_of_failure 1 if losing this member alone would leave no IAP server able to work tasks with all it depends on; absent while unknown or while the estate cannot work tasks.
# TYPE iap_ha_member_single_point_of_failure gauge
iap_ha_member_single_point_of_failure{component="iap",member="a",site="dc1"} 0
iap_ha_member_single_point_of_failure{component="iap",member="b",site="dc1"} 0
iap_ha_member_single_point_of_failure{component="rabbitmq",member="rabbit@rmq1",site="dc1"} 0
`
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), "iap_ha_member_single_point_of_failure"); err != nil {
		t.Error(err)
	}
}
