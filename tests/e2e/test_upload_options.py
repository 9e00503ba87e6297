"""Issue 15 point 3, end to end through the gateway on the real broker: the
upload options of SPEC 12 -- format (field, file name, content), separator
(tab, ';', '|'), header=false (columns in schema order), encoding (latin-1,
windows-1252, utf-16 with a BOM; converted to UTF-8 before the rows are
stored, so rejected rows and reprocessing see UTF-8), gzip (by name, by the
part's or the request's Content-Encoding; a corrupt or truncated stream
makes the job FAILED with a clear error), and 400 for unknown values."""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import uuid

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "name": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["event_id", "amount"], "x-event-id": "event_id"}


def form(fields, filename, data, ctype="application/octet-stream", part_headers=None):
    """A multipart body with extra form fields and part headers for the file."""
    b = "----bok" + uuid.uuid4().hex
    out = bytearray()
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\nContent-Type: %s\r\n"
            % (b, filename, ctype)).encode()
    for k, v in (part_headers or {}).items():
        out += ("%s: %s\r\n" % (k, v)).encode()
    out += b"\r\n" + (data.encode() if isinstance(data, str) else data) + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return bytes(out), "multipart/form-data; boundary=" + b


def upload(s, model_id, filename, data, headers=None, **fields):
    body, ct = form(dict(model_id=model_id, **fields), filename, data, part_headers=headers)
    return s.http("POST", "/jobs", body=body, headers={"Content-Type": ct})


def upload_req_ce(s, model_id, filename, data, ce):
    body, ct = form({"model_id": model_id}, filename, data)
    return s.http("POST", "/jobs", body=body, headers={"Content-Type": ct, "Content-Encoding": ce})


def done(s, st, j, want_state="SUCCESS", total=None):
    e.check(st == 202, "upload: %s %s" % (st, j))
    j = s.wait_job(j["job_id"])
    e.check(j["state"] == want_state, "state %s: %s" % (want_state, j))
    if total is not None:
        e.check(j["total"] == total, "total %d: %s" % (total, j))
    return j


def events(m, n):
    got = e.kcat_consume(m["topic"], expect=n)
    e.check(len(got) == n, "%d events: %s" % (n, got))
    return {x["key"]: json.loads(x["value"]) for x in got}


def model(s, name):
    st, m = s.http("POST", "/models", {"name": name + " " + e.rand_suffix(), "schema": SCHEMA})
    e.check(st == 201, "model: %s %s" % (st, m))
    return m


def test_formats_separators_and_headerless():
    with e.Stack(workers=1) as s:
        m = model(s, "formats")
        mid = m["model_id"]
        done(s, *upload(s, mid, "a.tsv", "event_id\tname\tamount\nt1\tAnn\t1.5\n", separator="\\t"), total=1)
        done(s, *upload(s, mid, "b.csv", "event_id;name;amount\ns1;\"B;b\";2\n", separator=";"), total=1)
        done(s, *upload(s, mid, "c.txt", "event_id|name|amount\np1|Cy|3\n", separator="|"), total=1)
        # another quote character: 'a;b' is one field, '' a quote inside it, "x" plain text
        j = done(s, *upload(s, mid, "q.csv", "event_id;name;amount\nq1;'O''Hara; \"Jr\"';1\nq2;'multi\nline';2\n",
                            separator=";", quote="'"), total=2)
        # NDJSON by content: a .json name says nothing, the first line is an object
        nd = '{"event_id":"n1","name":"Di","amount":4}\n{"event_id":"n2","amount":5}\n'
        done(s, *upload(s, mid, "export.json", nd), total=2)
        # ...and by the format field, whatever the name says
        done(s, *upload(s, mid, "odd.csv", '{"event_id":"n3","amount":6}\n', format="ndjson"), total=1)
        # CSV by content for a name that says nothing
        done(s, *upload(s, mid, "upload", "event_id,name,amount\nu1,Ed,7\n"), total=1)
        # header=false: the columns are the schema's properties in order
        j = done(s, *upload(s, mid, "nohead.csv", "h1,Flo,8\nh2,Gus,oops\nh3,\"H, I\",9\n", header="false"),
                 want_state="PARTIAL_SUCCESS", total=3)
        e.check(j["success"] == 2 and j["errors"] == 1, j)
        st, rej = s.http("GET", "/jobs/%s/rejected" % j["job_id"])
        e.check(st == 200 and [(c["row"], c["column"], c["error"]) for c in rej] == [(2, "amount", "NOT_A_FLOAT")],
                "row 2 is the second line of a file without header: %s" % rej)
        ev = events(m, 11)
        e.check(ev["q1"]["name"] == "O'Hara; \"Jr\"" and ev["q2"]["name"] == "multi\nline", (ev["q1"], ev["q2"]))
        e.check(ev["t1"] == {"event_id": "t1", "name": "Ann", "amount": 1.5}, ev["t1"])
        e.check(ev["s1"]["name"] == "B;b" and ev["p1"]["name"] == "Cy" and ev["n1"]["name"] == "Di", ev)
        e.check(ev["h3"] == {"event_id": "h3", "name": "H, I", "amount": 9}, ev["h3"])
        # reprocess of a headerless job: its stored header is the schema's columns
        st, child = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        e.check(st in (200, 201, 202), "reprocess: %s %s" % (st, child))
        child = s.wait_job(child["job_id"])
        e.check(child["total"] == 1 and child["errors"] == 1, child)
        st, rej2 = s.http("GET", "/jobs/%s/rejected" % child["job_id"])
        e.check([(c["row"], c["column"], c["error"]) for c in rej2] == [(2, "amount", "NOT_A_FLOAT")], rej2)


def test_unknown_option_values_are_400():
    with e.Stack(workers=0) as s:
        m = model(s, "bad options")
        mid = m["model_id"]
        cases = [({"format": "xml"}, None, "format: use csv or ndjson"),
                 ({"format": ""}, None, "format: use csv or ndjson"),
                 ({"encoding": "ebcdic"}, None, "encoding: use utf-8, latin-1, windows-1252"),
                 ({"quote": "ab"}, None, "quote: one printable ASCII character other than the separator"),
                 ({"quote": ","}, None, "quote: one printable ASCII character other than the separator"),
                 ({"header": "maybe"}, None, "header: expected true or false"),
                 ({"separator": "ab"}, None, "separator:"),
                 ({}, {"Content-Encoding": "br"}, "Content-Encoding: use gzip or identity")]
        for fields, hdrs, msg in cases:
            st, r = upload(s, mid, "a.csv", "event_id,amount\na,1\n", headers=hdrs, **fields)
            e.check(st == 400 and r["code"] == "INVALID_ARGUMENT" and r["error"].startswith(msg),
                     "%s %s: %s %s" % (fields, hdrs, st, r))
        st, jobs = s.http("GET", "/jobs")
        e.check(st == 200 and jobs == [], "no job left behind: %s" % jobs)


def test_encodings():
    with e.Stack(workers=1) as s:
        m = model(s, "encodings")
        mid = m["model_id"]
        done(s, *upload(s, mid, "l1.csv", "event_id,name,amount\nl1,Jos\xe9 M\xfcller,1\n".encode("latin-1"),
                        encoding="latin-1"), total=1)
        done(s, *upload(s, mid, "w.csv", "event_id,name,amount\nw1,\u20ac \u201cq\u201d,2\n".encode("cp1252"),
                        encoding="windows-1252"), total=1)
        u16 = "event_id,name,amount\nu1,\u00e9\U0001F600\u4e2d,3\n".encode("utf-16")  # with a BOM
        e.check(u16[:2] in (b"\xff\xfe", b"\xfe\xff"), "python writes a BOM")
        done(s, *upload(s, mid, "u16.csv", u16, encoding="UTF-16"), total=1)
        done(s, *upload(s, mid, "u16be.csv", "event_id,name,amount\nb1,\u00e9,4\n".encode("utf-16-be"),
                        encoding="utf-16be"), total=1)
        ev = events(m, 4)
        e.check(ev["l1"]["name"] == "Jos\u00e9 M\u00fcller", ev["l1"])
        e.check(ev["w1"]["name"] == "\u20ac \u201cq\u201d", ev["w1"])
        e.check(ev["u1"]["name"] == "\u00e9\U0001F600\u4e2d" and ev["b1"]["name"] == "\u00e9", ev)
        # rows are stored converted: a rejected latin-1 row is UTF-8 in the download and in reprocessing
        j = done(s, *upload(s, mid, "bad.csv", "event_id,name,amount\nr1,Cr\xe8me,x\n".encode("latin-1"),
                            encoding="latin1"), want_state="FAILED", total=1)
        st, raw = s.http("GET", "/jobs/%s/rejected/download" % j["job_id"])
        e.check(st == 200 and "r1,Cr\u00e8me,x" in raw, "download is UTF-8: %r" % raw)
        st, child = s.http("POST", "/jobs/%s/reprocess" % j["job_id"])
        child = s.wait_job(child["job_id"])
        st, rej = s.http("GET", "/jobs/%s/rejected" % child["job_id"])
        e.check([(c["row"], c["error"]) for c in rej] == [(1, "NOT_A_FLOAT")], "reprocess reads UTF-8 rows: %s" % rej)
        # without the option, latin-1 bytes are invalid UTF-8 rows (as before)
        j = done(s, *upload(s, mid, "l2.csv", "event_id,name,amount\nl2,Jos\xe9,1\n".encode("latin-1")),
                 want_state="FAILED", total=1)
        st, rej = s.http("GET", "/jobs/%s/rejected" % j["job_id"])
        e.check(rej[0]["error"] == "MALFORMED_ROW" and "invalid UTF-8" in rej[0]["message"], rej)
        # a byte windows-1252 lacks, utf-16 without a byte order mark: the job FAILED, clear error
        st, j = upload(s, mid, "w2.csv", b"event_id,name,amount\nw2,\x81,1\n", encoding="windows-1252")
        j = done(s, st, j, want_state="FAILED")
        e.check(j["error"] == "file is not valid windows-1252: byte 0x81 at offset 24 is not a character of this "
                "encoding", j)
        st, j = upload(s, mid, "n.csv", "event_id,amount\nz,1\n".encode("utf-16-le"), encoding="utf-16")
        j = done(s, st, j, want_state="FAILED")
        e.check(j["error"] == "file is not valid utf-16: it does not start with a byte order mark (use utf-16le or "
                "utf-16be)", j)


def test_gzip_uploads():
    with e.Stack(workers=1) as s:
        m = model(s, "gzip")
        mid = m["model_id"]
        csv = "event_id,name,amount\n" + "".join("g%d,N%d,%d\n" % (i, i, i) for i in range(1, 2001))
        done(s, *upload(s, mid, "big.csv.gz", gzip.compress(csv.encode())), total=2000)
        done(s, *upload(s, mid, "part.csv", gzip.compress(b"event_id,amount\np1,1\n"),
                        headers={"Content-Encoding": "gzip"}), total=1)
        done(s, *upload_req_ce(s, mid, "req.csv", gzip.compress(b"event_id,amount\nq1,1\n"), "gzip"), total=1)
        done(s, *upload(s, mid, "rows.ndjson.gz", gzip.compress(b'{"event_id":"j1","amount":1}\n')), total=1)
        done(s, *upload(s, mid, "l.csv.gz", gzip.compress("event_id,name,amount\nlz,\xe9t\xe9,1\n".encode("latin-1")),
                        encoding="latin-1"), total=1)
        ev = events(m, 2004)
        e.check(ev["g2000"]["name"] == "N2000" and ev["lz"]["name"] == "\u00e9t\u00e9" and "j1" in ev, "events")
        # a corrupt and a truncated stream: FAILED with the reason, the service lives on
        z = gzip.compress(csv.encode())
        st, j = upload(s, mid, "plain.csv.gz", csv)
        j = done(s, st, j, want_state="FAILED")
        e.check(j["error"].startswith("file is not valid gzip: incorrect header check"), j)
        st, j = upload(s, mid, "cut.csv.gz", z[:len(z) // 2])
        j = done(s, st, j, want_state="FAILED")
        e.check(j["error"] == "file is not valid gzip: the compressed data ends early", j)
        bad = bytearray(z)
        for i in range(20, 60):
            bad[i] ^= 0xA5
        st, j = upload(s, mid, "bad.csv.gz", bytes(bad))
        j = done(s, st, j, want_state="FAILED")
        e.check(j["error"].startswith("file is not valid gzip: "), j)
        st, j = upload(s, mid, "after.csv", "event_id,amount\nok,1\n")
        done(s, st, j, total=1)
        for name in ("job", "gateway"):
            e.check(s[name].alive(), "%s still running" % name)


def test_grpc_upload_header_options():
    """The same options as UploadHeader fields: unknown values are
    INVALID_ARGUMENT (no job), good ones work, gzip and an encoding together."""
    out = tempfile.mkdtemp(prefix="bok-stubs-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(e.SRC, "proto"),
                    "--python_out=" + out, "--grpc_python_out=" + out, "batch/v1/job.proto"], check=True)
    sys.path.insert(0, out)
    import grpc
    from batch.v1 import job_pb2 as pb, job_pb2_grpc as pbg
    with e.Stack(workers=1) as s:
        m = model(s, "grpc options")
        stub = pbg.JobServiceStub(grpc.insecure_channel(s.job_addr))
        md = [("x-tenant-id", "tenant_a")]

        def up(body, **h):
            reqs = [pb.UploadRequest(header=pb.UploadHeader(model_id=m["model_id"], **h)), pb.UploadRequest(chunk=body)]
            return stub.Upload(iter(reqs), metadata=md, timeout=30)

        for h, msg in (({"format": "xml"}, "format: use csv or ndjson"), ({"encoding": "koi8"}, "encoding: use"),
                       ({"quote": "ab"}, "quote: one printable"), ({"compression": "br"}, "compression: use gzip")):
            try:
                up(b"event_id,amount\na,1\n", file_name="a.csv", **h)
                e.check(False, "%s accepted" % h)
            except grpc.RpcError as err:
                e.check(err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith(msg),
                        "%s: %s %s" % (h, err.code(), err.details()))
        st, jobs = s.http("GET", "/jobs")
        e.check(jobs == [], "no job left behind: %s" % jobs)
        body = gzip.compress("r1;\u00e9;1\n".encode("utf-16"))  # no header: event_id;name;amount
        j = up(body, file_name="data", compression="gzip", encoding="utf-16", no_header=True, separator=";",
               format="csv")
        e.check(j.encoding == "utf-16" and j.format == "csv", "stored options: %s" % j)
        done = s.wait_job(j.job_id)
        e.check(done["state"] == "SUCCESS" and done["total"] == 1, done)
        j = up(b'{"event_id":"g1","amount":1}\n', file_name="noext")
        e.check(j.format == "ndjson" and j.encoding == "utf-8", "sniffed format stored: %s" % j)
        e.check(s.wait_job(j.job_id)["state"] == "SUCCESS", "ndjson by content")


if __name__ == "__main__":
    e.run_tests(globals())
