#!/usr/bin/python3
"""GET /jobs/{id} latency while a job ingests, alone (issue 20, docs/PERFORMANCE.md).

One stack (one worker), a finished 1,000,000-row job (--rows); then `wrk -c50` on its
GET /jobs/{id} for 5 s on the idle stack, and 5 s starting 0.2 s into a second upload of the
same file (run_bench.during_upload). Prints both p99s and their ratio (goal <= 2).
--nice N renices every thread of the worker to N after the first job (an experiment: what
the API gains when the ingest yields the CPU); several values run one after the other, each
on a fresh stack. --as-bench does what `make bench` does between the two: the first worker
is stopped and a new one ingests the second upload.

    BOK_BUILD_DIR=$PWD/build python3 bench/e2e/gateway_during_ingest.py [--rows N] [--nice 0 10 ...]
"""
import argparse
import os
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import bok_e2e as e  # noqa: E402
import run_bench as rb  # noqa: E402


def renice(pid, n):
    """Every thread of pid (nice is per thread on Linux)."""
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            os.setpriority(os.PRIO_PROCESS, int(t), n)
        except OSError:
            pass


def one(csv, nice, as_bench, job_malloc_conf=None):
    args = types.SimpleNamespace(wrk_seconds=5, job_timeout=600)
    env = {"job": {"MALLOC_CONF": job_malloc_conf}} if job_malloc_conf else None
    with e.Stack(workers=1, env=env) as s:
        st, m = s.http("POST", "/models", {"name": "gw", "schema": rb.SCHEMA})
        rb.wait_assigned(s, 9, timeout=60)
        j = rb.finish_upload(rb.start_upload(s, m["model_id"], csv))
        rb.wait_final(s, j["job_id"], 600)
        idle = rb.wrk(s.api_url + "/jobs/" + j["job_id"], 50, 5)
        if as_bench:
            rb.stop_workers_for_stats(s)
            s.add_worker()
            rb.wait_assigned(s, 9)
        if nice:
            renice(s.workers[-1].proc.pid, nice)
        busy = rb.during_upload(s, m["model_id"], j["job_id"], csv, args)
    ratio = busy["p99_ms"] / idle["p99_ms"] if busy.get("p99_ms") and idle.get("p99_ms") else None
    print("%sworker nice %d%s: idle p99 %s ms (%s req/s); during an ingest p99 %s ms (%s req/s); ratio %s (goal <= 2)" % (
        "job MALLOC_CONF=%s: " % job_malloc_conf if job_malloc_conf else "", nice,
        " (as the bench: a new worker)" if as_bench else "", idle["p99_ms"], idle["rps"], busy["p99_ms"], busy["rps"], "%.1f" % ratio if ratio else "-"), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--nice", type=int, nargs="*", default=[0])
    ap.add_argument("--as-bench", action="store_true", help="a new worker for the second upload, as make bench")
    ap.add_argument("--job-malloc-conf", nargs="*", default=[None],
                    help="jemalloc settings for the job service, one run each ('' = its built-in ones)")
    a = ap.parse_args()
    e.skip_if_missing("model", "job", "worker", "gateway")
    with tempfile.TemporaryDirectory(prefix="bok-gwi-") as tmp:
        csv = os.path.join(tmp, "rows.csv")
        rb.generate_csv(csv, a.rows)
        for mc in a.job_malloc_conf:
            for n in a.nice:
                one(csv, n, a.as_bench, mc or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
