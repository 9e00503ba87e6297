#!/usr/bin/env python3
"""Torture run (issue 11): several tenants upload jobs at the same time while
processes are SIGKILLed and SIGSTOPped at random, a private Kafka broker is
stopped and started, and the job service is slowed down. After every round
the exactly-once invariants are checked and printed as a table.

    make torture                          # TORTURE_MINUTES=10
    TORTURE_SEED=1234 make torture        # the same data and fault schedule

A round: a fault window (TORTURE_ROUND_SECONDS) in which every tenant uploads
TORTURE_JOBS jobs (CSV and NDJSON, 300..TORTURE_MAX_ROWS rows, 5-20 % invalid
rows, event times from 1970 to 2038) while a fault thread injects one fault
after another; then every process is healed (SIGCONT, broker up, dead
processes started again), a canary job per tenant is uploaded, every job is
awaited (TORTURE_SETTLE_SECONDS) and checked against its file:

  counters   total/success/errors and state equal what the file holds
  events     every valid row's event is read exactly once by a read_committed
             consumer (events grouped by their `job` and `row` headers), with
             the event time as Kafka timestamp; nothing else is there
  late       an event missing at the first read but there at a re-read: the
             job was final before its events were committed
  stuck      a job not final after the settle time
  died       a process that exited without being killed by the harness
  wedged     a canary upload (after the faults, everything up) that failed

An upload that failed because of a fault (HTTP 5xx/timeout, or a job FAILED
with a job-level error) is a "rejected upload": allowed, counted, and it must
have published nothing. After the last round every job of every round is
checked again (events deleted by retention show up there).

Exit status: 0 when every invariant held, 1 when one failed, 2 on a harness
error or the watchdog. The seed is printed first and last; logs of a failing
run are kept (the path is printed).
"""
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import bok_e2e as e  # noqa: E402

e.VALIDATE_OPENAPI = False  # conformance is test_openapi's job; here it would cost CPU


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


MINUTES = env_float("TORTURE_MINUTES", 10)
SEED = env_int("TORTURE_SEED", int(time.time()) % 1000000)
ROUND_SECONDS = env_float("TORTURE_ROUND_SECONDS", 60)
SETTLE_SECONDS = env_float("TORTURE_SETTLE_SECONDS", 180)
LATE_SECONDS = env_float("TORTURE_LATE_SECONDS", 30)  # re-reads of missing events
N_TENANTS = env_int("TORTURE_TENANTS", 3)
N_WORKERS = env_int("TORTURE_WORKERS", 3)
JOBS = env_int("TORTURE_JOBS", 2)  # per tenant per round
MIN_ROWS = env_int("TORTURE_MIN_ROWS", 300)
MAX_ROWS = env_int("TORTURE_MAX_ROWS", 20000)
FAULTS = [f for f in os.environ.get("TORTURE_FAULTS", "kill,stop,broker,slow").split(",") if f]
ALLOW_DIED = os.environ.get("TORTURE_ALLOW_DIED", "0") == "1"
KEEP_LOGS = os.environ.get("TORTURE_KEEP_LOGS", "")
# BOK_FAULT for every process of the stack, e.g. "job.report:delay=500" (the
# fault points of docs/GUARANTEES.md, where the binaries have them)
BOK_FAULT = os.environ.get("TORTURE_BOK_FAULT", "")  # dir; default: a temp dir, only on failure
# The worker aborts a killed worker's open transaction after this (worker.yaml);
# events are first read this long (+5 s) after the last fault.
TXN_TIMEOUT_S = 10
FINAL = ("SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED")
T0 = time.time()
_say_lock = threading.Lock()


def say(msg):
    with _say_lock:
        sys.stdout.write("[%6.1fs] %s\n" % (time.time() - T0, msg))
        sys.stdout.flush()


class HarnessError(Exception):
    pass


# ---- the private broker ------------------------------------------------------

class Broker:
    """A Kafka broker of our own (deploy/kafka.sh with private ports and data
    dir), so stopping it never touches the shared 127.0.0.1:9092 one."""

    def __init__(self, root):
        self.port = e.free_port()
        ctrl = e.free_port()
        while ctrl == self.port:
            ctrl = e.free_port()
        self.dir = os.path.join(root, "kafka")
        self.env = dict(os.environ, BOK_KAFKA_PORT=str(self.port), BOK_KAFKA_CTRL_PORT=str(ctrl),
                        BOK_KAFKA_DIR=self.dir, BOK_KAFKA_HEAP="512m")
        self.script = os.path.join(e.SRC, "deploy", "kafka.sh")
        self.down = False  # stopped on purpose by a fault
        self.lock = threading.Lock()

    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def _run(self, cmd):
        r = subprocess.run(["bash", self.script, cmd], env=self.env, capture_output=True, text=True, timeout=200)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def start(self):
        ok, out = self._run("start")
        if not ok:  # one more try: a broker killed hard may need a second start
            time.sleep(2)
            ok, out = self._run("start")
        if not ok:
            raise HarnessError("kafka.sh start: " + out)

    def stop(self):
        self._run("stop")

    def pid(self):
        try:
            with open(os.path.join(self.dir, "kafka.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def signal(self, sig):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    def kill(self):
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                if self.pid() is None:
                    break
                time.sleep(0.1)


# ---- the processes: faults and supervision -----------------------------------

class Fleet:
    """Every process of the stack plus the broker. The fault thread and the
    supervisor thread both go through here (self.lock); a process the harness
    took down on purpose is in self.down, anything else that is not running
    has died on its own: counted and started again."""

    def __init__(self, stack, broker):
        self.stack = stack
        self.broker = broker
        self.svcs = {"model": stack["model"], "job": stack["job"], "gateway": stack["gateway"]}
        for w in stack.workers:
            self.svcs[w.name] = w
        self.lock = threading.RLock()
        self.down = set()
        self.stopped = set()
        self.died = []  # (round, name, how, last log lines)
        self.round = 0
        self.faults = {}  # round -> {kind: n}
        self.fault_log = []  # (round, text)
        self._stop = threading.Event()
        self._thread = None

    def kill_targets(self):
        return sorted(self.svcs)

    def count_fault(self, kind, text):
        with self.lock:
            f = self.faults.setdefault(self.round, {})
            f[kind] = f.get(kind, 0) + 1
            self.fault_log.append((self.round, text))
        say("fault " + text)

    def kill(self, name):
        with self.lock:
            self.check_one(name)  # gone already: it died before our kill
            self.down.add(name)
            self.stopped.discard(name)
            self.svcs[name].kill()

    def start(self, name):
        with self.lock:
            if not self.svcs[name].alive():
                self.svcs[name].start(wait=False)
            self.down.discard(name)

    def sig(self, name, sig):
        with self.lock:
            if name == "broker":
                self.broker.signal(sig)
            else:
                s = self.svcs[name]
                if s.alive():
                    s.proc.send_signal(sig)
            (self.stopped.add if sig == signal.SIGSTOP else self.stopped.discard)(name)

    def check(self):
        """One supervision pass: a process that is gone and not taken down by
        us died; it is counted and started again."""
        with self.lock:
            for name in self.svcs:
                self.check_one(name)
        if not self.broker.lock.acquire(blocking=False):
            return  # a fault is stopping or starting it
        try:
            if not self.broker.down and self.broker.pid() is None:
                self.died.append((self.round, "broker", "gone", tail(os.path.join(self.broker.dir, "kafka.log"), 4)))
                say("DIED broker; starting it again")
                self.broker.start()
        finally:
            self.broker.lock.release()

    def check_one(self, name):
        s = self.svcs[name]
        if name in self.down or s.proc is None or s.alive():
            return
        rc = s.proc.returncode
        how = ("exit %d" % rc) if rc >= 0 else ("signal %d" % -rc)
        self.died.append((self.round, name, how, s.log_tail(4)))
        say("DIED %s (%s); starting it again. Last log lines:\n%s" % (name, how, indent(s.log_tail(4))))
        s.start(wait=False)

    def supervise(self):
        def loop():
            while not self._stop.wait(0.5):
                try:
                    self.check()
                except Exception as x:  # a restart failing is reported, the loop goes on
                    say("supervisor: %r" % x)
        self._thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop_supervising(self):
        self._stop.set()
        if self._thread:
            self._thread.join(30)

    def heal(self):
        """Everything running again: SIGCONT all, broker up, every process started."""
        with self.lock:
            for name in list(self.stopped):
                self.sig(name, signal.SIGCONT)
            self.broker.signal(signal.SIGCONT)
            for s in self.svcs.values():
                if s.alive():
                    s.proc.send_signal(signal.SIGCONT)
        with self.broker.lock:
            if self.broker.pid() is None:
                self.broker.start()
            self.broker.down = False
        with self.lock:
            for name in list(self.down):
                self.start(name)


# kills are what exactly-once is most about: they come most often
WEIGHTS = {"kill": 3, "stop": 2, "broker": 1, "slow": 1}


class FaultThread(threading.Thread):
    """Injects one random fault after another until stopped; every fault ends
    with its process running again (or the broker started)."""

    def __init__(self, fleet, rng, kinds):
        super().__init__(name="faults", daemon=True)
        self.fleet, self.rng, self.kinds = fleet, rng, kinds
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.halt.wait(self.rng.uniform(1.0, 5.0)):
                kind = self.rng.choices(self.kinds, [WEIGHTS.get(k, 1) for k in self.kinds])[0]
                getattr(self, "fault_" + kind)()
        except Exception as x:
            self.error = x
            say("fault thread: %s" % traceback.format_exc())

    def fault_kill(self):
        name = self.rng.choice(self.fleet.kill_targets())
        after = self.rng.uniform(0, 3)
        self.fleet.count_fault("kill", "SIGKILL %s, start again after %.1fs" % (name, after))
        self.fleet.kill(name)
        time.sleep(after)
        self.fleet.start(name)

    def fault_stop(self):
        name = self.rng.choice(self.fleet.kill_targets() + ["broker"])
        secs = self.rng.uniform(1, 8)
        self.fleet.count_fault("stop", "SIGSTOP %s for %.1fs" % (name, secs))
        self.fleet.sig(name, signal.SIGSTOP)
        try:
            time.sleep(secs)
        finally:
            self.fleet.sig(name, signal.SIGCONT)

    def fault_broker(self):
        b = self.fleet.broker
        secs = self.rng.uniform(3, 20)
        hard = self.rng.random() < 0.3
        self.fleet.count_fault("broker", "broker %s, down for %.1fs" % ("SIGKILL" if hard else "stop", secs))
        with b.lock:
            b.down = True
            b.signal(signal.SIGCONT)
            b.kill() if hard else b.stop()
        try:
            time.sleep(secs)
        finally:
            with b.lock:
                t = time.time()
                b.start()
                b.down = False
            say("broker back (start took %.1fs)" % (time.time() - t))

    def fault_slow(self):
        secs = self.rng.uniform(5, 15)
        paused = self.rng.uniform(0.1, 0.4)
        self.fleet.count_fault("slow", "slow job service: SIGSTOP %d ms of every second for %.0fs"
                               % (paused * 1000, secs))
        end = time.time() + secs
        while time.time() < end:
            self.fleet.sig("job", signal.SIGSTOP)
            try:
                time.sleep(paused)
            finally:
                self.fleet.sig("job", signal.SIGCONT)
            time.sleep(1.0 - paused)


# ---- data ---------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {
    "id": {"type": "string"}, "ts": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}, "qty": {"type": "integer"},
    "kind": {"type": "string", "enum": ["buy", "sell", "hold"]}},
    "required": ["id", "ts"], "x-event-id": "id", "x-event-time": "ts"}
# Event-time ranges by model: "history" is all before 2000 (what time
# retention would delete), "span" is 1970..2038 (the whole signed 32-bit range).
# TORTURE_EVENT_TIMES=lo:hi (unix seconds) or "recent" (the last 6 hours)
# replaces both ranges: a diagnosis knob to look at the other invariants
# without the broker's time retention and its future-timestamp limit.
ERAS = {"history": (0, 946684799), "span": (0, 2147483647)}
_et = os.environ.get("TORTURE_EVENT_TIMES", "").strip()
if _et == "recent":
    _now = int(time.time())
    ERAS = {k: (_now - 6 * 3600, _now - 60) for k in ERAS}
elif _et:
    _lo, _hi = (int(x) for x in _et.split(":"))
    ERAS = {k: (_lo, _hi) for k in ERAS}
KINDS = ["buy", "sell", "hold", ""]
BAD_CSV = ["ts_text", "ts_range", "id_blank", "amount", "kind", "qty", "fields"]
BAD_NDJSON = ["ts_text", "ts_range", "id_blank", "amount", "kind", "qty", "notjson"]


def gen_file(rng, tag, n, fmt, era, bad_frac):
    """(bytes, ts) of a file of n data rows; ts[r] is row r's event time, or
    None when row r is invalid (rows count from 1; ts[0] unused)."""
    lo, hi = ERAS[era]
    ts = [None] * (n + 1)
    bad = set(rng.sample(range(1, n + 1), int(round(n * bad_frac))))
    out = ["id,ts,amount,qty,kind"] if fmt == "csv" else []
    for r in range(1, n + 1):
        t = rng.randint(lo, hi)
        if r == 1 and era == "span":
            t = lo  # 1970-01-01T00:00:00Z itself
        elif r == 2 and era == "span":
            t = hi  # 2038-01-19T03:14:07Z
        row = {"id": "%s-%d" % (tag, r), "ts": t, "amount": round(rng.uniform(-1e4, 1e4), 2),
               "qty": rng.randint(-1000, 1000), "kind": rng.choice(KINDS)}
        how = None
        if r in bad:
            how = rng.choice(BAD_CSV if fmt == "csv" else BAD_NDJSON)
            if how == "ts_text":
                row["ts"] = "soon"
            elif how == "ts_range":
                row["ts"] = 2147483648 + rng.randint(0, 10 ** 6)
            elif how == "id_blank":
                row["id"] = ""
            elif how == "amount":
                row["amount"] = "abc"
            elif how == "kind":
                row["kind"] = "zzz"
            elif how == "qty":
                row["qty"] = 1.5
        else:
            ts[r] = t
        if fmt == "csv":
            line = "%s,%s,%s,%s,%s" % (row["id"], row["ts"], row["amount"], row["qty"], row["kind"])
            out.append(line + (",extra" if how == "fields" else ""))
        elif how == "notjson":
            out.append('{"id":%s,"ts":' % json.dumps(row["id"]))  # cut short: not JSON
        else:
            if row["kind"] == "":
                row["kind"] = None
            out.append(json.dumps(row, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode(), ts


# ---- uploads --------------------------------------------------------------------

class Upload:
    """One file sent to POST /jobs and what became of it."""

    def __init__(self, rnd, tenant, model, tag, fmt, data, ts, canary=False):
        self.round, self.tenant, self.model, self.tag, self.fmt = rnd, tenant, model, tag, fmt
        self.file_name = "%s.%s" % (tag, fmt)
        self.data = data
        self.n = len(ts) - 1
        self.valid = {r: t for r, t in enumerate(ts) if r > 0 and t is not None}
        self.invalid = self.n - len(self.valid)
        self.canary = canary
        self.status = None  # HTTP status of the upload (0: no answer)
        self.answer = None
        self.job_id = None
        self.job = None  # the latest GET /jobs view of it

    def expected_state(self):
        if self.invalid == 0:
            return "SUCCESS"
        return "PARTIAL_SUCCESS" if self.valid else "FAILED"

    def send(self, api):
        ctype = "text/csv" if self.fmt == "csv" else "application/x-ndjson"
        body, mp = e.multipart({"model_id": self.model["model_id"]}, {"file": (self.file_name, self.data, ctype)})
        try:
            self.status, self.answer = e.http(api, "POST", "/jobs", body=body, headers={"Content-Type": mp},
                                              tenant=self.tenant, timeout=120)
        except Exception as x:  # no answer: a fault got in the way
            self.status, self.answer = 0, repr(x)
        if self.status == 202 and isinstance(self.answer, dict):
            self.job_id = self.answer.get("job_id")
            self.job = self.answer
        self.data = None  # the bytes are not needed any more


def job_lists(api, tenants):
    """{tenant: [job]} from GET /jobs, or None for a tenant whose call failed."""
    out = {}
    for t in tenants:
        try:
            st, lst = e.http(api, "GET", "/jobs", tenant=t, timeout=15)
            out[t] = lst if st == 200 and isinstance(lst, list) else None
        except Exception:
            out[t] = None
    return out


def refresh(api, uploads, tenants):
    """Updates every upload's job from the tenants' job lists (an upload that
    got no answer is matched by its file name). Returns the jobs nobody
    uploaded, and whether every list was read."""
    lists = job_lists(api, tenants)
    by_id, by_name = {}, {}
    for t, lst in lists.items():
        for j in lst or []:
            by_id[j["job_id"]] = j
            by_name.setdefault((t, j.get("file_name")), []).append(j)
    for u in uploads:
        if lists.get(u.tenant) is None:
            continue
        if u.job_id is None:
            cands = by_name.get((u.tenant, u.file_name), [])
            if len(cands) == 1:
                u.job_id = cands[0]["job_id"]
        if u.job_id in by_id:
            u.job = by_id[u.job_id]
    mine = {u.job_id for u in uploads if u.job_id}
    strangers = [j for j in by_id.values() if j["job_id"] not in mine]
    return strangers, all(v is not None for v in lists.values())


def is_final(u):
    return u.job is not None and u.job.get("state") in FINAL


# ---- events -----------------------------------------------------------------------

def read_events(bootstrap, topics, committed=True):
    """{job_id: {row: [kafka timestamps]}} and {key prefix: n} of events whose
    job header is not a job id, from a read_committed consumer of every topic
    (from the beginning to the last stable offset)."""
    by_job = {}
    isolation = "isolation.level=" + ("read_committed" if committed else "read_uncommitted")
    for topic in topics:
        out = None
        for attempt in range(5):
            cmd = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                   "-f", "%k\\t%T\\t%h\\n", "-X", isolation]
            try:
                r = subprocess.run(cmd, capture_output=True, timeout=120)
            except subprocess.TimeoutExpired:
                say("kcat %s timed out; again" % topic)
                continue
            if r.returncode == 0:
                out = r.stdout
                break
            err = r.stderr.decode("utf-8", "replace")
            if "Unknown topic" in err or "UNKNOWN_TOPIC" in err:
                out = b""
                break
            say("kcat %s: rc %d %s; again" % (topic, r.returncode, err.strip()[:200]))
            time.sleep(2)
        if out is None:
            raise HarnessError("cannot read topic %s" % topic)
        for line in out.split(b"\n"):
            parts = line.split(b"\t", 2)
            if len(parts) < 3:
                continue
            hdr = {}
            for kv in parts[2].decode("utf-8", "replace").split(","):
                k, _, v = kv.partition("=")
                hdr[k] = v
            job, row = hdr.get("job", "?"), hdr.get("row", "")
            key = parts[0].decode("utf-8", "replace")
            try:
                ts = int(parts[1])
            except ValueError:
                ts = None
            rows = by_job.setdefault(job, {})
            rows.setdefault(int(row) if row.isdigit() else -1, []).append((ts, key))
    return by_job


class Tally:
    """The invariants of a set of uploads against one read of the events."""

    COLS = ["jobs", "rejected", "events", "lost", "dup", "late", "extra", "bad_ts", "bad", "stuck", "wedged"]

    def __init__(self):
        for c in self.COLS:
            setattr(self, c, 0)
        self.details = []
        self.missing = {}  # job_id -> set of rows with no event
        self.bad_jobs = []  # uploads whose counters or state are wrong

    def note(self, what, u, text):
        self.details.append("%-8s %s job %s (%s, %s rows, %s): %s" % (
            what, u.file_name, u.job_id or "-", u.tenant, u.n, u.model["name"], text))


def evaluate(uploads, events, strangers=(), strays=False):
    t = Tally()
    t.jobs = len(uploads)
    known = set()
    for u in uploads:
        known.add(u.job_id)
        got = events.get(u.job_id, {}) if u.job_id else {}
        n_events = sum(len(v) for v in got.values())
        t.events += n_events
        if 400 <= (u.status or 0) < 500:
            t.bad += 1
            t.note("bad", u, "upload answered %s %s" % (u.status, str(u.answer)[:200]))
            continue
        if u.job is None or not u.job_id:
            if u.status == 202:
                t.bad += 1
                t.note("bad", u, "accepted (202) but not in GET /jobs")
                continue
            # no answer and no job: rejected; nothing may carry its ids
            t.rejected += 1
            if u.canary:
                t.wedged += 1
                t.note("wedged", u, "canary upload failed: %s %s" % (u.status, str(u.answer)[:200]))
            continue
        j = u.job
        if j.get("state") not in FINAL:
            t.stuck += 1
            t.note("stuck", u, "state %s %s/%s/%s after the settle time" % (
                j.get("state"), j.get("total"), j.get("success"), j.get("errors")))
            continue
        if j.get("state") == "FAILED" and j.get("error") and not j.get("success"):
            t.rejected += 1
            if u.canary:
                t.wedged += 1
                t.note("wedged", u, "canary job FAILED: %s" % j.get("error"))
            if n_events:
                t.extra += n_events
                t.note("extra", u, "%d events of a rejected job (FAILED: %s)" % (n_events, j.get("error")))
            continue
        want = (u.n, len(u.valid), u.invalid, u.expected_state())
        have = (j.get("total"), j.get("success"), j.get("errors"), j.get("state"))
        if want != have:
            t.bad += 1
            t.bad_jobs.append(u)
            t.note("bad", u, "total/success/errors/state %s, expected %s%s" % (
                "/".join(map(str, have)), "/".join(map(str, want)),
                (" error: %s" % j["error"]) if j.get("error") else ""))
        missing = set()
        for r, want_ts in u.valid.items():
            seen = got.get(r)
            if not seen:
                missing.add(r)
                continue
            if len(seen) > 1:
                t.dup += len(seen) - 1
            # librdkafka reads a timestamp of 0 as "now": the worker stamps
            # the event time 0 as 1 ms (docs/GUARANTEES.md, known limits)
            if any(ts != max(want_ts * 1000, 1) for ts, _ in seen):
                t.bad_ts += 1
                if t.bad_ts <= 5:
                    t.note("bad_ts", u, "row %d: Kafka timestamp %s, event time %d s" % (r, seen[0][0], want_ts))
        extra = sum(len(v) for r, v in got.items() if r not in u.valid)
        if extra:
            t.extra += extra
            t.note("extra", u, "%d events for rows that are not valid rows of the file, e.g. rows %s" % (
                extra, sorted(r for r in got if r not in u.valid)[:5]))
        dups = sorted(r for r, v in got.items() if len(v) > 1 and r in u.valid)
        if dups:
            t.note("dup", u, "%d rows more than once, e.g. rows %s" % (len(dups), dups[:5]))
        if missing:
            t.missing[u.job_id] = missing
            t.lost += len(missing)
    # events whose job header is none of these jobs: extra when their key
    # names one of these uploads (or, with strays=True, whatever they are)
    tags = {u.tag: u for u in uploads}
    for job, rows in events.items():
        if job in known:
            continue
        for r, seen in rows.items():
            for ts, key in seen:
                u = tags.get(key.rsplit("-", 1)[0])
                if u is None and not strays:
                    continue
                t.extra += 1
                if t.extra <= 5 and u is not None:
                    t.note("extra", u, "event of row %s under job %s, not this upload's job" % (r, job))
                elif t.extra <= 5:
                    t.details.append("extra    event %s (job %s, row %s) of no upload" % (key, job, r))
    for j in strangers:
        t.bad += 1
        t.details.append("bad      a job nobody uploaded: %s" % j)
    return t


def settle_and_check(api, bootstrap, topics, uploads, tenants, last_fault_end, all_uploads, settle, strays=False):
    """Waits (bounded) for every upload's job to be final, then checks the
    events; missing ones are read again for LATE_SECONDS (late vs lost)."""
    deadline = time.time() + settle
    strangers = []
    while True:
        strangers, complete = refresh(api, all_uploads, tenants)
        if complete and all(is_final(u) or (u.job_id is None and u.status != 202) for u in uploads):
            break
        if time.time() > deadline:
            say("settle: %d jobs not final after %.0fs" % (
                sum(1 for u in uploads if u.job_id and not is_final(u)), settle))
            break
        time.sleep(1.0)
    # zombie transactions of killed workers end after the transaction timeout
    wait = last_fault_end + TXN_TIMEOUT_S + 5 - time.time()
    if wait > 0:
        time.sleep(wait)
    ev = read_events(bootstrap, topics)
    t = evaluate(uploads, ev, strangers, strays)
    first_missing = {j: set(r) for j, r in t.missing.items()}
    end = time.time() + LATE_SECONDS
    while t.missing and time.time() < end:
        time.sleep(5)
        ev = read_events(bootstrap, topics)
        t = evaluate(uploads, ev, strangers, strays)
    late = sum(len(rows - t.missing.get(j, set())) for j, rows in first_missing.items())
    t.late = late
    for j, rows in first_missing.items():
        came = rows - t.missing.get(j, set())
        if came:
            u = next(x for x in uploads if x.job_id == j)
            t.note("late", u, "%d events not readable when the job was final, readable later (rows %s)" % (
                len(came), sorted(came)[:5]))
    for j, rows in t.missing.items():
        u = next(x for x in uploads if x.job_id == j)
        times = [u.valid[r] for r in rows]
        future = sum(1 for x in times if x > time.time() + 3600)
        t.note("lost", u, "%d valid rows without an event, e.g. rows %s; event times %s..%s, %d of them more "
               "than 1 h in the future" % (len(rows), sorted(rows)[:5], year(min(times)), year(max(times)), future))
    diagnose(api, bootstrap, topics, uploads, t)
    return t


def diagnose(api, bootstrap, topics, uploads, t):
    """Hints for the report: the top errors of jobs with wrong counters; for
    lost events, whether the broker deleted log segments (log start offset
    above 0) and whether the lost rows are in the log uncommitted."""
    for u in t.bad_jobs[:10]:
        try:
            st, errs = e.http(api, "GET", "/jobs/%s/errors" % u.job_id, tenant=u.tenant, timeout=15)
        except Exception as x:
            st, errs = 0, repr(x)
        if st == 200 and isinstance(errs, list):
            top = "; ".join("%s %s x%s: %s" % (x.get("code"), x.get("column"), x.get("count"),
                                              str(x.get("example", ""))[:90]) for x in errs[:2])
        else:
            top = "GET errors: %s %s" % (st, str(errs)[:100])
        t.note("diag", u, "top errors: " + top)
    if not t.missing:
        return
    lost_topics = sorted({u.model["topic"] for u in uploads if u.job_id in t.missing})
    for topic in lost_topics:
        starts = log_starts(bootstrap, topic)
        moved = {p: o for p, o in starts.items() if o > 0}
        if moved:
            t.details.append("diag     %s: log start offset above 0 on partitions %s: the broker deleted "
                             "events (retention)" % (topic, moved))
    unc = read_events(bootstrap, lost_topics, committed=False)
    n_unc = sum(1 for j, rows in t.missing.items() for r in rows if unc.get(j, {}).get(r))
    t.details.append("diag     %d of the %d lost events are in the log but not committed (aborted or still open "
                     "transactions)" % (n_unc, t.lost))
    for topic in lost_topics:
        for line in where_lost(bootstrap, topic, t.missing):
            t.details.append("diag     " + line)


def _positions(bootstrap, topic, committed):
    """[(partition, offset, job, row)] of every event of a topic."""
    cmd = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\t%o\t%h\n",
           "-X", "isolation.level=" + ("read_committed" if committed else "read_uncommitted")]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return []
    out = []
    for line in r.stdout.split(b"\n"):
        parts = line.split(b"\t", 2)
        if len(parts) < 3:
            continue
        hdr = dict(kv.partition("=")[::2] for kv in parts[2].decode("utf-8", "replace").split(","))
        try:
            out.append((int(parts[0]), int(parts[1]), hdr.get("job", "?"), int(hdr.get("row", "-1"))))
        except ValueError:
            pass
    return out


def where_lost(bootstrap, topic, missing):
    """Where the lost events sit: partition, offsets, and whether they lie
    past the partition's last stable offset (a transaction still open: it
    holds every later event back) or below it (their transaction aborted)."""
    unc = _positions(bootstrap, topic, False)
    com = _positions(bootstrap, topic, True)
    ends = {}
    for p, o, _, _ in com:
        ends[p] = max(ends.get(p, -1), o)
    lost = {}
    for p, o, job, row in unc:
        if row in missing.get(job, ()):
            lost.setdefault(p, []).append(o)
    lines = []
    for p, offs in sorted(lost.items()):
        last = ends.get(p, -1)
        past = sum(1 for o in offs if o > last)
        hi = max(o for q, o, _j, _r in unc if q == p)
        lines.append("%s[%d]: %d lost events at offsets %d..%d; last committed event read at %d, log end %d; "
                     "%d of them past it (an open transaction holds them back), %d below (aborted)"
                     % (topic, p, len(offs), min(offs), max(offs), last, hi, past, len(offs) - past))
    return lines


def log_starts(bootstrap, topic):
    """{partition: log start offset} of a topic (kcat -Q, -2 = earliest)."""
    try:
        r = subprocess.run(["kcat", "-L", "-b", bootstrap, "-t", topic, "-J"], capture_output=True, timeout=30)
        parts = [p["partition"] for t in json.loads(r.stdout)["topics"] for p in t["partitions"]]
        cmd = ["kcat", "-Q", "-b", bootstrap]
        for p in parts:
            cmd += ["-t", "%s:%d:-2" % (topic, p)]
        r = subprocess.run(cmd, capture_output=True, timeout=30, text=True)
    except (subprocess.TimeoutExpired, ValueError, KeyError):
        return {}
    out = {}
    for line in r.stdout.splitlines():
        m = line.rsplit(" ", 3)  # "<topic> [<p>] offset <n>"
        if len(m) == 4 and m[2] == "offset":
            out[int(m[1].strip("[]"))] = int(m[3])
    return out


# ---- report --------------------------------------------------------------------------

FAULT_ABBR = [("kill", "kill"), ("stop", "stop"), ("broker", "brk"), ("slow", "slow")]
HEAD = ("round", "faults", "jobs", "rejected", "events", "lost", "dup", "late", "extra", "bad_ts", "bad",
        "stuck", "died", "wedged")
WIDTH = (5, 27, 5, 8, 8, 6, 5, 6, 6, 6, 5, 5, 5, 6)


def fmt_faults(f):
    return " ".join("%s:%d" % (ab, f.get(k, 0)) for k, ab in FAULT_ABBR if f.get(k))or "-"


def table(rows):
    line = "  ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(HEAD, WIDTH)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(v).rjust(w) if i > 1 else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, WIDTH))))
    return "\n".join(out)


def failures(t, died):
    keys = ["lost", "dup", "late", "extra", "bad_ts", "bad", "stuck", "wedged"]
    n = sum(getattr(t, k) for k in keys)
    return n + (0 if ALLOW_DIED else died)


def year(t):
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def indent(s):
    return "\n".join("    " + x for x in s.splitlines())


def tail(path, n):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
    except OSError:
        return "(no log)"


# ---- the run ------------------------------------------------------------------------------

def make_uploads(seed, rnd, ti, tenant, models, n_jobs, canary=False):
    rng = random.Random("%d/%d/%s/%s" % (seed, rnd, tenant, "canary" if canary else "jobs"))
    out = []
    for k in range(n_jobs):
        fmt = rng.choice(["csv", "ndjson"])
        model = rng.choice(models)
        if canary:
            n, bad = 200, 0.1
        else:
            n = int(math.exp(rng.uniform(math.log(MIN_ROWS), math.log(max(MIN_ROWS, MAX_ROWS)))))
            bad = 0.0 if rng.random() < 0.15 else rng.uniform(0.05, 0.20)
        tag = "r%d%s-t%d-j%d-%s" % (rnd, "c" if canary else "", ti, k, "".join(rng.choice("abcdefghjkmnpqrstuvwxyz")
                                                                           for _ in range(5)))
        data, ts = gen_file(rng, tag, n, fmt, model["era"], bad)
        out.append(Upload(rnd, tenant, model, tag, fmt, data, ts, canary=canary))
    return out


def wait_ready(api, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            st, _ = e.http(api, "GET", "/readyz", timeout=5)
            if st == 200:
                return True
        except Exception:
            pass
        time.sleep(0.5)
    return False


def run_round(rnd, window, ctx):
    s, fleet, broker = ctx["stack"], ctx["fleet"], ctx["broker"]
    tenants, models = ctx["tenants"], ctx["models"]
    api = s.api_url
    fleet.round = rnd
    died0 = len(fleet.died)
    say("round %d: %d tenants x %d jobs, fault window %.0fs" % (rnd, len(tenants), JOBS, window))
    batches = [make_uploads(SEED, rnd, ti, t, models[t], JOBS) for ti, t in enumerate(tenants)]
    uploads = [u for b in batches for u in b]
    ctx["uploads"] += uploads
    say("round %d: %d files, %d rows (%d valid)" % (rnd, len(uploads), sum(u.n for u in uploads),
                                                    sum(len(u.valid) for u in uploads)))
    faults = FaultThread(fleet, random.Random("%d/%d/faults" % (SEED, rnd)), FAULTS) if FAULTS else None
    t_start = time.time()
    if faults:
        faults.start()

    def tenant_loop(batch, seed):
        rng = random.Random(seed)
        gap = window * 0.7 / max(1, len(batch))
        for u in batch:
            time.sleep(rng.uniform(0, gap))
            u.send(api)
            say("upload %s (%s, %d rows): %s %s" % (u.file_name, u.tenant, u.n, u.status,
                                                   u.job_id or str(u.answer)[:120]))
    threads = [threading.Thread(target=tenant_loop, args=(b, "%d/%d/%d/gaps" % (SEED, rnd, i)), daemon=True)
               for i, b in enumerate(batches)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    left = t_start + window - time.time()
    if left > 0:
        time.sleep(left)
    if faults:
        faults.halt.set()
        faults.join(120)
        if faults.is_alive():
            raise HarnessError("the fault thread did not end")
        if faults.error:
            say("round %d: the fault thread stopped early: %r" % (rnd, faults.error))
    fleet.heal()
    last_fault_end = time.time()
    say("round %d: faults over (%s); healing" % (rnd, fmt_faults(fleet.faults.get(rnd, {}))))
    ready = wait_ready(api, 90)
    canaries = [u for ti, t in enumerate(tenants) for u in make_uploads(SEED, rnd, ti, t, models[t], 1, canary=True)]
    ctx["uploads"] += canaries
    if not ready:
        say("round %d: gateway /readyz not 200 within 90 s after the faults" % rnd)
    for u in canaries:
        u.send(api)
        say("canary %s: %s %s" % (u.file_name, u.status, u.job_id or str(u.answer)[:120]))
    round_uploads = uploads + canaries
    t = settle_and_check(api, broker.bootstrap(), ctx["topics"], round_uploads, tenants, last_fault_end,
                         ctx["uploads"], SETTLE_SECONDS)
    died = len(fleet.died) - died0
    for (r, name, how, lines) in fleet.died[died0:]:
        t.details.append("died     %s (%s); last log lines:\n%s" % (name, how, indent(lines)))
    row = [rnd, fmt_faults(fleet.faults.get(rnd, {}))] + [getattr(t, c) for c in
                                                          ["jobs", "rejected", "events", "lost", "dup", "late",
                                                           "extra", "bad_ts", "bad", "stuck"]] + [died, t.wedged]
    return row, t, failures(t, died)


def final_check(ctx):
    s, broker, fleet = ctx["stack"], ctx["broker"], ctx["fleet"]
    fleet.round = "final"
    died0 = len(fleet.died)
    say("final check: every job of every round, events read again")
    t = settle_and_check(s.api_url, broker.bootstrap(), ctx["topics"], ctx["uploads"], ctx["tenants"],
                         time.time() - TXN_TIMEOUT_S, ctx["uploads"], 30, strays=True)
    died = len(fleet.died) - died0
    faults = {}
    for f in fleet.faults.values():
        for k, v in f.items():
            faults[k] = faults.get(k, 0) + v
    row = ["all", fmt_faults(faults)] + [getattr(t, c) for c in ["jobs", "rejected", "events", "lost", "dup", "late",
                                                                 "extra", "bad_ts", "bad", "stuck"]] + \
          [len(fleet.died), t.wedged]
    return row, t, failures(t, died)


def keep_logs(ctx, dest):
    os.makedirs(dest, exist_ok=True)
    s = ctx.get("stack")
    if s is not None:
        for f in os.listdir(s.dir):
            if f.endswith(".log") or f.endswith(".yaml"):
                shutil.copy(os.path.join(s.dir, f), dest)
    b = ctx.get("broker")
    if b is not None and os.path.exists(os.path.join(b.dir, "kafka.log")):
        shutil.copy(os.path.join(b.dir, "kafka.log"), dest)
    if b is not None and os.path.isdir(os.path.join(b.dir, "data")):
        # The broker's log segments (a few MB), for kafka.tools.DumpLogSegments:
        # which transaction held a lost event, and how it ended.
        shutil.copytree(os.path.join(b.dir, "data"), os.path.join(dest, "kafka-data"), dirs_exist_ok=True,
                        ignore_dangling_symlinks=True)
    with open(os.path.join(dest, "faults.txt"), "w") as f:
        for r, text in ctx["fleet"].fault_log if ctx.get("fleet") else []:
            f.write("round %s: %s\n" % (r, text))


def watchdog(limit, ctx):
    def fire():
        say("WATCHDOG: the run exceeded %.0fs; killing everything (seed %d)" % (limit, SEED))
        emergency(ctx)
        os._exit(2)
    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    return t


def emergency(ctx):
    for s in list(e._live):
        try:
            if s.alive():
                s.proc.send_signal(signal.SIGCONT)
            s.kill()
        except Exception:
            pass
    b = ctx.get("broker")
    if b is not None:
        try:
            b.signal(signal.SIGCONT)
            b.kill()
        except Exception:
            pass
        shutil.rmtree(os.path.dirname(b.dir), ignore_errors=True)


def main():
    say("torture: seed %d (replay: TORTURE_SEED=%d), %.1f minutes, %d tenants, %d workers, faults %s"
        % (SEED, SEED, MINUTES, N_TENANTS, N_WORKERS, ",".join(FAULTS) or "none"))
    say("event times: " + ", ".join("%s %s..%s" % (k, year(lo), year(hi)) for k, (lo, hi) in ERAS.items()))
    for n in ("model", "job", "worker", "gateway"):
        if not os.path.exists(e.binary(n)):
            say("%s is not built (BOK_BUILD_DIR=%s)" % (e.BINARIES[n], e.BUILD))
            return 2
    root = tempfile.mkdtemp(prefix="bok-torture-")
    ctx = {"uploads": []}
    dog = watchdog(MINUTES * 60 + 2 * SETTLE_SECONDS + 300, ctx)
    ctx["broker"] = broker = Broker(root)
    rows, bad, rc = [], 0, 0
    try:
        t = time.time()
        broker.start()
        say("private broker on %s (started in %.1fs)" % (broker.bootstrap(), time.time() - t))
        os.environ["BOK_KAFKA_BOOTSTRAP"] = broker.bootstrap()  # bok_e2e's Stack and kcat use it
        if BOK_FAULT:
            os.environ["BOK_FAULT"] = BOK_FAULT
            say("BOK_FAULT=%s for every process" % BOK_FAULT)
        tenants = ["acme", "globex", "tenant_a", "initech", "umbrella"][:max(1, N_TENANTS)]
        with e.Stack(workers=N_WORKERS) as s:
            ctx["stack"] = s
            ctx["fleet"] = fleet = Fleet(s, broker)
            ctx["tenants"] = tenants
            ctx["models"], ctx["topics"] = {}, []
            for t in tenants:
                ctx["models"][t] = []
                for era in ("history", "span"):
                    st, m = e.http(s.api_url, "POST", "/models", {"name": "torture-" + era, "schema": SCHEMA},
                                   tenant=t)
                    if st != 201:
                        raise HarnessError("create model: %s %s" % (st, m))
                    m["era"] = era
                    ctx["models"][t].append(m)
                    ctx["topics"].append(m["topic"])
            fleet.supervise()
            deadline = time.time() + MINUTES * 60
            rnd = 0
            try:
                while True:
                    rnd += 1
                    window = max(20.0, min(ROUND_SECONDS, deadline - time.time()))
                    row, tally, nbad = run_round(rnd, window, ctx)
                    rows.append(row)
                    bad += nbad
                    print("\n" + table(rows), flush=True)
                    for d in tally.details[:40]:
                        print("  " + d)
                    if len(tally.details) > 40:
                        print("  ... %d more" % (len(tally.details) - 40))
                    print(flush=True)
                    if time.time() + 20 > deadline:
                        break
                fleet.heal()
                row, tally, nbad = final_check(ctx)
                rows.append(row)
                bad += nbad
            finally:
                fleet.stop_supervising()
                fleet.heal()
            print("\n" + table(rows))
            print("  faults: kill = SIGKILL + start again after 0-3 s; stop = SIGSTOP 1-8 s; brk = broker stopped "
                  "(or SIGKILLed) 3-20 s; slow = job service SIGSTOPped part of every second")
            for d in tally.details[:60]:
                print("  " + d)
            rc = 1 if bad else 0
            if rc or KEEP_LOGS:
                dest = KEEP_LOGS or tempfile.mkdtemp(prefix="bok-torture-logs-%d-" % SEED)
                keep_logs(ctx, dest)
                print("logs: %s" % dest)
    except HarnessError as x:
        say("harness error: %s" % x)
        rc = 2
    except e.Failure as x:  # e.g. a sanitizer report found when the stack stopped
        say("failure: %s" % x)
        rc = 1
    except KeyboardInterrupt:
        say("interrupted")
        rc = 2
    finally:
        dog.cancel()
        for s in list(e._live):
            try:
                s.kill()
            except Exception:
                pass
        broker.signal(signal.SIGCONT)
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
    verdict = {0: "PASSED: every invariant held", 1: "FAILED: invariants broken (see the table)",
               2: "ERROR: the harness could not finish"}[rc]
    say("torture %s; seed %d (replay: TORTURE_SEED=%d make torture)" % (verdict, SEED, SEED))
    return rc


if __name__ == "__main__":
    def on_term(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    sys.exit(main())
