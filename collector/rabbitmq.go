package collector

import (
	"context"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/namespace"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/probe/rabbitmq"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func init() {
	registerCollector("rabbitmq", true, newRabbitMQCollector)
}

// rabbitMQCollector reports the RabbitMQ clusters IAP 2022.1–2023.1 use:
// nodes, partitions, alarms, queue health per vhost and the federation links
// toward the standby data center. It has nothing to do (ErrNoData) where no
// cluster is configured, as on later IAP releases.
type rabbitMQCollector struct {
	clients *probe.Set[topology.RabbitCluster]

	up, info, mirroringSupported                      *prometheus.Desc
	nodeRunning, nodePartitions, nodeAlarm, nodePeers *prometheus.Desc
	queues, unsynchronised, withoutQuorum             *prometheus.Desc
	quorumCritical, mirrorSyncCritical                *prometheus.Desc
	federationLinkUp                                  *prometheus.Desc
	queueMirrors, queueSyncedMirrors                  *prometheus.Desc
	queueMembers, queueOnlineMembers                  *prometheus.Desc
}

func newRabbitMQCollector(cfg *config.Config, logger *slog.Logger) (Collector, error) {
	if len(cfg.RabbitMQ) == 0 {
		return nil, ErrNoData
	}
	p, err := rabbitmq.New(cfg.RabbitMQ, logger)
	if err != nil {
		return nil, err
	}
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		labels := slices.Concat([]string{"cluster"}, extra)
		return prometheus.NewDesc(prometheus.BuildFQName(namespace.Namespace, "rabbitmq", name), help, labels, nil)
	}
	return &rabbitMQCollector{
		clients: p,
		up:      desc("up", "Whether a management API of the cluster answered (1) or none did (0)."),
		info:    desc("info", "Version and name the cluster reports; always 1.", "cluster_name", "version"),
		mirroringSupported: desc("mirroring_supported",
			"Whether the cluster's RabbitMQ has classic queue mirroring (1, 3.x) or not (0, 4.x, where the unsynchronised counts are left out)."),
		nodeRunning:    desc("node_running", "Whether the cluster member runs RabbitMQ (1) or not (0).", "node"),
		nodePartitions: desc("node_partitions", "Cluster members this running node sees on the other side of a network partition.", "node"),
		nodeAlarm:      desc("node_alarm", "Whether a resource alarm (memory, disk) is in effect on the running node (1) or not (0); an alarm blocks publishers cluster-wide.", "node", "alarm"),
		nodePeers:      desc("node_peers", "Cluster members this running node has an inter-node link to (CLI tool connections left out).", "node"),
		queues:         desc("queues", "Queues of one type (classic, quorum, stream) in the vhost.", "vhost", "type"),
		unsynchronised: desc("queues_unsynchronised",
			"Classic mirrored queues with fewer synchronised mirrors than their policy asks for on the running nodes (absent on RabbitMQ 4.x).", "vhost"),
		withoutQuorum: desc("queues_without_quorum", "Quorum queues with a minority of members online or no leader: unavailable.", "vhost"),
		quorumCritical: desc("queues_quorum_critical",
			"Quorum queues with a bare majority online: losing one more member stops them.", "vhost"),
		mirrorSyncCritical: desc("queues_mirror_sync_critical",
			"Classic mirrored queues without a synchronised mirror: losing their node loses their messages (absent on RabbitMQ 4.x).", "vhost"),
		federationLinkUp: desc("federation_link_up",
			"Whether the federation link of an exchange or queue from an upstream is running (1) or not (0); an expected link (configured, or seen since the exporter started) that is gone reads 0.", "vhost", "upstream", "type", "name"),
		queueMirrors:       desc("queue_mirrors", "Mirrors of a classic queue (per_queue_metrics only).", "vhost", "queue"),
		queueSyncedMirrors: desc("queue_mirrors_synchronised", "Synchronised mirrors of a classic queue (per_queue_metrics only).", "vhost", "queue"),
		queueMembers:       desc("queue_members", "Members of a quorum queue (per_queue_metrics only).", "vhost", "queue"),
		queueOnlineMembers: desc("queue_members_online", "Online members of a quorum queue (per_queue_metrics only).", "vhost", "queue"),
	}, nil
}

func (c *rabbitMQCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch,
		c.up, c.info, c.mirroringSupported,
		c.nodeRunning, c.nodePartitions, c.nodeAlarm, c.nodePeers,
		c.queues, c.unsynchronised, c.withoutQuorum, c.quorumCritical, c.mirrorSyncCritical,
		c.federationLinkUp,
		c.queueMirrors, c.queueSyncedMirrors, c.queueMembers, c.queueOnlineMembers,
	)
}

func (c *rabbitMQCollector) Probe(ctx context.Context) (topology.Part, error) {
	return topology.RabbitClusters(c.clients.Probe(ctx)), nil
}

func (c *rabbitMQCollector) Close() error { return c.clients.Close() }

func (c *rabbitMQCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	gauge := gauges(ch)
	for _, cl := range o.Snapshot.RabbitMQ {
		gauge(c.up, boolValue(cl.Up), cl.Name)
		if !cl.Up {
			continue
		}
		gauge(c.info, 1, cl.Name, cl.ClusterName, cl.Version)
		gauge(c.mirroringSupported, boolValue(cl.MirroringSupported), cl.Name)
		for _, n := range cl.Nodes {
			gauge(c.nodeRunning, boolValue(n.Running), cl.Name, n.Name)
			if !n.Running {
				continue // a stopped member reports nothing else
			}
			gauge(c.nodePartitions, float64(len(n.Partitions)), cl.Name, n.Name)
			gauge(c.nodeAlarm, boolValue(n.MemAlarm), cl.Name, n.Name, "memory")
			gauge(c.nodeAlarm, boolValue(n.DiskAlarm), cl.Name, n.Name, "disk")
			gauge(c.nodePeers, float64(len(n.Peers)), cl.Name, n.Name)
		}
		c.updateQueues(cl, gauge)
		for _, l := range cl.FederationLinks {
			gauge(c.federationLinkUp, boolValue(l.Status == "running"), cl.Name, l.VHost, l.Upstream, l.Type, l.Name)
		}
	}
}

func (c *rabbitMQCollector) updateQueues(cl topology.RabbitCluster, gauge func(*prometheus.Desc, float64, ...string)) {
	perVHost := map[string]*topology.QueueGroup{}
	var vhosts []string
	for _, g := range cl.Queues {
		gauge(c.queues, float64(g.Count), cl.Name, g.VHost, g.Type)
		sum := perVHost[g.VHost]
		if sum == nil {
			sum = &topology.QueueGroup{VHost: g.VHost}
			perVHost[g.VHost] = sum
			vhosts = append(vhosts, g.VHost)
		}
		sum.Unsynchronised += g.Unsynchronised
		sum.WithoutQuorum += g.WithoutQuorum
		sum.QuorumCritical += g.QuorumCritical
		sum.MirrorSyncCritical += g.MirrorSyncCritical
	}
	for _, v := range vhosts {
		sum := perVHost[v]
		gauge(c.withoutQuorum, float64(sum.WithoutQuorum), cl.Name, v)
		gauge(c.quorumCritical, float64(sum.QuorumCritical), cl.Name, v)
		if cl.MirroringSupported {
			gauge(c.unsynchronised, float64(sum.Unsynchronised), cl.Name, v)
			gauge(c.mirrorSyncCritical, float64(sum.MirrorSyncCritical), cl.Name, v)
		}
	}
	for _, q := range cl.PerQueue {
		switch {
		case q.Type == "quorum":
			gauge(c.queueMembers, float64(q.Members), cl.Name, q.VHost, q.Name)
			gauge(c.queueOnlineMembers, float64(q.OnlineMembers), cl.Name, q.VHost, q.Name)
		case q.Type == "classic" && cl.MirroringSupported:
			gauge(c.queueMirrors, float64(q.Mirrors), cl.Name, q.VHost, q.Name)
			gauge(c.queueSyncedMirrors, float64(q.SyncedMirrors), cl.Name, q.VHost, q.Name)
		}
	}
}
