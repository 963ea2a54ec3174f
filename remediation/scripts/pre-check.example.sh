#!/bin/sh
# Pre-check: runs before the receiver acts, with the alert and the plan in
# its environment. Exit non-zero to veto the promotion; what it prints goes
# to the audit log.
#
# Environment: IAP_HA_STAGE (pre_check), IAP_HA_DRY_RUN, IAP_HA_INCIDENT,
# IAP_HA_ALERTNAME, IAP_HA_ALERT_STATUS, IAP_HA_ALERT_STARTS_AT,
# IAP_HA_ALERT_LABELS (JSON), IAP_HA_CLUSTER, IAP_HA_FROM, IAP_HA_FROM_URL,
# IAP_HA_FROM_SITE, IAP_HA_TO, IAP_HA_TO_URL, IAP_HA_TO_SITE,
# IAP_HA_CROSS_SITE, IAP_HA_FENCING_TOKEN (grows with every lease taken: a
# system that remembers the last token it saw can refuse an older one),
# IAP_HA_PLAN (JSON), PATH. Nothing else of the exporter's environment is
# passed on.
set -eu

# Example: veto during a change window recorded in a file by the change process.
if [ -e /etc/iap_ha_exporter/change-window ]; then
	echo "change window open: $(cat /etc/iap_ha_exporter/change-window)"
	exit 1
fi

# Example: make sure the standby answers from here as well.
# curl -fsS --max-time 2 "$IAP_HA_TO_URL/health/status" >/dev/null || { echo "$IAP_HA_TO does not answer"; exit 1; }

echo "pre-check passed for $IAP_HA_FROM -> $IAP_HA_TO"
