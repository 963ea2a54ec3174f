package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// remediationDashboard shows what the receiver did with the alerts it was sent:
// actions and their results, the reasons it left alerts alone, and whether a
// failed action blocks it until a person acknowledges.
func remediationDashboard() *dashboard.DashboardBuilder {
	const job = `job="$job", estate=~"$estate"`
	return newDashboard("iap-ha-remediation", "IAP HA / Remediation",
		"The remediation receiver: standby promotions and their steps with their results, alerts it did not act on and why, and whether a failed action blocks it until a person runs `iap_ha_exporter remediation ack`.").
		WithVariable(jobVariable("iap_ha_remediation_blocked")).
		WithRow(row("State")).
		WithPanel(statPanel("Receiver",
			"Blocked after a failed action: the receiver acts on nothing until a person acknowledges (alert IAPRemediationBlocked).",
			unitCount,
			query(`max by (estate) (iap_ha_remediation_blocked{`+job+`})`, "{{estate}}")).
			Mappings(okWhen(0, "Acting", "Blocked")).
			TextMode(common.BigValueTextModeValue).
			Span(6)).
		WithPanel(statPanel("Last action",
			"When a remediation action last started or ended.",
			unitAgo,
			query(`max by (estate) (iap_ha_remediation_last_action_timestamp_seconds{`+job+`} > 0) * 1000`, "{{estate}}")).
			ColorScheme(fixedColor("text")).
			TextMode(common.BigValueTextModeValue).
			NoValue("Never").
			Span(6)).
		WithPanel(statPanel("Promotions in the time range",
			"Whole standby promotions in the selected time range, by result (alert IAPRemediationFailed).",
			unitCount,
			query(`sum by (estate, result) (increase(iap_ha_remediation_actions_total{`+job+`, action="promote"}[$__range]))`, "{{estate}} {{result}}")).
			Decimals(0).
			Thresholds(thresholds("text")).
			Span(12)).
		WithRow(row("Actions")).
		WithPanel(timeseriesPanel("Steps",
			"Remediation steps per minute by action (pre_check, fence, activate, confirm, post_promotion, and the whole promote) and result.",
			unitPerMin,
			query(`60 * sum by (estate, action, result) (rate(iap_ha_remediation_actions_total{`+job+`}[$__rate_interval]))`, "{{estate}} {{action}} {{result}}")).
			Span(12)).
		WithPanel(tablePanel("Steps in the time range",
			"Remediation steps in the selected time range by action and result; steps that did not happen are left out.",
			nil,
			query(`sum by (estate, action, result) (increase(iap_ha_remediation_actions_total{`+job+`}[$__range])) > 0`, "")).
			WithTransformation(renameColumns(map[string]string{"Value": "steps"})).
			Decimals(0).
			NoValue("No step taken").
			Span(12)).
		WithRow(row("Alerts left alone")).
		WithPanel(timeseriesPanel("Skips",
			"Alerts per minute the receiver did not act on, by reason: dedup, cooldown, blocked, dry_run, verification_failed, unreachable_from_receiver, lease_held and others.",
			unitPerMin,
			query(`60 * sum by (estate, reason) (rate(iap_ha_remediation_skipped_total{`+job+`}[$__rate_interval]))`, "{{estate}} {{reason}}")).
			Span(12)).
		WithPanel(tablePanel("Skips in the time range",
			"Alerts left alone in the selected time range, by reason.",
			nil,
			query(`sum by (estate, reason) (increase(iap_ha_remediation_skipped_total{`+job+`}[$__range])) > 0`, "")).
			WithTransformation(renameColumns(map[string]string{"Value": "alerts"})).
			Decimals(0).
			NoValue("No alert left alone").
			Span(12))
}
