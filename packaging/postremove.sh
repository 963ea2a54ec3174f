#!/bin/sh
# After removal, reload systemd; a Debian purge also removes the remediation
# journal, the audit log and the system user. rpm never removes users.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/iap_ha_exporter /var/log/iap_ha_exporter
	if getent passwd iap_ha_exporter >/dev/null; then
		userdel iap_ha_exporter
	fi
	if getent group iap_ha_exporter >/dev/null; then
		groupdel iap_ha_exporter
	fi
fi
