package rabbitmq

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// One lab for the whole test binary, started by the first test that needs
// it (about 25 s) and stopped by TestMain.
var (
	labOnce sync.Once
	theLab  *lab.RabbitLab
	labErr  error
)

func rabbitLab(t *testing.T) *lab.RabbitLab {
	t.Helper()
	labOnce.Do(func() { theLab, labErr = lab.StartRabbitCluster(lab.RabbitOptions{DR: true}) })
	if labErr != nil {
		t.Fatalf("the RabbitMQ lab did not start: %v", labErr)
	}
	return theLab
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theLab != nil {
		if err := theLab.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the RabbitMQ lab:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func labClient(t *testing.T, name string, urls ...string) *Client {
	t.Helper()
	c, err := NewClient(configtest.RabbitMQ(config.RabbitCluster{
		Name: name, Site: "dc1", URLs: urls,
		Credentials: config.Credentials{Username: lab.RabbitGuest, Password: lab.RabbitGuest},
		Timeout:     model.Duration(20 * time.Second),
	}), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually probes until check accepts the state: node stats reach the
// management API a few seconds after the fact.
func eventually(t *testing.T, c *Client, what string, check func(topology.RabbitCluster) error) topology.RabbitCluster {
	t.Helper()
	var state topology.RabbitCluster
	err := lab.Retry(90*time.Second, time.Second, func() error {
		state = c.Probe(context.Background())
		if !state.Up {
			return fmt.Errorf("cluster down: %s", state.Error)
		}
		return check(state)
	})
	if err != nil {
		t.Fatalf("%s: %v\nlast state: %+v", what, err, state)
	}
	return state
}

// group returns the counts of the default vhost's queues of one type.
func group(s topology.RabbitCluster, typ string) topology.QueueGroup {
	for _, g := range s.Queues {
		if g.VHost == "/" && g.Type == typ {
			return g
		}
	}
	return topology.QueueGroup{}
}

func healthy(s topology.RabbitCluster) error {
	if len(s.Nodes) != 3 {
		return fmt.Errorf("%d nodes, want 3", len(s.Nodes))
	}
	for _, n := range s.Nodes {
		if !n.Running || len(n.Partitions) > 0 || n.MemAlarm || n.DiskAlarm || len(n.Peers) != 2 {
			return fmt.Errorf("node not healthy: %+v", n)
		}
	}
	classic, quorum := group(s, "classic"), group(s, "quorum")
	if classic.Unsynchronised+classic.MirrorSyncCritical+quorum.WithoutQuorum+quorum.QuorumCritical != 0 || quorum.Count != 1 {
		return fmt.Errorf("queues not healthy: %+v", s.Queues)
	}
	return nil
}

func linksRunning(s topology.RabbitCluster) error {
	if len(s.FederationLinks) != 2 {
		return fmt.Errorf("%d federation links, want 2", len(s.FederationLinks))
	}
	for _, l := range s.FederationLinks {
		if l.Status != "running" {
			return fmt.Errorf("link not running: %+v", l)
		}
	}
	return nil
}

// criticalOn asks a node's own health checks whether quorum and mirror
// criticality stand, the oracle for the counts the probe derives.
func criticalOn(t *testing.T, l *lab.RabbitLab, node string) (quorum, mirrors bool) {
	t.Helper()
	api, err := l.Client(node)
	if err != nil {
		t.Fatal(err)
	}
	q, err := api.HealthCheckNodeIsQuorumCritical()
	if err != nil {
		t.Fatal(err)
	}
	m, err := api.HealthCheckNodeIsMirrorSyncCritical()
	if err != nil {
		t.Fatal(err)
	}
	return !q.Ok(), !m.Ok()
}

func TestLabHealthy(t *testing.T) {
	l := rabbitLab(t)
	s := eventually(t, labClient(t, "dc1", l.ManagementURLs()...), "healthy cluster", healthy)
	if s.Version == "" || s.ClusterName != lab.RabbitClusterName || !s.MirroringSupported {
		t.Errorf("overview: version %q, cluster name %q, mirroring %v", s.Version, s.ClusterName, s.MirroringSupported)
	}
	if q, m := criticalOn(t, l, l.Cluster[0].Name); q || m {
		t.Errorf("health checks disagree: quorum critical %v, mirror sync critical %v", q, m)
	}
	eventually(t, labClient(t, "dr", l.DR.ManagementURL()), "federation links running", linksRunning)
}

func TestLabMembersStopped(t *testing.T) {
	l := rabbitLab(t)
	c := labClient(t, "dc1", l.ManagementURLs()...)
	eventually(t, c, "healthy before", healthy)
	first, second := l.Cluster[0].Name, l.Cluster[1].Name
	t.Cleanup(func() {
		for _, n := range []string{second, first} {
			if err := l.StartApp(n); err != nil {
				t.Errorf("restarting %s: %v", n, err)
			}
		}
		eventually(t, c, "healthy after", healthy)
	})

	// The first URL goes down with its node: the others serve the view.
	if err := l.StopApp(first); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "one member stopped", func(s topology.RabbitCluster) error {
		classic, quorum := group(s, "classic"), group(s, "quorum")
		switch {
		case len(s.Nodes) != 3 || s.Nodes[0].Name != first || s.Nodes[0].Running:
			return fmt.Errorf("%s still running: %+v", first, s.Nodes)
		// Mirrors go only to running nodes: ha-all wants one on the other
		// running node and has it; ha-two (exactly 2) re-mirrors itself
		// (issue 19, item 8: maintenance must not read unsynchronised).
		case classic.Unsynchronised != 0:
			return fmt.Errorf("unsynchronised %d, want 0", classic.Unsynchronised)
		case quorum.WithoutQuorum != 0 || quorum.QuorumCritical != 1:
			return fmt.Errorf("quorum queue: %+v, want still available but critical", quorum)
		}
		return nil
	})
	if q, _ := criticalOn(t, l, second); !q {
		t.Errorf("%s's health check does not find the quorum queue critical", second)
	}

	if err := l.StopApp(second); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "two members stopped", func(s topology.RabbitCluster) error {
		classic, quorum := group(s, "classic"), group(s, "quorum")
		switch {
		case s.Nodes[1].Running:
			return fmt.Errorf("%s still running", second)
		// One node running: no mirror can be placed (none is short of
		// one), but the leader holds the only copy of both queues.
		case classic.Unsynchronised != 0 || classic.MirrorSyncCritical != 2:
			return fmt.Errorf("classic: %+v, want both mirrored queues critical, none unsynchronised", classic)
		case quorum.WithoutQuorum != 1:
			return fmt.Errorf("quorum queue: %+v, want without quorum", quorum)
		}
		return nil
	})
}

func TestLabFederationUpstreamDown(t *testing.T) {
	l := rabbitLab(t)
	c := labClient(t, "dr", l.DR.ManagementURL())
	eventually(t, c, "links running before", linksRunning)
	ports, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetUpstream("amqp://guest:guest@127.0.0.1:" + strconv.Itoa(ports[0])); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "links down", func(s topology.RabbitCluster) error {
		if len(s.FederationLinks) != 2 {
			return fmt.Errorf("%d links, want 2", len(s.FederationLinks))
		}
		for _, l := range s.FederationLinks {
			if l.Status == "running" || l.Upstream != lab.RabbitUpstream || l.Error == "" {
				return fmt.Errorf("link not reported down from its upstream: %+v", l)
			}
		}
		return nil
	})
	if err := l.SetUpstream(); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "links running again", linksRunning)
}

func TestLabMemoryAlarm(t *testing.T) {
	l := rabbitLab(t)
	c := labClient(t, "dc1", l.ManagementURLs()...)
	eventually(t, c, "healthy before", healthy)
	node := l.Cluster[1].Name
	if err := l.SetMemoryWatermark(node, 0.0001); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.SetMemoryWatermark(node, lab.RabbitDefaultWatermark); err != nil {
			t.Error(err)
		}
	})
	eventually(t, c, "memory alarm", func(s topology.RabbitCluster) error {
		for _, n := range s.Nodes {
			if n.MemAlarm != (n.Name == node) || n.DiskAlarm {
				return fmt.Errorf("alarms: %+v", s.Nodes)
			}
		}
		return nil
	})
	if err := l.SetMemoryWatermark(node, lab.RabbitDefaultWatermark); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "alarm cleared", healthy)
}
