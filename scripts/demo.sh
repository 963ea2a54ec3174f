#!/bin/sh
# The HA-6 lab with the exporter, Prometheus and Alertmanager on 127.0.0.1.
#   scripts/demo.sh        start it and run until Ctrl-C (make demo)
#   scripts/demo.sh down   stop a demo running in another shell (make demo-down)
# Needs root on a fresh machine: the demo installs redis, rabbitmq-server,
# prometheus and prometheus-alertmanager with apt-get when they are missing.
set -eu
cd "$(dirname "$0")/.."

# Built, not `go run`, so that Ctrl-C reaches the demo itself and it can
# stop everything it started.
mkdir -p .build
go build -o .build/demo ./fixtures/estate/cmd/demo

case "${1:-up}" in
up)
	[ -x ./iap_ha_exporter ] || make build
	exec .build/demo up
	;;
down)
	exec .build/demo down
	;;
*)
	echo "usage: $0 [up|down]" >&2
	exit 2
	;;
esac
