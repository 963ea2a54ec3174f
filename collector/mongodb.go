package collector

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/probe/mongodb"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	registerCollector("mongodb", true, newMongoDBCollector)
}

// mongodbCollector reports the MongoDB replica sets: each member's state,
// health, lag, votes and priority, and the set's primaries, term and voting
// arithmetic.
type mongodbCollector struct {
	clients *probe.Set[topology.ReplicaSet]

	up, primaries, term, voting, healthyVoting, majority *prometheus.Desc
	state, health, lag, votes, priority, reachable       *prometheus.Desc
	hidden, delay                                        *prometheus.Desc
}

func newMongoDBCollector(cfg *config.Config, logger *slog.Logger) (Collector, error) {
	if len(cfg.MongoDB) == 0 {
		return nil, ErrNoData
	}
	clients, err := mongodb.New(cfg.MongoDB, logger)
	if err != nil {
		return nil, err
	}
	c := &mongodbCollector{clients: clients}
	set := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "mongodb", name), help, []string{"set"}, nil)
	}
	member := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "mongodb", name), help, []string{"set", "member", "site"}, nil)
	}
	c.up = set("up", "Whether the replica set's status and configuration could be read (1) or not (0).")
	c.primaries = set("primaries", "Members seen as primary across every view read: the set's status and, with direct_members, each member's own hello. More than 1 is split brain.")
	c.term = set("term", "Election term of the replica set; it moves forward at every election.")
	c.voting = set("voting_members", "Members of the replica set with a vote.")
	c.healthyVoting = set("healthy_voting_members", "Voting members the set sees healthy and in a state that can vote.")
	c.majority = set("majority", "Votes needed to elect a primary: a majority of the voting members.")
	c.state = member("member_state", "MongoDB state code of the member as the set sees it (1 primary, 2 secondary, 3 recovering, 5 startup2, 7 arbiter, 8 down, 9 rollback).")
	c.health = member("member_health", "Whether the set sees the member healthy (1) or not (0).")
	c.lag = member("member_replication_lag_seconds", "How far the member's last applied write trails the primary's, or the freshest member's when there is no primary, less its configured secondaryDelaySecs. Absent for arbiters and unhealthy members.")
	c.hidden = member("member_hidden", "Whether the member is hidden in the replica-set configuration (1): it votes but is never elected nor read by clients.")
	c.delay = member("member_secondary_delay_seconds", "The member's configured secondaryDelaySecs (slaveDelay before 5.0): a delayed member trails the primary by design.")
	c.votes = member("member_votes", "Votes of the member in the replica-set configuration.")
	c.priority = member("member_priority", "Election priority of the member in the replica-set configuration (0 never becomes primary).")
	c.reachable = member("member_reachable", "Whether a direct connection to the member answered hello (1) or not (0). Only with direct_members.")
	return c, nil
}

func (c *mongodbCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch,
		c.up, c.primaries, c.term, c.voting, c.healthyVoting, c.majority,
		c.state, c.health, c.lag, c.votes, c.priority, c.reachable, c.hidden, c.delay,
	)
}

// Probe reads every replica set concurrently; a set that cannot be read is
// reported down, never as the collector's failure.
func (c *mongodbCollector) Probe(ctx context.Context) (topology.Part, error) {
	return topology.ReplicaSets(c.clients.Probe(ctx)), nil
}

func (c *mongodbCollector) Close() error { return c.clients.Close() }

func (c *mongodbCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	gauge := gauges(ch)
	for _, rs := range o.Snapshot.MongoDB {
		if !rs.Up {
			gauge(c.up, 0, rs.Name)
			continue
		}
		gauge(c.up, 1, rs.Name)
		gauge(c.primaries, float64(rs.Primaries), rs.Name)
		gauge(c.term, float64(rs.Term), rs.Name)
		voting, healthy := 0, 0
		for _, m := range rs.Members {
			if m.Voting() {
				voting++
			}
			if m.HealthyVoter() {
				healthy++
			}
			labels := []string{rs.Name, m.Name, m.Site}
			gauge(c.state, float64(m.State), labels...)
			gauge(c.health, boolValue(m.Healthy), labels...)
			gauge(c.votes, float64(m.Votes), labels...)
			gauge(c.priority, m.Priority, labels...)
			gauge(c.hidden, boolValue(m.Hidden), labels...)
			gauge(c.delay, float64(m.SecondaryDelaySeconds), labels...)
			if m.HasLag {
				gauge(c.lag, m.LagSeconds, labels...)
			}
			if m.Reachable != topology.Unknown {
				gauge(c.reachable, boolValue(m.Reachable == topology.True), labels...)
			}
		}
		gauge(c.voting, float64(voting), rs.Name)
		gauge(c.healthyVoting, float64(healthy), rs.Name)
		gauge(c.majority, float64(voting/2+1), rs.Name)
	}
}
