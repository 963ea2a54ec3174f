// Package remediation is an Alertmanager webhook receiver that promotes a
// standby IAP server when an active one has failed: exactly once, only after
// checking for itself, and never making things worse.
//
// A notification is journaled (fsynced) before the receiver answers 202; a
// single worker then takes every alert through the gates, in order:
// incident already settled → cluster opted in → not paused → cooldown of
// the failed server → not blocked by a failed action → fresh
// re-verification with the exporter's own probes and HA model → cooldown of
// the standby → the estate-wide pause, block and cooldowns, beside the lease
// (shared.go) → a second
// vantage point when the fence cannot reach the failed server (vantage.go)
// → cross-site approval → dry-run. Only an action, or a refusal
// the incident cannot change (not opted in, dry run), settles an incident;
// Alertmanager's resends of it are decided again after any other refusal. Only then does it
// take a lease in the estate's Redis (through Sentinel), claim the failure
// of the server there (one episode, whichever alert told of it), fence the failed
// server, activate the standby's workers, confirm, and run the site's
// scripts. Every decision is journaled, logged in the audit log and counted.
package remediation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
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

	// compactedSize is the size the last compaction left.
	compactedSize int64

	wake     chan struct{}
	burst    burst
	lockFile *os.File
	// sharedBlock is the incident whose failure this receiver last wrote
	// as the estate-wide block (shareBlock).
	sharedBlock string
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
	}
	s, err := r.newSettings(cfg, opts.ExporterConfig)
	if err != nil {
		return nil, err
	}
	r.cur = s
	r.latest.Store(s)
	if len(s.vantages) == 0 {
		r.logger.Warn("remediation: one vantage point: failed servers are checked from this host alone (no peers)",
			"allow_single_vantage", cfg.AllowSingleVantage,
			"effect", map[bool]string{true: "a promotion proceeds when the fence cannot reach the failed server", false: "a promotion whose fence cannot reach the failed server is refused (single_vantage)"}[cfg.AllowSingleVantage])
	} else {
		var names []string
		for _, v := range s.vantages {
			names = append(names, v.String())
		}
		r.logger.Info("remediation: a failed server the fence cannot reach is checked from elsewhere too", "vantage_points", names)
	}
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
	f, err := lockJournalFor(r.journalFile)
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
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
	if err := r.catchUp(); err != nil {
		return err
	}
	r.shareBlock(context.Background())
	return nil
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
	r.metrics.vantagePoints.Set(float64(1 + len(r.cur.vantages)))
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
// Tests lower it to compact after every batch.
var compactAbove atomic.Int64

const defaultCompactAbove = 1 << 20

func init() { compactAbove.Store(defaultCompactAbove) }

// grown reports whether the journal has grown enough since the last
// compaction to compact it again: past twice what that one left, so that
// the cost of rewriting what is kept is spread over as much appended.
func (r *Receiver) grown() bool {
	return r.journal.size() > max(compactAbove.Load(), 2*r.compactedSize)
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

func dirOf(path string) string { return filepath.Dir(path) }
