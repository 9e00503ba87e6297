"""Fairness (docs/FAIRNESS.md): a small job of one tenant does not queue
behind another tenant's big job. Tenant A uploads a big job; once the workers
are busy with it, tenant B uploads 10 rows: B's job finishes, with exact
counters, while A's job is still far from done.

BOK_FAIRNESS_ROWS sets A's size (default 400,000). BOK_FAIRNESS_EXPRESS=0
turns the express partitions off on both services (the old behaviour: this
test then fails, B waits behind A's rows)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "e2e"))
import bok_e2e as e  # noqa: E402
import run_bench as rb  # noqa: E402

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
          "required": ["id", "name"]}
BIG = int(os.environ.get("BOK_FAIRNESS_ROWS", "400000"))
EXPRESS = os.environ.get("BOK_FAIRNESS_EXPRESS")


def overrides():
    if EXPRESS is None:
        return {}
    return {"job": {"kafka.express_partitions": int(EXPRESS)}, "worker": {"kafka.express_partitions": int(EXPRESS)}}


def csv(n, bad_every=0):
    lines = ["id,name"] + ["%s,n%d" % ("x" if bad_every and i % bad_every == 0 else str(i), i)
                           for i in range(1, n + 1)]
    return "\n".join(lines) + "\n"


def done(j):
    return j.get("success", 0) + j.get("errors", 0)


def test_small_job_of_another_tenant_does_not_wait_for_a_big_job():
    with e.Stack(workers=1, overrides=overrides()) as s:
        rb.wait_assigned(s, 8, timeout=60)
        st, ma = s.http("POST", "/models", {"name": "big", "schema": SCHEMA}, tenant="tenant-a")
        e.check(st == 201, "model A: %s %s" % (st, ma))
        st, mb = s.http("POST", "/models", {"name": "small", "schema": SCHEMA}, tenant="tenant-b")
        e.check(st == 201, "model B: %s %s" % (st, mb))
        st, ja = s.upload(ma["model_id"], "big.csv", csv(BIG, 1000), tenant="tenant-a", timeout=300)
        e.check(st == 202, "upload A: %s %s" % (st, ja))
        # until the workers are busy with A's rows
        deadline = time.time() + 120
        a = ja
        while time.time() < deadline:
            st, a = s.http("GET", "/jobs/" + ja["job_id"], tenant="tenant-a")
            if done(a) > 0:
                break
            time.sleep(0.05)
        e.check(0 < done(a) < BIG // 4, "A is being processed, far from done: %s" % a)
        t0 = time.time()
        st, jb = s.upload(mb["model_id"], "small.csv", csv(10), tenant="tenant-b")
        e.check(st == 202, "upload B: %s %s" % (st, jb))
        b = s.wait_job(jb["job_id"], timeout=300, tenant="tenant-b")
        secs = time.time() - t0
        st, a = s.http("GET", "/jobs/" + ja["job_id"], tenant="tenant-a")
        print("B finished in %.2f s (waiting_ms %s) while A had %d of %d rows processed" % (
            secs, b.get("waiting_ms"), done(a), BIG), flush=True)
        e.check(b["state"] == "SUCCESS" and b["success"] == 10 and b["errors"] == 0, "B's counters: %s" % b)
        # Generous bounds (the machine may be loaded): B is done while at least
        # half of A's rows are still waiting, and B waited seconds at most.
        e.check(done(a) <= BIG // 2, "B finished while A is far from done: A %d of %d rows processed" % (done(a), BIG))
        e.check(b["waiting_ms"] < 5000, "B's waiting time: %s ms" % b["waiting_ms"])
        a = s.wait_job(ja["job_id"], timeout=600, tenant="tenant-a")
        e.check(a["state"] == "PARTIAL_SUCCESS" and a["errors"] == BIG // 1000 and a["success"] == BIG - BIG // 1000,
                "A's counters stay exact: %s" % a)


if __name__ == "__main__":
    e.run_tests(globals())
