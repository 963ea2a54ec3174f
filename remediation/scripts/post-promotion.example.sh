#!/bin/sh
# Post-promotion hook: runs after the standby's workers were activated and
# confirmed, for the site of the promoted server. Point the load balancer or
# DNS at it here. A non-zero exit marks the promotion failed, which blocks
# the receiver until a person runs `iap_ha_exporter remediation ack`.
# Environment: as for the pre-check (IAP_HA_STAGE is post_promotion).
set -eu

echo "promoted $IAP_HA_TO ($IAP_HA_TO_URL) in place of $IAP_HA_FROM in site $IAP_HA_TO_SITE"

# Example: HAProxy through its runtime API.
# echo "set server iap/$IAP_HA_FROM state maint" | socat stdio /run/haproxy/admin.sock
# echo "set server iap/$IAP_HA_TO state ready"   | socat stdio /run/haproxy/admin.sock

# Example: a DNS record through nsupdate.
# nsupdate -k /etc/iap_ha_exporter/dns.key <<NS
# update delete iap.example.net A
# update add iap.example.net 60 A $(getent hosts "${IAP_HA_TO_URL#*://}" | awk '{print $1}')
# send
# NS
