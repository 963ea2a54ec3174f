#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10000x:
# a count of inputs, never a duration; see the Makefile for why).
# Any crash fails the run; go test writes the failing input under
# testdata/fuzz/, where it becomes a regression case: commit it. Minimising is
# capped (-fuzzminimizetime) so a large interesting input cannot stall a run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10000x}
count=0
while IFS= read -r line; do
	file=${line%%:*}
	name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name ($fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 200x "$pkg"
	count=$((count + 1))
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort)
echo "fuzz: $count targets ran for $fuzztime each"
