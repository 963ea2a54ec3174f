package exporter

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// ProbePath is where Estates serves one estate's metrics: /probe?estate=NAME,
// as blackbox_exporter and snmp_exporter serve one target's.
const ProbePath = "/probe"

// An EstateReloader is a part of the binary that follows each estate (the
// remediation router). A reload calls it for every estate it keeps or
// starts, with the estate's instance in force after the reload (the same
// one when the estate's configuration did not change) and its remediation
// file ("" for none), and with next nil for an estate removed. Like a
// Reloader it prepares what can fail and returns how to apply or discard
// it; an error for an estate keeps that estate as it was, the others
// reload.
type EstateReloader func(name string, next *Exporter, remediationFile string) (apply, discard func(), err error)

// Estates runs the estates of --config.estates in one process, each an
// Exporter of its own: its own probes, clients, logins, coalesced rounds
// and deadline, so that a hung or broken estate costs only its own scrape.
type Estates struct {
	opts   Options
	logger *slog.Logger

	reloadMu   sync.Mutex
	reloaders  []EstateReloader                // under reloadMu
	followers  []EstatesFollower               // under reloadMu
	registries map[string]*prometheus.Registry // under reloadMu; an estate's, across its instances
	set        atomic.Pointer[estateSet]
	closing    sync.WaitGroup // instances replaced or removed, closing

	registry      *prometheus.Registry
	reloadSuccess *prometheus.GaugeVec
	reloadTime    *prometheus.GaugeVec
}

// estateSet is the estates in force; a reload swaps in a new one whole.
type estateSet struct {
	names   []string // sorted
	running map[string]*runningEstate
	// broken are the estates listed whose files cannot be loaded and that
	// never ran: /probe says why rather than that they do not exist.
	broken map[string]error
}

type runningEstate struct {
	exp    *Exporter
	loaded config.Estate
}

// NewEstates loads every estate of opts.EstatesPath and starts each. Any
// problem, in the listing or in one estate's file, is an error: the
// exporter does not start on one.
func NewEstates(opts Options) (*Estates, error) {
	opts = opts.withDefaults()
	if opts.ConfigFile != "" || opts.EstatesPath == "" {
		return nil, errors.New("NewEstates needs EstatesPath and no ConfigFile")
	}
	es := &Estates{
		opts:       opts,
		logger:     opts.Logger,
		registries: map[string]*prometheus.Registry{},
		registry:   prometheus.NewRegistry(),
		reloadSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iap_ha_exporter_config_last_reload_successful",
			Help: "Whether the last (re)load of the estate's configuration succeeded.",
		}, []string{"estate"}),
		reloadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "iap_ha_exporter_config_last_reload_success_timestamp_seconds",
			Help: "When the estate's configuration was last loaded successfully.",
		}, []string{"estate"}),
	}
	es.registry.MustRegister(
		es.reloadSuccess, es.reloadTime,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iap_ha_exporter_estates",
			Help: "How many estates the exporter runs.",
		}, func() float64 { return float64(len(es.set.Load().running)) }),
		versioncollector.NewCollector("iap_ha_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	loaded, err := config.LoadEstates(opts.EstatesPath)
	if err == nil {
		err = config.EstatesErr(loaded)
	}
	if err != nil {
		return nil, err
	}
	set := &estateSet{running: map[string]*runningEstate{}, broken: map[string]error{}}
	for _, l := range loaded {
		es.warn(l)
		reg := prometheus.NewRegistry()
		exp, err := newEstate(l.Name, l.Config, reg, opts)
		if err != nil {
			for _, r := range set.running {
				r.exp.Close()
			}
			return nil, fmt.Errorf("estate %s (%s): %w", l.Name, l.ConfigFile, err)
		}
		es.registries[l.Name] = reg
		set.running[l.Name] = &runningEstate{exp: exp, loaded: l}
		set.names = append(set.names, l.Name)
		es.reloadSuccess.WithLabelValues(l.Name).Set(1)
		es.reloadTime.WithLabelValues(l.Name).SetToCurrentTime()
	}
	es.set.Store(set)
	es.logger.Info("estates loaded", "path", opts.EstatesPath, "estates", len(set.names))
	return es, nil
}

func (es *Estates) warn(l config.Estate) {
	for _, w := range l.Config.Warnings {
		es.logger.Warn("configuration", "estate", l.Name, "file", l.ConfigFile, "warning", w)
	}
}

// Registry holds the process's own metrics, served at /metrics.
func (es *Estates) Registry() *prometheus.Registry { return es.registry }

// Names are the running estates' names, sorted.
func (es *Estates) Names() []string { return slices.Clone(es.set.Load().names) }

// Estate is the instance in force of the estate name, nil if none runs.
func (es *Estates) Estate(name string) *Exporter {
	if r := es.set.Load().running[name]; r != nil {
		return r.exp
	}
	return nil
}

// RemediationFile is the estate's remediation file, "" when it has none
// (or does not run).
func (es *Estates) RemediationFile(name string) string {
	if r := es.set.Load().running[name]; r != nil {
		return r.loaded.RemediationFile
	}
	return ""
}

// An EstatesFollower is a part of the binary that follows the estates as a
// whole (the remediation router, whose receivers must be checked against
// one another: no two on one journal or lease). It runs after every reload
// that read the listing, with the estates in force; an estate it returns
// an error for keeps what the follower had for it, and its reload gauge
// goes to 0.
type EstatesFollower func() map[string]error

// AddFollower has f run after every later reload.
func (es *Estates) AddFollower(f EstatesFollower) {
	es.reloadMu.Lock()
	defer es.reloadMu.Unlock()
	es.followers = append(es.followers, f)
}

// AddReloader has r take part in every later reload.
func (es *Estates) AddReloader(r EstateReloader) {
	es.reloadMu.Lock()
	defer es.reloadMu.Unlock()
	es.reloaders = append(es.reloaders, r)
}

// Reload reads the estates again. An estate whose loaded configuration is
// unchanged keeps its instance, and with it its connections and logins; a
// changed one gets a new instance (carrying over the logins its unchanged
// sections allow, as a single-estate reload does) and the old one closes
// once its scrapes under way finish; a removed one closes; a new one
// starts. An estate that cannot be loaded keeps the instance in force and
// is reported (log, its reload gauge at 0, the error); the others reload.
// A listing that cannot be read reloads nothing.
//
// Configurations are compared as loaded (reflect.DeepEqual), not as files:
// the loaded form holds the secrets read from password files and
// variables, which a file's text does not, and is blind to comments and
// formatting, which change nothing.
func (es *Estates) Reload() error {
	es.reloadMu.Lock()
	defer es.reloadMu.Unlock()
	old := es.set.Load()
	loaded, err := config.LoadEstates(es.opts.EstatesPath)
	if err != nil {
		for _, name := range old.names {
			es.reloadSuccess.WithLabelValues(name).Set(0)
		}
		es.logger.Error("estates not reloaded; keeping those in force", "path", es.opts.EstatesPath, "err", err)
		return err
	}
	next := &estateSet{running: map[string]*runningEstate{}, broken: map[string]error{}}
	var (
		problems      []error
		applies       []func()
		replaced      []*Exporter // instances to close once the new set is in force
		listed        = map[string]bool{}
		reloaded      []string
		failed        []string
		newRegistries = map[string]*prometheus.Registry{}
		started       []string
	)
	for _, l := range loaded {
		listed[l.Name] = true
		prev := old.running[l.Name]
		keep := func(err error) {
			problems = append(problems, err)
			failed = append(failed, l.Name)
			if prev != nil {
				next.running[l.Name] = prev
				return
			}
			next.broken[l.Name] = err
		}
		if l.Err != nil {
			keep(l.Err)
			continue
		}
		es.warn(l)
		exp := (*Exporter)(nil)
		fresh := false
		if prev != nil && reflect.DeepEqual(prev.loaded.Config, l.Config) {
			exp = prev.exp
		} else {
			reg := es.registries[l.Name]
			if reg == nil {
				reg = prometheus.NewRegistry()
				newRegistries[l.Name] = reg
			}
			if exp, err = newEstate(l.Name, l.Config, reg, es.opts); err != nil {
				keep(fmt.Errorf("estate %s (%s): %w", l.Name, l.ConfigFile, err))
				continue
			}
			fresh = true
		}
		estateApplies, err := es.prepare(l.Name, exp, l.RemediationFile)
		if err != nil {
			if fresh {
				exp.Close()
			}
			delete(newRegistries, l.Name)
			keep(fmt.Errorf("estate %s: %w", l.Name, err))
			continue
		}
		applies = append(applies, estateApplies...)
		if fresh && prev != nil {
			exp.scraper.Load().KeepLogins(prev.exp.scraper.Load())
			replaced = append(replaced, prev.exp)
		}
		if fresh && prev == nil {
			started = append(started, l.Name)
		}
		next.running[l.Name] = &runningEstate{exp: exp, loaded: l}
		reloaded = append(reloaded, l.Name)
	}
	var removed []string
	for name := range old.broken {
		if !listed[name] { // never ran: only its gauges to forget
			es.reloadSuccess.DeleteLabelValues(name)
			es.reloadTime.DeleteLabelValues(name)
		}
	}
	for _, name := range old.names {
		if listed[name] {
			continue
		}
		// Removal cannot be refused: what follows the estate lets go of it.
		estateApplies, err := es.prepare(name, nil, "")
		if err != nil {
			es.logger.Error("removing an estate", "estate", name, "err", err)
		}
		applies = append(applies, estateApplies...)
		replaced = append(replaced, old.running[name].exp)
		removed = append(removed, name)
	}
	for name := range next.running {
		next.names = append(next.names, name)
	}
	slices.Sort(next.names)

	es.set.Store(next)
	for _, exp := range replaced {
		es.closing.Add(1)
		go func() { // waits for the scrapes still using it
			defer es.closing.Done()
			exp.Close()
		}()
	}
	for name, reg := range newRegistries {
		es.registries[name] = reg
	}
	for _, name := range removed {
		delete(es.registries, name)
		es.reloadSuccess.DeleteLabelValues(name)
		es.reloadTime.DeleteLabelValues(name)
	}
	for _, apply := range applies {
		apply()
	}
	for _, name := range reloaded {
		es.reloadSuccess.WithLabelValues(name).Set(1)
		es.reloadTime.WithLabelValues(name).SetToCurrentTime()
	}
	for _, follow := range es.followers {
		for name, err := range follow() {
			if next.running[name] != nil && !slices.Contains(failed, name) {
				failed = append(failed, name)
				problems = append(problems, fmt.Errorf("estate %s: %w", name, err))
			}
		}
	}
	for _, name := range failed {
		es.reloadSuccess.WithLabelValues(name).Set(0)
	}
	for _, p := range problems {
		es.logger.Error("estate not reloaded; keeping the configuration in force", "err", p)
	}
	es.logger.Info("estates reloaded", "path", es.opts.EstatesPath, "running", len(next.names),
		"started", len(started), "removed", len(removed), "failed", len(failed))
	return errors.Join(problems...)
}

// prepare runs every EstateReloader for one estate: all accept, or the
// accepted ones are discarded and the error says why.
func (es *Estates) prepare(name string, next *Exporter, remediationFile string) ([]func(), error) {
	var applies, discards []func()
	for _, prepare := range es.reloaders {
		apply, discard, err := prepare(name, next, remediationFile)
		if err != nil {
			for _, d := range discards {
				d()
			}
			return nil, err
		}
		applies, discards = append(applies, apply), append(discards, discard)
	}
	return applies, nil
}

// Close stops every estate and waits for those a reload let go.
func (es *Estates) Close() {
	for _, r := range es.set.Load().running {
		r.exp.Close()
	}
	es.closing.Wait()
}

// MetricsHandler serves /metrics in multi-estate mode: the process's own
// metrics only; an estate's are at /probe?estate=NAME.
func (es *Estates) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(es.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(es.logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ProbeHandler serves /probe?estate=NAME: the estate's metrics, as
// /metrics serves them in single-estate mode, under the request's own
// deadline (X-Prometheus-Scrape-Timeout-Seconds).
func (es *Estates) ProbeHandler() http.Handler {
	errorLog := slog.NewLogLogger(es.logger.Handler(), slog.LevelError)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("estate")
		if name == "" {
			http.Error(w, "missing the estate parameter: "+ProbePath+"?estate=NAME", http.StatusBadRequest)
			return
		}
		set := es.set.Load()
		if err, broken := set.broken[name]; broken {
			http.Error(w, fmt.Sprintf("estate %q does not run: %v", name, err), http.StatusNotFound)
			return
		}
		run := set.running[name]
		if run == nil {
			http.Error(w, fmt.Sprintf("unknown estate %q", name), http.StatusNotFound)
			return
		}
		run.exp.serveScrape(w, r, errorLog)
	})
}

// ReloadHandler serves POST /-/reload in multi-estate mode.
func (es *Estates) ReloadHandler() http.Handler {
	return reloadHandler(es.opts.ReloadEndpointDisabled, es.Reload)
}
