#!/usr/bin/env bash
# Instructions per row of the data core, a figure that does not move with
# machine load: callgrind on two sample sizes, difference / extra rows (so
# start-up and generation of the sample cancel out... generation is per row
# too, so it is measured separately with --gen-only and subtracted).
set -euo pipefail
BIN="${1:-build/bench/core/bench_core}"
A=20000
B=40000
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$@" 2>&1 | awk '/refs:/ {gsub(",","",$NF); print $NF}'; }
core=$(( $(ir --rows $B --no-baseline) - $(ir --rows $A --no-baseline) ))
gen=$(( $(ir --rows $B --gen-only) - $(ir --rows $A --gen-only) ))
echo "core: $(( (core - gen) / (B - A) )) instructions per row (parse + validate + encode, callgrind)"
