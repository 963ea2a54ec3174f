package collector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/probe/loadbalancer"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	registerCollector("loadbalancer", true, newLoadBalancerCollector)
}

// loadBalancerCollector reports the balancers in front of the IAP servers:
// each server's pool state and whether it takes traffic, and the model's
// judgement of where users are sent against who works tasks.
type loadBalancerCollector struct {
	prober *probe.Set[topology.LoadBalancer]

	up, unmapped, routedWorking, routedIdle                    *prometheus.Desc
	routed, reachable, backup, maintenance, promoted, disagree *prometheus.Desc
}

func newLoadBalancerCollector(cfg *config.Config, logger *slog.Logger) (Collector, error) {
	if len(cfg.LoadBalancers) == 0 {
		return nil, ErrNoData
	}
	p, err := loadbalancer.New(cfg.LoadBalancers, cfg.IAP.Servers, logger)
	if err != nil {
		return nil, err
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "loadbalancer", name), help, labels, nil)
	}
	return &loadBalancerCollector{
		prober: p,
		up: desc("up", "Whether the load balancer answered: HAProxy's stats socket with the backend, or a server's /health/status through the virtual IP (1) or not (0).",
			"balancer", "kind", "site"),
		unmapped: desc("unmapped_servers", "Servers of the balancer (or answers through the virtual IP) that match no configured IAP server.", "balancer"),
		routedWorking: desc("routed_working_servers",
			"IAP servers the balancer sends traffic to that work tasks.", "balancer"),
		routedIdle: desc("routed_idle_servers",
			"IAP servers the balancer sends traffic to whose task worker is stopped: users sent there wait for work no server picks up.", "balancer"),
		routed: desc("server_routed", "Whether the balancer sends new traffic to this IAP server now (1) or not (0).", "balancer", "server"),
		reachable: desc("server_reachable",
			"Whether the balancer's own health check reaches this IAP server (1) or fails (0); absent where it runs none (MAINT, or a server that did not answer through the virtual IP).",
			"balancer", "server"),
		backup:      desc("server_backup", "Whether the server is a backup in the balancer's pool (HAProxy).", "balancer", "server"),
		maintenance: desc("server_maintenance", "Whether an operator took the server out of the balancer's pool: MAINT or DRAIN (HAProxy).", "balancer", "server"),
		promoted: desc("promoted_unrouted",
			"1 when this declared standby works tasks (it was promoted) and the balancer sends it no traffic.", "balancer", "server"),
		disagree: desc("vantage_disagrees",
			"1 when the balancer's check and the exporter's /health/status disagree on whether this server answers: a partition between them, not a failure; absent while either view is missing.",
			"balancer", "server"),
	}, nil
}

func (c *loadBalancerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.unmapped, c.routedWorking, c.routedIdle, c.routed, c.reachable, c.backup, c.maintenance, c.promoted, c.disagree} {
		ch <- d
	}
}

func (c *loadBalancerCollector) Probe(ctx context.Context) (topology.Part, error) {
	return topology.LoadBalancers(c.prober.Probe(ctx)), nil
}

func (c *loadBalancerCollector) Close() error { return c.prober.Close() }

func (c *loadBalancerCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, b := range o.Verdict.Balancers {
		gauge(c.up, boolValue(b.Up), b.Balancer, b.Kind, b.Site)
		if !b.Up {
			continue
		}
		gauge(c.unmapped, float64(b.Unmapped), b.Balancer)
		gauge(c.routedWorking, float64(b.RoutedWorking), b.Balancer)
		gauge(c.routedIdle, float64(b.RoutedIdle), b.Balancer)
		for _, sv := range b.Servers {
			gauge(c.routed, boolValue(sv.Routed), b.Balancer, sv.Server)
			if sv.Reaches != topology.Unknown {
				gauge(c.reachable, boolValue(sv.Reaches == topology.True), b.Balancer, sv.Server)
			}
			if b.Kind == config.BalancerHAProxy {
				gauge(c.backup, boolValue(sv.Backup), b.Balancer, sv.Server)
				gauge(c.maintenance, boolValue(sv.Maintenance), b.Balancer, sv.Server)
			}
			gauge(c.promoted, boolValue(sv.PromotedUnrouted), b.Balancer, sv.Server)
			if sv.Disagrees != topology.Unknown {
				gauge(c.disagree, boolValue(sv.Disagrees == topology.True), b.Balancer, sv.Server)
			}
		}
	}
}
