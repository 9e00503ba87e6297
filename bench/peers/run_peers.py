#!/usr/bin/python3
"""Peers (issue 20, `make bench-peers`; not in `make test`): the tools a user
would pick instead, on the same file, in the same run, next to our ingest.

    python3 bench/peers/run_peers.py [--rows N] [--timeout S]

1. ours: the N-row CSV of bench/e2e/run_bench.py uploaded through the gateway
   until the job is final, 1 worker (validation + one event per valid row,
   exactly once).
2. Kafka Connect standalone, FileStreamSourceConnector: the same data lines
   into a fresh topic (no validation, no parsing; at-least-once). Jars from
   Maven Central into the cache next to the broker's
   ($BOK_CACHE_DIR/kafka-connect-<version>, bench/peers/connect-pom.xml).
   Its rows/s: from the JVM's start until every line is in the topic (the
   start-up counted, as our services are already running: also printed
   without it).
3. Frictionless `validate` (Python, from PyPI in a venv under the build dir):
   the same CSV against the equivalent Table Schema (validation only, no
   output), errors unlimited.

Every peer runs under a time bound (--timeout) in its own process group and
is killed at the end: nothing is left running. Prints ours / theirs.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench", "e2e"))
import run_bench as rb  # noqa: E402

e = rb.e
KAFKA_VERSION = "4.1.1"
CACHE = os.path.join(os.environ.get("BOK_CACHE_DIR") or os.path.expanduser("~/.cache/batch-on-kafka"),
                     "kafka-connect-" + KAFKA_VERSION)
VENV = os.path.join(e.BUILD, "peers-venv")

# The run_bench.py JSON Schema as a Frictionless Table Schema.
TABLE_SCHEMA = {"fields": [
    {"name": "event_id", "type": "string", "constraints": {"required": True}},
    {"name": "timestamp", "type": "integer", "constraints": {"required": True}},
    {"name": "amount", "type": "number", "constraints": {"required": True, "minimum": 0}},
    {"name": "qty", "type": "integer"},
    {"name": "ok", "type": "boolean"},
    {"name": "country", "type": "string", "constraints": {"enum": ["US", "FR", "DE", "JP"]}},
    {"name": "seen", "type": "integer"},
    {"name": "vec", "type": "array"},
    {"name": "note", "type": "string", "constraints": {"maxLength": 64}},
    {"name": "score", "type": "number"}]}


def log(msg):
    print("peers: " + msg, file=sys.stderr, flush=True)


# ---- fetching -------------------------------------------------------------------

def fetch_connect():
    done = os.path.join(CACHE, ".complete")
    if not os.path.exists(done):
        log("fetching Kafka Connect %s from Maven Central into %s" % (KAFKA_VERSION, CACHE))
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run(["mvn", "-q", "-B", "-f", os.path.join(HERE, "connect-pom.xml"), "dependency:copy-dependencies",
                        "-DoutputDirectory=" + os.path.join(CACHE, "libs"), "-DincludeScope=runtime",
                        "-Dkafka.version=" + KAFKA_VERSION], check=True, timeout=1800)
        if not os.path.exists(os.path.join(CACHE, "libs", "connect-file-%s.jar" % KAFKA_VERSION)):
            raise RuntimeError("connect-file jar missing after the fetch")
        open(done, "w").close()
    return os.path.join(CACHE, "libs")


def fetch_frictionless():
    exe = os.path.join(VENV, "bin", "frictionless")
    if not os.path.exists(exe):
        log("installing frictionless into %s" % VENV)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True, timeout=300)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "frictionless"], check=True, timeout=1800)
    ver = subprocess.run([exe, "--version"], capture_output=True, timeout=120).stdout.decode().strip()
    return exe, ver


# ---- peers ----------------------------------------------------------------------------

def topic_count(topic):
    """Messages in `topic`: the sum over partitions of (last offset + 1)."""
    r = subprocess.run(["kcat", "-C", "-b", e.kafka_bootstrap(), "-t", topic, "-o", "-1", "-e", "-q",
                        "-f", "%p %o\\n"], capture_output=True, timeout=60)
    last = {}
    for line in r.stdout.decode().split("\n"):
        parts = line.split()
        if len(parts) == 2:
            last[parts[0]] = int(parts[1]) + 1
    return sum(last.values())


def connect_run(libs, lines_path, rows, tmp, timeout):
    topic = "bok.bench.connect." + e.rand_suffix()
    subprocess.run(["kcat", "-P", "-b", e.kafka_bootstrap(), "-t", topic] + rb.KCAT_PROPS, input=b"warmup\n",
                   timeout=60, check=True)
    want = rows + 1
    worker = os.path.join(tmp, "connect-worker.properties")
    conn = os.path.join(tmp, "connect-file-source.properties")
    with open(worker, "w") as f:
        f.write("bootstrap.servers=%s\n" % e.kafka_bootstrap()
                + "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
                + "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
                + "offset.storage.file.filename=%s\n" % os.path.join(tmp, "connect.offsets")
                + "offset.flush.interval.ms=10000\nplugin.discovery=only_scan\n"
                + "producer.compression.type=zstd\nproducer.linger.ms=5\nproducer.acks=all\n"
                + "listeners=http://127.0.0.1:%d\n" % e.free_port())
    with open(conn, "w") as f:
        f.write("name=bench-file-source\nconnector.class=org.apache.kafka.connect.file.FileStreamSourceConnector\n"
                "tasks.max=1\nfile=%s\ntopic=%s\nbatch.size=5000\n" % (lines_path, topic))
    logf = open(os.path.join(tmp, "connect.log"), "wb")
    cmd = ["java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
           "-Dlog4j2.configurationFile=" + os.path.join(REPO, "deploy", "kafka", "log4j2.properties"),
           "-cp", os.path.join(libs, "*"), "org.apache.kafka.connect.cli.ConnectStandalone", worker, conn]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    t_first = None
    n = 0
    cpu0 = None
    try:
        while time.time() - t0 < timeout:
            if p.poll() is not None:
                raise RuntimeError("connect exited %s: %s" % (p.returncode, open(logf.name, "rb").read()[-800:]))
            n = topic_count(topic)
            if t_first is None and n > 1:
                t_first = time.time()
                cpu0 = rb.cpu_s(p.pid)
            if n >= want:
                break
            time.sleep(0.2)
        secs = time.time() - t0
        cpu = rb.cpu_s(p.pid)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        logf.close()
    res = {"topic": topic, "messages": n - 1, "seconds": secs, "rows_per_s": (n - 1) / secs, "cpu_s": cpu,
           "complete": n >= want}
    if t_first is not None:
        steady = time.time() if n < want else secs + t0
        res["steady_seconds"] = steady - t_first
        res["steady_rows_per_s"] = (n - 1) / res["steady_seconds"] if res["steady_seconds"] > 0 else None
        res["steady_cpu_s"] = cpu - cpu0
    log("connect: %d of %d lines in %.1f s (%.0f rows/s; without start-up %s rows/s)" % (
        n - 1, rows, secs, res["rows_per_s"], rb.fmt(res.get("steady_rows_per_s"))))
    return res


def frictionless_run(exe, csv_path, rows, tmp, timeout):
    schema = os.path.join(tmp, "schema.json")
    with open(schema, "w") as f:
        json.dump(TABLE_SCHEMA, f)
    out = os.path.join(tmp, "frictionless.json")
    t0 = time.time()
    with open(out, "wb") as f:
        # relative paths: frictionless refuses absolute ones as unsafe (one error, nothing validated)
        p = subprocess.Popen([exe, "validate", os.path.relpath(csv_path, tmp), "--schema", "schema.json",
                              "--limit-errors", "1000000000", "--json"], stdout=f, stderr=subprocess.PIPE,
                             start_new_session=True, cwd=tmp)
        try:
            _, status, ru = os.wait4(p.pid, 0) if _wait(p, timeout) else (None, None, None)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    secs = time.time() - t0
    res = {"seconds": secs, "rows_per_s": rows / secs, "complete": ru is not None}
    if ru is not None:
        res["cpu_s"] = ru.ru_utime + ru.ru_stime
    try:
        rep = json.load(open(out))
        task = (rep.get("tasks") or [{}])[0]
        res["rows_seen"] = (task.get("stats") or {}).get("rows")
        res["errors"] = (task.get("stats") or {}).get("errors")
        res["error_types"] = sorted({x.get("type") for x in (task.get("errors") or []) + (rep.get("errors") or [])})
    except (ValueError, OSError, IndexError, AttributeError):
        pass
    if res.get("rows_seen") != rows:
        res["complete"] = False
        res["warning"] = "frictionless saw %s rows of %d: %s" % (res.get("rows_seen"), rows, res.get("error_types"))
    log("frictionless: %.1f s, %.0f rows/s, errors %s" % (secs, res["rows_per_s"], res.get("errors")))
    return res


def _wait(p, timeout):
    """Waits for p without reaping it (so os.wait4 gets its rusage)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:
            return False
        time.sleep(0.1)
    return False


# ---- main -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_PEERS_ROWS", "200000")))
    ap.add_argument("--timeout", type=float, default=600, help="bound for each peer (s)")
    args = ap.parse_args()
    e.skip_if_missing("model", "job", "worker", "gateway")
    args.partitions = 8
    args.job_timeout = args.timeout
    with open(os.path.join(e.SRC, "deploy", "config", "job-service.yaml")) as f:
        args.partitions = int(e.yaml.safe_load(f).get("kafka", {}).get("rows_partitions") or 8)
    load0 = os.getloadavg()
    libs = fetch_connect()
    exe, fver = fetch_frictionless()
    R = {"rows": args.rows, "frictionless_version": fver, "kafka_connect": KAFKA_VERSION}
    tmp = tempfile.mkdtemp(prefix="bok-peers-")
    try:
        csv_path = os.path.join(tmp, "data.csv")
        size, invalid = rb.generate_csv(csv_path, args.rows)
        lines_path = os.path.join(tmp, "lines.txt")
        rb.data_lines_file(csv_path, lines_path)
        log("%s rows, %.1f MB, %d invalid" % (rb.fmt(args.rows), size / 1e6, invalid))
        R["ours"] = rb.ingest_run(1, csv_path, args.rows, invalid, args)
        R["connect"] = connect_run(libs, lines_path, args.rows, tmp, args.timeout)
        R["frictionless"] = frictionless_run(exe, csv_path, args.rows, tmp, args.timeout)
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    load1 = os.getloadavg()
    ours = R["ours"]["rows_per_s"]
    c, fr = R["connect"], R["frictionless"]
    rows = [
        ("ours: rows/s upload->final, 1 worker", rb.fmt(ours), "-", "-", "",
         "validation + events, exactly once; %s" % R["ours"].get("state")),
        ("vs Kafka Connect FileStreamSource", rb.fmt(ours), rb.fmt(c["rows_per_s"]),
         rb.fmt(rb.ratio(ours, c["rows_per_s"]), 3), "> 1",
         "lines -> topic, no validation; JVM start-up counted%s" % ("" if c["complete"] else "; INCOMPLETE")),
        ("vs Kafka Connect, start-up excluded", rb.fmt(ours), rb.fmt(c.get("steady_rows_per_s")),
         rb.fmt(rb.ratio(ours, c.get("steady_rows_per_s")), 3), "", "first line in the topic -> last"),
        ("vs Frictionless validate", rb.fmt(ours), rb.fmt(fr["rows_per_s"]), rb.fmt(rb.ratio(ours, fr["rows_per_s"]), 3),
         "> 1", "frictionless %s, validation only; errors %s (file: %d, NaN accepted)%s" % (
             fver, fr.get("errors"), invalid, "" if fr["complete"] else "; INCOMPLETE: " + fr.get("warning", ""))),
        ("CPU s / M rows: ours (all processes)", rb.fmt(R["ours"]["cpu_s_per_m_rows"], 2), "-", "-", "",
         "broker %.2f" % (R["ours"]["broker_cpu_s"] / args.rows * 1e6)),
        ("CPU s / M rows: Connect JVM", rb.fmt(c["cpu_s"] / args.rows * 1e6, 2), "-", "-", "", "incl. start-up"),
        ("CPU s / M rows: Frictionless", rb.fmt(fr.get("cpu_s", 0) / args.rows * 1e6, 2), "-", "-", "", ""),
    ]
    head = ("figure", "ours", "theirs", "ours/theirs", "goal", "note")
    w = [max(len(r[i]) for r in rows + [head]) for i in range(6)]
    line = "%-{}s  %{}s  %{}s  %{}s  %-{}s  %s".format(*w[:5])
    print("peers: %s rows (%.1f MB), same file, same run" % (rb.fmt(args.rows), size / 1e6))
    print(line % head)
    print("-" * (sum(w[:5]) + 30))
    for r in rows:
        print(line % r)
    print("load average at the start: %s, at the end: %s (%d cores)" % (
        " ".join("%.2f" % x for x in load0), " ".join("%.2f" % x for x in load1), os.cpu_count()))
    R["loadavg"] = [load0, load1]
    out = os.path.join(REPO, "bench", "results")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "peers-%s.json" % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    with open(path, "w") as f:
        json.dump(R, f, indent=2, sort_keys=True)
    print("json: " + path)
    return 0 if c["complete"] and fr["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
