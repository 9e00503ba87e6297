"""Shards and replicas (issue 19, point 2; docs/SCALING.md): the layout of
deploy/stack.sh's BOK_SHARDS=2 and docker-compose.shards.yml on free ports:

    shard a: model-a + job-a   (the default route: tenant t_a)
    shard b: model-b + job-b   (routes.tenants.t_b)
    three workers, one consumer group on one rows topic, routing reports by tenant
    two gateways with the same routes

- a tenant's models and jobs live only on its shard (asked through each
  shard's own gRPC API);
- either gateway serves any tenant;
- every worker reports to the tenant's shard: exact counters on both shards;
- one gateway and one worker are SIGKILLed mid-job (not restarted): nothing
  is lost, every valid row's event is there exactly once (read_committed)."""
import collections
import os
import shutil
import sys
import tempfile
import threading
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}}, "required": ["event_id", "timestamp"]}
N = 30000
BAD_EVERY = 13
WANT_ERR = N // BAD_EVERY
WANT_OK = N - WANT_ERR
TENANTS = ("t_a", "t_b")


def make_csv(tag, n=N):
    lines = ["event_id,timestamp,amount"]
    for i in range(1, n + 1):
        lines.append("%s%d,%d,%s" % (tag, i, 1500000000 + i, "x" if i % BAD_EVERY == 0 else "%d.5" % (i % 977)))
    return "\n".join(lines) + "\n"


class Shards:
    """Two model+job shards, `workers` workers and two gateways, wired by
    routes: t_a on the default route (shard a), t_b on shard b."""

    def __init__(self, workers=3, gateways=2):
        self.dir = tempfile.mkdtemp(prefix="bok-shards-")
        self.rows_topic = "bok.rows." + e.rand_suffix()
        self.group = "bok-workers-" + e.rand_suffix()
        self.shards = {}
        for name in ("a", "b"):
            mp, jp = e.free_port(), e.free_port()
            self.shards[name] = {"model_addr": "127.0.0.1:%d" % mp, "job_addr": "127.0.0.1:%d" % jp,
                                 "model_port": mp, "job_port": jp}
        self.gw_ports = [e.free_port() for _ in range(gateways)]
        self.nworkers = workers
        self.services = []
        self.workers = []
        self.gateways = []

    def routes(self):
        a, b = self.shards["a"], self.shards["b"]
        return {"default": {"model": a["model_addr"], "job": a["job_addr"]},
                "tenants": {"t_b": {"model": b["model_addr"], "job": b["job_addr"]}}}

    def __enter__(self):
        try:
            # Small rows messages and transactions: many of them per job, so
            # the kills land mid-job on every worker.
            for name, sh in self.shards.items():
                sh["model"] = e.Service("model", self.dir, {"listen": sh["model_addr"], "db": os.path.join(
                    self.dir, "models-%s.db" % name)}, name="model-" + name, port=sh["model_port"]).start()
                sh["job"] = e.Service("job", self.dir, {
                    "listen": sh["job_addr"], "db": os.path.join(self.dir, "jobs-%s.db" % name),
                    "model_service": sh["model_addr"], "kafka.brokers": e.kafka_bootstrap(),
                    "kafka.rows_topic": self.rows_topic, "kafka.batch_rows": 100,
                    "rpc.worker_token_file": os.path.join(self.dir, "worker.token")},
                    name="job-" + name, port=sh["job_port"]).start()
                self.services += [sh["model"], sh["job"]]
            for i in range(self.nworkers):
                w = e.Service("worker", self.dir, {
                    "kafka.brokers": e.kafka_bootstrap(), "kafka.rows_topic": self.rows_topic,
                    "kafka.group_id": self.group, "routes": self.routes(), "worker_id": "w%d" % i,
                    # one message per batch and per transaction: progress in fine steps, so
                    # the share window of test_two_shards_tenants_share_the_workers opens
                    # before A is done (20,000-row transactions finished A's 80,000 rows
                    # before B's upload committed)
                    "kafka.batch_max_rows": 200, "kafka.txn_max_rows": 200,
                    "rpc.worker_token_file": os.path.join(self.dir, "worker.token")},
                    name="worker%d" % i).start()
                self.workers.append(w)
            for i, port in enumerate(self.gw_ports):
                g = e.Service("gateway", self.dir, {"listen": "127.0.0.1:%d" % port, "routes": self.routes()},
                              name="gateway%d" % i, port=port).start()
                self.gateways.append(g)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def all(self):
        return self.gateways + self.workers + self.services

    def __exit__(self, et, ev, tb):
        if et is not None and et is not e.Skip:
            for s in self.all():
                sys.stderr.write("---- %s log ----\n%s\n" % (s.name, s.log_tail()))
        for s in self.all():
            s.stop()
        e.delete_topics(self.dir, [self.rows_topic])
        # Sanitizer builds: a report in any log fails the test (as in bok_e2e.Stack).
        bad = [s for s in self.all() if s.sanitizer_report()]
        msg = "\n".join("---- %s ----\n%s" % (s.name, s.log_tail(60)) for s in bad)
        shutil.rmtree(self.dir, ignore_errors=True)
        if bad and et is None:
            raise e.Failure("sanitizer report:\n" + msg)
        return False

    def api(self, i):
        return "http://127.0.0.1:%d" % self.gw_ports[i]

    def http(self, i, method, path, json_body=None, body=None, headers=None, tenant=None, timeout=60):
        return e.http(self.api(i), method, path, json_body, body, headers, tenant, timeout)


def grpc_stubs():
    import subprocess
    out = tempfile.mkdtemp(prefix="bok-stubs-")
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(e.SRC, "proto"),
                        "--python_out=" + out, "--grpc_python_out=" + out, "batch/v1/model.proto",
                        "batch/v1/job.proto"], capture_output=True)
    if r.returncode != 0:
        raise e.Skip("grpc_tools cannot generate stubs: %s" % r.stderr[-300:])
    sys.path.insert(0, out)
    import grpc
    from batch.v1 import job_pb2, job_pb2_grpc, model_pb2, model_pb2_grpc
    return grpc, model_pb2, model_pb2_grpc, job_pb2, job_pb2_grpc


def on_shard(stubs, sh, tenant):
    """(model ids, job ids) the shard's own services list for the tenant."""
    grpc, mpb, mpbg, jpb, jpbg = stubs
    md = [("x-tenant-id", tenant)]
    with grpc.insecure_channel(sh["model_addr"]) as ch:
        models = mpbg.ModelServiceStub(ch).ListModels(mpb.ListModelsRequest(), metadata=md, timeout=10).models
    with grpc.insecure_channel(sh["job_addr"]) as ch:
        jobs = jpbg.JobServiceStub(ch).ListJobs(jpb.ListJobsRequest(), metadata=md, timeout=10).jobs
    return sorted(m.model_id for m in models), sorted(j.job_id for j in jobs)


def report_calls(metrics_url):
    """{code: ReportResults calls} from a job service's bok_rpc_requests_total."""
    import re
    import urllib.request
    with urllib.request.urlopen(metrics_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("bok_rpc_requests_total{") and "ReportResults" in line:
            m = re.search(r'code="([A-Z_]+)"', line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + int(float(line.rsplit(" ", 1)[1]))
    return out


def wait_final(s, gw, job_id, tenant, timeout=180):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        st, last = s.http(gw, "GET", "/jobs/" + job_id, tenant=tenant)
        if st == 200 and last.get("state") in ("SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"):
            return last
        time.sleep(0.2)
    raise e.Failure("job %s of %s not final in %ss: %s" % (job_id, tenant, timeout, last))


def test_two_shards_three_workers_two_gateways():
    stubs = grpc_stubs()
    with Shards() as s:
        models, jobs = {}, {}
        # Each tenant's model through a different gateway; both gateways read both.
        for i, t in enumerate(TENANTS):
            st, m = s.http(i, "POST", "/models", {"name": "shard " + t, "schema": SCHEMA}, tenant=t)
            e.check(st == 201, "model of %s: %s %s" % (t, st, m))
            models[t] = m
        for i in range(2):
            for t in TENANTS:
                st, got = s.http(i, "GET", "/models/" + models[t]["model_id"], tenant=t)
                e.check(st == 200 and got["model_id"] == models[t]["model_id"],
                        "gateway %d serves %s's model: %s %s" % (i, t, st, got))
        # Both uploads at once (one per gateway), so both jobs run when the kills come.
        answers = {}

        def upload(i, t):
            body, ctype = e.multipart({"model_id": models[t]["model_id"]},
                                      {"file": ("%s.csv" % t, make_csv(t), "text/csv")})
            answers[t] = s.http(i, "POST", "/jobs", body=body, headers={"Content-Type": ctype}, tenant=t, timeout=120)

        threads = [threading.Thread(target=upload, args=(i, t)) for i, t in enumerate(TENANTS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for t in TENANTS:
            st, j = answers[t]
            e.check(st == 202, "upload of %s: %s %s" % (t, st, j))
            jobs[t] = j["job_id"]

        # Mid-job: once both jobs have progress, kill gateway 0 and worker 1.
        deadline = time.time() + 120
        prog = {}
        while time.time() < deadline:
            for t in TENANTS:
                st, cur = s.http(1, "GET", "/jobs/" + jobs[t], tenant=t)
                prog[t] = cur
            if all(p.get("success", 0) + p.get("errors", 0) > 0 for p in prog.values()):
                break
            time.sleep(0.05)
        e.check(any(p.get("state") not in ("SUCCESS", "PARTIAL_SUCCESS") for p in prog.values()),
                "a job still running at the kills: %s" % prog)
        s.gateways[0].kill()
        s.workers[1].kill()
        print("killed gateway0 and worker1 at %s" % {t: p.get("success", 0) + p.get("errors", 0)
                                                     for t, p in prog.items()})

        for t in TENANTS:
            j = wait_final(s, 1, jobs[t], t)
            e.check(j["state"] == "PARTIAL_SUCCESS" and j["total"] == N and j["success"] == WANT_OK
                    and j["errors"] == WANT_ERR, "exact counters of %s: %s" % (t, j))
            events = e.kcat_consume(models[t]["topic"], read_committed=True, timeout=30, expect=WANT_OK)
            rows = collections.Counter(x["headers"].get("row") for x in events if x["headers"].get("job") == jobs[t])
            dup = [r for r, c in rows.items() if c > 1]
            e.check(not dup, "%s: duplicates: %d rows, e.g. %s" % (t, len(dup), dup[:5]))
            e.check(len(rows) == WANT_OK, "%s: events when final: %d of %d" % (t, len(rows), WANT_OK))
            again = [x for x in e.kcat_consume(models[t]["topic"], read_committed=True, timeout=30)
                     if x["headers"].get("job") == jobs[t]]
            e.check(len(again) == WANT_OK, "%s: nothing beyond the valid rows: %d" % (t, len(again)))

        # Each tenant lives on its shard only.
        home = {"t_a": "a", "t_b": "b"}
        for t in TENANTS:
            for name, sh in s.shards.items():
                ms, js = on_shard(stubs, sh, t)
                if name == home[t]:
                    e.check(ms == [models[t]["model_id"]] and js == [jobs[t]],
                            "%s on its shard %s: models %s jobs %s" % (t, name, ms, js))
                else:
                    e.check(ms == [] and js == [], "%s not on shard %s: models %s jobs %s" % (t, name, ms, js))
        # Reports went to the tenant's shard: both shards served ReportResults,
        # neither answered one NOT_FOUND (a job it does not have).
        for name, sh in s.shards.items():
            calls = report_calls(sh["job"].metrics_url)
            e.check(calls.get("OK", 0) > 0 and calls.get("NOT_FOUND", 0) == 0,
                    "shard %s ReportResults by code: %s" % (name, calls))
        alive = [w for w in s.workers if w is not s.workers[1]] + s.services + [s.gateways[1]]
        e.check(all(x.died() is None for x in alive), "no other process died: %s" %
                [(x.name, x.died()) for x in alive if x.died() is not None])


def done(j):
    return j.get("success", 0) + j.get("errors", 0)


def test_two_shards_tenants_share_the_workers():
    """Each job service picks a stripe for its tenants' big jobs, knowing
    only its own jobs. t_a (shard a) uploads 2 x SHARE rows; once the workers
    are busy with them, t_b (shard b) uploads SHARE rows. Both shards chose
    stripe 0 when they knew of no other big job, so B's rows queued behind
    A's whole backlog on the same partitions (B got none of the window's
    rows); now each tenant starts from a stripe of its own name (t_a and t_b
    fall on different ones), and from B's commit until one of them did half
    of what it had left, B gets 30-70 % of the rows processed."""
    share = 40000
    with Shards(workers=1, gateways=1) as s:
        models = {}
        for t in TENANTS:
            st, m = s.http(0, "POST", "/models", {"name": "share " + t, "schema": SCHEMA}, tenant=t)
            e.check(st == 201, "model of %s: %s %s" % (t, st, m))
            models[t] = m["model_id"]

        def upload(t, n):
            body, ctype = e.multipart({"model_id": models[t]}, {"file": ("%s.csv" % t, make_csv(t, n), "text/csv")})
            st, j = s.http(0, "POST", "/jobs", body=body, headers={"Content-Type": ctype}, tenant=t, timeout=300)
            e.check(st == 202, "upload of %s: %s %s" % (t, st, j))
            return j["job_id"]

        def get(jid, t):
            return s.http(0, "GET", "/jobs/" + jid, tenant=t)[1]

        big_a = 2 * share
        ja = upload("t_a", big_a)
        deadline = time.time() + 120
        while done(get(ja, "t_a")) == 0 and time.time() < deadline:
            time.sleep(0.05)
        jb = upload("t_b", share)
        a0, b0 = done(get(ja, "t_a")), done(get(jb, "t_b"))
        e.check(big_a - a0 >= share // 2, "A still had rows waiting when B's upload committed: %d done" % a0)
        a_half = a0 + (big_a - a0) // 2
        last, t0 = (a0, b0), time.time()
        while time.time() < t0 + 300:
            a, b = get(ja, "t_a"), get(jb, "t_b")
            if a["state"] in ("SUCCESS", "PARTIAL_SUCCESS", "FAILED") or done(a) >= a_half or done(b) >= share // 2:
                break
            last = (done(a), done(b))
            time.sleep(0.05)
        da, db = last[0] - a0, last[1] - b0
        print("from B's commit (%.1f s): A +%d rows, B +%d rows" % (time.time() - t0, da, db), flush=True)
        e.check(da + db >= share // 5, "a window long enough to measure: A +%d, B +%d rows" % (da, db))
        share_b = db / float(da + db)
        e.check(0.3 <= share_b <= 0.7, "shares while both had rows waiting: A +%d, B +%d rows (B's share %.2f)" % (
            da, db, share_b))
        for jid, t, n in ((ja, "t_a", big_a), (jb, "t_b", share)):
            x = wait_final(s, 0, jid, t, timeout=600)
            e.check(x["total"] == n and x["errors"] == n // BAD_EVERY, "counters of %s: %s" % (t, x))


if __name__ == "__main__":
    e.run_tests(globals())
