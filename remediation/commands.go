package remediation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

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

// AckAll is `remediation ack`: it acknowledges the failure the journal of
// cfg records (ack) and removes the estate-wide block from the lease's
// Redis, which holds every receiver back. local and shared say what each
// was ("" for none); it is an error when neither blocked.
func AckAll(ctx context.Context, cfg *Config, exporter *config.Config, by, note string, logger *slog.Logger) (local, shared string, err error) {
	local, plan, err := ack(ctx, cfg.JournalFile, by, note, logger)
	if err != nil && !errors.Is(err, ErrNotBlocked) {
		return "", "", err
	}
	notBlocked := err
	s, err := OpenShared(cfg, exporter)
	if err != nil {
		return local, "", err
	}
	defer s.Close()
	if plan != nil {
		// The person looked: the next alert of the server is decided anew.
		if err := s.l.endClaim(ctx, plan.From); err != nil {
			return local, "", fmt.Errorf("acknowledged here (%s), but the claim of %s's failure in Redis %s was not removed: %w; run ack again once Redis answers", local, plan.From, cfg.Lease.Redis, err)
		}
	}
	if shared, err = s.Unblock(ctx); err != nil {
		if notBlocked != nil {
			return "", "", fmt.Errorf("%w here; the estate-wide block could not be checked in Redis %s: %v", notBlocked, cfg.Lease.Redis, err)
		}
		return local, "", fmt.Errorf("acknowledged here (%s), but the estate-wide block in Redis %s was not removed: %w; run ack again once Redis answers", local, cfg.Lease.Redis, err)
	}
	if notBlocked != nil && shared == "" {
		return "", "", fmt.Errorf("%w, here nor estate-wide", notBlocked)
	}
	return local, shared, nil
}

// ErrNotBlocked: the journal records no failure to acknowledge.
var ErrNotBlocked = errors.New("remediation is not blocked: nothing to acknowledge")

// ack records in the journal at path that a person has looked at the failed
// action that blocks; a running receiver reads it within a second. It
// reports the failure acknowledged and the plan of its action, or an error
// when nothing blocks or there is no journal at path (a mistyped path would
// otherwise be a new, empty journal, "not blocked").
func ack(ctx context.Context, journalPath, by, note string, logger *slog.Logger) (string, *Plan, error) {
	if _, err := os.Stat(journalPath); err != nil {
		return "", nil, fmt.Errorf("no journal to acknowledge in: %w", err)
	}
	j, err := OpenJournal(journalPath, logger)
	if err != nil {
		return "", nil, err
	}
	defer j.Close()
	s := newState()
	recs, _, err := j.read()
	if err != nil {
		return "", nil, err
	}
	s.replay(recs, false)
	if s.blockedBy == nil {
		return "", nil, ErrNotBlocked
	}
	f := s.blockedBy
	if err := j.Append(ctx, record{Kind: kindAck, By: by, Note: note}); err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("incident %s (%s → %s) ended %s at %s: %s", f.Incident, planFrom(f.Plan), planTo(f.Plan), f.Result, f.Time.Format(time.RFC3339), f.Error), f.Plan, nil
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
