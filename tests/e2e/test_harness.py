"""The harness's own promises, which every other end-to-end test leans on.

Found by the load proof of issue 11 (five copies of the suite at once): a
test's gateway port, picked with bind(0), was taken meanwhile by a process of
another run; the gateway could not listen, but the harness connected to the
*other* process on that port, called the stack ready, and the test failed on
an HTTP request answered in another protocol. Two fixes, each tested here:
ports come from below the kernel's ephemeral range with a machine-wide
reservation, and a service is ready only when it holds the listening socket
itself.

Found by the next proof: every stack's uniquely named topics stayed on the
shared broker; after about six suites it had 20,000 files open and died of
"Too many open files". A test process now deletes its stacks' topics when it exits."""
import os
import socket
import subprocess
import sys

import bok_e2e as e

CHILD = r"""
import sys
sys.path.insert(0, %r)
import bok_e2e as e
print(" ".join(str(e.free_port()) for _ in range(%d)), flush=True)
sys.stdin.read()   # hold the reservations until the parent has read both lists
"""


def test_ports_are_outside_the_ephemeral_range_and_never_shared_between_runs():
    n = 300
    here = os.path.dirname(os.path.abspath(__file__))
    kids = [subprocess.Popen([sys.executable, "-c", CHILD % (here, n)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        lists = [[int(p) for p in k.stdout.readline().split()] for k in kids]
    finally:
        for k in kids:
            k.stdin.close()
            k.wait(timeout=30)
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph_lo, eph_hi = (int(x) for x in f.read().split())
    for ports in lists:
        e.check(len(ports) == n and len(set(ports)) == n, "a run got the same port twice: %d distinct of %d"
                % (len(set(ports)), len(ports)))
        inside = [p for p in ports if eph_lo <= p <= eph_hi]
        e.check(not inside, "ports in the kernel's ephemeral range %d-%d, which any process may take: %s"
                % (eph_lo, eph_hi, inside[:5]))
    both = set(lists[0]) & set(lists[1])
    e.check(not both, "two concurrent runs were given the same ports: %s" % sorted(both)[:5])


def test_a_service_is_not_ready_while_another_process_holds_its_port():
    port = e.free_port()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen(16)
    workdir = e.tempfile.mkdtemp(prefix="bok-e2e-")
    gw = e.Service("gateway", workdir, {"listen": "127.0.0.1:%d" % port,
                                        "routes": {"default": {"model": "127.0.0.1:1", "job": "127.0.0.1:1"}}},
                   port=port)
    try:
        try:
            gw.start()
        except e.Failure as err:
            e.check("did not start listening" in str(err), "unexpected failure: %s" % err)
            e.check("cannot listen" in gw.log_tail(), "the gateway did not say why:\n%s" % gw.log_tail())
        else:
            raise e.Failure("the harness called the gateway ready on port %d, where another process listens "
                            "(gateway alive: %s)" % (port, gw.alive()))
    finally:
        gw.kill() if gw.alive() else None
        squatter.close()


def test_a_service_is_ready_when_it_listens_itself():
    port = e.free_port()
    workdir = e.tempfile.mkdtemp(prefix="bok-e2e-")
    gw = e.Service("gateway", workdir, {"listen": "127.0.0.1:%d" % port,
                                        "routes": {"default": {"model": "127.0.0.1:1", "job": "127.0.0.1:1"}}},
                   port=port)
    try:
        gw.start()
        e.check(e.listens_itself(gw.proc.pid, port), "the gateway does not hold port %d" % port)
        st, _ = e.http("http://127.0.0.1:%d" % port, "GET", "/healthz")
        e.check(st == 200, "/healthz: %s" % st)
    finally:
        gw.kill()


STACK_CHILD = r"""
import sys
sys.path.insert(0, %r)
import bok_e2e as e
import test_jobs
with e.Stack(workers=1) as s:
    m = test_jobs.create_model(s)
    st, j = s.upload(m["model_id"], "one.csv", "event_id,timestamp,amount\ne1,1700000000,1.5\n")
    e.check(st == 202, "upload: %%s %%s" %% (st, j))
    e.check(s.wait_job(j["job_id"])["state"] == "SUCCESS", "job did not succeed")
    topics = e.made_topics(s.dir, [s.rows_topic])
    e.check(len(topics) == 2, "topics: %%s" %% topics)
print(" ".join(topics), flush=True)
# The bench reads a stopped stack's events: they stay until the process exits.
events = e.kcat_consume(topics[1], expect=1)
e.check(len(events) == 1, "events after the stack stopped: %%s" %% events)
e.check(set(topics) <= e.kafka_topics(), "not on the broker before exit: %%s" %% topics)
"""


def test_a_test_process_deletes_its_stacks_topics_when_it_exits():
    e.skip_if_missing("model", "job", "worker", "gateway")
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", STACK_CHILD % here], capture_output=True, text=True, timeout=300)
    e.check(r.returncode == 0, "child:\n%s\n%s" % (r.stdout, r.stderr[-3000:]))
    mine = set(r.stdout.split())
    left = mine
    deadline = e.time.time() + 60
    while left and e.time.time() < deadline:
        left = mine & e.kafka_topics()
        e.time.sleep(0.5)
    e.check(not left, "still on the broker 60 s after the test process ended: %s" % sorted(left))


if __name__ == "__main__":
    e.run_tests(globals())
