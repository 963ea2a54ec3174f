package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// rabbitmqDashboard shows each RabbitMQ cluster: its nodes and partitions, the queues
// that would lose availability or messages with the next node, and the
// federation links to the DR broker.
func rabbitmqDashboard() *dashboard.DashboardBuilder {
	const (
		cluster = `job="$job", estate=~"$estate", cluster=~"$cluster"`
		vhost   = `job="$job", estate=~"$estate", cluster=~"$cluster", vhost=~"$vhost"`
	)
	return newDashboard("iap-ha-rabbitmq", "IAP HA / RabbitMQ",
		"IAP's RabbitMQ clusters: running nodes and partitions, resource alarms, queues at risk (mirrors not synchronised, quorum queues short of their majority), and federation links to the DR broker.").
		WithVariable(jobVariable("iap_ha_rabbitmq_up")).
		WithVariable(labelVariable("cluster", "Cluster", `iap_ha_rabbitmq_up{job="$job", estate=~"$estate"}`, true)).
		WithVariable(labelVariable("vhost", "Virtual host", `iap_ha_rabbitmq_queues{job="$job", estate=~"$estate", cluster=~"$cluster"}`, true)).
		WithRow(row("Cluster")).
		WithPanel(statPanel("Management API",
			"Whether a management API of the cluster answered. Without it the cluster reports nothing else.",
			unitCount,
			query(`iap_ha_rabbitmq_up{`+cluster+`}`, "{{estate}} {{cluster}}")).
			Mappings(okWhen(1, "Up", "Down")).
			Span(6)).
		WithPanel(statPanel("Failures tolerated",
			"Running nodes beyond the majority; 0 while a quorum queue is below its quorum or a mirrored queue is unsynchronised.",
			unitCount,
			query(`iap_ha_component_failures_tolerated{job="$job", estate=~"$estate", component="rabbitmq", name=~"$cluster"}`, "{{estate}} {{name}}")).
			Thresholds(tolerance()).
			Span(6)).
		WithPanel(statPanel("Nodes running",
			"Members running RabbitMQ, out of the members the cluster lists (alert IAPRabbitmqNodeDown).",
			unitCount,
			query(`sum by (estate, cluster) (iap_ha_rabbitmq_node_running{`+cluster+`})`, "{{estate}} {{cluster}} running"),
			query(`count by (estate, cluster) (iap_ha_rabbitmq_node_running{`+cluster+`})`, "{{estate}} {{cluster}} members")).
			Thresholds(thresholds("text")).
			Span(6)).
		WithPanel(tablePanel("Versions",
			"Each cluster's own name and RabbitMQ version. On 4.x classic mirroring is gone and the mirror series are left out.",
			[]string{"Value"},
			query(`iap_ha_rabbitmq_info{`+cluster+`}`, "")).
			Span(6)).
		WithPanel(timelinePanel("Nodes",
			"Whether each member runs RabbitMQ.",
			okWhen(1, "Running", "Stopped"),
			query(`iap_ha_rabbitmq_node_running{`+cluster+`}`, "{{estate}} {{node}}")).
			Span(12)).
		WithPanel(timelinePanel("Resource alarms",
			"Memory and disk alarms: while one is in effect, publishers are blocked cluster-wide (alert IAPRabbitmqAlarm).",
			okWhen(0, "OK", "Alarm"),
			query(`iap_ha_rabbitmq_node_alarm{`+cluster+`}`, "{{estate}} {{node}} {{alarm}}")).
			Span(12)).
		WithPanel(timeseriesPanel("Partitions and links",
			"Members each running node sees across a network partition (above 0 is split brain, alert IAPRabbitmqPartition), and members it has an inter-node link to.",
			unitCount,
			query(`iap_ha_rabbitmq_node_partitions{`+cluster+`}`, "{{estate}} {{node}} partitioned from"),
			query(`iap_ha_rabbitmq_node_peers{`+cluster+`}`, "{{estate}} {{node}} linked to")).
			LineInterpolation(common.LineInterpolationStepAfter).
			Span(24)).
		WithRow(row("Queues at risk")).
		WithPanel(statPanel("Queues at risk now",
			"Mirrored queues with fewer synchronised mirrors than their policy asks, or with none (losing their node loses their messages); quorum queues without a majority online or a leader, or with a bare majority (one more member lost stops them).",
			unitCount,
			query(`sum by (estate) (iap_ha_rabbitmq_queues_unsynchronised{`+vhost+`})`, "{{estate}} mirrors unsynchronised"),
			query(`sum by (estate) (iap_ha_rabbitmq_queues_mirror_sync_critical{`+vhost+`})`, "{{estate}} no synchronised mirror"),
			query(`sum by (estate) (iap_ha_rabbitmq_queues_without_quorum{`+vhost+`})`, "{{estate}} quorum lost"),
			query(`sum by (estate) (iap_ha_rabbitmq_queues_quorum_critical{`+vhost+`})`, "{{estate}} bare quorum")).
			Thresholds(thresholds("green", step{1, "red"})).
			Span(12)).
		WithPanel(timeseriesPanel("Queues by type",
			"Queues per type (classic, quorum, stream) in the selected virtual hosts.",
			unitCount,
			query(`sum by (estate, cluster, type) (iap_ha_rabbitmq_queues{`+vhost+`})`, "{{estate}} {{cluster}} {{type}}")).
			Span(12)).
		WithPanel(timeseriesPanel("Queues at risk",
			"The queues at risk per virtual host over time (alerts IAPRabbitmqUnsynchronisedMirrors, IAPRabbitmqQuorumQueueAtRisk).",
			unitCount,
			query(`iap_ha_rabbitmq_queues_unsynchronised{`+vhost+`}`, "{{estate}} {{vhost}} mirrors unsynchronised"),
			query(`iap_ha_rabbitmq_queues_mirror_sync_critical{`+vhost+`}`, "{{estate}} {{vhost}} no synchronised mirror"),
			query(`iap_ha_rabbitmq_queues_without_quorum{`+vhost+`}`, "{{estate}} {{vhost}} quorum lost"),
			query(`iap_ha_rabbitmq_queues_quorum_critical{`+vhost+`}`, "{{estate}} {{vhost}} bare quorum")).
			LineInterpolation(common.LineInterpolationStepAfter).
			Span(24)).
		WithRow(row("Federation")).
		WithPanel(statPanel("Federation links down",
			"Links of federated exchanges and queues that are not running (alert IAPRabbitmqFederationLinkDown).",
			unitCount,
			query(`count by (estate) (iap_ha_rabbitmq_federation_link_up{`+vhost+`} == 0) or vector(0)`, "")).
			Thresholds(thresholds("green", step{1, "red"})).
			Span(6)).
		WithPanel(timelinePanel("Federation links",
			"Whether the link of each federated exchange or queue is running.",
			okWhen(1, "Running", "Not running"),
			query(`iap_ha_rabbitmq_federation_link_up{`+vhost+`}`, "{{estate}} {{cluster}} {{upstream}} {{type}} {{name}}")).
			Span(18))
}
