"""docs/openapi.yaml against the running gateway.

- the gateway serves the spec (GET/HEAD /openapi.yaml, from the binary, any cwd);
- every operation in the spec is served (no 404 "not found" / 405), and on
  every spec path the methods the gateway allows are exactly the spec's;
- the conformance check every e2e test runs (bok_e2e.conform) rejects
  answers that do not match the spec.
The other direction (every route the gateway has is in the spec) is the unit
test test_openapi_routes, which reads the gateway's routing table.
"""
import os
import urllib.request

import bok_e2e as e

UUID = "123e4567-e89b-12d3-a456-426614174000"
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Operations added by another branch (helper "obs": GET/HEAD /readyz) that
# this branch's gateway does not serve yet; remove once it is merged.
PENDING = set()  # operations in the spec not served yet (none)
NO_BACKENDS = dict(model=False, job=False, workers=0)


def raw_request(url, method, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as ex:
        return ex.code, ex.headers, ex.read()


def concrete(tmpl):
    return tmpl.replace("{id}", UUID).replace("{file}", "app.js")


def test_gateway_serves_the_spec():
    with open(e.OPENAPI_FILE, "rb") as f:
        want = f.read()
    with e.Stack(**NO_BACKENDS) as s:  # the gateway runs in a temp dir, not the source tree
        st, h, body = raw_request(s.api_url + "/openapi.yaml", "GET")
        e.check(st == 200, "GET /openapi.yaml: %s" % st)
        e.check(h.get("Content-Type") == "application/yaml", "content type: %s" % h.get("Content-Type"))
        e.check(body == want, "the served spec differs from docs/openapi.yaml (%d vs %d bytes)" % (len(body), len(want)))
        st, h, body = raw_request(s.api_url + "/openapi.yaml", "HEAD")
        e.check(st == 200 and body == b"" and h.get("Content-Length") == str(len(want)),
                "HEAD /openapi.yaml: %s %s %r" % (st, h.get("Content-Length"), body[:50]))
        st, _ = s.http("POST", "/openapi.yaml", body=b"x")
        e.check(st == 405, "POST /openapi.yaml: %s" % st)


def test_every_spec_operation_is_served():
    spec = e.openapi()
    ops = spec.operations()
    e.check(len(ops) >= 19, "spec operations: %s" % ops)
    # No backends: anything routed answers 400/503 (or 200 locally), never 404/405.
    with e.Stack(**NO_BACKENDS) as s:
        missing = []
        for tmpl, method in ops:
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            hdrs = {"Content-Type": "application/json"} if body else {}
            if (tmpl, method) in PENDING:
                st, _, _ = raw_request(s.api_url + concrete(tmpl), method, body, hdrs)
                if st == 404:
                    print("note: %s %s is not served yet (pending on another branch)" % (method, tmpl))
                    continue
            st, resp = s.http(method, concrete(tmpl), body=body, headers=hdrs)  # validated too
            if st in (404, 405) and not (st == 404 and isinstance(resp, dict) and "code" in resp):
                missing.append("%s %s -> %s %s" % (method, tmpl, st, resp))
        e.check(not missing, "operations in docs/openapi.yaml the gateway does not serve:\n  " + "\n  ".join(missing))


def test_allowed_methods_are_exactly_the_spec():
    spec = e.openapi()
    with e.Stack(**NO_BACKENDS) as s:
        for tmpl, _, item in spec.paths:
            listed = {m.upper() for m in e.METHODS if m in item}
            if all((tmpl, m) in PENDING for m in listed):
                st, _, _ = raw_request(s.api_url + concrete(tmpl), "GET")
                if st == 404:
                    continue
            for method in ALL_METHODS:
                if method in listed:
                    continue
                # s.http checks the 405 and that Allow equals the spec's methods
                st, resp = s.http(method, concrete(tmpl), body=b"{}" if method != "HEAD" and method != "GET" else None)
                e.check(st == 405, "%s %s is not in the spec but answered %s %s" % (method, tmpl, st, resp))


def test_unknown_paths_are_404():
    with e.Stack(**NO_BACKENDS) as s:
        for path in ["/nope", "/jobs/123", "/models/not-a-uuid", "/jobs/%s/nope" % UUID, "/openapi.json"]:
            st, resp = s.http("GET", path)
            e.check(st == 404 and resp == {"error": "not found"}, "%s: %s %s" % (path, st, resp))


def test_conformance_check_rejects_what_the_spec_does_not_say():
    spec = e.openapi()
    job = {"job_id": UUID, "tenant_id": "t", "model_id": UUID, "total": 1, "success": 1, "errors": 0,
           "state": "SUCCESS", "created_at": "2023-03-15T12:01:40.000Z", "updated_at": "2023-03-15T12:01:40.000Z",
           "model_name": "m", "file_name": "f.csv", "started_at": None, "finished_at": None, "waiting_ms": 0,
           "processing_ms": 0, "parent_job_id": None}
    import json
    J = "application/json"
    spec.check("GET", "/jobs/" + UUID, 200, J, json.dumps(job).encode())  # conforms
    bad = [
        ("GET", "/jobs/" + UUID, 200, J, dict(job, state="DONE")),             # not a state
        ("GET", "/jobs/" + UUID, 200, J, {k: v for k, v in job.items() if k != "total"}),  # required field
        ("GET", "/jobs/" + UUID, 200, J, dict(job, extra=1)),                  # undocumented field
        ("GET", "/jobs/" + UUID, 200, J, dict(job, created_at="2023-03-15 12:01")),  # time format
        ("GET", "/jobs/" + UUID, 418, J, {"error": "x"}),                      # undeclared status
        ("GET", "/jobs/" + UUID, 200, "text/plain", job),                     # undeclared media type
        ("GET", "/jobs/" + UUID, 404, J, {"message": "x"}),                    # not the error body
        ("GET", "/nope", 200, J, {}),                                          # unknown path served
        ("PUT", "/jobs/" + UUID, 200, J, job),                                 # undeclared method served
    ]
    for method, path, status, ctype, body in bad:
        try:
            spec.check(method, path, status, ctype, json.dumps(body).encode(), "GET, DELETE")
        except e.Failure as ex:
            e.check(str(ex).startswith("OpenAPI: "), "message: %s" % ex)
            continue
        raise e.Failure("not rejected: %s %s %s %s %s" % (method, path, status, ctype, body))


if __name__ == "__main__":
    e.run_tests(globals())
