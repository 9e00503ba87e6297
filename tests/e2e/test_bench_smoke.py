"""Smoke run of the end-to-end benchmark (bench/e2e/run_bench.py --smoke,
10,000 rows): it must finish, print its table and write its JSON copy, so the
benchmark cannot rot. The figures themselves are not checked (shared, noisy
machines); only that each section produced one."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import bok_e2e as e

BENCH = os.path.join(e.SRC, "bench", "e2e", "run_bench.py")


def test_bench_smoke():
    for tool in ("kcat", "curl", "wrk"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            raise e.Skip("%s is not installed" % tool)
    e.skip_if_missing("model", "job", "worker", "gateway")
    out_dir = tempfile.mkdtemp(prefix="bok-bench-smoke-")
    env = dict(os.environ, BOK_BUILD_DIR=e.BUILD)
    r = subprocess.run([sys.executable, BENCH, "--smoke", "--rows", "10000", "--out", out_dir],
                       capture_output=True, timeout=240, env=env)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    e.check(r.returncode == 0, "run_bench.py exited %d:\n%s\n%s" % (r.returncode, out[-3000:], err[-3000:]))
    for want in ("machine:", "settings:", "figure", "ingest 1w: rows/s", "ingest 2w: rows/s", "ingest 1w: rows/s vs floor",
                 "ingest 1w: worker CPU s / M rows", "goal", "core: rows/s",
                 "gateway GET /jobs/{id} c=50: p99 ms", "during upload", "memory: VmHWM gateway",
                 "reports 1w: report RPCs/s"):
        e.check(want in out, "table lacks %r:\n%s" % (want, out))
    files = glob.glob(os.path.join(out_dir, "bench-*.json"))
    e.check(len(files) == 1, "one JSON copy in %s: %s" % (out_dir, files))
    with open(files[0]) as f:
        R = json.load(f)
    for f in files:
        os.unlink(f)
    os.rmdir(out_dir)
    e.check(R["settings"]["rows"] == 10000 and R["data"]["invalid_rows"] == 200, "data: %s" % R.get("data"))
    e.check(R["kcat"]["rows_per_s"] > 0, "kcat baseline: %s" % R["kcat"])
    e.check(R.get("floor") and R["floor"]["rows_per_s"] > 0 and R["floor"]["events"] == 9800,
            "floor: %s %s" % (R.get("floor"), R.get("floor_error")))
    e.check([i["workers"] for i in R["ingest"]] == [1, 2], "ingest runs: %s" % R["ingest"])
    for i in R["ingest"]:
        e.check(i["total"] == 10000 and i["errors"] == 200 and i["state"] == "PARTIAL_SUCCESS",
                "ingest %dw counters: %s" % (i["workers"], i))
        e.check(i["rows_per_s"] > 0 and i["vm_hwm_mb"].get("gateway", 0) > 0, "ingest %dw: %s" % (i["workers"], i))
        e.check(i["reports"]["rows"] == 10000 and i["reports"]["report_rpcs"] > 0, "reports: %s" % i["reports"])
    e.check(R["core"].get("core_rows_per_s", 0) > 0, "core: %s" % R["core"])
    for k in ("healthz_c50", "models_c50", "job_c50", "during_upload"):
        g = R["gateway"].get(k, {})
        e.check(g.get("rps") and g.get("p99_ms") is not None, "gateway %s: %s" % (k, g))



def test_the_bench_waits_for_the_group_to_settle():
    """The benches start their clock once the workers hold every rows-topic
    partition, each lane some: the first lane to join often holds all of
    them for a second or so, until the group rebalances over the other
    lanes, and that rebalance (the express partition revoked) was measured
    as the first small jobs' wait in fairness_bench.py. Worker logs as they
    look then; the old check returned at once."""
    sys.path.insert(0, os.path.dirname(BENCH))
    import run_bench as rb
    d = tempfile.mkdtemp(prefix="bok-bench-assign-")
    path = os.path.join(d, "worker0.log")

    class Worker:
        log_path = path

        def alive(self):
            return True

    class Stack:
        workers = [Worker()]

    def log(*lines):
        with open(path, "a") as f:
            for c, msg in lines:
                f.write('ts=2026-11-30T17:44:19.829Z level=info component=%s msg="%s"\n' % (c, msg))

    lanes = ["worker", "worker.1", "worker.2", "worker.3"]
    log(*[(c, "worker w0%s consuming bok.rows.x (transactions on, express partitions 1, tenant stripes 2)"
           % c[6:]) for c in lanes])
    log(("worker", "assigned 9 partitions (1 express, 2 stripes)"))
    e.check(not rb.wait_assigned(Stack(), 9, timeout=0.5), "one lane of four holds all 9 partitions: not settled")
    log(("worker", "revoked 9 partitions"), ("worker.2", "assigned 2 partitions (0 express, 2 stripes)"),
        ("worker.1", "assigned 2 partitions (0 express, 2 stripes)"), ("worker", "assigned 3 partitions (1 express, 2 stripes)"))
    e.check(not rb.wait_assigned(Stack(), 9, timeout=0.5), "7 of 9 partitions held: not settled")
    log(("worker.3", "assigned 2 partitions (0 express, 2 stripes)"))
    e.check(rb.wait_assigned(Stack(), 9, timeout=5), "every lane holds partitions, 9 in all: settled")
    os.unlink(path)
    os.rmdir(d)


if __name__ == "__main__":
    e.run_tests(globals())
