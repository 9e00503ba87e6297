"""Issue 14 on the real stack: job-level errors in the CLI, header warnings,
the error summary, rejected rows as a file, dry run, the error budget and
honest reprocess answers. CLI output is checked byte for byte."""
import json
import os
import re
import subprocess
import tempfile

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "attr_float": {"type": "number"}, "attr_int": {"type": "integer"}},
    "required": ["event_id", "timestamp"]}
HDR = ("JOB      MODEL       STATE           TOTAL   OK      ERRORS  PROGRESS                 WAITING  PROCESSING\n"
       "-------- ----------- --------------- ------- ------- ------- ------------------------ -------  -----------\n")
CASE_MSG = "the header has 'Timestamp' but the schema expects 'timestamp' (column names are case-sensitive)"


def cli(s, *args):
    e.skip_if_missing("cli")
    env = dict(os.environ, BATCH_API_URL=s.api_url, BATCH_WATCH_INTERVAL="0.2")
    env.pop("BATCH_TENANT", None)
    p = subprocess.run([e.binary("cli")] + list(args), capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tmpfile(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def model(s, schema=SCHEMA, name="Diag"):
    st, m = s.http("POST", "/models", json_body={"name": name, "schema": schema})
    e.check(st == 201, "model: %s %s" % (st, m))
    return m["model_id"]


def upload(s, mid, name, data, ctype="text/csv", **fields):
    body, ct = e.multipart(dict({"model_id": mid}, **fields), {"file": (name, data, ctype)})
    return s.http("POST", "/jobs", body=body, headers={"Content-Type": ct})


def mask_times(text):
    return re.sub(r"\d\d:\d\d +\d\d:\d\d\n", "TT\n", text)


def test_job_level_errors_in_the_cli():
    with e.Stack(workers=1) as s:
        mid = model(s)
        empty = tmpfile("", ".csv")
        rc, out, err = cli(s, "job", "create", mid[:8], empty)
        e.check(rc == 3 and re.fullmatch(r"job [0-9a-f]{8} created\.\n", out), "create: %s %r %r" % (rc, out, err))
        short = out.split()[1]
        e.check(err == "batchcli: job %s FAILED: file has no header row\n" % short, "stderr: %r" % err)
        rc, out, _ = cli(s, "job", "status", short)
        e.check(rc == 0 and mask_times(out) == HDR + short +
                " Diag        FAILED                0       0       0 [-----------------]   0%   TT\n"
                "error: file has no header row\n", "status: %r" % out)
        hdr_only = tmpfile("event_id,timestamp\n", ".csv")
        rc, out, err = cli(s, "job", "create", mid[:8], hdr_only)
        short2 = out.split()[1]
        e.check(rc == 3 and err == "batchcli: job %s FAILED: file has no data rows\n" % short2, "hdr only: %r" % err)
        rc, out, _ = cli(s, "job", "list")
        e.check(out.endswith("%s error: file has no data rows\n%s error: file has no header row\n" % (short2, short)),
                "list notes: %r" % out)
        rc, out, _ = cli(s, "job", "watch", short)
        e.check(rc == 3 and out.endswith("\nerror: file has no header row\n"), "watch: %s %r" % (rc, out))
        # a job whose rows are all rejected fails without an error: the CLI says why
        bad = tmpfile("event_id,timestamp\na,x\nb,y\n", ".csv")
        rc, out, err = cli(s, "job", "create", "--wait", mid[:8], bad)
        short3 = out.split()[1]
        e.check(rc == 3 and err == "batchcli: job %s FAILED: no row is valid (2 rejected; see: batchcli job errors %s)\n"
                % (short3, short3), "all rejected: %s %r %r" % (rc, out, err))
        ok = tmpfile("event_id,timestamp\na,1700000000\n", ".csv")
        rc, out, err = cli(s, "job", "create", mid[:8], ok, "--wait")
        e.check(rc == 0 and " SUCCESS " in out and "[#################] 100%" in out, "--wait: %s %r %r" % (rc, out, err))


def j_of(s, short):
    st, jobs = s.http("GET", "/jobs")
    return [j["job_id"] for j in jobs if j["job_id"].startswith(short)][0]


def test_header_warnings():
    with e.Stack(workers=1) as s:
        mid = model(s)
        data = "event_id,Timestamp, attr_int ,extra\n" + "".join("e%d,%d,%d,x\n" % (i, 1700000000 + i, i) for i in range(50))
        st, j = upload(s, mid, "w.csv", data)
        e.check(st == 202, "upload %s" % st)
        e.check(j["warnings"] == [
            {"code": "HEADER_CASE_MISMATCH", "column": "timestamp", "message": CASE_MSG},
            {"code": "HEADER_CASE_MISMATCH", "column": "attr_int",
             "message": "the header has ' attr_int ' but the schema expects 'attr_int' (remove the spaces around the name)"},
            {"code": "HEADER_UNKNOWN_COLUMN", "column": "extra",
             "message": "the header has 'extra', which the schema does not know: rows with a value in it are "
                        "rejected with EXTRA_COLUMN (remove the column, or add it to the schema)"}], "warnings: %s" % j["warnings"])
        st, j2 = upload(s, mid, "m.csv", "event_id,attr_int\na,1\n")
        e.check([w["code"] for w in j2["warnings"]] == ["HEADER_MISSING_COLUMN"] and j2["warnings"][0]["message"] ==
                "the required column 'timestamp' is not in the header: every row is rejected with MISSING_COLUMN",
                "missing: %s" % j2["warnings"])
        st, j3 = upload(s, mid, "ok.csv", "event_id,timestamp\na,1700000000\n")
        e.check(j3["warnings"] == [], "a good header has no warnings: %s" % j3["warnings"])
        st, j4 = upload(s, mid, "q.csv", 'event_id,timestamp\na,1700000000\n"b,1\n')
        e.check([w["code"] for w in j4["warnings"]] == ["UNTERMINATED_QUOTE"], "quote: %s" % j4["warnings"])
        # the CLI prints them right after create and under the status table
        f = tmpfile("event_id,Timestamp\n" + "".join("e%d,%d\n" % (i, 1700000000 + i) for i in range(20)), ".csv")
        rc, out, err = cli(s, "job", "create", mid[:8], f)
        short = out.split()[1]
        e.check(out == "job %s created.\nwarning: %s\n" % (short, CASE_MSG), "create: %r" % out)
        # FAILED at once exits 3; a loaded machine may need longer than the 2 s create waits
        e.check(rc == 3 or (rc == 0 and s.wait_job(j_of(s, short))["state"] == "FAILED"),
                "every row rejected: FAILED: %s %r" % (rc, err))
        rc, out, _ = cli(s, "job", "status", short)
        e.check(mask_times(out) == HDR + short + " Diag        FAILED               20       0      20 "
                "[XXXXXXXXXXXXXXXXX]   0%   TT\nwarning: " + CASE_MSG + "\n", "status: %r" % out)


def test_error_summary():
    with e.Stack(workers=2) as s:
        mid = model(s)
        rows = []
        for i in range(1, 1201):
            ts = "yesterday" if i % 4 == 0 else str(1700000000 + i)
            fl = "abc" if i % 3 == 0 else "1.5"
            rows.append("e%d,%s,%s,%s" % (i, ts, fl, "3.14" if i == 7 else "1"))
        st, j = upload(s, mid, "s.csv", "event_id,timestamp,attr_float,attr_int\n" + "\n".join(rows) + "\n")
        j = s.wait_job(j["job_id"])
        st, summ = s.http("GET", "/jobs/%s/errors" % j["job_id"])
        e.check(st == 200, "errors %s" % st)
        want = [
            {"code": "NOT_A_FLOAT", "column": "attr_float", "type": "FLOAT", "count": 400, "first_row": 3,
             "example": "abc", "message": "The value for 'attr_float' is not a float. Provide a numeric value (e.g. 3.14)."},
            {"code": "INVALID_TIMESTAMP", "column": "timestamp", "type": "TIMESTAMP", "count": 300, "first_row": 4,
             "example": "yesterday",
             "message": "The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer)."},
            {"code": "NOT_AN_INTEGER", "column": "attr_int", "type": "INTEGER", "count": 1, "first_row": 7,
             "example": "3.14", "message": "The value for 'attr_int' is not an integer. Provide a whole number (e.g. 42)."}]
        e.check(summ == want, "summary: %s" % json.dumps(summ))
        e.check(j["top_errors"] == want[:3], "top_errors: %s" % j["top_errors"])
        # the summary agrees with the rejected cells
        cells = []
        after = 0
        while True:
            st, page = s.http("GET", "/jobs/%s/rejected?limit=1000&after_row=%d" % (j["job_id"], after))
            cells += page
            if len({c["row"] for c in page}) < 1000:
                break
            after = page[-1]["row"]
        for w in want:
            n = sum(1 for c in cells if c["error"] == w["code"] and c["column"] == w["column"])
            e.check(n == w["count"], "%s: %d cells vs %d" % (w["code"], n, w["count"]))
        rc, out, _ = cli(s, "job", "errors", j["job_id"][:8])
        e.check(rc == 0 and out ==
                "CODE                COLUMN      TYPE          COUNT FIRST_ROW EXAMPLE\n"
                "------------------- ----------- ----------- ------- --------- ----------------\n"
                "NOT_A_FLOAT         attr_float  FLOAT           400         3 \"abc\"\n"
                "INVALID_TIMESTAMP   timestamp   TIMESTAMP       300         4 \"yesterday\"\n"
                "NOT_AN_INTEGER      attr_int    INTEGER           1         7 \"3.14\"\n", "job errors:\n" + out)
        rc, out, _ = cli(s, "--json", "job", "errors", j["job_id"][:8])
        e.check(json.loads(out) == want, "--json errors")
        st, other = s.http("GET", "/jobs/%s/errors" % j["job_id"], tenant="tenant_b")
        e.check(st == 404 and other == {"error": "not found"}, "another tenant's summary: %s" % st)


def test_rejected_rows_download():
    with e.Stack(workers=1) as s:
        mid = model(s)
        header = "event_id;timestamp;attr_float"
        body = [header, "a;1700000000;1.5", "b;never;1", 'c;1700000000;"x;y"', "d;1700000001;2", "e;1;2;3"]
        st, j = upload(s, mid, "d.csv", "\r\n".join(body) + "\r\n", separator=";")
        j = s.wait_job(j["job_id"])
        st, raw = s.http("GET", "/jobs/%s/rejected/download" % j["job_id"])
        e.check(st == 200 and raw == header + "\n" + 'b;never;1\nc;1700000000;"x;y"\ne;1;2;3\n', "csv: %r" % raw)
        st, ann = s.http("GET", "/jobs/%s/rejected/download?annotate=true" % j["job_id"])
        e.check(ann == header + ";_row;_errors\n"
                "b;never;1;2;timestamp: INVALID_TIMESTAMP\n"
                'c;1700000000;"x;y";3;attr_float: NOT_A_FLOAT\n'
                "e;1;2;3;5;MALFORMED_ROW\n", "annotated: %r" % ann)
        # CLI: streamed to a file, byte for byte
        path = tempfile.mktemp(suffix=".csv")
        rc, out, err = cli(s, "job", "rejected", j["job_id"][:8], "--download", path)
        e.check(rc == 0 and out == "rejected rows of job %s written to %s\n" % (j["job_id"][:8], path), "cli: %r %r" % (out, err))
        with open(path) as f:
            e.check(f.read() == raw, "the file is the download")
        rc, out, _ = cli(s, "job", "rejected", j["job_id"][:8], "--download", "-", "--annotate")
        e.check(rc == 0 and out == ann, "stdout annotated: %r" % out)
        # NDJSON: the raw lines; annotate adds keys
        lines = ['{"event_id":"a","timestamp":1700000000}', '{"event_id":"b","timestamp":"soon"}', '{"event_id":',
                 '{}']
        st, j2 = upload(s, mid, "d.ndjson", "\n".join(lines) + "\n", ctype="application/x-ndjson")
        j2 = s.wait_job(j2["job_id"])
        st, raw = s.http("GET", "/jobs/%s/rejected/download" % j2["job_id"])
        e.check(raw == "\n".join(lines[1:]) + "\n", "ndjson: %r" % raw)
        st, ann = s.http("GET", "/jobs/%s/rejected/download?annotate=1" % j2["job_id"])
        got = [json.loads(x) for x in ann.splitlines()]
        e.check(got[0]["event_id"] == "b" and got[0]["_row"] == 2 and got[0]["_errors"][0]["error"] == "INVALID_TIMESTAMP",
                "ndjson annotated: %r" % ann)
        e.check(got[1]["_raw"] == '{"event_id":' and got[1]["_row"] == 3, "not an object: %r" % got[1])
        e.check(got[2]["_row"] == 4 and {x["column"] for x in got[2]["_errors"]} == {"event_id", "timestamp"},
                "empty object: %r" % got[2])
        # many pages: every row once, in row order
        n = 2500
        st, j3 = upload(s, mid, "many.csv", "event_id,timestamp\n" + "".join("r%d,t%d\n" % (i, i) for i in range(n)))
        j3 = s.wait_job(j3["job_id"])
        st, raw = s.http("GET", "/jobs/%s/rejected/download" % j3["job_id"])
        e.check(raw == "event_id,timestamp\n" + "".join("r%d,t%d\n" % (i, i) for i in range(n)),
                "2,500 rows over 3 pages: %d lines" % raw.count("\n"))
        st, _ = s.http("GET", "/jobs/%s/rejected/download?annotate=maybe" % j2["job_id"])
        e.check(st == 400, "annotate=maybe: %s" % st)
        st, nf = s.http("GET", "/jobs/00000000-0000-4000-8000-000000000000/rejected/download")
        e.check(st == 404 and nf == {"error": "not found"}, "unknown job: %s %s" % (st, nf))
        rc, out, err = cli(s, "job", "rejected", "00000000-0000-4000-8000-000000000000", "--download", path)
        e.check(rc == 1 and not os.path.exists(path), "failed download leaves no file: %r" % err)


def test_dry_run_publishes_nothing():
    with e.Stack(workers=1) as s:
        mid = model(s)
        st, m = s.http("GET", "/models/" + mid)
        data = "event_id,timestamp\n" + "".join("e%d,%s\n" % (i, "x" if i % 5 == 0 else 1700000000 + i) for i in range(100))
        st, j = upload(s, mid, "dry.csv", data, dry_run="true")
        e.check(st == 202 and j["dry_run"] is True, "dry run job: %s" % j)
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == 80 and j["errors"] == 20 and j["dry_run"], "%s" % j)
        st, summ = s.http("GET", "/jobs/%s/errors" % j["job_id"])
        e.check(summ[0]["count"] == 20, "summary of a dry run: %s" % summ)
        st, raw = s.http("GET", "/jobs/%s/rejected/download" % j["job_id"])
        e.check(raw.count("\n") == 21, "rejected rows stored: %r" % raw[:200])
        # the model's events topic is made with the model (test_retention): a dry run leaves it empty
        e.check(e.wait_topic(m["topic"]) and not e.kcat_consume(m["topic"], timeout=20, read_committed=False),
                "a dry run published events (or the topic was not made with the model)")
        st, bad = upload(s, mid, "dry.csv", data, dry_run="perhaps")
        e.check(st == 400 and "dry_run" in bad["error"], "dry_run=perhaps: %s" % bad)
        # CLI marks it
        f = tmpfile(data, ".csv")
        rc, out, err = cli(s, "job", "create", "--dry-run", mid[:8], f, "--wait")
        short = out.split()[1]
        e.check(rc == 2 and out.startswith("job %s created (dry run: no event will be published).\n" % short) and
                out.endswith("dry run: rows validated and counted, no event published\n"), "cli: %s %r %r" % (rc, out, err))
        e.check(not e.kcat_consume(m["topic"], timeout=20, read_committed=False), "still no event")
        # the same file for real publishes the valid rows
        st, j = upload(s, mid, "real.csv", data)
        j = s.wait_job(j["job_id"])
        e.check(len(e.kcat_consume(m["topic"], expect=80, timeout=30)) == 80, "a real run publishes")


def test_error_budget():
    with e.Stack(workers=1) as s:
        mid = model(s)
        n = 3000
        data = "event_id,timestamp\n" + "".join("e%d,%s\n" % (i, "bad" if i % 2 else 1700000000 + i) for i in range(n))
        st, j = upload(s, mid, "b.csv", data, max_errors="10")
        e.check(st == 202 and j["max_errors"] == 10, "budget job: %s" % j)
        j = s.wait_job(j["job_id"])
        m = re.fullmatch(r"error budget exceeded: ([\d,]+) of the first ([\d,]+) rows rejected \(limit 10 rejected rows\); "
                         r"([\d,]+) events were already published", j.get("error", ""))
        e.check(j["state"] == "FAILED" and m, "budget error: %s" % j)
        bad, done, pub = (int(x.replace(",", "")) for x in m.groups())
        e.check(bad == j["errors"] and done == j["errors"] + j["success"] and pub == j["success"], "figures: %s" % j)
        e.check(done < n, "the remaining rows were skipped: %d of %d processed" % (done, n))
        time_before = j["success"] + j["errors"]
        import time
        time.sleep(2)
        st, j = s.http("GET", "/jobs/" + j["job_id"])
        e.check(j["success"] + j["errors"] == time_before and j["state"] == "FAILED", "counters frozen: %s" % j)
        # rate: 50% rejected, limit 10%, checked from min(1000, total) rows on
        st, j = upload(s, mid, "r.csv", data, max_error_rate="0.1")
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "FAILED" and j["error"].startswith("error budget exceeded: ") and "(limit 10%)" in j["error"]
                and j["success"] + j["errors"] >= 1000, "rate: %s" % j)
        # within budget: finishes normally
        st, j = upload(s, mid, "ok.csv", data, max_error_rate="0.6")
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] + j["errors"] == n, "within: %s" % j)
        for field, v in (("max_errors", "-1"), ("max_errors", "x"), ("max_error_rate", "1.5"), ("max_error_rate", "nan")):
            st, b = upload(s, mid, "x.csv", data, **{field: v})
            e.check(st == 400 and field in b["error"], "%s=%s: %s %s" % (field, v, st, b))
        # defaults from the model (PUT /models/{id}); the upload's own fields win
        st, m = s.http("PUT", "/models/" + mid, json_body={"max_errors": 5, "max_error_rate": 0.25})
        e.check(st == 200 and m["max_errors"] == 5 and m["max_error_rate"] == 0.25 and m["version"] == 1, "PUT: %s" % m)
        st, j = upload(s, mid, "d.csv", data)
        e.check(j["max_errors"] == 5 and j["max_error_rate"] == 0.25, "defaults: %s" % j)
        j = s.wait_job(j["job_id"])
        e.check(j["state"] == "FAILED" and "(limit 5 rejected rows)" in j["error"], "model default: %s" % j)
        st, j = upload(s, mid, "d.csv", data, max_errors="100000", max_error_rate="1")
        e.check(j["max_errors"] == 100000 and j["max_error_rate"] == 1, "own fields win: %s" % j)
        st, m = s.http("PUT", "/models/" + mid, json_body={"max_errors": None, "max_error_rate": None})
        e.check(st == 200 and "max_errors" not in m and "max_error_rate" not in m, "removed: %s" % m)
        st, b = s.http("PUT", "/models/" + mid, json_body={"max_error_rate": 2})
        e.check(st == 400 and "max_error_rate" in b["error"], "rate 2: %s %s" % (st, b))
        st, b = s.http("PUT", "/models/" + mid, json_body={"max_errors": 3, "schema": {"type": "object", "properties": {
            "x": {"type": "money"}}}})
        st2, m = s.http("GET", "/models/" + mid)
        e.check(st == 400 and "max_errors" not in m, "a refused update changes nothing: %s %s" % (st, m))
        # CLI flags
        f = tmpfile(data, ".csv")
        rc, out, err = cli(s, "job", "create", mid[:8], f, "--max-errors", "5", "--wait")
        e.check(rc == 3 and "FAILED: error budget exceeded: " in err, "cli budget: %s %r %r" % (rc, out, err))
        e.check("\nerror: error budget exceeded: " in out, "status lines: %r" % out)


def test_reprocess_answers():
    with e.Stack(workers=0) as s:
        mid = model(s)
        st, j = upload(s, mid, "p.csv", "event_id,timestamp\na,x\n")
        e.check(j["state"] == "PENDING", "no worker: pending")
        st, r = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st == 409 and r["error"] == "job is still running (no rejected rows yet)", "pending: %s %s" % (st, r))
        w = s.add_worker()
        j = s.wait_job(j["job_id"])
        rc, out, _ = cli(s, "reprocess", j["job_id"][:8])
        e.check(rc == 0 and re.fullmatch(r"Reprocessing job %s created\nnew job: [0-9a-f]{8}\n" % j["job_id"][:8], out),
                "two lines: %r" % out)
        st, _ = s.http("DELETE", "/models/" + mid)
        st, r = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st == 409 and r["error"] == "the model of this job was deleted", "deleted model: %s %s" % (st, r))
        rc, out, err = cli(s, "reprocess", j["job_id"][:8])
        e.check(rc == 1 and "the model of this job was deleted (HTTP 409)" in err, "cli 409: %r" % err)
        w.stop()


if __name__ == "__main__":
    e.run_tests(globals())
