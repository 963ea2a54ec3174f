// Package collector turns the state of an IAP estate into Prometheus metrics.
//
// It follows node_exporter: one file per component, each registering itself
// from init under a name that becomes --collector.<name> and
// --no-collector.<name>. Unlike node_exporter, a scrape runs in two steps so
// that the HA model sees every component at once: first every enabled
// collector probes its targets concurrently under the scrape deadline and
// returns its part of the Snapshot; then the model evaluates the whole
// Snapshot and every collector translates Snapshot and Verdict into metrics.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Collector is one component of the estate.
type Collector interface {
	// Describe sends the descriptors of every metric Update may send.
	Describe(ch chan<- *prometheus.Desc)
	// Probe asks the component's targets for their state, concurrently and
	// within ctx. A target that fails is recorded as down in the returned
	// part; an error means the collector as a whole could not do its job.
	// Collectors that derive everything from other parts return a nil Part.
	Probe(ctx context.Context) (topology.Part, error)
	// Update sends the metrics for one scrape's Observation. It must not do I/O.
	Update(o *topology.Observation, ch chan<- prometheus.Metric)
}

// ErrNoData marks a collector with nothing to report (no target of its kind
// is configured): logged at debug level, not counted as a failure.
var ErrNoData = errors.New("collector returned no data")

// Factory builds a collector from the configuration. It may return ErrNoData
// when the configuration names no target for it.
type Factory func(cfg *config.Config, logger *slog.Logger) (Collector, error)

type registration struct {
	factory Factory
	enabled *bool
}

var (
	registryMu sync.Mutex
	factories  = map[string]*registration{}
)

// registerCollector is called from each collector file's init. Each alias
// is a former name whose --collector.<alias> and --no-collector.<alias>
// still set the flag; it is hidden from --help and is no collector name.
func registerCollector(name string, enabledByDefault bool, factory Factory, aliases ...string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := factories[name]; dup {
		panic("collector registered twice: " + name)
	}
	def := "false"
	if enabledByDefault {
		def = "true"
	}
	help := fmt.Sprintf("Enable the %s collector (default: %s).", name, map[bool]string{true: "enabled", false: "disabled"}[enabledByDefault])
	enabled := kingpin.Flag("collector."+name, help).Default(def).Bool()
	*enabled = enabledByDefault // usable before the flags are parsed (tests)
	for _, alias := range aliases {
		// No default: kingpin sets defaults before the values given, so
		// an alias without one never undoes the main flag or itself.
		kingpin.Flag("collector."+alias, "Former name of --collector."+name+".").Hidden().BoolVar(enabled)
	}
	factories[name] = &registration{factory: factory, enabled: enabled}
}

// Names lists every registered collector, sorted.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Enabled reports whether the flags enable the named collector.
func Enabled(name string) bool {
	registryMu.Lock()
	defer registryMu.Unlock()
	r, ok := factories[name]
	return ok && *r.enabled
}

// build instantiates the enabled collectors (or, with names, exactly those).
// Collectors without targets (ErrNoData) are left out.
func build(cfg *config.Config, logger *slog.Logger, names []string) (map[string]Collector, error) {
	if names == nil {
		for _, n := range Names() {
			if Enabled(n) {
				names = append(names, n)
			}
		}
	}
	out := make(map[string]Collector, len(names))
	for _, n := range names {
		registryMu.Lock()
		r, ok := factories[n]
		registryMu.Unlock()
		if !ok {
			closeAll(out)
			return nil, fmt.Errorf("unknown collector %q", n)
		}
		c, err := r.factory(cfg, logger.With("collector", n))
		if errors.Is(err, ErrNoData) {
			logger.Debug("collector has no targets configured", "collector", n)
			continue
		}
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("collector %s: %w", n, err)
		}
		out[n] = c
	}
	return out, nil
}

func closeAll(cs map[string]Collector) {
	for _, c := range cs {
		if cl, ok := c.(interface{ Close() error }); ok {
			_ = cl.Close()
		}
	}
}

// describe sends a collector's descriptors.
func describe(ch chan<- *prometheus.Desc, ds ...*prometheus.Desc) {
	for _, d := range ds {
		ch <- d
	}
}

// gauges is how every collector sends its gauge samples.
func gauges(ch chan<- prometheus.Metric) func(d *prometheus.Desc, v float64, labels ...string) {
	return func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
}

// boolValue turns a fact into a gauge value.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
