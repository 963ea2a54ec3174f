#!/bin/sh
# Builds the tools Debian does not package, from the versions tools/ pins,
# and says what it is doing: the first build of each takes minutes, later
# runs take seconds or nothing.
#   scripts/build-tools.sh [helm] [promtool]   (both without arguments)
# helm:     .build/tools/helm, from tools/helm/go.mod (make chart, deploy/helm's tests)
# promtool: Prometheus 3.x's promtool, from tools/go.mod, into the user's
#           cache directory, where rules/'s tests look for it
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}

# build NAME PACKAGE MODULE_DIR OUTPUT WHAT
build() {
	if [ -x "$4" ]; then
		# Up to date or relinked in seconds: go build skips a current binary.
		(cd "$3" && "$GO" build -o "$4" "$2")
		return
	fi
	echo "building $1 $5 into $4: the first build takes several minutes (later ones reuse Go's build cache) …"
	start=$(date +%s)
	mkdir -p "$(dirname "$4")"
	(cd "$3" && "$GO" build -o "$4.tmp" "$2")
	mv "$4.tmp" "$4"
	echo "built $1 in $(($(date +%s) - start)) s"
}

required() { awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == m ? $2 : $3) }' "$1"; }

for tool in ${*:-helm promtool}; do
	case $tool in
	helm)
		build helm helm.sh/helm/v4/cmd/helm tools/helm "$PWD/.build/tools/helm" \
			"$(required tools/helm/go.mod helm.sh/helm/v4) (tools/helm/go.mod; Kubernetes' client libraries)"
		;;
	promtool)
		version=$(required tools/go.mod github.com/prometheus/prometheus)
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/iap_ha_exporter
		build promtool github.com/prometheus/prometheus/cmd/promtool tools \
			"$cache/promtool-$version-$("$GO" env GOOS)-$("$GO" env GOARCH)" "3.x (github.com/prometheus/prometheus $version, tools/go.mod)"
		;;
	*)
		echo "usage: $0 [helm] [promtool]" >&2
		exit 2
		;;
	esac
done
