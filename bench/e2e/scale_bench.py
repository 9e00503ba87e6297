"""Scale-out figures for docs/SCALING.md (issue 19): one job of --rows rows
(5 columns, ~2% invalid) through the gateway with 1, 2 and 3 workers, on the
shared single broker ($BOK_KAFKA_BOOTSTRAP) and on a three-node cluster of
its own (deploy/kafka.sh BOK_KAFKA_NODES=3, replication 3,
min.insync.replicas 2).

    python3 bench/e2e/scale_bench.py [--rows N] [--workers 1,2,3] [--brokers 1,3] [--repeat R] [--rf F]

--brokers: 1 = the shared broker; p1 = a private single node started like the
cluster (same heap, fresh); 3 = a private three-node cluster. --rf: the
topics' replication factor on a private cluster (default min(nodes, 3));
--rf 1 on three nodes separates the cost of replication from that of running
three JVMs.

Per run it prints the upload time (gateway + job service writing the rows
topic), the processing time (job started_at .. finished_at: workers
validating, producing events and reporting) and rows/s of each; the median of
--repeat runs. It also prints the load average, since the figures only mean
something next to what else the machine was doing."""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
import bok_e2e as e  # noqa: E402

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}, "qty": {"type": "integer"}, "label": {"type": "string"}},
    "required": ["event_id", "timestamp"]}


def make_csv(n):
    lines = ["event_id,timestamp,amount,qty,label"]
    for i in range(1, n + 1):
        bad = i % 50 == 0
        lines.append("e%d,%d,%s,%d,l%d" % (i, 1600000000 + i, "x" if bad else "%d.5" % (i % 997), i % 7, i % 13))
    return ("\n".join(lines) + "\n").encode()


def one_run(data, rows, workers, boot, extra):
    ov = {"job": dict(extra, **{"kafka.brokers": boot}), "worker": dict(extra, **{"kafka.brokers": boot})}
    with e.Stack(workers=workers, overrides=ov) as s:
        st, m = s.http("POST", "/models", {"name": "scale", "schema": SCHEMA})
        e.check(st == 201, "model: %s %s" % (st, m))
        # Warm-up: topics exist, groups joined, transactional ids initialised.
        st, j = s.upload(m["model_id"], "warm.csv", make_csv(100))
        s.wait_job(j["job_id"], timeout=180)
        t0 = time.time()
        st, j = s.upload(m["model_id"], "scale.csv", data, timeout=600)
        e.check(st == 202, "upload: %s %s" % (st, j))
        t_up = time.time() - t0
        j = s.wait_job(j["job_id"], timeout=900)
        wall = time.time() - t0
        e.check(j["total"] == rows, "counters: %s" % j)
        proc = (j.get("processing_ms") or 0) / 1000.0
        n, total = report_cost(s["job"].metrics_url)
        return {"upload_s": t_up, "processing_s": proc, "wall_s": wall, "reports": n,
                "report_ms": 1000.0 * total / n if n else 0.0}


def report_cost(metrics_url):
    """(ReportResults calls, seconds spent serving them) from the job
    service's bok_rpc_request_duration_seconds histogram."""
    import urllib.request
    with urllib.request.urlopen(metrics_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    n = total = 0.0
    for line in text.splitlines():
        if "ReportResults" not in line:
            continue
        if line.startswith("bok_rpc_request_duration_seconds_count"):
            n += float(line.rsplit(" ", 1)[1])
        elif line.startswith("bok_rpc_request_duration_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
    return int(n), total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--brokers", default="1,3")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rf", type=int, default=0)
    a = ap.parse_args()
    data = make_csv(a.rows)
    print("rows %d (%.1f MB); load average at start: %s" % (a.rows, len(data) / 1e6, open("/proc/loadavg").read()
                                                           .strip()), flush=True)
    print("%-8s %-3s %-8s %10s %12s %10s %14s %8s %8s %10s" % (
        "brokers", "rf", "workers", "upload_s", "upload_rows/s", "process_s", "process_rows/s", "wall_s", "reports",
        "report_ms"), flush=True)
    for spec in a.brokers.split(","):
        nb, cluster, rf = int(spec.lstrip("p")), None, 1
        if nb > 1 or spec.startswith("p"):
            cluster = e.KafkaCluster(nodes=nb).__enter__()
            rf = a.rf or min(nb, 3)
            extra = {"kafka.replication_factor": rf, "kafka.min_insync_replicas": max(1, min(rf - 1, 2))}
            boot = cluster.bootstrap()
        else:
            boot, extra = e.kafka_bootstrap(), {}
        try:
            for nw in [int(x) for x in a.workers.split(",")]:
                runs = [one_run(data, a.rows, nw, boot, extra) for _ in range(a.repeat)]
                up = statistics.median(r["upload_s"] for r in runs)
                pr = statistics.median(r["processing_s"] for r in runs)
                wall = statistics.median(r["wall_s"] for r in runs)
                rep = statistics.median(r["reports"] for r in runs)
                rms = statistics.median(r["report_ms"] for r in runs)
                print("%-8s %-3d %-8d %10.1f %12.0f %10.1f %14.0f %8.1f %8d %10.2f   (load %s)" % (
                    spec, rf, nw, up, a.rows / up, pr, a.rows / pr if pr else 0, wall, rep, rms,
                    " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
        finally:
            if cluster:
                cluster.__exit__()


if __name__ == "__main__":
    main()
