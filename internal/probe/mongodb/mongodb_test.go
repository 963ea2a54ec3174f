package mongodb

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// startSim starts a built-in scenario and a prober of it with direct_members.
func startSim(t *testing.T, scenario string, opts mongosim.Options, edit func(*config.ReplicaSet)) (*mongosim.Sim, *Prober) {
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
	p, err := New(cfg, slog.New(slog.DiscardHandler))
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
	return fmt.Sprintf("%s %s %s votes=%d priority=%g site=%s lag=%s", m.StateStr, health, reach, m.Votes, m.Priority, m.Site, lag)
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
