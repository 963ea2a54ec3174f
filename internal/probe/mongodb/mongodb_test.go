package mongodb

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// startSim starts a built-in scenario and a Client of it with direct_members.
func startSim(t *testing.T, scenario string, opts mongosim.Options, edit func(*config.ReplicaSet)) (*mongosim.Sim, *Client) {
	t.Helper()
	sc, err := mongosim.Builtin(scenario)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := mongosim.Start(sc, opts)
	if err != nil {
		t.Fatalf("starting mongosim: %v", err)
	}
	t.Cleanup(sim.Close)
	cfg := config.ReplicaSet{
		Name:          "rs0",
		URI:           sim.URI(),
		Timeout:       model.Duration(2 * time.Second),
		DirectMembers: true,
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := NewClient(configtest.MongoDB(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return sim, p
}

// summary renders a member as "state health reachable votes priority site lag".
func summary(m topology.MongoMember) string {
	lag := "-"
	if m.HasLag {
		lag = fmt.Sprintf("%.0f", math.Round(m.LagSeconds))
	}
	reach := map[topology.Tristate]string{topology.Unknown: "?", topology.True: "reachable", topology.False: "unreachable"}[m.Reachable]
	health := "unhealthy"
	if m.Healthy {
		health = "healthy"
	}
	s := fmt.Sprintf("%s %s %s votes=%d priority=%g site=%s lag=%s", m.StateStr, health, reach, m.Votes, m.Priority, m.Site, lag)
	if m.Hidden {
		s += " hidden"
	}
	if m.SecondaryDelaySeconds > 0 {
		s += fmt.Sprintf(" delay=%d", m.SecondaryDelaySeconds)
	}
	return s
}

func TestProbeScenarios(t *testing.T) {
	const (
		primary   = "PRIMARY healthy reachable votes=1 priority=1 site=dc1 lag=0"
		secondary = "SECONDARY healthy reachable votes=1 priority=1 site=dc1 lag=0"
	)
	tests := []struct {
		scenario  string
		term      int64
		primaries int
		lagRef    string
		members   []string
	}{
		{"pss", 1, 1, LagFromPrimary, []string{primary, secondary, secondary}},
		{"psa", 1, 1, LagFromPrimary, []string{primary, secondary, "ARBITER healthy reachable votes=1 priority=0 site=dc1 lag=-"}},
		{"ha6", 1, 1, LagFromPrimary, []string{
			"PRIMARY healthy reachable votes=1 priority=2 site=dc1 lag=0",
			"SECONDARY healthy reachable votes=1 priority=2 site=dc1 lag=0",
			"SECONDARY healthy reachable votes=1 priority=1 site=dc2 lag=0",
			"SECONDARY healthy reachable votes=1 priority=1 site=dc2 lag=0",
			"ARBITER healthy reachable votes=1 priority=0 site=dc3 lag=-",
		}},
		{"ha6-dc2-priority0", 1, 1, LagFromPrimary, []string{
			"PRIMARY healthy reachable votes=1 priority=2 site=dc1 lag=0",
			"SECONDARY healthy reachable votes=1 priority=2 site=dc1 lag=0",
			"SECONDARY healthy reachable votes=1 priority=0 site=dc2 lag=0",
			"SECONDARY healthy reachable votes=1 priority=0 site=dc2 lag=0",
			"ARBITER healthy reachable votes=1 priority=0 site=dc3 lag=-",
		}},
		{"psa-secondary-priority0", 1, 1, LagFromPrimary, []string{primary, "SECONDARY healthy reachable votes=1 priority=0 site=dc1 lag=0", "ARBITER healthy reachable votes=1 priority=0 site=dc1 lag=-"}},
		{"pra", 1, 1, LagFromPrimary, []string{primary, "RECOVERING healthy reachable votes=1 priority=1 site=dc1 lag=0", "ARBITER healthy reachable votes=1 priority=0 site=dc1 lag=-"}},
		{"ha6-arbiter-untagged", 1, 1, LagFromPrimary, []string{
			"PRIMARY healthy reachable votes=1 priority=2 site=dc1 lag=0",
			"SECONDARY healthy reachable votes=1 priority=2 site=dc1 lag=0",
			"SECONDARY healthy reachable votes=1 priority=1 site=dc2 lag=0",
			"SECONDARY healthy reachable votes=1 priority=1 site=dc2 lag=0",
			"ARBITER healthy reachable votes=1 priority=0 site= lag=-",
		}},
		// Delayed by 3600 s and 3610 s behind: 10 s of lag beyond its delay.
		{"member-delayed", 1, 1, LagFromPrimary, []string{primary, secondary, "SECONDARY healthy reachable votes=1 priority=0 site=dc1 lag=10 hidden delay=3600"}},
		// Cut off from the set but running: unhealthy, yet reachable.
		{"member-down", 1, 1, LagFromPrimary, []string{primary, secondary, "(not reachable/healthy) unhealthy reachable votes=1 priority=1 site=dc1 lag=-"}},
		{"member-refuses", 1, 1, LagFromPrimary, []string{primary, secondary, "(not reachable/healthy) unhealthy unreachable votes=1 priority=1 site=dc1 lag=-"}},
		{"member-hangs", 1, 1, LagFromPrimary, []string{primary, secondary, "(not reachable/healthy) unhealthy unreachable votes=1 priority=1 site=dc1 lag=-"}},
		{"member-recovering", 1, 1, LagFromPrimary, []string{primary, secondary, "RECOVERING healthy reachable votes=1 priority=1 site=dc1 lag=0"}},
		{"member-startup2", 1, 1, LagFromPrimary, []string{primary, secondary, "STARTUP2 healthy reachable votes=1 priority=1 site=dc1 lag=0"}},
		{"member-rollback", 1, 1, LagFromPrimary, []string{primary, secondary, "ROLLBACK healthy reachable votes=1 priority=1 site=dc1 lag=0"}},
		{"replication-lag", 1, 1, LagFromPrimary, []string{primary, secondary, "SECONDARY healthy reachable votes=1 priority=1 site=dc1 lag=42"}},
		// No primary: lag is measured against the freshest member.
		{"no-primary", 1, 0, LagFromFreshest, []string{secondary, secondary, "SECONDARY healthy reachable votes=1 priority=1 site=dc1 lag=3"}},
		// The old primary still claims the role in its own view.
		{"stale-primary", 2, 2, LagFromPrimary, []string{
			"(not reachable/healthy) unhealthy reachable votes=1 priority=1 site=dc1 lag=-",
			primary, secondary,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			_, p := startSim(t, tt.scenario, mongosim.Options{}, nil)
			rs := p.Probe(context.Background())
			if tt.scenario == "stale-primary" {
				// A fresh client may first select the stale primary if it
				// answers before the real one; the driver drops it as soon as it
				// sees the newer electionId, so the next probe reads the majority.
				rs = p.Probe(context.Background())
			}
			if !rs.Up {
				t.Fatalf("set not up: %s", rs.Error)
			}
			if rs.Term != tt.term || rs.Primaries != tt.primaries || rs.LagReference != tt.lagRef {
				t.Errorf("term %d, primaries %d, lag reference %q; want %d, %d, %q", rs.Term, rs.Primaries, rs.LagReference, tt.term, tt.primaries, tt.lagRef)
			}
			var got []string
			for _, m := range rs.Members {
				got = append(got, summary(m))
			}
			if strings.Join(got, "\n") != strings.Join(tt.members, "\n") {
				t.Errorf("members:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.members, "\n"))
			}
		})
	}
}

func TestProbeAuthentication(t *testing.T) {
	tests := []struct {
		name, username, password string
		wantErr                  string
	}{
		{"right password", "monitor", "s3cret", ""},
		{"wrong password", "monitor", "wrong", "auth"},
		// mongod refuses replSetGetStatus before authentication: code 13.
		{"no credentials", "", "", "(Unauthorized) command replSetGetStatus requires authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, p := startSim(t, "pss", mongosim.Options{Username: "monitor", Password: "s3cret"}, func(c *config.ReplicaSet) {
				c.Credentials = config.Credentials{Username: tt.username, Password: promSecret(tt.password)}
			})
			rs := p.Probe(context.Background())
			switch {
			case tt.wantErr == "" && !rs.Up:
				t.Fatalf("not up: %s", rs.Error)
			case tt.wantErr == "" && rs.Primaries != 1:
				t.Errorf("primaries %d, want 1", rs.Primaries)
			case tt.wantErr != "" && (rs.Up || !strings.Contains(rs.Error, tt.wantErr)):
				t.Errorf("up %v, error %q; want down with %q", rs.Up, rs.Error, tt.wantErr)
			}
			if tt.password != "" && strings.Contains(rs.Error, tt.password) {
				t.Errorf("error reveals the password: %s", rs.Error)
			}
		})
	}
}

// Recorded documents served over the wire: the whole path from the driver
// to the typed state works on the manual's shapes.
func TestProbeReplay(t *testing.T) {
	sim, p := startSim(t, "psa", mongosim.Options{}, nil)
	sim.Replay(readExtJSON(t, "status-psa-secondary-primary-down.json"), readExtJSON(t, "config-psa.json"))
	rs := p.Probe(context.Background())
	if !rs.Up {
		t.Fatalf("not up: %s", rs.Error)
	}
	// The recorded hosts (m1.example.net, …) resolve nowhere: the direct
	// connections fail, while the set's status is read through the simulator.
	want := []string{
		"(not reachable/healthy) unhealthy unreachable votes=1 priority=2 site=east lag=-",
		"SECONDARY healthy unreachable votes=1 priority=1 site=west lag=0",
		"ARBITER healthy unreachable votes=1 priority=0 site= lag=-",
	}
	var got []string
	for _, m := range rs.Members {
		got = append(got, summary(m))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || rs.Term != 4 || rs.LagReference != LagFromFreshest {
		t.Errorf("term %d, lag reference %s, members:\n%s\nwant term 4, freshest:\n%s", rs.Term, rs.LagReference, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func promSecret(s string) promconfig.Secret { return promconfig.Secret(s) }

// Every member's own hello goes with the set's status, to the members of the
// last configuration read: a member the configuration adds is asked in the
// same probe, after it, and one it drops loses its direct client.
func TestProbeMembershipChange(t *testing.T) {
	sim, p := startSim(t, "pss", mongosim.Options{}, nil)
	probe := func(want int) {
		t.Helper()
		rs := p.Probe(context.Background())
		if !rs.Up || len(rs.Members) != want {
			t.Fatalf("up %v, %d members (%s); want up with %d", rs.Up, len(rs.Members), rs.Error, want)
		}
		for _, m := range rs.Members {
			if m.Reachable != topology.True {
				t.Errorf("%s: reachable %v, want its own hello read", m.Name, m.Reachable)
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.direct) != want {
			t.Errorf("%d direct clients, want one per member (%d)", len(p.direct), want)
		}
	}
	probe(3)
	if err := sim.Change(func(sc *mongosim.Scenario) {
		added := sc.Members[2]
		added.Port = 0
		sc.Members = append(sc.Members, added)
	}); err != nil {
		t.Fatal(err)
	}
	probe(4)
	probe(4)
	if err := sim.Change(func(sc *mongosim.Scenario) { sc.Members = sc.Members[:3] }); err != nil {
		t.Fatal(err)
	}
	probe(3)
}

// reachability renders the members' reachability, in member order.
func reachability(rs topology.ReplicaSet) string {
	var out []string
	for _, m := range rs.Members {
		out = append(out, map[topology.Tristate]string{topology.Unknown: "?", topology.True: "yes", topology.False: "no"}[m.Reachable])
	}
	return strings.Join(out, " ")
}

// helloErrors records why members did not answer hello, from the probe's log.
type helloErrors struct {
	slog.Handler
	mu   sync.Mutex
	errs []string
}

func (h *helloErrors) Enabled(context.Context, slog.Level) bool { return true }

func (h *helloErrors) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "member did not answer hello" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				h.mu.Lock()
				h.errs = append(h.errs, a.Value.String())
				h.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

func (h *helloErrors) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	errs := h.errs
	h.errs = nil
	return errs
}

// A member that refuses connections is given up at its direct client's next
// failed heartbeat (500ms apart while a command waits for the member), not
// at the deadline: the set is reported in time, with that member
// unreachable, and a revived member is reachable again at the next probe.
func TestProbeRefusedMember(t *testing.T) {
	const deadline = 2 * time.Second // well under the configured timeout, as at a short scrape interval
	sim, p := startSim(t, "pss", mongosim.Options{}, func(c *config.ReplicaSet) { c.Timeout = model.Duration(5 * time.Second) })
	logged := &helloErrors{}
	p.logger = slog.New(logged)
	probe := func() (topology.ReplicaSet, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		rs := p.Probe(ctx)
		return rs, time.Since(start)
	}
	if rs, _ := probe(); !rs.Up || reachability(rs) != "yes yes yes" {
		t.Fatalf("before the kill: up %v (%s), reachable %s", rs.Up, rs.Error, reachability(rs))
	}

	if err := sim.Kill(2); err != nil {
		t.Fatal(err)
	}
	// Every probe, not just the first: each asks the member again.
	for i := range 3 {
		rs, took := probe()
		if !rs.Up || reachability(rs) != "yes yes no" {
			t.Errorf("probe %d after the kill: up %v (%s), reachable %s; want up, reachable yes yes no", i, rs.Up, rs.Error, reachability(rs))
		}
		// About 500ms expected; the members' own deadline would be 1.8s.
		if took > deadline*6/10 {
			t.Errorf("probe %d after the kill took %s, want well within the %s deadline", i, took.Round(time.Millisecond), deadline)
		}
		for _, err := range logged.take() {
			if !strings.Contains(err, "heartbeat failed") {
				t.Errorf("probe %d: the member was given up by %q, want its failed heartbeat", i, err)
			}
		}
	}

	if err := sim.Revive(2); err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		rs, _ := probe()
		if rs.Up && reachability(rs) == "yes yes yes" {
			break
		}
		if i == 2 {
			t.Fatalf("revived member still not reachable after %d probes: up %v (%s), reachable %s", i, rs.Up, rs.Error, reachability(rs))
		}
	}
}

// A member that accepts connections but never answers holds neither the
// set's status nor the other members past the deadline: its hello is given
// up a share of the time before, and it is reported unreachable.
func TestProbeHungMember(t *testing.T) {
	const deadline = 2 * time.Second
	tests := []struct {
		name string
		hang func(*mongosim.Sim) error // nil: the member hangs from the start
	}{
		{"from the start", nil},
		{"after answering", func(sim *mongosim.Sim) error { return sim.SetFault(2, mongosim.Hang) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			scenario := "member-hangs"
			if tt.hang != nil {
				scenario = "pss"
			}
			sim, p := startSim(t, scenario, mongosim.Options{}, func(c *config.ReplicaSet) { c.Timeout = model.Duration(5 * time.Second) })
			if tt.hang != nil {
				if rs := p.Probe(context.Background()); reachability(rs) != "yes yes yes" {
					t.Fatalf("before the hang: up %v (%s), reachable %s", rs.Up, rs.Error, reachability(rs))
				}
				if err := tt.hang(sim); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				rs := p.Probe(ctx)
				late := ctx.Err()
				cancel()
				if late != nil {
					t.Errorf("probe %d returned after the deadline", i)
				}
				if !rs.Up || rs.Term != 1 || rs.Primaries != 1 || len(rs.Members) != 3 {
					t.Errorf("probe %d: up %v (%s), term %d, %d primaries, %d members; want the set's status", i, rs.Up, rs.Error, rs.Term, rs.Primaries, len(rs.Members))
				}
				if got := reachability(rs); got != "yes yes no" {
					t.Errorf("probe %d: reachable %s, want yes yes no", i, got)
				}
			}
		})
	}
}
