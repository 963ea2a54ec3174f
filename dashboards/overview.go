package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// overviewDashboard answers the on-call question first: is the HA design holding, and
// what would the next failure take down?
func overviewDashboard() *dashboard.DashboardBuilder {
	const (
		job  = `job="$job", estate=~"$estate"`
		site = `job="$job", estate=~"$estate", site=~"$site"`
	)
	return newDashboard("iap-ha-overview", "IAP HA / Overview",
		"Is the HA design of the IAP estate holding, and what would the next failure take down: architecture observed against declared, failures each component still survives, which site losses are survivable, which members are single points of failure, IAP servers by state, split brain and firing alerts.").
		WithVariable(jobVariable("iap_ha_architecture_info")).
		WithVariable(labelVariable("site", "Site", `iap_ha_site_loss_survivable{`+job+`}`, true)).
		WithRow(row("Architecture")).
		WithPanel(namesPanel("Observed architecture",
			"The class the HA model observes in the live topology: HA-0 single instances, HA-3 redundant clusters in one site, HA-6 an active, a standby and a witness site that survives the loss of any one of them.",
			query(`iap_ha_architecture_info{`+job+`}`, "{{estate}} {{observed}}")).
			ColorScheme(fixedColor("blue")).
			Span(5)).
		WithPanel(namesPanel("Declared architecture",
			"The class the exporter's configuration declares (`architecture`), or none.",
			query(`iap_ha_architecture_info{`+job+`}`, "{{estate}} {{expected}}")).
			ColorScheme(fixedColor("text")).
			Span(5)).
		WithPanel(statPanel("Architecture",
			"Whether the observed class is below the declared one (alert IAPHAArchitectureDegraded).",
			unitCount,
			query(`max by (estate) (iap_ha_architecture_degraded{`+job+`})`, "{{estate}}")).
			Mappings(okWhen(0, "As declared", "Degraded")).
			TextMode(common.BigValueTextModeValue).
			Span(4)).
		WithPanel(namesPanel("What holds the estate back",
			"The usual reasons for a class below the declared one: a component that survives no further failure keeps the estate below HA-3, a site whose loss is not survivable keeps it below HA-6. Gateways are left out: each one is a single instance by design. Empty when nothing holds the estate back.",
			query(`iap_ha_component_failures_tolerated{`+job+`, component!="gateway"} == 0`, "{{estate}} {{component}} {{name}} survives no further failure"),
			query(`iap_ha_site_loss_survivable{`+site+`} == 0`, "{{estate}} losing {{site}} is not survivable")).
			ColorScheme(fixedColor("red")).
			NoValue("Nothing").
			Span(10)).
		WithRow(row("What the next failure takes down")).
		WithPanel(statPanel("Estate",
			"Further failures the weakest component instance survives, and whether the estate survives the loss of any one site.",
			unitCount,
			query(`min by (estate) (estate:iap_ha_component_failures_tolerated:min{`+job+`})`, "{{estate}} failures survived")).
			Thresholds(tolerance()).
			Span(4)).
		WithPanel(statPanel("Any site loss",
			"Whether the estate survives the loss of any one site, whichever it is: what Itential claims for HA-6, measured.",
			unitCount,
			query(`min by (estate) (estate:iap_ha_site_loss_survivable:min{`+job+`})`, "{{estate}}")).
			Mappings(okWhen(1, "Survivable", "Not survivable")).
			TextMode(common.BigValueTextModeValue).
			Span(4)).
		WithPanel(statPanel("Failures tolerated",
			"How many more member failures each component instance survives, by the HA model: MongoDB healthy voters beyond the majority, Redis reachable Sentinels beyond the quorum and promotable replicas, RabbitMQ running nodes beyond the majority, IAP servers able to work tasks beyond one. Absent where a probe failed.",
			unitCount,
			query(`min by (estate, component, name) (iap_ha_component_failures_tolerated{`+job+`})`, "{{estate}} {{component}} {{name}}")).
			Thresholds(tolerance()).
			Span(16)).
		WithPanel(statPanel("Site loss",
			"Whether losing every member in the site leaves an IAP server outside it able to work tasks, with its replica set, Sentinel group and RabbitMQ cluster still working (alert IAPSiteLossNotSurvivable).",
			unitCount,
			query(`min by (estate, site) (iap_ha_site_loss_survivable{`+site+`})`, "{{estate}} {{site}}")).
			Mappings(okWhen(1, "Survivable", "Not survivable")).
			Span(12)).
		WithPanel(statPanel("Devices lost with the site",
			"Devices managed by the Automation Gateways standing in the site, lost with it. Empty without gateways in the configuration.",
			unitCount,
			query(`max by (estate, site) (iap_ha_site_loss_devices_without_gateway{`+site+`})`, "{{estate}} {{site}}")).
			Thresholds(thresholds("green", step{1, "orange"})).
			NoValue("No gateways").
			Span(12)).
		WithPanel(namesPanel("Single points of failure",
			"Members whose loss alone would leave no IAP server able to work tasks with what it depends on: the site-loss question asked of each member (alert IAPSinglePointOfFailure on estates declared HA-3 or HA-6). The topology page says what would break. Empty when none is, or while the estate cannot work tasks at all.",
			query(`iap_ha_member_single_point_of_failure{`+site+`} == 1`, "{{estate}} {{component}} {{member}} ({{site}})")).
			ColorScheme(fixedColor("red")).
			NoValue("None").
			Span(12)).
		WithPanel(namesPanel("Losses that drop the declared class",
			"Members whose loss alone would leave the observed architecture below the declared one, after MongoDB's election or Sentinel's failover. Empty without a declared class, or while the estate is below it already.",
			query(`iap_ha_member_loss_degrades_architecture{`+site+`} == 1`, "{{estate}} {{component}} {{member}} ({{site}})")).
			ColorScheme(fixedColor("orange")).
			NoValue("None").
			Span(12)).
		WithPanel(timeseriesPanel("Failures tolerated over time",
			"The same verdict over time: drops show when redundancy was lost and for how long.",
			unitCount,
			query(`min by (estate, component, name) (iap_ha_component_failures_tolerated{`+job+`})`, "{{estate}} {{component}} {{name}}")).
			LineInterpolation(common.LineInterpolationStepAfter).
			Span(24)).
		WithRow(row("IAP servers")).
		WithPanel(statPanel("Active servers",
			"Servers per site that answer and work tasks. Exactly one site should have them; none anywhere means no tasks run (alert IAPNoActiveServer).",
			unitCount,
			query(`sum by (estate, site) (iap_ha_iap_servers{`+site+`, state="active"})`, "{{estate}} {{site}}")).
			Thresholds(thresholds("text", step{1, "green"})).
			Span(6)).
		WithPanel(statPanel("Standby servers",
			"Servers per site that answer with their task worker stopped or unknown.",
			unitCount,
			query(`sum by (estate, site) (iap_ha_iap_servers{`+site+`, state="standby"})`, "{{estate}} {{site}}")).
			Thresholds(thresholds("text", step{1, "blue"})).
			Span(6)).
		WithPanel(statPanel("Promotable standbys",
			"Standbys per site that could take over tasks now: they answer, their task worker is known to be stopped, no dependency they list is failing and their applications are not degraded (alert IAPStandbyNotReady).",
			unitCount,
			query(`sum by (estate, site) (site:iap_ha_iap_standby_promotable:sum{`+site+`})`, "{{estate}} {{site}}")).
			Thresholds(thresholds("orange", step{1, "green"})).
			Span(6)).
		WithPanel(statPanel("Down servers",
			"Servers per site that did not answer /health/status in time (alert IAPServerDown).",
			unitCount,
			query(`sum by (estate, site) (iap_ha_iap_servers{`+site+`, state="down"})`, "{{estate}} {{site}}")).
			Thresholds(thresholds("green", step{1, "red"})).
			Span(6)).
		WithPanel(timeseriesPanel("Servers by state",
			"Active, standby and down servers over time in the selected sites: a failover shows as an active server turning down and a standby turning active.",
			unitCount,
			query(`sum by (estate, state) (iap_ha_iap_servers{`+site+`})`, "{{estate}} {{state}}")).
			LineInterpolation(common.LineInterpolationStepAfter).
			Span(12)).
		WithPanel(statPanel("Split brain",
			"1 when the HA model sees two heads in a component: two MongoDB primaries, Sentinels disagreeing on the master, a RabbitMQ partition, a declared standby working tasks while an active does too.",
			unitCount,
			query(`max by (estate, component, name) (iap_ha_split_brain{`+job+`})`, "{{estate}} {{component}} {{name}}")).
			Mappings(okWhen(0, "One head", "Split brain")).
			Span(12)).
		WithRow(row("Load balancers")).
		WithPanel(statPanel("Working servers behind each balancer",
			"IAP servers each load balancer routes to that work tasks: 0 means users reach IAP and nothing runs their jobs (alert IAPLoadBalancerRoutesToNoWorkingServer). Empty without load balancers in the configuration.",
			unitCount,
			query(`iap_ha_loadbalancer_routed_working_servers{`+job+`}`, "{{estate}} {{balancer}}")).
			Thresholds(thresholds("red", step{1, "green"})).
			NoValue("No load balancers").
			Span(12)).
		WithPanel(statPanel("Balancer against exporter",
			"Servers on which a load balancer and the exporter disagree (one reaches it, the other does not: a partition), and promoted standbys a balancer sends no traffic to.",
			unitCount,
			query(`sum by (estate, balancer) (iap_ha_loadbalancer_vantage_disagrees{`+job+`})`, "{{estate}} {{balancer}} disagreements"),
			query(`sum by (estate, balancer) (iap_ha_loadbalancer_promoted_unrouted{`+job+`})`, "{{estate}} {{balancer}} promoted without traffic")).
			Thresholds(thresholds("green", step{1, "orange"})).
			NoValue("No load balancers").
			Span(12)).
		WithPanel(statPanel("Users sent to a server that works no tasks",
			"IAP servers each load balancer routes to whose task worker is stopped: right after a failover HAProxy sends users to a backup, a standby, until the receiver promotes it; more than a promotion's few minutes means none came (alert IAPLoadBalancerRoutesToIdleServer).",
			unitCount,
			query(`iap_ha_loadbalancer_routed_idle_servers{`+job+`}`, "{{balancer}}")).
			Thresholds(thresholds("green", step{1, "orange"})).
			NoValue("No load balancers").
			Span(24)).
		WithRow(row("Alerts and exporter")).
		WithPanel(tablePanel("Firing alerts",
			"Alerts of the iap_ha rule pack firing now for this job, with their labels. Each alert's runbook_url annotation, and rules/runbook.md, say what to do.",
			[]string{"Value", "alertstate"},
			query(`ALERTS{alertstate="firing", alertname=~"IAP.+", `+job+`}`, "")).
			NoValue("No alert firing").
			Span(14)).
		WithPanel(statPanel("Collectors",
			"Whether each of the exporter's collectors finished its probes within the scrape deadline. A failed probe leaves its part of the HA verdict out rather than guessed (alert IAPHAExporterCollectorFailing).",
			unitCount,
			query(`min by (estate, collector) (iap_ha_scrape_collector_success{`+job+`})`, "{{estate}} {{collector}}")).
			Mappings(okWhen(1, "OK", "Failing")).
			Span(10))
}
