package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

// iapDashboard shows each IAP server's role, what it depends on, its
// applications and adapters, and the Automation Gateways it drives.
func iapDashboard() *dashboard.DashboardBuilder {
	const (
		srv = `job="$job", estate=~"$estate", site=~"$site", server=~"$server"`
		gw  = `job="$job", estate=~"$estate", site=~"$site"`
	)
	// role is 0 down, 1 standby, 2 active, as the HA model counts them: a
	// server whose task worker is unknown (no credentials) counts as standby.
	role := `iap_ha_iap_up{` + srv + `} * (1 + (iap_ha_iap_task_worker_running{` + srv + `} or iap_ha_iap_up{` + srv + `} * 0))`
	roles := states(state{0, "Down", "red"}, state{1, "Standby", "blue"}, state{2, "Active", "green"})
	running := okWhen(1, "Running", "Stopped")

	return newDashboard("iap-ha-iap", "IAP HA / IAP servers",
		"Each IAP server: the role it plays against the one the configuration declares, its own view of its dependencies, its applications and adapters, and the Automation Gateways.").
		WithVariable(jobVariable("iap_ha_iap_up")).
		WithVariable(labelVariable("site", "Site", `iap_ha_iap_up{job="$job", estate=~"$estate"}`, true)).
		WithVariable(labelVariable("server", "Server", `iap_ha_iap_up{job="$job", estate=~"$estate", site=~"$site"}`, true)).
		WithRow(row("Roles")).
		WithPanel(statPanel("Observed role",
			"Active: answers /health/status and its task worker runs. Standby: answers with the task worker stopped (or unknown). Down: no answer in time.",
			unitCount,
			query(role, "{{estate}} {{server}} ({{site}})")).
			Mappings(roles).
			Span(12)).
		WithPanel(statPanel("Declared role",
			"The role the exporter's configuration declares. A declared standby that works tasks while an active does too is split brain (alert IAPStandbyWorkingTasks).",
			unitCount,
			query(`iap_ha_iap_declared_active{`+srv+`}`, "{{estate}} {{server}} ({{site}})")).
			Mappings(states(state{0, "Standby", "blue"}, state{1, "Active", "green"})).
			Span(12)).
		WithPanel(statPanel("Ready to take over",
			"Whether a standby could take over tasks now: it answers, its task worker is known to be stopped, no dependency it lists is failing and its applications are not degraded. Active servers and those whose workers are unknown show No.",
			unitCount,
			query(`server:iap_ha_iap_standby_promotable:bool{`+srv+`}`, "{{estate}} {{server}}")).
			Mappings(states(state{0, "No", "text"}, state{1, "Yes", "green"})).
			Span(24)).
		WithPanel(timelinePanel("Role over time",
			"The observed role of each server over time: a failover shows as the active turning down and a standby turning active.",
			roles,
			query(role, "{{estate}} {{server}}")).
			Span(24)).
		WithPanel(timelinePanel("Workers",
			"Task and job workers running now, and whether the server's own configuration starts its task worker (active) or not (standby). Job workers exist from 2023.1.",
			running,
			query(`iap_ha_iap_task_worker_running{`+srv+`}`, "{{estate}} {{server}} task worker"),
			query(`iap_ha_iap_job_worker_running{`+srv+`}`, "{{estate}} {{server}} job worker"),
			query(`iap_ha_iap_task_worker_configured{`+srv+`}`, "{{estate}} {{server}} task worker at start-up")).
			Span(12)).
		WithPanel(tablePanel("Versions",
			"Server id, release and core version each server reports.",
			[]string{"Value"},
			query(`iap_ha_iap_info{`+srv+`}`, "")).
			Span(12)).
		WithRow(row("Health")).
		WithPanel(timelinePanel("Dependencies",
			"IAP's own view of MongoDB, Redis, RabbitMQ and Vault from /health/status (alert IAPDependencyDown).",
			running,
			query(`iap_ha_iap_dependency_up{`+srv+`}`, "{{estate}} {{server}} {{service}}")).
			Span(12)).
		WithPanel(timelinePanel("Applications and adapters",
			"Whether /health/status says the applications and the adapters run rather than degraded, and whether every authenticated API call (login, health details, workers) succeeded.",
			okWhen(1, "OK", "Degraded"),
			query(`iap_ha_iap_applications_healthy{`+srv+`}`, "{{estate}} {{server}} applications"),
			query(`iap_ha_iap_adapters_healthy{`+srv+`}`, "{{estate}} {{server}} adapters"),
			query(`iap_ha_iap_api_up{`+srv+`}`, "{{estate}} {{server}} API")).
			Span(12)).
		WithPanel(tablePanel("Applications not running",
			"Applications whose state is not RUNNING (alert IAPApplicationDown).",
			[]string{"Value"},
			query(`iap_ha_iap_application_up{`+srv+`} == 0`, "")).
			NoValue("Every application runs").
			Span(12)).
		WithPanel(tablePanel("Adapters not running",
			"Adapters not RUNNING with their connection ONLINE (alert IAPAdapterDown).",
			[]string{"Value"},
			query(`iap_ha_iap_adapter_up{`+srv+`} == 0`, "")).
			NoValue("Every adapter runs").
			Span(12)).
		WithRow(row("Automation Gateways")).
		WithPanel(statPanel("Gateways",
			"Whether each gateway's /api/v2.0/poll answered in time (alert IAPGatewayDown).",
			unitCount,
			query(`iap_ha_gateway_up{`+gw+`}`, "{{estate}} {{gateway}} ({{site}})")).
			Mappings(okWhen(1, "Up", "Down")).
			Span(8)).
		WithPanel(statPanel("IAP's view of the gateways",
			"Whether IAP's adapter for the gateway agrees with the exporter's own poll. IAP polls its gateways every 300 s, so a short disagreement is expected (alert IAPGatewayAdapterDisagrees).",
			unitCount,
			query(`iap_ha_gateway_adapter_disagrees{`+gw+`}`, "{{estate}} {{gateway}}")).
			Mappings(states(state{0, "Agrees", "green"}, state{1, "Disagrees", "orange"})).
			NoValue("No IAP server lists a gateway adapter").
			Span(8)).
		WithPanel(statPanel("Devices against capacity",
			"Devices a gateway manages over all its inventories against the devices it is sized for, as alert IAPGatewayNearCapacity counts them.",
			unitRatio,
			query(`gateway:iap_ha_gateway_devices:sum{`+gw+`} / iap_ha_gateway_capacity_devices{`+gw+`}`, "{{estate}} {{gateway}}")).
			Thresholds(thresholds("green", step{0.8, "orange"}, step{0.9, "red"})).
			Span(8)).
		WithPanel(timeseriesPanel("Devices per inventory",
			"Devices in each inventory of each gateway.",
			unitCount,
			query(`iap_ha_gateway_devices{`+gw+`}`, "{{estate}} {{gateway}} {{inventory}}")).
			Span(12)).
		WithPanel(tablePanel("Gateway versions",
			"Automation Gateway and Ansible versions each gateway reports.",
			[]string{"Value"},
			query(`iap_ha_gateway_info{`+gw+`}`, "")).
			Span(12)).
		WithRow(row("Load balancers")).
		WithPanel(timelinePanel("Traffic",
			"Whether each load balancer sends new traffic to each IAP server: the actives while one is usable, a backup standby once none is (alerts IAPLoadBalancerRoutesToIdleServer, IAPPromotedStandbyWithoutTraffic).",
			okWhen(1, "Routed", "No traffic"),
			query(`iap_ha_loadbalancer_server_routed{job="$job", estate=~"$estate", server=~"$server"}`, "{{estate}} {{balancer}} → {{server}}")).
			Span(12)).
		WithPanel(timelinePanel("The balancer's checks",
			"Whether each balancer's own health check reaches each server; absent in MAINT. Set against the exporter's view: a disagreement is a partition, not a failure (alert IAPLoadBalancerVantageDisagreement).",
			okWhen(1, "Reaches", "Fails"),
			query(`iap_ha_loadbalancer_server_reachable{job="$job", estate=~"$estate", server=~"$server"}`, "{{estate}} {{balancer}} → {{server}}"),
			query(`iap_ha_loadbalancer_vantage_disagrees{job="$job", estate=~"$estate", server=~"$server"} == 1`, "{{estate}} {{balancer}} and the exporter disagree on {{server}}")).
			Span(12))
}
