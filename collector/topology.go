package collector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	registerCollector("topology", true, newTopologyCollector)
}

// topologyCollector reports the HA model's verdict over the snapshot the
// other collectors filled in the same scrape, so the numbers agree with each
// other. It probes nothing itself.
type topologyCollector struct {
	tolerated, siteSurvivable, devicesWithoutGateway *prometheus.Desc
	archInfo, archDegraded, splitBrain               *prometheus.Desc
	singlePoint, lossDegrades                        *prometheus.Desc
}

func newTopologyCollector(*config.Config, *slog.Logger) (Collector, error) {
	fq := func(name string) string { return prometheus.BuildFQName(namespace.Namespace, "", name) }
	return &topologyCollector{
		tolerated: prometheus.NewDesc(fq("component_failures_tolerated"),
			"How many more member failures this component instance survives, by the HA model; absent while unknown.",
			[]string{"component", "name"}, nil),
		siteSurvivable: prometheus.NewDesc(fq("site_loss_survivable"),
			"1 if losing every member in this site would leave an IAP server able to work tasks with all it depends on; absent while unknown.",
			[]string{"site"}, nil),
		devicesWithoutGateway: prometheus.NewDesc(fq("site_loss_devices_without_gateway"),
			"Devices whose Automation Gateway stands in this site and would be lost with it.",
			[]string{"site"}, nil),
		archInfo: prometheus.NewDesc(fq("architecture_info"),
			"The architecture class observed from the live topology and the one the configuration declares.",
			[]string{"observed", "expected"}, nil),
		archDegraded: prometheus.NewDesc(fq("architecture_degraded"),
			"1 if the observed architecture class is below the declared one.",
			nil, nil),
		splitBrain: prometheus.NewDesc(fq("split_brain"),
			"1 when the HA model sees two heads in this component instance.",
			[]string{"component", "name"}, nil),
		singlePoint: prometheus.NewDesc(fq("member_single_point_of_failure"),
			"1 if losing this member alone would leave no IAP server able to work tasks with all it depends on; absent while unknown or while the estate cannot work tasks.",
			[]string{"component", "member", "site"}, nil),
		lossDegrades: prometheus.NewDesc(fq("member_loss_degrades_architecture"),
			"1 if losing this member alone would leave the observed architecture class below the declared one; absent without a declared class met now.",
			[]string{"component", "member", "site"}, nil),
	}, nil
}

func (c *topologyCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, c.tolerated, c.siteSurvivable, c.devicesWithoutGateway, c.archInfo, c.archDegraded, c.splitBrain, c.singlePoint, c.lossDegrades)
}

func (c *topologyCollector) Probe(context.Context) (topology.Part, error) { return nil, nil }

func (c *topologyCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	v := o.Verdict
	gauge := gauges(ch)
	for _, cv := range v.Components {
		gauge(c.tolerated, float64(cv.FailuresTolerated), cv.Component, cv.Name)
	}
	for _, sv := range v.Sites {
		gauge(c.siteSurvivable, boolValue(sv.Survivable), sv.Site)
		if len(o.Snapshot.Gateways) > 0 {
			gauge(c.devicesWithoutGateway, float64(sv.DevicesWithoutGateway), sv.Site)
		}
	}
	// An unknown class is no sample: the reason is in the verdict's Unknown.
	if v.Architecture.Known() {
		gauge(c.archInfo, 1, v.Architecture.Observed, v.Architecture.Expected)
		gauge(c.archDegraded, boolValue(v.Architecture.Degraded()))
	}
	for _, sb := range v.SplitBrain {
		gauge(c.splitBrain, boolValue(sb.Active), sb.Component, sb.Name)
	}
	// Members of two groups may share their labels (RabbitMQ nodes of the
	// same name in two clusters of one site): one series each, 1 if either is.
	stops, below := memberSeries{}, memberSeries{}
	for _, mv := range v.Members {
		labels := [3]string{mv.Component, mv.Name, mv.Site}
		stops.add(labels, mv.Stops)
		below.add(labels, mv.BelowClass)
	}
	stops.send(ch, c.singlePoint)
	below.send(ch, c.lossDegrades)
}

// memberSeries gathers one verdict per member's labels; Unknown sends no sample.
type memberSeries struct {
	order []([3]string)
	value map[[3]string]bool
}

func (m *memberSeries) add(labels [3]string, t topology.Tristate) {
	if t == topology.Unknown {
		return
	}
	if m.value == nil {
		m.value = map[[3]string]bool{}
	}
	if _, ok := m.value[labels]; !ok {
		m.order = append(m.order, labels)
	}
	m.value[labels] = m.value[labels] || t == topology.True
}

func (m *memberSeries) send(ch chan<- prometheus.Metric, d *prometheus.Desc) {
	for _, l := range m.order {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, boolValue(m.value[l]), l[0], l[1], l[2])
	}
}
