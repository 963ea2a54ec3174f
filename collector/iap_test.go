package collector

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

var iapMetricNames = []string{
	"iap_ha_iap_up", "iap_ha_iap_info", "iap_ha_iap_dependency_up", "iap_ha_iap_applications_healthy",
	"iap_ha_iap_adapters_healthy", "iap_ha_iap_application_up", "iap_ha_iap_adapter_up",
	"iap_ha_iap_task_worker_running", "iap_ha_iap_job_worker_running", "iap_ha_iap_task_worker_configured",
	"iap_ha_iap_declared_active", "iap_ha_iap_api_up", "iap_ha_iap_servers",
}

// iapScrape runs one scrape of the iap collector alone and returns its metrics.
func iapScrape(t *testing.T, cfg *config.Config) *Scraper {
	t.Helper()
	return testScraper(t, cfg, "iap")
}

// TestIAPCollector: the metrics of a small HA-6 estate in which the standby
// site has a server down, a standby working tasks and a standby configured
// active, and the active site an offline gateway adapter and a failed Redis.
// The state is testdata/iap.snapshot.json, what the probe made of that
// estate on the IAP simulator (the probe's own tests hold how it reads
// IAP; TestIAPCollectorHA6Demo and TestIAPCollectorDeadline run the whole
// path).
func TestIAPCollector(t *testing.T) {
	b, err := os.ReadFile("testdata/iap.snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	var servers []topology.IAPServer
	if err := json.Unmarshal(b, &servers); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Sites: []config.Site{{Name: "dc1"}, {Name: "dc2"}, {Name: "dc3", Role: config.SiteWitness}}}
	for _, srv := range servers {
		role := config.RoleActive
		if srv.Site == "dc2" {
			role = config.RoleStandby
		}
		cfg.IAP.Servers = append(cfg.IAP.Servers, config.IAPServer{Name: srv.Name, URL: srv.URL, Site: srv.Site, Cluster: srv.Site, Role: role})
	}

	s := iapScrape(t, cfg)
	scrape := &topology.Observation{Config: cfg, Snapshot: &topology.Snapshot{IAP: servers}, Results: map[string]topology.ProbeResult{"iap": {}}}
	want, err := os.Open("testdata/iap.prom")
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.CollectAndCompare(s.Metrics(scrape), want, iapMetricNames...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(s.Metrics(scrape), iapMetricNames...); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// TestIAPCollectorHA6Demo is the acceptance check of the demo: the
// exporter's HA-6 config against the simulator's HA-6 topology reports two
// active servers in dc1 and two standby servers in dc2. Both files use the
// fixed ports 13000-13004.
func TestIAPCollectorHA6Demo(t *testing.T) {
	topo, err := iapsim.LoadTopology("../fixtures/iapsim/testdata/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Free ports instead of the files' fixed ones, so that a demo running on
	// this machine does not fail the test; everything else is the files'.
	topo.Control = ""
	for i := range topo.Servers {
		topo.Servers[i].Listen = "127.0.0.1:0"
	}
	sim, err := iapsim.Start(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg, err := config.Load("../fixtures/iapsim/testdata/ha6-exporter.yml")
	if err != nil {
		t.Fatal(err)
	}
	for i, srv := range cfg.IAP.Servers {
		s := sim.Server(srv.Name)
		if s == nil {
			t.Fatalf("ha6-exporter.yml names %s, which ha6.yml does not serve", srv.Name)
		}
		cfg.IAP.Servers[i].URL = s.URL()
	}

	s := iapScrape(t, cfg)
	scrape := s.Probe(context.Background())
	want := `
# HELP iap_ha_iap_servers IAP servers of a site observed active (answering, task worker running), standby (answering, task worker stopped), down, or unknown (answering, worker state not read).
# TYPE iap_ha_iap_servers gauge
iap_ha_iap_servers{site="dc1",state="active"} 2
iap_ha_iap_servers{site="dc1",state="down"} 0
iap_ha_iap_servers{site="dc1",state="standby"} 0
iap_ha_iap_servers{site="dc1",state="unknown"} 0
iap_ha_iap_servers{site="dc2",state="active"} 0
iap_ha_iap_servers{site="dc2",state="down"} 0
iap_ha_iap_servers{site="dc2",state="standby"} 2
iap_ha_iap_servers{site="dc2",state="unknown"} 0
# HELP iap_ha_iap_api_up Whether every authenticated API call to the server (login, health details, workers) succeeded (1) or not (0); absent without credentials.
# TYPE iap_ha_iap_api_up gauge
iap_ha_iap_api_up{server="iap-dc1-1",site="dc1"} 1
iap_ha_iap_api_up{server="iap-dc1-2",site="dc1"} 1
iap_ha_iap_api_up{server="iap-dc2-1",site="dc2"} 1
iap_ha_iap_api_up{server="iap-dc2-2",site="dc2"} 1
`
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), "iap_ha_iap_servers", "iap_ha_iap_api_up"); err != nil {
		t.Error(err)
	}
	// The gateway collector finds IAP's gateway adapters by package id.
	gateways := 0
	for _, srv := range scrape.Snapshot.IAP {
		for _, a := range srv.Adapters {
			if a.PackageID == "@itential/adapter-automation_gateway" {
				gateways++
			}
		}
	}
	if gateways != 4 {
		t.Errorf("%d automation_gateway adapters in the snapshot, want one per server", gateways)
	}
}

// TestIAPCollectorDeadline: a hung server costs its timeout once and the
// others are reported; the scrape ends within its deadline.
func TestIAPCollectorDeadline(t *testing.T) {
	sim, err := iapsim.Start(iapsim.Topology{Users: map[string]string{"admin": "pw"}, Servers: []iapsim.ServerSpec{{Name: "hung"}, {Name: "ok"}}})
	if err != nil {
		t.Fatalf("starting the IAP simulator: %v", err)
	}
	defer sim.Close()
	sim.Server("hung").SetFault(iapsim.Fault{Mode: iapsim.FaultHung})
	cfg := &config.Config{IAP: config.IAP{
		HealthTimeout: model.Duration(2 * time.Second), // the hung server costs it once; the other must answer within it on a busy machine
		Auth:          config.IAPAuth{Credentials: config.Credentials{Username: "admin", Password: "pw"}},
	}}
	for _, s := range sim.Servers() {
		cfg.IAP.Servers = append(cfg.IAP.Servers, config.IAPServer{Name: s.Name(), URL: s.URL(), Site: "dc1"})
	}
	s := iapScrape(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scrape := s.Probe(ctx)
	if ctx.Err() != nil || scrape.Results["iap"].Err != nil {
		t.Fatalf("the scrape overran or failed: %v", scrape.Results["iap"].Err)
	}
	want := `
# HELP iap_ha_iap_up Whether /health/status answered 200 with a valid body in time (1) or not (0).
# TYPE iap_ha_iap_up gauge
iap_ha_iap_up{server="hung",site="dc1"} 0
iap_ha_iap_up{server="ok",site="dc1"} 1
`
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), "iap_ha_iap_up"); err != nil {
		t.Error(err)
	}
}

func TestIAPCollectorWithoutServers(t *testing.T) {
	if _, err := newIAPCollector(&config.Config{}, promslog.NewNopLogger()); err != ErrNoData {
		t.Errorf("got %v, want ErrNoData", err)
	}
}
