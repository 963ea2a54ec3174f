package collector

import (
	"context"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/probe/redis"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	// Called sentinel before 0.2.0; the old flags still work.
	registerCollector("redis", true, newRedisCollector, "sentinel")
}

// redisCollector reports the Redis Sentinel groups: what each Sentinel
// says about its master, whether the Sentinels agree, and the replication
// state of every data node they know.
type redisCollector struct {
	clients *probe.Set[topology.SentinelGroup]

	distinctMasters, quorum, reachable, failover, epoch        *prometheus.Desc
	up, masterInfo, ckquorum, known, knownReplicas, tilt       *prometheus.Desc
	sdown, odown                                               *prometheus.Desc
	nodeUp, isMaster, linkUp, lag, priority, connectedReplicas *prometheus.Desc
}

func newRedisCollector(cfg *config.Config, logger *slog.Logger) (Collector, error) {
	if len(cfg.Redis) == 0 {
		return nil, ErrNoData
	}
	clients, err := redis.New(cfg.Redis, logger)
	if err != nil {
		return nil, err
	}
	c := &redisCollector{clients: clients}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "redis", name), help, append([]string{"master"}, labels...), nil)
	}
	c.distinctMasters = desc("sentinel_distinct_masters", "Distinct master addresses named by the reachable Sentinels of the group. More than 1 is split brain.")
	c.quorum = desc("sentinel_quorum", "Quorum configured for the master (the highest any reachable Sentinel reports).")
	c.reachable = desc("sentinel_reachable", "Configured Sentinels that answered about the master.")
	c.failover = desc("sentinel_failover_in_progress", "Whether any reachable Sentinel reports a failover in progress (1) or not (0).")
	c.epoch = desc("sentinel_config_epoch", "Configuration epoch of the master (the highest any reachable Sentinel reports); it moves at every failover.")

	c.up = desc("sentinel_up", "Whether the Sentinel answered about the master (1) or not (0).", "sentinel", "site")
	c.masterInfo = desc("sentinel_master_info", "Where this Sentinel says the master is: always 1.", "sentinel", "site", "address")
	c.ckquorum = desc("sentinel_ckquorum_ok", "Whether SENTINEL CKQUORUM said OK (1): enough Sentinels are reachable from this one to reach the quorum and authorise a failover.", "sentinel", "site")
	c.known = desc("sentinel_known_sentinels", "Sentinels this Sentinel knows for the master, itself included. Sentinels never forget a peer: dead ones count too.", "sentinel", "site")
	c.knownReplicas = desc("sentinel_known_replicas", "Replicas this Sentinel knows for the master, dead ones included.", "sentinel", "site")
	c.tilt = desc("sentinel_tilt", "Whether the Sentinel is in TILT mode (1): it saw its clock or event loop stall and acts on nothing for 30 s.", "sentinel", "site")
	c.sdown = desc("sentinel_master_sdown", "Whether this Sentinel sees the master subjectively down (1).", "sentinel", "site")
	c.odown = desc("sentinel_master_odown", "Whether this Sentinel sees the master objectively down (1): a quorum of Sentinels agrees it is down.", "sentinel", "site")

	c.nodeUp = desc("up", "Whether the Redis data node answered INFO replication (1) or not (0).", "node", "site")
	c.isMaster = desc("is_master", "Whether the data node answered and reports the master role (1) or not (0).", "node", "site")
	c.linkUp = desc("replica_link_up", "Whether the replica answered and its link to its master is up (1) or not (0).", "node", "site")
	c.lag = desc("replica_lag_bytes", "Bytes of replication stream the replica trails its master by. Absent unless both answered.", "node", "site")
	c.priority = desc("replica_priority", "Replica priority of the replica: 0 is never promoted by a failover.", "node", "site")
	c.connectedReplicas = desc("connected_replicas", "Replicas connected to the master, as the master reports.", "node", "site")
	return c, nil
}

func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch,
		c.distinctMasters, c.quorum, c.reachable, c.failover, c.epoch,
		c.up, c.masterInfo, c.ckquorum, c.known, c.knownReplicas, c.tilt, c.sdown, c.odown,
		c.nodeUp, c.isMaster, c.linkUp, c.lag, c.priority, c.connectedReplicas,
	)
}

// Probe reads every group concurrently; a Sentinel or node that fails is
// reported down, never as the collector's failure.
func (c *redisCollector) Probe(ctx context.Context) (topology.Part, error) {
	return topology.SentinelGroups(c.clients.Probe(ctx)), nil
}

func (c *redisCollector) Close() error { return c.clients.Close() }

func (c *redisCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	gauge := gauges(ch)
	for _, g := range o.Snapshot.Redis {
		var masters []string
		reachable, epoch, failover := 0, int64(0), false
		for _, v := range g.Sentinels {
			gauge(c.up, boolValue(v.Up), g.Name, v.Address, v.Site)
			if !v.Up {
				continue
			}
			reachable++
			epoch = max(epoch, v.ConfigEpoch)
			failover = failover || v.FailoverInProgress
			if v.MasterAddress != "" {
				if !slices.Contains(masters, v.MasterAddress) {
					masters = append(masters, v.MasterAddress)
				}
				gauge(c.masterInfo, 1, g.Name, v.Address, v.Site, v.MasterAddress)
			}
			gauge(c.ckquorum, boolValue(v.CKQuorumOK), g.Name, v.Address, v.Site)
			gauge(c.known, float64(v.KnownSentinels), g.Name, v.Address, v.Site)
			gauge(c.knownReplicas, float64(v.KnownReplicas), g.Name, v.Address, v.Site)
			gauge(c.tilt, boolValue(v.TILT), g.Name, v.Address, v.Site)
			gauge(c.sdown, boolValue(slices.Contains(v.MasterFlags, "s_down")), g.Name, v.Address, v.Site)
			gauge(c.odown, boolValue(slices.Contains(v.MasterFlags, "o_down")), g.Name, v.Address, v.Site)
		}
		gauge(c.reachable, float64(reachable), g.Name)
		if reachable > 0 {
			// Unknown when no Sentinel answers: absent rather than 0.
			gauge(c.distinctMasters, float64(len(masters)), g.Name)
			gauge(c.quorum, float64(g.Quorum), g.Name)
			gauge(c.failover, boolValue(failover), g.Name)
			gauge(c.epoch, float64(epoch), g.Name)
		}

		for _, n := range g.Nodes {
			labels := []string{g.Name, n.Address, n.Site}
			gauge(c.nodeUp, boolValue(n.Up), labels...)
			gauge(c.isMaster, boolValue(n.Up && n.Role == "master"), labels...)
			if n.Role == "master" && n.Up {
				gauge(c.connectedReplicas, float64(n.ConnectedReplicas), labels...)
			}
			if n.Role != "replica" {
				continue
			}
			gauge(c.linkUp, boolValue(n.Up && n.MasterLinkUp), labels...)
			gauge(c.priority, float64(n.ReplicaPriority), labels...)
			if n.HasLag {
				gauge(c.lag, float64(n.LagBytes), labels...)
			}
		}
	}
}
