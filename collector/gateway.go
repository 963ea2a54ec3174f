package collector

import (
	"context"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/probe/gateway"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	registerCollector("gateway", true, newGatewayCollector)
}

// gatewayCollector reports the Automation Gateways: up, versions, devices per
// inventory against capacity, and whether IAP's adapter for each gateway
// agrees with the gateway's own answer.
func (c *gatewayCollector) keepLogins(old Collector) {
	if o, ok := old.(*gatewayCollector); ok {
		gateway.KeepLogins(c.clients, o.clients)
	}
}

type gatewayCollector struct {
	clients *probe.Set[topology.Gateway]

	up, info, devices, capacity *prometheus.Desc
	iapAdapterUp, disagrees     *prometheus.Desc
}

func newGatewayCollector(cfg *config.Config, logger *slog.Logger) (Collector, error) {
	if len(cfg.Gateways) == 0 {
		return nil, ErrNoData
	}
	p, err := gateway.New(cfg.Gateways, logger)
	if err != nil {
		return nil, err
	}
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		labels := slices.Concat([]string{"gateway", "site"}, extra)
		return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "gateway", name), help, labels, nil)
	}
	return &gatewayCollector{
		clients:  p,
		up:       desc("up", "Whether the Automation Gateway answered /api/v2.0/poll (1) or not (0)."),
		info:     desc("info", "Versions the Automation Gateway reports on /api/v2.0/status; always 1.", "version", "ansible_version"),
		devices:  desc("devices", "Devices in one inventory of the Automation Gateway (devices is the top-level Ansible inventory).", "inventory"),
		capacity: desc("capacity_devices", "Devices the Automation Gateway is sized for (Itential: 5000 per node)."),
		iapAdapterUp: desc("iap_adapter_up",
			"Whether IAP's adapter for this gateway is RUNNING and ONLINE on every IAP server that lists it (1) or not on at least one (0)."),
		disagrees: desc("adapter_disagrees",
			"Whether IAP's adapter state for this gateway contradicts the gateway's own answer to /poll (1) or not (0)."),
	}, nil
}

func (c *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.up, c.info, c.devices, c.capacity, c.iapAdapterUp, c.disagrees)
}

func (c *gatewayCollector) Probe(ctx context.Context) (topology.Part, error) {
	return topology.Gateways(c.clients.Probe(ctx)), nil
}

func (c *gatewayCollector) Close() error { return c.clients.Close() }

func (c *gatewayCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	gauge := gauges(ch)
	for _, g := range o.Snapshot.Gateways {
		gauge(c.up, boolValue(g.Up), g.Name, g.Site)
		gauge(c.capacity, float64(g.Capacity), g.Name, g.Site)
		if g.Version != "" {
			gauge(c.info, 1, g.Name, g.Site, g.Version, g.AnsibleVersion)
		}
		for inv, n := range g.Devices {
			gauge(c.devices, float64(n), g.Name, g.Site, inv)
		}
		view := iapAdapterView(o.Snapshot.IAP, g.Adapter)
		if view == topology.Unknown {
			continue
		}
		gauge(c.iapAdapterUp, boolValue(view == topology.True), g.Name, g.Site)
		gauge(c.disagrees, boolValue((view == topology.True) != g.Up), g.Name, g.Site)
	}
}

// iapAdapterView is what IAP says of the adapter named adapter: True when
// every answering IAP server that lists it has it RUNNING and ONLINE, False
// when one does not, Unknown when no server lists it (or no adapter is
// configured). IAP's adapter polls its gateway only every 300 s, so its view
// may lag the gateway's own by minutes.
func iapAdapterView(servers []topology.IAPServer, adapter string) topology.Tristate {
	if adapter == "" {
		return topology.Unknown
	}
	view := topology.Unknown
	for _, srv := range servers {
		if !srv.Up {
			continue
		}
		for _, a := range srv.Adapters {
			if a.Name != adapter {
				continue
			}
			if !a.Healthy {
				return topology.False
			}
			view = topology.True
		}
	}
	return view
}
