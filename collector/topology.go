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
	for _, d := range []*prometheus.Desc{c.tolerated, c.siteSurvivable, c.devicesWithoutGateway, c.archInfo, c.archDegraded, c.splitBrain, c.singlePoint, c.lossDegrades} {
		ch <- d
	}
}

func (c *topologyCollector) Probe(context.Context) (topology.Part, error) { return nil, nil }

func (c *topologyCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	v := o.Verdict
	for _, cv := range v.Components {
		ch <- prometheus.MustNewConstMetric(c.tolerated, prometheus.GaugeValue, float64(cv.FailuresTolerated), cv.Component, cv.Name)
	}
	for _, sv := range v.Sites {
		ch <- prometheus.MustNewConstMetric(c.siteSurvivable, prometheus.GaugeValue, boolValue(sv.Survivable), sv.Site)
		if len(o.Snapshot.Gateways) > 0 {
			ch <- prometheus.MustNewConstMetric(c.devicesWithoutGateway, prometheus.GaugeValue, float64(sv.DevicesWithoutGateway), sv.Site)
		}
	}
	// An unknown class is no sample: the reason is in the verdict's Unknown.
	if v.Architecture.Known() {
		ch <- prometheus.MustNewConstMetric(c.archInfo, prometheus.GaugeValue, 1, v.Architecture.Observed, v.Architecture.Expected)
		ch <- prometheus.MustNewConstMetric(c.archDegraded, prometheus.GaugeValue, boolValue(v.Architecture.Degraded()))
	}
	for _, sb := range v.SplitBrain {
		ch <- prometheus.MustNewConstMetric(c.splitBrain, prometheus.GaugeValue, boolValue(sb.Active), sb.Component, sb.Name)
	}
	for _, mv := range v.Members {
		if mv.Stops != topology.Unknown {
			ch <- prometheus.MustNewConstMetric(c.singlePoint, prometheus.GaugeValue, boolValue(mv.Stops == topology.True), mv.Component, mv.Name, mv.Site)
		}
		if mv.BelowClass != topology.Unknown {
			ch <- prometheus.MustNewConstMetric(c.lossDegrades, prometheus.GaugeValue, boolValue(mv.BelowClass == topology.True), mv.Component, mv.Name, mv.Site)
		}
	}
}
