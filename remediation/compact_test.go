package remediation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// stateView is what a state answers, for comparing two states.
type stateView struct {
	Decided, Resolved, InFlight, Pending []string
	Last                                 map[string]string // incident → time of its last record
	LastAction                           map[string]string
	LastActionAt                         string
	BlockedBy, LastFinished              string
}

func viewOf(s *state) stateView {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	v := stateView{Last: map[string]string{}, LastAction: map[string]string{}, LastActionAt: at(s.lastActionAt)}
	for id, inc := range s.incidents {
		if inc.settled != nil {
			v.Decided = append(v.Decided, id)
		}
		if inc.resolved != nil {
			v.Resolved = append(v.Resolved, id)
		}
		v.Last[id] = at(inc.last.Time)
	}
	v.InFlight = slices.Collect(maps.Keys(s.inFlight))
	for _, e := range s.pending {
		v.Pending = append(v.Pending, e.ID)
	}
	for c, t := range s.lastAction {
		v.LastAction[c] = at(t)
	}
	if s.blockedBy != nil {
		v.BlockedBy = s.blockedBy.Incident
	}
	if s.lastFinished != nil {
		v.LastFinished = s.lastFinished.Incident
	}
	slices.Sort(v.Decided)
	slices.Sort(v.Resolved)
	slices.Sort(v.InFlight)
	return v
}

// The snapshot of a pruned state replays to the same answers, without the
// processed notifications and without the incidents older than the cutoff,
// but with what must survive them: the failure that blocks, the last
// action of each server, an action under way, the notifications waiting.
func TestSnapshotReplaysToTheSameState(t *testing.T) {
	now := time.Now().UTC().Round(0)
	cutoff := now.Add(-DefaultJournalRetention)
	old, recent := now.Add(-20*24*time.Hour), now.Add(-time.Hour)
	hook := &Webhook{Version: "4", Alerts: []Alert{{Status: StatusFiring, Fingerprint: "fp"}}}
	notification := func(id string, at time.Time) record {
		return record{Time: at, Kind: kindNotification, ID: id, Webhook: hook}
	}
	processed := func(at time.Time, ids ...string) record { return record{Time: at, Kind: kindProcessed, IDs: ids} }
	decision := func(inc, outcome string, at time.Time) record {
		return record{Time: at, Kind: kindDecision, Incident: inc, Outcome: outcome}
	}
	started := func(inc, cluster string, at time.Time) record {
		return record{Time: at, Kind: kindStarted, Incident: inc, Cluster: cluster, Plan: &Plan{From: inc + "-failed", To: inc + "-standby"}}
	}
	finished := func(inc, cluster, result string, at time.Time) record {
		return record{Time: at, Kind: kindFinished, Incident: inc, Cluster: cluster, Result: result, Plan: &Plan{From: inc + "-failed", To: inc + "-standby"}}
	}
	ack := func(at time.Time) record { return record{Time: at, Kind: kindAck, By: "ops"} }

	tests := []struct {
		name         string
		recs         []record
		wantDecided  []string
		wantResolved []string
		wantBlocked  string
		wantPending  []string
	}{{
		name: "an old incident goes, a resent one stays",
		recs: []record{
			notification("n1", old), decision("old", reasonDryRun, old), processed(old, "n1"),
			notification("n2", old), decision("resent", reasonDryRun, old), processed(old, "n2"),
			notification("n3", recent), decision("resent", reasonDedup, recent), processed(recent, "n3"),
			decision("gone-resolved", reasonResolved, old), decision("resolved", reasonResolved, recent),
		},
		wantDecided: []string{"resent"}, wantResolved: []string{"resolved"},
	}, {
		name: "an old failure still blocks, and its servers' cooldown holds; a blocked incident stays open",
		recs: []record{
			started("failed", "prod", old), finished("failed", "prod", ResultFailure, old.Add(time.Minute)),
			notification("n1", recent), decision("later", reasonBlocked, recent), processed(recent, "n1"),
		},
		wantDecided: []string{"failed"}, wantBlocked: "failed",
	}, {
		name: "an acknowledged failure stays acknowledged",
		recs: []record{
			started("failed", "prod", recent), finished("failed", "prod", ResultFailure, recent.Add(time.Minute)),
			ack(recent.Add(2 * time.Minute)),
			started("next", "prod", recent.Add(3*time.Minute)), finished("next", "prod", ResultSuccess, recent.Add(4*time.Minute)),
		},
		wantDecided: []string{"failed", "next"},
	}, {
		name: "an old action under way, an old last action of other servers, and notifications waiting",
		recs: []record{
			started("cooling", "other", old), finished("cooling", "other", ResultSuccess, old),
			started("done", "prod", old), finished("done", "prod", ResultSuccess, old.Add(time.Minute)),
			notification("n1", old), notification("n2", recent), processed(recent, "n1"),
			started("running", "prod", old.Add(2*time.Minute)), notification("n3", recent),
		},
		wantDecided: []string{"cooling", "done", "running"}, wantPending: []string{"n2", "n3"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState()
			s.replay(tt.recs, false)
			s.prune(cutoff)
			want := viewOf(s)
			snap := s.snapshot()
			replayed := newState()
			replayed.replay(snap, false)
			if got := viewOf(replayed); !reflect.DeepEqual(got, want) {
				t.Errorf("replayed snapshot\n%+v\nwant\n%+v", got, want)
			}
			if !slices.Equal(want.Decided, tt.wantDecided) || !slices.Equal(want.Resolved, tt.wantResolved) ||
				want.BlockedBy != tt.wantBlocked || !slices.Equal(want.Pending, tt.wantPending) {
				t.Errorf("decided %v resolved %v blocked %q pending %v; want %v %v %q %v",
					want.Decided, want.Resolved, want.BlockedBy, want.Pending, tt.wantDecided, tt.wantResolved, tt.wantBlocked, tt.wantPending)
			}
			for _, r := range snap {
				if r.Kind == kindProcessed || (r.Kind == kindNotification && !slices.Contains(tt.wantPending, r.ID)) {
					t.Errorf("the snapshot keeps %s %s%v", r.Kind, r.ID, r.IDs)
				}
			}
			// Compacting the compacted changes nothing.
			replayed.prune(cutoff)
			if again := replayed.snapshot(); len(again) != len(snap) {
				t.Errorf("a second snapshot has %d records, the first %d", len(again), len(snap))
			}
		})
	}
}

// compactState compacts j as the receiver does, with s its state.
func compactState(j *Journal, s *state) (bool, error) {
	return compactStateFailing(j, s, func(string) error { return nil })
}

// compactStateFailing is compactState with before asked at each step.
func compactStateFailing(j *Journal, s *state, before func(step string) error) (bool, error) {
	cutoff := time.Now().Add(-DefaultJournalRetention)
	return j.compactFailing(func(tail []record, reset bool) []record {
		s.replay(tail, reset)
		s.prune(cutoff)
		return s.snapshot()
	}, before)
}

// replayFile is the state a new process replays from the journal at path.
func replayFile(t *testing.T, path string) *state {
	t.Helper()
	j := openJournal(t, path)
	recs, _, err := j.read()
	if err != nil {
		t.Fatal(err)
	}
	s := newState()
	s.replay(recs, false)
	return s
}

// A compaction that stops at any step (as a crash would) leaves the old
// journal or the new one, each whole, replaying to the same answers; the
// journal goes on working in the process.
func TestCompactionCrash(t *testing.T) {
	tests := []struct {
		step     string
		replaced bool // the rename was done
	}{
		{stepWrite, false}, {stepSync, false}, {stepRename, false}, {stepSyncDir, true}, {"", true},
	}
	for _, tt := range tests {
		t.Run("fail at "+tt.step, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			j := openJournal(t, path)
			ctx := context.Background()
			old := time.Now().Add(-20 * 24 * time.Hour).Round(0)
			hook := &Webhook{Version: "4"}
			if err := j.Append(ctx,
				record{Kind: kindNotification, ID: "n1", Webhook: hook},
				record{Time: old, Kind: kindDecision, Incident: "forgotten", Outcome: reasonDryRun},
				record{Kind: kindDecision, Incident: "kept", Outcome: reasonDryRun},
				record{Kind: kindProcessed, IDs: []string{"n1"}},
				record{Kind: kindStarted, Incident: "failed", Cluster: "prod", Plan: &Plan{}},
				record{Kind: kindFinished, Incident: "failed", Cluster: "prod", Result: ResultFailure, Plan: &Plan{}},
				record{Kind: kindNotification, ID: "n2", Webhook: hook},
			); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s := newState()
			replaced, err := compactStateFailing(j, s, func(step string) error {
				if step == tt.step {
					return fmt.Errorf("crash at %s", step)
				}
				return nil
			})
			if replaced != tt.replaced || (err == nil) != (tt.step == "") {
				t.Fatalf("replaced %v, err %v", replaced, err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.replaced && !bytes.Equal(after, before) {
				t.Fatalf("the journal changed although the rename was not done:\n%s", after)
			}
			if tt.replaced && len(after) >= len(before) {
				t.Fatalf("compacted journal of %d bytes, was %d", len(after), len(before))
			}
			want := stateView{
				Decided: []string{"failed", "kept"}, Pending: []string{"n2"}, BlockedBy: "failed", LastFinished: "failed",
			}
			if !tt.replaced {
				want.Decided = []string{"failed", "forgotten", "kept"}
			}
			got := viewOf(replayFile(t, path))
			if !slices.Equal(got.Decided, want.Decided) || !slices.Equal(got.Pending, want.Pending) || got.BlockedBy != want.BlockedBy || got.LastFinished != want.LastFinished {
				t.Errorf("replayed after the crash: %+v", got)
			}
			// The process goes on: an append lands in the journal at the
			// path, and its reader reads it once.
			if err := j.Append(ctx, record{Kind: kindAck, By: "ops"}); err != nil {
				t.Fatal(err)
			}
			recs, reset, err := j.read()
			if err != nil || reset || len(recs) != 1 || recs[0].Kind != kindAck {
				t.Errorf("read after the compaction: %+v, reset %v, %v", recs, reset, err)
			}
			if v := viewOf(replayFile(t, path)); v.BlockedBy != "" {
				t.Errorf("the ack after the compaction is not in the journal at the path: blocked by %q", v.BlockedBy)
			}
		})
	}
}

// `remediation ack`, run while the receiver compacts, is never lost: it
// lands in the old journal before the compaction reads it, or in the new
// one after.
func TestAckDuringCompactionIsNeverLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := openJournal(t, path)
	s := newState()
	ctx := context.Background()
	for i := range 50 {
		inc := fmt.Sprintf("failed-%d", i)
		if err := j.Append(ctx,
			record{Kind: kindStarted, Incident: inc, Cluster: "prod", Plan: &Plan{}},
			record{Kind: kindFinished, Incident: inc, Cluster: "prod", Result: ResultFailure, Plan: &Plan{}},
		); err != nil {
			t.Fatal(err)
		}
		recs, reset, err := j.read()
		if err != nil {
			t.Fatal(err)
		}
		s.replay(recs, reset)
		if s.blockedBy == nil {
			t.Fatal("not blocked after a failure")
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, _, err := ack(ctx, path, "ops", inc, nil); err != nil {
				t.Errorf("ack %d: %v", i, err)
			}
		})
		wg.Go(func() {
			if _, err := compactState(j, s); err != nil {
				t.Errorf("compaction %d: %v", i, err)
			}
		})
		wg.Wait()
		recs, reset, err = j.read()
		if err != nil {
			t.Fatal(err)
		}
		s.replay(recs, reset)
		if s.blockedBy != nil {
			t.Fatalf("round %d: the ack was lost by the compacting process", i)
		}
		if v := viewOf(replayFile(t, path)); v.BlockedBy != "" {
			t.Fatalf("round %d: the ack is not in the journal", i)
		}
	}
}

// A process that does not compact (the promote command) reads the journal
// another process compacted again from its start.
func TestReaderFollowsACompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	compactor, other := openJournal(t, path), openJournal(t, path)
	ctx := context.Background()
	if err := compactor.Append(ctx, record{Kind: kindDecision, Incident: "a", Outcome: reasonDryRun}); err != nil {
		t.Fatal(err)
	}
	mine, theirs := newState(), newState()
	for _, side := range []struct {
		j *Journal
		s *state
	}{{compactor, mine}, {other, theirs}} {
		recs, reset, err := side.j.read()
		if err != nil {
			t.Fatal(err)
		}
		side.s.replay(recs, reset)
	}
	if _, err := compactState(compactor, mine); err != nil {
		t.Fatal(err)
	}
	// The other process appends to the new journal, and reads it whole.
	if err := other.Append(ctx, record{Kind: kindDecision, Incident: "b", Outcome: reasonDryRun}); err != nil {
		t.Fatal(err)
	}
	recs, reset, err := other.read()
	if err != nil || !reset {
		t.Fatalf("reset %v, %v", reset, err)
	}
	theirs.replay(recs, reset)
	recs, reset, err = compactor.read()
	if err != nil || reset {
		t.Fatalf("the compacting process: reset %v, %v", reset, err)
	}
	mine.replay(recs, reset)
	for name, s := range map[string]*state{"compacting": mine, "other": theirs} {
		if got := viewOf(s).Decided; !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("%s process: decided %v, want [a b]", name, got)
		}
	}
}

// startCompacting starts a receiver that compacts once its journal passes
// above bytes; stop closes it (again at the test's end: no-op).
func (e *estate) startCompacting(t *testing.T, yaml string, cfg *config.Config, above int64) (r *receiver, stop func()) {
	t.Helper()
	was := compactAbove.Swap(above)
	t.Cleanup(func() { compactAbove.Store(was) })
	rc, err := Parse([]byte(yaml), e.dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := New(Options{Config: rc, ExporterConfig: cfg, Scrape: scraper(t, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rcv)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			if err := rcv.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return &receiver{Receiver: rcv, url: srv.URL, journal: rc.JournalFile}, stop
}

// awaitCompactions waits for the worker's compaction after a batch: it
// follows the batch's processed record, which is all settle waits for.
func (r *receiver) awaitCompactions(t *testing.T, least float64) {
	t.Helper()
	err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(r.metrics.compactions); n < least {
			return fmt.Errorf("%v compactions after the batch, want at least %v", n, least)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func skippedFor(r *receiver, reason string) float64 {
	return testutil.ToFloat64(r.metrics.skipped.WithLabelValues(reason))
}

// After a compaction, and after a restart that compacts again: a resent
// notification of the incident acted on is declined, the cooldown holds
// for a new incident of the server acted on, and nothing is done twice.
func TestCompactedJournalKeepsDedupAndCooldown(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "cooldown: 1ms", "cooldown: 1h", 1)
	e.down(t, "iap-dc1-1")
	incident := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)

	r, stop := e.startCompacting(t, yaml, cfg, 0) // compacts after every batch
	r.post(t, incident)
	if got, want := outcomes(r.settle(t)), []string{"fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
		t.Fatalf("outcomes %q, want %q", got, want)
	}
	r.awaitCompactions(t, 1)
	r.post(t, incident)
	r.settle(t)
	if n := skippedFor(r, reasonDedup); n != 1 {
		t.Errorf("the resend after a compaction: dedup %v times, want 1", n)
	}
	stop()

	for restart := range 2 {
		r, stop := e.startCompacting(t, yaml, cfg, defaultCompactAbove)
		if n := testutil.ToFloat64(r.metrics.compactions); n != 1 {
			t.Errorf("restart %d: %v compactions at start, want 1", restart, n)
		}
		for _, rec := range records(t, r.journal) {
			if rec.Kind == kindProcessed || rec.Kind == kindNotification {
				t.Errorf("restart %d: the compacted journal keeps a processed notification: %+v", restart, rec)
			}
		}
		r.post(t, incident)
		r.post(t, alertFor(t, "iap-dc1-1", time.Now().Add(time.Duration(restart+1)*time.Second), StatusFiring))
		r.settle(t)
		if d, c := skippedFor(r, reasonDedup), skippedFor(r, reasonCooldown); d != 1 || c != 1 {
			t.Errorf("restart %d: dedup %v, cooldown %v; want 1 and 1", restart, d, c)
		}
		stop()
	}
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v, want one of iap-dc1-3", got)
	}
}

// A failure blocks across compactions and restarts; the ack that clears it
// survives them too.
func TestCompactedJournalStaysBlocked(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := remediationYAML(t, "dc1", "")
	e.down(t, "iap-dc1-1")
	if err := e.sim.Server("iap-dc1-3").SetFault(iapsim.Fault{Mode: iapsim.FaultError, Path: "/workflow_engine/activate"}); err != nil {
		t.Fatal(err)
	}
	r, stop := e.startCompacting(t, yaml, cfg, 0)
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	r.settle(t)
	stop()
	e.sim.Server("iap-dc1-3").ClearFault()

	r, stop = e.startCompacting(t, yaml, cfg, 0)
	if b := testutil.ToFloat64(r.metrics.blocked); b != 1 {
		t.Fatalf("blocked = %v after a restart", b)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	r.settle(t)
	if n := skippedFor(r, reasonBlocked); n != 1 {
		t.Errorf("blocked %v times after a restart, want 1", n)
	}
	r.ack(t, "ops", "checked")
	stop()

	r, _ = e.startCompacting(t, yaml, cfg, 0)
	if b := testutil.ToFloat64(r.metrics.blocked); b != 0 {
		t.Fatalf("blocked = %v after the ack and a restart", b)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	r.settle(t)
	if task, job := e.sim.Server("iap-dc1-3").Workers(); !task || !job {
		t.Errorf("after the ack the standby was not promoted: task %v job %v", task, job)
	}
}

// The compaction at start keeps a notification not yet processed (the
// process ended first), and forgets an incident older than the retention,
// which is then acted on again; a recent one is still declined.
func TestCompactionAtStart(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	e.down(t, "iap-dc1-1")
	e.down(t, "iap-dc1-2")
	old, err := decodeWebhook(alertFor(t, "iap-dc1-1", time.Now().Add(-30*24*time.Hour), StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	recent, err := decodeWebhook(alertFor(t, "iap-dc1-2", time.Now().Add(-24*time.Hour), StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(e.dir+"/journal-dc1", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = j.Append(context.Background(),
		record{Time: time.Now().Add(-20 * 24 * time.Hour), Kind: kindDecision, Incident: old.Alerts[0].Incident(), Outcome: reasonDryRun},
		record{Time: time.Now().Add(-24 * time.Hour), Kind: kindDecision, Incident: recent.Alerts[0].Incident(), Outcome: reasonDryRun},
		record{Kind: kindNotification, ID: "resent-recent", Webhook: recent},
		record{Kind: kindNotification, ID: "resent-old", Webhook: old},
	)
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := e.startCompacting(t, remediationYAML(t, "dc1", ""), cfg, defaultCompactAbove)
	r.settle(t)
	if n := testutil.ToFloat64(r.metrics.compactions); n != 1 {
		t.Errorf("%v compactions at start, want 1", n)
	}
	if n := skippedFor(r, reasonDedup); n != 1 {
		t.Errorf("dedup %v times, want 1 (the recent incident)", n)
	}
	if got := e.activations(); got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v: the incident older than the retention was not acted on", got)
	}
}

// Alertmanager resends a firing alert every repeat_interval for as long as
// it fires: bursts of resends keep the journal within twice the size that
// triggers a compaction, plus what arrives meanwhile.
func TestJournalBoundedUnderResends(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	e.down(t, "iap-dc1-1")
	const above, bursts, perBurst = 64 << 10, 20, 50
	r, _ := e.startCompacting(t, remediationYAML(t, "dc1", ""), cfg, above)
	incident := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	var largest, appended int64
	for range bursts {
		before := journalSize(t, r.journal)
		var wg sync.WaitGroup
		for range perBurst {
			wg.Go(func() {
				if code := r.post(t, incident); code != http.StatusAccepted {
					t.Errorf("status %d", code)
				}
			})
		}
		wg.Wait()
		r.settle(t)
		size := journalSize(t, r.journal)
		if size > before {
			appended = max(appended, size-before)
		}
		largest = max(largest, size)
	}
	if n := testutil.ToFloat64(r.metrics.compactions); n < 2 {
		t.Errorf("%v compactions", n)
	}
	if limit := 2*int64(above) + 2*appended; largest > limit {
		t.Errorf("the journal reached %d bytes, over %d (a burst appends up to %d)", largest, limit, appended)
	}
	if d := skippedFor(r, reasonDedup); d != bursts*perBurst-1 {
		t.Errorf("dedup %v, want %d", d, bursts*perBurst-1)
	}
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v", got)
	}
	if g := testutil.ToFloat64(r.metrics.journalBytes); g <= 0 || g > float64(largest) {
		t.Errorf("journal_bytes %v, largest seen %d", g, largest)
	}
}

func journalSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A serving receiver holds its journal: one replaced under it by someone
// else (moved away, an empty file put in its place) must not make it forget
// the incidents it decided. It keeps what it knew and decides nothing more:
// a resend of the incident it acted on is not acted on again.
func TestJournalReplacedUnderTheReceiver(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	e.down(t, "iap-dc1-1")
	incident := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	r, _ := e.startCompacting(t, remediationYAML(t, "dc1", ""), cfg, defaultCompactAbove)
	r.post(t, incident)
	r.settle(t)

	if err := os.Rename(r.journal, r.journal+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.journal, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := r.post(t, incident); code != http.StatusAccepted {
		t.Fatalf("the resend got %d; it is still recorded, in the new file", code)
	}
	// It says so where a person looks: blocked, in the status and the metric.
	err := lab.Retry(10*time.Second, 20*time.Millisecond, func() error {
		if !r.Status().Blocked || testutil.ToFloat64(r.metrics.blocked) != 1 {
			return errors.New("the receiver does not show itself blocked")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A new incident is not decided either.
	e.down(t, "iap-dc1-2")
	r.post(t, alertFor(t, "iap-dc1-2", time.Now(), StatusFiring))
	time.Sleep(500 * time.Millisecond) // the worker wakes at once; give it time to (not) act
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v, want the first promotion only", got)
	}
}
