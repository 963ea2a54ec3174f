#!/usr/bin/env bash
# make image: the Containerfile built with podman from a context of its own
# (the static binary, the host's CA bundle for HTTPS targets and the
# packaged example configuration), so the repository is not sent.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:?usage: image.sh <static binary> <image name>}
image=${2:?usage: image.sh <static binary> <image name>}
ca=/etc/ssl/certs/ca-certificates.crt
[ -r "$ca" ] || { echo "image: $ca is missing (Debian: apt-get install ca-certificates)" >&2; exit 1; }
command -v podman >/dev/null || { echo "image: podman is missing (Debian: apt-get install podman runc)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/iap_ha_exporter"
cp "$ca" "$ctx/ca-certificates.crt"
cp packaging/iap_ha_exporter.yml "$ctx/iap_ha_exporter.yml"
echo "image: podman build -t $image"
podman build --quiet -f Containerfile -t "$image" "$ctx"
