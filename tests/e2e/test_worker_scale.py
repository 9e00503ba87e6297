"""A 200,000-row job with two workers, one killed with SIGKILL mid-job: the
job still finishes with success + errors = total, and every valid row is on
the events topic exactly once for a read_committed consumer."""
import collections
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}, "qty": {"type": "integer"}}, "required": ["event_id", "timestamp"]}
N = 200000


def make_csv():
    lines = ["event_id,timestamp,amount,qty"]
    for i in range(1, N + 1):
        bad = i % 50 == 0  # 2% invalid rows
        lines.append("ev%d,%d,%s,%d" % (i, 1700000000 + i % 100000, "oops" if bad else "%d.25" % (i % 1000), i % 7))
    return "\n".join(lines) + "\n"


def worker_rows(w):
    """Rows worker w processed: its last totals line. Stop it first for
    exact totals ("stopping: ..."): a running worker logs them only every
    5 s, and one that took over a job's last rows may not have yet."""
    with open(w.log_path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    n = 0
    for line in data.splitlines():
        if "rows_processed=" in line:
            n = int(line.split("rows_processed=")[1].split()[0])
    return n


def check_exactly_once(topic, j):
    """Every valid row of job j once on its events topic, for a read_committed reader."""
    events = e.kcat_consume(topic, read_committed=True, timeout=90, expect=j["success"])
    rows = collections.Counter(x["headers"]["row"] for x in events if x["headers"].get("job") == j["job_id"])
    dup = [r for r, c in rows.items() if c > 1]
    e.check(not dup, "duplicates on the events topic: %d rows, e.g. %s" % (len(dup), dup[:5]))
    e.check(len(rows) == j["success"], "every valid row exactly once: %d distinct vs %d" % (len(rows), j["success"]))


def upload_and_wait(s, done_at_least):
    """Uploads the N-row file; returns (model, job, progress) once at least
    done_at_least rows are counted (or after 120 s)."""
    st, m = s.http("POST", "/models", {"name": "scale", "schema": SCHEMA})
    st, j = s.upload(m["model_id"], "big.csv", make_csv(), timeout=300)
    e.check(st == 202 and j["total"] == N, "upload: %s %s" % (st, j))
    deadline = time.time() + 120
    while time.time() < deadline:
        st, cur = s.http("GET", "/jobs/" + j["job_id"])
        if cur["success"] + cur["errors"] >= done_at_least:
            break
        time.sleep(0.05)
    return m, j, cur


def test_sigkill_one_of_two_workers_mid_job():
    with e.Stack(workers=2) as s:
        # Both workers hold partitions before the upload: once (CI, 07:30 UTC
        # 2026-12-01) the first lane to join was assigned every partition and
        # the group's rebalance to the other seven lanes did not complete
        # until worker0 was killed.
        e.wait_group_settled(s.workers, s.rows_partitions())
        m, j, cur = upload_and_wait(s, N // 5)
        e.check(cur["success"] + cur["errors"] < N, "killed mid-job (progress %s)" % cur)
        s.workers[0].kill()  # SIGKILL
        j = s.wait_job(j["job_id"], timeout=240)
        e.check(j["state"] == "PARTIAL_SUCCESS", "finished: %s" % j)
        e.check(j["success"] + j["errors"] == N and j["errors"] == N // 50, "exact counters: %s" % j)
        # The killed worker's open transaction holds read_committed readers
        # back until the coordinator aborts it (transaction timeout 10 s).
        check_exactly_once(m["topic"], j)
        time.sleep(2)
        total = len(e.kcat_consume(m["topic"], read_committed=True, timeout=90))
        e.check(total == j["success"], "nothing beyond the valid rows: %d events for %d valid rows" % (total, j["success"]))
        s.workers[1].stop()
        e.check(worker_rows(s.workers[1]) > 0, "the surviving worker took over")


def test_rebalance_while_a_transaction_is_open():
    """A lane's transaction runs several full batches (kafka.txn_max_rows);
    a worker joining mid-job makes the group rebalance while transactions
    are open (one lane, which pauses 500 ms with its transaction open after
    every batch, BOK_FAULT worker.txn_open). The lane aborts it before its
    partitions go, so the new owners -- who start from the committed
    offsets -- and the old ones publish every valid row once, and the job's
    counters are exact. No express partitions: when a rebalance pauses the
    fetchers, librdkafka's ops make the express queue's length non-zero, and
    the lane commits (an express message seems to wait) just before the
    rebalance callback would meet the open transaction."""
    with e.Stack(workers=1, overrides={"worker": {"lanes": 1, "kafka.txn_max_rows": 20000, "kafka.txn_max_ms": 60000,
                                                  "kafka.express_partitions": 0},
                                       "job": {"kafka.express_partitions": 0}},
                 env={"worker": {"BOK_FAULT": "worker.txn_open:delay=500"}}) as s:
        m, j, cur = upload_and_wait(s, 1)
        e.check(cur["success"] + cur["errors"] < N // 2, "joined mid-job (progress %s)" % cur)
        s.add_worker()
        j = s.wait_job(j["job_id"], timeout=240)
        e.check(j["state"] == "PARTIAL_SUCCESS", "finished: %s" % j)
        e.check(j["success"] + j["errors"] == N and j["errors"] == N // 50, "exact counters: %s" % j)
        check_exactly_once(m["topic"], j)
        s.workers[1].stop()
        e.check(worker_rows(s.workers[1]) > 0, "the new worker took rows over")
        with open(s.workers[0].log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        e.check("rebalance during an open transaction" in log, "a rebalance met an open transaction (the case tested)")


if __name__ == "__main__":
    e.run_tests(globals())
