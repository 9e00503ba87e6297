"""Models end to end: REST -> gateway -> gRPC -> model service (SQLite)."""
import json
import socket
import threading
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "value": {"type": "integer"}},
          "required": ["id", "value"]}
GUIDE_KEYS = ["model_id", "tenant_id", "name", "schema", "created_at"]


def test_crud_flow_matches_guide_shapes():
    with e.Stack(job=False, workers=0) as s:
        st, body = s.http("GET", "/models")
        e.check(st == 200 and body == [], "empty list: %s %s" % (st, body))
        st, m = s.http("POST", "/models", {"name": "Sample Model", "schema": SCHEMA})
        e.check(st == 201, "create: %s %s" % (st, m))
        for k in GUIDE_KEYS:
            e.check(k in m, "missing %s in %s" % (k, m))
        e.check(list(m)[:5] == GUIDE_KEYS, "key order as in the guide: %s" % list(m))
        e.check(m["tenant_id"] == "tenant_a", "default tenant")
        e.check(m["schema"] == SCHEMA, "schema round trip")
        e.check(m["version"] == 1 and m["topic"].endswith(m["model_id"]), "version/topic")
        e.check(len(m["created_at"]) == 24 and m["created_at"].endswith("Z"), "ISO-8601 ms: " + m["created_at"])
        mid = m["model_id"]
        st, got = s.http("GET", "/models/" + mid)
        e.check(st == 200 and got == m, "get: %s" % got)
        st, lst = s.http("GET", "/models")
        e.check(st == 200 and [x["model_id"] for x in lst] == [mid], "list: %s" % lst)
        new_schema = dict(SCHEMA, properties=dict(SCHEMA["properties"], extra={"type": "number"}))
        st, up = s.http("PUT", "/models/" + mid, {"schema": new_schema})
        e.check(st == 200 and up["model_id"] == mid and up["version"] == 2 and up["schema"] == new_schema,
                "update: %s %s" % (st, up))
        e.check(up["name"] == "Sample Model", "name kept")
        st, up = s.http("PUT", "/models/" + mid, {"name": "Renamed"})
        e.check(st == 200 and up["name"] == "Renamed" and up["version"] == 2, "rename keeps version: %s" % up)
        st, _ = s.http("DELETE", "/models/" + mid)
        e.check(st == 200, "delete")
        st, body = s.http("GET", "/models/" + mid)
        e.check(st == 404 and body == {"error": "not found"}, "deleted is gone: %s %s" % (st, body))
        st, body = s.http("DELETE", "/models/" + mid)
        e.check(st == 404, "delete twice -> 404")


def test_bad_input():
    with e.Stack(job=False, workers=0) as s:
        cases = [
            ("malformed JSON", dict(body="{bad", headers={"Content-Type": "application/json"}), 400, "malformed JSON"),
            ("not an object", dict(json_body=[1, 2]), 400, "JSON object"),
            ("schema not an object", dict(json_body={"name": "x", "schema": "nope"}), 400, "schema"),
            ("missing name", dict(json_body={"schema": SCHEMA}), 400, "name"),
            ("empty name", dict(json_body={"name": "", "schema": SCHEMA}), 400, "name"),
            ("missing schema", dict(json_body={"name": "x"}), 400, "schema"),
            ("unknown type", dict(json_body={"name": "x", "schema": {"type": "object", "properties": {
                "price": {"type": "money"}}}}), 400, "properties.price.type: unsupported type 'money'"),
            ("schema type", dict(json_body={"name": "x", "schema": {"type": "array"}}), 400, "schema.type"),
            ("required unknown", dict(json_body={"name": "x", "schema": dict(SCHEMA, required=["nope"])}), 400,
             "'nope' is not a property"),
            ("wrong content type", dict(body="a,b", headers={"Content-Type": "text/csv"}), 415, "Content-Type"),
        ]
        for name, kw, status, text in cases:
            st, body = s.http("POST", "/models", **kw)
            e.check(st == status, "%s: status %s %s" % (name, st, body))
            e.check(isinstance(body, dict) and text in body.get("error", ""), "%s: message %s" % (name, body))
        st, body = s.http("POST", "/models", body="x" * (1 << 21), headers={"Content-Type": "application/json"})
        e.check(st == 413 and "too large" in body["error"], "oversized body: %s %s" % (st, body))
        for path in ["/models/123", "/models/not-a-uuid", "/models/00000000-0000-4000-8000-000000000000"]:
            st, body = s.http("GET", path)
            e.check(st == 404 and body == {"error": "not found"}, "%s: %s %s" % (path, st, body))
        st, body = s.http("GET", "/models", tenant="bad tenant!")
        e.check(st == 400 and "tenant" in body["error"], "invalid tenant: %s %s" % (st, body))
        st, body = s.http("GET", "/models", tenant="x" * 65)
        e.check(st == 400, "tenant too long")
        st, body = s.http("PATCH", "/models")
        e.check(st == 405, "wrong method: %s" % st)
        st, body = s.http("GET", "/nope")
        e.check(st == 404, "unknown path")
        # nothing half-made: still no models
        st, body = s.http("GET", "/models")
        e.check(body == [], "no model created by bad input: %s" % body)


def test_tenants_are_isolated():
    with e.Stack(job=False, workers=0) as s:
        st, a = s.http("POST", "/models", {"name": "A", "schema": SCHEMA}, tenant="tenant_x")
        e.check(st == 201 and a["tenant_id"] == "tenant_x", "create as tenant_x")
        st, body = s.http("GET", "/models", tenant="tenant_y")
        e.check(body == [], "tenant_y sees nothing")
        for method, payload in [("GET", None), ("PUT", {"name": "stolen"}), ("DELETE", None)]:
            st, body = s.http(method, "/models/" + a["model_id"], payload, tenant="tenant_y")
            e.check(st == 404 and body == {"error": "not found"}, "%s other tenant: %s %s" % (method, st, body))
        st, body = s.http("GET", "/models/" + a["model_id"], tenant="tenant_x")
        e.check(st == 200 and body["name"] == "A", "untouched")
        st, body = s.http("GET", "/models")  # no header -> tenant_a
        e.check(body == [], "tenant_a sees nothing")


def test_custom_tenant_header():
    with e.Stack(job=False, workers=0) as s:
        gw = s["gateway"]
        gw.stop()
        gw.env["TENANT_HEADER"] = "X-Org"
        gw.start()
        st, a = s.http("POST", "/models", {"name": "A", "schema": SCHEMA}, headers={"X-Org": "org1"})
        e.check(st == 201 and a["tenant_id"] == "org1", "tenant from X-Org: %s" % a)
        st, a = s.http("POST", "/models", {"name": "B", "schema": SCHEMA}, tenant="ignored")
        e.check(a["tenant_id"] == "tenant_a", "X-Tenant-ID ignored when TENANT_HEADER=X-Org")


def test_restart_keeps_models():
    with e.Stack(job=False, workers=0) as s:
        st, m = s.http("POST", "/models", {"name": "Durable", "schema": SCHEMA})
        s.http("PUT", "/models/" + m["model_id"], {"schema": dict(SCHEMA, required=["id"])})
        s["model"].kill()  # SIGKILL: WAL must have it
        s["model"].start()
        st, got = s.http("GET", "/models/" + m["model_id"])
        e.check(st == 200 and got["name"] == "Durable" and got["version"] == 2, "after restart: %s %s" % (st, got))


def test_backend_down_is_503_not_hang():
    with e.Stack(job=False, workers=0) as s:
        s["model"].stop()
        t0 = time.time()
        st, body = s.http("GET", "/models")
        e.check(st == 503 and "model service unavailable" in body["error"], "503: %s %s" % (st, body))
        e.check(time.time() - t0 < 11, "answered within the rpc timeout")
        st, body = s.http("GET", "/jobs")  # no job service in this stack
        e.check(st == 503 and "job service unavailable" in body["error"], "job 503: %s" % body)
        st, body = s.http("GET", "/healthz")
        e.check(st == 200, "gateway itself healthy")


def test_tenant_routing_to_second_instance():
    port2 = e.free_port()
    addr2 = "127.0.0.1:%d" % port2
    with e.Stack(job=False, workers=0, tenants={"tenant_b": {"model": addr2}}) as s:
        m2 = e.Service("model", s.dir, {"listen": addr2, "db": s.dir + "/models2.db"}, name="model2",
                       port=port2).start()
        try:
            st, a = s.http("POST", "/models", {"name": "on-default", "schema": SCHEMA}, tenant="tenant_a")
            st, b = s.http("POST", "/models", {"name": "on-second", "schema": SCHEMA}, tenant="tenant_b")
            e.check(st == 201, "create tenant_b: %s" % b)
            # Stop the second instance: tenant_b fails, tenant_a still works.
            m2.stop()
            st, body = s.http("GET", "/models", tenant="tenant_b")
            e.check(st == 503, "tenant_b goes to the second instance: %s" % st)
            st, body = s.http("GET", "/models", tenant="tenant_a")
            e.check(st == 200 and [x["name"] for x in body] == ["on-default"], "tenant_a on default: %s" % body)
            m2.start()
            for _ in range(30):  # the gateway's channel reconnects within ~1 s
                st, body = s.http("GET", "/models", tenant="tenant_b")
                if st == 200:
                    break
                time.sleep(0.1)
            e.check(st == 200 and [x["name"] for x in body] == ["on-second"], "tenant_b data on second: %s" % body)
            s["model"].stop()
            st, body = s.http("GET", "/models", tenant="tenant_b")
            e.check(st == 200, "tenant_b does not need the default instance")
        finally:
            m2.stop()


def test_many_concurrent_connections():
    with e.Stack(job=False, workers=0) as s:
        s.http("POST", "/models", {"name": "c", "schema": SCHEMA})
        results = []
        lock = threading.Lock()

        def worker():
            for _ in range(5):
                st, body = s.http("GET", "/models")
                with lock:
                    results.append(st == 200 and len(body) == 1)
        ts = [threading.Thread(target=worker) for _ in range(60)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        e.check(len(results) == 300 and all(results), "all 300 OK: %d ok" % sum(results))
        # Clients that hang up before the answer do not hurt the gateway.
        for _ in range(50):
            c = socket.create_connection(("127.0.0.1", s.http_port))
            c.sendall(b"GET /models HTTP/1.1\r\nHost: x\r\n\r\n")
            c.close()
        st, body = s.http("GET", "/models")
        e.check(st == 200 and s["gateway"].alive(), "gateway alive after hang-ups")


if __name__ == "__main__":
    e.run_tests(globals())
