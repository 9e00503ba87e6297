"""Shared end-to-end harness: real binaries on free ports, real Kafka.

Usage in a test file (tests/e2e/test_<area>.py):

    import bok_e2e as e
    def test_something():
        with e.Stack(job=False, workers=0) as s:
            st, body = s.http("GET", "/models")
            e.check(st == 200, "status %s" % st)
    if __name__ == "__main__":
        e.run_tests(globals())

Services are started from $BOK_BUILD_DIR with YAML configs generated from
deploy/config/<name>.yaml plus overrides, in a temp dir that also holds the
SQLite files and logs. Logs are printed when a test fails. Every process is
killed at exit.
"""
import atexit
import fcntl
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid

import yaml

SRC = os.environ.get("BOK_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("BOK_BUILD_DIR", os.path.join(SRC, "build"))
BINARIES = {
    "model": "services/model/bok-model-service",
    "job": "services/job/bok-job-service",
    "worker": "services/worker/bok-worker",
    "gateway": "gateway/bok-gateway",
    "cli": "cli/batchcli",
}
CONFIGS = {"model": "model-service.yaml", "job": "job-service.yaml", "worker": "worker.yaml",
           "gateway": "gateway.yaml"}
_live = []


class Skip(Exception):
    pass


class Failure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise Failure(msg)


def kafka_bootstrap():
    return os.environ.get("BOK_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def binary(name):
    return os.path.join(BUILD, BINARIES[name])


def skip_if_missing(*names):
    for n in names:
        if not os.path.exists(binary(n)):
            raise Skip("%s is not built" % BINARIES[n])


# Ports for the processes a test starts. bind(0) would hand out a port of the
# kernel's ephemeral range, which stays free only until any process on the
# machine (a client's outgoing connection, another test run's bind(0)) takes
# it, so a service could find its port taken, or worse, the harness could find
# *another* process listening there and take it for the service. Instead:
# ports below the ephemeral range (the kernel never picks those by itself),
# each reserved by an flock on /tmp/bok-e2e-ports/<port>.lock held until this
# process exits, so concurrent test runs on one machine never pick the same.
PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "bok-e2e-ports")
_port_locks = []  # open lock files, held for the life of this process
_port_rng = random.SystemRandom()


def port_range():
    """(lo, hi): the ports free_port() picks from, all below the kernel's
    ephemeral range."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    hi = eph_lo - 1
    return max(1024, hi - 12767), hi


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A port nobody listens on and no other test run on this machine will
    pick; reserved until this process exits."""
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    lo, hi = port_range()
    for _ in range(2000):
        port = _port_rng.randint(lo, hi)
        f = open(os.path.join(PORT_LOCK_DIR, "%d.lock" % port), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        if _bindable(port):
            _port_locks.append(f)
            return port
        f.close()
    raise Failure("no free port in %d-%d" % (lo, hi))


def hold_fixed_ports(ports, timeout=900):
    """Waits (up to `timeout` s) until no other test run on this machine
    holds any of `ports` -- fixed ports, e.g. `make up`'s 50051/50052 -- and
    holds them until this process exits (the same lock files as free_port,
    which never picks such ports itself). Two runs of a fixed-port test at
    once (the load proof's lanes, a CI rehearsal beside them) would otherwise
    race for the same listeners. Raises Failure on timeout."""
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    deadline = time.time() + timeout
    for port in sorted(ports):
        f = open(os.path.join(PORT_LOCK_DIR, "%d.lock" % port), "a")
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.time() > deadline:
                    f.close()
                    raise Failure("fixed port %d still held by another test run after %d s" % (port, timeout))
                time.sleep(0.5)
        _port_locks.append(f)


def _listen_inodes(port):
    """Socket inodes of the TCP listeners on `port` (any address), from
    /proc/net/tcp{,6}; None when /proc cannot tell."""
    inodes, seen = set(), False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        seen = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if seen else None


def listens_itself(pid, port):
    """True when process `pid` holds a listening socket on `port` (not just
    anyone: another process on that port would answer a connect too)."""
    inodes = _listen_inodes(port)
    if inodes is None:
        return True  # no /proc: a connect is all we can check
    fd_dir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False


def rand_suffix(n=8):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def wait_port(port, timeout=15.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if proc is None or listens_itself(proc.pid, port):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _deep_set(d, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1]] = value


class Service:
    """One real process: start(), stop() (SIGTERM), kill() (SIGKILL), restart()."""

    def __init__(self, kind, workdir, overrides=None, name=None, port=None, env=None):
        self.kind = kind
        self.name = name or kind
        self.workdir = workdir
        self.port = port
        self.env = dict(os.environ)
        self.env.update(env or {})
        with open(os.path.join(SRC, "deploy", "config", CONFIGS[kind])) as f:
            cfg = yaml.safe_load(f) or {}
        # Services have an admin HTTP port (/metrics, /healthz, /readyz): a free
        # one per process, so concurrent tests and workers never collide.
        self.metrics_port = None
        if kind in ("model", "job", "worker"):
            overrides = dict(overrides or {})
            overrides.setdefault("metrics_listen", "127.0.0.1:%d" % free_port())
            ml = overrides["metrics_listen"]
            self.metrics_port = int(ml.rsplit(":", 1)[1]) if ml else None
        for k, v in (overrides or {}).items():
            _deep_set(cfg, k, v)
        self.config = cfg
        self.config_path = os.path.join(workdir, self.name + ".yaml")
        with open(self.config_path, "w") as f:
            yaml.safe_dump(cfg, f)
        self.log_path = os.path.join(workdir, self.name + ".log")
        self.proc = None

    def start(self, wait=True):
        skip_if_missing(self.kind)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary(self.kind), "--config", self.config_path], stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir, env=self.env)
        log.close()
        _live.append(self)
        if wait and self.port:
            if not wait_port(self.port, 20, self.proc):
                raise Failure("%s did not start listening on %d:\n%s" % (self.name, self.port, self.log_tail()))
        return self

    @property
    def metrics_url(self):
        return "http://127.0.0.1:%d" % self.metrics_port if self.metrics_port else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def died(self):
        """The exit code when the process ended by itself (or was killed by
        a fault point), else None."""
        return None if self.proc is None or self.proc.poll() is None else self.proc.returncode

    def sanitizer_report(self):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return False
        return b"ERROR: AddressSanitizer" in data or b"runtime error:" in data or b"ERROR: LeakSanitizer" in data

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"


_ASSIGN_RX = re.compile(r'component=(\S+) msg="(assigned|revoked) (\d+) partitions')


def assigned_partitions(worker):
    """Partitions a worker's lanes hold now, from their last assigned/revoked
    log lines."""
    held = {}
    try:
        with open(worker.log_path, "r", errors="replace") as f:
            for line in f:
                m = _ASSIGN_RX.search(line)
                if m:
                    held[m.group(1)] = int(m.group(3)) if m.group(2) == "assigned" else 0
    except OSError:
        pass
    return sum(held.values())


def wait_group_settled(workers, partitions, timeout=90):
    """Until every worker holds some of the rows topic's partitions and all
    of them are held: a test that needs a given worker to take part uploads
    after this, whatever order the group's joins happened in under load."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        held = [assigned_partitions(w) for w in workers]
        if all(h > 0 for h in held) and sum(held) == partitions:
            return held
        time.sleep(0.2)
    raise Failure("consumer group not settled: %s of %d partitions held" % (
        [assigned_partitions(w) for w in workers], partitions))


def _cleanup():
    for s in _live:
        try:
            s.kill()
        except Exception:
            pass




def made_topics(directory, topics=()):
    """`topics` plus the events topic of every model in the model databases
    (*.db with a models table) under `directory`."""
    out = list(topics)
    for db in glob.glob(os.path.join(directory, "*.db")) if directory else []:
        try:
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=2)
            try:
                out += [r[0] for r in con.execute("SELECT DISTINCT topic FROM models")]
            finally:
                con.close()
        except sqlite3.Error:
            pass  # not a model database
    return out


_made_topics = {}  # brokers -> topic names of stopped stacks, deleted at exit


def delete_topics(directory, topics=(), brokers=None):
    """Marks a stopped stack's topics (its rows topic and its models' events
    topics) for deletion when this test process exits: every stack's topics
    have unique names, and a shared broker that keeps them all runs out of
    file descriptors after a few suites. Until then they stay readable (the
    bench reads a stopped stack's events). BOK_E2E_KEEP_TOPICS=1 keeps them."""
    _made_topics.setdefault(brokers or kafka_bootstrap(), []).extend(made_topics(directory, topics))


def _delete_made_topics():
    """At exit: bok-topic-delete in the background, best effort (a broker
    that is down or slow only leaves them behind)."""
    tool = os.path.join(BUILD, "tests", "e2e", "bok-topic-delete")
    if not os.path.exists(tool) or os.environ.get("BOK_E2E_KEEP_TOPICS"):
        return
    for brokers, names in _made_topics.items():
        for i in range(0, len(names), 200):
            subprocess.Popen([tool, brokers, "10000"] + names[i:i + 200], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


atexit.register(_delete_made_topics)  # registered first, so it runs after _cleanup (LIFO)
atexit.register(_cleanup)


class Stack:
    """Model service, job service, N workers and the gateway, wired together.

    Each stack has its own temp dir, SQLite files, rows topic and consumer
    group, so stacks never see each other's data on the shared broker.
    `tenants` maps tenant -> {"model": addr, "job": addr} extra routes.
    """

    def __init__(self, model=True, job=True, workers=1, gateway=True, tenants=None, overrides=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="bok-e2e-")
        self.env = env or {}  # kind -> extra environment (e.g. {"job": {"BOK_FAULT": ...}})
        self.services = {}
        self.workers = []
        self.want = dict(model=model, job=job, workers=workers, gateway=gateway)
        self.tenants = tenants or {}
        self.overrides = overrides or {}
        self.rows_topic = "bok.rows." + rand_suffix()
        self.group = "bok-workers-" + rand_suffix()
        self.model_port = free_port()
        self.job_port = free_port()
        self.http_port = free_port()
        self.model_addr = "127.0.0.1:%d" % self.model_port
        self.job_addr = "127.0.0.1:%d" % self.job_port
        self.api_url = "http://127.0.0.1:%d" % self.http_port

    def _ov(self, kind, base):
        base.update(self.overrides.get(kind, {}))
        return base

    # The events topic's settings: the model service makes a model's topic
    # with the same keys the workers use, so it takes the workers' values.
    MODEL_KAFKA_KEYS = ("kafka.brokers", "kafka.events_partitions", "kafka.replication_factor",
                        "kafka.min_insync_replicas")

    def _model_kafka(self):
        """The model service's Kafka settings: the job service's broker (a
        test's private broker included), then the workers' events-topic
        settings (kafka.events_topic.*, partitions, replication)."""
        out = {"kafka.brokers": self.overrides.get("job", {}).get("kafka.brokers") or kafka_bootstrap()}
        for k, v in self.overrides.get("worker", {}).items():
            if k in self.MODEL_KAFKA_KEYS or k.startswith("kafka.events_topic."):
                out[k] = v
        return out

    def routes(self):
        return {"default": {"model": self.model_addr, "job": self.job_addr}, "tenants": self.tenants}

    def add_worker(self, start=True):
        i = len(self.workers)
        w = Service("worker", self.dir, self._ov("worker", {
            "kafka.brokers": kafka_bootstrap(), "kafka.rows_topic": self.rows_topic,
            "kafka.group_id": self.group, "routes": self.routes(), "worker_id": "w%d" % i}), name="worker%d" % i,
            env=self.env.get("worker"))
        self.workers.append(w)
        if start:
            w.start()
        return w

    def rows_partitions(self):
        """Partitions of the stack's rows topic: the job service's
        kafka.rows_partitions (deploy/config/job-service.yaml plus overrides)."""
        return int(self.services["job"].config.get("kafka", {}).get("rows_partitions", 9))

    def __enter__(self):
        try:
            if self.want["model"]:
                self.services["model"] = Service("model", self.dir, self._ov("model", dict({
                    "listen": self.model_addr, "db": os.path.join(self.dir, "models.db")},
                    **self._model_kafka())), port=self.model_port).start()
            if self.want["job"]:
                self.services["job"] = Service("job", self.dir, self._ov("job", {
                    "listen": self.job_addr, "db": os.path.join(self.dir, "jobs.db"),
                    "model_service": self.model_addr, "kafka.brokers": kafka_bootstrap(),
                    "kafka.rows_topic": self.rows_topic}), port=self.job_port, env=self.env.get("job")).start()
            for _ in range(self.want["workers"]):
                self.add_worker()
            if self.want["gateway"]:
                self.services["gateway"] = Service("gateway", self.dir, self._ov("gateway", {
                    "listen": "127.0.0.1:%d" % self.http_port, "routes": self.routes()}),
                    port=self.http_port).start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, et, ev, tb):
        if et is not None and et is not Skip:
            for s in list(self.services.values()) + self.workers:
                sys.stderr.write("---- %s log ----\n%s\n" % (s.name, s.log_tail()))
        for s in [self.services.get("gateway")] + self.workers + [self.services.get("job"), self.services.get("model")]:
            if s is not None:
                s.stop()
        if et is None or not os.environ.get("BOK_E2E_KEEP"):
            job = self.services.get("job")
            delete_topics(self.dir, [self.rows_topic], job.config.get("kafka", {}).get("brokers") if job else None)
        # Sanitizer builds: a report in any log fails the test.
        bad = [s for s in list(self.services.values()) + self.workers if s.sanitizer_report()]
        if bad and et is None:
            msg = "\n".join("---- %s ----\n%s" % (s.name, s.log_tail(60)) for s in bad)
            shutil.rmtree(self.dir, ignore_errors=True)
            raise Failure("sanitizer report:\n" + msg)
        if et is not None and os.environ.get("BOK_E2E_KEEP"):
            sys.stderr.write("BOK_E2E_KEEP: logs and data kept in %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def __getitem__(self, k):
        return self.services[k]

    def http(self, method, path, json_body=None, body=None, headers=None, tenant=None, timeout=30):
        return http(self.api_url, method, path, json_body, body, headers, tenant, timeout)

    def upload(self, model_id, filename, data, tenant=None, content_type="text/csv", timeout=120):
        body, ctype = multipart({"model_id": model_id}, {"file": (filename, data, content_type)})
        return self.http("POST", "/jobs", body=body, headers={"Content-Type": ctype}, tenant=tenant, timeout=timeout)

    def wait_job(self, job_id, states=("SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"), timeout=120,
                 tenant=None):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            st, last = self.http("GET", "/jobs/" + job_id, tenant=tenant)
            if st == 200 and last.get("state") in states:
                return last
            time.sleep(0.2)
        raise Failure("job %s did not reach %s in %ss; last: %s" % (job_id, states, timeout, last))


def http(base, method, path, json_body=None, body=None, headers=None, tenant=None, timeout=30):
    """Returns (status, parsed JSON or text). Every response is checked
    against docs/openapi.yaml (see conform()); set BOK_OPENAPI_VALIDATE=0 to
    turn that off."""
    h = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        h.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    if tenant is not None:
        h["X-Tenant-ID"] = tenant
    req = urllib.request.Request(base + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, rh = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, rh = e.code, e.read(), e.headers
    if VALIDATE_OPENAPI:
        conform(method, path, status, rh.get("Content-Type"), raw, rh.get("Allow"))
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


# ---- OpenAPI conformance ---------------------------------------------------

OPENAPI_FILE = os.path.join(SRC, "docs", "openapi.yaml")
VALIDATE_OPENAPI = os.environ.get("BOK_OPENAPI_VALIDATE", "1") != "0"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes a
    "null" type (the only OpenAPI keyword our spec uses that JSON Schema
    reads differently)."""
    if isinstance(node, list):
        return [_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class OpenApi:
    """docs/openapi.yaml, for checking the gateway's answers against it."""

    def __init__(self, path=OPENAPI_FILE):
        import re
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.components = _json_schema(self.doc.get("components", {}))
        self.paths = []  # (template, compiled regex, path item)
        # Path ids are UUIDs (any case): a path whose id is not one is
        # "not found" whatever the method, as the spec says. Other path
        # parameters (the console's {file}) are one segment.
        uuid_rx = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        for tmpl, item in self.doc["paths"].items():
            rx = re.sub(r"\\\{id\\\}", uuid_rx, re.escape(tmpl))
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", rx) + "$"
            self.paths.append((tmpl, re.compile(rx), item))

    def operations(self):
        """[(template, METHOD)] of every operation in the spec."""
        return [(t, m.upper()) for t, _, item in self.paths for m in METHODS if m in item]

    def match(self, path):
        """(template, path item) for a request path, or (None, None)."""
        p = path.split("?", 1)[0]
        while len(p) > 1 and p.endswith("/"):  # the gateway ignores trailing slashes
            p = p[:-1]
        for tmpl, rx, item in self.paths:
            if rx.match(p):
                return tmpl, item
        return None, None

    def _resolve(self, node):
        while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/components/"):
            _, _, kind, name = node["$ref"].split("/")
            node = self.doc["components"][kind][name]
        return node

    def validate_json(self, schema, value, where):
        import jsonschema
        full = {"allOf": [_json_schema(schema)], "components": self.components}
        try:
            jsonschema.validate(value, full, cls=jsonschema.Draft7Validator)
        except jsonschema.ValidationError as ex:
            loc = "/".join(str(x) for x in ex.absolute_path) or "(the body)"
            raise Failure("OpenAPI: %s: body does not match docs/openapi.yaml at %s: %s\nbody: %s"
                          % (where, loc, ex.message, json.dumps(value)[:2000]))

    def check(self, method, path, status, ctype, raw, allow=None):
        """Raises Failure when a response does not conform to the spec."""
        where = "%s %s -> %s" % (method, path, status)
        tmpl, item = self.match(path)
        mtype = (ctype or "").split(";")[0].strip().lower()
        error_schema = {"$ref": "#/components/schemas/Error"}

        def as_json():
            try:
                return json.loads(raw)
            except ValueError:
                raise Failure("OpenAPI: %s: Content-Type %s but the body is not JSON: %r" % (where, ctype, raw[:200]))

        if tmpl is None:  # a path the spec does not have: the gateway must not serve it
            if status != 404 or mtype != "application/json":
                raise Failure("OpenAPI: %s: path is not in docs/openapi.yaml, expected 404 JSON, got %s %s"
                              % (where, status, ctype))
            self.validate_json(error_schema, as_json(), where)
            return
        op = item.get(method.lower())
        if op is None:  # a method the spec does not list for the path
            want = sorted(m.upper() for m in METHODS if m in item)
            if status != 405:
                raise Failure("OpenAPI: %s: %s is not listed for %s (only %s), expected 405"
                              % (where, method, tmpl, ", ".join(want)))
            got = sorted(x.strip() for x in (allow or "").split(",") if x.strip())
            if got != want:
                raise Failure("OpenAPI: %s: Allow: %s, but docs/openapi.yaml lists %s for %s"
                              % (where, allow, ", ".join(want), tmpl))
            if method != "HEAD":
                self.validate_json(error_schema, as_json(), where)
            return
        resp = op["responses"].get(str(status)) or op["responses"].get("default")
        if resp is None:
            raise Failure("OpenAPI: %s: status %s is not declared for %s %s in docs/openapi.yaml (declared: %s)"
                          % (where, status, method, tmpl, ", ".join(sorted(op["responses"]))))
        resp = self._resolve(resp)
        content = resp.get("content")
        if method == "HEAD" or not content:
            if not content and raw and method != "HEAD":
                raise Failure("OpenAPI: %s: response has a body but docs/openapi.yaml declares none" % where)
            return
        media = content.get(mtype)
        if media is None:
            raise Failure("OpenAPI: %s: Content-Type %r is not declared (declared: %s)"
                          % (where, ctype, ", ".join(content)))
        if mtype == "application/json" and "schema" in media:
            self.validate_json(media["schema"], as_json(), where)


_spec = None


def openapi():
    global _spec
    if _spec is None:
        _spec = OpenApi()
    return _spec


def conform(method, path, status, ctype, raw, allow=None):
    openapi().check(method, path, status, ctype, raw, allow)


def multipart(fields, files):
    boundary = "----bok" + uuid.uuid4().hex
    out = bytearray()
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" % (boundary, k)).encode()
        out += (v.encode() if isinstance(v, str) else v) + b"\r\n"
    for k, (fn, data, ct) in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\nContent-Type: %s\r\n\r\n"
                % (boundary, k, fn, ct)).encode()
        out += (data.encode() if isinstance(data, str) else data) + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return bytes(out), "multipart/form-data; boundary=" + boundary


# ---- a private broker ----------------------------------------------------------

def kafka_libs():
    """The broker's jars (deploy/kafka.sh's cache)."""
    ver = "4.1.1"
    try:
        with open(os.path.join(SRC, "deploy", "kafka.sh")) as f:
            m = re.search(r'KAFKA_VERSION="\$\{BOK_KAFKA_VERSION:-([0-9.]+)\}"', f.read())
            ver = m.group(1) if m else ver
    except OSError:
        pass
    base = os.environ.get("BOK_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "batch-on-kafka"))
    return os.path.join(base, "kafka-" + ver, "libs")


def txn_log(data_dir, topic, limit=40):
    """What each partition of `topic` holds, batch by batch, from a broker's
    data dir (kafka.tools.DumpLogSegments): offsets, producer id and epoch,
    transactional or not, and every COMMIT/ABORT marker. For a test that
    found events missing: a data batch with no marker of its producer after
    it is a transaction still open, which holds a read_committed reader back."""
    dirs = sorted(glob.glob(os.path.join(data_dir, "**", topic + "-*"), recursive=True))
    segs = [f for d in dirs for f in sorted(glob.glob(os.path.join(d, "*.log")))]
    if not segs:
        return "(no partitions of %s under %s)" % (topic, data_dir)
    r = subprocess.run(["java", "-Xmx256m", "-cp", os.path.join(kafka_libs(), "*"), "kafka.tools.DumpLogSegments",
                        "--print-data-log", "--files", ",".join(segs)], capture_output=True, text=True, timeout=180)
    parts, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("Dumping "):
            cur = parts.setdefault(os.path.basename(os.path.dirname(line.split(" ", 1)[1].strip())), [])
        elif cur is not None and line.startswith("baseOffset:"):
            f = dict(re.findall(r"(\w+): (\S+)", line))
            cur.append("  %s..%s pid %s epoch %s %s%s" % (
                f.get("baseOffset"), f.get("lastOffset"), f.get("producerId"), f.get("producerEpoch"),
                "txn" if f.get("isTransactional") == "true" else "plain",
                " CONTROL" if f.get("isControl") == "true" else ""))
        elif cur is not None and "endTxnMarker:" in line:
            cur.append("    marker " + line.split("endTxnMarker:", 1)[1].split()[0])
    out = []
    for name in sorted(parts):
        lines = parts[name]
        out.append("%s (%d batches):" % (name, sum(1 for x in lines if not x.startswith("    "))))
        out.extend(lines[:limit] + (["  ... %d more lines" % (len(lines) - limit)] if len(lines) > limit else []))
    return "\n".join(out) or "(no partitions of %s under %s)" % (topic, data_dir)


class PrivateKafka:
    """A broker of a test's own (deploy/kafka.sh on free ports and a temp dir),
    never the shared one: for stopping, restarting or reconfiguring it.
    `env` adds BOK_KAFKA_* settings (e.g. BOK_KAFKA_RETENTION_CHECK_MS)."""

    def __init__(self, env=None):
        self.port = free_port()
        ctrl = free_port()
        self.dir = tempfile.mkdtemp(prefix="bok-kafka-")
        self.env = dict(os.environ, BOK_KAFKA_PORT=str(self.port), BOK_KAFKA_CTRL_PORT=str(ctrl),
                        BOK_KAFKA_DIR=self.dir, BOK_KAFKA_HEAP="512m")
        self.env.update(env or {})
        self.script = os.path.join(SRC, "deploy", "kafka.sh")

    def run(self, cmd):
        r = subprocess.run(["bash", self.script, cmd], env=self.env, capture_output=True, text=True, timeout=180)
        check(r.returncode == 0, "kafka.sh %s: %s %s" % (cmd, r.stdout, r.stderr))

    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        self.run("start")
        return self

    def __exit__(self, *a):
        subprocess.run(["bash", self.script, "stop"], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


class KafkaCluster:
    """A cluster of the test's own: `nodes` KRaft nodes (each broker +
    controller, one quorum) started by deploy/kafka.sh on free ports in a temp
    dir, replication min(nodes, 3) and min.insync.replicas 2 for the internal
    topics. kill(node) SIGKILLs one node (a crash), start() brings back the
    ones that are down. Every node is stopped at exit."""

    def __init__(self, nodes=3, env=None, heap="384m"):
        self.nodes = nodes
        self.ports = [free_port() for _ in range(nodes)]
        ctrl = [free_port() for _ in range(nodes)]
        self.dir = tempfile.mkdtemp(prefix="bok-kcluster-")
        self.env = dict(os.environ, BOK_KAFKA_NODES=str(nodes), BOK_KAFKA_PORTS=",".join(map(str, self.ports)),
                        BOK_KAFKA_CTRL_PORTS=",".join(map(str, ctrl)), BOK_KAFKA_PORT=str(self.ports[0]),
                        BOK_KAFKA_DIR=self.dir, BOK_KAFKA_HEAP=heap)
        self.env.update(env or {})
        self.script = os.path.join(SRC, "deploy", "kafka.sh")

    def run(self, cmd, timeout=480):
        # Longer than kafka.sh's own bound (format, then 240 s for the nodes
        # to answer), so a slow start ends with kafka.sh's diagnosis.
        r = subprocess.run(["bash", self.script, cmd], env=self.env, capture_output=True, text=True, timeout=timeout)
        check(r.returncode == 0, "kafka.sh %s: %s %s" % (cmd, r.stdout, r.stderr))
        return r.stdout

    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % p for p in self.ports)

    def pids(self):
        """{node: pid} of the running nodes."""
        out = {}
        for line in self.run("pids").splitlines():
            node, pid = line.split()
            out[int(node)] = int(pid)
        return out

    def kill(self, node):
        """SIGKILL one node (a broker and a controller crash at once)."""
        pid = self.pids()[node]
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)

    def start(self):
        self.run("start")
        return self

    def log_tail(self, node, n=30):
        try:
            with open(os.path.join(self.dir, "node-%d" % node, "kafka.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *a):
        subprocess.run(["bash", self.script, "stop"], env=self.env, capture_output=True, timeout=180)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def kafka_topic_config(bootstrap, topic):
    """{name: value} of the topic's own configs (those set on the topic, not
    broker defaults), through Kafka's ConfigCommand from deploy/kafka.sh's
    jar cache."""
    cache = os.path.join(os.environ.get("BOK_CACHE_DIR", os.path.expanduser("~/.cache/batch-on-kafka")),
                         "kafka-4.1.1", "libs", "*")
    r = subprocess.run(["java", "-Xmx128m", "-cp", cache, "kafka.admin.ConfigCommand", "--bootstrap-server",
                        bootstrap, "--entity-type", "topics", "--entity-name", topic, "--describe"],
                       capture_output=True, text=True, timeout=120)
    out = {}
    for line in r.stdout.splitlines():
        line = line.strip()
        if "=" in line and " sensitive=" in line:
            k, v = line.split(" ", 1)[0].split("=", 1)
            out[k] = v
    return out


def kafka_topics(bootstrap=None):
    """Names of the topics on the broker, from kcat's metadata."""
    raw = subprocess.run(["kcat", "-L", "-b", bootstrap or kafka_bootstrap(), "-J"],
                         capture_output=True, timeout=60).stdout
    return {t["topic"] for t in json.loads(raw or b"{}").get("topics", [])}


def wait_topic(topic, timeout=30, bootstrap=None):
    """True once `topic` is in the broker's metadata (asked for all topics,
    which never makes the broker create one), False after timeout s."""
    deadline = time.time() + timeout
    while True:
        if topic in kafka_topics(bootstrap):
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.3)


def kafka_topic_replicas(bootstrap, topic):
    """[(partition, replicas, isr)] of the topic from kcat's metadata."""
    raw = subprocess.run(["kcat", "-L", "-b", bootstrap, "-t", topic, "-J"], capture_output=True, timeout=30).stdout
    md = json.loads(raw or b"{}")
    for t in md.get("topics", []):
        if t.get("topic") == topic:
            return [(p["partition"], [r["id"] for r in p.get("replicas", [])], [r["id"] for r in p.get("isrs", [])])
                    for p in t.get("partitions", [])]
    return []


# ---- Kafka through kcat ------------------------------------------------------

def kcat_consume(topic, read_committed=True, timeout=20, expect=None, bootstrap=None):
    """Messages of `topic` from the beginning, as dicts with key, value,
    headers (dict), timestamp.

    Without `expect`: stops at the end of the topic. For a read_committed
    consumer the end is the last stable offset, so events of a transaction
    still open (a batch committing right now, or one of a killed worker until
    the coordinator aborts it) are not there yet. With `expect`: waits until
    that many messages arrived or `timeout` passed, and returns what came."""
    fmt = "%k\\t%T\\t%h\\t%s\\n"
    cmd = ["kcat", "-C", "-b", bootstrap or kafka_bootstrap(), "-t", topic, "-o", "beginning", "-q", "-f", fmt,
           "-X", "isolation.level=%s" % ("read_committed" if read_committed else "read_uncommitted")]
    cmd += ["-c", str(expect)] if expect is not None else ["-e"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        raw, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raw, _ = p.communicate()
    out = raw.decode("utf-8", "replace")
    msgs = []
    for line in out.splitlines():
        parts = line.split("\t", 3)
        if len(parts) < 4:
            continue
        hdrs = {}
        for kv in parts[2].split(","):
            if "=" in kv:
                k, v = kv.split("=", 1)
                hdrs[k] = v
        msgs.append({"key": parts[0], "timestamp": int(parts[1]) if parts[1].lstrip("-").isdigit() else None,
                     "headers": hdrs, "value": parts[3]})
    return msgs


def kcat_metadata():
    return subprocess.run(["kcat", "-L", "-b", kafka_bootstrap(), "-J"], capture_output=True, timeout=20).stdout


# ---- runner -------------------------------------------------------------------

def job_stubs():
    """Python stubs of batch/v1/job.proto (python3-grpcio + grpc_tools),
    generated into a temp dir: (grpc, job_pb2, job_pb2_grpc)."""
    out = tempfile.mkdtemp(prefix="bok-stubs-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(SRC, "proto"),
                    "--python_out=" + out, "--grpc_python_out=" + out, "batch/v1/job.proto"], check=True)
    sys.path.insert(0, out)
    import grpc
    from batch.v1 import job_pb2, job_pb2_grpc
    return grpc, job_pb2, job_pb2_grpc


def grpc_code(grpc, fn):
    """(status code, details) of the gRPC error fn() raises; (None, None)
    when it succeeds."""
    try:
        fn()
    except grpc.RpcError as err:
        return err.code(), err.details()
    return None, None


def run_tests(g):
    names = sorted(n for n in g if n.startswith("test_") and callable(g[n]))
    only = sys.argv[1:]
    passed = failed = skipped = 0
    for n in names:
        if only and n not in only:
            continue
        t0 = time.time()
        try:
            g[n]()
            passed += 1
            print("PASS %s (%.1fs)" % (n, time.time() - t0), flush=True)
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (n, e), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (n, time.time() - t0), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    _cleanup()
    sys.exit(1 if failed else 0)
