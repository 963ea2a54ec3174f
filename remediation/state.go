package remediation

import (
	"fmt"
	"time"
)

// Results of an action.
const (
	ResultSuccess     = "success"
	ResultFailure     = "failure"
	ResultInterrupted = "interrupted" // the process ended while it ran
)

// state is what the journal says, replayed record by record: which
// incidents were decided, which notifications wait, which action runs,
// whether a failure blocks. It is only ever built from the journal, so that
// a restart, or another process appending, leads to the same answers.
type state struct {
	pending   []record        // notifications not yet processed, in order
	processed map[string]bool // notification ids
	decided   map[string]bool // incidents that went past the dedup gate
	resolved  map[string]bool // incidents Alertmanager said were resolved
	// lastAction is when the last action of each cluster started.
	lastAction map[string]time.Time
	// lastActionAt is when any action last started or ended.
	lastActionAt time.Time
	inFlight     map[string]record // incident → started record
	// blockedBy is the finished record of the failure that blocks, until an ack.
	blockedBy *record
	// lastFinished is the last action that ended, for the status page.
	lastFinished *record
}

func newState() *state {
	return &state{
		processed:  map[string]bool{},
		decided:    map[string]bool{},
		resolved:   map[string]bool{},
		lastAction: map[string]time.Time{},
		inFlight:   map[string]record{},
	}
}

func (s *state) apply(r record) {
	switch r.Kind {
	case kindNotification:
		if !s.processed[r.ID] {
			s.pending = append(s.pending, r)
		}
	case kindProcessed:
		for _, id := range r.IDs {
			s.processed[id] = true
		}
		s.pending = dropProcessed(s.pending, s.processed)
	case kindDecision:
		if r.Outcome == reasonResolved {
			s.resolved[r.Incident] = true
		} else if decides(r.Outcome) {
			s.decided[r.Incident] = true
		}
	case kindStarted:
		s.decided[r.Incident] = true
		s.inFlight[r.Incident] = r
		s.lastAction[r.Cluster] = r.Time
		s.lastActionAt = r.Time
	case kindFinished:
		delete(s.inFlight, r.Incident)
		s.lastActionAt = r.Time
		rec := r
		s.lastFinished = &rec
		if r.Result != ResultSuccess {
			s.blockedBy = &rec
		}
	case kindAck:
		s.blockedBy = nil
	}
}

func dropProcessed(pending []record, processed map[string]bool) []record {
	out := pending[:0]
	for _, r := range pending {
		if !processed[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// decides reports whether an outcome settles its incident: once past the
// dedup gate an incident is decided once, whatever the outcome; a resend is
// never reconsidered (a person decides with `promote`). Outcomes before the
// gate (resolved, not ours, truncated) and the dedup itself settle nothing.
func decides(outcome string) bool {
	switch outcome {
	case reasonResolved, reasonNotRemediable, reasonTruncated, reasonDedup:
		return false
	}
	return true
}

// inFlightIn reports an action running in a cluster.
func (s *state) inFlightIn(cluster string) (record, bool) {
	for _, r := range s.inFlight {
		if r.Cluster == cluster {
			return r, true
		}
	}
	return record{}, false
}

// Status is what a person sees of the receiver on the topology page.
type Status struct {
	DryRun  bool
	Paused  bool
	Blocked bool
	// LastAction describes the last action that ended ("" before any).
	LastAction string
	LastTime   time.Time
}

func (s *state) status(cfg *Config) Status {
	st := Status{DryRun: *cfg.DryRun, Blocked: s.blockedBy != nil}
	if f := s.lastFinished; f != nil {
		st.LastAction = fmt.Sprintf("promote %s → %s: %s", planFrom(f.Plan), planTo(f.Plan), f.Result)
		st.LastTime = f.Time
	}
	return st
}
