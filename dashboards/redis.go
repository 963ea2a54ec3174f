package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// redisDashboard shows each Sentinel group: whether the Sentinels can still
// fail over, whether they agree on the master, and the data nodes.
func redisDashboard() *dashboard.DashboardBuilder {
	const group = `job="$job", estate=~"$estate", master=~"$master"`
	seen := okWhen(0, "No", "Yes")

	return newDashboard("iap-ha-redis", "IAP HA / Redis Sentinel",
		"IAP's Redis Sentinel groups: whether enough Sentinels answer to fail over, whether they agree on the master, failovers, and each data node's role and replication.").
		WithVariable(jobVariable("iap_ha_redis_sentinel_reachable")).
		WithVariable(labelVariable("master", "Master name", `iap_ha_redis_sentinel_reachable{job="$job", estate=~"$estate"}`, true)).
		WithRow(row("Sentinels")).
		WithPanel(statPanel("Sentinels reachable",
			"Configured Sentinels that answered, against the quorum the group is configured with. Below the quorum no failover can start (alert IAPRedisSentinelQuorumLost).",
			unitCount,
			query(`iap_ha_redis_sentinel_reachable{`+group+`}`, "{{estate}} {{master}} reachable"),
			query(`iap_ha_redis_sentinel_quorum{`+group+`}`, "{{estate}} {{master}} quorum")).
			Thresholds(thresholds("text")).
			Span(6)).
		WithPanel(statPanel("Failures tolerated",
			"The smaller of reachable Sentinels beyond what a failover needs and replicas able to be promoted (alert IAPRedisNoFailureTolerance).",
			unitCount,
			query(`iap_ha_component_failures_tolerated{job="$job", estate=~"$estate", component="redis", name=~"$master"}`, "{{estate}} {{name}}")).
			Thresholds(tolerance()).
			Span(6)).
		WithPanel(statPanel("Masters named",
			"Distinct master addresses among the answering Sentinels. More than one: they disagree, split brain (alert IAPRedisSentinelsDisagree).",
			unitCount,
			query(`iap_ha_redis_sentinel_distinct_masters{`+group+`}`, "{{estate}} {{master}}")).
			Thresholds(thresholds("red", step{1, "green"}, step{2, "red"})).
			Span(6)).
		WithPanel(statPanel("Failovers in the time range",
			"How often the configuration epoch moved in the selected time range: it moves at every failover.",
			unitCount,
			query(`changes(iap_ha_redis_sentinel_config_epoch{`+group+`}[$__range])`, "{{estate}} {{master}}")).
			Thresholds(thresholds("green", step{1, "orange"})).
			Span(6)).
		WithPanel(tablePanel("Master address",
			"Where each answering Sentinel says the master is.",
			[]string{"Value"},
			query(`iap_ha_redis_sentinel_master_info{`+group+`}`, "")).
			Span(12)).
		WithPanel(timelinePanel("Sentinels answering",
			"Whether each Sentinel answered about the master, and whether its SENTINEL CKQUORUM said OK.",
			okWhen(1, "OK", "Failed"),
			query(`iap_ha_redis_sentinel_up{`+group+`}`, "{{estate}} {{sentinel}} answers"),
			query(`iap_ha_redis_sentinel_ckquorum_ok{`+group+`}`, "{{estate}} {{sentinel}} quorum")).
			Span(12)).
		WithPanel(timelinePanel("Master seen down",
			"Whether each Sentinel sees the master subjectively down, objectively down (a quorum agrees), or is in TILT mode and acts on nothing; and whether a failover is under way.",
			seen,
			query(`iap_ha_redis_sentinel_master_sdown{`+group+`}`, "{{estate}} {{sentinel}} subjectively down"),
			query(`iap_ha_redis_sentinel_master_odown{`+group+`}`, "{{estate}} {{sentinel}} objectively down"),
			query(`iap_ha_redis_sentinel_tilt{`+group+`}`, "{{estate}} {{sentinel}} tilt"),
			query(`iap_ha_redis_sentinel_failover_in_progress{`+group+`}`, "{{estate}} {{master}} failover in progress")).
			Span(24)).
		WithRow(row("Data nodes")).
		WithPanel(timelinePanel("Role",
			"Each data node the Sentinels name: master, replica, or not answering INFO replication (alert IAPRedisNoMaster, IAPRedisReplicaDown).",
			states(state{0, "Down", "red"}, state{1, "Replica", "blue"}, state{2, "Master", "green"}),
			query(`iap_ha_redis_up{`+group+`} * (1 + iap_ha_redis_is_master{`+group+`})`, "{{estate}} {{node}} ({{site}})")).
			Span(12)).
		WithPanel(timelinePanel("Replica link",
			"Whether each replica's link to its master is up.",
			okWhen(1, "Up", "Down"),
			query(`iap_ha_redis_replica_link_up{`+group+`}`, "{{estate}} {{node}}")).
			Span(12)).
		WithPanel(timeseriesPanel("Replication lag",
			"The master's replication offset minus the replica's.",
			unitBytes,
			query(`iap_ha_redis_replica_lag_bytes{`+group+`}`, "{{estate}} {{node}}")).
			Span(12)).
		WithPanel(tablePanel("Replicas and priority",
			"Replicas connected to each master as it reports, and each replica's priority: 0 is never promoted.",
			nil,
			query(`iap_ha_redis_connected_replicas{`+group+`}`, ""),
			query(`iap_ha_redis_replica_priority{`+group+`}`, "")).
			WithTransformation(renameColumns(map[string]string{"Value #A": "connected replicas", "Value #B": "priority"})).
			Span(12))
}
