#!/usr/bin/env bash
# deploy/kafka.sh start|stop|status|restart|fetch|bootstrap|pids|nodes|replication
#
# Real Apache Kafka brokers in KRaft mode on 127.0.0.1, for the local stack
# and the end-to-end tests: one node by default, or a cluster of
# BOK_KAFKA_NODES nodes (each a combined broker + controller; the
# controllers form one quorum). The broker and its classpath come from Maven
# Central through Maven into a cache outside the source tree. Java is the
# machine's.
#
#   BOK_KAFKA_NODES       nodes                 (default 1)
#   BOK_KAFKA_PORT        broker port of node 1 (default 9092); node i: + 2(i-1)
#   BOK_KAFKA_CTRL_PORT   controller port of node 1 (default BOK_KAFKA_PORT + 1); node i: + 2(i-1)
#   BOK_KAFKA_PORTS       "p1,p2,p3": broker ports, one per node (overrides the rule above)
#   BOK_KAFKA_CTRL_PORTS  "c1,c2,c3": controller ports, one per node
#   BOK_KAFKA_DIR         data, logs, pid       (default <repo>/.run/kafka; node i of a
#                                                cluster: <dir>/node-i)
#   BOK_KAFKA_REPLICATION replication factor of internal and auto-created topics
#                         (default min(nodes, 3)); min.insync.replicas is one less
#                         (at least 1, at most 2)
#   BOK_CACHE_DIR         jar cache             (default ~/.cache/batch-on-kafka)
#   BOK_KAFKA_HEAP        JVM heap per node     (default 1G)
#
# `bootstrap` prints the bootstrap list (host:port,...); `pids` prints
# "node pid" lines of the running nodes (tests kill one to simulate a crash);
# `nodes` prints the node count and `replication` "<factor> <min.insync>".
# Without BOK_KAFKA_NODES, a state dir holding a cluster keeps its size.
# The product's own topics take their replication from the services'
# kafka.replication_factor / kafka.min_insync_replicas (docs/CONFIG.md).
set -euo pipefail

KAFKA_VERSION=4.1.1
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PORT="${BOK_KAFKA_PORT:-9092}"
CTRL_PORT="${BOK_KAFKA_CTRL_PORT:-$((PORT + 1))}"
STATE="${BOK_KAFKA_DIR:-${BOK_STATE_DIR:-$REPO/.run}/kafka}"
# Without BOK_KAFKA_NODES, a state dir that holds a cluster (node-1, ...)
# keeps its size: `make down` stops what `BOK_KAFKA_NODES=3 make up` started.
if [ -z "${BOK_KAFKA_NODES:-}" ] && [ -d "$STATE/node-1" ]; then
  NODES="$(find "$STATE" -maxdepth 1 -name 'node-*' -type d | wc -l)"
else
  NODES="${BOK_KAFKA_NODES:-1}"
fi
CACHE="${BOK_CACHE_DIR:-$HOME/.cache/batch-on-kafka}/kafka-$KAFKA_VERSION"
HEAP="${BOK_KAFKA_HEAP:-1G}"
RF="${BOK_KAFKA_REPLICATION:-$(( NODES < 3 ? NODES : 3 ))}"
MIN_ISR=$(( RF - 1 )); [ "$MIN_ISR" -lt 1 ] && MIN_ISR=1; [ "$MIN_ISR" -gt 2 ] && MIN_ISR=2
IFS=, read -r -a PORT_LIST <<<"${BOK_KAFKA_PORTS:-}"
IFS=, read -r -a CTRL_LIST <<<"${BOK_KAFKA_CTRL_PORTS:-}"

log() { echo "kafka: $*"; }

# Per node i (1-based): broker port, controller port, state dir.
nport() { if [ -n "${PORT_LIST[$(($1 - 1))]:-}" ]; then echo "${PORT_LIST[$(($1 - 1))]}"; else echo $((PORT + 2 * ($1 - 1))); fi; }
ncport() { if [ -n "${CTRL_LIST[$(($1 - 1))]:-}" ]; then echo "${CTRL_LIST[$(($1 - 1))]}"; else echo $((CTRL_PORT + 2 * ($1 - 1))); fi; }
ndir() { if [ "$NODES" -eq 1 ]; then echo "$STATE"; else echo "$STATE/node-$1"; fi; }

bootstrap() {
  local out="" i
  for ((i = 1; i <= NODES; i++)); do out="$out${out:+,}127.0.0.1:$(nport "$i")"; done
  echo "$out"
}

voters() {
  local out="" i
  for ((i = 1; i <= NODES; i++)); do out="$out${out:+,}$i@127.0.0.1:$(ncport "$i")"; done
  echo "$out"
}

fetch() {
  if [ -f "$CACHE/.complete" ]; then return 0; fi
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE"
  mkdir -p "$CACHE"
  rm -rf "$CACHE/libs"
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$CACHE/libs" -DincludeScope=runtime -Dkafka.version="$KAFKA_VERSION"
  ls "$CACHE/libs/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
  touch "$CACHE/.complete"
}

running_pid() {
  local f
  f="$(ndir "$1")/kafka.pid"
  [ -f "$f" ] || return 1
  local pid
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Node i answers a metadata request (a cluster: and lists every node).
metadata_ok() {
  local md
  md="$(kcat -L -b "127.0.0.1:$(nport "$1")" -m 3 2>/dev/null)" || return 1
  [ "$NODES" -eq 1 ] || grep -q "^ *$NODES brokers:" <<<"$md"
}

java_cmd() {
  java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
       -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
       -cp "$CACHE/libs/*" "$@"
}

write_config() {
  local i="$1" dir port cport quorum
  dir="$(ndir "$i")"; port="$(nport "$i")"; cport="$(ncport "$i")"
  if [ "$NODES" -eq 1 ]; then quorum="controller.quorum.bootstrap.servers=127.0.0.1:$cport"
  else quorum="controller.quorum.voters=$(voters)"; fi
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
$quorum
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=8
auto.create.topics.enable=true
default.replication.factor=$RF
min.insync.replicas=$MIN_ISR
offsets.topic.replication.factor=$RF
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$RF
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$RF
share.coordinator.state.topic.min.isr=$MIN_ISR
group.initial.rebalance.delay.ms=0
log.retention.hours=24
# How often the broker deletes segments past retention (Kafka's default is 5 min;
# tests shorten it to prove events with old timestamps survive a check).
log.retention.check.interval.ms=${BOK_KAFKA_RETENTION_CHECK_MS:-300000}
log.segment.bytes=268435456
message.max.bytes=16777216
num.network.threads=2
num.io.threads=4
PROPS
}

# Formats the node's storage once. A cluster shares one cluster id (kept in
# $STATE/cluster.id) and a static quorum of every node's controller.
format_node() {
  local i="$1" dir id
  dir="$(ndir "$i")"
  [ -f "$dir/data/meta.properties" ] && return 0
  log "formatting KRaft storage in $dir/data"
  if [ "$NODES" -eq 1 ]; then
    java_cmd kafka.tools.StorageTool format --standalone -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; return 1; }
  else
    [ -f "$STATE/cluster.id" ] || java_cmd kafka.tools.StorageTool random-uuid >"$STATE/cluster.id"
    id="$(cat "$STATE/cluster.id")"
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; return 1; }
  fi
}

launch_node() {
  local i="$1" dir
  dir="$(ndir "$i")"
  log "starting node $i on 127.0.0.1:$(nport "$i") (logs: $dir/kafka.log)"
  # Every partition keeps its segment files open: the test suites' unique
  # topics (thousands of partitions when several suites share this broker)
  # passed a 20,000-descriptor limit and the broker died ("Too many open
  # files"). Raise the limit as far as allowed (root: up to fs.nr_open).
  setsid nohup bash -c "ulimit -n 262144 2>/dev/null || ulimit -n \$(ulimit -Hn) 2>/dev/null; exec java -Xms256m -Xmx$HEAP -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile='$HERE/kafka/log4j2.properties' -cp '$CACHE/libs/*' \
      kafka.Kafka '$dir/server.properties'" >"$dir/kafka.log" 2>&1 < /dev/null &
  echo $! > "$dir/kafka.pid"
}

start() {
  local i pid port todo=() wait_s=$(( NODES == 1 ? 90 : 240 ))
  for ((i = 1; i <= NODES; i++)); do
    port="$(nport "$i")"
    if pid="$(running_pid "$i")"; then
      log "node $i already running (pid $pid) on 127.0.0.1:$port"
      continue
    fi
    if port_open "$port"; then
      if [ "$NODES" -eq 1 ] && metadata_ok "$i"; then
        log "a broker already answers on 127.0.0.1:$port; using it"
        return 0
      fi
      log "port $port is taken by something that is not our Kafka node $i" >&2
      return 1
    fi
    todo+=("$i")
  done
  if [ "${#todo[@]}" -gt 0 ]; then
    command -v java >/dev/null || { log "java not found (run make deps)" >&2; return 1; }
    fetch
    mkdir -p "$STATE"
    for i in "${todo[@]}"; do write_config "$i"; done
    # One JVM per format: in parallel (a loaded machine took minutes for
    # three in a row); the cluster id is made once, before them.
    if [ "$NODES" -gt 1 ] && [ ! -f "$STATE/cluster.id" ]; then
      java_cmd kafka.tools.StorageTool random-uuid >"$STATE/cluster.id"
    fi
    local fpids=() bad=0
    for i in "${todo[@]}"; do format_node "$i" & fpids+=($!); done
    for pid in "${fpids[@]}"; do wait "$pid" || bad=1; done
    [ "$bad" -eq 0 ] || return 1
    for i in "${todo[@]}"; do launch_node "$i"; done
  fi
  local deadline=$((SECONDS + wait_s))
  for ((i = 1; i <= NODES; i++)); do
    until metadata_ok "$i"; do
      if ! running_pid "$i" >/dev/null; then
        log "node $i exited during start-up; last log lines:" >&2
        tail -n 30 "$(ndir "$i")/kafka.log" >&2
        return 1
      fi
      if [ $SECONDS -ge $deadline ]; then
        log "node $i did not answer a metadata request (listing $NODES brokers) within $wait_s s; last log lines:" >&2
        tail -n 30 "$(ndir "$i")/kafka.log" >&2
        return 1
      fi
      sleep 0.5
    done
  done
  if [ "$NODES" -eq 1 ]; then
    log "ready on 127.0.0.1:$PORT (pid $(running_pid 1))"
  else
    log "cluster of $NODES nodes ready: $(bootstrap) (replication $RF, min.insync.replicas $MIN_ISR)"
  fi
}

stop_node() {
  local i="$1" pid
  if ! pid="$(running_pid "$i")"; then
    rm -f "$(ndir "$i")/kafka.pid"
    return 0
  fi
  log "stopping node $i (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "node $i still running after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(ndir "$i")/kafka.pid"
}

stop() {
  local i pid pids=()
  for ((i = 1; i <= NODES; i++)); do
    if pid="$(running_pid "$i")"; then pids+=("$pid"); log "stopping node $i (pid $pid)"; fi
  done
  if [ "${#pids[@]}" -eq 0 ]; then
    log "not running"
  else
    # Every node at once: a controller stopped after the others has no
    # quorum left and would wait out its controlled shutdown.
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 60); do
      local left=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
      [ "$left" -eq 0 ] && break
      sleep 0.5
    done
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still running after 30 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    log "stopped"
  fi
  for ((i = 1; i <= NODES; i++)); do rm -f "$(ndir "$i")/kafka.pid"; done
}

status() {
  local i pid rc=0
  for ((i = 1; i <= NODES; i++)); do
    if pid="$(running_pid "$i")" && metadata_ok "$i"; then
      log "node $i running (pid $pid) on 127.0.0.1:$(nport "$i")"
    else
      log "node $i not running"
      rc=1
    fi
  done
  return $rc
}

pids() {
  local i pid
  for ((i = 1; i <= NODES; i++)); do pid="$(running_pid "$i")" && echo "$i $pid"; done
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  fetch) fetch ;;
  bootstrap) bootstrap ;;
  nodes) echo "$NODES" ;;
  replication) echo "$RF $MIN_ISR" ;;
  pids) pids ;;
  *) echo "usage: $0 start|stop|status|restart|fetch|bootstrap|pids|nodes|replication" >&2; exit 2 ;;
esac
