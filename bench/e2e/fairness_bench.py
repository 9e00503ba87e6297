#!/usr/bin/python3
"""Fairness benchmark (issue 19, docs/FAIRNESS.md), on the real binaries and
broker like run_bench.py (which calls run() for its table).

1. small jobs behind a big one: tenant A uploads a big job (--big-rows,
   default 1,000,000); from the start of A's upload until A is final, tenant
   B uploads a 10-row job every 0.25 s. Figure: p99 (and p50, max) of B's
   `waiting_ms` (goal: p99 <= 300 ms).
2. shares: tenants A and B each upload a --share-rows file (default
   500,000) at once. Figure: over the time both jobs can be processed (both
   uploads committed, neither job final), the rows processed for each; the
   smaller share over the larger (goal >= 0.8, "within 20 %"). Also the
   same ratio over the part of that window in which both still have a
   backlog (until one of them has 10 % of its rows left): the first figure
   also counts each job's tail and the head start of the upload that
   committed first, so it says little when both jobs end close together.

3. (--only lone) a lone tenant's --big-rows job, upload to final: what tenant
   stripes cost a tenant alone (it uses one stripe of the bulk partitions).

    python3 bench/e2e/fairness_bench.py [--big-rows N] [--share-rows N] [--express N]
                                        [--stripes G --partitions N] [--prefetch-kb K] [--fetch-wait-ms MS]
                                        [--only small|shares|lone] [--stagger S] [--a-rows N]

Smaller sizes for quick runs: BOK_FAIRNESS_BIG_ROWS, BOK_FAIRNESS_SHARE_ROWS
(or the flags). --express 0 runs with the express partitions off, --stripes 1
with tenant stripes off (the old behaviours) for a before/after comparison."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import bok_e2e as e  # noqa: E402
import run_bench as rb  # noqa: E402

SMALL_EVERY_S = 0.25


def log(msg):
    print("fairness: " + msg, file=sys.stderr, flush=True)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def upload(stack, tenant, model_id, path):
    """curl streams the file (multipart) as `tenant`; returns the Popen."""
    return subprocess.Popen(["curl", "-sS", "--max-time", "1800", "-o", "-", "-w", "\n%{http_code}",
                             "-H", "X-Tenant-ID: " + tenant, "-F", "model_id=%s" % model_id,
                             "-F", "file=@%s;type=text/csv" % path, stack.api_url + "/jobs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def job(stack, tenant, job_id):
    st, j = stack.http("GET", "/jobs/" + job_id, tenant=tenant)
    return j if st == 200 else {}


def wait_final(stack, tenant, job_id, timeout):
    deadline = time.time() + timeout
    j = job(stack, tenant, job_id)
    while j.get("state") not in rb.FINAL and time.time() < deadline:
        time.sleep(0.1)
        j = job(stack, tenant, job_id)
    return j


def processed(j):
    return (j.get("success") or 0) + (j.get("errors") or 0)


def model(stack, tenant, name):
    st, m = stack.http("POST", "/models", {"name": name, "schema": rb.SCHEMA}, tenant=tenant)
    if st not in (200, 201):
        raise RuntimeError("POST /models as %s: %s %s" % (tenant, st, m))
    return m["model_id"]


# Extra settings for the stacks (set by run()): express partitions and tenant
# stripes on both services, rows-topic partitions on the job service.
KNOBS = {"express": None, "stripes": None, "partitions": 9, "prefetch_kb": None, "stagger_s": 0.0, "a_rows": None,
         "fetch_wait_ms": None}


def overrides(express):
    ov = {"job": {}, "worker": {}}
    if express is not None:
        ov["job"]["kafka.express_partitions"] = ov["worker"]["kafka.express_partitions"] = express
    if KNOBS["stripes"] is not None:
        ov["job"]["kafka.tenant_stripes"] = ov["worker"]["kafka.tenant_stripes"] = KNOBS["stripes"]
    ov["job"]["kafka.rows_partitions"] = KNOBS["partitions"]
    consumer = {}
    if KNOBS["prefetch_kb"] is not None:  # what a lane fetches ahead (librdkafka's default here: 16 MB)
        consumer["queued.max.messages.kbytes"] = str(KNOBS["prefetch_kb"])
    if KNOBS["fetch_wait_ms"] is not None:  # the longest a lane's fetch waits at the broker
        consumer["fetch.wait.max.ms"] = str(KNOBS["fetch_wait_ms"])
    if consumer:
        ov["worker"]["kafka.consumer"] = consumer
    if KNOBS.get("batch_rows") is not None:
        ov["worker"]["kafka.batch_max_rows"] = KNOBS["batch_rows"]
    return ov


def warm_express(stack, small, timeout=60):
    """One 10-row job of a third tenant, to the end, before the clock starts:
    wait_assigned returns as soon as the group has settled, often some 10-30
    ms after its rebalance, and a lane's first fetch after an assignment
    waits for the long poll of its previous one (fetch.wait.max.ms, 500 ms),
    so the first small jobs measured 0.6 s of rebalance, not of the big job
    (traced 2026-11-30: 3 of 4 runs; docs/FAIRNESS.md). A running worker
    group has long settled; so, here, has this one once a job went through."""
    mw = model(stack, "tenant-warm", "fair-warm")
    with open(small) as f:
        st, j = stack.upload(mw, "warm.csv", f.read(), tenant="tenant-warm")
    if st != 202:
        raise RuntimeError("warm-up upload: %s %s" % (st, j))
    wait_final(stack, "tenant-warm", j["job_id"], timeout)


def small_behind_big(tmp, big_rows, express, timeout):
    big = os.path.join(tmp, "big.csv")
    rb.generate_csv(big, big_rows)
    small = os.path.join(tmp, "small.csv")
    rb.generate_csv(small, 10)
    res = {"big_rows": big_rows, "small_rows": 10, "every_s": SMALL_EVERY_S}
    with e.Stack(workers=1, overrides=overrides(express)) as s:
        ma, mb = model(s, "tenant-a", "fair-big"), model(s, "tenant-b", "fair-small")
        rb.wait_assigned(s, KNOBS["partitions"], timeout=60)
        warm_express(s, small)
        stop = threading.Event()
        smalls = []

        def submit_small():
            while not stop.is_set():
                ts = time.time() - t0
                st, j = s.upload(mb, "small.csv", open(small).read(), tenant="tenant-b")
                if st == 202:
                    smalls.append((ts, j["job_id"]))
                stop.wait(SMALL_EVERY_S)

        t0 = time.time()
        p = upload(s, "tenant-a", ma, big)
        th = threading.Thread(target=submit_small)
        th.start()
        try:
            ja = rb.finish_upload(p)
            res["big_upload_s"] = time.time() - t0
            wait_final(s, "tenant-a", ja["job_id"], timeout)
        finally:
            stop.set()
            th.join()
        res["big_s"] = time.time() - t0
        waits, finals = [], []
        res["small_jobs_at"] = []  # (submitted, s after A's upload began; waiting_ms)
        for ts, jid in smalls:
            fin = wait_final(s, "tenant-b", jid, timeout)
            waits.append(fin.get("waiting_ms"))
            finals.append((fin.get("waiting_ms") or 0) + (fin.get("processing_ms") or 0))
            res["small_jobs_at"].append((round(ts, 2), waits[-1]))
        a = job(s, "tenant-a", ja["job_id"])
    waits = [w for w in waits if w is not None]
    res.update({"small_jobs": len(waits), "waiting_ms_p50": pct(waits, 50), "waiting_ms_p99": pct(waits, 99),
                "waiting_ms_max": max(waits) if waits else None, "big_state": a.get("state"),
                "final_ms_p50": pct(finals, 50), "final_ms_p99": pct(finals, 99)})
    log("%d-row job of A: %.1f s; %d 10-row jobs of B: waiting_ms p50 %s p99 %s max %s; created->final p50 %s p99 %s" % (
        big_rows, res["big_s"], len(waits), res["waiting_ms_p50"], res["waiting_ms_p99"], res["waiting_ms_max"],
        res["final_ms_p50"], res["final_ms_p99"]))
    log("small jobs (submitted s after A's upload began, waiting_ms); A's upload answered after %.1f s: %s" % (
        res["big_upload_s"], res["small_jobs_at"]))
    return res


def shares(tmp, rows, express, timeout):
    path = os.path.join(tmp, "share.csv")
    rb.generate_csv(path, rows)
    a_rows = KNOBS["a_rows"] or rows
    path_a = path
    if a_rows != rows:
        path_a = os.path.join(tmp, "share-a.csv")
        rb.generate_csv(path_a, a_rows)
    res = {"rows_each": rows, "a_rows": a_rows, "stagger_s": KNOBS["stagger_s"]}
    with e.Stack(workers=1, overrides=overrides(express)) as s:
        ma, mb = model(s, "tenant-a", "fair-a"), model(s, "tenant-b", "fair-b")
        rb.wait_assigned(s, KNOBS["partitions"], timeout=60)
        t0 = time.time()
        pa = upload(s, "tenant-a", ma, path_a)
        ends = {}
        if KNOBS["stagger_s"] < 0:  # B's upload starts once A's committed
            pa.wait()
            ends["a"] = time.time() - t0
        time.sleep(max(0.0, KNOBS["stagger_s"]))  # B's upload starts later: A's rows are ahead where they share
        pb = upload(s, "tenant-b", mb, path)
        while len(ends) < 2:  # when each upload answered (its transaction committed)
            for k, p in (("a", pa), ("b", pb)):
                if k not in ends and p.poll() is not None:
                    ends[k] = time.time() - t0
            time.sleep(0.01)
        ja, jb = rb.finish_upload(pa), rb.finish_upload(pb)
        res.update({"a_upload_s": ends["a"], "b_upload_s": ends["b"]})
        # both committed now: the window starts
        a0, b0 = processed(job(s, "tenant-a", ja["job_id"])), processed(job(s, "tenant-b", jb["job_id"]))
        t1 = time.time()
        deadline = t1 + timeout
        a, b = {}, {}
        busy = None  # (A, B) rows processed when one of them first had 10 % of its rows left
        while time.time() < deadline:
            a, b = job(s, "tenant-a", ja["job_id"]), job(s, "tenant-b", jb["job_id"])
            if busy is None and (processed(a) >= 0.9 * a_rows or processed(b) >= 0.9 * rows):
                busy = (processed(a) - a0, processed(b) - b0, time.time() - t1)
            if a.get("state") in rb.FINAL or b.get("state") in rb.FINAL:
                break
            time.sleep(0.05)
        secs = time.time() - t1
        da, db = processed(a) - a0, processed(b) - b0
        for jid, tenant, key in ((ja["job_id"], "tenant-a", "a"), (jb["job_id"], "tenant-b", "b")):
            res["%s_state" % key] = wait_final(s, tenant, jid, timeout).get("state")
    busy = busy or (da, db, secs)
    res.update({"window_s": secs, "a_rows_at_start": a0, "b_rows_at_start": b0, "a_rows": da, "b_rows": db,
                "share_ratio": min(da, db) / max(da, db) if max(da, db) > 0 else None,
                "busy_s": busy[2], "busy_a_rows": busy[0], "busy_b_rows": busy[1],
                "busy_share_ratio": min(busy[:2]) / max(busy[:2]) if max(busy[:2]) > 0 else None})
    log("A %d rows, B %d rows:" % (a_rows, rows))
    log("two %d-row jobs at once: uploads answered after %.1f s (A) and %.1f s (B); in the %.1f s both ran after "
        "that, A %d rows, B %d rows (ratio %s; before: A %d, B %d)" % (
            rows, res["a_upload_s"], res["b_upload_s"], secs, da, db, res["share_ratio"], a0, b0))
    log("... until one job had 10 %% of its rows left (%.1f s): A %d rows, B %d rows (ratio %s)" % (
        busy[2], busy[0], busy[1], res["busy_share_ratio"]))
    return res


def lone(tmp, rows, express, timeout):
    path = os.path.join(tmp, "lone.csv")
    rb.generate_csv(path, rows)
    with e.Stack(workers=1, overrides=overrides(express)) as s:
        ma = model(s, "tenant-a", "fair-lone")
        rb.wait_assigned(s, KNOBS["partitions"], timeout=60)
        t0 = time.time()
        ja = rb.finish_upload(upload(s, "tenant-a", ma, path))
        up = time.time() - t0
        j = wait_final(s, "tenant-a", ja["job_id"], timeout)
        secs = time.time() - t0
    log("a lone %d-row job: upload %.1f s, upload to final %.1f s (%s)" % (rows, up, secs, j.get("state")))
    return {"rows": rows, "upload_s": up, "final_s": secs, "state": j.get("state")}


def run(big_rows, share_rows, express=None, timeout=900, stripes=None, partitions=9, prefetch_kb=None, only=None,
        stagger_s=0.0, a_rows=None, fetch_wait_ms=None, batch_rows=None):
    KNOBS.update(express=express, stripes=stripes, partitions=partitions, prefetch_kb=prefetch_kb, stagger_s=stagger_s,
                 a_rows=a_rows, fetch_wait_ms=fetch_wait_ms, batch_rows=batch_rows)
    tmp = tempfile.mkdtemp(prefix="bok-fair-")
    try:
        F = {"express_partitions": express if express is not None else "default",
             "tenant_stripes": stripes if stripes is not None else "default", "rows_partitions": partitions}
        if only in (None, "small"):
            F["small_behind_big"] = small_behind_big(tmp, big_rows, express, timeout)
        if only in (None, "shares"):
            F["shares"] = shares(tmp, share_rows, express, timeout)
        if only == "lone":
            F["lone"] = lone(tmp, big_rows, express, timeout)
        return F
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


def table_rows(F):
    """(figure, ours, goal note) rows for run_bench.py's table."""
    if "small_behind_big" not in F or "shares" not in F:
        return [("fairness: lone %s-row job, upload to final (s)" % rb.fmt(F["lone"]["rows"]), F["lone"]["final_s"],
                 "upload %.1f s" % F["lone"]["upload_s"])] if "lone" in F else []
    sb, sh = F["small_behind_big"], F["shares"]
    return [("fairness: p99 waiting_ms, 10-row jobs during a %s-row job" % rb.fmt(sb["big_rows"]),
             sb["waiting_ms_p99"], "goal <= 300; p50 %s, max %s, %d jobs; created->final p99 %s" % (
                 sb["waiting_ms_p50"], sb["waiting_ms_max"], sb["small_jobs"], sb.get("final_ms_p99"))),
            ("fairness: share ratio, two %s-row jobs at once" % rb.fmt(sh["rows_each"]), sh["share_ratio"],
             "goal >= 0.8; A %d vs B %d rows in %.1f s" % (sh["a_rows"], sh["b_rows"], sh["window_s"])),
            ("fairness: share ratio while both have a backlog", sh["busy_share_ratio"],
             "A %d vs B %d rows in %.1f s" % (sh["busy_a_rows"], sh["busy_b_rows"], sh["busy_s"]))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-rows", type=int, default=int(os.environ.get("BOK_FAIRNESS_BIG_ROWS", "1000000")))
    ap.add_argument("--share-rows", type=int, default=int(os.environ.get("BOK_FAIRNESS_SHARE_ROWS", "500000")))
    ap.add_argument("--express", type=int, default=None, help="kafka.express_partitions on both services")
    ap.add_argument("--stripes", type=int, default=None,
                    help="kafka.tenant_stripes on both services (1: the old behaviour, shares by arrival)")
    ap.add_argument("--partitions", type=int, default=9, help="rows-topic partitions (kafka.rows_partitions)")
    ap.add_argument("--stagger", type=float, default=0.0,
                    help="shares: start B's upload this many seconds after A's (default 0: at once; -1: once "
                         "A's upload committed)")
    ap.add_argument("--a-rows", type=int, default=None, help="shares: A's rows (default: --share-rows)")
    ap.add_argument("--only", choices=("small", "shares", "lone"), default=None,
                    help="run one part: small jobs behind a big one, two tenants' shares, or a lone big job")
    ap.add_argument("--prefetch-kb", type=int, default=None, help="workers' queued.max.messages.kbytes")
    ap.add_argument("--batch-rows", type=int, default=None, help="workers' kafka.batch_max_rows")
    ap.add_argument("--fetch-wait-ms", type=int, default=None, help="workers' fetch.wait.max.ms")
    args = ap.parse_args()
    e.skip_if_missing("model", "job", "worker", "gateway")
    F = run(args.big_rows, args.share_rows, args.express, stripes=args.stripes, partitions=args.partitions,
            prefetch_kb=args.prefetch_kb, only=args.only, stagger_s=args.stagger, a_rows=args.a_rows,
            fetch_wait_ms=args.fetch_wait_ms, batch_rows=args.batch_rows)
    for name, v, note in table_rows(F):
        print("%-60s %10s  %s" % (name, rb.fmt(v, 3 if isinstance(v, float) else 0), note))
    print(json.dumps(F, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
