"""Gateway end to end: the REST surface of bok-gateway against the real model
service (and, for POST /jobs bad input, the real job service): JSON shapes,
bad input (never a 500), backends down or hanging, tenant routing, many
concurrent connections, clients that hang up mid-request, clean shutdown."""
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "value": {"type": "integer"}},
          "required": ["id", "value"]}
MODEL_KEYS = ["model_id", "tenant_id", "name", "schema", "created_at", "updated_at", "version", "topic"]
UNKNOWN = "00000000-0000-4000-8000-000000000000"
NO_JOB_SERVICE = {"job": False, "workers": 0}


def raw_http(port, data, read=True, timeout=10):
    """Sends raw bytes; returns (status, headers dict, body bytes)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.sendall(data)
        if not read:
            return None
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(body) < n:
            chunk = c.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, hdrs, body
    finally:
        c.close()


class BlackHole:
    """A TCP server that accepts connections and never answers (a hung
    backend)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join()
        for c in self.conns:
            c.close()
        self.sock.close()


def no_5xx_in_metrics(s):
    st, text = s.http("GET", "/metrics")
    e.check(st == 200, "metrics: %s" % st)
    bad = [ln for ln in text.splitlines() if ln.startswith('bok_gateway_responses_total{code="5')]
    return bad


# ---- models: the guide's flow and shapes --------------------------------------

def test_models_crud_exact_shapes():
    with e.Stack(**NO_JOB_SERVICE) as s:
        st, hdrs, body = raw_http(s.http_port, b"GET /models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        e.check(st == 200 and json.loads(body) == [], "empty list: %s %s" % (st, body))
        e.check(hdrs.get("content-type") == "application/json", "JSON content type: %s" % hdrs)
        # the guide's curl example, verbatim body
        st, m = s.http("POST", "/models", body='{ "name": "Sample Model", "schema": { "type": "object", "properties": '
                       '{ "id": { "type": "string" }, "value": { "type": "integer" } }, "required": ["id", "value"] } }',
                       headers={"Content-Type": "application/json", "X-Tenant-ID": "tenant_a"})
        e.check(st == 201, "create: %s %s" % (st, m))
        e.check(list(m) == MODEL_KEYS, "model keys in order: %s" % list(m))
        e.check(m["name"] == "Sample Model" and m["schema"] == SCHEMA and m["tenant_id"] == "tenant_a", str(m))
        e.check(len(m["model_id"]) == 36 and m["version"] == 1, str(m))
        for k in ("created_at", "updated_at"):
            e.check(len(m[k]) == 24 and m[k][10] == "T" and m[k].endswith("Z") and m[k][19] == ".", "%s: %s" % (k, m[k]))
        e.check(m["topic"] == "bok.events.tenant_a." + m["model_id"], "topic: %s" % m["topic"])
        mid = m["model_id"]
        # ids are case-insensitive, trailing slashes ignored
        st, got = s.http("GET", "/models/" + mid.upper() + "/")
        e.check(st == 200 and got == m, "get by upper-case id: %s %s" % (st, got))
        st, lst = s.http("GET", "/models/")
        e.check(st == 200 and lst == [m], "list: %s" % lst)
        # PUT: schema only, name only, both
        s2 = dict(SCHEMA, required=["id"])
        st, up = s.http("PUT", "/models/" + mid, {"schema": s2})
        e.check(st == 200 and up["version"] == 2 and up["schema"] == s2 and up["name"] == "Sample Model", str(up))
        e.check(up["created_at"] == m["created_at"] and up["model_id"] == mid and list(up) == MODEL_KEYS, str(up))
        st, up = s.http("PUT", "/models/" + mid, {"name": "Renamed", "schema": SCHEMA})
        e.check(st == 200 and up["version"] == 3 and up["name"] == "Renamed", str(up))
        st, body = s.http("DELETE", "/models/" + mid)
        e.check(st == 200 and isinstance(body, dict), "delete: %s %s" % (st, body))
        for method in ("GET", "DELETE"):
            st, body = s.http(method, "/models/" + mid)
            e.check(st == 404 and body == {"error": "not found"}, "%s after delete: %s %s" % (method, st, body))
        st, body = s.http("PUT", "/models/" + mid, {"name": "x"})
        e.check(st == 404 and body == {"error": "not found"}, "PUT after delete: %s %s" % (st, body))
        e.check(no_5xx_in_metrics(s) == [], "no 5xx")
        # decimals come back as written (not 0.10000000000000001)
        sch = {"type": "object", "properties": {"p": {"type": "number", "minimum": 0.1, "maximum": 3.14}}}
        st, m = s.http("POST", "/models", {"name": "dec", "schema": sch})
        e.check(st == 201 and m["schema"] == sch, "decimal schema: %s %s" % (st, m))
        st, hdrs, body = raw_http(s.http_port, ("GET /models/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                                % m["model_id"]).encode())
        e.check(b'"minimum":0.1,"maximum":3.14' in body, "decimals as written: %s" % body)


# ---- bad input -------------------------------------------------------------------

def test_models_bad_input_never_500():
    with e.Stack(overrides={"gateway": {"max_json_body": 4096}}, **NO_JOB_SERVICE) as s:
        st, m = s.http("POST", "/models", {"name": "keep", "schema": SCHEMA})
        e.check(st == 201, "seed model")
        mid = m["model_id"]
        J = {"Content-Type": "application/json"}
        cases = [
            ("POST", "/models", dict(body="{bad", headers=J), 400, "malformed JSON"),
            ("POST", "/models", dict(body="", headers=J), 400, "malformed JSON"),
            ("POST", "/models", dict(body="\xff\xfe", headers=J), 400, "malformed JSON"),
            ("POST", "/models", dict(body=b'{"name":"a\xff","schema":{}}', headers=J), 400, "malformed JSON"),
            ("POST", "/models", dict(body='{"name":"a","name":"b","schema":{"type":"object"}}', headers=J), 400,
             "duplicate"),
            ("POST", "/models", dict(body='{"name":"a\\u0000b","schema":{"type":"object"}}', headers=J), 400,
             "malformed JSON"),
            ("POST", "/models", dict(body="[" * 1500 + "]" * 1500, headers=J), 400, "JSON object"),
            ("POST", "/models", dict(json_body="just a string"), 400, "JSON object"),
            ("POST", "/models", dict(json_body={"name": "x", "schema": [1]}), 400, "schema"),
            ("POST", "/models", dict(json_body={"name": "x", "schema": None}), 400, "schema"),
            ("POST", "/models", dict(json_body={"schema": SCHEMA}), 400, "name"),
            ("POST", "/models", dict(json_body={"name": 5, "schema": SCHEMA}), 400, "name"),
            ("POST", "/models", dict(json_body={"name": "", "schema": SCHEMA}), 400, "name"),
            ("POST", "/models", dict(json_body={"name": "x"}), 400, "schema"),
            ("POST", "/models", dict(json_body={"name": "x", "schema": {"type": "object", "properties": {
                "price": {"type": "money"}}}}), 400, "price"),
            ("POST", "/models", dict(body='{"name":"x"}', headers={"Content-Type": "text/plain"}), 415, "Content-Type"),
            ("POST", "/models", dict(body='{"name":"x"}', headers={"Content-Type": "application/jsonx"}), 415,
             "Content-Type"),
            ("POST", "/models", dict(body=json.dumps({"name": "big", "schema": dict(SCHEMA, description="x" * 5000)}),
                                     headers=J), 413, "too large"),
            ("PUT", "/models/" + mid, dict(body="{", headers=J), 400, "malformed JSON"),
            ("PUT", "/models/" + mid, dict(json_body={}), 400, "nothing to update"),
            ("PUT", "/models/" + mid, dict(json_body={"schema": "x"}), 400, "schema"),
            ("PUT", "/models/" + mid, dict(json_body={"name": ""}), 400, "name"),
            ("PUT", "/models/" + mid, dict(json_body={"schema": {"type": "object", "properties": {
                "a": {"type": "nope"}}}}), 400, "properties.a"),
        ]
        for method, path, kw, status, text in cases:
            st, body = s.http(method, path, **kw)
            e.check(st == status, "%s %s %s: status %s %s" % (method, path, kw, st, body))
            e.check(isinstance(body, dict) and text in body.get("error", ""), "%s %s: message %s" % (method, kw, body))
            e.check(set(body) <= {"error", "code"}, "error shape: %s" % body)
        # unknown / malformed / other-tenant ids: exactly {"error":"not found"}
        for path in ["/models/123", "/models/" + mid + "x", "/models/%s/extra" % mid, "/models/" + UNKNOWN,
                     "/models/zzzzzzzz-0000-4000-8000-000000000000"]:
            for method, payload in [("GET", None), ("PUT", {"name": "y"}), ("DELETE", None)]:
                st, body = s.http(method, path, payload)
                e.check(st == 404 and body == {"error": "not found"}, "%s %s: %s %s" % (method, path, st, body))
        for method, payload in [("GET", None), ("PUT", {"name": "stolen"}), ("DELETE", None)]:
            st, body = s.http(method, "/models/" + mid, payload, tenant="tenant_other")
            e.check(st == 404 and body == {"error": "not found"}, "other tenant %s: %s %s" % (method, st, body))
        # tenant ids
        for bad in ["bad tenant", "x" * 65, "a/b", "t\u00e9", "a:b", "*"]:
            st, hdrs, body = raw_http(s.http_port, ("GET /models HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: %s\r\n"
                                                    "Connection: close\r\n\r\n" % bad).encode("utf-8"))
            e.check(st == 400 and "tenant" in json.loads(body)["error"], "tenant %r: %s %s" % (bad, st, body))
        st, body = s.http("GET", "/models", tenant="x" * 64)
        e.check(st == 200 and body == [], "64-char tenant is fine: %s" % st)
        st, body = s.http("GET", "/models", headers={"X-Tenant-ID": ""})
        e.check(st == 200 and [x["model_id"] for x in body] == [mid], "empty header = tenant_a: %s" % body)
        # methods and paths
        for method, path, allow in [("DELETE", "/models", "GET, POST"), ("POST", "/models/" + mid, None),
                                    ("PUT", "/jobs", None), ("GET", "/schema", "POST"), ("POST", "/healthz", None)]:
            st, hdrs, body = raw_http(s.http_port, ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                                    "Connection: close\r\n\r\n" % (method, path)).encode())
            e.check(st == 405 and json.loads(body) == {"error": "method not allowed"}, "%s %s: %s" % (method, path, st))
            e.check(allow is None or hdrs.get("allow") == allow, "Allow header: %s" % hdrs)
        for path in ["/nope", "/console", "/modelsx", "/jobs/" + UNKNOWN + "/nope", "/models//" + mid]:
            st, body = s.http("GET", path)
            e.check(st == 404 and body == {"error": "not found"}, "%s: %s %s" % (path, st, body))
        # nothing half-made, the seed untouched, and no 5xx at all
        st, body = s.http("GET", "/models")
        e.check([(x["name"], x["version"]) for x in body] == [("keep", 1)], "only the seed model: %s" % body)
        e.check(no_5xx_in_metrics(s) == [], "no 5xx: %s" % no_5xx_in_metrics(s))
        e.check(s["gateway"].alive(), "gateway alive")


def test_jobs_bad_input_without_backend_calls():
    """Every POST /jobs that is bad in itself is answered by the gateway alone:
    no job service is running here, so reaching it would be a 503."""
    with e.Stack(overrides={"gateway": {"max_upload_body": 65536}}, **NO_JOB_SERVICE) as s:
        ok_body, ctype = e.multipart({"model_id": UNKNOWN}, {"file": ("a.csv", "a,b\n1,2\n", "text/csv")})
        cases = [
            ("not multipart", "a,b\n1,2\n", {"Content-Type": "text/csv"}, 400, "multipart"),
            ("no content type", ok_body, {}, 400, "multipart"),
            ("no boundary", ok_body, {"Content-Type": "multipart/form-data"}, 400, "boundary"),
            ("other boundary", ok_body, {"Content-Type": "multipart/form-data; boundary=nothere"}, 400, "truncated"),
            ("truncated", ok_body[:-30], {"Content-Type": ctype}, 400, "truncated"),
            ("cut in headers", ok_body[:60], {"Content-Type": ctype}, 400, "truncated"),
            ("empty", b"", {"Content-Type": ctype}, 400, "truncated"),
        ]
        body, ct = e.multipart({"model_id": UNKNOWN}, {})
        cases.append(("missing file", body, {"Content-Type": ct}, 400, "file"))
        body, ct = e.multipart({}, {"file": ("a.csv", "a\n1\n", "text/csv")})
        cases.append(("missing model_id", body, {"Content-Type": ct}, 400, "model_id"))
        body, ct = e.multipart({"model_id": ""}, {"file": ("a.csv", "a\n1\n", "text/csv")})
        cases.append(("empty model_id", body, {"Content-Type": ct}, 400, "model_id"))
        body, ct = e.multipart({"model_id": UNKNOWN, "separator": ";;"}, {"file": ("a.csv", "a\n1\n", "text/csv")})
        cases.append(("bad separator", body, {"Content-Type": ct}, 400, "separator"))
        for mid in ["nope", "123", UNKNOWN + "0"]:
            body, ct = e.multipart({"model_id": mid}, {"file": ("a.csv", "a\n1\n", "text/csv")})
            cases.append(("malformed model id %s" % mid, body, {"Content-Type": ct}, 404, "model not found"))
        for name, body, hdrs, status, text in cases:
            st, resp = s.http("POST", "/jobs", body=body, headers=hdrs)
            e.check(st == status, "%s: %s %s" % (name, st, resp))
            e.check(isinstance(resp, dict) and text in resp.get("error", ""), "%s: %s" % (name, resp))
        # over max_upload_body: 413 before the body is even read
        big, ct = e.multipart({"model_id": UNKNOWN}, {"file": ("big.csv", "a\n" + "1\n" * 40000, "text/csv")})
        st, resp = s.http("POST", "/jobs", body=big, headers={"Content-Type": ct})
        e.check(st == 413, "oversized upload: %s %s" % (st, resp))
        # query parameters of the job endpoints are checked before any call
        for path in ["/jobs?state=BOGUS", "/jobs?limit=abc", "/jobs?limit=-1", "/jobs?state=%zz",
                     "/jobs/%s/rejected?limit=0" % UNKNOWN, "/jobs/%s/rejected?limit=x" % UNKNOWN,
                     "/jobs/%s/rejected?after_row=-1" % UNKNOWN, "/jobs/%s/rejected?limit=100001" % UNKNOWN]:
            st, resp = s.http("GET", path)
            e.check(st == 400 and "expected" in resp["error"], "%s: %s %s" % (path, st, resp))
        for path in ["/jobs/123", "/jobs/123/rejected", "/jobs/not-a-uuid/reprocess"]:
            for method in ("GET", "DELETE", "POST"):
                st, resp = s.http(method, path)
                e.check(st == 404 and resp == {"error": "not found"}, "%s %s: %s %s" % (method, path, st, resp))
        # a well-formed request does reach the (absent) job service: 503, quickly
        t0 = time.time()
        st, resp = s.http("POST", "/jobs", body=ok_body, headers={"Content-Type": ctype})
        e.check(st == 503 and resp["error"] == "job service unavailable", "job service down: %s %s" % (st, resp))
        st, resp = s.http("GET", "/jobs?state=running&limit=5")
        e.check(st == 503 and resp["error"] == "job service unavailable", "list: %s %s" % (st, resp))
        e.check(time.time() - t0 < 10, "503s are fast")


def test_jobs_bad_input_with_job_service():
    """Against the real job service: unknown model 404, and no job is left
    behind by any rejected upload."""
    # own transactional ids: stacks of other tests on the shared broker must
    # not fence this job service's producers
    with e.Stack(workers=0, overrides={"job": {"kafka.transactional_id_prefix": "bok-job-gw-" + e.rand_suffix()}}) as s:
        st, m = s.http("POST", "/models", {"name": "m", "schema": SCHEMA})
        e.check(st == 201, "model")
        st, body = s.upload(UNKNOWN, "a.csv", "id,value\na,1\n")
        e.check(st == 404 and "not found" in body["error"], "unknown model: %s %s" % (st, body))
        st, body = s.upload(m["model_id"], "a.csv", "id,value\na,1\n", tenant="tenant_other")
        e.check(st == 404, "other tenant's model: %s %s" % (st, body))
        full, ct = e.multipart({"model_id": m["model_id"]}, {"file": ("a.csv", "id,value\na,1\n", "text/csv")})
        for cut in (len(full) - 3, len(full) - 10, len(full) // 2):
            st, body = s.http("POST", "/jobs", body=full[:cut], headers={"Content-Type": ct})
            e.check(st == 400, "truncated at %d: %s %s" % (cut, st, body))
        st, lst = s.http("GET", "/jobs")
        e.check(st == 200 and lst == [], "no job left behind: %s" % lst)
        # the same body, complete, is accepted: 202 with the job shape
        st, j = s.http("POST", "/jobs", body=full, headers={"Content-Type": ct})
        e.check(st == 202 and j["state"] in ("PENDING", "RUNNING") and j["model_id"] == m["model_id"],
                "upload: %s %s" % (st, j))
        e.check(list(j)[:9] == ["job_id", "tenant_id", "model_id", "total", "success", "errors", "state",
                                "created_at", "updated_at"], "job keys: %s" % list(j))
        e.check(j["file_name"] == "a.csv" and j["parent_job_id"] is None and j["finished_at"] is None, str(j))
        st, lst = s.http("GET", "/jobs")
        e.check([x["job_id"] for x in lst] == [j["job_id"]], "exactly one job: %s" % lst)
        st, page = s.http("GET", "/jobs/%s/rejected" % j["job_id"])
        e.check(st == 200 and page == [], "rejected of a fresh job: %s %s" % (st, page))
        # a 40 MB upload through curl (Expect: 100-continue; h2o buffers it in
        # a temp file past 32 MiB) for an unknown model: streamed, then 404
        big = os.path.join(s.dir, "big.csv")
        with open(big, "wb") as f:
            f.write(b"id,value\n")
            f.write((b"x" * 1000 + b",1\n") * 40000)
        r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-F", "model_id=" + UNKNOWN,
                            "-F", "file=@%s;type=text/csv" % big, s.api_url + "/jobs"],
                           capture_output=True, timeout=60)
        out = r.stdout.decode().rsplit("\n", 1)
        e.check(r.returncode == 0 and out[1] == "404" and "not found" in json.loads(out[0])["error"],
                "big upload, unknown model: %s %s" % (out, r.stderr))
        st, lst = s.http("GET", "/jobs")
        e.check(len(lst) == 1, "still exactly one job: %s" % lst)
        # a file name that is not UTF-8 is stored and shown with U+FFFD
        b = "bokX"
        raw = (("--%s\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\n%s\r\n" % (b, m["model_id"])).encode()
               + ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" % b).encode()
               + b"r\xe9sum\xe9.csv\"\r\nContent-Type: text/csv\r\n\r\nid,value\na,1\r\n" + ("--%s--\r\n" % b).encode())
        st, j2 = s.http("POST", "/jobs", body=raw, headers={"Content-Type": "multipart/form-data; boundary=" + b})
        e.check(st == 202 and j2["file_name"] == "r\ufffdsum\ufffd.csv", "latin-1 file name: %s %s" % (st, j2))


# ---- backends down or hanging -----------------------------------------------------

def test_model_service_down_is_503_then_recovers():
    with e.Stack(**NO_JOB_SERVICE) as s:
        st, m = s.http("POST", "/models", {"name": "m", "schema": SCHEMA})
        s["model"].stop()
        t0 = time.time()
        for method, path, payload in [("GET", "/models", None), ("POST", "/models", {"name": "x", "schema": SCHEMA}),
                                      ("GET", "/models/" + m["model_id"], None),
                                      ("PUT", "/models/" + m["model_id"], {"name": "y"}),
                                      ("DELETE", "/models/" + m["model_id"], None)]:
            st, body = s.http(method, path, payload)
            e.check(st == 503 and body == {"error": "model service unavailable", "code": "UNAVAILABLE"},
                    "%s %s: %s %s" % (method, path, st, body))
        e.check(time.time() - t0 < 10, "503s within the rpc timeout: %.1fs" % (time.time() - t0))
        st, body = s.http("GET", "/healthz")
        e.check(st == 200 and body == {"status": "ok"}, "healthz: %s" % body)
        s["model"].start()
        for _ in range(50):
            st, body = s.http("GET", "/models")
            if st == 200:
                break
            time.sleep(0.1)
        e.check(st == 200 and [x["name"] for x in body] == ["m"], "recovered: %s %s" % (st, body))


def test_hung_backend_times_out_and_client_hangups_are_safe():
    """A backend that accepts but never answers: the gateway answers 504
    within rpc_timeout_ms, and clients that hang up while their call is
    pending do not crash it when the answer (the deadline) comes later."""
    hole = BlackHole()
    try:
        with e.Stack(model=False, overrides={"gateway": {"rpc_timeout_ms": 1200}}, **NO_JOB_SERVICE) as s:
            gw = s["gateway"]
            gw.stop()
            gw.config["routes"] = {"default": {"model": hole.addr, "job": hole.addr}}
            import yaml
            with open(gw.config_path, "w") as f:
                yaml.safe_dump(gw.config, f)
            gw.start()
            t0 = time.time()
            st, body = s.http("GET", "/models", timeout=15)
            dt = time.time() - t0
            e.check(st in (503, 504) and "model service" in body["error"], "hung backend: %s %s" % (st, body))
            e.check(dt < 5, "answered within the rpc timeout: %.1fs" % dt)
            # 40 requests whose clients vanish before the deadline
            for i in range(40):
                path = "/models" if i % 2 else "/jobs/%s" % UNKNOWN
                raw_http(s.http_port, ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode(), read=False)
            # an upload whose client vanishes while its stream is stuck
            body, ct = e.multipart({"model_id": UNKNOWN}, {"file": ("a.csv", "a\n" + "1\n" * 200000, "text/csv")})
            raw_http(s.http_port, ("POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                                   % (ct, len(body))).encode() + body, read=False)
            # curl clients that give up (-m) while the backend call is pending,
            # plain calls and uploads; the answer comes after they are gone
            upfile = os.path.join(s.dir, "up.csv")
            with open(upfile, "wb") as f:
                f.write(b"a\n" + b"1\n" * 300000)
            curls = []
            for i in range(6):
                args = ["curl", "-s", "-m", "0.4", "-o", "/dev/null"]
                if i % 3 == 2:
                    args += ["-F", "model_id=" + UNKNOWN, "-F", "file=@" + upfile, s.api_url + "/jobs"]
                else:
                    args += [s.api_url + ("/models" if i % 3 == 0 else "/jobs/" + UNKNOWN)]
                curls.append(subprocess.Popen(args))
            for c in curls:
                c.wait(10)
            st, m = s.http("GET", "/metrics")
            e.check("bok_gateway_requests_in_flight" in m, "in-flight gauge: %s" % m)
            time.sleep(2.5)  # the deadlines fire after the clients are gone
            e.check(gw.alive(), "gateway survived:\n" + gw.log_tail())
            st, body = s.http("GET", "/healthz")
            e.check(st == 200, "still serving")
            st, m = s.http("GET", "/metrics")
            e.check("bok_gateway_requests_in_flight 0" in m, "nothing left in flight: %s" % m)
            rc = gw.stop()
            e.check(rc == 0, "clean exit after hang-ups: %s\n%s" % (rc, gw.log_tail()))
    finally:
        hole.close()


# ---- tenant routing --------------------------------------------------------------

def grpc_stubs():
    """Python gRPC stubs from proto/ (python3-grpcio, grpc_tools)."""
    out = tempfile.mkdtemp(prefix="bok-stubs-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(e.SRC, "proto"),
                    "--python_out=" + out, "--grpc_python_out=" + out, "batch/v1/model.proto"], check=True,
                   capture_output=True)
    sys.path.insert(0, out)
    import grpc
    from batch.v1 import model_pb2, model_pb2_grpc
    return grpc, model_pb2, model_pb2_grpc


def test_tenant_routing_each_instance_holds_its_tenants():
    port2 = e.free_port()
    addr2 = "127.0.0.1:%d" % port2
    with e.Stack(tenants={"tenant_b": {"model": addr2}}, **NO_JOB_SERVICE) as s:
        m2 = e.Service("model", s.dir, {"listen": addr2, "db": os.path.join(s.dir, "models2.db")}, name="model2",
                       port=port2).start()
        try:
            created = {}
            for tenant in ("tenant_a", "tenant_b", "tenant_c"):
                st, m = s.http("POST", "/models", {"name": "of " + tenant, "schema": SCHEMA}, tenant=tenant)
                e.check(st == 201 and m["tenant_id"] == tenant, "create %s: %s %s" % (tenant, st, m))
                created[tenant] = m["model_id"]
            # ask each instance directly which tenants' models it holds
            grpc, pb, pbg = grpc_stubs()
            for addr, here, elsewhere in [(s.model_addr, ["tenant_a", "tenant_c"], ["tenant_b"]),
                                          (addr2, ["tenant_b"], ["tenant_a", "tenant_c"])]:
                stub = pbg.ModelServiceStub(grpc.insecure_channel(addr))
                for t in here:
                    lst = stub.ListModels(pb.ListModelsRequest(), metadata=[("x-tenant-id", t)], timeout=5)
                    e.check([x.model_id for x in lst.models] == [created[t]], "%s on %s: %s" % (t, addr, lst))
                for t in elsewhere:
                    lst = stub.ListModels(pb.ListModelsRequest(), metadata=[("x-tenant-id", t)], timeout=5)
                    e.check(len(lst.models) == 0, "%s must not be on %s: %s" % (t, addr, lst))
            # stopping the second instance only affects tenant_b
            m2.stop()
            st, body = s.http("GET", "/models", tenant="tenant_b")
            e.check(st == 503, "tenant_b is served by the second instance: %s" % st)
            st, body = s.http("GET", "/models/" + created["tenant_c"], tenant="tenant_c")
            e.check(st == 200, "tenant_c on the default: %s" % st)
        finally:
            m2.stop()


def test_tenant_header_from_config_and_env():
    with e.Stack(overrides={"gateway": {"tenant_header": "X-Org-Id"}}, **NO_JOB_SERVICE) as s:
        st, m = s.http("POST", "/models", {"name": "a", "schema": SCHEMA}, headers={"x-org-id": "org7"})
        e.check(st == 201 and m["tenant_id"] == "org7", "config tenant_header: %s" % m)
        gw = s["gateway"]
        gw.stop()
        gw.env["TENANT_HEADER"] = "X-Team"  # the environment wins over the config
        gw.start()
        st, m = s.http("POST", "/models", {"name": "b", "schema": SCHEMA}, headers={"X-Team": "team9",
                                                                                    "X-Org-Id": "org7"})
        e.check(st == 201 and m["tenant_id"] == "team9", "TENANT_HEADER env: %s" % m)
        st, body = s.http("GET", "/models", headers={"X-Team": "bad tenant"})
        e.check(st == 400, "validated under the custom header too")


# ---- load and connections ------------------------------------------------------------

def test_200_parallel_requests():
    # 200 clients from one address: over the default max_connections_per_ip (64)
    with e.Stack(overrides={"gateway": {"threads": 2, "max_connections_per_ip": 0}}, **NO_JOB_SERVICE) as s:
        st, m = s.http("POST", "/models", {"name": "c", "schema": SCHEMA})
        e.check(st == 201, "seed")

        def one(i):
            if i % 4 == 3:
                return s.http("GET", "/models/" + m["model_id"])
            return s.http("GET", "/models")
        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as ex:
            results = list(ex.map(one, range(400)))
        bad = [r for r in results if r[0] != 200]
        e.check(not bad, "%d of 400 not OK: %s" % (len(bad), bad[:3]))
        e.check(all((isinstance(b, list) and b == [m]) or b == m for _, b in results), "bodies")
        # keep-alive: many requests over one connection, pipelined
        c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        c.sendall(b"GET /models HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        data = b""
        deadline = time.time() + 10
        while data.count(b"HTTP/1.1 200") < 20 and time.time() < deadline:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        c.close()
        e.check(data.count(b"HTTP/1.1 200") == 20, "20 pipelined answers: %d" % data.count(b"HTTP/1.1 200"))


def test_parallel_reads_of_one_job_each_get_their_answer():
    """Reads of one job that arrive together may share one backend call
    (issue 20): each request still gets its own tenant's answer, and a read
    made after a cancel answered sees the cancel, while 20 clients keep
    reading the same job."""
    with e.Stack(workers=0, overrides={"gateway": {"threads": 2, "max_connections_per_ip": 0}}) as s:
        ids = {}
        for tenant in ("tenant_a", "tb"):
            st, m = s.http("POST", "/models", {"name": "r", "schema": SCHEMA}, tenant=tenant)
            e.check(st == 201, "model: %s %s" % (st, m))
            st, j = s.upload(m["model_id"], "a.csv", "id,value\na,1\n", tenant=tenant)
            e.check("job_id" in j, "upload: %s %s" % (st, j))
            ids[tenant] = j["job_id"]
        unknown = "00000000-0000-4000-8000-000000000000"
        cases = [(ids["tenant_a"], "tenant_a", ids["tenant_a"]), (ids["tenant_a"], "tb", None),
                 (ids["tb"], "tb", ids["tb"]), (ids["tb"], "tenant_a", None), (unknown, "tenant_a", None)]

        def one(i):
            jid, tenant, want = cases[i % len(cases)]
            return (i,) + s.http("GET", "/jobs/" + jid, tenant=tenant)
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as ex:
            results = list(ex.map(one, range(500)))
        for i, st, body in results:
            jid, tenant, want = cases[i % len(cases)]
            if want:
                e.check(st == 200 and body["job_id"] == want, "%s as %s: %s %s" % (jid, tenant, st, body))
            else:
                e.check(st == 404 and body == {"error": "not found"}, "%s as %s: %s %s" % (jid, tenant, st, body))
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                s.http("GET", "/jobs/" + ids["tenant_a"])
        ts = [threading.Thread(target=hammer) for _ in range(20)]
        for t in ts:
            t.start()
        try:
            time.sleep(0.3)
            st, body = s.http("DELETE", "/jobs/" + ids["tenant_a"])
            e.check(st == 200, "cancel: %s %s" % (st, body))
            st, cur = s.http("GET", "/jobs/" + ids["tenant_a"])
            e.check(st == 200 and cur["state"] == "CANCELLED", "read after the cancel: %s %s" % (st, cur))
        finally:
            stop.set()
            for t in ts:
                t.join()


def test_client_disconnects_mid_request():
    with e.Stack(**NO_JOB_SERVICE) as s:
        port = s.http_port
        body = json.dumps({"name": "x", "schema": SCHEMA}).encode()
        for i in range(30):
            # headers only, body announced but never fully sent
            raw_http(port, b"POST /models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 5000\r\n\r\n" + body[:10], read=False)
            # half a request line
            raw_http(port, b"GET /mod", read=False)
            # a full request, gone before the answer
            raw_http(port, b"POST /models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body, read=False)
            # an upload body cut short
            raw_http(port, b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=q\r\n"
                           b"Content-Length: 100000\r\n\r\n--q\r\n", read=False)
        # garbage and an abrupt reset
        raw_http(port, b"\x16\x03\x01\x00\xff" + os.urandom(200), read=False)
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.sendall(b"GET /models HTTP/1.1\r\nHost: x\r\n\r\n")
        c.close()
        time.sleep(0.5)
        e.check(s["gateway"].alive(), "gateway alive:\n" + s["gateway"].log_tail())
        st, lst = s.http("GET", "/models")
        e.check(st == 200, "still serving: %s" % st)
        # the fully sent creates may or may not have been made, but each is whole
        e.check(all(x["name"] == "x" and x["schema"] == SCHEMA for x in lst), "no half-made model: %s" % lst)


# ---- misc endpoints ----------------------------------------------------------------

def test_healthz_metrics_schema():
    with e.Stack(model=False, overrides={"gateway": {"max_json_body": 8192, "access_log": True}},
                 **NO_JOB_SERVICE) as s:
        st, body = s.http("GET", "/healthz")
        e.check(st == 200 and body == {"status": "ok"}, "healthz: %s %s" % (st, body))
        time.sleep(0.1)
        e.check('level=info component=gateway msg="GET /healthz 200 ' in s["gateway"].log_tail(), "access log: " + s["gateway"].log_tail())
        s.http("GET", "/nope")
        s.http("GET", "/nope")
        st, text = s.http("GET", "/metrics")
        e.check(st == 200 and "# TYPE bok_gateway_requests_total counter" in text, text)
        e.check('bok_gateway_responses_total{code="404"} 2' in text, "404s counted: %s" % text)
        e.check("bok_gateway_requests_in_flight 0" in text, text)
        # POST /schema needs no backend
        sample = "event_id,timestamp,amount,ok,country\ne1,1700000000,1.5,true,FR\ne2,1700000001,2,false,FR\n"
        st, sch = s.http("POST", "/schema", body=sample, headers={"Content-Type": "text/csv"})
        e.check(st == 200 and sch["type"] == "object", "schema: %s %s" % (st, sch))
        e.check(list(sch["properties"]) == ["event_id", "timestamp", "amount", "ok", "country"], str(sch))
        e.check(sch["properties"]["amount"]["type"] == "number" and sch["properties"]["ok"]["type"] == "boolean", str(sch))
        st, sch2 = s.http("POST", "/schema?separator=%3B", body=sample.replace(",", ";"))
        e.check(st == 200 and sch2 == sch, "separator=;: %s %s" % (st, sch2))
        for body, query, status in [("", "", 400), ("x" * 9000, "", 413), ("a,b\n1,2\n", "?separator=ab", 400)]:
            st, resp = s.http("POST", "/schema" + query, body=body)
            e.check(st == status and "error" in resp, "schema bad input %r: %s %s" % (body[:10], st, resp))


def test_slow_request_body_is_not_cut_off_and_port_is_exclusive():
    """A body that takes longer than h2o's 10 s default to arrive (a big
    upload on a slow link) is still served; a second gateway on the same
    port refuses to start instead of silently sharing it (SO_REUSEPORT)."""
    with e.Stack(model=False, **NO_JOB_SERVICE) as s:
        body = b"a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n"
        c = socket.create_connection(("127.0.0.1", s.http_port), timeout=30)
        c.sendall(b"POST /schema HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        t0 = time.time()
        for i in range(0, len(body), 3):
            c.sendall(body[i:i + 3])
            time.sleep(11.0 / (len(body) / 3))
        e.check(time.time() - t0 > 10.5, "slow enough")
        resp = c.recv(65536)
        c.close()
        e.check(resp.startswith(b"HTTP/1.1 200") and b'"type":"object"' in resp, "slow body served: %r" % resp[:200])
        other = e.Service("gateway", s.dir, {"listen": "127.0.0.1:%d" % s.http_port, "routes": s.routes()},
                          name="gateway2")
        other.start(wait=False)
        try:
            other.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        e.check(not other.alive() and other.proc.returncode != 0, "second gateway on the same port must fail")
        e.check("Address already in use" in other.log_tail(), other.log_tail())


def test_sigterm_exits_cleanly_with_open_connections():
    with e.Stack(**NO_JOB_SERVICE) as s:
        idle = []
        for _ in range(5):  # idle keep-alive connections
            c = socket.create_connection(("127.0.0.1", s.http_port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(4096)
            idle.append(c)
        half = socket.create_connection(("127.0.0.1", s.http_port))
        half.sendall(b"GET /models HTTP/1.1\r\nHo")  # a request being read
        t0 = time.time()
        rc = s["gateway"].stop()
        e.check(rc == 0 and time.time() - t0 < 8, "exit %s after %.1fs\n%s" % (rc, time.time() - t0,
                                                                                s["gateway"].log_tail()))
        for c in idle + [half]:
            c.close()
        # and again under load: SIGTERM while 50 clients hammer it
        gw = s["gateway"]
        gw.start()
        stop = threading.Event()
        answered = []

        def hammer():
            while not stop.is_set():
                try:
                    st, _ = s.http("GET", "/models", timeout=5)
                    answered.append(st)
                except OSError:
                    time.sleep(0.01)
        ts = [threading.Thread(target=hammer) for _ in range(50)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        t0 = time.time()
        rc = gw.stop()
        stop.set()
        for t in ts:
            t.join()
        e.check(rc == 0 and time.time() - t0 < 8, "exit under load %s after %.1fs\n%s" % (rc, time.time() - t0,
                                                                                         gw.log_tail()))
        e.check(len(answered) > 50 and set(answered) <= {200, 503}, "answers under load: %d %s" % (
            len(answered), set(answered)))


if __name__ == "__main__":
    e.run_tests(globals())
