"""The crash matrix (issue 11, docs/GUARANTEES.md): every named fault point
of the worker and the job service, hit while a job with valid and invalid
rows runs on two workers. After the crashed process is started again:

- counters are exact (total, success, errors);
- the job reaches its final state only when every event it counts is
  committed: right after it turns final, a read_committed consumer reads
  them all;
- every valid row's event is on the events topic exactly once, and nothing
  else of the job is;
- no other process died on the way.

Fault points are compiled into every binary and inert unless BOK_FAULT names
them (lib/include/bok/fault.h). Event times span 1970 .. 2038."""
import collections
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}, "qty": {"type": "integer"}}, "required": ["event_id", "timestamp"]}
N = 6000
BAD_EVERY = 9
# Small rows-topic messages and worker transactions: many messages on every
# partition and many commits per job, so each lane of each worker (4 lanes by
# default) has work and faults land mid-job. The job service's cases count
# reports and confirms (job.report:kill@3): one batch per transaction, or
# under load a lane's transaction took its whole share and the fault point
# was never reached. The worker's cases run transactions of two batches, so
# a worker dies inside a transaction of several batches (the default's kind).
WORKER_OV = {"kafka.batch_max_rows": 300, "kafka.txn_max_rows": 300}
JOB_OV = {"kafka.batch_rows": 100}
OV = {"worker": WORKER_OV, "job": JOB_OV}
WORKER_CASE_OV = {"worker": dict(WORKER_OV, **{"kafka.txn_max_rows": 600}), "job": JOB_OV}


def make_csv(n=N):
    lines = ["event_id,timestamp,amount,qty"]
    for i in range(1, n + 1):
        ts = (i * 2654435761) % 2147483647  # 1970 .. 2038
        bad = i % BAD_EVERY == 0
        lines.append("c%d,%d,%s,%d" % (i, ts, "x" if bad else "%d.5" % (i % 997), i % 7))
    return "\n".join(lines) + "\n"


WANT_ERR = N // BAD_EVERY
WANT_OK = N - WANT_ERR


def check_exactly_once(s, topic, job_id, want_ok, want_err, timeout=180):
    j = s.wait_job(job_id, timeout=timeout)
    e.check(j["state"] == "PARTIAL_SUCCESS" and j["total"] == want_ok + want_err and j["success"] == want_ok
            and j["errors"] == want_err, "exact counters: %s" % j)
    # Final only when committed: everything is readable right away (the
    # timeout covers the read, not a commit still to come).
    events = e.kcat_consume(topic, read_committed=True, timeout=20, expect=want_ok)
    rows = collections.Counter(x["headers"].get("row") for x in events if x["headers"].get("job") == job_id)
    dup = [r for r, c in rows.items() if c > 1]
    e.check(not dup, "duplicates: %d rows, e.g. %s" % (len(dup), dup[:5]))
    e.check(len(rows) == want_ok, "events readable when the job is final: %d of %d" % (len(rows), want_ok))
    time.sleep(1)
    again = [x for x in e.kcat_consume(topic, read_committed=True, timeout=30) if x["headers"].get("job") == job_id]
    e.check(len(again) == want_ok, "nothing beyond the valid rows: %d events for %d valid rows" % (len(again), want_ok))
    return j


def wait_dead(svc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if svc.died() is not None:
            return True
        time.sleep(0.1)
    return False


def create_model(s):
    st, m = s.http("POST", "/models", {"name": "crash", "schema": SCHEMA})
    e.check(st == 201, "model: %s %s" % (st, m))
    return m


def worker_case(fault):
    """worker0 carries the fault; it dies at it, comes back 1 s later with the
    same worker id (same transactional id: the old epoch is fenced)."""
    with e.Stack(workers=0, overrides=WORKER_CASE_OV) as s:
        w0 = s.add_worker(start=False)
        w0.env["BOK_FAULT"] = fault
        w0.start()
        w1 = s.add_worker()
        # worker0 must take part: under load it can join after worker1 has
        # done the whole job (seen in the e2e loop), so wait for the group.
        e.wait_group_settled([w0, w1], s.rows_partitions())
        m = create_model(s)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st == 202, "upload: %s %s" % (st, j))
        e.check(wait_dead(w0), "worker0 never reached the fault point %s:\n%s" % (fault, w0.log_tail()))
        time.sleep(1)
        w0.env.pop("BOK_FAULT")
        w0.start()
        check_exactly_once(s, m["topic"], j["job_id"], WANT_OK, WANT_ERR)
        e.check(w1.died() is None and w0.died() is None, "workers alive: w0 %s w1 %s" % (w0.died(), w1.died()))


def test_worker_killed_after_produce():
    worker_case("worker.after_produce:kill@2")


def test_worker_killed_after_report():
    worker_case("worker.after_report:kill@2")


def test_worker_killed_after_send_offsets():
    worker_case("worker.after_send_offsets:kill@2")


def test_worker_killed_inside_commit():
    worker_case("worker.commit:killafter=3@2")


def test_worker_killed_after_commit_before_confirm():
    # The job service never hears the confirmation: it counts the staged
    # results once the group's committed offsets pass their messages.
    worker_case("worker.after_commit:kill@2")


def job_restart(s, delay=1.0):
    job = s["job"]
    e.check(wait_dead(job), "the job service never reached its fault point:\n%s" % job.log_tail())
    time.sleep(delay)
    job.env.pop("BOK_FAULT", None)
    job.start()


def upload_lost_case(fault):
    """The job service dies before the rows are committed: the upload fails,
    the job is FAILED after the restart, no event of it exists, and the same
    file uploaded again is processed exactly once."""
    with e.Stack(workers=2, overrides=OV, env={"job": {"BOK_FAULT": fault}}) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st >= 500, "the upload fails with the job service: %s %s" % (st, j))
        job_restart(s)
        st, jobs = s.http("GET", "/jobs")
        e.check(st == 200 and len(jobs) == 1, "one job: %s" % jobs)
        lost = s.wait_job(jobs[0]["job_id"], timeout=30)
        e.check(lost["state"] == "FAILED" and lost["success"] == 0 and "interrupted" in lost["error"],
                "the interrupted upload is FAILED: %s" % lost)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st == 202, "upload again: %s %s" % (st, j))
        check_exactly_once(s, m["topic"], j["job_id"], WANT_OK, WANT_ERR)
        stray = [x for x in e.kcat_consume(m["topic"], timeout=20) if x["headers"].get("job") == lost["job_id"]]
        e.check(not stray, "no event of the failed upload: %d" % len(stray))


def test_job_service_killed_mid_upload():
    upload_lost_case("job.mid_upload:kill")


def test_job_service_killed_before_storing_messages():
    upload_lost_case("job.before_store:kill")


def test_job_service_killed_after_rows_commit():
    """Rows committed, outcome never stored: the restarted service settles
    the upload from Kafka and the job completes exactly."""
    with e.Stack(workers=2, overrides=OV, env={"job": {"BOK_FAULT": "job.after_rows_commit:kill"}}) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st >= 500, "the upload's answer is lost with the job service: %s %s" % (st, j))
        job_restart(s)
        st, jobs = s.http("GET", "/jobs")
        e.check(st == 200 and len(jobs) == 1, "one job: %s" % jobs)
        check_exactly_once(s, m["topic"], jobs[0]["job_id"], WANT_OK, WANT_ERR)


def job_mid_job_case(fault):
    with e.Stack(workers=2, overrides=OV, env={"job": {"BOK_FAULT": fault}}) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st == 202, "upload: %s %s" % (st, j))
        job_restart(s, delay=5.0)  # workers see the job service gone for 5 s
        check_exactly_once(s, m["topic"], j["job_id"], WANT_OK, WANT_ERR)
        e.check(all(w.died() is None for w in s.workers), "no worker exited: %s" % [w.died() for w in s.workers])


def test_job_service_killed_during_report():
    job_mid_job_case("job.report:kill@3")


def test_job_service_killed_after_confirm():
    job_mid_job_case("job.confirm:kill@2")


def test_header_stored_before_rows_are_visible():
    """Regression (issue 11, bug 2): the header used to be stored after the
    rows were committed, so a fast worker fetched an empty header and
    rejected every row as MALFORMED_ROW. A pause right after the commit
    makes that interleaving certain."""
    with e.Stack(workers=1, env={"job": {"BOK_FAULT": "job.after_rows_commit:delay=3000"}}) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "small.csv", make_csv(50))
        e.check(st == 202, "upload: %s %s" % (st, j))
        check_exactly_once(s, m["topic"], j["job_id"], 50 - 50 // BAD_EVERY, 50 // BAD_EVERY, timeout=60)


def test_slow_job_service():
    """Every report takes 1.5 s: slower, never wrong."""
    with e.Stack(workers=2, overrides=OV, env={"job": {"BOK_FAULT": "job.report:delay=1500"}}) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st == 202, "upload: %s %s" % (st, j))
        check_exactly_once(s, m["topic"], j["job_id"], WANT_OK, WANT_ERR)


def test_slow_rpcs_everywhere():
    """Every gRPC call served takes 200 ms more and every worker call 300 ms
    more (the RPC delay injector): slower, never wrong."""
    with e.Stack(workers=0, overrides=OV, env={"job": {"BOK_FAULT": "rpc.server:delay=200"}}) as s:
        for _ in range(2):
            w = s.add_worker(start=False)
            w.env["BOK_FAULT"] = "rpc.client:delay=300"
            w.start()
        m = create_model(s)
        st, j = s.upload(m["model_id"], "crash.csv", make_csv())
        e.check(st == 202, "upload: %s %s" % (st, j))
        check_exactly_once(s, m["topic"], j["job_id"], WANT_OK, WANT_ERR)


if __name__ == "__main__":
    e.run_tests(globals())
