#!/bin/sh
# The README's picture: the topology page of a running `make demo` (the
# whole HA-6 lab, declared HA-3), in Debian's headless Chromium.
#   scripts/screenshot.sh [out.png] [page URL]
set -eu
out=${1:-docs/topology.png}
url=${2:-http://127.0.0.1:9894/topology}
if ! curl -fsS -o /dev/null "${url%/topology}/-/healthy"; then
	echo "nothing answers at $url: start \`make demo\` in another shell first" >&2
	exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$profile" --window-size=1500,1250 --hide-scrollbars \
	--screenshot="$out" "$url" 2>/dev/null
echo "wrote $out"
