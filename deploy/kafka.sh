#!/usr/bin/env bash
# deploy/kafka.sh start|stop|status|restart
#
# A real single-node Apache Kafka broker in KRaft mode (combined broker +
# controller) on 127.0.0.1, for the local stack and the end-to-end tests.
# The broker and its classpath come from Maven Central through Maven into a
# cache outside the source tree. Java is the machine's.
#
#   BOK_KAFKA_PORT        broker port           (default 9092)
#   BOK_KAFKA_CTRL_PORT   controller port       (default BOK_KAFKA_PORT + 1)
#   BOK_KAFKA_DIR         data, logs, pid       (default <repo>/.run/kafka)
#   BOK_CACHE_DIR         jar cache             (default ~/.cache/batch-on-kafka)
#   BOK_KAFKA_HEAP        JVM heap              (default 1G)
set -euo pipefail

KAFKA_VERSION=4.1.1
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PORT="${BOK_KAFKA_PORT:-9092}"
CTRL_PORT="${BOK_KAFKA_CTRL_PORT:-$((PORT + 1))}"
STATE="${BOK_KAFKA_DIR:-${BOK_STATE_DIR:-$REPO/.run}/kafka}"
CACHE="${BOK_CACHE_DIR:-$HOME/.cache/batch-on-kafka}/kafka-$KAFKA_VERSION"
PIDFILE="$STATE/kafka.pid"
LOG="$STATE/kafka.log"
HEAP="${BOK_KAFKA_HEAP:-1G}"

log() { echo "kafka: $*"; }

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
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

metadata_ok() { kcat -L -b "127.0.0.1:$PORT" -m 3 >/dev/null 2>&1; }

java_cmd() {
  java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
       -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
       -cp "$CACHE/libs/*" "$@"
}

write_config() {
  mkdir -p "$STATE/data"
  cat > "$STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$STATE/data
num.partitions=8
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
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

start() {
  local pid
  if pid="$(running_pid)"; then
    if metadata_ok; then
      log "already running (pid $pid) on 127.0.0.1:$PORT"
      return 0
    fi
  fi
  if port_open "$PORT"; then
    if metadata_ok; then
      log "a broker already answers on 127.0.0.1:$PORT; using it"
      return 0
    fi
    log "port $PORT is taken by something that is not a Kafka broker" >&2
    return 1
  fi
  command -v java >/dev/null || { log "java not found (run make deps)" >&2; return 1; }
  fetch
  write_config
  if [ ! -f "$STATE/data/meta.properties" ]; then
    log "formatting KRaft storage in $STATE/data"
    java_cmd kafka.tools.StorageTool format --standalone -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
      -c "$STATE/server.properties" >"$STATE/format.log" 2>&1 || { cat "$STATE/format.log" >&2; return 1; }
  fi
  log "starting broker on 127.0.0.1:$PORT (logs: $LOG)"
  setsid nohup bash -c "exec java -Xms256m -Xmx$HEAP -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile='$HERE/kafka/log4j2.properties' -cp '$CACHE/libs/*' \
      kafka.Kafka '$STATE/server.properties'" >"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  local deadline=$((SECONDS + 90))
  until metadata_ok; do
    if ! running_pid >/dev/null; then
      log "broker exited during start-up; last log lines:" >&2
      tail -n 30 "$LOG" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "broker did not answer a metadata request within 90 s; last log lines:" >&2
      tail -n 30 "$LOG" >&2
      return 1
    fi
    sleep 0.5
  done
  log "ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

status() {
  local pid
  if pid="$(running_pid)" && metadata_ok; then
    log "running (pid $pid) on 127.0.0.1:$PORT"
  else
    log "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  fetch) fetch ;;
  *) echo "usage: $0 start|stop|status|restart|fetch" >&2; exit 2 ;;
esac
