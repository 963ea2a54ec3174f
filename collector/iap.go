package collector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/probe/iap"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	registerCollector("iap", true, newIAPCollector)
}

var (
	iapLabels = []string{"server", "site"}

	iapUpDesc = iapDesc("up",
		"Whether /health/status answered 200 with a valid body in time (1) or not (0).")
	iapInfoDesc = iapDesc("info",
		"IAP server identity: the server id, release and core version it reports.", "server_id", "release", "version")
	iapDependencyUpDesc = iapDesc("dependency_up",
		"IAP's own view of a dependency it lists in /health/status (mongo, redis, rabbitmq, vault): running (1) or not (0).", "service")
	iapApplicationsHealthyDesc = iapDesc("applications_healthy",
		"Whether /health/status says the applications are running (1) rather than degraded (0).")
	iapAdaptersHealthyDesc = iapDesc("adapters_healthy",
		"Whether /health/status says the adapters are running (1) rather than degraded (0).")
	iapApplicationUpDesc = iapDesc("application_up",
		"Whether an application is RUNNING (1) or not (0).", "application")
	iapAdapterUpDesc = iapDesc("adapter_up",
		"Whether an adapter is RUNNING with its connection ONLINE (1) or not (0).", "adapter")
	iapTaskWorkerRunningDesc = iapDesc("task_worker_running",
		"Whether the server's task worker runs now (1: it works tasks, as an active server does) or not (0).")
	iapJobWorkerRunningDesc = iapDesc("job_worker_running",
		"Whether the server's job worker runs now (1) or not (0); 2023.1 and later.")
	iapTaskWorkerConfiguredDesc = iapDesc("task_worker_configured",
		"Whether the server's own configuration starts the task worker (1, active) or not (0, standby): the profile's taskWorkerProps up to 2023.2, task_worker_enabled of /server/config on Platform 6.")
	iapJobWorkerConfiguredDesc = iapDesc("job_worker_configured",
		"Whether the server's own configuration starts the job worker (1) or not (0): job_worker_enabled of /server/config, Platform 6 only.")
	iapDeclaredActiveDesc = iapDesc("declared_active",
		"The role the exporter's configuration declares for the server: active (1) or standby (0).")
	iapAPIUpDesc = iapDesc("api_up",
		"Whether every authenticated API call to the server (login, health details, workers) succeeded (1) or not (0); absent without credentials.")
	iapServersDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "iap", "servers"),
		"IAP servers of a site observed active (answering, task worker running), standby (answering, task worker stopped), down, or unknown (answering, worker state not read).",
		[]string{"site", "state"}, nil)
)

func iapDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "iap", name), help, append(iapLabels, extra...), nil)
}

// iapCollector reports the IAP servers and which of them work tasks.
type iapCollector struct {
	client *iap.Client
}

func (c *iapCollector) keepLogins(old Collector) {
	if o, ok := old.(*iapCollector); ok {
		c.client.KeepLogins(o.client)
	}
}

func newIAPCollector(cfg *config.Config, logger *slog.Logger) (Collector, error) {
	if len(cfg.IAP.Servers) == 0 {
		return nil, ErrNoData
	}
	p, err := iap.NewClient(cfg.IAP, logger)
	if err != nil {
		return nil, err
	}
	return &iapCollector{client: p}, nil
}

func (c *iapCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch,
		iapUpDesc, iapInfoDesc, iapDependencyUpDesc, iapApplicationsHealthyDesc, iapAdaptersHealthyDesc,
		iapApplicationUpDesc, iapAdapterUpDesc, iapTaskWorkerRunningDesc, iapJobWorkerRunningDesc,
		iapTaskWorkerConfiguredDesc, iapJobWorkerConfiguredDesc, iapDeclaredActiveDesc, iapAPIUpDesc, iapServersDesc,
	)
}

func (c *iapCollector) Probe(ctx context.Context) (topology.Part, error) {
	return c.client.Probe(ctx), nil
}

func (c *iapCollector) Close() error { return c.client.Close() }

func (c *iapCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	// Every site with an IAP server gets all three states, zeros included,
	// so that "no active server" is a value, not a missing series.
	counts := map[string]map[string]int{}
	for _, srv := range o.Config.IAP.Servers {
		if counts[srv.Site] == nil {
			counts[srv.Site] = map[string]int{topology.StateActive: 0, topology.StateStandby: 0, topology.StateDown: 0, topology.StateUnknown: 0}
		}
	}
	for _, srv := range o.Snapshot.IAP {
		if counts[srv.Site] == nil {
			counts[srv.Site] = map[string]int{topology.StateActive: 0, topology.StateStandby: 0, topology.StateDown: 0, topology.StateUnknown: 0}
		}
		counts[srv.Site][srv.ObservedState()]++
		updateIAPServer(srv, ch)
	}
	for site, states := range counts {
		for state, n := range states {
			ch <- prometheus.MustNewConstMetric(iapServersDesc, prometheus.GaugeValue, float64(n), site, state)
		}
	}
}

func updateIAPServer(srv topology.IAPServer, ch chan<- prometheus.Metric) {
	send := gauges(ch)
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		send(d, v, append([]string{srv.Name, srv.Site}, extra...)...)
	}
	// Unknown facts (not asked, or the answer failed) send no sample.
	tristate := func(d *prometheus.Desc, t topology.Tristate) {
		if t != topology.Unknown {
			gauge(d, boolValue(t == topology.True))
		}
	}

	gauge(iapUpDesc, boolValue(srv.Up))
	gauge(iapDeclaredActiveDesc, boolValue(srv.DeclaredRole == config.RoleActive))
	if srv.ServerID != "" || srv.Release != "" {
		gauge(iapInfoDesc, 1, srv.ServerID, srv.Release, srv.Version)
	}
	for _, svc := range srv.Services {
		gauge(iapDependencyUpDesc, boolValue(svc.Running), svc.Name)
	}
	tristate(iapApplicationsHealthyDesc, srv.AppsHealthy)
	tristate(iapAdaptersHealthyDesc, srv.AdaptersHealthy)
	for _, m := range srv.Applications {
		gauge(iapApplicationUpDesc, boolValue(m.Healthy), m.Name)
	}
	for _, m := range srv.Adapters {
		gauge(iapAdapterUpDesc, boolValue(m.Healthy), m.Name)
	}
	tristate(iapTaskWorkerRunningDesc, srv.TaskWorker)
	tristate(iapJobWorkerRunningDesc, srv.JobWorker)
	tristate(iapTaskWorkerConfiguredDesc, srv.ConfiguredActive)
	tristate(iapJobWorkerConfiguredDesc, srv.ConfiguredJobWorker)
	tristate(iapAPIUpDesc, srv.APIUp)
}
