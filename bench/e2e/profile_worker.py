#!/usr/bin/python3
"""Where a worker's (or the job service's) time goes during an ingest
(docs/PERFORMANCE.md).

    python3 bench/e2e/profile_worker.py [--rows N] [--tool perf|callgrind|jfr|none] [--proc worker|job|gateway|broker]

One worker, an N-row file (the benchmark's generator) uploaded through the
gateway. --proc names the process measured: its CPU (utime+stime from
/proc/<pid>/stat, upload start -> job final, as `make bench` counts it), and
its profile. perf (default): `perf record -g` on it for the whole job (needs
perf_event_paranoid <= 2 for one's own processes), then the top symbols,
self and children. callgrind (worker or job): that process runs under
valgrind from its start (about 50x slower: keep N small, e.g. 50,000), then
callgrind_annotate --inclusive. none: the CPU figure only (--repeat N uploads
of the file, one after the other, each figure printed, then the mean).
Also prints the process's wall time split: CPU (utime/stime) vs waiting.
--threads: each upload's CPU split by thread name (/proc/<pid>/task; the
worker's librdkafka main threads as main:cons / main:prod -- each lane makes
its consumer, then its producer -- and main:other; the roles mean nothing for
the job service), in CPU s per million rows. Threads that end during the upload
are missing from the split (their CPU is in the process's total).
--proc broker --tool jfr: Java Flight Recorder on the Kafka broker for the
ingest (jcmd JFR.start/stop with the broker's own JDK), then its CPU samples
by thread, by the request handler on the stack (KafkaApis.handle*), by the
first Kafka frame and by the top frame. --event EV (perf): sample every EV
(e.g. page-faults) instead of the CPU clock; --dwarf: DWARF call graphs.
--set KIND:KEY=VALUE: a config override for the stack (repeatable). Every
upload also prints the broker's CPU (a shared broker counts everyone's).
--count-clock (worker): the worker runs with clock_count.c preloaded (compiled
with cc into the temp dir): clock_gettime calls, waits and busy-loop bursts
per thread, printed at the end with the worker's transactions (batches).
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench as rb  # noqa: E402

e = rb.e


def valgrind_cmd(out, cmd):
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + cmd


def start_worker(s, out, args, env=None):
    w = s.add_worker(start=False)
    cmd = [e.binary("worker"), "--config", w.config_path]
    if args.tool == "callgrind" and args.proc == "worker":
        cmd = valgrind_cmd(out, cmd)
    log = open(w.log_path, "ab")
    w.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=w.workdir, env=env)
    e._live.append(w)
    return w


def restart_job_under_valgrind(s, out):
    """The stack's job service again, same config, under callgrind."""
    j = s["job"]
    j.stop(timeout=60)
    log = open(j.log_path, "ab")
    j.proc = subprocess.Popen(valgrind_cmd(out, [e.binary("job"), "--config", j.config_path]), stdout=log,
                              stderr=subprocess.STDOUT, cwd=j.workdir, env=j.env)
    log.close()
    if not e.wait_port(s.job_port, 600, j.proc):
        raise RuntimeError("job service under valgrind did not listen:\n" + j.log_tail())
    s["gateway"].restart()  # a fresh channel to it (the old one may be backing off)
    deadline = time.time() + 600
    while time.time() < deadline:  # until the gateway reaches it (slow first answers under valgrind)
        try:
            st, _ = s.http("GET", "/jobs/00000000-0000-4000-8000-000000000000", timeout=60)
        except Exception:  # noqa: BLE001 -- a timeout: try again
            st = 0
        if st == 404:
            return
        time.sleep(1)
    raise RuntimeError("job service under valgrind does not answer through the gateway")


def report_perf(out, args):
    r = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "--sort", "dso", "-g", "none"],
                       capture_output=True, timeout=300)
    print("---- perf by library ----")
    print("\n".join([x.rstrip() for x in r.stdout.decode("utf-8", "replace").splitlines()
                     if x and not x.startswith("#")][:12]))
    for mode in ("--no-children", "--children"):
        r = subprocess.run(["perf", "report", "-i", out, "--stdio", mode, "--sort", "dso,symbol", "-g", "none",
                            "--percent-limit", "0.8"], capture_output=True, timeout=300)
        lines = [re.sub(r"(\s+-)*\s*$", "", x) for x in r.stdout.decode("utf-8", "replace").splitlines()
                 if x and not x.startswith("#")]
        print("---- perf %s ----" % mode)
        print("\n".join(lines[:args.top]))


def jfr_bin():
    """jcmd and jfr of the JDK that runs the broker (JFR files are per JDK)."""
    kp = rb.kafka_pid()
    exe = os.path.realpath("/proc/%d/exe" % kp)
    d = os.path.dirname(exe)
    return os.path.join(d, "jcmd"), os.path.join(d, "jfr")


JFR_FRAME = re.compile(r"^\s+([\w$.<>/]+)\(.*\)\s+line:")


def report_jfr(out, args):
    """The broker's CPU samples (jdk.ExecutionSample) by top frame, by the
    first kafka.* frame on the stack, and by the request handler
    (KafkaApis.handle*) the sample ran under."""
    _, jfr = jfr_bin()
    r = subprocess.run([jfr, "print", "--events", "jdk.ExecutionSample", "--stack-depth", "64", out],
                       capture_output=True, timeout=600)
    top, kafka, api, thread = {}, {}, {}, {}
    n = 0
    frames, th = [], "?"

    def flush():
        nonlocal n
        if not frames:
            return
        n += 1
        top[frames[0]] = top.get(frames[0], 0) + 1
        k = next((f for f in frames if f.startswith("kafka.") or f.startswith("org.apache.kafka.")), "(no kafka frame)")
        kafka[k] = kafka.get(k, 0) + 1
        a = next((f for f in frames if ".KafkaApis.handle" in f or "ReplicaManager.append" in f or
                  "TransactionCoordinator.handle" in f or "GroupCoordinator" in f), "(no request handler)")
        api[a] = api.get(a, 0) + 1
        thread[th] = thread.get(th, 0) + 1

    for line in r.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("jdk.ExecutionSample"):
            flush()
            frames, th = [], "?"
        elif "sampledThread = " in line:
            th = re.sub(r"\d+", "N", line.split("=", 1)[1].strip().strip('"').split('"')[0])
        m = JFR_FRAME.match(line)
        if m:
            frames.append(m.group(1))
    flush()
    for title, d in (("threads", thread), ("request handler on the stack", api),
                     ("first kafka frame", kafka), ("top frame", top)):
        print("---- jfr: %s (%d samples) ----" % (title, n))
        for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:args.top]:
            print("%6.2f%%  %s" % (100.0 * v / max(n, 1), k))


def report_callgrind(out, args):
    r = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True, timeout=300)
    print("\n".join(r.stdout.decode("utf-8", "replace").splitlines()[:args.top + 20]))
    r = subprocess.run(["callgrind_annotate", out], capture_output=True, timeout=300)
    print("---- self ----")
    print("\n".join(r.stdout.decode("utf-8", "replace").splitlines()[:args.top + 20]))


def thread_split(before, after, rows):
    """CPU s per million rows by thread name; librdkafka main threads by role."""
    mains = sorted(k for k in after if k[1] == "rdk:main")
    grp = {}
    for k, v in after.items():
        name = k[1]
        if name == "rdk:main":
            i = mains.index(k)
            name = "main:other" if i == 0 else ("main:cons" if i % 2 else "main:prod")
        grp[name] = grp.get(name, 0) + v - before.get(k, 0)
    return " ".join("%s=%.2f" % (k, v / rows * 1e6) for k, v in sorted(grp.items()) if v >= 0.005)


def clock_shim(tmp):
    so = os.path.join(tmp, "clock_count.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(HERE, "clock_count.c"), "-ldl",
                    "-lpthread"], check=True)
    return so


def ir_total(path):
    """Ir of a callgrind output file (its summary/totals line)."""
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300000)
    ap.add_argument("--tool", choices=("perf", "callgrind", "jfr", "none"), default="perf",
                    help="jfr: Java Flight Recorder on the broker (--proc broker)")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--proc", choices=("worker", "job", "gateway", "broker"), default="worker",
                    help="which process to measure and profile (default the worker; callgrind: worker or job)")
    ap.add_argument("--repeat", type=int, default=1, help="uploads of the file, one after the other (CPU per upload)")
    ap.add_argument("--keep", metavar="FILE", help="copy the raw perf.data / callgrind.out to FILE")
    ap.add_argument("--threads", action="store_true", help="each upload's CPU by thread name")
    ap.add_argument("--event", metavar="EV",
                    help="perf: sample every EV (e.g. page-faults) instead of the CPU clock at 499 Hz")
    ap.add_argument("--set", action="append", default=[], metavar="KIND:KEY=VALUE",
                    help="a config override for the stack, e.g. worker:batch_max_rows=20000 (repeatable)")
    ap.add_argument("--dwarf", action="store_true", help="perf: DWARF call graphs (callers in libraries without frame pointers)")
    ap.add_argument("--count-clock", action="store_true",
                    help="preload clock_count.c into the worker: clock_gettime calls and busy loops per thread")
    args = ap.parse_args()
    if args.tool == "callgrind" and args.proc in ("gateway", "broker"):
        ap.error("callgrind: --proc worker or job")
    if (args.tool == "jfr") != (args.proc == "broker") and args.tool != "none":
        ap.error("jfr goes with --proc broker, and the broker with --tool jfr or none")
    tmp = tempfile.mkdtemp(prefix="bok-prof-")
    csv_path = os.path.join(tmp, "data.csv")
    rb.generate_csv(csv_path, args.rows)
    out = os.path.join(tmp, {"perf": "prof.data", "jfr": "broker.jfr"}.get(args.tool, "callgrind.out"))
    env = None
    if args.count_clock:
        env = dict(os.environ, LD_PRELOAD=clock_shim(tmp), CGCOUNT_OUT=os.path.join(tmp, "clock"))
    overrides = {}
    for o in args.set:
        kind, kv = o.split(":", 1)
        k, v = kv.split("=", 1)
        overrides.setdefault(kind, {})[k] = v
    with e.Stack(workers=0, overrides=overrides) as s:
        if args.tool == "callgrind" and args.proc == "job":
            restart_job_under_valgrind(s, out)
        w = start_worker(s, out, args, env)
        rb.wait_assigned(s, 8, timeout=60)
        m = rb.create_model(s, "prof")
        pid = (w.proc.pid if args.proc == "worker" else rb.kafka_pid() if args.proc == "broker"
               else s[args.proc].proc.pid)
        perf = None
        if args.tool == "perf":
            rate = ["-e", args.event, "-c", "1"] if args.event else ["-F", "499"]
            cg = ["--call-graph", "dwarf,16384"] if args.dwarf else ["-g"]
            perf = subprocess.Popen(["perf", "record"] + rate + cg + ["-o", out, "-p", str(pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
        if args.tool == "jfr":
            subprocess.run([jfr_bin()[0], str(pid), "JFR.start", "name=bokprof", "settings=default",
                            "filename=" + out], capture_output=True, timeout=120, check=True)
        figures = []
        if args.tool == "callgrind":  # count the ingest only: zero now, dump when the job is final
            subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=600)
        for _ in range(args.repeat):
            c0 = rb.cpu_s(pid)
            kpid = rb.kafka_pid() if args.proc != "broker" else None  # the broker: the line above
            k0 = rb.cpu_s(kpid) if kpid else None
            th0 = rb.thread_cpu(pid) if args.threads else None
            t0 = time.time()
            j = rb.finish_upload(rb.start_upload(s, m["model_id"], csv_path))
            j = rb.wait_final(s, j["job_id"], 3600)
            wall = time.time() - t0
            cpu = rb.cpu_s(pid) - c0
            kcpu = rb.cpu_s(kpid) - k0 if kpid else None
            figures.append(cpu / args.rows * 1e6)
            print("%s: %d rows in %.2f s wall, %.2f s CPU (%.0f%% busy) = %.2f CPU s per million rows; job %s "
                  "total %s errors %s; load %s" % (args.proc, args.rows, wall, cpu, 100 * cpu / wall, figures[-1],
                                                   j.get("state"), j.get("total"), j.get("errors"),
                                                   " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
            if kcpu is not None:
                print("broker: %.2f s CPU = %.2f CPU s per million rows (a shared broker counts everyone's load)" % (
                    kcpu, kcpu / args.rows * 1e6), flush=True)
            if args.threads:
                print("%s: by thread, CPU s per million rows: %s" % (args.proc, thread_split(th0, rb.thread_cpu(pid),
                                                                                              args.rows)), flush=True)
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, timeout=600)
            dumps = sorted(glob.glob(out + ".*"), key=os.path.getmtime)
            if dumps:  # the ingest's counts; the whole run's (start-up, shutdown) go to `out` at exit
                os.replace(dumps[-1], out + ".ingest")
        if len(figures) > 1:
            print("%s: mean %.2f CPU s per million rows over %d uploads" % (args.proc, sum(figures) / len(figures),
                                                                            len(figures)))
        if perf:
            perf.send_signal(2)
            perf.wait(30)
        if args.tool == "jfr":
            subprocess.run([jfr_bin()[0], str(pid), "JFR.stop", "name=bokprof"], capture_output=True, timeout=120,
                           check=True)
        w.stop(timeout=600 if args.tool == "callgrind" else 120)
        print("worker: (rows, batches) %s, %d transactions" % (rb.worker_stats(w), rb.worker_txns(w)))
        print("worker: lanes' time by step, ms summed over the lanes (the whole run): %s" % rb.worker_steps(w))
        if args.count_clock:
            print("---- clock_gettime per worker thread (%d transactions) ----" % rb.worker_txns(w))
            for f in sorted(os.listdir(tmp)):
                if f.startswith("clock.") and not f.endswith(".tmp"):
                    print(open(os.path.join(tmp, f)).read().rstrip())
        if args.tool == "callgrind" and args.proc == "job":
            s["job"].stop(timeout=600)
    if args.tool == "perf":
        report_perf(out, args)
    elif args.tool == "jfr":
        report_jfr(out, args)
    elif args.tool == "callgrind":
        ingest = out + ".ingest"
        if os.path.exists(ingest):
            total = ir_total(ingest)
            print("---- callgrind: the ingest only (zeroed at the upload, dumped when the job was final) ----")
            print("%s: %d instructions for %d rows x %d uploads = %.0f instructions per row" % (
                args.proc, total, args.rows, args.repeat, total / (args.rows * args.repeat)))
            report_callgrind(ingest, args)
            out = ingest
        else:
            report_callgrind(out, args)
    if args.keep and args.tool != "none":
        import shutil
        shutil.copyfile(out, args.keep)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
