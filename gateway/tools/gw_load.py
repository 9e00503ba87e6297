#!/usr/bin/python3
"""gw_load.py -- the gateway figure of issue 20, measured on its own (no
Kafka figures): GET /jobs/{id} at concurrency C against GET /healthz of the
same gateway, and the p99 of GET /jobs/{id} while a job ingests against the
same p99 idle. Real binaries ($BOK_BUILD_DIR, default <repo>/build) and the
real broker, through tests/e2e/bok_e2e.py; wrk does the load.

    python3 gateway/tools/gw_load.py [--rounds 3] [--secs 4] [--conns 50]
                                     [--rows 200000] [--perf DIR]

Each round runs wrk on /healthz, then /jobs/{id}, back to back, and prints
their ratio (the machine is shared: only ratios within one round mean
something). Then, --ingest rounds of: idle p99 of /jobs/{id}, an upload of
--rows rows started, p99 of /jobs/{id} while it ingests. --perf DIR records
`perf record -g` of the gateway and the job service during one /jobs/{id}
run (DIR/gateway.data, DIR/job.data). Prints one JSON line at the end.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import bok_e2e as e  # noqa: E402

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0},
    "qty": {"type": "integer"}, "note": {"type": "string", "maxLength": 16}},
    "required": ["event_id", "amount"]}
FINAL = ("SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED")
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def log(msg):
    print("gw_load: " + msg, file=sys.stderr, flush=True)


def csv_file(path, rows):
    with open(path, "w") as f:
        f.write("event_id,amount,qty,note\n")
        for i in range(1, rows + 1):
            f.write("ev%d,%s,%d,hello\n" % (i, "-1" if i % 50 == 0 else "12.5", i))


def wrk(url, conns, secs):
    cmd = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % secs, "--timeout", "5s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, timeout=secs + 60).stdout.decode("utf-8", "replace")
    res = {"rps": None, "p50_ms": None, "p99_ms": None, "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s|m)$" % pct, out, re.M)
        if m:
            res[key] = float(m.group(1)) * _UNIT[m.group(2)]
    for pat in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        m = re.search(pat, out)
        if m:
            res["errors"] += sum(int(x) for x in m.groups())
    return res


def start_upload(s, model_id, path):
    return subprocess.Popen(["curl", "-sS", "-F", "model_id=" + model_id, "-F", "file=@%s;type=text/csv" % path,
                             s.api_url + "/jobs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_final(s, job_id, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, j = s.http("GET", "/jobs/" + job_id)
        if j.get("state") in FINAL:
            return j
        time.sleep(0.3)
    raise RuntimeError("job %s not final" % job_id)


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def throughput_rounds(s, job_id, args):
    out = []
    for r in range(args.rounds):
        h = wrk(s.api_url + "/healthz", args.conns, args.secs)
        j = wrk(s.api_url + "/jobs/" + job_id, args.conns, args.secs)
        row = {"healthz": h, "job": j, "ratio": ratio(j["rps"], h["rps"]), "load": os.getloadavg()[0]}
        log("round %d c=%d: healthz %s req/s, job %s req/s (p99 %s ms) -> %s  [load %.1f]" % (
            r, args.conns, h["rps"], j["rps"], j["p99_ms"], row["ratio"], row["load"]))
        out.append(row)
    return out


def ingest_rounds(s, model_id, job_id, path, args):
    out = []
    for r in range(args.ingest):
        idle = wrk(s.api_url + "/jobs/" + job_id, args.conns, args.secs)
        h_idle = wrk(s.api_url + "/healthz", args.conns, 2)
        p = start_upload(s, model_id, path)
        time.sleep(0.3)
        busy = wrk(s.api_url + "/jobs/" + job_id, args.conns, args.secs)
        h_busy = wrk(s.api_url + "/healthz", args.conns, 2)  # the same gateway, no backend: CPU starvation alone
        running = p.poll() is None
        j = json.loads(p.communicate()[0] or b"{}")
        st, cur = s.http("GET", "/jobs/" + j.get("job_id", "x"))
        ingesting = cur.get("state") not in FINAL
        row = {"idle": idle, "busy": busy, "p99_ratio": ratio(busy["p99_ms"], idle["p99_ms"]),
               "healthz_idle": h_idle, "healthz_busy": h_busy,
               "healthz_p99_ratio": ratio(h_busy["p99_ms"], h_idle["p99_ms"]),
               "upload_running_at_end": running, "job_running_at_end": ingesting, "load": os.getloadavg()[0]}
        log("ingest %d: p99 idle %s ms, during ingest %s ms -> %s (rps %s / %s; upload running %s, job running %s)"
            " [load %.1f]; /healthz p99 %s -> %s ms (%s)" % (
                r, idle["p99_ms"], busy["p99_ms"], row["p99_ratio"], idle["rps"], busy["rps"], running, ingesting,
                row["load"], h_idle["p99_ms"], h_busy["p99_ms"], row["healthz_p99_ratio"]))
        out.append(row)
        if "job_id" in j:
            wait_final(s, j["job_id"])
    return out


def perf_record(s, job_id, args):
    os.makedirs(args.perf, exist_ok=True)
    procs = []
    for kind in ("gateway", "job"):
        out = os.path.join(args.perf, kind + ".data")
        procs.append(subprocess.Popen(["perf", "record", "-g", "-o", out, "-p", str(s[kind].proc.pid), "--",
                                       "sleep", str(args.secs + 1)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    r = wrk(s.api_url + "/jobs/" + job_id, args.conns, args.secs)
    for p in procs:
        p.wait()
    log("perf data in %s (wrk during it: %s req/s)" % (args.perf, r["rps"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ingest", type=int, default=2)
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--perf", help="directory for perf data of gateway and job service")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gw-load-")
    path = os.path.join(tmp, "rows.csv")
    csv_file(path, args.rows)
    res = {"conns": args.conns, "secs": args.secs}
    with e.Stack(workers=1, overrides={"gateway": {"max_connections_per_ip": 0}}) as s:
        st, m = s.http("POST", "/models", {"name": "gwload-" + e.rand_suffix(), "schema": SCHEMA})
        st, j = s.upload(m["model_id"], "small.csv", b"event_id,amount,qty,note\nev1,1.5,2,x\nev2,-1,3,y\n")
        job_id = j["job_id"]
        wait_final(s, job_id)
        if args.perf:
            perf_record(s, job_id, args)
        res["rounds"] = throughput_rounds(s, job_id, args)
        res["ingest"] = ingest_rounds(s, m["model_id"], job_id, path, args)
    ratios = sorted(r["ratio"] for r in res["rounds"] if r["ratio"])
    p99s = sorted(r["p99_ratio"] for r in res["ingest"] if r["p99_ratio"])
    log("job/healthz ratios %s; p99 ingest/idle ratios %s" % (ratios, p99s))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
