package remediation

import (
	"cmp"
	"fmt"
	"slices"
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
//
// It keeps the records that say so, each with its place in the journal, so
// that snapshot can write them again, in the same order, as a compacted
// journal that replays to the same answers.
type state struct {
	seq     uint64  // records applied so far: the place of the next one
	pending []entry // notifications not yet processed, in order
	// incidents are the incidents decided or resolved, and those of the
	// actions the state keeps; prune forgets the old ones.
	incidents map[string]*incident
	// lastAction is when the last action involving each server (as the
	// failed one or the standby) started, and lastStarted its record: the
	// cooldown guards a server, not its cluster.
	lastAction  map[string]time.Time
	lastStarted map[string]*entry
	// lastActionAt is when any action last started or ended.
	lastActionAt time.Time
	inFlight     map[string]record // incident → started record
	// blockedBy is the finished record of the failure that blocks, until an ack.
	blockedBy *entry
	// lastFinished is the last action that ended, for the status page.
	lastFinished *entry
	lastAck      *entry
}

// entry is a record and its place in the journal.
type entry struct {
	record
	seq uint64
}

// incident is what the journal says of one incident.
type incident struct {
	settled  *entry // the decision or start that settled it; nil while not
	claimed  *entry // the last claim in Redis this receiver journaled
	decision *entry // the last decision other than a dedup
	resolved *entry // the first notice that it is resolved
	started  *entry // its action, if one started
	finished *entry
	last     *entry // its last record: the retention counts from its time
}

func newState() *state {
	return &state{
		incidents:   map[string]*incident{},
		lastAction:  map[string]time.Time{},
		lastStarted: map[string]*entry{},
		inFlight:    map[string]record{},
	}
}

// replay applies recs; after a reset (the journal was replaced by another
// process's compaction) they are the whole new journal and replace what the
// state knew.
func (s *state) replay(recs []record, reset bool) {
	if reset {
		*s = *newState()
	}
	for _, r := range recs {
		s.apply(r)
	}
}

func (s *state) apply(r record) {
	s.seq++
	e := &entry{r, s.seq}
	switch r.Kind {
	case kindNotification:
		s.pending = append(s.pending, *e)
	case kindProcessed:
		s.pending = dropProcessed(s.pending, r.IDs)
	case kindDecision:
		switch {
		case r.Incident == "": // a truncated notification: no incident to remember
		case r.Outcome == reasonResolved:
			inc := s.incident(r.Incident)
			if inc.resolved == nil {
				inc.resolved = e
			}
			inc.last = e
		case settles(r.Outcome):
			inc := s.incident(r.Incident)
			if inc.settled == nil {
				inc.settled = e
			}
			inc.last = e
		case r.Outcome == reasonDedup:
			// A resend of a known incident keeps it remembered.
			if inc, ok := s.incidents[r.Incident]; ok {
				inc.last = e
			}
		default:
			// Decided again at the next resend; a refusal is remembered
			// for the declined gauge.
			inc, ok := s.incidents[r.Incident]
			if !ok && declines(r.Outcome) {
				inc, ok = s.incident(r.Incident), true
			}
			if ok {
				inc.decision, inc.last = e, e
			}
		}
	case kindClaimed:
		inc := s.incident(r.Incident)
		inc.claimed, inc.last = e, e
	case kindStarted:
		inc := s.incident(r.Incident)
		if inc.settled == nil {
			inc.settled = e
		}
		inc.started, inc.last = e, e
		s.inFlight[r.Incident] = r
		if r.Plan != nil {
			for _, server := range []string{r.Plan.From, r.Plan.To} {
				s.lastAction[server] = r.Time
				s.lastStarted[server] = e
			}
		}
		s.lastActionAt = r.Time
	case kindFinished:
		inc := s.incident(r.Incident)
		inc.finished, inc.last = e, e
		delete(s.inFlight, r.Incident)
		s.lastActionAt = r.Time
		s.lastFinished = e
		if r.Result != ResultSuccess {
			s.blockedBy = e
		}
	case kindAck:
		s.blockedBy = nil
		s.lastAck = e
	}
}

func (s *state) incident(id string) *incident {
	inc, ok := s.incidents[id]
	if !ok {
		inc = &incident{}
		s.incidents[id] = inc
	}
	return inc
}

// decided reports whether an incident went past the dedup gate.
func (s *state) decided(id string) bool {
	inc, ok := s.incidents[id]
	return ok && inc.settled != nil
}

// claimedBy is the lease holder that, by this journal, last claimed an
// incident in Redis: this process or a previous run of this receiver.
func (s *state) claimedBy(id string) string {
	if inc, ok := s.incidents[id]; ok && inc.claimed != nil {
		return inc.claimed.Holder
	}
	return ""
}

// resolved reports whether Alertmanager said an incident was resolved.
func (s *state) resolved(id string) bool {
	inc, ok := s.incidents[id]
	return ok && inc.resolved != nil
}

func dropProcessed(pending []entry, ids []string) []entry {
	done := make(map[string]bool, len(ids))
	for _, id := range ids {
		done[id] = true
	}
	return slices.DeleteFunc(pending, func(e entry) bool { return done[e.ID] })
}

// prune forgets the incidents whose last record is older than cutoff,
// except those the state still needs: an action running, the last action
// of a server (cooldown), the failure that blocks and the last action that
// ended.
func (s *state) prune(cutoff time.Time) {
	keep := map[string]bool{}
	for id := range s.inFlight {
		keep[id] = true
	}
	for _, e := range s.lastStarted {
		keep[e.Incident] = true
	}
	for _, e := range []*entry{s.blockedBy, s.lastFinished} {
		if e != nil {
			keep[e.Incident] = true
		}
	}
	for id, inc := range s.incidents {
		if !keep[id] && inc.last.Time.Before(cutoff) {
			delete(s.incidents, id)
		}
	}
}

// snapshot is the shortest journal that replays to this state: the
// records that settle, resolve, start and end each incident and the last
// of each, the last action of each cluster, the failure that blocks, the
// last action that ended, the last ack, and every notification not yet
// processed, in their order in the journal. Replaying a subsequence in
// journal order gives the same answers: the last ack comes after every
// failure it cleared, the last start of a cluster after its others, and so
// on. Processed notifications, and what they added, are left out.
func (s *state) snapshot() []record {
	var es []*entry
	add := func(e *entry) {
		if e != nil {
			es = append(es, e)
		}
	}
	for _, inc := range s.incidents {
		for _, e := range []*entry{inc.settled, inc.claimed, inc.decision, inc.resolved, inc.started, inc.finished, inc.last} {
			add(e)
		}
	}
	for _, e := range s.lastStarted {
		add(e)
	}
	for _, e := range []*entry{s.blockedBy, s.lastFinished, s.lastAck} {
		add(e)
	}
	for i := range s.pending {
		add(&s.pending[i])
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	es = slices.CompactFunc(es, func(a, b *entry) bool { return a.seq == b.seq })
	recs := make([]record, len(es))
	for i, e := range es {
		recs[i] = e.record
	}
	return recs
}

// settles reports whether an outcome settles its incident for good, so that
// every resend is a duplicate: only a refusal that the incident cannot
// change (its cluster is not opted in, a dry run). An action settles its
// incident too, by its started record. Every other refusal holds for a
// while (paused, cooldown, lease, blocked, in progress) or for what the
// probes saw then (verification, veto): Alertmanager resends a firing alert
// every repeat_interval, and each resend is decided again.
func settles(outcome string) bool {
	return outcome == reasonNotOptedIn || outcome == reasonDryRun
}

// considered reports whether an outcome went past the dedup gate: a
// duplicate of the incident in the same batch is not decided again, on the
// same view of the estate.
func considered(outcome string) bool {
	switch outcome {
	case reasonResolved, reasonNotRemediable, reasonTruncated, reasonDedup:
		return false
	}
	return true
}

// declines reports whether an outcome refuses an incident for a reason a
// person must hear of while the alert fires: the receiver would act but
// for it. Another receiver acting (lease held, in progress) is not one.
func declines(outcome string) bool {
	return slices.Contains(declineReasons, outcome)
}

var declineReasons = []string{
	reasonPaused, reasonCooldown, reasonBlocked, reasonVerificationFailed, reasonUnreachableHere,
	reasonCrossSite, reasonLeaseUnavailable, reasonVeto, reasonSingleVantage, reasonPeerSeesUp, reasonBalancerReaches,
}

// declined counts the open incidents (neither acted on, settled nor
// resolved) whose last decision declined them, by reason.
func (s *state) declined() map[string]int {
	out := map[string]int{}
	for _, inc := range s.incidents {
		if inc.settled == nil && inc.resolved == nil && inc.started == nil && inc.decision != nil && declines(inc.decision.Outcome) {
			out[inc.decision.Outcome]++
		}
	}
	return out
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
	// BlockedReason says why, and what unblocks it.
	BlockedReason string
	// SingleVantage: the receiver checks a failed server from its own host
	// alone (no peers configured); AllowSingleVantage
	// whether it then promotes without reaching the failed server to fence it.
	SingleVantage      bool
	AllowSingleVantage bool
	// LastAction describes the last action that ended ("" before any).
	LastAction string
	LastTime   time.Time
}

func (s *state) status(cfg *Config) Status {
	st := Status{DryRun: *cfg.DryRun, Blocked: s.blockedBy != nil, SingleVantage: len(cfg.Peers) == 0, AllowSingleVantage: cfg.AllowSingleVantage}
	if f := s.blockedBy; f != nil {
		st.BlockedReason = fmt.Sprintf("the action of incident %s ended %s at %s; check the servers, then run `iap_ha_exporter remediation ack`",
			f.Incident, f.Result, f.Time.Format(time.RFC3339))
	}
	if f := s.lastFinished; f != nil {
		st.LastAction = fmt.Sprintf("promote %s → %s: %s", planFrom(f.Plan), planTo(f.Plan), f.Result)
		st.LastTime = f.Time
	}
	return st
}
