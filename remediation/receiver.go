// Package remediation is an Alertmanager webhook receiver that promotes a
// standby IAP server when an active one has failed: exactly once, only after
// checking for itself, and never making things worse.
//
// A notification is journaled (fsynced) before the receiver answers 202; a
// single worker then takes every alert through the gates, in order:
// incident already settled → cluster opted in → not paused → cooldown of
// the failed server → not blocked by a failed action → fresh
// re-verification with the exporter's own probes and HA model → cooldown of
// the standby → cross-site approval → dry-run. Only an action, or a refusal
// the incident cannot change (not opted in, dry run), settles an incident;
// Alertmanager's resends of it are decided again after any other refusal. Only then does it
// take a lease in the estate's Redis (through Sentinel), fence the failed
// server, activate the standby's workers, confirm, and run the site's
// scripts. Every decision is journaled, logged in the audit log and counted.
package remediation

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe/iap"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// ScrapeFunc returns a fresh scrape: the Snapshot and Verdict of the same
// probes and HA model the exporter serves. Its probes must begin after it
// is called (exporter.Exporter.ScrapeFresh), never join a round
// under way: the check under the lease must not see the estate as it was
// before the lease was taken, before a peer promoted.
type ScrapeFunc func(ctx context.Context) (*topology.Observation, error)

// Options configure a Receiver.
type Options struct {
	Config *Config
	// ExporterConfig is the exporter's configuration: the IAP servers the
	// receiver checks and acts on directly, and the Sentinel group of the
	// lease.
	ExporterConfig *config.Config
	Scrape         ScrapeFunc
	Logger         *slog.Logger
	// Metrics, when set, are shared (the binary registers them once).
	Metrics *Metrics
	// WebConfigFile is the exporter-toolkit web configuration the webhook
	// is served behind. Without credentials of its own, the receiver
	// checks at every request that it still authenticates the webhook:
	// the toolkit reads it at every request, and a web configuration
	// without users must not leave the webhook open. InsecureWebhook
	// (--remediation.insecure-unauthenticated-webhook) waives the check.
	WebConfigFile   string
	InsecureWebhook bool
}

// Receiver is the webhook handler and its worker.
type Receiver struct {
	scrape  ScrapeFunc
	logger  *slog.Logger
	metrics *Metrics
	journal *Journal
	// journalFile cannot change in a running receiver: it holds the
	// journal's lock for this process alone.
	journalFile string
	// instance tells this process's lease holder from another's.
	instance string
	// webConfigFile and insecureWebhook: see Options.
	webConfigFile   string
	insecureWebhook bool

	// cur is what the worker decides and acts with; it is read and changed
	// by one goroutine at a time, as state is. A reload stages its
	// replacement in next, which the worker takes between batches.
	cur  *settings
	next atomic.Pointer[settings]
	// latest is the settings last loaded, read by the webhook handler (a
	// request is judged wholly by one) and by the next reload.
	latest atomic.Pointer[settings]
	// reloadMu orders a reload's staging with Close.
	reloadMu sync.Mutex
	closed   bool

	// state is read and changed by one goroutine at a time: the worker, or
	// the caller of Promote in a command-line run.
	state *state

	// status is published by catchUp for readers outside the worker.
	status atomic.Pointer[published]

	// compactAbove is the journal size below which the worker does not
	// compact; compactedSize the size the last compaction left.
	compactAbove  int64
	compactedSize int64

	wake     chan struct{}
	burst    burst
	lockFile *os.File
	// fault is set once the journal can no longer be trusted to say what
	// was decided (see block): the receiver decides nothing more.
	fault   error
	stop    context.CancelFunc
	stopped sync.WaitGroup
}

// New opens the journal and replays it, and builds the clients. It does not
// start the worker: Start does, for a serving receiver; Promote needs none.
func New(opts Options) (*Receiver, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	cfg := opts.Config
	r := &Receiver{
		scrape: opts.Scrape, logger: opts.Logger, metrics: opts.Metrics,
		journalFile:     cfg.JournalFile,
		instance:        instanceID(),
		webConfigFile:   opts.WebConfigFile,
		insecureWebhook: opts.InsecureWebhook,
		state:           newState(),
		wake:            make(chan struct{}, 1),
		burst:           burst{quiet: burstQuiet, maxDelay: burstMaxDelay},
		compactAbove:    compactAbove,
	}
	s, err := r.newSettings(cfg, opts.ExporterConfig)
	if err != nil {
		return nil, err
	}
	r.cur = s
	r.latest.Store(s)
	r.logger.Warn("remediation: one vantage point: failed servers are checked from this host alone (no peer receiver or load balancer view)",
		"allow_single_vantage", cfg.AllowSingleVantage,
		"effect", map[bool]string{true: "a promotion proceeds when the fence cannot reach the failed server", false: "a promotion whose fence cannot reach the failed server is refused (single_vantage)"}[cfg.AllowSingleVantage])
	if r.journal, err = OpenJournal(cfg.JournalFile, r.logger); err != nil {
		s.close()
		return nil, fmt.Errorf("remediation: %w", err)
	}
	// A journal that cannot be read blocks the receiver, which still
	// starts: it says so on its metric and page, where a person looks.
	if err := r.catchUp(); err != nil && r.fault == nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// receiverIAP is the IAP section with the receiver's own account, if it has one.
func receiverIAP(c config.IAP, auth *config.IAPAuth) config.IAP {
	if auth == nil {
		return c
	}
	c.Auth = *auth
	c.Servers = slices.Clone(c.Servers)
	for i := range c.Servers {
		c.Servers[i].Auth = auth
	}
	return c
}

// instanceID names this process among the receivers of the estate: its
// lease holder is the site and this.
func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Start takes the journal for this process alone, settles the actions a
// previous run left unfinished, compacts the journal, and starts the worker.
func (r *Receiver) Start() error {
	f, err := os.OpenFile(r.journalFile+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("remediation: another receiver uses the journal %s: %w", r.journalFile, err)
	}
	r.lockFile = f
	if r.fault != nil {
		// Blocked: nothing is settled or rewritten in a journal not read whole.
		return r.startWorker()
	}
	if err := r.settleInterrupted(); err != nil {
		return err
	}
	if r.journal.size() > 0 {
		// A journal that cannot be compacted is still whole: serve on.
		if err := r.compact(); err != nil {
			r.logger.Error("remediation: journal not compacted", "err", err)
		}
	}
	return r.startWorker()
}

func (r *Receiver) startWorker() error {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.stopped.Add(1)
	go func() {
		defer r.stopped.Done()
		r.work(ctx)
	}()
	return nil
}

// settleInterrupted marks failed every action journaled as started and
// never finished: the process ended in the middle. It is not resumed, and
// not run again: it blocks until a person has looked.
func (r *Receiver) settleInterrupted() error {
	var recs []record
	for inc, started := range r.state.inFlight {
		recs = append(recs, record{Kind: kindFinished, Incident: inc, Cluster: started.Cluster, Plan: started.Plan,
			Result: ResultInterrupted, Error: "the receiver stopped while the action ran; check the servers, then run `iap_ha_exporter remediation ack`"})
		r.metrics.actions.WithLabelValues(actionPromote, ResultInterrupted).Inc()
		r.cur.audit.step(inc, actionPromote, ResultInterrupted, "plan", started.Plan)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := r.journal.Append(context.Background(), recs...); err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	return r.catchUp()
}

// Close stops the worker, after the action it may be running, and releases
// the journal and the clients.
func (r *Receiver) Close() error {
	if r.stop != nil {
		r.stop()
		r.stopped.Wait()
	}
	r.reloadMu.Lock()
	r.closed = true
	r.reloadMu.Unlock()
	errs := []error{r.journal.Close()}
	if r.lockFile != nil {
		r.lockFile.Close()
	}
	if staged := r.next.Swap(nil); staged != nil {
		errs = append(errs, staged.close())
	}
	return errors.Join(append(errs, r.cur.close())...)
}

// catchUp applies what was appended to the journal since the last call.
//
// Only a serving receiver compacts its journal, and it holds the journal's
// lock while it serves: a journal it finds replaced was moved or deleted by
// someone else. Starting over from that file would forget incidents already
// decided, so it keeps what it knew and blocks. A command (promote) that
// finds the journal replaced follows the new one. A line that is not a
// record blocks too: the journal is never read past it.
func (r *Receiver) catchUp() error {
	if r.fault != nil {
		return r.fault
	}
	recs, reset, err := r.journal.read()
	if reset && r.lockFile != nil {
		return r.block(fmt.Errorf("the journal %s was replaced by another process while this receiver served it; "+
			"it keeps what it had read", r.journalFile))
	}
	r.state.replay(recs, reset)
	r.publish()
	if err != nil {
		return r.block(fmt.Errorf("remediation: %w", err))
	}
	return nil
}

// block makes the receiver decide nothing more until a restart, because
// its journal no longer says for sure what was decided: it was replaced
// under the receiver, holds a line that is not a record, or a record could
// not be written (a full disk). Deciding on would repeat decisions, or act
// on an incident already acted on. It is said once in the log, and for as
// long as it lasts on the blocked metric (whose alert calls a person) and
// the status page. It returns the fault.
func (r *Receiver) block(err error) error {
	if r.fault == nil {
		r.fault = err
		r.logger.Error("remediation blocked: the receiver decides nothing until the journal is repaired and the receiver restarted (runbook: IAPRemediationBlocked)", "err", err)
		r.publish()
	}
	return r.fault
}

func (r *Receiver) publish() {
	r.metrics.show(r.state, r.fault != nil)
	r.metrics.journalBytes.Set(float64(r.journal.size()))
	st := r.state.status(r.cur.cfg)
	if r.fault != nil {
		st.Blocked = true
		st.BlockedReason = r.fault.Error() + "; repair the journal, then restart the receiver"
	}
	r.status.Store(&published{Status: st, pauseFile: r.cur.cfg.PauseFile})
}

// compactAbove is the least journal size the worker compacts: below it, a
// compaction would save little for its fsyncs.
const compactAbove = 1 << 20

// grown reports whether the journal has grown enough since the last
// compaction to compact it again: past twice what that one left, so that
// the cost of rewriting what is kept is spread over as much appended.
func (r *Receiver) grown() bool {
	return r.journal.size() > max(r.compactAbove, 2*r.compactedSize)
}

// compact rewrites the journal as what the state needs, after forgetting
// the incidents whose last record is older than journal_retention: the
// processed notifications, and the records of incidents forgotten, go.
func (r *Receiver) compact() error {
	cutoff := time.Now().Add(-time.Duration(r.cur.cfg.JournalRetention))
	before := r.journal.size()
	replaced, err := r.journal.compact(func(tail []record, reset bool) []record {
		r.state.replay(tail, reset)
		r.state.prune(cutoff)
		return r.state.snapshot()
	})
	if replaced {
		r.compactedSize = r.journal.size()
		r.metrics.compactions.Inc()
		r.logger.Info("remediation journal compacted", "bytes_before", before, "bytes_after", r.compactedSize, "incidents", len(r.state.incidents))
	}
	r.publish()
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	return nil
}

// published is the Status catchUp saw and the pause file then in force.
type published struct {
	Status
	pauseFile string
}

// Status is the receiver's state as of its last look at the journal.
func (r *Receiver) Status() Status {
	p := r.status.Load()
	st := p.Status
	if p.pauseFile != "" {
		_, err := os.Stat(p.pauseFile)
		st.Paused = err == nil
	}
	return st
}

// ServeHTTP receives one Alertmanager notification: 202 once it is on disk,
// 4xx for what a resend cannot fix, 5xx only when it could not be recorded.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an Alertmanager notification", http.StatusMethodNotAllowed)
		return
	}
	// One load: the request is judged wholly by the settings before a
	// reload or wholly by those after.
	cfg := r.latest.Load().cfg
	if !cfg.Auth.Enabled() && !r.insecureWebhook {
		if err := r.webConfigAuthenticates(); err != nil {
			r.logger.Error("remediation: notification refused: nothing authenticates the webhook any more", "err", err)
			http.Error(w, "the remediation webhook refuses notifications: nothing authenticates it", http.StatusServiceUnavailable)
			return
		}
	}
	if !authorized(cfg.Auth, req) {
		if cfg.Auth.BasicAuth.Username != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="iap_ha_exporter remediation"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer keepBody(buf)
	body, err := readBody(buf, http.MaxBytesReader(w, req.Body, cfg.MaxBodyBytes), req.ContentLength, cfg.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("notification larger than %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the notification: "+err.Error(), http.StatusBadRequest)
		return
	}
	hook, err := decodeWebhook(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.journal.appendNotification(req.Context(), newID(), body, hook); err != nil {
		r.logger.Error("remediation: notification not recorded; Alertmanager will resend it", "err", err)
		http.Error(w, "notification not recorded", http.StatusInternalServerError)
		return
	}
	r.burst.received()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusAccepted)
}

// bodies are request bodies' buffers, kept from request to request: 200
// concurrent notifications are 200 buffers at once. Nothing refers to a
// body once the handler returns: the decoded webhook and the journal line
// are copies.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxKeptBody bounds the buffers kept: a rare large notification does not
// stay in memory.
const maxKeptBody = 64 << 10

func keepBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxKeptBody {
		buf.Reset()
		bodies.Put(buf)
	}
}

// readBody reads a request body into buf, grown at once to the size the
// client announced (Alertmanager always does) rather than step by step.
func readBody(buf *bytes.Buffer, body io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength > 0 && contentLength <= limit {
		buf.Grow(int(contentLength) + bytes.MinRead) // room to read the EOF
	}
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// webConfigAuthenticates checks that the web configuration, which the
// toolkit reads at every request, still authenticates the webhook.
func (r *Receiver) webConfigAuthenticates() error {
	if r.webConfigFile == "" {
		return errors.New("no web configuration, and no credentials in the remediation file")
	}
	ok, err := webConfigAuthenticates(r.webConfigFile)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("the web configuration %s names no basic_auth_users and does not require client certificates, and the remediation file names no credentials", r.webConfigFile)
	}
	return nil
}

// authorized checks the receiver's own credentials, if it has any (the web
// config may authenticate too, or instead).
func authorized(a WebhookAuth, req *http.Request) bool {
	switch {
	case a.BearerToken != "":
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.BearerToken)) == 1
	case a.BasicAuth.Username != "":
		user, pw, ok := req.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(user), []byte(a.BasicAuth.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pw), []byte(a.BasicAuth.Password)) == 1
	}
	return true
}

// A burst of notifications is decided once it is over, as one batch:
// answering is urgent, deciding is not (a promotion's gates take seconds),
// and a worker deciding while the burst lasts takes CPU from the answers.
// A burst of 200 answered within the goal (p99 10 ms) is over well before
// 25 ms; under a load that does not stop, the worker decides every 25 ms,
// in batches small enough not to hold up the answers in their turn (with
// 100 ms, the p99 of back-to-back rounds of 200 rose by 20-40 %).
const (
	burstQuiet    = 5 * time.Millisecond  // no notification for this long ends a burst
	burstMaxDelay = 25 * time.Millisecond // a burst that does not end is decided anyway
)

// burst tells the worker when notifications stop arriving.
type burst struct {
	quiet, maxDelay time.Duration
	last            atomic.Int64 // when the last notification was journaled, in Unix ns
}

// received notes a notification journaled now.
func (b *burst) received() { b.last.Store(time.Now().UnixNano()) }

// wait returns once no notification has been journaled for quiet, at
// most maxDelay after it was called (at once when none came lately), or
// when ctx ends.
func (b *burst) wait(ctx context.Context) {
	deadline := time.Now().Add(b.maxDelay)
	for {
		now := time.Now()
		wait := min(time.Unix(0, b.last.Load()).Add(b.quiet).Sub(now), deadline.Sub(now))
		if wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// work processes the journaled notifications one batch at a time, each
// once the burst it came in is over. It also wakes every second to read
// what other processes appended (an ack).
func (r *Receiver) work(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.burst.wait(ctx)
		r.takeReloaded()
		err := r.catchUp()
		processed := false
		if err == nil && len(r.state.pending) > 0 {
			// Detached: a shutdown waits for a promotion under way.
			if err = r.processPending(context.WithoutCancel(ctx)); err != nil {
				// A decision or an action not journaled: deciding again
				// would repeat it, and act on what the journal cannot say.
				r.block(err)
			}
			processed = err == nil
		}
		if err == nil && r.grown() {
			// Between batches: nothing of the worker's is under way.
			if cerr := r.compact(); cerr != nil {
				r.logger.Error("remediation: journal not compacted", "err", cerr)
			}
		}
		if processed {
			continue
		}
		// An error is a fault, logged once by block.
		select {
		case <-r.wake:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// batch gathers the decisions of the notifications processed together, so
// that a burst of duplicate deliveries costs one fsync, not one each. The
// overlay maps hold what the batch decided and the state does not show yet.
type batch struct {
	recs     []record
	done     []string
	decided  map[string]bool
	resolved map[string]bool
	// seen is the fresh view of the estate that the batch's alerts are
	// verified against: one scrape serves every alert, however many a
	// notification carries. An action ends the batch (flush), and the next
	// alert is verified against a view taken after it.
	seen observation
}

// observation is a fresh scrape and the receiver's own health checks of
// the servers said to have failed, each taken once when first needed.
type observation struct {
	scrape    *topology.Observation
	scrapeErr error
	scraped   bool
	direct    map[string]directHealth
}

type directHealth struct {
	health iap.Health
	err    error
}

func newBatch() *batch { return &batch{decided: map[string]bool{}, resolved: map[string]bool{}} }

// flush journals the batch and reads it back into the state.
func (r *Receiver) flush(ctx context.Context, b *batch) error {
	recs := b.recs
	if len(b.done) > 0 {
		recs = append(recs, record{Kind: kindProcessed, IDs: b.done})
	}
	if len(recs) == 0 {
		return nil
	}
	if err := r.journal.Append(ctx, recs...); err != nil {
		return err
	}
	*b = *newBatch()
	return r.catchUp()
}

func (r *Receiver) processPending(ctx context.Context) error {
	pending := slices.Clone(r.state.pending) // flush changes the state's
	b := newBatch()
	alerts := 0
	for _, n := range pending {
		alerts += len(n.Webhook.Alerts)
	}
	b.recs = make([]record, 0, alerts+1) // a decision each, most often
	for _, n := range pending {
		hook := n.Webhook
		if hook.TruncatedAlerts > 0 {
			r.skip(b, request{}, reasonTruncated, fmt.Sprintf("Alertmanager left %d alerts out of the notification (group %s); no action on a partial view", hook.TruncatedAlerts, hook.GroupKey))
		} else {
			for _, a := range hook.Alerts {
				if err := r.handleAlert(ctx, a, b); err != nil {
					return err
				}
			}
		}
		b.done = append(b.done, n.ID)
	}
	return r.flush(ctx, b)
}

// request is one thing to decide: an alert, or a person's promote command.
type request struct {
	incident string
	alert    Alert
	from, to string // the failed server; the standby a person chose
	dryRun   bool
	manual   bool
}

// handleAlert decides one alert of a notification: act per alert, never on
// the group's status.
func (r *Receiver) handleAlert(ctx context.Context, a Alert, b *batch) error {
	req := request{incident: a.Incident(), alert: a, from: a.Labels["server"], dryRun: *r.cur.cfg.DryRun}
	switch {
	case a.Status == StatusResolved:
		b.resolved[req.incident] = true
		r.skip(b, req, reasonResolved, "resolved; a promotion under way, if any, goes on")
		return nil
	case a.Labels[RemediateLabel] != PromoteStandby:
		r.skip(b, req, reasonNotRemediable, fmt.Sprintf("alert %s does not carry %s=%q", a.Labels["alertname"], RemediateLabel, PromoteStandby))
		return nil
	}
	_, _, err := r.decide(ctx, req, b)
	return err
}

// skip records an alert not acted on.
func (r *Receiver) skip(b *batch, req request, reason, detail string) {
	b.recs = append(b.recs, record{Kind: kindDecision, Incident: req.incident, Outcome: reason, Error: detail})
	if considered(reason) {
		b.decided[req.incident] = true
	}
	r.metrics.skipped.WithLabelValues(reason).Inc()
	level := slog.LevelInfo
	switch reason {
	case reasonUnreachableHere, reasonVeto, reasonLeaseUnavailable, reasonBlocked:
		level = slog.LevelError // a person must look
	case reasonVerificationFailed, reasonCrossSite, reasonLeaseHeld:
		level = slog.LevelWarn
	}
	r.cur.audit.decision(level, req.incident, req.from, reason, detail, "manual", req.manual, "alertname", req.alert.Labels["alertname"])
}

// Outcomes of a person's Promote besides the skip reasons.
const (
	OutcomePromoted = "promoted"
	OutcomeDryRun   = reasonDryRun
)

// decide runs the gates in order and, if every one passes, the action. It
// returns the outcome (a skip reason, or "promoted") and what it saw.
func (r *Receiver) decide(ctx context.Context, req request, b *batch) (string, string, error) {
	skip := func(reason, format string, args ...any) (string, string, error) {
		detail := fmt.Sprintf(format, args...)
		r.skip(b, req, reason, detail)
		return reason, detail, nil
	}
	inc := req.incident
	if !req.manual {
		switch {
		case r.state.resolved(inc) || b.resolved[inc]:
			return skip(reasonResolved, "Alertmanager already said this incident is resolved")
		case r.state.decided(inc) || b.decided[inc]:
			return skip(reasonDedup, "incident already decided (a resend, a retry or the other Alertmanager)")
		}
	}
	i := slices.IndexFunc(r.cur.exporterCfg.IAP.Servers, func(s config.IAPServer) bool { return s.Name == req.from })
	if i < 0 {
		return skip(reasonVerificationFailed, "%q is not an IAP server of the configuration", req.from)
	}
	cluster := r.cur.exporterCfg.IAP.Servers[i].Cluster
	opt, optedIn := r.cur.cfg.cluster(cluster)
	if !optedIn {
		return skip(reasonNotOptedIn, "cluster %s of %s is not listed under clusters", cluster, req.from)
	}
	if r.cur.cfg.PauseFile != "" {
		if _, err := os.Stat(r.cur.cfg.PauseFile); err == nil {
			return skip(reasonPaused, "paused while %s exists", r.cur.cfg.PauseFile)
		}
	}
	if detail, cooling := r.coolingDown(req.from); cooling {
		return skip(reasonCooldown, "%s", detail)
	}
	if f := r.state.blockedBy; f != nil {
		return skip(reasonBlocked, "the action of incident %s ended %s at %s (%s); run `iap_ha_exporter remediation ack` after checking", f.Incident, f.Result, f.Time.Format(time.RFC3339), f.Error)
	}
	if running, ok := r.state.inFlightIn(cluster); ok {
		return skip(reasonInProgress, "the action of incident %s runs in cluster %s", running.Incident, cluster)
	}
	plan, refused := r.verify(ctx, req, &b.seen)
	if refused != nil {
		return skip(refused.reason, "%s", refused.detail)
	}
	if detail, cooling := r.coolingDown(plan.To); cooling {
		return skip(reasonCooldown, "%s", detail)
	}
	if detail, refused := r.singleVantage(req, plan); refused {
		return skip(reasonSingleVantage, "%s", detail)
	}
	if plan.CrossSite && !opt.AllowCrossSite {
		return skip(reasonCrossSite, "the standby %s is in site %s, %s in %s; set allow_cross_site for cluster %s to approve", plan.To, plan.ToSite, plan.From, plan.FromSite, cluster)
	}
	if req.dryRun {
		r.cur.audit.decision(slog.LevelInfo, inc, req.from, reasonDryRun, "dry run: the plan is logged, nothing is done", "plan", plan)
		b.recs = append(b.recs, record{Kind: kindDecision, Incident: inc, Cluster: cluster, Outcome: reasonDryRun, Plan: plan})
		b.decided[inc] = true
		r.metrics.skipped.WithLabelValues(reasonDryRun).Inc()
		return reasonDryRun, "dry run", nil
	}
	return r.act(ctx, req, plan, b)
}

// coolingDown reports whether an action involving server started less than
// the cooldown ago: a server that failed, or was promoted, so recently is
// flapping, and another action would make it worse. Another server of the
// same cluster (the second active of a lost site) is not held back.
func (r *Receiver) coolingDown(server string) (string, bool) {
	last, ok := r.state.lastAction[server]
	if !ok || time.Since(last) >= time.Duration(r.cur.cfg.Cooldown) {
		return "", false
	}
	return fmt.Sprintf("an action involving %s started at %s, less than %s ago", server, last.Format(time.RFC3339), r.cur.cfg.Cooldown), true
}

// singleVantage refuses a promotion whose fence could not reach the failed
// server when only this host saw it down, unless allow_single_vantage: a
// route lost between this host and a live active looks the same from here,
// and the standby would then work beside it. A person's promote is a second
// look and is not refused.
func (r *Receiver) singleVantage(req request, plan *Plan) (string, bool) {
	if req.manual || plan.FromAnswers || r.cur.cfg.AllowSingleVantage {
		return "", false
	}
	return fmt.Sprintf("%s does not answer this receiver, so the fence cannot reach it, and this host is the only vantage point: "+
		"a failed server and a partition between the two look the same from here; check it from elsewhere and promote by hand, "+
		"or set allow_single_vantage: true", plan.From), true
}

// verify probes afresh and plans the promotion.
// seen is the view shared with the other alerts of the batch; nil asks for
// a view of its own.
func (r *Receiver) verify(ctx context.Context, req request, seen *observation) (*Plan, *refusal) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cur.cfg.VerifyTimeout))
	defer cancel()
	if seen == nil {
		seen = &observation{}
	}
	if !seen.scraped {
		seen.scrape, seen.scrapeErr = r.scrape(ctx)
		seen.scraped = true
	}
	if seen.scrapeErr != nil {
		return nil, refuse(reasonVerificationFailed, "fresh probes did not finish: %v", seen.scrapeErr)
	}
	scrape := seen.scrape
	d, ok := seen.direct[req.from]
	if !ok {
		d.health, d.err = r.cur.iap.CheckHealth(ctx, req.from)
		if seen.direct == nil {
			seen.direct = map[string]directHealth{}
		}
		seen.direct[req.from] = d
	}
	direct, err := d.health, d.err
	if err != nil {
		return nil, refuse(reasonVerificationFailed, "%v", err)
	}
	plan, refused := planPromotion(r.cur.exporterCfg, scrape.Snapshot, req.from, direct, req.to)
	if refused != nil {
		return nil, refused
	}
	plan.Incident, plan.AlertName = req.incident, req.alert.Labels["alertname"]
	return plan, nil
}

// act takes the lease, checks once more under it, and promotes.
func (r *Receiver) act(ctx context.Context, req request, plan *Plan, b *batch) (string, string, error) {
	skip := func(reason, format string, args ...any) (string, string, error) {
		detail := fmt.Sprintf(format, args...)
		r.skip(b, req, reason, detail)
		return reason, detail, nil
	}
	// What was decided so far is on disk before anything changes in the estate.
	if err := r.flush(ctx, b); err != nil {
		return "", "", err
	}
	ok, holder, token, err := r.cur.lease.acquire(ctx, plan.Cluster)
	switch {
	case err != nil:
		return skip(reasonLeaseUnavailable, "the lease in Redis %s could not be asked for: %v; no action without it", r.cur.cfg.Lease.Redis, err)
	case !ok:
		return skip(reasonLeaseHeld, "receiver %s holds the lease of cluster %s", holder, plan.Cluster)
	}
	stopRenewing := r.cur.lease.keep(ctx, plan.Cluster, r.logger)
	defer func() {
		stopRenewing()
		if err := r.cur.lease.release(context.WithoutCancel(ctx), plan.Cluster); err != nil {
			r.logger.Warn("remediation: the lease was not released; it expires by itself", "ttl", r.cur.cfg.Lease.TTL, "err", err)
		}
	}()
	// Under the lease: another receiver may have acted while we verified.
	fresh, refused := r.verify(ctx, request{incident: req.incident, alert: req.alert, from: req.from, to: plan.To}, nil)
	if refused != nil {
		return skip(refused.reason, "under the lease: %s", refused.detail)
	}
	*plan = *fresh
	plan.FencingToken = token
	if detail, cooling := r.coolingDown(plan.To); cooling {
		return skip(reasonCooldown, "under the lease: %s", detail)
	}
	if detail, refused := r.singleVantage(req, plan); refused {
		return skip(reasonSingleVantage, "under the lease: %s", detail)
	}
	claimed, by, err := r.cur.lease.claim(ctx, req.incident, r.state.claimedBy(req.incident))
	switch {
	case err != nil:
		return skip(reasonLeaseUnavailable, "the incident could not be claimed in Redis %s: %v", r.cur.cfg.Lease.Redis, err)
	case claimed == claimTakenByOther:
		return skip(reasonDedup, "receiver %s already took this incident", strings.TrimSuffix(by, claimStartedSuffix))
	case claimed == claimTakenOver:
		r.logger.Warn("remediation: incident claimed before and never started (a receiver stopped between its claim and its first step, or refused); deciding it again",
			"incident", req.incident, "claimed_by", by)
	}
	// A crash from here to the start record leaves the claim in the
	// journal: the next run takes it over instead of reading it as taken.
	if err := r.journal.Append(ctx, record{Kind: kindClaimed, Incident: req.incident, Cluster: plan.Cluster, Holder: r.instance}); err != nil {
		return "", "", err
	}
	if err := r.catchUp(); err != nil {
		return "", "", err
	}

	if scripts := r.cur.cfg.Scripts.PreCheck; len(scripts) > 0 {
		runs := runScripts(ctx, scripts, time.Duration(r.cur.cfg.Scripts.Timeout), scriptEnv(actionPreCheck, req.alert, plan, false))
		failed := r.auditScripts(req.incident, actionPreCheck, runs)
		if failed != nil {
			return skip(reasonVeto, "pre-check %s vetoed: %v", failed.Script, failed.Err)
		}
	}

	switch held, err := r.cur.lease.stillHeld(ctx, plan.Cluster, token); {
	case err != nil:
		return skip(reasonLeaseUnavailable, "the lease could not be checked in Redis %s: %v; no action without it", r.cur.cfg.Lease.Redis, err)
	case !held:
		return skip(reasonLeaseHeld, "the lease of cluster %s (fencing token %d) is no longer this receiver's: it expired and was taken; no action", plan.Cluster, token)
	}
	switch ok, err := r.cur.lease.markStarted(ctx, req.incident); {
	case err != nil:
		return skip(reasonLeaseUnavailable, "the claim of the incident could not be marked started in Redis %s: %v; no action without it", r.cur.cfg.Lease.Redis, err)
	case !ok:
		return skip(reasonLeaseHeld, "another receiver took the incident over while this one held it (its lease expired?); no action")
	}
	if err := r.journal.Append(ctx, record{Kind: kindStarted, Incident: req.incident, Cluster: plan.Cluster, Plan: plan}); err != nil {
		r.metrics.actions.WithLabelValues(actionPromote, ResultFailure).Inc()
		r.cur.audit.step(req.incident, actionPromote, ResultFailure, "error", "not started: the journal failed: "+err.Error())
		return "", "", err
	}
	if err := r.catchUp(); err != nil {
		return "", "", err
	}
	r.cur.audit.decision(slog.LevelWarn, req.incident, req.from, OutcomePromoted, "promoting", "plan", plan, "manual", req.manual)

	result, stepErr := ResultSuccess, r.promote(ctx, req, plan)
	finished := record{Kind: kindFinished, Incident: req.incident, Cluster: plan.Cluster, Plan: plan, Result: result}
	if stepErr != nil {
		finished.Result, finished.Error = ResultFailure, stepErr.Error()
	}
	r.metrics.actions.WithLabelValues(actionPromote, finished.Result).Inc()
	r.cur.audit.step(req.incident, actionPromote, finished.Result, "plan", plan, "error", finished.Error)
	if err := r.journal.Append(ctx, finished); err != nil {
		return "", "", err
	}
	if err := r.catchUp(); err != nil {
		return "", "", err
	}
	if stepErr != nil {
		return ResultFailure, stepErr.Error(), nil
	}
	return OutcomePromoted, fmt.Sprintf("%s promoted in place of %s", plan.To, plan.From), nil
}

// promote runs the steps. Each is idempotent: activating a worker that runs
// changes nothing, so a second receiver or a person repeating them is safe.
func (r *Receiver) promote(ctx context.Context, req request, plan *Plan) error {
	step := func(action, result string, attrs ...any) {
		r.metrics.actions.WithLabelValues(action, result).Inc()
		r.cur.audit.step(req.incident, action, result, attrs...)
	}
	// Each step runs only under the lease the action took: one that
	// expired and was taken by another receiver stops it.
	held := func(next string) error {
		ok, err := r.cur.lease.stillHeld(ctx, plan.Cluster, plan.FencingToken)
		switch {
		case err != nil:
			return fmt.Errorf("before %s: the lease could not be checked: %w", next, err)
		case !ok:
			return fmt.Errorf("before %s: the lease of cluster %s (fencing token %d) is no longer this receiver's", next, plan.Cluster, plan.FencingToken)
		}
		return nil
	}
	if err := held(actionFence); err != nil {
		return err
	}
	// Fence first: a failed server that still answers must not go on
	// working tasks beside its replacement.
	h, _ := r.cur.iap.CheckHealth(ctx, plan.From)
	if h.Answered {
		if err := r.cur.iap.Deactivate(ctx, plan.From); err != nil {
			step(actionFence, ResultFailure, "server", plan.From, "error", err)
			return fmt.Errorf("fencing %s, which still answers: %w", plan.From, err)
		}
		step(actionFence, ResultSuccess, "server", plan.From)
	} else {
		step(actionFence, resultUnreachable, "server", plan.From, "detail", h.Reason)
		if !req.manual && !r.cur.cfg.AllowSingleVantage {
			return fmt.Errorf("fencing %s: it stopped answering after the checks, and one vantage point cannot tell a failed server from a partition (allow_single_vantage is false)", plan.From)
		}
	}

	if err := held(actionActivate); err != nil {
		return err
	}
	if err := r.cur.iap.Activate(ctx, plan.To); err != nil {
		step(actionActivate, ResultFailure, "server", plan.To, "error", err)
		return fmt.Errorf("activating %s: %w", plan.To, err)
	}
	step(actionActivate, ResultSuccess, "server", plan.To)

	if err := r.confirm(ctx, plan.To); err != nil {
		step(actionConfirm, ResultFailure, "server", plan.To, "error", err)
		return fmt.Errorf("confirming %s: %w", plan.To, err)
	}
	step(actionConfirm, ResultSuccess, "server", plan.To)

	if scripts := r.cur.cfg.Scripts.PostPromotion[plan.ToSite]; len(scripts) > 0 {
		if err := held(actionPostPromotion); err != nil {
			return err
		}
		runs := runScripts(ctx, scripts, time.Duration(r.cur.cfg.Scripts.Timeout), scriptEnv(actionPostPromotion, req.alert, plan, false))
		if failed := r.auditScripts(req.incident, actionPostPromotion, runs); failed != nil {
			return fmt.Errorf("post-promotion script %s: %w", failed.Script, failed.Err)
		}
	}
	return nil
}

// confirm waits until workers/status shows the standby's workers running.
func (r *Receiver) confirm(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cur.cfg.ConfirmTimeout))
	defer cancel()
	for {
		task, job, err := r.cur.iap.Workers(ctx, name)
		if err == nil && task == topology.True && job != topology.False {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("task worker %s, job worker %s", running(task), running(job))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not confirmed within %s: %w", r.cur.cfg.ConfirmTimeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func running(t topology.Tristate) string {
	switch t {
	case topology.True:
		return "running"
	case topology.False:
		return "stopped"
	}
	return "unknown"
}

// auditScripts logs each run with its output and returns the failed one.
func (r *Receiver) auditScripts(incident, action string, runs []scriptRun) *scriptRun {
	for i, run := range runs {
		result := ResultSuccess
		if run.Err != nil {
			result = ResultFailure
		}
		r.metrics.actions.WithLabelValues(action, result).Inc()
		r.cur.audit.step(incident, action, result, "script", run.Script, "output", run.Output, "error", run.Err)
		if run.Err != nil {
			return &runs[i]
		}
	}
	return nil
}

// Promote runs, for a person, the promotion of a standby in place of the
// failed server from: the same gates as an alert, less the dedup (each
// request is an incident of its own), and the person's dryRun instead of the
// file's. to may be empty: the receiver chooses as it would for an alert.
func (r *Receiver) Promote(ctx context.Context, from, to string, dryRun bool) (outcome, detail string, err error) {
	if err := r.catchUp(); err != nil {
		return "", "", err
	}
	req := request{
		incident: fmt.Sprintf("manual:%s:%s", from, time.Now().UTC().Format(time.RFC3339Nano)),
		alert:    Alert{Status: StatusFiring, Labels: map[string]string{"alertname": "manual", "server": from}, StartsAt: time.Now()},
		from:     from, to: to, dryRun: dryRun, manual: true,
	}
	b := newBatch()
	outcome, detail, err = r.decide(ctx, req, b)
	if ferr := r.flush(ctx, b); err == nil {
		err = ferr
	}
	return outcome, detail, err
}

// Ack records in the journal at path that a person has looked at the failed
// action that blocks; a running receiver reads it within a second. It
// reports the failure acknowledged, or an error when nothing blocks or
// there is no journal at path (a mistyped path would otherwise be a new,
// empty journal, "not blocked").
func Ack(ctx context.Context, journalPath, by, note string, logger *slog.Logger) (string, error) {
	if _, err := os.Stat(journalPath); err != nil {
		return "", fmt.Errorf("no journal to acknowledge in: %w", err)
	}
	j, err := OpenJournal(journalPath, logger)
	if err != nil {
		return "", err
	}
	defer j.Close()
	s := newState()
	recs, _, err := j.read()
	if err != nil {
		return "", err
	}
	s.replay(recs, false)
	if s.blockedBy == nil {
		return "", errors.New("remediation is not blocked: nothing to acknowledge")
	}
	f := s.blockedBy
	if err := j.Append(ctx, record{Kind: kindAck, By: by, Note: note}); err != nil {
		return "", err
	}
	return fmt.Sprintf("incident %s (%s → %s) ended %s at %s: %s", f.Incident, planFrom(f.Plan), planTo(f.Plan), f.Result, f.Time.Format(time.RFC3339), f.Error), nil
}

func planFrom(p *Plan) string {
	if p == nil {
		return "?"
	}
	return p.From
}

func planTo(p *Plan) string {
	if p == nil {
		return "?"
	}
	return p.To
}

func dirOf(path string) string { return filepath.Dir(path) }
