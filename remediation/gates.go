package remediation

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

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
		r.shareBlock(ctx)
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
	// Estate-wide, beside the lease: read once the plan names both servers.
	shared, err := r.sharedOf(ctx, &b.seen)
	if err != nil {
		return skip(reasonLeaseUnavailable, "the estate's remediation state in Redis %s could not be read: %v; no action without it", r.cur.cfg.Lease.Redis, err)
	}
	if refused := sharedRefusal(shared, plan.From, plan.To); refused != nil {
		return skip(refused.reason, "%s", refused.detail)
	}
	if refused := r.secondLook(ctx, req, plan); refused != nil {
		return skip(refused.reason, "%s", refused.detail)
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
