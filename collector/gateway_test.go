package collector

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/iagsim"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

var gatewayMetrics = []string{
	"iap_ha_gateway_up", "iap_ha_gateway_info", "iap_ha_gateway_devices", "iap_ha_gateway_capacity_devices",
	"iap_ha_gateway_iap_adapter_up", "iap_ha_gateway_adapter_disagrees",
}

// iapWithAdapter is an IAP server whose adapter list holds one gateway adapter.
func iapWithAdapter(name string, up bool, adapter, state, connection string) topology.IAPServer {
	return topology.IAPServer{Name: name, Up: up, Adapters: []topology.IAPModule{
		{Name: "ServiceNow", PackageID: "@itential/adapter-servicenow", State: "RUNNING", Connection: "ONLINE", Healthy: true},
		{
			Name: adapter, PackageID: "@itential/adapter-automation_gateway", State: state, Connection: connection,
			Healthy: state == "RUNNING" && connection == "ONLINE",
		},
	}}
}

func TestIAPAdapterView(t *testing.T) {
	const adapter = "IAG-iag1"
	for _, tc := range []struct {
		name    string
		servers []topology.IAPServer
		adapter string
		want    topology.Tristate
	}{
		{name: "no IAP servers probed", want: topology.Unknown, adapter: adapter},
		{
			name:    "no adapter configured",
			servers: []topology.IAPServer{iapWithAdapter("iap1", true, adapter, "RUNNING", "ONLINE")},
			want:    topology.Unknown,
		},
		{
			name:    "adapter lists not read",
			servers: []topology.IAPServer{{Name: "iap1", Up: true}},
			adapter: adapter, want: topology.Unknown,
		},
		{
			name:    "another gateway's adapter",
			servers: []topology.IAPServer{iapWithAdapter("iap1", true, "IAG-iag2", "RUNNING", "ONLINE")},
			adapter: adapter, want: topology.Unknown,
		},
		{
			name: "online on every server",
			servers: []topology.IAPServer{
				iapWithAdapter("iap1", true, adapter, "RUNNING", "ONLINE"),
				iapWithAdapter("iap2", true, adapter, "RUNNING", "ONLINE"),
			},
			adapter: adapter, want: topology.True,
		},
		{
			name: "offline on one server",
			servers: []topology.IAPServer{
				iapWithAdapter("iap1", true, adapter, "RUNNING", "ONLINE"),
				iapWithAdapter("iap2", true, adapter, "RUNNING", "OFFLINE"),
			},
			adapter: adapter, want: topology.False,
		},
		{
			name:    "stopped",
			servers: []topology.IAPServer{iapWithAdapter("iap1", true, adapter, "STOPPED", "")},
			adapter: adapter, want: topology.False,
		},
		{
			// A down server's last adapter list is not its view now.
			name: "offline only on a server that is down",
			servers: []topology.IAPServer{
				iapWithAdapter("iap1", true, adapter, "RUNNING", "ONLINE"),
				iapWithAdapter("iap2", false, adapter, "DEAD", ""),
			},
			adapter: adapter, want: topology.True,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := iapAdapterView(tc.servers, tc.adapter); got != tc.want {
				t.Errorf("iapAdapterView = %v, want %v", got, tc.want)
			}
		})
	}
}

// gatewayScrape returns a scraper running only the gateway collector, built
// by its factory, and closed with the test.
func gatewayScraper(t *testing.T, gateways ...config.Gateway) *Scraper {
	t.Helper()
	return testScraper(t, &config.Config{Gateways: gateways}, "gateway")
}

func TestGatewayUpdate(t *testing.T) {
	crossCheck := []string{"iap_ha_gateway_iap_adapter_up", "iap_ha_gateway_adapter_disagrees"}
	nearFull := topology.Gateway{
		Name: "iag-dc1", Site: "dc1", Up: true, Version: "4.3.7", AnsibleVersion: "2.11.12",
		Devices: map[string]int{"devices": 120, "netmiko": 4380, "netconf": 0}, Capacity: 5000, Adapter: "IAG-iag1",
	}
	down := topology.Gateway{Name: "iag-dc2", Site: "dc2", Error: "poll: connection refused", Capacity: 5000, Adapter: "IAG-iag2"}
	for _, tc := range []struct {
		name     string
		snapshot topology.Snapshot
		metrics  []string // compared; all gateway metrics when nil
		want     string
	}{
		{
			name: "IAP agrees: one up, one down",
			snapshot: topology.Snapshot{
				Gateways: []topology.Gateway{nearFull, down},
				IAP: []topology.IAPServer{
					iapWithAdapter("iap1", true, "IAG-iag1", "RUNNING", "ONLINE"),
					iapWithAdapter("iap2", true, "IAG-iag2", "RUNNING", "OFFLINE"),
				},
			},
			want: `
# HELP iap_ha_gateway_adapter_disagrees Whether IAP's adapter state for this gateway contradicts the gateway's own answer to /poll (1) or not (0).
# TYPE iap_ha_gateway_adapter_disagrees gauge
iap_ha_gateway_adapter_disagrees{gateway="iag-dc1",site="dc1"} 0
iap_ha_gateway_adapter_disagrees{gateway="iag-dc2",site="dc2"} 0
# HELP iap_ha_gateway_capacity_devices Devices the Automation Gateway is sized for (Itential: 5000 per node).
# TYPE iap_ha_gateway_capacity_devices gauge
iap_ha_gateway_capacity_devices{gateway="iag-dc1",site="dc1"} 5000
iap_ha_gateway_capacity_devices{gateway="iag-dc2",site="dc2"} 5000
# HELP iap_ha_gateway_devices Devices in one inventory of the Automation Gateway (devices is the top-level Ansible inventory).
# TYPE iap_ha_gateway_devices gauge
iap_ha_gateway_devices{gateway="iag-dc1",inventory="devices",site="dc1"} 120
iap_ha_gateway_devices{gateway="iag-dc1",inventory="netconf",site="dc1"} 0
iap_ha_gateway_devices{gateway="iag-dc1",inventory="netmiko",site="dc1"} 4380
# HELP iap_ha_gateway_iap_adapter_up Whether IAP's adapter for this gateway is RUNNING and ONLINE on every IAP server that lists it (1) or not on at least one (0).
# TYPE iap_ha_gateway_iap_adapter_up gauge
iap_ha_gateway_iap_adapter_up{gateway="iag-dc1",site="dc1"} 1
iap_ha_gateway_iap_adapter_up{gateway="iag-dc2",site="dc2"} 0
# HELP iap_ha_gateway_info Versions the Automation Gateway reports on /api/v2.0/status; always 1.
# TYPE iap_ha_gateway_info gauge
iap_ha_gateway_info{ansible_version="2.11.12",gateway="iag-dc1",site="dc1",version="4.3.7"} 1
# HELP iap_ha_gateway_up Whether the Automation Gateway answered /api/v2.0/poll (1) or not (0).
# TYPE iap_ha_gateway_up gauge
iap_ha_gateway_up{gateway="iag-dc1",site="dc1"} 1
iap_ha_gateway_up{gateway="iag-dc2",site="dc2"} 0
`,
		},
		{
			// IAP's adapter polls every 300 s: it still sees the dead
			// gateway online, and an online gateway offline.
			name: "IAP disagrees both ways",
			snapshot: topology.Snapshot{
				Gateways: []topology.Gateway{nearFull, down},
				IAP: []topology.IAPServer{
					iapWithAdapter("iap1", true, "IAG-iag1", "RUNNING", "OFFLINE"),
					iapWithAdapter("iap2", true, "IAG-iag2", "RUNNING", "ONLINE"),
				},
			},
			metrics: crossCheck,
			want: `
# HELP iap_ha_gateway_adapter_disagrees Whether IAP's adapter state for this gateway contradicts the gateway's own answer to /poll (1) or not (0).
# TYPE iap_ha_gateway_adapter_disagrees gauge
iap_ha_gateway_adapter_disagrees{gateway="iag-dc1",site="dc1"} 1
iap_ha_gateway_adapter_disagrees{gateway="iag-dc2",site="dc2"} 1
# HELP iap_ha_gateway_iap_adapter_up Whether IAP's adapter for this gateway is RUNNING and ONLINE on every IAP server that lists it (1) or not on at least one (0).
# TYPE iap_ha_gateway_iap_adapter_up gauge
iap_ha_gateway_iap_adapter_up{gateway="iag-dc1",site="dc1"} 0
iap_ha_gateway_iap_adapter_up{gateway="iag-dc2",site="dc2"} 1
`,
		},
		{
			// Without IAP's adapter lists there is nothing to compare.
			name:     "IAP view unknown",
			snapshot: topology.Snapshot{Gateways: []topology.Gateway{nearFull}},
			metrics:  crossCheck,
			want:     "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := gatewayScraper(t, config.Gateway{Name: "unused", URL: "http://127.0.0.1:1"})
			scrape := &topology.Observation{Snapshot: &tc.snapshot, Results: map[string]topology.ProbeResult{"gateway": {}}}
			names := tc.metrics
			if names == nil {
				names = gatewayMetrics
			}
			if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(tc.want), names...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestGatewayCollectorAgainstSimulator runs the whole path over TCP: the
// factory builds the probe from the config, the scrape probes two simulated
// gateways (one near capacity, one down) and Update translates.
func TestGatewayCollectorAgainstSimulator(t *testing.T) {
	full, err := iagsim.Start(iagsim.Options{Devices: map[string]int{"devices": 500, "netmiko": 4000}})
	if err != nil {
		t.Fatalf("starting the gateway simulator: %v", err)
	}
	defer full.Close()
	gone, err := iagsim.Start(iagsim.Options{})
	if err != nil {
		t.Fatalf("starting the gateway simulator: %v", err)
	}
	defer gone.Close()
	if err := gone.SetFault(iagsim.Down); err != nil {
		t.Fatal(err)
	}
	creds := config.Credentials{Username: iagsim.DefaultUsername, Password: iagsim.DefaultPassword}
	s := gatewayScraper(t,
		config.Gateway{Name: "iag-dc1", URL: full.URL(), Site: "dc1", Credentials: creds, Timeout: model.Duration(5 * time.Second)},
		config.Gateway{Name: "iag-dc2", URL: gone.URL(), Site: "dc2", Credentials: creds, Capacity: 2000},
	)

	scrape := s.Probe(context.Background())

	if err := scrape.Results["gateway"].Err; err != nil {
		t.Fatalf("a gateway that is down failed the collector: %v", err)
	}
	want := `
# HELP iap_ha_gateway_capacity_devices Devices the Automation Gateway is sized for (Itential: 5000 per node).
# TYPE iap_ha_gateway_capacity_devices gauge
iap_ha_gateway_capacity_devices{gateway="iag-dc1",site="dc1"} 5000
iap_ha_gateway_capacity_devices{gateway="iag-dc2",site="dc2"} 2000
# HELP iap_ha_gateway_devices Devices in one inventory of the Automation Gateway (devices is the top-level Ansible inventory).
# TYPE iap_ha_gateway_devices gauge
iap_ha_gateway_devices{gateway="iag-dc1",inventory="devices",site="dc1"} 500
iap_ha_gateway_devices{gateway="iag-dc1",inventory="netmiko",site="dc1"} 4000
# HELP iap_ha_gateway_info Versions the Automation Gateway reports on /api/v2.0/status; always 1.
# TYPE iap_ha_gateway_info gauge
iap_ha_gateway_info{ansible_version="2.11.12",gateway="iag-dc1",site="dc1",version="4.3.7"} 1
# HELP iap_ha_gateway_up Whether the Automation Gateway answered /api/v2.0/poll (1) or not (0).
# TYPE iap_ha_gateway_up gauge
iap_ha_gateway_up{gateway="iag-dc1",site="dc1"} 1
iap_ha_gateway_up{gateway="iag-dc2",site="dc2"} 0
# HELP iap_ha_scrape_collector_success Whether a collector's probes finished within the deadline without error (1) or not (0).
# TYPE iap_ha_scrape_collector_success gauge
iap_ha_scrape_collector_success{collector="gateway"} 1
`
	names := append([]string{"iap_ha_scrape_collector_success"}, gatewayMetrics...)
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(s.Metrics(scrape)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestGatewayCollectorWithoutGateways(t *testing.T) {
	if _, err := newGatewayCollector(&config.Config{}, promslog.NewNopLogger()); !errors.Is(err, ErrNoData) {
		t.Errorf("no gateways configured: err %v, want ErrNoData", err)
	}
	if _, err := newGatewayCollector(&config.Config{Gateways: []config.Gateway{{Name: "g", URL: "iag1:8083"}}}, promslog.NewNopLogger()); err == nil {
		t.Error("a gateway URL without scheme was accepted")
	}
}
