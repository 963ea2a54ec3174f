package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// mongodbDashboard shows each replica set: its primary, the votes it has to
// spare, elections, and every member's state and lag.
func mongodbDashboard() *dashboard.DashboardBuilder {
	const rs = `job="$job", estate=~"$estate", set=~"$set"`
	// MongoDB's member state codes (replSetGetStatus members[].state).
	memberStates := states(
		state{0, "STARTUP", "yellow"},
		state{1, "PRIMARY", "green"},
		state{2, "SECONDARY", "blue"},
		state{3, "RECOVERING", "orange"},
		state{5, "STARTUP2", "yellow"},
		state{6, "UNKNOWN", "orange"},
		state{7, "ARBITER", "purple"},
		state{8, "DOWN", "red"},
		state{9, "ROLLBACK", "orange"},
		state{10, "REMOVED", "red"},
	)

	return newDashboard("iap-ha-mongodb", "IAP HA / MongoDB replica set",
		"IAP's MongoDB replica sets: the primary, the votes to spare before the set can no longer elect one, elections, and each member's state, replication lag, votes and priority.").
		WithVariable(jobVariable("iap_ha_mongodb_up")).
		WithVariable(labelVariable("set", "Replica set", `iap_ha_mongodb_up{job="$job", estate=~"$estate"}`, true)).
		WithRow(row("Replica set")).
		WithPanel(statPanel("Status",
			"Whether the set's replSetGetStatus and replSetGetConfig could be read. Without them the set reports nothing else.",
			unitCount,
			query(`iap_ha_mongodb_up{`+rs+`}`, "{{estate}} {{set}}")).
			Mappings(okWhen(1, "Readable", "Unreadable")).
			Span(6)).
		WithPanel(statPanel("Primaries",
			"Members seen as primary across every view read. None: no writes, IAP stops (alert IAPMongoNoPrimary). More than one: split brain (alert IAPMongoMultiplePrimaries).",
			unitCount,
			query(`iap_ha_mongodb_primaries{`+rs+`}`, "{{estate}} {{set}}")).
			Thresholds(thresholds("red", step{1, "green"}, step{2, "red"})).
			Span(6)).
		WithPanel(statPanel("Failures tolerated",
			"Healthy voting members beyond the majority; 0 without a primary (alert IAPMongoNoFailureTolerance).",
			unitCount,
			query(`iap_ha_component_failures_tolerated{job="$job", estate=~"$estate", component="mongodb", name=~"$set"}`, "{{estate}} {{name}}")).
			Thresholds(tolerance()).
			Span(6)).
		WithPanel(statPanel("Elections in the time range",
			"How often the election term moved in the selected time range.",
			unitCount,
			query(`changes(iap_ha_mongodb_term{`+rs+`}[$__range])`, "{{estate}} {{set}}")).
			Thresholds(thresholds("green", step{1, "orange"})).
			Span(6)).
		WithPanel(timeseriesPanel("Votes",
			"Voting members, those healthy and in a state that votes, and the majority needed to elect a primary. When healthy voters reach the majority, the next failure leaves the set without a primary.",
			unitCount,
			query(`iap_ha_mongodb_voting_members{`+rs+`}`, "{{estate}} {{set}} voting members"),
			query(`iap_ha_mongodb_healthy_voting_members{`+rs+`}`, "{{estate}} {{set}} healthy voting members"),
			query(`iap_ha_mongodb_majority{`+rs+`}`, "{{estate}} {{set}} majority")).
			LineInterpolation(common.LineInterpolationStepAfter).
			Span(12)).
		WithPanel(timeseriesPanel("Election term",
			"The election term: every step up is an election.",
			unitCount,
			query(`iap_ha_mongodb_term{`+rs+`}`, "{{estate}} {{set}}")).
			LineInterpolation(common.LineInterpolationStepAfter).
			Span(12)).
		WithRow(row("Members")).
		WithPanel(timelinePanel("Member state",
			"Each member's state as the set sees it.",
			memberStates,
			query(`iap_ha_mongodb_member_state{`+rs+`}`, "{{estate}} {{set}} {{member}} ({{site}})")).
			Span(24)).
		WithPanel(timeseriesPanel("Replication lag",
			"The primary's last applied write minus the member's (alert IAPMongoReplicationLagHigh). Absent for arbiters and unhealthy members.",
			unitSeconds,
			query(`iap_ha_mongodb_member_replication_lag_seconds{`+rs+`}`, "{{estate}} {{set}} {{member}}")).
			Span(12)).
		WithPanel(timelinePanel("Member health",
			"Health as the set sees it (alert IAPMongoMemberUnhealthy) and, with direct_members, whether the member answers a direct hello: reachable but unhealthy means cut off from the set, not dead.",
			okWhen(1, "OK", "Unhealthy"),
			query(`iap_ha_mongodb_member_health{`+rs+`}`, "{{estate}} {{member}} health"),
			query(`iap_ha_mongodb_member_reachable{`+rs+`}`, "{{estate}} {{member}} reachable")).
			Span(12)).
		WithPanel(tablePanel("Votes and priority",
			"Each member's votes and election priority in the replica-set configuration; priority 0 never becomes primary.",
			nil,
			query(`iap_ha_mongodb_member_votes{`+rs+`}`, ""),
			query(`iap_ha_mongodb_member_priority{`+rs+`}`, "")).
			WithTransformation(renameColumns(map[string]string{"Value #A": "votes", "Value #B": "priority"})).
			Span(24))
}
