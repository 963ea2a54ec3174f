package collector

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace.Namespace, "scrape", "collector_duration_seconds"),
		"How long a collector's probes took in the last scrape.",
		[]string{"collector"}, nil,
	)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace.Namespace, "scrape", "collector_success"),
		"Whether a collector's probes finished within the deadline without error (1) or not (0).",
		[]string{"collector"}, nil,
	)
)

// Scraper runs the enabled collectors. One Scraper belongs to one loaded
// configuration; a reload builds a new one and closes the old.
type Scraper struct {
	cfg        *config.Config
	logger     *slog.Logger
	collectors map[string]Collector
	names      []string
	inflight   sync.WaitGroup
	targets    *targetLog
}

// NewScraper builds the collectors enabled by the flags, or exactly the named
// ones when names is not nil.
func NewScraper(cfg *config.Config, logger *slog.Logger, names ...string) (*Scraper, error) {
	if len(names) == 0 {
		names = nil
	}
	cs, err := build(cfg, logger, names)
	if err != nil {
		return nil, err
	}
	return newScraperWith(cfg, logger, cs), nil
}

// newScraperWith builds a Scraper from ready collectors.
func newScraperWith(cfg *config.Config, logger *slog.Logger, cs map[string]Collector) *Scraper {
	s := &Scraper{cfg: cfg, logger: logger, collectors: cs, targets: newTargetLog(logger)}
	for n := range cs {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s
}

// Config is the configuration this Scraper was built from.
func (s *Scraper) Config() *config.Config { return s.cfg }

// Collectors names the collectors this Scraper runs.
func (s *Scraper) Collectors() []string { return s.names }

// loginKeeper is a collector that holds logins (tokens) a reload may carry
// over from the collector it replaces.
type loginKeeper interface {
	keepLogins(old Collector)
}

// KeepLogins carries the logins of old's collectors over to s's, where
// their settings did not change.
func (s *Scraper) KeepLogins(old *Scraper) {
	// A reload does not log again the targets that were already failing.
	s.targets.carryOver(old.targets)
	for name, c := range s.collectors {
		if k, ok := c.(loginKeeper); ok && old.collectors[name] != nil {
			k.keepLogins(old.collectors[name])
		}
	}
}

// Close releases the collectors' pooled connections once the scrapes that
// still use them have finished.
func (s *Scraper) Close() {
	s.inflight.Wait()
	closeAll(s.collectors)
}

type probeResult struct {
	name string
	part topology.Part
	res  topology.ProbeResult
}

// Probe runs every collector's probe concurrently and waits until all have
// answered or ctx ends. The probes' own deadline comes shortly before ctx's,
// so that a collector reports the targets it finished (and the others
// down). A probe still running at ctx's end is abandoned: its part is left
// out (unknown) and it is counted as failed. Probes must honour their
// context themselves; this only guarantees the scrape is not held up.
func (s *Scraper) Probe(ctx context.Context) *topology.Observation {
	s.inflight.Add(1)
	defer s.inflight.Done()
	start := time.Now()
	// The probes' deadline comes a little before the scrape's: a probe cut
	// at its deadline then still has time to report the targets it
	// finished, where at the same instant it would race being abandoned.
	probeCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		probeCtx, cancel = context.WithDeadline(ctx, deadline.Add(-reportReserve(time.Until(deadline))))
		defer cancel()
	}
	// Buffered so that an abandoned probe can still send and exit.
	results := make(chan probeResult, len(s.names))
	for _, name := range s.names {
		go func(name string, c Collector) {
			results <- runProbe(probeCtx, name, c)
		}(name, s.collectors[name])
	}

	scrape := &topology.Observation{
		Config:   s.cfg,
		Snapshot: &topology.Snapshot{Time: start},
		Results:  make(map[string]topology.ProbeResult, len(s.names)),
	}
	for pending := len(s.names); pending > 0; pending-- {
		select {
		case r := <-results:
			scrape.Results[r.name] = r.res
			if r.part != nil && r.res.Err == nil {
				r.part.AddTo(scrape.Snapshot)
			}
		case <-ctx.Done():
			for _, name := range s.names {
				if _, done := scrape.Results[name]; !done {
					scrape.Results[name] = topology.ProbeResult{Duration: time.Since(start), Err: fmt.Errorf("probe did not finish before the scrape deadline: %w", ctx.Err())}
				}
			}
			pending = 0
		}
	}
	for name, r := range scrape.Results {
		if r.Err != nil {
			s.logger.Error("collector failed", "collector", name, "duration_seconds", r.Duration.Seconds(), "err", r.Err)
		}
	}
	s.targets.observe(scrape.Snapshot)
	scrape.Verdict = topology.Evaluate(s.cfg, scrape.Snapshot)
	return scrape
}

// reportReserve is the part of a scrape's budget left to the probes to
// report once their own deadline has passed: a tenth, at most 250 ms.
func reportReserve(budget time.Duration) time.Duration {
	return min(budget/10, 250*time.Millisecond)
}

// runProbe runs one probe and turns a panic into that collector's failure.
func runProbe(ctx context.Context, name string, c Collector) (r probeResult) {
	start := time.Now()
	r.name = name
	defer func() {
		if p := recover(); p != nil {
			r.part = nil
			r.res.Err = fmt.Errorf("probe panicked: %v\n%s", p, debug.Stack())
		}
		r.res.Duration = time.Since(start)
	}()
	r.part, r.res.Err = c.Probe(ctx)
	return r
}

// Describe sends the framework's and every collector's descriptors.
func (s *Scraper) Describe(ch chan<- *prometheus.Desc) {
	ch <- scrapeDurationDesc
	ch <- scrapeSuccessDesc
	for _, name := range s.names {
		s.collectors[name].Describe(ch)
	}
}

// Metrics returns a prometheus.Collector that sends the metrics of one
// finished scrape, so the registry never triggers probing on its own.
func (s *Scraper) Metrics(scrape *topology.Observation) prometheus.Collector {
	return &scrapeMetrics{s: s, scrape: scrape}
}

type scrapeMetrics struct {
	s      *Scraper
	scrape *topology.Observation
}

func (m *scrapeMetrics) Describe(ch chan<- *prometheus.Desc) { m.s.Describe(ch) }

func (m *scrapeMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, name := range m.s.names {
		r, ok := m.scrape.Results[name]
		if !ok {
			continue
		}
		success := 1.0
		if r.Err != nil {
			success = 0
		}
		ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, r.Duration.Seconds(), name)
		ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, name)
		m.update(name, ch)
	}
}

// update runs one collector's Update, containing a panic to that collector.
func (m *scrapeMetrics) update(name string, ch chan<- prometheus.Metric) {
	defer func() {
		if p := recover(); p != nil {
			m.s.logger.Error("collector panicked while translating metrics", "collector", name, "panic", p)
		}
	}()
	m.s.collectors[name].Update(m.scrape, ch)
}
