"""Jobs end to end on a real Kafka broker: upload -> rows topic -> worker ->
events topic + results over gRPC -> job state, rejected rows, reprocess."""
import json
import os
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}, "qty": {"type": "integer"}, "ok": {"type": "boolean"},
    "country": {"type": "string", "enum": ["US", "FR"]}, "vec": {"type": "array", "items": {"type": "number"}}},
    "required": ["event_id", "timestamp"]}

MIXED = ("event_id,timestamp,amount,qty,ok,country,vec\n"
         "e1,1700000000,1.5,3,true,US,\"[1,2]\"\n"
         "e2,yesterday,2,4,false,FR,\n"
         "e3,1700000002,abc,x,maybe,CA,\"[1,\"\"a\"\"]\"\n"
         "e4,1700000003,4.25,7,0,,\"[0.5]\"\n"
         ",1700000004,1,1,1,US,\n"
         "e6,1700000005,-2e3,-9,FALSE,FR,[]\n")


def create_model(s, schema=SCHEMA, name="Fraud Detection", tenant=None):
    st, m = s.http("POST", "/models", {"name": name, "schema": schema}, tenant=tenant)
    e.check(st == 201, "create model: %s %s" % (st, m))
    return m


def all_rejected(s, job_id, limit=1000, tenant=None):
    out, after = [], 0
    while True:
        st, page = s.http("GET", "/jobs/%s/rejected?limit=%d&after_row=%d" % (job_id, limit, after), tenant=tenant)
        e.check(st == 200, "rejected page: %s %s" % (st, page))
        out += page
        if not page or len({c["row"] for c in page}) < limit:
            return out
        after = page[-1]["row"]


def test_guide_flow_partial_success_events_and_reprocess():
    with e.Stack(workers=1) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "data.csv", MIXED)
        e.check(st == 202 and j["state"] == "PENDING" and j["total"] == 6, "upload: %s %s" % (st, j))
        for k in ["job_id", "tenant_id", "model_id", "total", "success", "errors", "state", "created_at", "updated_at"]:
            e.check(k in j, "job field %s" % k)
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == 3 and j["errors"] == 3,
                "exact counters: %s" % j)
        e.check(j["success"] + j["errors"] == j["total"], "success + errors = total")
        e.check(j["started_at"] and j["finished_at"] and j["model_name"] == "Fraud Detection", "timings/name: %s" % j)
        rej = all_rejected(s, j["job_id"])
        got = [(c["row"], c["column"], c["error"], c.get("observed")) for c in rej]
        e.check(got == [(2, "timestamp", "INVALID_TIMESTAMP", "yesterday"),
                        (3, "amount", "NOT_A_FLOAT", "abc"), (3, "qty", "NOT_AN_INTEGER", "x"),
                        (3, "ok", "NOT_A_BOOLEAN", "maybe"), (3, "country", "NOT_A_CATEGORY", "CA"),
                        (3, "vec", "NOT_A_VECTOR", '[1,"a"]'),
                        (5, "event_id", "INVALID_EVENT_ID", None)], "rejected cells: %s" % got)
        e.check(rej[0]["message"] == "The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer).",
                "SPEC 7 message")
        e.check("observed" not in rej[-1], "no observed for a blank cell")
        # paging by rows: limit=1 gives one row (all its cells) per page
        st, p1 = s.http("GET", "/jobs/%s/rejected?limit=1&after_row=2" % j["job_id"])
        e.check([c["row"] for c in p1] == [3] * 5, "page of row 3: %s" % p1)

        events = e.kcat_consume(m["topic"], read_committed=True, expect=3)
        time.sleep(1)
        e.check(len(e.kcat_consume(m["topic"])) == 3, "exactly 3 events")
        by_key = {x["key"]: x for x in events}
        e.check(len(events) == 3 and set(by_key) == {"e1", "e4", "e6"}, "exactly the valid rows: %s" % events)
        e1 = json.loads(by_key["e1"]["value"])
        e.check(e1 == {"event_id": "e1", "timestamp": 1700000000, "amount": 1.5, "qty": 3, "ok": True,
                       "country": "US", "vec": [1, 2]}, "typed JSON: %s" % e1)
        e.check(by_key["e4"]["value"] == '{"event_id":"e4","timestamp":1700000003,"amount":4.25,"qty":7,"ok":false,'
                                         '"country":null,"vec":[0.5]}', by_key["e4"]["value"])
        e.check(by_key["e1"]["timestamp"] == 1700000000000, "Kafka timestamp = event time")
        h = by_key["e6"]["headers"]
        e.check(h == {"tenant": "tenant_a", "job": j["job_id"], "model": m["model_id"], "row": "6"}, "headers %s" % h)

        # Fix the schema (make the failing columns lenient), reprocess the rejected rows.
        fixed = {"type": "object", "properties": {
            "event_id": {"type": "string"}, "timestamp": {"type": "string"}, "amount": {"type": "string"},
            "qty": {"type": "string"}, "ok": {"type": "string"}, "country": {"type": "string"},
            "vec": {"type": "string"}}, "required": [], "x-event-time": None}
        st, up = s.http("PUT", "/models/" + m["model_id"], {"schema": fixed})
        e.check(st == 200 and up["version"] == 2, "schema updated: %s" % up)
        st, r = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st == 202 and r["parent_job_id"] == j["job_id"] and r["total"] == 3, "reprocess: %s %s" % (st, r))
        r = s.wait_job(r["job_id"])
        e.check(r["state"] == "PARTIAL_SUCCESS" and r["success"] == 2 and r["errors"] == 1, "reprocessed: %s" % r)
        rej2 = all_rejected(s, r["job_id"])
        e.check([(c["row"], c["error"]) for c in rej2] == [(5, "INVALID_EVENT_ID")], "original row numbers: %s" % rej2)
        rows = sorted(x["headers"]["row"] for x in e.kcat_consume(m["topic"], expect=5) if x["headers"]["job"] == r["job_id"])
        e.check(rows == ["2", "3"], "reprocessed events keep row numbers: %s" % rows)
        st, body = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st == 202, "a parent can be reprocessed again")
        st, lst = s.http("GET", "/jobs")
        e.check([x["job_id"] for x in lst][-1] == j["job_id"] and len(lst) == 3, "newest first: %s" % lst)
        st, lst = s.http("GET", "/jobs?state=PARTIAL_SUCCESS")
        e.check(all(x["state"] == "PARTIAL_SUCCESS" for x in lst), "state filter")


def test_waiting_ends_when_a_worker_starts_the_job():
    """SPEC 8: waiting time = first processing - creation. Regression: the
    waiting time ran until the first batch's results were counted, so a
    worker busy committing the job's own rows counted as the job waiting.
    Here every batch is held 4 s after its events are produced (fault
    point): that time is processing, not waiting, and while it is held the
    job shows when it started and stays PENDING (no row counted yet)."""
    hold_ms = 4000
    with e.Stack(workers=1, env={"worker": {"BOK_FAULT": "worker.after_produce:delay=%d" % hold_ms}}) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "data.csv", MIXED)
        e.check(st == 202, "upload: %s %s" % (st, j))
        deadline, cur = time.time() + 60, j
        while time.time() < deadline and not cur.get("started_at"):
            time.sleep(0.05)
            st, cur = s.http("GET", "/jobs/" + j["job_id"])
        e.check(cur.get("started_at") and cur["state"] == "PENDING" and cur["success"] + cur["errors"] == 0,
                "started, nothing counted yet: %s" % cur)
        done = s.wait_job(j["job_id"])
        e.check(done["state"] == "PARTIAL_SUCCESS" and done["success"] == 3 and done["errors"] == 3, "final: %s" % done)
        e.check(done["started_at"] == cur["started_at"], "started_at kept: %s then %s" % (cur, done))
        e.check(done["waiting_ms"] < hold_ms <= done["processing_ms"],
                "the held batch is processing time: waiting_ms %s, processing_ms %s" % (
                    done["waiting_ms"], done["processing_ms"]))


def test_worker_needs_no_model_service_after_upload():
    """The job carries its schema (GetJobSpec): a worker that first sees the
    job while the model service is down still processes it."""
    with e.Stack(workers=0) as s:
        m = create_model(s)
        st, j = s.upload(m["model_id"], "data.csv", MIXED)
        e.check(st == 202 and j["state"] == "PENDING", "upload: %s %s" % (st, j))
        s["model"].stop()
        s.add_worker()
        j = s.wait_job(j["job_id"], timeout=90)
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == 3 and j["errors"] == 3, "counters: %s" % j)
        rej = all_rejected(s, j["job_id"])
        e.check([(c["row"], c["error"]) for c in rej][:2] == [(2, "INVALID_TIMESTAMP"), (3, "NOT_A_FLOAT")],
                "rejected with the model's schema: %s" % rej)
        events = e.kcat_consume(m["topic"], read_committed=True, expect=3)
        e.check(sorted(x["key"] for x in events) == ["e1", "e4", "e6"], "events: %s" % events)


def test_success_ndjson_and_failed_states():
    with e.Stack(workers=1) as s:
        m = create_model(s)
        nd = "\n".join(json.dumps({"event_id": "n%d" % i, "timestamp": 1700000000 + i, "amount": i / 2}) for i in range(50))
        st, j = s.upload(m["model_id"], "rows.ndjson", nd, content_type="application/octet-stream")
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "SUCCESS" and j["success"] == 50 and j["errors"] == 0, "ndjson success: %s" % j)
        # every row rejected -> FAILED; header lacks required columns -> MISSING_COLUMN
        st, j = s.upload(m["model_id"], "bad.csv", "amount,qty\n1,2\n3,4\n")
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "FAILED" and j["errors"] == 2 and j["success"] == 0, "all rejected: %s" % j)
        rej = all_rejected(s, j["job_id"])
        e.check({c["error"] for c in rej} == {"MISSING_COLUMN"} and len(rej) == 4, "MISSING_COLUMN: %s" % rej)
        msgs = {c["message"] for c in rej}
        e.check("The required column 'event_id' is missing. Each event must have a unique event_id." in msgs, msgs)
        # no header / no rows / binary
        for name, data, err in [("empty.csv", "", "file has no header row"),
                                ("header-only.csv", "event_id,timestamp\n", "file has no data rows")]:
            st, j = s.upload(m["model_id"], name, data)
            e.check(st == 202 and j["state"] == "FAILED" and j.get("error") == err, "%s: %s" % (name, j))
        st, j = s.upload(m["model_id"], "binary.csv", b"event_id,timestamp\n\xff\xfe\x00\x01,2\ne9,1700000000\n")
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["errors"] == 1, "binary row rejected: %s" % j)
        rej = all_rejected(s, j["job_id"])
        e.check(rej[0]["error"] == "MALFORMED_ROW" and "invalid UTF-8" in rej[0]["message"], rej)


def test_bad_input_and_tenants():
    with e.Stack(workers=0) as s:
        m = create_model(s)
        st, body = s.upload("00000000-0000-4000-8000-000000000000", "a.csv", "a\n1\n")
        e.check(st == 404 and "model not found" in body["error"], "unknown model: %s %s" % (st, body))
        st, body = s.upload(m["model_id"], "a.csv", "a\n1\n", tenant="other")
        e.check(st == 404, "other tenant's model: %s" % st)
        body_, ctype = e.multipart({"model_id": m["model_id"]}, {})
        st, body = s.http("POST", "/jobs", body=body_, headers={"Content-Type": ctype})
        e.check(st == 400 and "file" in body["error"], "missing file: %s" % body)
        body_, ctype = e.multipart({}, {"file": ("a.csv", "a\n1\n", "text/csv")})
        st, body = s.http("POST", "/jobs", body=body_, headers={"Content-Type": ctype})
        e.check(st == 400 and "model_id" in body["error"], "missing model_id: %s" % body)
        body_, ctype = e.multipart({"model_id": m["model_id"]}, {"file": ("a.csv", "event_id\n1\n", "text/csv")})
        st, body = s.http("POST", "/jobs", body=body_[:-30], headers={"Content-Type": ctype})
        e.check(st == 400 and "truncated" in body["error"], "truncated: %s" % body)
        st, body = s.http("POST", "/jobs", body="x", headers={"Content-Type": "text/plain"})
        e.check(st == 400, "not multipart")
        st, lst = s.http("GET", "/jobs")
        e.check(lst == [], "no job left behind by bad uploads: %s" % lst)
        st, j = s.upload(m["model_id"], "a.csv", "event_id,timestamp\na,1\n")
        for path in ["/jobs/" + j["job_id"], "/jobs/%s/rejected" % j["job_id"]]:
            st, body = s.http("GET", path, tenant="other")
            e.check(st == 404 and body == {"error": "not found"}, "other tenant %s: %s" % (path, st))
        st, body = s.http("DELETE", "/jobs/" + j["job_id"], tenant="other")
        e.check(st == 404, "other tenant cannot cancel")
        st, body = s.http("GET", "/jobs/00000000-0000-4000-8000-000000000000")
        e.check(st == 404, "unknown job")
        st, body = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st == 409 and "no rejected rows" in body["error"], "reprocess without rejected: %s %s" % (st, body))
        st, body = s.http("DELETE", "/jobs/" + j["job_id"])
        e.check(st == 200 and body == {"status": "cancelled"}, "cancel: %s" % body)
        st, body = s.http("DELETE", "/jobs/" + j["job_id"])
        e.check(st == 409, "cancel a finished job: %s" % st)


def test_restart_keeps_jobs_and_rejected_rows():
    with e.Stack(workers=1) as s:
        m = create_model(s)
        st, j1 = s.upload(m["model_id"], "a.csv", MIXED)
        j1 = s.wait_job(j1["job_id"])
        s["job"].restart()
        st, j2 = s.upload(m["model_id"], "b.csv", MIXED)
        e.check(st == 202, "upload after restart: %s" % j2)
        j2 = s.wait_job(j2["job_id"])
        s["job"].kill()
        s["job"].start()
        for j in (j1, j2):
            st, got = s.http("GET", "/jobs/" + j["job_id"])
            e.check(st == 200 and got["state"] == "PARTIAL_SUCCESS" and got["success"] == 3, "kept: %s" % got)
            e.check(len(all_rejected(s, j["job_id"])) == 7, "rejected rows kept")


N_CANCEL = 200000  # large enough that the cancel lands mid-job even on a fast machine


def test_cancel_mid_job_freezes_counters():
    with e.Stack(workers=1, overrides={"worker": {"kafka.batch_max_rows": 500}}) as s:
        m = create_model(s)
        rows = "".join("c%d,%d,1.5,1,true,US,\n" % (i, 1700000000 + i) for i in range(N_CANCEL))
        st, j = s.upload(m["model_id"], "big.csv", "event_id,timestamp,amount,qty,ok,country,vec\n" + rows)
        e.check(st == 202, "upload: %s" % j)
        s.wait_job(j["job_id"], states=("RUNNING",), timeout=60)
        st, body = s.http("DELETE", "/jobs/" + j["job_id"])
        e.check(st == 200, "cancel answered: %s %s" % (st, body))
        st, c1 = s.http("GET", "/jobs/" + j["job_id"])
        e.check(c1["state"] == "CANCELLED" and c1["success"] < N_CANCEL, "cancelled mid-job: %s" % c1)
        time.sleep(3)
        st, c2 = s.http("GET", "/jobs/" + j["job_id"])
        e.check((c2["success"], c2["errors"], c2["state"]) == (c1["success"], c1["errors"], "CANCELLED"),
                "counters frozen: %s vs %s" % (c1, c2))
        time.sleep(2)  # a batch already committing may still land
        n1 = len(e.kcat_consume(m["topic"]))
        time.sleep(2)
        n2 = len(e.kcat_consume(m["topic"]))
        e.check(n1 == n2 and n1 < N_CANCEL, "no further events: %d then %d" % (n1, n2))


if __name__ == "__main__":
    e.run_tests(globals())
