#!/usr/bin/env bash
# Runs the Go tests (fuzz seed corpora included) with every core taken by
# `stress-ng --cpu`, to catch tests that only pass on an idle machine. CI's
# machine has 2 cores shared with the lab servers the tests start.
# PKGS picks the packages, TESTFLAGS adds go test flags (e.g. -count=3).
# stress-ng is stopped when the tests end, whatever their outcome; its own
# --timeout stops it should this script be killed outright.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${STRESS_CPU:-$(nproc)}
if ! command -v stress-ng >/dev/null; then
	echo "stress-test: stress-ng not found (apt-get install stress-ng)" >&2
	exit 1
fi
stress-ng --cpu "$workers" --timeout "${STRESS_TIMEOUT:-120m}" --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null || true; wait "$stress_pid" 2>/dev/null || true' EXIT
echo "stress-test: stress-ng --cpu $workers running (pid $stress_pid)"
# shellcheck disable=SC2086 # PKGS and TESTFLAGS are word lists
go test -count=1 -timeout 90m ${TESTFLAGS:-} ${PKGS:-./...}
