#!/usr/bin/env bash
# make package: from the static linux/amd64 binary (make static), the
# release tarball in promu's layout (iap_ha_exporter-<version>.linux-amd64/
# with the binary, LICENSE, README, examples, rules, dashboards and the
# systemd units), and a .deb and an .rpm built by nfpm (packaging/nfpm.yaml),
# all in the output directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:?usage: package.sh <static binary> [output directory]}
out=${2:-.build/packages}
GO=${GO:-go}
version=$(cat VERSION)
name=iap_ha_exporter-${version}.linux-amd64
mkdir -p "$out"

echo "package: $out/$name.tar.gz"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir=$stage/$name
mkdir -p "$dir/examples" "$dir/rules/tests" "$dir/dashboards" "$dir/docs"
cp "$bin" LICENSE README.md CHANGELOG.md CONFIGURATION.md mixin.libsonnet "$dir/"
cp examples/*.yml "$dir/examples/"
cp -r examples/estates examples/targets examples/fleet "$dir/examples/"
cp docs/how-it-works.md docs/fleet.md "$dir/docs/"
cp rules/iap_ha.rules.yml rules/iap_ha.alerts.yml rules/runbook.md rules/README.md "$dir/rules/"
cp rules/tests/*.yml "$dir/rules/tests/"
cp dashboards/*.json "$dir/dashboards/"
cp -r packaging "$dir/systemd"
rm -f "$dir"/systemd/*.go "$dir"/systemd/nfpm.yaml "$dir"/systemd/*.sh
tar -C "$stage" --owner=0 --group=0 -czf "$out/$name.tar.gz" "$name"

# nfpm is built from tools/go.mod, as staticcheck and promtool are.
for packager in deb rpm; do
	echo "package: $out/ ($packager, nfpm)"
	VERSION=$version BINARY=$bin "$GO" run -modfile=tools/go.mod github.com/goreleaser/nfpm/v2/cmd/nfpm \
		package --config packaging/nfpm.yaml --packager "$packager" --target "$out/"
done
ls -l "$out"
