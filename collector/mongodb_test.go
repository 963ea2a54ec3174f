package collector

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// mongoSim starts a built-in scenario of the simulator.
func mongoSim(t *testing.T, scenario string) *mongosim.Sim {
	t.Helper()
	sc, err := mongosim.Builtin(scenario)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := mongosim.Start(sc, mongosim.Options{})
	if err != nil {
		t.Fatalf("starting mongosim: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

func mongoScraper(t *testing.T, sets ...config.ReplicaSet) *Scraper {
	t.Helper()
	return testScraper(t, &config.Config{MongoDB: sets}, "mongodb")
}

// members replaces m0, m1, … in text with the simulator's addresses.
func members(sim *mongosim.Sim, text string) string {
	var pairs []string
	for i, addr := range sim.Addrs() {
		pairs = append(pairs, "m"+string(rune('0'+i)), addr)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

var mongoMetricNames = []string{
	"iap_ha_mongodb_up", "iap_ha_mongodb_primaries", "iap_ha_mongodb_term",
	"iap_ha_mongodb_voting_members", "iap_ha_mongodb_healthy_voting_members", "iap_ha_mongodb_majority",
	"iap_ha_mongodb_member_state", "iap_ha_mongodb_member_health", "iap_ha_mongodb_member_replication_lag_seconds",
	"iap_ha_mongodb_member_votes", "iap_ha_mongodb_member_priority", "iap_ha_mongodb_member_reachable",
	"iap_ha_mongodb_member_hidden", "iap_ha_mongodb_member_secondary_delay_seconds",
}

func TestMongoDBCollector(t *testing.T) {
	sim := mongoSim(t, "ha6")
	// The standby site loses a member and the other one falls behind.
	if err := sim.Kill(3); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetLag(2, 7*time.Second); err != nil {
		t.Fatal(err)
	}
	closed, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s := mongoScraper(t,
		config.ReplicaSet{
			Name: "rs0", URI: sim.URI(), Timeout: model.Duration(2 * time.Second), DirectMembers: true,
			// The config map wins over the member's dc tag.
			MemberSites: map[string]string{sim.Addrs()[4]: "witness"},
		},
		config.ReplicaSet{
			Name: "gone", URI: "mongodb://127.0.0.1:" + strconv.Itoa(closed[0]) + "/?directConnection=true",
			Timeout: model.Duration(500 * time.Millisecond),
		},
	)
	scrape := s.Probe(context.Background())

	want := members(sim, `
# HELP iap_ha_mongodb_healthy_voting_members Voting members the set sees healthy and in a state that can vote.
# TYPE iap_ha_mongodb_healthy_voting_members gauge
iap_ha_mongodb_healthy_voting_members{set="rs0"} 4
# HELP iap_ha_mongodb_majority Votes needed to elect a primary: a majority of the voting members.
# TYPE iap_ha_mongodb_majority gauge
iap_ha_mongodb_majority{set="rs0"} 3
# HELP iap_ha_mongodb_member_health Whether the set sees the member healthy (1) or not (0).
# TYPE iap_ha_mongodb_member_health gauge
iap_ha_mongodb_member_health{member="m0",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_health{member="m1",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_health{member="m2",set="rs0",site="dc2"} 1
iap_ha_mongodb_member_health{member="m3",set="rs0",site="dc2"} 0
iap_ha_mongodb_member_health{member="m4",set="rs0",site="witness"} 1
# HELP iap_ha_mongodb_member_hidden Whether the member is hidden in the replica-set configuration (1): it votes but is never elected nor read by clients.
# TYPE iap_ha_mongodb_member_hidden gauge
iap_ha_mongodb_member_hidden{member="m0",set="rs0",site="dc1"} 0
iap_ha_mongodb_member_hidden{member="m1",set="rs0",site="dc1"} 0
iap_ha_mongodb_member_hidden{member="m2",set="rs0",site="dc2"} 0
iap_ha_mongodb_member_hidden{member="m3",set="rs0",site="dc2"} 0
iap_ha_mongodb_member_hidden{member="m4",set="rs0",site="witness"} 0
# HELP iap_ha_mongodb_member_priority Election priority of the member in the replica-set configuration (0 never becomes primary).
# TYPE iap_ha_mongodb_member_priority gauge
iap_ha_mongodb_member_priority{member="m0",set="rs0",site="dc1"} 2
iap_ha_mongodb_member_priority{member="m1",set="rs0",site="dc1"} 2
iap_ha_mongodb_member_priority{member="m2",set="rs0",site="dc2"} 1
iap_ha_mongodb_member_priority{member="m3",set="rs0",site="dc2"} 1
iap_ha_mongodb_member_priority{member="m4",set="rs0",site="witness"} 0
# HELP iap_ha_mongodb_member_reachable Whether a direct connection to the member answered hello (1) or not (0). Only with direct_members.
# TYPE iap_ha_mongodb_member_reachable gauge
iap_ha_mongodb_member_reachable{member="m0",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_reachable{member="m1",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_reachable{member="m2",set="rs0",site="dc2"} 1
iap_ha_mongodb_member_reachable{member="m3",set="rs0",site="dc2"} 0
iap_ha_mongodb_member_reachable{member="m4",set="rs0",site="witness"} 1
# HELP iap_ha_mongodb_member_replication_lag_seconds How far the member's last applied write trails the primary's, or the freshest member's when there is no primary, less its configured secondaryDelaySecs. Absent for arbiters and unhealthy members.
# TYPE iap_ha_mongodb_member_replication_lag_seconds gauge
iap_ha_mongodb_member_replication_lag_seconds{member="m0",set="rs0",site="dc1"} 0
iap_ha_mongodb_member_replication_lag_seconds{member="m1",set="rs0",site="dc1"} 0
iap_ha_mongodb_member_replication_lag_seconds{member="m2",set="rs0",site="dc2"} 7
# HELP iap_ha_mongodb_member_secondary_delay_seconds The member's configured secondaryDelaySecs (slaveDelay before 5.0): a delayed member trails the primary by design.
# TYPE iap_ha_mongodb_member_secondary_delay_seconds gauge
iap_ha_mongodb_member_secondary_delay_seconds{member="m0",set="rs0",site="dc1"} 0
iap_ha_mongodb_member_secondary_delay_seconds{member="m1",set="rs0",site="dc1"} 0
iap_ha_mongodb_member_secondary_delay_seconds{member="m2",set="rs0",site="dc2"} 0
iap_ha_mongodb_member_secondary_delay_seconds{member="m3",set="rs0",site="dc2"} 0
iap_ha_mongodb_member_secondary_delay_seconds{member="m4",set="rs0",site="witness"} 0
# HELP iap_ha_mongodb_member_state MongoDB state code of the member as the set sees it (1 primary, 2 secondary, 3 recovering, 5 startup2, 7 arbiter, 8 down, 9 rollback).
# TYPE iap_ha_mongodb_member_state gauge
iap_ha_mongodb_member_state{member="m0",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_state{member="m1",set="rs0",site="dc1"} 2
iap_ha_mongodb_member_state{member="m2",set="rs0",site="dc2"} 2
iap_ha_mongodb_member_state{member="m3",set="rs0",site="dc2"} 8
iap_ha_mongodb_member_state{member="m4",set="rs0",site="witness"} 7
# HELP iap_ha_mongodb_member_votes Votes of the member in the replica-set configuration.
# TYPE iap_ha_mongodb_member_votes gauge
iap_ha_mongodb_member_votes{member="m0",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_votes{member="m1",set="rs0",site="dc1"} 1
iap_ha_mongodb_member_votes{member="m2",set="rs0",site="dc2"} 1
iap_ha_mongodb_member_votes{member="m3",set="rs0",site="dc2"} 1
iap_ha_mongodb_member_votes{member="m4",set="rs0",site="witness"} 1
# HELP iap_ha_mongodb_primaries Members seen as primary across every view read: the set's status and, with direct_members, each member's own hello. More than 1 is split brain.
# TYPE iap_ha_mongodb_primaries gauge
iap_ha_mongodb_primaries{set="rs0"} 1
# HELP iap_ha_mongodb_term Election term of the replica set; it moves forward at every election.
# TYPE iap_ha_mongodb_term gauge
iap_ha_mongodb_term{set="rs0"} 1
# HELP iap_ha_mongodb_up Whether the replica set's status and configuration could be read (1) or not (0).
# TYPE iap_ha_mongodb_up gauge
iap_ha_mongodb_up{set="gone"} 0
iap_ha_mongodb_up{set="rs0"} 1
# HELP iap_ha_mongodb_voting_members Members of the replica set with a vote.
# TYPE iap_ha_mongodb_voting_members gauge
iap_ha_mongodb_voting_members{set="rs0"} 5
`)
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), mongoMetricNames...); err != nil {
		t.Error(err)
	}
	if r := scrape.Results["mongodb"]; r.Err != nil {
		t.Errorf("a set that is down failed the collector: %v", r.Err)
	}
	problems, err := testutil.CollectAndLint(s.Metrics(scrape), mongoMetricNames...)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// The primary disappears between two scrapes: the next scrape reports no
// primary; after the election the term has moved.
func TestMongoDBPrimaryLostBetweenScrapes(t *testing.T) {
	sim := mongoSim(t, "pss")
	s := mongoScraper(t, config.ReplicaSet{Name: "rs0", URI: sim.URI(), Timeout: model.Duration(2 * time.Second)})
	expect := func(step string, primaries, term int) {
		t.Helper()
		want := `
# HELP iap_ha_mongodb_primaries Members seen as primary across every view read: the set's status and, with direct_members, each member's own hello. More than 1 is split brain.
# TYPE iap_ha_mongodb_primaries gauge
iap_ha_mongodb_primaries{set="rs0"} ` + strconv.Itoa(primaries) + `
# HELP iap_ha_mongodb_term Election term of the replica set; it moves forward at every election.
# TYPE iap_ha_mongodb_term gauge
iap_ha_mongodb_term{set="rs0"} ` + strconv.Itoa(term) + `
`
		scrape := s.Probe(context.Background())
		if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), "iap_ha_mongodb_primaries", "iap_ha_mongodb_term"); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	expect("healthy", 1, 1)
	if err := sim.Kill(0); err != nil {
		t.Fatal(err)
	}
	expect("primary killed", 0, 1)
	if err := sim.Failover(1); err != nil {
		t.Fatal(err)
	}
	expect("after the election", 1, 2)
}

// A member that accepts connections and never answers costs the scrape at
// most the set's timeout; the rest of the set is still reported.
func TestMongoDBHungMemberBoundedByTimeout(t *testing.T) {
	tests := []struct {
		name      string
		hang      int
		warm      bool // scraped once before the member hangs
		up        bool
		primaries int
	}{
		{"secondary", 2, false, true, 1},
		// A fresh client never finds the primary: the secondaries' view is
		// read, and there the hung primary is down.
		{"primary", 0, false, true, 0},
		// A client that knew the primary sends it the command and waits
		// until the timeout, until its monitor gives the primary up.
		{"known primary", 0, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := mongoSim(t, "pss")
			const timeout = time.Second
			hang := func() {
				if err := sim.SetFault(tt.hang, mongosim.Hang); err != nil {
					t.Fatal(err)
				}
			}
			// A fresh client starts monitoring as soon as it is built: hang
			// the member first, or the client may find it healthy in time.
			if !tt.warm {
				hang()
			}
			s := mongoScraper(t, config.ReplicaSet{Name: "rs0", URI: sim.URI(), Timeout: model.Duration(timeout), DirectMembers: true})
			if tt.warm {
				s.Probe(context.Background())
				hang()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			scrape := s.Probe(ctx)
			// Generous: the point is "about the timeout", not the minute.
			if took := time.Since(start); took > timeout+3*time.Second {
				t.Errorf("scrape took %s with a timeout of %s", took, timeout)
			}
			if len(scrape.Snapshot.MongoDB) != 1 {
				t.Fatalf("no replica set reported: %+v", scrape.Results["mongodb"])
			}
			if r := scrape.Results["mongodb"]; r.Err != nil {
				t.Errorf("a hung member failed the collector: %v", r.Err)
			}
			rs := scrape.Snapshot.MongoDB[0]
			if rs.Up != tt.up {
				t.Fatalf("up %v, want %v (%s)", rs.Up, tt.up, rs.Error)
			}
			if !rs.Up {
				return
			}
			if rs.Primaries != tt.primaries {
				t.Errorf("primaries %d, want %d", rs.Primaries, tt.primaries)
			}
			if m := rs.Members[tt.hang]; m.Reachable != topology.False || m.Healthy {
				t.Errorf("hung member reported reachable %v healthy %v", m.Reachable, m.Healthy)
			}
		})
	}
}
