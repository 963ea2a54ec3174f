#!/bin/sh
# IAP alone, no lab: iapsim's four HA-6 servers on 127.0.0.1:13001–13004
# (control API on :13000) and the exporter against them on :9894. The
# exporter reports 2 active servers in dc1 and 2 standby servers in dc2:
#   curl -s localhost:9894/metrics | grep iap_ha_iap_servers
# Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .build
go build -o .build/iapsim ./fixtures/iapsim/cmd/iapsim
[ -x ./iap_ha_exporter ] || make build
.build/iapsim --topology fixtures/iapsim/testdata/ha6.yml &
sim=$!
trap 'kill $sim 2>/dev/null' EXIT INT TERM
./iap_ha_exporter --config.file=fixtures/iapsim/testdata/ha6-exporter.yml
