// Package catalog lists every metric the exporter can expose, read from the
// registered descriptors themselves. The tests of the metrics document, the
// rule pack and the dashboards check against it rather than a hand list.
package catalog

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/exporter"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/remediation"
)

// client_golang's Desc has no accessors; its String form is stable.
var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)

// Metrics maps every iap_ha_ metric the exporter can expose to its label
// names: the descriptors of every registered collector built from
// configFile (give it one target of every kind, as examples/ha6.yml has),
// the remediation receiver's, and the exporter's own metrics.
func Metrics(configFile string) (map[string][]string, error) {
	logger := slog.New(slog.DiscardHandler)
	cfg, err := config.Load(configFile)
	if err != nil {
		return nil, err
	}
	scraper, err := collector.NewScraper(cfg, logger, collector.Names()...)
	if err != nil {
		return nil, err
	}
	defer scraper.Close()
	if got, want := scraper.Collectors(), collector.Names(); !slices.Equal(got, want) {
		return nil, fmt.Errorf("%s builds the collectors %v, not every one of %v: give it a target of every kind", configFile, got, want)
	}

	metrics := map[string][]string{}
	descs := make(chan *prometheus.Desc)
	go func() {
		scraper.Describe(descs)
		remediation.Describe(descs)
		close(descs)
	}()
	var bad []string
	for d := range descs {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			bad = append(bad, d.String())
			continue
		}
		metrics[m[1]] = strings.FieldsFunc(m[2], func(r rune) bool { return r == ',' })
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("unreadable descriptors: %v", bad)
	}

	e, err := exporter.New(exporter.Options{ConfigFile: configFile, Collectors: []string{"topology"}, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	families, err := e.Registry().Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range families {
		if !strings.HasPrefix(mf.GetName(), namespace.Namespace+"_") {
			continue
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		metrics[mf.GetName()] = labels
	}
	return metrics, nil
}
