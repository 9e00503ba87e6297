#!/usr/bin/python3
"""End-to-end benchmark (issue 6): our figures next to a baseline measured in
the same run, on the real binaries ($BOK_BUILD_DIR, default <repo>/build) and
the real broker ($BOK_KAFKA_BOOTSTRAP, default 127.0.0.1:9092).

    python3 bench/e2e/run_bench.py [--rows N] [--smoke] [--big] [--out DIR]

1. ingest: an N-row, 10-column CSV (~2% invalid rows) uploaded through the
   gateway until the job is final, with 1 and with 2 workers; baselines: kcat -P
   producing the same data lines to a fresh topic with as many partitions, and
   the floor (issue 20): kcat -P of the raw lines + kcat -P of the event
   messages the worker wrote (captured from the 1-worker job), back to back.
   CPU seconds per million rows of worker, job service and (shared) broker.
2. core: bench_core --json, and instructions/row with callgrind.
3. gateway: wrk on GET /models and GET /jobs/{id} (50, 500 connections);
   baseline GET /healthz of the same gateway; p99 of GET /jobs/{id} during an
   upload.
4. memory: VmHWM of gateway, job service, workers after the ingest; peak
   private memory (smaps_rollup, sampled) in uploads of $BENCH_BIG_MB MB
   (comma list; default 64, none with --smoke; --big = 250,1000).
5. reports: result-report RPCs (= worker transactions, each of one or more
   batches) per second per job.
6. fairness (bench/e2e/fairness_bench.py, not with --smoke): p99 waiting_ms
   of 10-row jobs of tenant B while tenant A's big job ingests
   (BOK_FAIRNESS_BIG_ROWS, default 1,000,000), and the throughput shares of two
   tenants uploading BOK_FAIRNESS_SHARE_ROWS (default 500,000) rows each at
   once.

Prints a table and writes bench/results/bench-<UTC time>.json.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import bok_e2e as e  # noqa: E402

FINAL = ("SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED")
TICK = os.sysconf("SC_CLK_TCK")

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"},
    "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number", "minimum": 0},
    "qty": {"type": "integer"},
    "ok": {"type": "boolean"},
    "country": {"type": "string", "enum": ["US", "FR", "DE", "JP"]},
    "seen": {"type": "integer", "format": "unix-time"},
    "vec": {"type": "array", "items": {"type": "number"}},
    "note": {"type": "string", "maxLength": 64},
    "score": {"type": "number"}},
    "required": ["event_id", "timestamp", "amount"]}
HEADER = "event_id,timestamp,amount,qty,ok,country,seen,vec,note,score\n"
COUNTRIES = ("US", "FR", "DE", "JP")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---- data ----------------------------------------------------------------------

def generate_csv(path, rows):
    """N data rows, 10 columns of every type; every 50th row (2%) has one
    invalid cell (which column rotates). Returns (bytes, invalid rows)."""
    bad_cells = {1: "yesterday", 2: "abc", 3: "3.5", 4: "maybe", 5: "CA", 7: '"[1,x]"',
                 8: '"this note is far too long for the schema limit of sixty-four characters ok"', 9: "NaN"}
    bad_cols = sorted(bad_cells)
    invalid = 0
    with open(path, "w", buffering=1 << 20) as f:
        f.write(HEADER)
        chunk = []
        for i in range(1, rows + 1):
            cells = ["ev%d" % i, "1700000000", "12.5", "42", "true" if i & 1 else "0", COUNTRIES[i & 3],
                     str(1600000000 + i % 1000), '"[1.5,2,3]"', '"hello, world"', "0.25"]
            if i % 50 == 0:
                c = bad_cols[(i // 50) % len(bad_cols)]
                cells[c] = bad_cells[c]
                invalid += 1
            chunk.append(",".join(cells))
            if len(chunk) == 10000:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")
    return os.path.getsize(path), invalid


def data_lines_file(csv_path, out_path):
    with open(csv_path, "rb") as src, open(out_path, "wb") as dst:
        src.readline()
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)


# ---- /proc -----------------------------------------------------------------------

def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)
    except OSError:
        return 0.0


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def private_kb(pid):
    """Private_Clean + Private_Dirty + Private_Hugetlb of /proc/<pid>/smaps_rollup."""
    n = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Private_"):
                    n += int(line.split()[1])
    except OSError:
        pass
    return n


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = status_kb_meminfo()
    return {"cores": os.cpu_count(), "cpu_model": model, "mem_total_mb": mem // 1024,
            "kernel": platform.release(), "hostname": platform.node()}


def status_kb_meminfo():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


_KAFKA_PID = []


def kafka_pid():
    """The broker's pid: $BOK_KAFKA_PID, else this checkout's pid file, else
    the `java ... kafka.Kafka <server.properties>` process whose properties
    listen on the bootstrap port (a broker started from another checkout).
    The broker may be shared: its CPU then includes everyone's load."""
    if _KAFKA_PID:
        return _KAFKA_PID[0]
    pid = None
    cands = [os.environ.get("BOK_KAFKA_PID", "")]
    try:
        cands.append(open(os.path.join(REPO, ".run", "kafka", "kafka.pid")).read().strip())
    except OSError:
        pass
    for c in cands:
        try:
            os.kill(int(c), 0)
            pid = int(c)
            break
        except (OSError, ValueError):
            pass
    if pid is None:
        want = "PLAINTEXT://" + e.kafka_bootstrap().split(",")[0]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                argv = open("/proc/%s/cmdline" % d, "rb").read().decode("utf-8", "replace").split("\0")
                if "kafka.Kafka" not in argv:
                    continue
                props = argv[argv.index("kafka.Kafka") + 1]
                if any(line.strip() == "listeners=" + want or line.startswith("listeners=" + want + ",")
                       for line in open(props)):
                    pid = int(d)
                    break
            except (OSError, IndexError):
                continue
    if pid is not None:
        _KAFKA_PID.append(pid)
    return pid


def procs(stack):
    out = {k: s.proc.pid for k, s in stack.services.items() if s.alive()}
    for w in stack.workers:
        if w.alive():
            out[w.name] = w.proc.pid
    return out


JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre", "Sweeper thread")


def thread_cpu(pid):
    """{(tid, name): CPU s} of a process's threads ({} if unreadable)."""
    out = {}
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except (OSError, TypeError):
        return out
    for t in tasks:
        try:
            st = open("/proc/%d/task/%s/stat" % (pid, t)).read()
            f = st.rsplit(")", 1)[1].split()
            out[(int(t), st[st.index("(") + 1:st.rindex(")")])] = (int(f[11]) + int(f[12])) / TICK
        except (OSError, ValueError):
            pass
    return out


def jit_cpu_s(pid):
    """CPU s of a JVM's JIT compiler threads (C1, C2, the code sweeper): a
    broker compiles the code paths of a new workload for its first millions
    of rows (docs/PERFORMANCE.md "The broker's CPU"). 0.0 if unreadable."""
    return sum(v for (_, name), v in thread_cpu(pid).items() if name in JIT_THREADS)


def cpu_snapshot(stack):
    return {k: cpu_s(pid) for k, pid in procs(stack).items()}


# ---- kafka -------------------------------------------------------------------------

def topic_partitions(topic):
    raw = subprocess.run(["kcat", "-L", "-b", e.kafka_bootstrap(), "-t", topic, "-J"], capture_output=True,
                         timeout=20).stdout
    try:
        for t in json.loads(raw).get("topics", []):
            if t.get("topic") == topic:
                return len(t.get("partitions") or [])
    except ValueError:
        pass
    return 0


KCAT_PROPS = ["-X", "compression.codec=zstd", "-X", "linger.ms=5", "-X", "acks=all"]


def kcat_baseline(lines_path, rows, partitions):
    topic = "bok.bench.kcat." + e.rand_suffix()
    e.delete_topics(None, [topic])  # when the bench exits
    # The broker auto-creates topics with num.partitions (deploy/kafka.sh: 8);
    # one warm-up message creates it before the clock starts.
    subprocess.run(["kcat", "-P", "-b", e.kafka_bootstrap(), "-t", topic] + KCAT_PROPS, input=b"warmup\n",
                   timeout=60, check=True)
    got = topic_partitions(topic)
    kp = kafka_pid()
    k0 = cpu_s(kp) if kp else 0.0
    t0 = time.time()
    with open(lines_path, "rb") as f:
        p = subprocess.Popen(["kcat", "-P", "-b", e.kafka_bootstrap(), "-t", topic] + KCAT_PROPS, stdin=f,
                             stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.time() - t0
    broker = (cpu_s(kp) - k0) if kp else None
    if p.returncode != 0:
        raise RuntimeError("kcat -P failed: %s" % p.stderr.read().decode("utf-8", "replace")[-500:])
    return {"topic": topic, "partitions": got, "partitions_wanted": partitions, "seconds": secs,
            "rows_per_s": rows / secs, "cpu_s": ru.ru_utime + ru.ru_stime,
            "cpu_s_per_m_rows": (ru.ru_utime + ru.ru_stime) / rows * 1e6,
            "broker_cpu_s": broker, "broker_cpu_s_per_m_rows": broker / rows * 1e6 if broker is not None else None}


def kcat_create(topic):
    """A fresh topic, auto-created (broker's num.partitions) by one warm-up
    message before the clock starts."""
    subprocess.run(["kcat", "-P", "-b", e.kafka_bootstrap(), "-t", topic] + KCAT_PROPS, input=b"warmup\n",
                   timeout=60, check=True)


def kcat_produce(path, topic, extra=()):
    """kcat -P of a file to `topic`: (seconds, kcat CPU s)."""
    t0 = time.time()
    with open(path, "rb") as f:
        p = subprocess.Popen(["kcat", "-P", "-b", e.kafka_bootstrap(), "-t", topic] + KCAT_PROPS + list(extra),
                             stdin=f, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError("kcat -P failed: %s" % p.stderr.read().decode("utf-8", "replace")[-500:])
    return secs, ru.ru_utime + ru.ru_stime


def capture_events(topic, job_id, out_path):
    """The committed events of a finished job, as kcat -P -K'\\t' input
    (key TAB JSON, one a line: the JSON of an event has no raw tab or
    newline), plus the headers of the first event; only the events of `job_id`
    (the model's topic also holds the during-upload job's). Returns (count,
    headers)."""
    mine = b"job=" + job_id.encode()
    cmd = ["kcat", "-C", "-b", e.kafka_bootstrap(), "-t", topic, "-o", "beginning", "-e", "-q",
           "-X", "isolation.level=read_committed", "-f", "%k\\t%h\\t%s\\n"]
    n, hdrs = 0, None
    with open(out_path, "wb") as out:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in p.stdout:
            k, h, v = line.split(b"\t", 2)
            if mine not in h.split(b","):
                continue
            if hdrs is None:
                hdrs = [kv.split(b"=", 1) for kv in h.split(b",") if b"=" in kv]
            out.write(k + b"\t" + v)
            n += 1
        p.wait(timeout=600)
    return n, [(k.decode(), v.decode()) for k, v in (hdrs or [])]


def floor_run(lines_path, events_topic, job_id, rows, tmp, runs=1):
    """The floor (issue 20): kcat -P of the raw lines, then kcat -P of exactly
    the event messages our worker wrote for the same file (captured from the
    finished job's events topic: same keys, JSON payloads and headers), back
    to back; rows/s = rows / (both durations). Two differences kcat cannot
    avoid: the per-event `row` header is one static header of the same length
    (kcat -P headers are per run), and the Kafka timestamp is the producer's
    (not the event time). The events topic is auto-created (broker's
    num.partitions) while ours has events_partitions. With runs > 1 the
    pair runs that many times (fresh topics each) and the fastest counts (a
    conservative floor on a noisy machine); every duration is in the JSON."""
    ev_path = os.path.join(tmp, "events.txt")
    n_ev, hdrs = capture_events(events_topic, job_id, ev_path)
    hdr_args = []
    for k, v in hdrs:
        if k == "row":
            v = str(rows // 2)  # a typical row number: same length as most
        hdr_args += ["-H", "%s=%s" % (k, v)]
    tries = []
    kp = kafka_pid()
    for _ in range(max(1, runs)):
        t_raw, t_ev = "bok.bench.floor.raw." + e.rand_suffix(), "bok.bench.floor.events." + e.rand_suffix()
        e.delete_topics(None, [t_raw, t_ev])  # when the bench exits
        kcat_create(t_raw)
        kcat_create(t_ev)
        k0 = cpu_s(kp) if kp else 0.0
        kj0 = jit_cpu_s(kp)
        s_raw, c_raw = kcat_produce(lines_path, t_raw)
        s_ev, c_ev = kcat_produce(ev_path, t_ev, ["-K", "\t"] + hdr_args)
        tries.append((s_raw + s_ev, s_raw, s_ev, c_raw, c_ev, (cpu_s(kp) - k0) if kp else None, t_ev,
                      jit_cpu_s(kp) - kj0))
        log("floor run %d: raw lines %.2f s + %d events %.2f s" % (len(tries), s_raw, n_ev, s_ev))
    _, s_raw, s_ev, c_raw, c_ev, broker, t_ev, broker_jit = min(tries, key=lambda t: t[0])
    os.unlink(ev_path)
    secs = s_raw + s_ev
    res = {"rows": rows, "events": n_ev, "headers": [k for k, _ in hdrs], "raw_seconds": s_raw, "events_seconds": s_ev,
           "seconds": secs, "rows_per_s": rows / secs, "kcat_cpu_s": c_raw + c_ev,
           "runs": [{"raw_seconds": t[1], "events_seconds": t[2], "broker_cpu_s": t[5]} for t in tries],
           "events_partitions": topic_partitions(t_ev), "our_events_partitions": topic_partitions(events_topic),
           "broker_cpu_s": broker, "broker_cpu_s_per_m_rows": broker / rows * 1e6 if broker is not None else None,
           "broker_jit_cpu_s": broker_jit}
    log("floor: raw lines %.1f s + %d events %.1f s = %.0f rows/s; broker %s CPU s" % (
        s_raw, n_ev, s_ev, res["rows_per_s"], fmt(broker, 1)))
    return res


# ---- gateway ------------------------------------------------------------------------

def create_model(stack, name):
    st, m = stack.http("POST", "/models", {"name": name, "schema": SCHEMA})
    if st != 201 and st != 200:
        raise RuntimeError("POST /models: %s %s" % (st, m))
    return m


def start_upload(stack, model_id, csv_path):
    """curl streams the file from disk (multipart); returns the Popen."""
    return subprocess.Popen(["curl", "-sS", "--max-time", "1800", "-o", "-", "-w", "\n%{http_code}",
                             "-F", "model_id=%s" % model_id, "-F", "file=@%s;type=text/csv" % csv_path,
                             stack.api_url + "/jobs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_upload(p):
    out, err = p.communicate()
    text = out.decode("utf-8", "replace").rstrip("\n")
    body, _, code = text.rpartition("\n")
    if p.returncode != 0 or code not in ("201", "202"):
        raise RuntimeError("upload failed (curl %s, HTTP %s): %s %s" % (p.returncode, code, body[:300], err[-300:]))
    return json.loads(body)


def wait_final(stack, job_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, j = stack.http("GET", "/jobs/" + job_id)
        if st == 200 and j.get("state") in FINAL:
            return j
        time.sleep(0.05)
    raise RuntimeError("job %s not final after %ss" % (job_id, timeout))


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else None


def wrk(url, conns, secs, threads=2):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--timeout", "5s", "--latency", url]
    r = subprocess.run(cmd, capture_output=True, timeout=secs + 60)
    out = r.stdout.decode("utf-8", "replace")
    res = {"conns": conns, "seconds": secs, "rps": None, "p50_ms": None, "p99_ms": None, "errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            res[key] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    if res["rps"] is None:
        res["raw"] = out[-800:] + r.stderr.decode("utf-8", "replace")[-400:]
    return res


# ---- workers' logs -------------------------------------------------------------------

STATS_RE = re.compile(r"(?:stats|stopping): rows_processed=(\d+) batches=(\d+)")


# A worker process runs several lanes ("worker", "worker.1", ...: the log
# component); each logs its own totals and assignments.
LANE_RE = re.compile(r'(?<![\w.-])(worker(?:\.\d+)?)(?=[:\s"])')


def lane_of(line):
    m = LANE_RE.search(line)
    return m.group(1) if m else "worker"


def lane_totals(w, rx):
    """The integers rx captures on each lane's last stats line of worker w's
    log, per lane: {lane: (n, ...)}."""
    per_lane = {}
    try:
        with open(w.log_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                m = rx.search(line)
                if m:
                    per_lane[lane_of(line)] = tuple(int(g) for g in m.groups())
    except OSError:
        pass
    return per_lane


def worker_stats(w):
    """(rows, batches) of a worker process: the last totals of each lane, summed."""
    per_lane = lane_totals(w, STATS_RE)
    return sum(r for r, _ in per_lane.values()), sum(b for _, b in per_lane.values())


TXNS_RE = re.compile(r"(?:stats|stopping): rows_processed=\d+ batches=\d+ transactions=(\d+)")


def worker_txns(w):
    """Transactions a worker process committed: the last totals of each lane, summed."""
    return sum(t for t, in lane_totals(w, TXNS_RE).values())


STEPS_RE = re.compile(r"stopping: rows_processed=\d+ batches=\d+ transactions=\d+.* ms: collect=(\d+) run=(\d+) "
                      r"report=(\d+) offsets=(\d+) commit=(\d+) confirm=(\d+)")
STEPS = ("collect", "run", "report", "offsets", "commit", "confirm")


def worker_steps(w):
    """Where a stopped worker's lanes spent their time: {step: ms}, summed over its lanes."""
    per_lane = lane_totals(w, STEPS_RE).values()
    return {name: sum(t[i] for t in per_lane) for i, name in enumerate(STEPS)}


ASSIGN_RE = re.compile(r"(assigned|revoked) (\d+) partitions")


CONSUMING_RE = re.compile(r'msg="worker \S+ consuming ')


def wait_assigned(stack, partitions, timeout=20):
    """Until the running workers together hold every rows-topic partition and
    every lane that started holds some (with at least as many partitions as
    lanes), so the clock does not include the first group rebalance. (Every
    partition held was not enough: the first lane to join often holds all of
    them for a second or so, until the group rebalances over the other
    lanes -- in the middle of the measurement, revoking the express
    partition while the first small jobs wait.)"""
    deadline = time.time() + timeout
    while time.time() < deadline:
        held, lanes, idle = 0, 0, 0
        for w in stack.workers:
            if not w.alive():
                continue
            last, started = {}, set()
            try:
                with open(w.log_path, "rb") as f:
                    for line in f.read().decode("utf-8", "replace").splitlines():
                        m = ASSIGN_RE.search(line)
                        if m:
                            last[lane_of(line)] = int(m.group(2)) if m.group(1) == "assigned" else 0
                        elif CONSUMING_RE.search(line):
                            started.add(lane_of(line))
            except OSError:
                pass
            held += sum(last.values())
            lanes += len(started)
            idle += len([x for x in started if not last.get(x)])
        if held >= partitions and (idle == 0 or lanes > partitions):
            return True
        time.sleep(0.1)
    log("workers hold fewer than %d partitions after %d s: starting anyway" % (partitions, timeout))
    return False


def stop_workers_for_stats(stack):
    """SIGTERM every worker: each logs its exact totals ("stopping: ...")."""
    out = []
    for w in stack.workers:
        if w.alive():
            w.stop()
            out.append(worker_stats(w) + (worker_txns(w),))
    return out


# ---- sections -----------------------------------------------------------------------

def ingest_run(workers, csv_path, rows, invalid, args, gateway_tests=False):
    res = {"workers": workers, "rows": rows}
    # wrk opens up to 500 connections from 127.0.0.1: no per-IP cap for the bench
    with e.Stack(workers=workers, overrides={"gateway": {"max_connections_per_ip": 0}}) as s:
        m = create_model(s, "bench-%d" % workers)
        wait_assigned(s, args.partitions)
        pids = procs(s)
        kp = kafka_pid()
        c0 = cpu_snapshot(s)
        k0 = cpu_s(kp) if kp else 0.0
        kj0 = jit_cpu_s(kp)
        t0 = time.time()
        p = start_upload(s, m["model_id"], csv_path)
        j = finish_upload(p)
        t_up = time.time() - t0
        j = wait_final(s, j["job_id"], args.job_timeout)
        secs = time.time() - t0
        c1 = cpu_snapshot(s)
        k1 = cpu_s(kp) if kp else 0.0
        kj1 = jit_cpu_s(kp)
        cpu = {k: c1.get(k, 0.0) - c0.get(k, 0.0) for k in c0}
        ours = sum(cpu.values())
        res.update({
            "job_id": j["job_id"], "events_topic": m.get("topic"), "state": j.get("state"), "total": j.get("total"), "success": j.get("success"),
            "errors": j.get("errors"), "expected_errors": invalid,
            "seconds": secs, "upload_seconds": t_up, "rows_per_s": rows / secs, "upload_rows_per_s": rows / t_up,
            "cpu_s": cpu, "cpu_s_total": ours, "cpu_s_per_m_rows": ours / rows * 1e6,
            "broker_cpu_s": k1 - k0, "broker_jit_cpu_s": kj1 - kj0, "rows_topic": s.rows_topic, "rows_topic_partitions": topic_partitions(s.rows_topic),
            "vm_hwm_mb": {k: status_kb(pid, "VmHWM") / 1024 for k, pid in pids.items()},
            "vm_rss_mb": {k: status_kb(pid, "VmRSS") / 1024 for k, pid in pids.items()},
        })
        if j.get("total") != rows or j.get("errors") != invalid:
            res["warning"] = "counters differ from the file: total %s (want %d), errors %s (want %d)" % (
                j.get("total"), rows, j.get("errors"), invalid)
        log("ingest with %d worker(s): %.1f s (upload %.1f s), %.0f rows/s, state %s" % (
            workers, secs, t_up, rows / secs, j.get("state")))
        if gateway_tests:
            res["gateway"] = gateway_section(s, m["model_id"], j["job_id"], args)
        st = stop_workers_for_stats(s)
        rows_done = sum(r for r, _, _ in st)
        batches = sum(b for _, b, _ in st)
        rpcs = sum(t for _, _, t in st)  # one report per transaction (several batches each)
        res["reports"] = {"per_worker": [{"rows": r, "batches": b, "transactions": t} for r, b, t in st],
                          "rows": rows_done, "batches": batches, "report_rpcs": rpcs,
                          "rpcs_per_s": rpcs / secs if secs else 0, "rows_per_rpc": rows_done / rpcs if rpcs else 0}
        if gateway_tests:
            s.add_worker()  # a fresh worker ingests the next upload
            wait_assigned(s, args.partitions)
            res["gateway"]["during_upload"] = during_upload(s, m["model_id"], j["job_id"], csv_path, args)
    return res


def warm_up(tmp, rows, args):
    """Brings the broker's JVM to steady state before anything is timed: one
    ingest of `rows` rows through a stack of its own, then kcat -P of the
    same lines to a throwaway topic. A broker that has just started (CI, make
    kafka-up) JIT-compiles the code of transactions, read_committed fetches
    and produce requests during its first ingests: C1/C2 compiler threads
    took 1.5-4.5 CPU s per million rows of the first four 300,000-row ingests
    on a fresh broker (docs/PERFORMANCE.md "The broker's CPU"), which the
    first measured run paid and the floor, run after it, did not. Returns
    the warm-up ingest's broker CPU s per million rows (what JIT added)."""
    path = os.path.join(tmp, "warmup.csv")
    generate_csv(path, rows)
    kp = kafka_pid()
    k0 = cpu_s(kp) if kp else 0.0
    with e.Stack(workers=1) as s:
        m = create_model(s, "warmup")
        wait_assigned(s, args.partitions)
        j = finish_upload(start_upload(s, m["model_id"], path))
        wait_final(s, j["job_id"], args.job_timeout)
    broker = ((cpu_s(kp) - k0) / rows * 1e6) if kp else None
    lines = os.path.join(tmp, "warmup.txt")
    data_lines_file(path, lines)
    topic = "bok.bench.warmup." + e.rand_suffix()
    e.delete_topics(None, [topic])  # when the bench exits
    kcat_create(topic)
    kcat_produce(lines, topic)
    os.unlink(lines)
    os.unlink(path)
    log("warm-up: %s rows through the pipeline (broker %s CPU s / M rows) and kcat" % (fmt(rows), fmt(broker, 2)))
    return broker


def gateway_section(s, model_id, job_id, args):
    out = {}
    conns = [50] if args.smoke else [50, 500]
    for c in conns:
        for name, path in (("healthz", "/healthz"), ("models", "/models"), ("job", "/jobs/" + job_id)):
            r = wrk(s.api_url + path, c, args.wrk_seconds)
            out["%s_c%d" % (name, c)] = r
            log("wrk %s c=%d: %s req/s p50 %s ms p99 %s ms errors %s" % (path, c, r["rps"], r["p50_ms"], r["p99_ms"],
                                                                          r["errors"]))
    return out


def during_upload(s, model_id, job_id, csv_path, args):
    """p99 of GET /jobs/{id} (wrk, 50 connections) while another upload of the
    same file is being ingested (uploaded, then processed by the workers)."""
    p = start_upload(s, model_id, csv_path)
    time.sleep(0.2)
    r = wrk(s.api_url + "/jobs/" + job_id, 50, args.wrk_seconds)
    r["upload_running_at_end"] = p.poll() is None
    try:
        j = finish_upload(p)
        st, cur = s.http("GET", "/jobs/" + j["job_id"])
        r["job_running_at_end"] = cur.get("state") not in FINAL
        j = wait_final(s, j["job_id"], args.job_timeout)
    except Exception as ex:  # the figure stands; the job is only cleanup
        r["upload_error"] = str(ex)
    log("wrk /jobs/{id} during upload: %s req/s p99 %s ms (upload running at end: %s, job running at end: %s)" % (
        r["rps"], r["p99_ms"], r["upload_running_at_end"], r.get("job_running_at_end")))
    return r


def core_section(args):
    binp = os.path.join(e.BUILD, "bench", "core", "bench_core")
    if not os.path.exists(binp):
        return {"error": "%s not built" % binp}
    cmd = [binp, "--json"] + (["--rows", str(args.rows)] if args.smoke else [])
    r = subprocess.run(cmd, capture_output=True, timeout=300)
    try:
        core = json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": r.stdout.decode()[-300:] + r.stderr.decode()[-300:]}
    log("core: %.0f rows/s, %.3f of newline count" % (core["core_rows_per_s"], core["ratio_to_baseline"]))
    if not args.smoke:
        def ir(*a):
            out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binp] + list(a),
                                 capture_output=True, timeout=600).stderr.decode()
            m = re.search(r"refs:\s+([\d,]+)", out)
            return int(m.group(1).replace(",", "")) if m else None
        a, b = 20000, 40000
        ca, cb = ir("--rows", str(a), "--no-baseline"), ir("--rows", str(b), "--no-baseline")
        ga, gb = ir("--rows", str(a), "--gen-only"), ir("--rows", str(b), "--gen-only")
        if None not in (ca, cb, ga, gb):
            core["instr_per_row_with_gen"] = (cb - ca) / (b - a)
            core["instr_gen_per_row"] = (gb - ga) / (b - a)
            core["instr_per_row"] = ((cb - ca) - (gb - ga)) / (b - a)
            log("core: %.0f instructions/row (callgrind; %.0f incl. generation)" % (
                core["instr_per_row"], core["instr_per_row_with_gen"]))
    return core


class MemSampler(threading.Thread):
    """Samples RssAnon (private memory: heap, stacks) and RssFile+RssShmem
    (mapped files, e.g. the gateway's temp file of a large body: page cache
    the kernel can write back and drop) of each process every 100 ms."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {k: {"anon_mb": 0.0, "file_mb": 0.0, "private_mb": 0.0, "series": []} for k in pids}
        self.done = threading.Event()

    def run(self):
        t0, n = time.time(), 0
        while not self.done.is_set():
            n += 1
            for k, pid in self.pids.items():
                a = status_kb(pid, "RssAnon") / 1024
                f = (status_kb(pid, "RssFile") + status_kb(pid, "RssShmem")) / 1024
                pk = self.peak[k]
                pk["anon_mb"] = max(pk["anon_mb"], a)
                pk["file_mb"] = max(pk["file_mb"], f)
                p = private_kb(pid) / 1024
                pk["private_mb"] = max(pk["private_mb"], p)
                if n % 10 == 0:  # private MB once a second, for the JSON copy
                    pk["series"].append((round(time.time() - t0, 1), round(p, 1)))
            self.done.wait(0.1)

    def stop(self):
        self.done.set()
        self.join(5)
        return self.peak


BYTES_PER_ROW = 78  # of generate_csv's rows (13,000,000 rows ~ 1 GB)


def big_sizes(args):
    """Upload sizes (MB) of the memory section: $BENCH_BIG_MB (comma list,
    e.g. 250,1000 as in issue 20), --big = 250,1000; default 64 MB (none with
    --smoke unless BENCH_BIG_MB is set)."""
    spec = os.environ.get("BENCH_BIG_MB") or ("250,1000" if args.big else ("" if args.smoke else "64"))
    return [float(x) for x in spec.split(",") if x.strip()]


def big_section(args, tmp, mb):
    """One large upload (`mb` MB) with one worker: peak private memory of every
    process, sampled. Run at two sizes: bounded memory = the same peaks."""
    rows = max(1000, int(mb * 1e6 / BYTES_PER_ROW))
    path = os.path.join(tmp, "big.csv")
    size, invalid = generate_csv(path, rows)
    log("big: %.0f MB, %d rows" % (size / 1e6, rows))
    with e.Stack(workers=1) as s:
        m = create_model(s, "bench-big")
        pids = procs(s)
        sampler = MemSampler(pids)
        sampler.start()
        t0 = time.time()
        j = finish_upload(start_upload(s, m["model_id"], path))
        up = time.time() - t0
        os.unlink(path)
        try:
            j = wait_final(s, j["job_id"], max(600, args.job_timeout))
        except RuntimeError as ex:
            j = {"state": str(ex)}
        peak = sampler.stop()
        return {"bytes": size, "rows": rows, "upload_seconds": up, "seconds": time.time() - t0,
                "state": j.get("state"), "vm_hwm_mb": {k: status_kb(pid, "VmHWM") / 1024 for k, pid in pids.items()},
                "peak": peak}


def rejected_download_section(args, tmp, rows):
    """Issue 14: a job whose every row is rejected, downloaded as a file
    (GET /jobs/{id}/rejected/download?annotate=true): memory of the gateway and
    the job service while it streams (before vs during: flat = the pages are
    not held whole)."""
    import urllib.request
    path = os.path.join(tmp, "rejected.csv")
    with open(path, "w") as f:
        f.write("event_id,timestamp,value\n")
        for i in range(rows):
            f.write("r%d,not-a-time,%d\n" % (i, i))
    with e.Stack(workers=1) as s:
        m = create_model(s, "bench-rejected")
        j = finish_upload(start_upload(s, m["model_id"], path))
        os.unlink(path)
        j = wait_final(s, j["job_id"], args.job_timeout)
        pids = {k: s[k].proc.pid for k in ("gateway", "job")}
        before = {k: status_kb(pid, "RssAnon") / 1024 for k, pid in pids.items()}
        sampler = MemSampler(pids)
        sampler.start()
        t0 = time.time()
        n = lines = 0
        req = urllib.request.Request(s.api_url + "/jobs/%s/rejected/download?annotate=true" % j["job_id"])
        with urllib.request.urlopen(req, timeout=600) as r:
            while True:
                chunk = r.read(1 << 16)
                if not chunk:
                    break
                n += len(chunk)
                lines += chunk.count(b"\n")
        secs = time.time() - t0
        peak = sampler.stop()
    res = {"rows": rows, "errors": j.get("errors"), "bytes": n, "lines": lines, "seconds": secs,
           "anon_mb_before": before, "anon_mb_peak": {k: v["anon_mb"] for k, v in peak.items()}}
    if lines != rows + 1:
        res["warning"] = "download has %d lines, want %d" % (lines, rows + 1)
    log("rejected download: %s rows, %.0f MB in %.1f s; RssAnon gateway %.0f -> %.0f MB, job %.0f -> %.0f MB" % (
        fmt(rows), n / 1e6, secs, before["gateway"], res["anon_mb_peak"]["gateway"], before["job"],
        res["anon_mb_peak"]["job"]))
    return res


# ---- report ----------------------------------------------------------------------------

def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return "{:,.0f}".format(x)
    return ("%." + str(nd) + "f") % x


def ratio(a, b):
    return a / b if a is not None and b else None


def table(R):
    rows = []  # (figure, ours, baseline, ratio, goal, note)

    def add(name, ours, base, r=None, note="", nd=0, goal=""):
        rows.append((name, fmt(ours, nd), fmt(base, nd), fmt(r, 3) if r is not None else "-", goal, note))

    kc = R.get("kcat", {})
    fl = R.get("floor")
    wu = R.get("warmup")
    if wu:
        add("warm-up: broker CPU s / M rows, %s-row ingest" % fmt(wu["rows"]), wu.get("broker_cpu_s_per_m_rows"),
            None, None, "not a goal: before any timed run (the broker's JIT; docs/PERFORMANCE.md)", nd=2)
    if fl:
        for ing in R.get("ingest", []):
            add("ingest %dw: rows/s vs floor" % ing["workers"], ing["rows_per_s"], fl["rows_per_s"],
                ratio(ing["rows_per_s"], fl["rows_per_s"]),
                "floor: kcat -P raw lines %.2f s + %s events %.2f s, back to back (fastest of %d)" % (
                    fl["raw_seconds"], fmt(fl["events"]), fl["events_seconds"], len(fl.get("runs", [1]))),
                goal=">= 0.5")
    for ing in R.get("ingest", []):
        w = ing["workers"]
        add("ingest %dw: rows/s (upload->final)" % w, ing["rows_per_s"], kc.get("rows_per_s"),
            ratio(ing["rows_per_s"], kc.get("rows_per_s")), "baseline: kcat -P of the raw lines",
            goal=">= 0.25" if w == 1 else ">= 0.3")
        add("ingest %dw: rows/s upload only" % w, ing["upload_rows_per_s"], kc.get("rows_per_s"),
            ratio(ing["upload_rows_per_s"], kc.get("rows_per_s")), "POST /jobs until 202")
        add("ingest %dw: CPU s / M rows" % w, ing["cpu_s_per_m_rows"], kc.get("cpu_s_per_m_rows"),
            ratio(ing["cpu_s_per_m_rows"], kc.get("cpu_s_per_m_rows")),
            "ours: " + " ".join("%s=%.1f" % (k, v) for k, v in sorted(ing["cpu_s"].items())) + "; baseline: kcat", nd=1)
        per_m = 1e6 / ing["rows"]
        wk = sum(v for k, v in ing["cpu_s"].items() if k.startswith("worker")) * per_m
        add("ingest %dw: worker CPU s / M rows" % w, wk, None, None,
            "all worker processes", nd=2, goal="<= 1.2")
        add("ingest %dw: job service CPU s / M rows" % w, ing["cpu_s"].get("job", 0.0) * per_m, None, None,
            "", nd=2, goal="<= 0.3")
        if fl and fl.get("kcat_cpu_s"):
            # what kcat itself spends on the floor's two runs: the raw lines (the job
            # service's Kafka work) and the same event messages (the worker's)
            ours = (wk + ing["cpu_s"].get("job", 0.0) * per_m)
            kf = fl["kcat_cpu_s"] / fl.get("rows", ing["rows"]) * 1e6
            add("ingest %dw: worker + job service CPU s / M rows vs floor's kcat" % w, ours, kf, ratio(ours, kf),
                "baseline: kcat's own CPU for the floor (raw lines + the same events)", nd=2)
        if kc.get("broker_cpu_s_per_m_rows") is not None:
            add("ingest %dw: broker CPU s / M rows" % w, ing["broker_cpu_s"] / ing["rows"] * 1e6,
                kc["broker_cpu_s_per_m_rows"], ratio(ing["broker_cpu_s"] / ing["rows"] * 1e6,
                                                     kc["broker_cpu_s_per_m_rows"]),
                "baseline: kcat -P raw; shared broker (other load counts)", nd=2)
        if fl and fl.get("broker_cpu_s_per_m_rows"):
            add("ingest %dw: broker CPU s / M rows vs floor" % w, ing["broker_cpu_s"] * per_m,
                fl["broker_cpu_s_per_m_rows"], ratio(ing["broker_cpu_s"] * per_m, fl["broker_cpu_s_per_m_rows"]),
                "baseline: broker during the floor run; shared broker", nd=2, goal="<= 2")
            if "broker_jit_cpu_s" in ing and fl.get("broker_jit_cpu_s") is not None:
                ours_nj = (ing["broker_cpu_s"] - ing["broker_jit_cpu_s"]) * per_m
                fl_nj = (fl["broker_cpu_s"] - fl["broker_jit_cpu_s"]) / fl.get("rows", ing["rows"]) * 1e6
                add("ingest %dw: broker CPU s / M rows vs floor, JIT excluded" % w, ours_nj, fl_nj,
                    ratio(ours_nj, fl_nj), "both without the JVM's compiler threads (ours: %.2f of JIT)" % (
                        ing["broker_jit_cpu_s"] * per_m), nd=2)
        rep = ing.get("reports", {})
        add("reports %dw: report RPCs/s per job" % w, rep.get("rpcs_per_s"), None, None,
            "%d RPCs, %.0f rows/RPC, %d batches" % (rep.get("report_rpcs", 0), rep.get("rows_per_rpc", 0),
                                                    rep.get("batches", 0)), nd=1)
    core = R.get("core", {})
    if "core_rows_per_s" in core:
        add("core: rows/s (1 thread)", core["core_rows_per_s"], None, None, "", goal=">= 1M")
        add("core: MB/s vs newline count", core["core_mb_per_s"], core["baseline_mb_per_s"],
            core["ratio_to_baseline"], "", nd=1)
        if "instr_per_row" in core:
            add("core: instructions/row (callgrind)", core["instr_per_row"], None, None,
                "generation excluded (%.0f incl.)" % core["instr_per_row_with_gen"])
    gw = R.get("gateway", {})
    for c in (50, 500):
        h = gw.get("healthz_c%d" % c)
        if not h:
            continue
        for name, label in (("models", "GET /models"), ("job", "GET /jobs/{id}")):
            g = gw.get("%s_c%d" % (name, c), {})
            add("gateway %s c=%d: req/s" % (label, c), g.get("rps"), h.get("rps"), ratio(g.get("rps"), h.get("rps")),
                "baseline GET /healthz" + (", %d errors" % g["errors"] if g.get("errors") else ""),
                goal=">= 0.3" if name == "job" and c == 50 else "")
            add("gateway %s c=%d: p50 ms" % (label, c), g.get("p50_ms"), h.get("p50_ms"),
                ratio(g.get("p50_ms"), h.get("p50_ms")), "", nd=2)
            add("gateway %s c=%d: p99 ms" % (label, c), g.get("p99_ms"), h.get("p99_ms"),
                ratio(g.get("p99_ms"), h.get("p99_ms")), "", nd=2)
    du = gw.get("during_upload")
    if du:
        idle = gw.get("job_c50", {})
        add("gateway GET /jobs/{id} c=50 during upload: p99 ms", du.get("p99_ms"), idle.get("p99_ms"),
            ratio(du.get("p99_ms"), idle.get("p99_ms")),
            "baseline: same, idle; job %s at wrk end" % ("still ingesting" if du.get("job_running_at_end") else "done"),
            nd=2, goal="<= 2")
    for ing in R.get("ingest", [])[:1]:
        for k in ("gateway", "job", "worker0", "model"):
            if k in ing["vm_hwm_mb"]:
                add("memory: VmHWM %s MB (%s-row file)" % (k, fmt(R["settings"]["rows"])), ing["vm_hwm_mb"][k], None,
                    None, "file %.0f MB" % (R["data"]["bytes"] / 1e6), nd=1)
    bigs = R.get("big") or []
    for b in bigs:
        for k in sorted(b["peak"]):
            add("memory: peak private MB %s, %.0f MB upload" % (k, b["bytes"] / 1e6), b["peak"][k]["private_mb"],
                None, None, "smaps_rollup Private_*, sampled; RssAnon %.1f, VmHWM %.1f; job %s" % (
                    b["peak"][k]["anon_mb"], b["vm_hwm_mb"].get(k, 0), b["state"]), nd=1,
                goal="<= 64" if k in ("worker0", "job") else "")
    for b in bigs:
        if b.get("seconds"):
            add("memory: rows/s upload->final, %.0f MB upload" % (b["bytes"] / 1e6), b["rows"] / b["seconds"], None,
                None, "one worker; wall clock (machine load counts)")
    if len(bigs) >= 2:
        small, big = bigs[0], bigs[-1]
        for k in sorted(big["peak"]):
            a0, a1 = small["peak"][k]["private_mb"], big["peak"][k]["private_mb"]
            add("memory: peak private %s, %.0f vs %.0f MB upload" % (k, big["bytes"] / 1e6, small["bytes"] / 1e6),
                a1, a0, ratio(a1, a0), "flat = bounded memory", nd=1, goal="~1")
    if R.get("fairness"):
        import fairness_bench
        for name, v, note in fairness_bench.table_rows(R["fairness"]):
            add(name, v, None, None, note, nd=3 if isinstance(v, float) else 0)
    head = ("figure", "ours", "baseline", "ratio", "goal", "note")
    w = [max(len(r[i]) for r in rows + [head]) for i in range(6)]
    line = "%-{}s  %{}s  %{}s  %{}s  %-{}s  %s".format(*w[:5])
    out = [line % head, "-" * (sum(w[:5]) + 10 + 20)]
    out += [line % r for r in rows]
    return "\n".join(out)


class _MemoryOnly(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=None, help="rows of the generated CSV (default $BENCH_ROWS, else 1,000,000; smoke 10,000)")
    ap.add_argument("--smoke", action="store_true", help="10,000 rows, 2 s wrk, no 500 connections, no callgrind")
    ap.add_argument("--big", action="store_true", help="memory section at 250 MB and 1 GB (= BENCH_BIG_MB=250,1000)")
    ap.add_argument("--memory-only", action="store_true",
                    help="only the memory section (BENCH_BIG_MB sizes, default 64), with each job's rows/s")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"), help="directory for the JSON copy")
    args = ap.parse_args()
    args.rows = args.rows or int(os.environ.get("BENCH_ROWS") or 0) or (10000 if args.smoke else 1000000)
    args.wrk_seconds = 2 if args.smoke else 5
    args.job_timeout = 120 if args.smoke else 900
    for tool in ("kcat", "curl", "wrk") + (() if args.smoke else ("valgrind",)):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            sys.exit("bench: %s is not installed (make deps)" % tool)
    e.skip_if_missing("model", "job", "worker", "gateway")
    if not e.wait_port(int(e.kafka_bootstrap().rsplit(":", 1)[1]), 2):
        sys.exit("bench: no Kafka broker at %s (bash deploy/kafka.sh start)" % e.kafka_bootstrap())

    with open(os.path.join(e.SRC, "deploy", "config", "job-service.yaml")) as f:
        jcfg = e.yaml.safe_load(f)
    kafka = jcfg.get("kafka", {})
    settings = {"rows": args.rows, "smoke": args.smoke, "build": e.BUILD, "broker": e.kafka_bootstrap(),
                "rows_partitions": kafka.get("rows_partitions"), "batch_rows": kafka.get("batch_rows"),
                "acks": "all (idempotent/transactional producer)",
                "linger_ms": kafka.get("producer", {}).get("linger.ms"),
                "compression": kafka.get("producer", {}).get("compression.codec"),
                "transactions": kafka.get("transactions"), "kcat": " ".join(KCAT_PROPS)}
    args.partitions = int(settings["rows_partitions"] or 8)
    R = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), "settings": settings}
    R["loadavg_start"] = os.getloadavg()
    t_all = time.time()
    print("machine: %d cores, %s, %d MB RAM" % (R["machine"]["cores"], R["machine"]["cpu_model"],
                                               R["machine"]["mem_total_mb"]))
    print("settings: rows topic %s partitions, acks=all, linger.ms=%s, compression=%s, transactions=%s, "
          "%s rows per rows-topic message; kcat %s; %s rows" % (
              settings["rows_partitions"], settings["linger_ms"], settings["compression"], settings["transactions"],
              settings["batch_rows"], settings["kcat"], fmt(args.rows)), flush=True)

    tmp = tempfile.mkdtemp(prefix="bok-bench-")
    if args.memory_only:
        try:
            R["big"] = [big_section(args, tmp, mb) for mb in big_sizes(args)]
        finally:
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)
    try:
        if args.memory_only:
            raise _MemoryOnly()
        csv_path = os.path.join(tmp, "data.csv")
        t0 = time.time()
        size, invalid = generate_csv(csv_path, args.rows)
        R["data"] = {"rows": args.rows, "bytes": size, "invalid_rows": invalid, "gen_seconds": time.time() - t0}
        log("generated %s rows, %.1f MB, %d invalid rows in %.1f s" % (fmt(args.rows), size / 1e6, invalid,
                                                                         time.time() - t0))
        lines_path = os.path.join(tmp, "lines.txt")
        data_lines_file(csv_path, lines_path)
        if not args.smoke:
            R["warmup"] = {"rows": min(args.rows, 1000000)}
            R["warmup"]["broker_cpu_s_per_m_rows"] = warm_up(tmp, R["warmup"]["rows"], args)
        R["kcat"] = kcat_baseline(lines_path, args.rows, settings["rows_partitions"])
        log("kcat -P: %.1f s, %.0f rows/s, %d partitions" % (R["kcat"]["seconds"], R["kcat"]["rows_per_s"],
                                                              R["kcat"]["partitions"]))
        R["ingest"] = []
        one = ingest_run(1, csv_path, args.rows, invalid, args, gateway_tests=True)
        R["gateway"] = one.pop("gateway", {})
        R["ingest"].append(one)
        if one.get("events_topic"):
            try:
                R["floor"] = floor_run(lines_path, one["events_topic"], one["job_id"], args.rows, tmp,
                                       runs=1 if args.smoke else 2)
                if R["floor"]["events"] != args.rows - invalid:
                    R["floor"]["warning"] = "floor: %d events captured, want %d" % (R["floor"]["events"],
                                                                                   args.rows - invalid)
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as ex:
                R["floor"] = None
                R["floor_error"] = str(ex)
                log("floor: " + str(ex))
        os.unlink(lines_path)
        R["ingest"].append(ingest_run(2, csv_path, args.rows, invalid, args))
        os.unlink(csv_path)
        R["core"] = core_section(args)
        R["rejected_download"] = rejected_download_section(args, tmp, 10_000 if args.smoke else 1_000_000)
        if not args.smoke:
            import fairness_bench
            R["fairness"] = fairness_bench.run(int(os.environ.get("BOK_FAIRNESS_BIG_ROWS", "1000000")),
                                               int(os.environ.get("BOK_FAIRNESS_SHARE_ROWS", "500000")),
                                               timeout=args.job_timeout)
        sizes = big_sizes(args)
        if sizes:
            R["big"] = [big_section(args, tmp, mb) for mb in sizes]
    except _MemoryOnly:
        pass
    finally:
        if os.path.isdir(tmp):
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)
    R["seconds"] = time.time() - t_all
    R["loadavg_end"] = os.getloadavg()
    if "big" not in R and "data" in R:
        R["memory_note"] = "peak RSS measured for the %s-row file (%.0f MB); BENCH_BIG_MB=250,1000 for the " \
            "issue's sizes" % (fmt(args.rows), R["data"]["bytes"] / 1e6)
    print(table(R))
    print("ratio = ours / baseline (for rows/s and req/s higher is better; for CPU, latency lower is better); "
          "goal: issue 20")
    print("load average at the start: %s, at the end: %s (%d cores; other load inflates every absolute figure and the shared "
          "broker's CPU)" % (" ".join("%.2f" % x for x in R["loadavg_start"]),
                                  " ".join("%.2f" % x for x in R["loadavg_end"]), os.cpu_count()))
    if R.get("floor_error"):
        print("WARNING: floor not measured: " + R["floor_error"])
    if "memory_note" in R:
        print("note: " + R["memory_note"])
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "bench-%s%s.json" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                                                        "-smoke" if args.smoke else ""))
    with open(path, "w") as f:
        json.dump(R, f, indent=2, sort_keys=True)
    print("json: %s (%.0f s)" % (path, R["seconds"]))
    warnings = [i["warning"] for i in R.get("ingest", []) + [R.get("rejected_download", {}), R.get("floor") or {}]
                if "warning" in i]
    for w in warnings:
        print("WARNING: " + w)
    return 1 if warnings or "error" in R.get("core", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
