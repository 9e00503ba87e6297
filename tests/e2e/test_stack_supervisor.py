"""`make up`'s stack restarts a process that dies (issue 11: workers that
exited stayed dead): deploy/stack.sh runs every service under
deploy/supervise.sh. The test starts the real stack in a private state dir
(skipped when the stack's fixed gRPC ports are taken, e.g. by a developer's
own `make up`; concurrent runs of it take turns), SIGKILLs the worker and the job service, and sees both come
back and serve; `down` stops everything, supervisors included."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import bok_e2e as e

SCRIPT = os.path.join(e.SRC, "deploy", "stack.sh")


def port_taken(p):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", p)) == 0


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


def wait_for(fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return None


def test_dead_services_come_back():
    # concurrent runs of this test (the load proof's lanes) take turns
    e.hold_fixed_ports((50051, 50052, 9101, 9102, 9103))
    for p in (50051, 50052, 9101, 9102, 9103):
        if port_taken(p):
            raise e.Skip("port %d is in use (a local stack is running)" % p)
    state = tempfile.mkdtemp(prefix="bok-stack-")
    http = e.free_port()
    env = dict(os.environ, BOK_STATE_DIR=state, BOK_HTTP_PORT=str(http), BOK_BUILD_DIR=e.BUILD, BOK_SKIP_KAFKA="1",
               BOK_KAFKA_BROKERS=e.kafka_bootstrap())
    run = lambda cmd: subprocess.run(["bash", SCRIPT, cmd], env=env, capture_output=True, text=True, timeout=180)
    r = run("up")
    try:
        e.check(r.returncode == 0, "stack up: %s %s" % (r.stdout, r.stderr))
        pids = os.path.join(state, "pids")
        for name in ("worker", "job-service"):
            sup = int(open(os.path.join(pids, name + ".pid")).read())
            kids = wait_for(lambda: children(sup), 10)
            e.check(kids, "%s runs under its supervisor" % name)
            os.kill(kids[0], signal.SIGKILL)
            again = wait_for(lambda: [k for k in children(sup) if k != kids[0]], 15)
            e.check(again, "%s was started again after SIGKILL" % name)
        e.check(wait_for(lambda: port_taken(50052), 20), "the job service listens again")
        st, body = e.http("http://127.0.0.1:%d" % http, "GET", "/models")
        e.check(st == 200, "the gateway serves: %s %s" % (st, body))
        log = open(os.path.join(state, "logs", "worker.log")).read()
        e.check("exited with status" in log and "restarting" in log, "the restart is logged")
    finally:
        d = run("down")
    e.check(d.returncode == 0, "down: %s %s" % (d.stdout, d.stderr))
    e.check(not port_taken(50052) and not port_taken(http), "everything stopped")


if __name__ == "__main__":
    e.run_tests(globals())
