#!/usr/bin/python3
"""Where a worker's time goes during an ingest (docs/PERFORMANCE.md).

    python3 bench/e2e/profile_worker.py [--rows N] [--tool perf|callgrind] [--proc worker|job|gateway]

One worker, an N-row file (the benchmark's generator) uploaded through the
gateway. perf (default): `perf record -g` on the worker for the whole job
(needs perf_event_paranoid <= 2 for one's own processes), then the top
symbols, self and children. callgrind: the worker runs under valgrind (about
50x slower: keep N small, e.g. 50,000), then callgrind_annotate --inclusive.
Also prints the worker's wall time split: CPU (utime/stime) vs waiting.
"""
import argparse
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300000)
    ap.add_argument("--tool", choices=("perf", "callgrind"), default="perf")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--proc", choices=("worker", "job", "gateway"), default="worker",
                    help="perf only: which process to record (default the worker)")
    ap.add_argument("--keep", metavar="FILE", help="copy the raw perf.data / callgrind.out to FILE")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bok-prof-")
    csv_path = os.path.join(tmp, "data.csv")
    rb.generate_csv(csv_path, args.rows)
    out = os.path.join(tmp, "prof.data" if args.tool == "perf" else "callgrind.out")
    with e.Stack(workers=0) as s:
        w = s.add_worker(start=False)
        cmd = [e.binary("worker"), "--config", w.config_path]
        if args.tool == "callgrind":
            cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + cmd
        log = open(w.log_path, "ab")
        w.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=w.workdir)
        e._live.append(w)
        rb.wait_assigned(s, 8, timeout=60)
        m = rb.create_model(s, "prof")
        perf = None
        if args.tool == "perf":
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", out, "-p",
                                     str(w.proc.pid if args.proc == "worker" else s[args.proc].proc.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
        c0 = rb.cpu_s(w.proc.pid)
        t0 = time.time()
        j = rb.finish_upload(rb.start_upload(s, m["model_id"], csv_path))
        j = rb.wait_final(s, j["job_id"], 3600)
        wall = time.time() - t0
        cpu = rb.cpu_s(w.proc.pid) - c0
        if perf:
            perf.send_signal(2)
            perf.wait(30)
        w.stop(timeout=120)
        print("worker: %d rows in %.2f s wall, %.2f s CPU (%.0f%% busy), %s" % (
            args.rows, wall, cpu, 100 * cpu / wall, rb.worker_stats(w)))
        if args.tool == "perf":
            r = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "--sort", "dso", "-g", "none"],
                               capture_output=True, timeout=300)
            print("---- perf by library ----")
            print("\n".join([x.rstrip() for x in r.stdout.decode("utf-8", "replace").splitlines()
                             if x and not x.startswith("#")][:12]))
            for mode in ("--no-children", "--children"):
                r = subprocess.run(["perf", "report", "-i", out, "--stdio", mode, "--sort", "dso,symbol", "-g", "none",
                                    "--percent-limit", "0.8"], capture_output=True, timeout=300)
                lines = [re.sub(r"(\s+-)*\s*$", "", x) for x in r.stdout.decode("utf-8", "replace").splitlines() if x and not x.startswith("#")]
                print("---- perf %s ----" % mode)
                print("\n".join(lines[:args.top]))
        else:
            r = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True, timeout=300)
            print("\n".join(r.stdout.decode("utf-8", "replace").splitlines()[:args.top + 20]))
            r = subprocess.run(["callgrind_annotate", out], capture_output=True, timeout=300)
            print("---- self ----")
            print("\n".join(r.stdout.decode("utf-8", "replace").splitlines()[:args.top + 20]))
    if args.keep:
        import shutil
        shutil.copyfile(out, args.keep)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
