#!/usr/bin/env bash
# Installs the Debian packages Batch-on-Kafka needs to build, run and test.
# Idempotent and quick when everything is present (one dpkg-query, no apt).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  librdkafka-dev libh2o-evloop-dev libyaml-dev libcmocka-dev libsqlite3-dev
  libjansson-dev libcurl4-openssl-dev uuid-dev libssl-dev zlib1g-dev libjemalloc-dev
  python3 python3-grpcio python3-grpc-tools python3-yaml python3-jsonschema
  default-jre-headless maven kcat wrk valgrind curl procps iproute2
)

missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for p in "${PKGS[@]}"; do
  grep -qx "$p installed" <<<"$status" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
