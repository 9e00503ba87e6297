"""Health, readiness and Prometheus metrics end to end: gateway /readyz
follows the backends (job service killed and restarted; a private Kafka
broker stopped and started), worker /readyz follows Kafka, and the metrics of
every process move by exactly what one job does."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["event_id"]}
# 6 data rows: e1, e3, e6 valid; e2 (amount), row 4 (no event_id), e5 (amount) rejected
CSV = "event_id,amount\ne1,1.5\ne2,abc\ne3,2\n,4\ne5,x\ne6,-1\n"

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(url, timeout=5):
    """(status, body text); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as x:
        return x.code, x.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def scrape(url):
    """{(name, frozenset(labels)): value} of a /metrics endpoint."""
    st, text = get(url + "/metrics")
    e.check(st == 200, "scrape %s: %s" % (url, st))
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        e.check(m is not None, "malformed metrics line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def val(snap, name, **labels):
    return snap.get((name, frozenset(labels.items())), 0.0)


def wait_status(url, want, timeout=30, contains=None):
    deadline = time.time() + timeout
    st, body = 0, ""
    while time.time() < deadline:
        st, body = get(url)
        if st == want and (contains is None or contains in body):
            return body
        time.sleep(0.2)
    raise e.Failure("%s: wanted %s%s, last %s %s" % (url, want, " with " + contains if contains else "", st, body))


def test_service_admin_endpoints():
    with e.Stack(workers=1) as s:
        for svc in [s["model"], s["job"], s.workers[0]]:
            line = "metrics listening on 127.0.0.1:%d" % svc.metrics_port
            deadline = time.time() + 20  # a worker has no port to wait on: its start-up may still be running
            while line not in open(svc.log_path).read() and time.time() < deadline:
                time.sleep(0.1)
            e.check(line in open(svc.log_path).read(), "%s logs its metrics address" % svc.name)
            e.check(get(svc.metrics_url + "/healthz") == (200, '{"status":"ok"}'), "%s /healthz" % svc.name)
            wait_status(svc.metrics_url + "/readyz", 200)
            e.check(get(svc.metrics_url + "/nope")[0] == 404, "404")
        snap = scrape(s["job"].metrics_url)
        e.check(("bok_job_upload_rows_total", frozenset()) in snap, "job metrics present")
        st, text = get(s["model"].metrics_url + "/metrics")
        e.check("# TYPE bok_rpc_requests_total counter" in text and
                "# TYPE bok_rpc_request_duration_seconds histogram" in text, "rpc metric families")


def test_gateway_readyz_follows_job_service():
    with e.Stack(workers=0) as s:
        url = s.api_url + "/readyz"
        body = wait_status(url, 200)
        e.check('"status": "ready"' in body or '"status":"ready"' in body, body)
        e.check("job %s" % s.job_addr in body and "model %s" % s.model_addr in body, "checks name backends: " + body)
        t0 = time.time()
        s["job"].kill()
        body = wait_status(url, 503, timeout=10, contains="job %s" % s.job_addr)
        e.check("not ready" in body, body)
        e.check(time.time() - t0 < 8, "503 within a few seconds")
        s["job"].start()
        wait_status(url, 200, timeout=30)
        # healthz stays a liveness check
        e.check(get(s.api_url + "/healthz")[0] == 200, "healthz")


class PrivateKafka:
    """A second broker on its own ports and data dir (never the shared one)."""

    def __init__(self):
        self.port = e.free_port()
        ctrl = e.free_port()
        self.dir = tempfile.mkdtemp(prefix="bok-kafka-")
        self.env = dict(os.environ, BOK_KAFKA_PORT=str(self.port), BOK_KAFKA_CTRL_PORT=str(ctrl),
                        BOK_KAFKA_DIR=self.dir, BOK_KAFKA_HEAP="512m")
        self.script = os.path.join(e.SRC, "deploy", "kafka.sh")

    def run(self, cmd):
        r = subprocess.run(["bash", self.script, cmd], env=self.env, capture_output=True, text=True, timeout=180)
        e.check(r.returncode == 0, "kafka.sh %s: %s %s" % (cmd, r.stdout, r.stderr))

    def bootstrap(self):
        return "127.0.0.1:%d" % self.port


def test_kafka_down_makes_job_gateway_and_worker_not_ready():
    k = PrivateKafka()
    e.check(k.port != 9092, "private broker port")
    k.run("start")
    try:
        ov = {"kafka.brokers": k.bootstrap()}
        with e.Stack(workers=1, overrides={"job": ov, "worker": ov}) as s:
            gw, wk = s.api_url + "/readyz", s.workers[0].metrics_url + "/readyz"
            wait_status(gw, 200, timeout=30)
            wait_status(wk, 200, timeout=30)
            k.run("stop")
            t0 = time.time()
            wait_status(gw, 503, timeout=15, contains="job %s" % s.job_addr)
            wait_status(wk, 503, timeout=15, contains="Kafka")
            wait_status(s["job"].metrics_url + "/readyz", 503, timeout=5, contains="Kafka")
            e.check(time.time() - t0 < 15, "not ready within seconds")
            k.run("start")
            wait_status(gw, 200, timeout=60)
            wait_status(wk, 200, timeout=60)
    finally:
        subprocess.run(["bash", k.script, "stop"], env=k.env, capture_output=True, timeout=120)
        shutil.rmtree(k.dir, ignore_errors=True)


def test_metrics_move_with_a_job():
    with e.Stack(workers=1) as s:
        gw, job, wk = s.api_url, s["job"].metrics_url, s.workers[0].metrics_url
        st, m = s.http("POST", "/models", {"name": "m", "schema": SCHEMA})
        e.check(st == 201, "model: %s %s" % (st, m))
        g0, j0, w0 = scrape(gw), scrape(job), scrape(wk)
        st, j = s.upload(m["model_id"], "d.csv", CSV)
        e.check(st == 202, "upload: %s %s" % (st, j))
        gets = 0
        deadline = time.time() + 120
        while True:
            st, j = s.http("GET", "/jobs/" + j["job_id"])
            gets += 1
            if j.get("state") in ("SUCCESS", "PARTIAL_SUCCESS", "FAILED"):
                break
            e.check(time.time() < deadline, "job did not finish: %s" % j)
            time.sleep(0.2)
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == 3 and j["errors"] == 3, "job: %s" % j)
        g1, j1 = scrape(gw), scrape(job)
        # the worker counts a batch when its transaction commits, just after it reports
        deadline = time.time() + 15
        while True:
            w1 = scrape(wk)
            if val(w1, "bok_worker_rows_consumed_total") - val(w0, "bok_worker_rows_consumed_total") >= 6:
                break
            e.check(time.time() < deadline, "worker did not count the batch")
            time.sleep(0.2)

        def d(a, b, name, **lb):
            return val(b, name, **lb) - val(a, name, **lb)
        # gateway: exactly our requests, by route template
        e.check(d(g0, g1, "bok_http_requests_total", route="/jobs", method="POST", code="202") == 1, "POST /jobs")
        e.check(d(g0, g1, "bok_http_requests_total", route="/jobs/{id}", method="GET", code="200") == gets,
                "GET /jobs/{id} x%d" % gets)
        e.check(d(g0, g1, "bok_http_request_duration_seconds_count", route="/jobs", method="POST") == 1, "duration")
        e.check(d(g0, g1, "bok_gateway_requests_total") >= gets + 1, "old totals still served")
        # worker: 6 consumed, 3 valid, 3 rejected
        e.check(d(w0, w1, "bok_worker_rows_consumed_total") == 6, "consumed")
        e.check(d(w0, w1, "bok_worker_rows_valid_total") == 3, "valid")
        e.check(d(w0, w1, "bok_worker_rows_rejected_total") == 3, "rejected")
        e.check(d(w0, w1, "bok_worker_transactions_total", result="committed") >= 1, "txn committed")
        reports = d(w0, w1, "bok_worker_report_rpcs_total", result="ok")
        e.check(reports >= 1, "report RPCs")
        # job service: the upload, its rows and bytes, the job's state, and the worker's reports as RPCs
        e.check(d(j0, j1, "bok_job_upload_rows_total") == 6, "upload rows")
        e.check(d(j0, j1, "bok_job_upload_bytes_total") == len(CSV), "upload bytes")
        e.check(d(j0, j1, "bok_job_upload_transactions_total", result="committed") == 1, "upload txn")
        e.check(val(j1, "bok_jobs", state="PARTIAL_SUCCESS") == 1 and val(j0, "bok_jobs", state="PARTIAL_SUCCESS") == 0,
                "jobs by state")
        e.check(d(j0, j1, "bok_rpc_requests_total", method="/batch.v1.JobService/Upload", code="OK") == 1, "Upload rpc")
        e.check(d(j0, j1, "bok_rpc_requests_total", method="/batch.v1.JobService/ReportResults", code="OK") == reports,
                "ReportResults rpcs = worker reports")
        # consumer lag: reported for the rows topic and back to 0 after the job
        deadline = time.time() + 20
        while True:
            lags = {k: v for k, v in scrape(wk).items()
                    if k[0] == "bok_worker_consumer_lag" and ("topic", s.rows_topic) in k[1]}
            if lags and all(v == 0 for v in lags.values()):
                break
            e.check(time.time() < deadline, "lag did not return to 0: %s" % lags)
            time.sleep(0.5)


if __name__ == "__main__":
    e.run_tests(globals())
