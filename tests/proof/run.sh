#!/usr/bin/env bash
# tests/proof/run.sh LANES ROUNDS [BUILD_DIR]: issue 11's load proof -- the
# whole e2e suite (ctest -L e2e, tests in random order) ROUNDS times in each of
# LANES concurrent lanes, with one `yes` per core as a CPU hog, against the
# shared broker (make kafka-up). Lanes share the build dir; the harness gives
# every test its own ports, temp dirs, topics and groups, so they never meet.
# One line per round in $OUT/summary.txt (OUT default: /tmp/bok-proof-<time>);
# each round's ctest output beside it. Stop it with: kill -- -<pid of run.sh>.
set -u
lanes="${1:?lanes}"; rounds="${2:?rounds}"
build="$(cd "${3:-$(dirname "$0")/../../build}" && pwd)"
out="${OUT:-/tmp/bok-proof-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
hogs=()
for _ in $(seq 1 "$(nproc)"); do yes >/dev/null & hogs+=($!); done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
lane() {
  local l="$1" r s rc
  for r in $(seq 1 "$rounds"); do
    s=$(date +%s)
    (cd "$build" && ctest -L e2e --schedule-random --output-on-failure) >"$out/lane$l-round$r.out" 2>&1
    rc=$?
    echo "$(date -u +%FT%TZ) lane $l round $r rc=$rc $(($(date +%s) - s))s" \
      "$(grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$out/lane$l-round$r.out")" \
      "load=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/summary.txt"
  done
}
pids=()
for l in $(seq 1 "$lanes"); do lane "$l" & pids+=($!); sleep 15; done
wait "${pids[@]}"
echo "summary: $out/summary.txt"
cat "$out/summary.txt"
