"""One worker process, several lanes (worker.h): every lane is a member of
the consumer group, the job's rows spread over them, counters stay exact, and
SIGTERM stops every lane cleanly. A bad lane count is refused at start."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "e2e"))
import bok_e2e as e  # noqa: E402
import run_bench as rb  # noqa: E402

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
          "required": ["id", "name"]}
N = 20000


def test_three_lanes_share_the_rows_and_stop_cleanly():
    with e.Stack(workers=1, overrides={"worker": {"lanes": 3}}) as s:
        # until every lane holds partitions (the first lane alone may hold all of them for a moment)
        deadline = time.time() + 60
        last = {}
        while time.time() < deadline:
            last = {}
            with open(s.workers[0].log_path, "rb") as f:
                for line in f.read().decode("utf-8", "replace").splitlines():
                    mm = rb.ASSIGN_RE.search(line)
                    if mm:
                        last[rb.lane_of(line)] = int(mm.group(2)) if mm.group(1) == "assigned" else 0
            if len(last) == 3 and all(v > 0 for v in last.values()) and sum(last.values()) == s.rows_partitions():
                break
            time.sleep(0.1)
        e.check(len(last) == 3 and all(v > 0 for v in last.values()), "every lane holds partitions: %s" % last)
        st, m = s.http("POST", "/models", {"name": "lanes", "schema": SCHEMA})
        e.check(st == 201, "model: %s %s" % (st, m))
        lines = ["id,name"] + ["%s,n%d" % ("x" if i % 100 == 0 else str(i), i) for i in range(1, N + 1)]
        st, j = s.upload(m["model_id"], "lanes.csv", "\n".join(lines) + "\n", timeout=120)
        e.check(st == 202, "upload: %s %s" % (st, j))
        j = s.wait_job(j["job_id"], timeout=120)
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == N - N // 100 and j["errors"] == N // 100,
                "exact counters: %s" % j)
        w = s.workers[0]
        rc = w.stop(timeout=30)
        e.check(rc == 0, "SIGTERM: exit code %s" % rc)
        per_lane = {}
        with open(w.log_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                mm = rb.STATS_RE.search(line)
                if mm and "stopping" in line:
                    per_lane[rb.lane_of(line)] = int(mm.group(1))
        e.check(sorted(per_lane) == ["worker", "worker.1", "worker.2"], "every lane stopped: %s" % per_lane)
        e.check(sum(per_lane.values()) == N, "the lanes processed every row once: %s" % per_lane)
        e.check(sum(1 for v in per_lane.values() if v > 0) >= 2, "rows spread over the lanes: %s" % per_lane)


def test_large_rows_cut_batches_by_bytes():
    """A batch (one transaction, one report) is cut at kafka.batch_max_bytes
    of rows as well as at kafka.batch_max_rows: 2,000 rows of 2 KB in 40
    rows-topic messages of ~100 KB, committed by the upload at once, run as
    batches of at most ~3 messages with a 256 KB cap (one batch of all 40
    before the cap), and every row is counted once."""
    rows, width = 2000, 2000
    with e.Stack(workers=1, overrides={"worker": {"lanes": 1, "kafka.batch_max_bytes": 256 * 1024},
                                       "job": {"kafka.batch_rows": 50}}) as s:
        rb.wait_assigned(s, s.rows_partitions(), timeout=60)
        st, m = s.http("POST", "/models", {"name": "wide", "schema": SCHEMA})
        e.check(st == 201, "model: %s %s" % (st, m))
        lines = ["id,name"] + ["%d,%s" % (i, "w" * width) for i in range(1, rows + 1)]
        st, j = s.upload(m["model_id"], "wide.csv", "\n".join(lines) + "\n", timeout=120)
        e.check(st == 202, "upload: %s %s" % (st, j))
        j = s.wait_job(j["job_id"], timeout=120)
        e.check(j["state"] == "SUCCESS" and j["success"] == rows and j["errors"] == 0, "exact counters: %s" % j)
        w = s.workers[0]
        e.check(w.stop(timeout=30) == 0, "SIGTERM")
        done, batches = rb.worker_stats(w)
        e.check(done == rows, "every row processed once: %s" % done)
        e.check(batches >= 12, "batches cut by bytes (~4 MB of rows, 256 KB a batch): %d batches" % batches)


def test_bad_lane_count_is_refused():
    with e.Stack(model=False, job=False, workers=0, gateway=False) as s:
        w = s.add_worker(start=False)
        cfg = w.config_path
        env = dict(os.environ, BOK_LANES="0")
        t0 = time.time()
        p = subprocess.run([e.binary("worker"), "--config", cfg], env=env, capture_output=True, timeout=30)
        e.check(p.returncode != 0, "lanes=0 refused (exit %d)" % p.returncode)
        e.check(b"lanes" in p.stderr, "the error names the key: %r" % p.stderr[-300:])
        e.check(time.time() - t0 < 10, "refused at once")


if __name__ == "__main__":
    e.run_tests(globals())
