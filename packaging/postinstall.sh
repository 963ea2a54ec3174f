#!/bin/sh
# The dedicated system user, and the configuration directory readable by it
# (secrets go there). Runs on install and on upgrade, from dpkg and rpm alike.
set -e

user=iap_ha_exporter
if ! getent group "$user" >/dev/null; then
	groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	useradd --system --gid "$user" --home-dir /var/lib/iap_ha_exporter --no-create-home \
		--shell "$nologin" --comment "iap_ha_exporter" "$user"
fi
chown root:"$user" /etc/iap_ha_exporter /etc/iap_ha_exporter/iap_ha_exporter.yml
chmod 0750 /etc/iap_ha_exporter
chmod 0640 /etc/iap_ha_exporter/iap_ha_exporter.yml

# Neither enabled nor started: point the configuration at the estate first.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
