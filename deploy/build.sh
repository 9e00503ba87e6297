#!/usr/bin/env bash
# Configures (once) and builds Batch-on-Kafka: what `make build` runs, and what
# the Docker image's build stage runs (deploy/docker/Dockerfile), so both build
# the same way.
#   deploy/build.sh [BUILD_DIR]      default: build
# Environment: BUILD_TYPE (default RelWithDebInfo), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
fi
cmake --build "$dir" -j "${JOBS:-$(nproc)}"
