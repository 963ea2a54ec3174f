package remediation

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
)

// EstateLabel is the alert label that names the estate an alert is about,
// in a multi-estate exporter: Prometheus adds it to every series of the
// estate (relabelling __param_estate), so every alert carries it.
const EstateLabel = "estate"

// reasonEstateNotRemediated: the alerts' estate has no remediation file.
// The router counts it, on the exporter's own metrics: no receiver of the
// estate exists to count it.
const reasonEstateNotRemediated = "estate_not_remediated"

// Estate is one estate of a multi-estate exporter, as the router reads it.
type Estate struct {
	Name string
	// File is the estate's remediation file; "" when it has none: its
	// alerts are never acted on.
	File string
	// Config is the estate's exporter configuration, which File is read
	// against.
	Config *config.Config
	// Scrape is the estate's fresh scrape. A receiver kept across a reload
	// keeps the Scrape it was built with: it must follow the estate's
	// current instance (look it up by name at every call), not close with
	// an instance a reload replaces.
	Scrape ScrapeFunc
}

// RouterOptions configure a Router; they are Options' fields that every
// estate's receiver shares.
type RouterOptions struct {
	Logger          *slog.Logger
	WebConfigFile   string
	InsecureWebhook bool
}

// Router is the webhook of a multi-estate exporter: one Receiver per
// estate with a remediation file, each with its own journal and its lease
// in the estate's own Redis, and one webhook path. A notification goes to
// the receiver of the estate its alerts' estate label names, and must pass
// that receiver's authentication (see ServeHTTP).
type Router struct {
	opts RouterOptions
	// reloadMu orders Reload and Close.
	reloadMu sync.Mutex
	closed   bool
	// table is what requests are routed by; a reload swaps in a new one.
	table atomic.Pointer[routeTable]

	// metrics are each estate's receiver metrics, kept for the router's
	// life: the estate's registry may hold them across a reload.
	metricsMu sync.Mutex
	metrics   map[string]*Metrics

	skipped *prometheus.CounterVec

	// closing are the receivers of removed estates still finishing (an
	// action under way), by estate: a reload does not wait for them, a
	// receiver the estate gains again does (their journal's lock), and
	// so does Close (their leases).
	closing   map[string]chan struct{}
	closingWG sync.WaitGroup
}

// routeTable is the estates as of one load or reload; it is never changed.
type routeTable struct {
	estates map[string]*route
	// maxBody is the largest max_body_bytes of the receivers: a body is
	// read once, before it is known whose it is, then held to its estate's
	// own limit.
	maxBody int64
	// basic: some receiver asks for basic credentials (WWW-Authenticate).
	basic bool
}

// route is one estate. A receiver kept across a reload keeps its route.
type route struct {
	estate Estate
	cfg    *Config // nil without a remediation file
	// broken is why the estate's remediation file did not load at the
	// reload that added it: its alerts are answered 503, to be resent
	// once the file is repaired, not taken for an estate left unremediated.
	broken error

	// mu orders the requests handed to rcv with its closing: a request
	// under way when a reload removes the estate finishes first.
	mu     sync.RWMutex
	closed bool
	rcv    *Receiver
}

// NewRouter loads every estate's remediation file and starts its receiver.
// Every problem is an error naming the estate: the router starts with all
// of them or none.
func NewRouter(estates []Estate, opts RouterOptions) (*Router, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rt := &Router{opts: opts, metrics: map[string]*Metrics{}, closing: map[string]chan struct{}{}}
	rt.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace.Namespace, Subsystem: "remediation", Name: "skipped_total",
		Help: "Alerts the receiver did not act on, by the reason it gave.",
	}, []string{"reason"})
	rt.skipped.WithLabelValues(reasonEstateNotRemediated)

	var errs []error
	loaded := map[string]*route{}
	seen := map[string]bool{}
	for _, e := range sortedEstates(estates) {
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("estate %s: listed twice", e.Name))
			continue
		}
		seen[e.Name] = true
		r, err := rt.load(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		loaded[e.Name] = r
	}
	var claims []claim
	for _, name := range slices.Sorted(maps.Keys(loaded)) {
		if r := loaded[name]; r.cfg != nil {
			claims = append(claims, claim{name, r.cfg, r.estate.Config})
		}
	}
	refused := apart(claims)
	for _, name := range slices.Sorted(maps.Keys(refused)) {
		errs = append(errs, refused[name])
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, name := range slices.Sorted(maps.Keys(loaded)) {
		r := loaded[name]
		if r.cfg == nil {
			continue
		}
		if err := rt.start(r); err != nil {
			for _, o := range loaded {
				o.close()
			}
			return nil, err
		}
	}
	rt.table.Store(newRouteTable(loaded))
	return rt, nil
}

// CheckEstates reads every estate's remediation file as NewRouter would,
// starting nothing, for --config.check: every problem, each naming its
// estate.
func CheckEstates(estates []Estate, opts RouterOptions) []error {
	rt := &Router{opts: opts}
	var errs []error
	var claims []claim
	for _, e := range sortedEstates(estates) {
		r, err := rt.load(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.cfg != nil {
			claims = append(claims, claim{e.Name, r.cfg, e.Config})
		}
	}
	refused := apart(claims)
	for _, name := range slices.Sorted(maps.Keys(refused)) {
		errs = append(errs, refused[name])
	}
	return errs
}

func sortedEstates(estates []Estate) []Estate {
	return slices.SortedFunc(slices.Values(estates), func(a, b Estate) int { return strings.Compare(a.Name, b.Name) })
}

// load reads an estate's remediation file against its configuration, as a
// start of the single-estate receiver does.
func (rt *Router) load(e Estate) (*route, error) {
	r := &route{estate: e}
	if e.File == "" {
		return r, nil
	}
	cfg, err := Load(e.File, e.Config)
	if err == nil {
		err = CheckAuthentication(cfg, rt.opts.WebConfigFile, rt.opts.InsecureWebhook)
	}
	if err != nil {
		return nil, fmt.Errorf("estate %s: %s: %w", e.Name, e.File, err)
	}
	r.cfg = cfg
	return r, nil
}

// start builds and starts the receiver of r, once the estate's previous
// receiver, if one is still closing, has closed.
func (rt *Router) start(r *route) error {
	e := r.estate
	if done := rt.closing[e.Name]; done != nil {
		<-done
		delete(rt.closing, e.Name)
	}
	logger := rt.opts.Logger.With("estate", e.Name)
	rcv, err := New(Options{
		Config: r.cfg, ExporterConfig: e.Config, Scrape: e.Scrape, Logger: logger, Metrics: rt.metricsOf(e.Name),
		WebConfigFile: rt.opts.WebConfigFile, InsecureWebhook: rt.opts.InsecureWebhook,
	})
	if err == nil {
		if err = rcv.Start(); err != nil {
			rcv.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("estate %s: %w", e.Name, err)
	}
	r.rcv = rcv
	if by, err := Authenticator(r.cfg, rt.opts.WebConfigFile); rt.opts.InsecureWebhook && (err != nil || by == "") {
		logger.Warn("THE REMEDIATION WEBHOOK ACCEPTS UNAUTHENTICATED NOTIFICATIONS FOR THIS ESTATE: anyone who reaches it can have one of its IAP servers promoted")
	}
	logger.Info("remediation receiver started", "dry_run", *r.cfg.DryRun, "site", r.cfg.Site, "journal_file", r.cfg.JournalFile)
	return nil
}

// close stops the receiver of r, after the requests handed to it and the
// action it may be running: its lease is returned, its journal unlocked.
func (r *route) close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	if r.rcv == nil {
		return nil
	}
	return r.rcv.Close()
}

// claim is an estate's remediation file as checked against the others'.
type claim struct {
	name string
	cfg  *Config
	exp  *config.Config
}

// apart refuses an estate that would share what must be an estate's own
// with one before it in claims: its journal, or its lease and estate-wide
// keys. The earlier keeps it; the later is refused, by name, with an error
// naming both.
func apart(claims []claim) map[string]error {
	refused := map[string]error{}
	var kept []claim
	for _, c := range claims {
		var errs []error
		for _, o := range kept {
			if sameFile(o.cfg.JournalFile, c.cfg.JournalFile) {
				errs = append(errs, fmt.Errorf("estates %s and %s both name journal_file %s: each estate needs a journal of its own (it holds the estate's incidents, and its lock one receiver)",
					o.name, c.name, c.cfg.JournalFile))
			}
			if o.cfg.Lease.KeyPrefix == c.cfg.Lease.KeyPrefix && sameRedis(leaseGroupOf(o.cfg, o.exp), leaseGroupOf(c.cfg, c.exp)) {
				errs = append(errs, fmt.Errorf("estates %s and %s keep their lease under the same lease.key_prefix %q in the same Redis (master %s): "+
					"one estate's block, pause, cooldowns and claims would hold the other back, and an ack of one would lift the other's block; give each estate a lease.key_prefix of its own",
					o.name, c.name, c.cfg.Lease.KeyPrefix, leaseGroupOf(c.cfg, c.exp).MasterName))
			}
		}
		if len(errs) > 0 {
			refused[c.name] = errors.Join(errs...)
			continue
		}
		kept = append(kept, c)
	}
	return refused
}

func sameFile(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

func leaseGroupOf(cfg *Config, exp *config.Config) config.SentinelGroup {
	i := slices.IndexFunc(exp.Redis, func(g config.SentinelGroup) bool { return g.Name == cfg.Lease.Redis })
	if i < 0 {
		return config.SentinelGroup{}
	}
	return exp.Redis[i]
}

// sameRedis: two Sentinel groups of one master name sharing a Sentinel
// are one Redis. (Two names of one host are not seen through.)
func sameRedis(a, b config.SentinelGroup) bool {
	if a.MasterName != b.MasterName {
		return false
	}
	for _, s := range a.Sentinels {
		if slices.ContainsFunc(b.Sentinels, func(t config.Sentinel) bool { return t.Address == s.Address }) {
			return true
		}
	}
	return false
}

func newRouteTable(estates map[string]*route) *routeTable {
	t := &routeTable{estates: estates}
	for _, r := range estates {
		if r.rcv == nil {
			continue
		}
		cfg := r.rcv.latest.Load().cfg
		t.maxBody = max(t.maxBody, cfg.MaxBodyBytes)
		t.basic = t.basic || cfg.Auth.BasicAuth.Username != ""
	}
	return t
}

// Reload reads every estate's remediation file again and applies, estate by
// estate, what changed: an estate whose file and configuration are
// unchanged keeps its receiver as it is; a changed one keeps its receiver
// and journal and takes the new settings (Receiver.Prepare: journal_file
// cannot change); a new one starts; a removed one, or one whose file is
// gone, closes in the background after the action it may be running,
// returning its lease (the reload does not wait for it). An estate whose file is broken keeps
// its old receiver, or has none yet. The problems are returned by estate.
func (rt *Router) Reload(estates []Estate) map[string]error {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	problems := map[string]error{}
	if rt.closed {
		return problems
	}
	old := rt.table.Load().estates
	next := map[string]*route{}
	// refuse keeps an estate's receiver, if it has one, on a problem.
	refuse := func(e Estate, err error) {
		problems[e.Name] = err
		if prev := old[e.Name]; prev != nil && prev.rcv != nil {
			next[e.Name] = prev
		} else {
			next[e.Name] = &route{estate: e, broken: err}
		}
	}
	// The receivers that go on unchanged keep their journal and lease
	// first, then the changed ones, then the new ones.
	var kept, changed, added []claim
	loaded := map[string]*route{}
	seen := map[string]bool{}
	for _, e := range sortedEstates(estates) {
		if seen[e.Name] {
			problems[e.Name] = errors.New("listed twice")
			continue
		}
		seen[e.Name] = true
		prev := old[e.Name]
		r, err := rt.load(e)
		switch {
		case err != nil:
			refuse(e, err)
			if p := next[e.Name]; p.rcv != nil {
				kept = append(kept, claim{e.Name, p.cfg, p.estate.Config})
			}
		case r.cfg == nil:
			next[e.Name] = r
		case prev != nil && prev.rcv != nil && reflect.DeepEqual(prev.cfg, r.cfg) && reflect.DeepEqual(prev.estate.Config, r.estate.Config):
			next[e.Name] = prev
			kept = append(kept, claim{e.Name, prev.cfg, prev.estate.Config})
		case prev != nil && prev.rcv != nil:
			loaded[e.Name] = r
			changed = append(changed, claim{e.Name, r.cfg, r.estate.Config})
		default:
			loaded[e.Name] = r
			added = append(added, claim{e.Name, r.cfg, r.estate.Config})
		}
	}
	refused := apart(slices.Concat(kept, changed, added))
	type change struct {
		prev, r *route
		apply   func()
	}
	var changes []change
	for _, name := range slices.Sorted(maps.Keys(loaded)) {
		r := loaded[name]
		if err := refused[name]; err != nil {
			refuse(r.estate, err)
			continue
		}
		prev := old[name]
		if prev == nil || prev.rcv == nil {
			if err := rt.start(r); err != nil {
				refuse(r.estate, err)
				continue
			}
			next[name] = r
			continue
		}
		apply, _, err := prev.rcv.Prepare(r.cfg, r.estate.Config)
		if err != nil {
			refuse(r.estate, fmt.Errorf("%s: %w", r.estate.File, err))
			continue
		}
		changes = append(changes, change{prev, r, apply})
		next[name] = prev
	}
	for _, c := range changes {
		c.apply()
		// The route (and its receiver) stays; it describes the settings
		// the receiver now has. Only Reload reads these two fields.
		c.prev.cfg, c.prev.estate = c.r.cfg, c.r.estate
	}
	rt.table.Store(newRouteTable(next))
	for name, prev := range old {
		if next[name] == prev || prev.rcv == nil {
			continue
		}
		rt.closeLater(name, prev)
	}
	for name, err := range problems {
		rt.opts.Logger.Error("remediation: estate not reloaded", "estate", name, "err", err)
	}
	return problems
}

// closeLater closes the receiver of a removed estate without holding the
// reload (and the other estates) until the action it may be running ends.
func (rt *Router) closeLater(name string, r *route) {
	done := make(chan struct{})
	rt.closing[name] = done
	rt.closingWG.Add(1)
	go func() {
		defer rt.closingWG.Done()
		defer close(done)
		if err := r.close(); err != nil {
			rt.opts.Logger.Warn("remediation: closing the receiver of an estate no longer remediated", "estate", name, "err", err)
		}
		rt.opts.Logger.Info("remediation receiver stopped", "estate", name)
	}()
}

// Close stops every receiver, returning their leases.
func (rt *Router) Close() error {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	if rt.closed {
		return nil
	}
	rt.closed = true
	var errs []error
	for name, r := range rt.table.Load().estates {
		if err := r.close(); err != nil {
			errs = append(errs, fmt.Errorf("estate %s: %w", name, err))
		}
	}
	rt.closingWG.Wait()
	return errors.Join(errs...)
}

// Collector is the receiver metrics of estate name, to be served with the
// estate's own metrics (/probe?estate=NAME): nothing while the estate has
// no receiver, the same series across reloads while it has one. Register
// it once per estate registry; it follows the reloads itself.
func (rt *Router) Collector(name string) prometheus.Collector {
	return estateCollector{rt, name}
}

// estateCollector is unchecked (it describes nothing): an estate gains and
// loses its receiver at reloads.
type estateCollector struct {
	rt   *Router
	name string
}

func (c estateCollector) Describe(chan<- *prometheus.Desc) {}

func (c estateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.rt.Remediated(c.name) {
		c.rt.metricsOf(c.name).Collect(ch)
	}
}

// metricsOf are the receiver metrics of estate name, kept for the
// router's life: a receiver the estate gains again counts on.
func (rt *Router) metricsOf(name string) *Metrics {
	rt.metricsMu.Lock()
	defer rt.metricsMu.Unlock()
	m, ok := rt.metrics[name]
	if !ok {
		m = NewMetrics()
		rt.metrics[name] = m
	}
	return m
}

// Remediated reports whether estate name has a running receiver.
func (rt *Router) Remediated(name string) bool {
	r := rt.table.Load().estates[name]
	return r != nil && r.rcv != nil
}

// Status is the state of estate name's receiver; ok is false when the
// estate has none.
func (rt *Router) Status(name string) (st Status, ok bool) {
	r := rt.table.Load().estates[name]
	if r == nil || r.rcv == nil {
		return Status{}, false
	}
	return r.rcv.Status(), true
}

// Describe implements prometheus.Collector: the router's own metrics, for
// the exporter's registry.
func (rt *Router) Describe(ch chan<- *prometheus.Desc) { rt.skipped.Describe(ch) }

// Collect implements prometheus.Collector.
func (rt *Router) Collect(ch chan<- prometheus.Metric) { rt.skipped.Collect(ch) }

// ServeHTTP routes an Alertmanager notification to the receiver of its
// alerts' estate.
//
// Authentication: a request must carry the credentials of some receiver
// before its body is read (a stranger costs a header check, as at a single
// receiver), and the credentials of the receiver of its estate before it
// is recorded: one estate's Alertmanager credentials never have another
// estate's servers promoted. The body is read once, up to the largest
// max_body_bytes of the receivers, and then held to its estate's own.
//
// Answers: 400 when the alerts do not name one estate (each alert must
// carry the same non-empty estate label: Alertmanager groups by it); 404
// for an estate this exporter does not watch; 200, counted as skipped
// (estate_not_remediated), for an estate without a remediation file;
// otherwise what that estate's receiver answers. Nothing is recorded
// anywhere before the estate's receiver admits the request.
func (rt *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an Alertmanager notification", http.StatusMethodNotAllowed)
		return
	}
	t := rt.table.Load()
	if !t.admitAny(w, req) {
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer keepBody(buf)
	body, hook, ok := readNotification(w, req, buf, t.maxBody)
	if !ok {
		return
	}
	name, err := estateOf(hook)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r := t.estates[name]
	if r == nil {
		http.Error(w, fmt.Sprintf("estate %q is not an estate of this exporter", name), http.StatusNotFound)
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	switch {
	case r.broken != nil:
		http.Error(w, fmt.Sprintf("the remediation file of estate %q did not load at the last reload; resend once it is repaired", name), http.StatusServiceUnavailable)
		return
	case r.rcv == nil:
		// Counted by alert, as a receiver counts what it skips.
		rt.skipped.WithLabelValues(reasonEstateNotRemediated).Add(float64(len(hook.Alerts)))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "estate %q is not remediated: it has no remediation file; nothing was done\n", name)
		return
	case r.closed:
		// Removed by a reload since this request was routed.
		http.Error(w, fmt.Sprintf("the receiver of estate %q was reloaded; resend", name), http.StatusServiceUnavailable)
		return
	}
	cfg := r.rcv.latest.Load().cfg
	if !r.rcv.admit(w, req, cfg) {
		return
	}
	if int64(len(body)) > cfg.MaxBodyBytes {
		http.Error(w, fmt.Sprintf("notification larger than %d bytes", cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	r.rcv.accept(w, req, body, hook)
}

// admitAny answers a request that carries no receiver's credentials; a
// router without receivers refuses every request.
func (t *routeTable) admitAny(w http.ResponseWriter, req *http.Request) bool {
	any := false
	for _, r := range t.estates {
		if r.rcv == nil {
			continue
		}
		any = true
		if authorized(r.rcv.latest.Load().cfg.Auth, req) {
			return true
		}
	}
	if !any {
		http.Error(w, "no estate of this exporter is remediated", http.StatusNotFound)
		return false
	}
	if t.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="iap_ha_exporter remediation"`)
	}
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	return false
}

// estateOf is the estate every alert of hook names.
func estateOf(hook *Webhook) (string, error) {
	if len(hook.Alerts) == 0 {
		return "", fmt.Errorf("%w: no alerts, so no %s label to route by", errPayload, EstateLabel)
	}
	name := ""
	for i, a := range hook.Alerts {
		e := a.Labels[EstateLabel]
		switch {
		case e == "":
			return "", fmt.Errorf("%w: alerts[%d] (%s) has no %s label: in a multi-estate exporter every alert names its estate (group the route by %s)",
				errPayload, i, a.Labels["alertname"], EstateLabel, EstateLabel)
		case name == "":
			name = e
		case e != name:
			return "", fmt.Errorf("%w: alerts[%d] is of estate %q, alerts[0] of %q: one notification is of one estate (group the route by %s)",
				errPayload, i, e, name, EstateLabel)
		}
	}
	return name, nil
}

// PeerHandler answers a peer receiver (GET PeerPath?estate=NAME&server=X)
// through the receiver of estate NAME: a peer's url names the estate.
func (rt *Router) PeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t := rt.table.Load()
		if !t.admitAny(w, req) {
			return
		}
		name := req.URL.Query().Get(EstateLabel)
		if name == "" {
			http.Error(w, "GET "+PeerPath+"?estate=<name>&server=<name>: a multi-estate exporter answers for one estate", http.StatusBadRequest)
			return
		}
		r := t.estates[name]
		if r == nil || r.rcv == nil {
			http.Error(w, fmt.Sprintf("estate %q has no remediation receiver here", name), http.StatusNotFound)
			return
		}
		r.mu.RLock()
		defer r.mu.RUnlock()
		if r.closed {
			http.Error(w, fmt.Sprintf("the receiver of estate %q was reloaded; ask again", name), http.StatusServiceUnavailable)
			return
		}
		r.rcv.PeerHandler().ServeHTTP(w, req)
	})
}
