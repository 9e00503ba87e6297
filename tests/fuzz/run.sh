#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET...] -- builds the libFuzzer harnesses
# with clang (ASan + UBSan, any UB aborts) and runs each target SECONDS
# (default 60), one after the other, or FUZZ_JOBS at once. `make fuzz
# FUZZ_SECONDS=3600` runs them all for an hour each; `make test` runs a short
# smoke.
#
# Corpora: tests/fuzz/corpus/<target>/ holds the committed seeds (hand-written
# seed-* files plus inputs merged from long runs); each run reads them and
# grows a work corpus in $OUT/corpus/<target>/ (git-ignored). After a long run,
# BOK_FUZZ_MERGE=1 adds to the committed corpus only the work inputs that
# bring new coverage (libFuzzer -merge=1), keeping it small; with SECONDS 0
# nothing is fuzzed, only merged.
#
# Results: $OUT/logs/<target>.log (libFuzzer's output, final stats included)
# and one summary line per target (executions, exec/s, cov, ft). A crash,
# leak, timeout or OOM leaves its input in $OUT/crashes/ and fails the run
# (the other targets still run). Every crash found becomes a unit test.
#
# protobuf-c: the proto target decodes with protobuf-c's runtime compiled
# with coverage instrumentation from Debian's source of the installed version
# (downloaded once into $OUT, checked against its SHA-256); offline, it falls
# back to the system library (decoding still fuzzed, but libFuzzer then sees
# no coverage inside the decoder).
set -euo pipefail
SECS="${1:-60}"
shift || true
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${BOK_FUZZ_BUILD:-$REPO/build-fuzz}"
ALL="csv ndjson schema validator detect multipart route proto"
TARGETS="${*:-$ALL}"
MAXLEN="${BOK_FUZZ_MAX_LEN:-4096}"
mkdir -p "$OUT/obj" "$OUT/gen" "$OUT/logs" "$OUT/crashes" "$OUT/corpus"

CFLAGS="-O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -std=gnu11"
CFLAGS="$CFLAGS -DH2O_USE_LIBUV=0 -I$REPO/lib/include -I$REPO/gateway -I$OUT/gen"
OBJFLAGS="${CFLAGS/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}"

# ---- protobuf-c runtime and generated code --------------------------------
# The protobuf-c runtime is Debian's library (libprotobuf-c-dev): the proto
# target fuzzes every request decoder through it, without coverage feedback
# inside the library itself. A protobuf-c source tree built with the fuzzer's
# instrumentation can be pointed at with BOK_FUZZ_PROTOBUF_C=<dir containing
# protobuf-c/protobuf-c.c> (e.g. unpacked by `apt-get source protobuf-c`).
PBC_DIR="${BOK_FUZZ_PROTOBUF_C:-/nonexistent}"
if [ -f "$PBC_DIR/protobuf-c/protobuf-c.c" ]; then
  PBC_INC="-I$PBC_DIR"
  PBC_SRC="$PBC_DIR/protobuf-c/protobuf-c.c"
  PBC_LIB=""
else
  PBC_INC=""
  PBC_SRC=""
  PBC_LIB="-lprotobuf-c"
fi
PROTOS="batch/v1/model.proto batch/v1/job.proto batch/v1/rows.proto grpc/health/v1/health.proto"
for p in $PROTOS; do
  if [ ! -f "$OUT/gen/${p%.proto}.pb-c.c" ] || [ "$REPO/proto/$p" -nt "$OUT/gen/${p%.proto}.pb-c.c" ]; then
    protoc-c --c_out="$OUT/gen" -I"$REPO/proto" "$REPO/proto/$p"
  fi
done

# ---- objects: each source compiled once per flag set, again when it or a header changed
NEWEST_H="$(ls -t "$REPO"/lib/include/bok/*.h "$REPO"/gateway/*.h | head -n 1)"
obj() { # obj SRC [EXTRA_FLAGS...] -> prints the object's path
  local src="$1"
  shift
  local o
  o="$OUT/obj/$(echo "${src#"$REPO"/}" | tr '/' '_')-$(echo "$OBJFLAGS $*" | cksum | cut -d' ' -f1).o"
  if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ "$NEWEST_H" -nt "$o" ]; then
    clang $OBJFLAGS "$@" -c -o "$o" "$src"
  fi
  echo "$o"
}
H2O_CFLAGS="$(pkg-config --cflags libh2o-evloop)"
CORE=""
for s in "$REPO"/lib/rows/*.c "$REPO"/lib/base/buf.c; do # every rows-library file but the
  [ "$(basename "$s")" = reject.c ] && continue             # protobuf rejection builder
  CORE="$CORE $(obj "$s")"
done
GW="$(obj "$REPO/gateway/multipart.c") $(obj "$REPO/gateway/route.c") $(obj "$REPO/gateway/body_pages.c" $H2O_CFLAGS)"
GW="$GW $(obj "$REPO/lib/base/util.c") $(obj "$REPO/lib/base/buf.c")"
PROTO_OBJS="$(obj "$REPO/lib/base/arena.c") $(obj "$REPO/lib/rows/csv.c") $(obj "$REPO/lib/base/buf.c")"
for p in $PROTOS; do PROTO_OBJS="$PROTO_OBJS $(obj "$OUT/gen/${p%.proto}.pb-c.c" $PBC_INC)"; done
# protobuf-c 1.4.1 itself has undefined behaviour on malformed input that
# UBSan stops at at once (NULL + 0 in protobuf_c_message_unpack, 127 << 25 in
# parse_tag; docs/SECURITY.md): third-party, so there only ASan checks.
[ -n "$PBC_SRC" ] && PROTO_OBJS="$PROTO_OBJS $(obj "$PBC_SRC" $PBC_INC -fno-sanitize=undefined)"

build() { # build TARGET
  local t="$1" h="$HERE/fuzz_$1.c"
  case "$t" in
    csv | ndjson | schema | validator | detect)
      clang $CFLAGS -o "$OUT/fuzz_$t" "$h" $CORE -ljansson -lm ;;
    multipart | route)
      clang $CFLAGS -o "$OUT/fuzz_$t" "$h" $GW -luuid $(pkg-config --libs libh2o-evloop) ;;
    proto)
      clang $CFLAGS $PBC_INC -o "$OUT/fuzz_$t" "$h" $PROTO_OBJS $PBC_LIB ;;
    *) echo "fuzz: unknown target $t (targets: $ALL)" >&2; return 1 ;;
  esac
}
for t in $TARGETS; do build "$t"; done

# ---- runs ---------------------------------------------------------------------
# final_stat NAME LOG -> the value of libFuzzer's final "stat::NAME: V" line
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
failed=""
printf 'fuzz: %-10s %12s %8s %6s %7s %s\n' target executions exec/s cov ft result
# dict TARGET -> the libFuzzer dictionary of the target (tests/fuzz/dict/), if any
dict() {
  case "$1" in
    csv | detect) echo "-dict=$HERE/dict/csv.dict" ;;
    ndjson | schema | validator) echo "-dict=$HERE/dict/json.dict" ;;
    multipart | route) echo "-dict=$HERE/dict/$1.dict" ;;
  esac
}
# run_one TARGET: fuzzes one target for SECS, leaving its exit status in
# $OUT/logs/TARGET.rc (several may run at once: each has its own work corpus,
# log and artifact prefix).
run_one() {
  local t="$1" seeds="$HERE/corpus/$1" work="$OUT/corpus/$1" log="$OUT/logs/$1.log" rc=0
  mkdir -p "$seeds" "$work"
  if [ "$SECS" = 0 ]; then
    : >"$log" # 0 s: no run (merge only)
  else
    (cd "$OUT" && ./fuzz_$t -max_total_time="$SECS" -max_len="$MAXLEN" -timeout=10 -rss_limit_mb=2048 $(dict "$t") \
       -print_final_stats=1 -artifact_prefix="$OUT/crashes/$t-" "$work" "$seeds") >"$log" 2>&1 || rc=$?
  fi
  echo "$rc" >"$OUT/logs/$t.rc"
}
# FUZZ_JOBS targets run at once (default 1: one after the other).
JOBS="${FUZZ_JOBS:-1}"
case "$JOBS" in '' | *[!0-9]* | 0) echo "fuzz: FUZZ_JOBS must be a positive integer" >&2; exit 2 ;; esac
running=0
for t in $TARGETS; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
for t in $TARGETS; do
  log="$OUT/logs/$t.log" seeds="$HERE/corpus/$t" work="$OUT/corpus/$t"
  rc="$(cat "$OUT/logs/$t.rc" 2>/dev/null || echo 1)"
  cov="$(grep -Eo "cov: [0-9]+ ft: [0-9]+" "$log" | tail -n 1 || true)"
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc, see $log)"
    failed="$failed $t"
  fi
  printf 'fuzz: %-10s %12s %8s %6s %7s %s\n' "$t" "$(final_stat number_of_executed_units "$log")" \
    "$(final_stat average_exec_per_sec "$log")" "$(echo "$cov" | awk '{print $2}')" "$(echo "$cov" | awk '{print $4}')" "$result"
  if [ "$rc" -ne 0 ]; then grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5 >&2 || true; fi
  if [ "${BOK_FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    (cd "$OUT" && ./fuzz_$t -merge=1 -max_len="$MAXLEN" -timeout=10 "$seeds" "$work") >"$OUT/logs/$t.merge.log" 2>&1
    echo "fuzz: $t corpus: $(ls "$seeds" | wc -l) files, $(du -sb "$seeds" | cut -f1) bytes"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed; inputs in $OUT/crashes/" >&2
  exit 1
fi
echo "fuzz: no crash"
