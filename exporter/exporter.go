// Package exporter serves the collectors over HTTP: the /metrics handler
// with its scrape deadline and coalescing, configuration reload, and the
// health endpoints; with --config.estates, many estates in one process,
// each an Exporter of its own served at /probe?estate=NAME (estates.go).
// cmd/iap_ha_exporter only wires flags to it.
//
// It is the only package besides the binary that imports collector: the
// topology page and the remediation receiver get a scrape as a
// topology.Observation from Exporter.Scrape, ScrapeFresh or Latest, and the
// collectors' registry stays private to /metrics.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// The defaults of --scrape.default-timeout and --scrape.timeout-offset:
// Prometheus's default scrape_timeout is 10 s, and the offset leaves time
// for the answer to travel.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultTimeoutOffset = 500 * time.Millisecond
)

// Options configure an Exporter.
type Options struct {
	// ConfigFile is the YAML configuration; empty means config.Default().
	ConfigFile string
	// EstatesPath is --config.estates, for NewEstates: a directory of
	// estate files or a file listing them.
	EstatesPath string
	// Collectors, when not empty, names exactly the collectors to run
	// instead of those the flags enable.
	Collectors []string
	// DefaultTimeout bounds a scrape that carries no
	// X-Prometheus-Scrape-Timeout-Seconds header; TimeoutOffset is taken off
	// the header's value so the answer reaches Prometheus in time.
	DefaultTimeout time.Duration
	TimeoutOffset  time.Duration
	// MaxRequestsInFlight caps concurrent /metrics requests (0: no cap);
	// with estates, each estate's /probe requests.
	MaxRequestsInFlight int
	// ReloadEndpointDisabled has POST /-/reload refused (403); SIGHUP
	// still reloads.
	ReloadEndpointDisabled bool
	Logger                 *slog.Logger
}

// A Reloader is a part of the binary that follows the configuration (the
// remediation receiver). Given a new configuration, it prepares everything
// of its own that can fail, changing nothing that runs, and returns how to
// apply what it prepared or to throw it away. A reload applies every part
// or none: when one Reloader fails, the others' preparations are discarded
// and the configuration in force stays.
type Reloader func(cfg *config.Config) (apply, discard func(), err error)

// Exporter owns the current configuration and its Scraper: the whole
// process in single-estate mode, one estate of Estates otherwise.
type Exporter struct {
	opts   Options
	logger *slog.Logger
	// estate is the estate's name under Estates, "" in single-estate mode.
	estate string
	// inFlight caps the scrape requests waiting on this estate; nil: no cap.
	inFlight chan struct{}

	reloadMu  sync.Mutex
	reloaders []Reloader // under reloadMu
	scraper   atomic.Pointer[collector.Scraper]
	latest    atomic.Pointer[topology.Observation]
	scrapes   singleflight.Group

	// registry holds what /metrics serves besides the collectors: in
	// single-estate mode the process's own metrics and the reload gauges;
	// for an estate only what other parts register for it (its receiver's).
	registry      *prometheus.Registry
	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
}

// New loads the configuration and builds its collectors. A bad configuration
// is an error: the exporter does not start on one.
func New(opts Options) (*Exporter, error) {
	opts = opts.withDefaults()
	if opts.EstatesPath != "" {
		return nil, errors.New("exporter.New serves one estate: use NewEstates for --config.estates")
	}
	e := &Exporter{
		opts:     opts,
		logger:   opts.Logger,
		inFlight: inFlight(opts.MaxRequestsInFlight),
		registry: prometheus.NewRegistry(),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "config", Name: "last_reload_successful",
			Help: "Whether the last configuration (re)load succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "config", Name: "last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
	e.registry.MustRegister(
		e.reloadSuccess, e.reloadTime,
		versioncollector.NewCollector("iap_ha_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if err := e.Reload(); err != nil {
		return nil, err
	}
	return e, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	return o
}

func inFlight(max int) chan struct{} {
	if max <= 0 {
		return nil
	}
	return make(chan struct{}, max)
}

// newEstate builds the Exporter of one estate of Estates from its loaded
// configuration: its own probes, clients, logins and coalesced rounds, and
// reg, the estate's registry, which outlives the instance.
func newEstate(name string, cfg *config.Config, reg *prometheus.Registry, opts Options) (*Exporter, error) {
	e := &Exporter{
		opts:     opts,
		logger:   opts.Logger.With("estate", name),
		estate:   name,
		inFlight: inFlight(opts.MaxRequestsInFlight),
		registry: reg,
	}
	s, err := collector.NewScraper(cfg, e.logger, opts.Collectors...)
	if err != nil {
		return nil, err
	}
	e.scraper.Store(s)
	return e, nil
}

// Registry is where other parts of the binary (the remediation receiver)
// register their own metrics so /metrics serves them too; an estate's is
// served at /probe?estate=NAME and stays the same across its reloads.
func (e *Exporter) Registry() *prometheus.Registry { return e.registry }

// Estate is the estate's name under Estates, "" in single-estate mode.
func (e *Exporter) Estate() string { return e.estate }

// Config is the configuration in force.
func (e *Exporter) Config() *config.Config { return e.scraper.Load().Config() }

// AddReloader has r take part in every later reload.
func (e *Exporter) AddReloader(r Reloader) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.reloaders = append(e.reloaders, r)
}

// Reload reads the configuration again and swaps it in. On any problem the
// running configuration stays and the error says why.
func (e *Exporter) Reload() error {
	if e.estate != "" {
		return fmt.Errorf("estate %s reloads with the others (Estates.Reload)", e.estate)
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	err := e.reload()
	if err != nil {
		e.reloadSuccess.Set(0)
		e.logger.Error("configuration not loaded; keeping the one in force", "file", e.opts.ConfigFile, "err", err)
		return err
	}
	e.reloadSuccess.Set(1)
	e.reloadTime.SetToCurrentTime()
	return nil
}

func (e *Exporter) reload() error {
	cfg := config.Default()
	if e.opts.ConfigFile != "" {
		var err error
		if cfg, err = config.Load(e.opts.ConfigFile); err != nil {
			return err
		}
		for _, w := range cfg.Warnings {
			e.logger.Warn("configuration", "file", e.opts.ConfigFile, "warning", w)
		}
	}
	s, err := collector.NewScraper(cfg, e.logger, e.opts.Collectors...)
	if err != nil {
		return err
	}
	applies := make([]func(), 0, len(e.reloaders))
	discards := make([]func(), 0, len(e.reloaders))
	for _, prepare := range e.reloaders {
		apply, discard, err := prepare(cfg)
		if err != nil {
			for _, d := range discards {
				d()
			}
			s.Close()
			return err
		}
		applies, discards = append(applies, apply), append(discards, discard)
	}
	if old := e.scraper.Load(); old != nil {
		s.KeepLogins(old)
	}
	if old := e.scraper.Swap(s); old != nil {
		go old.Close() // waits for scrapes still using it
	}
	e.logger.Info("configuration loaded", "file", e.opts.ConfigFile, "collectors", fmt.Sprint(s.Collectors()))
	for _, apply := range applies {
		apply()
	}
	return nil
}

// Close releases the collectors' connections.
func (e *Exporter) Close() {
	if s := e.scraper.Load(); s != nil {
		s.Close()
	}
}

// Latest is the most recent finished scrape, or nil before the first.
func (e *Exporter) Latest() *topology.Observation { return e.latest.Load() }

// Scrape probes the estate once within ctx's deadline. Concurrent callers
// share one probe round instead of piling up: they get the same result.
func (e *Exporter) Scrape(ctx context.Context) (*topology.Observation, error) {
	o, _, err := e.scrape(ctx)
	return o, err
}

// scrape is Scrape, also returning the Scraper whose collectors made the
// Observation: /metrics translates it with those, even when a reload has
// swapped in another Scraper meanwhile.
func (e *Exporter) scrape(ctx context.Context) (*topology.Observation, *collector.Scraper, error) {
	s := e.scraper.Load()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(e.opts.DefaultTimeout)
	}
	type result struct {
		scrape  *topology.Observation
		scraper *collector.Scraper
	}
	ch := e.scrapes.DoChan("scrape", func() (any, error) {
		// Detached from the first caller: its disconnect must not cut the
		// round short for the others that joined it.
		pctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		sc := s.Probe(pctx)
		e.latest.Store(sc)
		return result{sc, s}, nil
	})
	// The round ends by the deadline on its own, abandoning probes that
	// overran, so a caller whose deadline passes waits a moment for that
	// partial result rather than losing the whole scrape. A caller that
	// goes away gives up at once.
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, nil, ctx.Err()
		}
		select {
		case r = <-ch:
		case <-time.After(time.Until(deadline) + time.Second):
			return nil, nil, ctx.Err()
		}
	}
	res := r.Val.(result)
	return res.scrape, res.scraper, nil
}

// MaxScrapeTimeout is the longest scrape timeout a request may ask for;
// the HTTP server's write deadline of /metrics follows the timeout.
const MaxScrapeTimeout = time.Hour

// ScrapeFresh probes the estate anew within ctx's deadline (the default
// timeout without one): it never joins a round under way, which may have
// begun before something the caller must see (the remediation receiver,
// under its lease, after a peer may have promoted). Its callers are few
// (one worker of the receiver), so it does not add to a pile-up.
func (e *Exporter) ScrapeFresh(ctx context.Context) (*topology.Observation, error) {
	s := e.scraper.Load()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.DefaultTimeout)
		defer cancel()
	}
	sc := s.Probe(ctx)
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	return sc, nil
}

// timeout is the scrape budget: Prometheus's own timeout header less the
// offset, or the default.
func (e *Exporter) timeout(r *http.Request) (time.Duration, error) {
	h := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if h == "" {
		return e.opts.DefaultTimeout, nil
	}
	secs, err := strconv.ParseFloat(h, 64)
	// Checked before the conversion: NaN passes every comparison but ==,
	// and Inf or a huge value overflows a time.Duration into no deadline.
	if err != nil || math.IsNaN(secs) || secs <= 0 || secs > MaxScrapeTimeout.Seconds() {
		return 0, fmt.Errorf("invalid X-Prometheus-Scrape-Timeout-Seconds %q: want seconds, more than 0 and at most %s", h, MaxScrapeTimeout)
	}
	t := time.Duration(secs*float64(time.Second)) - e.opts.TimeoutOffset
	if t <= 0 {
		return 0, fmt.Errorf("scrape timeout %ss leaves nothing after the offset %s", h, e.opts.TimeoutOffset)
	}
	return t, nil
}

// MetricsHandler serves /metrics.
func (e *Exporter) MetricsHandler() http.Handler {
	errorLog := slog.NewLogLogger(e.logger.Handler(), slog.LevelError)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serveScrape(w, r, errorLog) })
}

// serveScrape answers one scrape of the estate: a probe round within the
// request's deadline, translated by the collectors that made it, with the
// registry's metrics beside.
func (e *Exporter) serveScrape(w http.ResponseWriter, r *http.Request, errorLog *log.Logger) {
	if e.inFlight != nil {
		select {
		case e.inFlight <- struct{}{}:
			defer func() { <-e.inFlight }()
		default:
			http.Error(w, "too many concurrent scrapes", http.StatusServiceUnavailable)
			return
		}
	}
	timeout, err := e.timeout(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	extendDeadlines(w, timeout)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	scrape, scraper, err := e.scrape(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return // the client went away
		}
		http.Error(w, "scrape did not finish: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(scraper.Metrics(scrape)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	promhttp.HandlerFor(prometheus.Gatherers{e.registry, reg}, promhttp.HandlerOpts{
		ErrorLog:      errorLog,
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP(w, r)
}

// ReloadHandler serves POST /-/reload.
func (e *Exporter) ReloadHandler() http.Handler {
	return reloadHandler(e.opts.ReloadEndpointDisabled, e.Reload)
}

func reloadHandler(disabled bool, reload func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if disabled {
			http.Error(w, "the reload endpoint is disabled (--no-web.enable-reload); send SIGHUP to reload", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "use POST to reload the configuration", http.StatusMethodNotAllowed)
			return
		}
		if err := reload(); err != nil {
			http.Error(w, "configuration not reloaded, the previous one stays in force: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "configuration reloaded")
	})
}
