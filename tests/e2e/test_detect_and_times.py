"""Issue 15 (data core), end to end through the gateway on the real broker:
ISO-8601 / RFC 3339 event times (date-time TIMESTAMP columns: exact
counters, events normalised to UTC with milliseconds, Kafka timestamps =
event times, the SPEC 12 message), CSV strictness (too few fields, one
malformed row for an unterminated quote, the rows after it still read;
reprocess reports the same rows the same way), and schema detection
(`batchcli schema` on messy files, POST /schema options) whose output
`model create` accepts as is."""
import json
import os
import subprocess
import time

import bok_e2e as e

DETECT = os.path.join(e.SRC, "tests", "data", "detect")
ISO_MSG = "The '{}' value is invalid. Please provide an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z)."
NOT_TS_MSG = "The value for '{}' is not a timestamp. Use an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z)."

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
    "amount": {"type": "number"}, "seen": {"type": "string", "format": "date-time"}},
    "required": ["event_id", "timestamp"]}

# 12 data rows: 6 valid, 6 rejected (3 bad times, 1 blank time, 1 too few
# fields, 1 unterminated quote -- the rows after it are still read)
CSV = ("event_id,timestamp,amount,seen\n"
       "e1,2024-05-01T12:00:00Z,1.5,\n"                                  # 1 valid
       "e2,2024-05-01T12:00:00+02:00,2,2024-05-01t10:00:00.123456z\n"    # 2 valid, offset, lower case
       "e3,2024-02-30T00:00:00Z,3,\n"                                    # 3 no Feb 30
       "e4,,4,\n"                                                        # 4 blank event time
       "e5,2024-05-01T12:00:00-05:30,5,yesterday\n"                      # 5 seen is no timestamp
       "e6,1960-01-01T00:00:00Z,6,\n"                                    # 6 valid, before 1970
       "e7,2024-05-01T23:59:59.999-23:59,7,\n"                           # 7 valid, next day in UTC
       "e8,1714564800,8,\n"                                              # 8 Unix seconds: not ISO
       "e9,2024-05-01T12:00:00Z\n"                                       # 9 2 fields, header has 4
       "e10,\"2024-05-01T12:00:00Z,10,\n"                                # 10 quote never closed
       "e11,2024-05-01T12:00:00.5Z,11,\n"                                # 11 valid
       "e12,2024-05-01T12:00:00Z,12,\n")                                 # 12 valid


def create_model(s, schema, name):
    st, m = s.http("POST", "/models", {"name": name, "schema": schema})
    e.check(st == 201, "create model: %s %s" % (st, m))
    return m


def all_rejected(s, job_id):
    st, page = s.http("GET", "/jobs/%s/rejected?limit=1000" % job_id)
    e.check(st == 200, "rejected: %s %s" % (st, page))
    return page


def cli(s, *args):
    env = dict(os.environ, BATCH_API_URL=s.api_url if s else "http://127.0.0.1:1")
    p = subprocess.run([e.binary("cli")] + list(args), capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_iso_event_times_and_csv_strictness():
    with e.Stack(workers=1) as s:
        m = create_model(s, SCHEMA, "iso times")
        st, j = s.upload(m["model_id"], "times.csv", CSV)
        e.check(st == 202 and j["total"] == 12, "all 12 rows counted (the unterminated quote swallows none): %s %s"
                % (st, j))
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == 6 and j["errors"] == 6 and j["total"] == 12,
                "exact counters: %s" % j)
        rej = all_rejected(s, j["job_id"])
        got = [(c["row"], c["column"], c["error"], c.get("observed"), c["message"]) for c in rej]
        want = [(3, "timestamp", "INVALID_TIMESTAMP", "2024-02-30T00:00:00Z", ISO_MSG.format("timestamp")),
                (4, "timestamp", "INVALID_TIMESTAMP", None, ISO_MSG.format("timestamp")),
                (5, "seen", "NOT_A_TIMESTAMP", "yesterday", NOT_TS_MSG.format("seen")),
                (8, "timestamp", "INVALID_TIMESTAMP", "1714564800", ISO_MSG.format("timestamp")),
                (9, "", "MALFORMED_ROW", None, "Row 9 is malformed: it has 2 fields but the header has 4."),
                (10, "", "MALFORMED_ROW", None, "Row 10 is malformed: unterminated quoted field.")]
        e.check(got == want, "rejected cells:\n%s\nwant\n%s" % ("\n".join(map(str, got)), "\n".join(map(str, want))))
        e.check(rej[0]["type"] == "TIMESTAMP", "type TIMESTAMP: %s" % rej[0])

        events = e.kcat_consume(m["topic"], expect=6)
        by_key = {x["key"]: x for x in events}
        e.check(sorted(by_key) == ["e1", "e11", "e12", "e2", "e6", "e7"], "the valid rows: %s" % sorted(by_key))
        vals = {k: json.loads(v["value"]) for k, v in by_key.items()}
        e.check(vals["e1"] == {"event_id": "e1", "timestamp": "2024-05-01T12:00:00.000Z", "amount": 1.5, "seen": None},
                vals["e1"])
        e.check(vals["e2"]["timestamp"] == "2024-05-01T10:00:00.000Z" and vals["e2"]["seen"] == "2024-05-01T10:00:00.123Z",
                "UTC with milliseconds: %s" % vals["e2"])
        e.check(vals["e7"]["timestamp"] == "2024-05-02T23:58:59.999Z", vals["e7"])
        e.check(vals["e11"]["timestamp"] == "2024-05-01T12:00:00.500Z", vals["e11"])
        e.check(vals["e6"]["timestamp"] == "1960-01-01T00:00:00.000Z", vals["e6"])
        # Kafka timestamp = the event time (ms); before 1970 Kafka has none: processing time
        for k, ms in [("e1", 1714564800000), ("e2", 1714557600000), ("e7", 1714694339999), ("e11", 1714564800500)]:
            e.check(by_key[k]["timestamp"] == ms, "%s: Kafka timestamp %s, want %s" % (k, by_key[k]["timestamp"], ms))
        e.check(abs(by_key["e6"]["timestamp"] - time.time() * 1000) < 600000,
                "before 1970: the processing time: %s" % by_key["e6"]["timestamp"])

        # reprocess with the same schema: the same rows, the same way
        st, r = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st == 202 and r["total"] == 6, "reprocess: %s %s" % (st, r))
        r = s.wait_job(r["job_id"])
        e.check(r["state"] == "FAILED" and r["errors"] == 6 and r["success"] == 0, "reprocessed: %s" % r)
        again = [(c["row"], c["column"], c["error"], c.get("observed"), c["message"]) for c in all_rejected(s, r["job_id"])]
        e.check(again == want, "reprocess reports the same rows the same way:\n%s" % "\n".join(map(str, again)))

        # NDJSON: a JSON string; a number is not an ISO time
        nd = "\n".join(json.dumps(x) for x in [
            {"event_id": "n1", "timestamp": "2024-05-01T12:00:00+02:00", "amount": 1},
            {"event_id": "n2", "timestamp": 1714564800, "amount": 2}]) + "\n"
        st, j2 = s.upload(m["model_id"], "times.ndjson", nd, content_type="application/octet-stream")
        j2 = s.wait_job(j2["job_id"])
        e.check(j2["success"] == 1 and j2["errors"] == 1, "ndjson: %s" % j2)
        rej = all_rejected(s, j2["job_id"])
        e.check([(c["row"], c["error"], c.get("observed"), c["message"]) for c in rej] ==
                [(2, "INVALID_TIMESTAMP", 1714564800, ISO_MSG.format("timestamp"))], "ndjson rejected: %s" % rej)
        n1 = [x for x in e.kcat_consume(m["topic"], expect=7) if x["key"] == "n1"]
        e.check(len(n1) == 1 and n1[0]["timestamp"] == 1714557600000 and
                json.loads(n1[0]["value"])["timestamp"] == "2024-05-01T10:00:00.000Z", "ndjson event: %s" % n1)

        # a bad date-time schema is refused, naming the property
        st, resp = s.http("POST", "/models", {"name": "bad", "schema": {"type": "object", "properties": {
            "t": {"type": "string", "format": "date"}}}})
        e.check(st == 400 and "properties.t.format" in resp["error"], "bad format: %s %s" % (st, resp))


def test_unterminated_quote_keeps_every_row():
    """The issue's case: 17 rows with an unterminated quote were counted as
    15. Now: total 17, one MALFORMED_ROW for the row where the quote opened."""
    schema = {"type": "object", "properties": {"event_id": {"type": "string"}, "n": {"type": "integer"},
                                               "note": {"type": "string"}}, "required": ["event_id"]}
    lines = ["event_id,n,note"]
    for i in range(1, 18):
        lines.append('e%d,%d,"open quote' % (i, i) if i == 15 else "e%d,%d,fine %d" % (i, i, i))
    with e.Stack(workers=1) as s:
        m = create_model(s, schema, "quotes")
        st, j = s.upload(m["model_id"], "q.csv", "\n".join(lines) + "\n")
        j = s.wait_job(j["job_id"])
        e.check(j["total"] == 17 and j["success"] == 16 and j["errors"] == 1, "17 rows, one malformed: %s" % j)
        rej = all_rejected(s, j["job_id"])
        e.check([(c["row"], c["error"], c["message"]) for c in rej] ==
                [(15, "MALFORMED_ROW", "Row 15 is malformed: unterminated quoted field.")], "%s" % rej)
        warnings = j.get("warnings")
        if warnings is not None:  # job warnings (SPEC 12) where the job service has them
            e.check([w["code"] for w in warnings] == ["UNTERMINATED_QUOTE"], "warning: %s" % warnings)
        keys = sorted(int(x["key"][1:]) for x in e.kcat_consume(m["topic"], expect=16))
        e.check(keys == [i for i in range(1, 18) if i != 15], "the rows after the quote are events: %s" % keys)


def test_batchcli_schema_on_messy_files_and_model_create():
    with e.Stack(workers=1) as s:
        orders = os.path.join(DETECT, "orders.csv")
        want = json.load(open(os.path.join(DETECT, "orders.schema.json")))
        rc, out, err = cli(None, "schema", "--explain", orders)
        e.check(rc == 0 and json.loads(out) == want, "schema of orders.csv: rc %s\n%s\n%s" % (rc, out, err))
        for line in ['price: FLOAT, 96.7% of 60 values fit, required; not fitting: "abc", "1e309"; too large: 1',
                     'qty: INTEGER, 98.3% of 60 values fit, required; not fitting: "9223372036854775808"; too large: 1',
                     "zip: STRING, 100.0% of 60 values fit, required",
                     "event_id: STRING, 100.0% of 59 values fit, 1 blank, event id",
                     "event id: event_id; event time: timestamp"]:
            e.check(line in err.splitlines(), "--explain line %r in:\n%s" % (line, err))
        rc, out, _ = cli(None, "--json", "schema", "--explain", "--rows", "5", orders)
        both = json.loads(out)
        e.check(rc == 0 and both["explain"]["rows"] == 5 and both["schema"]["properties"]["status"] == {"type": "string"},
                "--json --explain --rows 5: %s" % out[:300])
        rc, out, _ = cli(None, "schema", "--confidence", "99%", orders)
        e.check(rc == 0 and json.loads(out)["properties"]["price"] == {"type": "string"}, "--confidence 99%%: %s" % out)
        for bad in [["--rows", "0"], ["--confidence", "150"], ["--confidence", "0"], ["--bogus"]]:
            rc, _, err = cli(None, "schema", *bad, orders)
            e.check(rc != 0 and err.startswith("batchcli: "), "%s: rc %s %s" % (bad, rc, err))
        # NDJSON in a .json file: by content
        rc, out, _ = cli(None, "schema", os.path.join(DETECT, "events_named.json"))
        e.check(rc == 0 and json.loads(out) == json.load(open(os.path.join(DETECT, "events_named.schema.json"))),
                "ndjson by content: %s" % out)
        # overflow is one rule for both number types
        rc, out, err = cli(None, "schema", "--explain", os.path.join(DETECT, "overflow_small.csv"))
        e.check(json.loads(out)["properties"] == {"n": {"type": "string"}, "x": {"type": "string"}}, out)

        # the detected schema is what model create accepts, and it validates the file
        path = os.path.join(s.dir, "orders.schema.json")
        rc, out, _ = cli(None, "schema", orders)
        with open(path, "w") as f:
            f.write(out)
        rc, out, err = cli(s, "model", "create", "orders", path)
        e.check(rc == 0, "model create with the detected schema: %s %s" % (out, err))
        st, models = s.http("GET", "/models")
        m = [x for x in models if x["name"] == "orders"][0]
        with open(orders) as f:
            st, j = s.upload(m["model_id"], "orders.csv", f.read())
        j = s.wait_job(j["job_id"])
        e.check(j["total"] == 60 and j["success"] == 56 and j["errors"] == 4,
                "the sample validates but for its 4 misfit rows: %s" % j)
        rows = sorted({c["row"] for c in all_rejected(s, j["job_id"])})
        e.check(rows == [7, 10, 20, 30], "misfit rows: %s" % rows)

        # POST /schema: the same detection, options as query parameters
        with open(orders, "rb") as f:
            sample = f.read()
        st, sch = s.http("POST", "/schema", body=sample, headers={"Content-Type": "text/csv"})
        e.check(st == 200 and sch == want, "POST /schema = batchcli schema: %s" % sch)
        st, both = s.http("POST", "/schema?explain=true&rows=5&confidence=0.9", body=sample)
        e.check(st == 200 and set(both) == {"schema", "explain"} and both["explain"]["rows"] == 5 and
                both["explain"]["confidence"] == 0.9, "explain: %s" % both)
        price = [c for c in both["explain"]["columns"] if c["column"] == "price"][0]
        e.check(price["type"] == "FLOAT" and price["values"] == 5 and price["not_fitting"] == [], price)
        st, both = s.http("POST", "/schema?explain=true", body=sample)
        price = [c for c in both["explain"]["columns"] if c["column"] == "price"][0]
        e.check(price["not_fitting"] == ["abc", "1e309"] and price["fit"] == 58, price)
        e.conform("POST", "/schema", st, "application/json", json.dumps(both).encode())
        for q in ["confidence=0", "confidence=1.5", "confidence=x", "rows=0", "rows=x", "explain=yes"]:
            st, resp = s.http("POST", "/schema?" + q, body=sample)
            e.check(st == 400 and "error" in resp, "%s: %s %s" % (q, st, resp))


if __name__ == "__main__":
    e.run_tests(globals())
