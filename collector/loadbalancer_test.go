package collector

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

var loadBalancerMetrics = []string{
	"iap_ha_loadbalancer_up", "iap_ha_loadbalancer_unmapped_servers", "iap_ha_loadbalancer_routed_working_servers",
	"iap_ha_loadbalancer_routed_idle_servers", "iap_ha_loadbalancer_server_routed", "iap_ha_loadbalancer_server_reachable",
	"iap_ha_loadbalancer_server_backup", "iap_ha_loadbalancer_server_maintenance", "iap_ha_loadbalancer_promoted_unrouted",
	"iap_ha_loadbalancer_vantage_disagrees",
}

// TestLoadBalancerCollectorRealHAProxy runs the whole path: simulated IAP
// servers behind the lab's real HAProxy, read through its stats socket and
// through its frontend (the vip kind), in one scrape with the iap
// collector whose answers the model compares them with.
func TestLoadBalancerCollectorRealHAProxy(t *testing.T) {
	sim, err := iapsim.Start(iapsim.Topology{
		Users: map[string]string{"admin": "pw"},
		Servers: []iapsim.ServerSpec{
			{Name: "iap-dc1-1", Cluster: "dc1", Release: iapsim.Release2023_1, ServerID: "id-dc1-1"},
			{Name: "iap-dc1-2", Cluster: "dc1", Release: iapsim.Release2023_1, ServerID: "id-dc1-2"},
			{Name: "iap-dc2-1", Cluster: "dc2", Release: iapsim.Release2023_1, ServerID: "id-dc2-1", Role: "standby"},
		},
	})
	if err != nil {
		t.Fatalf("starting the IAP simulator: %v", err)
	}
	defer sim.Close()
	h, err := lab.StartHAProxy(lab.HAProxyOptions{Servers: []lab.HAProxyServer{
		{Name: "iap-dc1-1", Addr: sim.Server("iap-dc1-1").Addr()},
		{Name: "iap-dc1-2", Addr: sim.Server("iap-dc1-2").Addr()},
		{Name: "iap-dc2-1", Addr: sim.Server("iap-dc2-1").Addr(), Backup: true},
	}})
	if err != nil {
		t.Fatalf("starting HAProxy: %v", err)
	}
	defer h.Stop()

	cfg := &config.Config{
		Sites: []config.Site{{Name: "dc1"}, {Name: "dc2", Role: config.SiteStandby}},
		IAP: config.IAP{
			HealthTimeout: model.Duration(2 * time.Second),
			Auth:          config.IAPAuth{Credentials: config.Credentials{Username: "admin", Password: "pw"}},
		},
		LoadBalancers: []config.LoadBalancer{
			{Name: "haproxy-dc1", Site: "dc1", Kind: config.BalancerHAProxy, StatsSocket: h.Socket, Backend: lab.HAProxyBackend},
			{Name: "vip-dc1", Site: "dc1", Kind: config.BalancerVIP, URL: "http://" + h.Frontend, Requests: 8},
		},
	}
	for _, s := range sim.Servers() {
		role := config.RoleActive
		if s.Cluster() == "dc2" {
			role = config.RoleStandby
		}
		cfg.IAP.Servers = append(cfg.IAP.Servers, config.IAPServer{Name: s.Name(), URL: s.URL(), Site: s.Cluster(), Cluster: s.Cluster(), Role: role})
	}
	s := testScraper(t, cfg, "iap", "loadbalancer")

	scrape := s.Probe(context.Background())
	if err := scrape.Results["loadbalancer"].Err; err != nil {
		t.Fatal(err)
	}
	want, err := os.Open("testdata/loadbalancer.prom")
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(s.Metrics(scrape), want, loadBalancerMetrics...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(s.Metrics(scrape), loadBalancerMetrics...); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	// Both actives fail: HAProxy sends everyone to the backup, a standby
	// whose workers are stopped. No server it routes to works tasks.
	for _, name := range []string{"iap-dc1-1", "iap-dc1-2"} {
		if err := sim.Server(name).SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
			t.Fatal(err)
		}
		if err := h.WaitState(name, "DOWN", 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	scrape = s.Probe(context.Background())
	idle := `
# HELP iap_ha_loadbalancer_routed_idle_servers IAP servers the balancer sends traffic to whose task worker is stopped: users sent there wait for work no server picks up.
# TYPE iap_ha_loadbalancer_routed_idle_servers gauge
iap_ha_loadbalancer_routed_idle_servers{balancer="haproxy-dc1"} 1
iap_ha_loadbalancer_routed_idle_servers{balancer="vip-dc1"} 1
# HELP iap_ha_loadbalancer_routed_working_servers IAP servers the balancer sends traffic to that work tasks.
# TYPE iap_ha_loadbalancer_routed_working_servers gauge
iap_ha_loadbalancer_routed_working_servers{balancer="haproxy-dc1"} 0
iap_ha_loadbalancer_routed_working_servers{balancer="vip-dc1"} 0
`
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(idle),
		"iap_ha_loadbalancer_routed_idle_servers", "iap_ha_loadbalancer_routed_working_servers"); err != nil {
		t.Error(err)
	}
}

func TestLoadBalancerCollectorWithoutBalancers(t *testing.T) {
	if _, err := newLoadBalancerCollector(&config.Config{}, promslog.NewNopLogger()); !errors.Is(err, ErrNoData) {
		t.Errorf("no balancers configured: err %v, want ErrNoData", err)
	}
}
