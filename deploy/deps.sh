#!/usr/bin/env bash
# Installs the Debian packages Batch-on-Kafka needs.
#   deploy/deps.sh            everything: build, run, test, fuzz, bench, local Kafka (`make deps`)
#   deploy/deps.sh --build    only what `deploy/build.sh` needs (the Docker build stage)
#   deploy/deps.sh --runtime  only the shared libraries the binaries load, plus curl for
#                             health checks and openssl for deploy/certs.sh (the Docker runtime stage)
# The lists below are the only copy: `make deps` and the Dockerfile both call this script.
# Idempotent and quick when everything is present (one dpkg-query, no apt).
set -euo pipefail

# Compilers, CMake and the -dev packages CMakeLists.txt looks for.
BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  librdkafka-dev libh2o-evloop-dev libyaml-dev libcmocka-dev libsqlite3-dev
  libjansson-dev libcurl4-openssl-dev uuid-dev libssl-dev zlib1g-dev libjemalloc-dev
)
# Tests, fuzzing, benchmarks and the local Kafka (make test / make up);
# docker-compose (v1) only parses the compose files in tests (`config`, no engine);
# chromium, its driver and selenium run the web console's browser test (test_console.py).
DEV_PKGS=(
  clang libclang-rt-14-dev
  python3 python3-grpcio python3-grpc-tools python3-yaml python3-jsonschema python3-venv
  default-jre-headless maven kcat wrk valgrind curl procps iproute2
  docker-compose openssl
  chromium chromium-driver python3-selenium
)
# What the binaries load at run time (the -dev packages above depend on these).
RUNTIME_PKGS=(
  libgrpc29 libprotobuf-c1 librdkafka1 libh2o-evloop0.13 libyaml-0-2 libsqlite3-0
  libjansson4 libcurl4 libuuid1 libssl3 zlib1g libjemalloc2
  curl ca-certificates openssl
)

case "${1:-}" in
  "") PKGS=("${BUILD_PKGS[@]}" "${DEV_PKGS[@]}") ;;
  --build) PKGS=("${BUILD_PKGS[@]}") ;;
  --runtime) PKGS=("${RUNTIME_PKGS[@]}") ;;
  *) echo "usage: $0 [--build|--runtime]" >&2; exit 2 ;;
esac

# schemathesis (PyPI, pinned) for tests/e2e/test_schemathesis.py, in its own
# venv under the cache dir so Debian's Python stays as the packages left it.
# Best effort: without PyPI that test is skipped and says why.
ST_VERSION=4.32.5
ST_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/batch-on-kafka/schemathesis-venv"
install_schemathesis() {
  if "$ST_VENV/bin/st" --version 2>/dev/null | grep -q "version $ST_VERSION\$"; then return 0; fi
  echo "deps: installing schemathesis $ST_VERSION into $ST_VENV"
  if ! { /usr/bin/python3 -m venv "$ST_VENV" && "$ST_VENV/bin/pip" install -q "schemathesis==$ST_VERSION"; }; then
    echo "deps: schemathesis not installed (PyPI unreachable?); tests/e2e/test_schemathesis.py will be skipped" >&2
  fi
}

missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for p in "${PKGS[@]}"; do
  grep -qx "$p installed" <<<"$status" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  [ -n "${1:-}" ] || install_schemathesis
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
[ -n "${1:-}" ] || install_schemathesis
