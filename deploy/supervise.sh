#!/usr/bin/env bash
# deploy/supervise.sh NAME CMD [ARGS...] -- keeps one service of the local
# stack running: starts CMD, and when it exits on its own (a crash, a fatal
# error, SIGKILL by the OOM killer or a test) starts it again after 1 s.
# SIGTERM/SIGINT to the supervisor stop the service (SIGTERM) and the
# supervisor; deploy/stack.sh stores the supervisor's pid. Restarts are logged
# to the service's log (stderr) with the exit status.
set -u
name="$1"; shift
child=0
stopping=0
on_stop() {
  stopping=1
  [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null
}
trap on_stop TERM INT
while :; do
  "$@" &
  child=$!
  wait "$child"; rc=$?
  # a trapped signal interrupts wait: wait again for the service's own exit
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  [ "$stopping" = 1 ] && exit 0
  echo "ts=$(date -u +%Y-%m-%dT%H:%M:%S.000Z) level=warn component=supervisor msg=\"$name exited with status $rc: restarting in 1 s\"" >&2
  sleep 1
  [ "$stopping" = 1 ] && exit 0
done
