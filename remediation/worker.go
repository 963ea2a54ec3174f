package remediation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/probe/iap"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// A burst of notifications is decided once it is over, as one batch:
// answering is urgent, deciding is not (a promotion's gates take seconds),
// and a worker deciding while the burst lasts takes CPU from the answers.
// Under a load that does not stop the worker decides every 25 ms, in
// batches small enough not to hold up the answers (PERFORMANCE.md).
const (
	burstQuiet    = 5 * time.Millisecond  // no notification for this long ends a burst
	burstMaxDelay = 25 * time.Millisecond // a burst that does not end is decided anyway
)

// burst tells the worker when notifications stop arriving.
type burst struct {
	last atomic.Int64 // when the last notification was journaled, in Unix ns
}

// received notes a notification journaled now.
func (b *burst) received() { b.last.Store(time.Now().UnixNano()) }

// wait returns once no notification has been journaled for quiet, at
// most maxDelay after it was called (at once when none came lately), or
// when ctx ends.
func (b *burst) wait(ctx context.Context, quiet, maxDelay time.Duration) {
	deadline := time.Now().Add(maxDelay)
	for {
		now := time.Now()
		wait := min(time.Unix(0, b.last.Load()).Add(quiet).Sub(now), deadline.Sub(now))
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
		r.burst.wait(ctx, burstQuiet, burstMaxDelay)
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
	// shared is the estate-wide state (sharedOf).
	shared    *sharedView
	sharedErr error
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
