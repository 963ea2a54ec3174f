#!/bin/sh
# Stop the exporter when the package goes away (not on upgrade): dpkg passes
# "remove", rpm the number of versions left, 0.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl --no-reload disable --now iap_ha_exporter.service iap_ha_exporter.socket >/dev/null 2>&1 || true
	fi
	;;
esac
