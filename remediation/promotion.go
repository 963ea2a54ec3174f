package remediation

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

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
	// Under the lease: another receiver may have acted, been blocked or
	// paused the estate while we verified.
	seen := &observation{}
	fresh, refused := r.verify(ctx, request{incident: req.incident, alert: req.alert, from: req.from, to: plan.To}, seen)
	if refused != nil {
		return skip(refused.reason, "under the lease: %s", refused.detail)
	}
	shared, err := r.sharedOf(ctx, seen)
	if err != nil {
		return skip(reasonLeaseUnavailable, "under the lease: the estate's remediation state in Redis %s could not be read: %v; no action without it", r.cur.cfg.Lease.Redis, err)
	}
	if refused := sharedRefusal(shared, fresh.From, fresh.To); refused != nil {
		return skip(refused.reason, "under the lease: %s", refused.detail)
	}
	*plan = *fresh
	plan.FencingToken = token
	if detail, cooling := r.coolingDown(plan.To); cooling {
		return skip(reasonCooldown, "under the lease: %s", detail)
	}
	if refused := r.secondLook(ctx, req, plan); refused != nil {
		return skip(refused.reason, "under the lease: %s", refused.detail)
	}
	claimed, by, err := r.cur.lease.claim(ctx, plan.From, r.state.claimedBy(req.incident))
	switch {
	case err != nil:
		return skip(reasonLeaseUnavailable, "the incident could not be claimed in Redis %s: %v", r.cur.cfg.Lease.Redis, err)
	case claimed == claimTakenByOther:
		return skip(reasonDedup, "receiver %s already took this failure of %s (one episode, whichever exporter or Alertmanager raised the alert)", strings.TrimSuffix(by, claimStartedSuffix), plan.From)
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
	switch ok, err := r.cur.lease.markStarted(ctx, plan.From); {
	case err != nil:
		return skip(reasonLeaseUnavailable, "the claim of the incident could not be marked started in Redis %s: %v; no action without it", r.cur.cfg.Lease.Redis, err)
	case !ok:
		return skip(reasonLeaseHeld, "another receiver took the incident over while this one held it (its lease expired?); no action")
	}
	// Every receiver holds back from both servers from now on.
	cooldown := sharedNote{By: r.cur.cfg.Site + "/" + r.instance, Time: time.Now().UTC(), Incident: req.incident}
	if err := r.cur.lease.startCooldown(ctx, cooldown, time.Duration(r.cur.cfg.Cooldown), plan.From, plan.To); err != nil {
		return skip(reasonLeaseUnavailable, "the estate-wide cooldown could not be written in Redis %s: %v; no action without it", r.cur.cfg.Lease.Redis, err)
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
	if err := r.cur.lease.endEpisode(context.WithoutCancel(ctx), plan.From, time.Duration(r.cur.cfg.Cooldown)); err != nil {
		r.logger.Warn("remediation: the claim of the failure was not shortened to the cooldown; it expires by itself", "server", plan.From, "ttl", episodeTTL, "err", err)
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
		r.shareBlock(context.WithoutCancel(ctx))
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
		// It answered the checks: look again from elsewhere before
		// starting a standby beside what may be a live server.
		unreached := *plan
		unreached.FromAnswers = false
		if refused := r.secondLook(ctx, req, &unreached); refused != nil {
			return fmt.Errorf("fencing %s: it stopped answering after the checks: %s", plan.From, refused.detail)
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
	return r.verifyRoutingStep(ctx, req.incident, plan)
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
