#!/usr/bin/env bash
# deploy/stack.sh up|down|status -- the whole local stack in the background:
# Kafka (KRaft), model service, job service, BOK_WORKERS workers (default 1), gateway.
# BOK_SKIP_KAFKA=1: leave the broker alone (use a running one; tests).
# BOK_KAFKA_NODES=3: a three-node Kafka cluster (deploy/kafka.sh; ports 9092,
# 9094, 9096); the services get its bootstrap list and create their topics with
# replication 3 and min.insync.replicas 2 (kafka.replication_factor,
# kafka.min_insync_replicas; docs/SCALING.md).
# Logs: .run/logs/<name>.log   pids: .run/pids/<name>.pid   data: .run/data
# Admin ports (/metrics, /healthz, /readyz): model 9101, job 9102, workers
# 9103, 9104, ... (each worker gets its own through BOK_METRICS_LISTEN).
# BOK_SHARDS=2: the two-shard layout of docs/SCALING.md -- a second model
# service (50061, admin 9111) and job service (50062, admin 9112) for the
# tenants routed to shard b (deploy/config/shards/: tenant_b), a second gateway
# on BOK_HTTP_PORT + 1; workers and gateways read deploy/config/shards/*.yaml.
# With it, BOK_WORKERS defaults to 3.
# Every service runs under deploy/supervise.sh: one that exits on its own is
# started again within a second. Workers get a stable worker id (host +
# name), so a restarted worker reuses its transactional id and fences the
# dead one's open transaction at once.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
BUILD="${BOK_BUILD_DIR:-$REPO/build}"
STATE="${BOK_STATE_DIR:-$REPO/.run}"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
HTTP_PORT="${BOK_HTTP_PORT:-8000}"
SHARDS="${BOK_SHARDS:-1}"
case "$SHARDS" in 1|2) ;; *) echo "stack: BOK_SHARDS must be 1 or 2" >&2; exit 2 ;; esac
if [ "$SHARDS" = 2 ]; then WORKERS="${BOK_WORKERS:-3}"; ROUTED=shards/; else WORKERS="${BOK_WORKERS:-1}"; ROUTED=; fi

# name binary config port(0 = none) metrics-address(- = none) [VAR=value ...]
SERVICES=(
  "model-service services/model/bok-model-service model-service.yaml 50051 127.0.0.1:9101"
  "job-service services/job/bok-job-service job-service.yaml 50052 127.0.0.1:9102"
)
if [ "$SHARDS" = 2 ]; then
  SERVICES+=(
    "model-service-b services/model/bok-model-service model-service.yaml 50061 127.0.0.1:9111 BOK_LISTEN=127.0.0.1:50061 BOK_DB=$STATE/data/models-b.db"
    "job-service-b services/job/bok-job-service job-service.yaml 50062 127.0.0.1:9112 BOK_LISTEN=127.0.0.1:50062 BOK_DB=$STATE/data/jobs-b.db BOK_MODEL_SERVICE=127.0.0.1:50061"
  )
fi
for ((w=0; w<WORKERS; w++)); do
  name=worker; [ "$w" -gt 0 ] && name="worker-$((w + 1))"
  SERVICES+=("$name services/worker/bok-worker ${ROUTED}worker.yaml 0 127.0.0.1:$((9103 + w))")
done
SERVICES+=("gateway gateway/bok-gateway ${ROUTED}gateway.yaml $HTTP_PORT -")
[ "$SHARDS" = 2 ] && SERVICES+=("gateway-2 gateway/bok-gateway shards/gateway.yaml $((HTTP_PORT + 1)) -")

alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

up() {
  mkdir -p "$LOGS" "$PIDS" "$STATE/data"
  [ -n "${BOK_SKIP_KAFKA:-}" ] || bash "$HERE/kafka.sh" start
  local kenv=()
  if [ "$(bash "$HERE/kafka.sh" nodes)" -gt 1 ]; then
    read -r rf isr <<<"$(bash "$HERE/kafka.sh" replication)"
    kenv=(BOK_KAFKA_BROKERS="$(bash "$HERE/kafka.sh" bootstrap)" BOK_KAFKA_REPLICATION_FACTOR="$rf"
          BOK_KAFKA_MIN_INSYNC_REPLICAS="$isr")
    echo "stack: Kafka cluster ${kenv[0]#*=} (replication $rf, min.insync.replicas $isr)"
  fi
  for s in "${SERVICES[@]}"; do
    read -r name bin cfg port maddr extra <<<"$s"
    if alive "$name"; then
      echo "stack: $name already running (pid $(cat "$PIDS/$name.pid"))"
      continue
    fi
    if [ ! -x "$BUILD/$bin" ]; then
      echo "stack: $name not built ($BUILD/$bin missing): skipped" >&2
      continue
    fi
    # exec: the background subshell becomes the service, holding no pipe of ours
    menv=(BOK_RPC_WORKER_TOKEN_FILE="$STATE/secrets/worker.token" "${kenv[@]}")
    [ "$maddr" != - ] && menv+=(BOK_METRICS_LISTEN="$maddr")
    [ "$name" = gateway ] && menv+=(BOK_LISTEN="0.0.0.0:$HTTP_PORT")
    [ "$name" = gateway-2 ] && menv+=(BOK_LISTEN="0.0.0.0:$((HTTP_PORT + 1))")
    case "$name" in worker*) menv+=(BOK_WORKER_ID="$(hostname -s 2>/dev/null || echo local)-$name") ;; esac
    menv+=(BOK_DB="$STATE/data/${name%%-*}s.db")
    read -r -a more <<<"${extra:-}"
    menv+=("${more[@]}")   # a shard's own address and database win
    (cd "$REPO" && export "${menv[@]}" && exec setsid bash "$HERE/supervise.sh" "$name" \
        "$BUILD/$bin" --config "$HERE/config/$cfg" >>"$LOGS/$name.log" 2>&1 </dev/null) &
    echo $! >"$PIDS/$name.pid"
    if [ "$port" != 0 ]; then
      for _ in $(seq 1 100); do port_open "$port" && break; alive "$name" || break; sleep 0.1; done
      if ! port_open "$port"; then
        echo "stack: $name did not start; last log lines:" >&2
        tail -n 20 "$LOGS/$name.log" >&2
        exit 1
      fi
    fi
    echo "stack: $name started (pid $(cat "$PIDS/$name.pid"))"
  done
  echo
  echo "API: http://localhost:$HTTP_PORT   (readiness: /readyz, metrics: /metrics)"
  [ "$SHARDS" = 2 ] && echo "API (second gateway): http://localhost:$((HTTP_PORT + 1)); tenant_b on shard b (50061/50062)"
  echo "Metrics (GET /metrics, /healthz, /readyz):"
  for s in "${SERVICES[@]}"; do
    read -r name _ _ _ maddr _ <<<"$s"
    [ "$maddr" != - ] && printf '  %-14s http://%s\n' "$name" "$maddr"
  done
  echo "Logs: $LOGS"
}

down() {
  for ((i=${#SERVICES[@]}-1; i>=0; i--)); do
    read -r name _ <<<"${SERVICES[$i]}"
    if alive "$name"; then
      pid="$(cat "$PIDS/$name.pid")"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      echo "stack: $name stopped"
    fi
    rm -f "$PIDS/$name.pid"
  done
  # services of an earlier `up` with more workers or shards
  for f in "$PIDS"/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stack: $(basename "$f" .pid) stopped"
    rm -f "$f"
  done
  [ -n "${BOK_SKIP_KAFKA:-}" ] || bash "$HERE/kafka.sh" stop
}

status() {
  bash "$HERE/kafka.sh" status || true
  for s in "${SERVICES[@]}"; do
    read -r name _ <<<"$s"
    if alive "$name"; then echo "stack: $name running (pid $(cat "$PIDS/$name.pid"))"; else echo "stack: $name not running"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
