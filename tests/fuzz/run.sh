#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] -- builds the libFuzzer harnesses with clang
# (ASan + UBSan) and runs each for SECONDS (default 60). Corpora persist in
# tests/fuzz/corpus-<name>/ (git-ignored); crashes are left as crash-* files
# and fail the run. Every crash found becomes a unit test.
set -euo pipefail
SECS="${1:-60}"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${BOK_FUZZ_BUILD:-$REPO/build-fuzz}"
mkdir -p "$OUT"
CFLAGS="-O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -std=gnu11 -I$REPO/lib/include"
SRCS="$(echo "$REPO"/lib/core/*.c) $REPO/lib/common/buf.c" # every data-core file: new ones are picked up
for h in csv ndjson schema; do
  clang $CFLAGS -o "$OUT/fuzz_$h" "$HERE/fuzz_$h.c" $SRCS -ljansson -lm
done
# body_pages.c reads h2o's temp-file template: link libh2o-evloop.
clang $CFLAGS -DH2O_USE_LIBUV=0 -I"$REPO/gateway" -o "$OUT/fuzz_gateway" "$HERE/fuzz_gateway.c" "$REPO/gateway/multipart.c" \
  "$REPO/gateway/route.c" "$REPO/gateway/body_pages.c" "$REPO/lib/common/util.c" "$REPO/lib/common/buf.c" -luuid \
  $(pkg-config --cflags --libs libh2o-evloop)
for h in csv ndjson schema gateway; do
  corpus="$HERE/corpus-$h"
  mkdir -p "$corpus"
  echo "fuzz: $h for ${SECS}s"
  (cd "$OUT" && ./fuzz_$h -max_total_time="$SECS" -max_len=4096 -timeout=10 -print_final_stats=0 "$corpus" \
     2>&1 | tail -n 3)
done
if ls "$OUT"/crash-* >/dev/null 2>&1; then
  echo "fuzz: crashes found: $(ls "$OUT"/crash-*)" >&2
  exit 1
fi
echo "fuzz: no crash"
