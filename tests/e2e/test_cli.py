"""batchcli against the real stack on a real Kafka broker, output checked
byte for byte where it is deterministic."""
import json
import os
import re
import subprocess
import tempfile
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "attr_float": {"type": "number"}, "attr_int": {"type": "integer"}},
    "required": ["event_id", "timestamp"]}
HDR = ("JOB      MODEL       STATE           TOTAL   OK      ERRORS  PROGRESS                 WAITING  PROCESSING\n"
       "-------- ----------- --------------- ------- ------- ------- ------------------------ -------  -----------\n")


def cli(s, *args, tenant=None, env=None):
    e.skip_if_missing("cli")
    en = dict(os.environ, BATCH_API_URL=s.api_url if s else "http://127.0.0.1:1", BATCH_WATCH_INTERVAL="0.2")
    en.pop("BATCH_TENANT", None)
    if tenant:
        en["BATCH_TENANT"] = tenant
    en.update(env or {})
    p = subprocess.run([e.binary("cli")] + list(args), capture_output=True, env=en, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tmpfile(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def mask_times(line):
    return re.sub(r"\d\d:\d\d +\d\d:\d\d$", "TT", line)


def test_session_and_outputs():
    with e.Stack(workers=1) as s:
        schema_path = tmpfile(json.dumps(SCHEMA), ".json")
        rc, out, err = cli(s, "model", "create", "Fraud Detection Model", schema_path)
        e.check(rc == 0 and re.fullmatch(r"model [0-9a-f]{8} created \(version 1\)\.\n", out), "model create: %r %r" % (out, err))
        mshort = out.split()[1]
        rc, out, _ = cli(s, "model", "list")
        lines = out.splitlines()
        e.check(lines[0].startswith("MODEL    NAME") and lines[2].startswith(mshort + " Fraud Detection Model"), out)
        rc, out, _ = cli(s, "model", "describe", mshort)
        e.check(rc == 0 and "NAME     Fraud Detection Model" in out and '"attr_float"' in out, out)
        rc, out, _ = cli(s, "model", "describe", "Fraud Detection Model")
        e.check(rc == 0, "model by exact name")

        data = tmpfile("event_id,timestamp,attr_float,attr_int\n1001abcd,,1.5,1\n1003cdef,yesterday,2,2\n"
                       "1005ef01,1700000000,abc,3\n1006f012,1700000000,1,3.14\nok1,1700000000,1,1\n", ".csv")
        rc, out, err = cli(s, "job", "create", mshort, data)
        e.check(rc == 0 and re.fullmatch(r"job [0-9a-f]{8} created\.\n", out), "job create: %r %r" % (out, err))
        jshort = out.split()[1]
        rc, out, _ = cli(s, "job", "watch", jshort)
        e.check(rc == 2, "watch exits 2 on PARTIAL_SUCCESS: %d" % rc)
        e.check(out.splitlines()[-1].startswith(jshort + " Fraud Det.. PARTIAL_SUCCESS"), "watch line: %r" % out)
        rc, out, _ = cli(s, "job", "status", jshort)
        e.check(out.startswith(HDR), "status header: %r" % out)
        e.check(mask_times(out.splitlines()[2]) ==
                jshort + " Fraud Det.. PARTIAL_SUCCESS       5       1       4 [###XXXXXXXXXXXXXX]  20%   TT", out)
        rc, out, _ = cli(s, "job", "rejected", jshort)
        e.check(out == (
            "ROW  EVENT_ID COLUMN      TYPE        ERROR               OBSERVED         MESSAGE\n"
            "---- -------- ----------- ----------- ------------------- ---------------- ------------------------------------------------------------------------------------\n"
            "1    1001abcd timestamp   TIMESTAMP   INVALID_TIMESTAMP                    The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer).\n"
            "2    1003cdef timestamp   TIMESTAMP   INVALID_TIMESTAMP   \"yesterday\"      The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer).\n"
            "3    1005ef01 attr_float  FLOAT       NOT_A_FLOAT         \"abc\"            The value for 'attr_float' is not a float. Provide a numeric value (e.g. 3.14).\n"
            "4    1006f012 attr_int    INTEGER     NOT_AN_INTEGER      \"3.14\"           The value for 'attr_int' is not an integer. Provide a whole number (e.g. 42).\n"),
            "rejected table:\n" + out)
        rc, out, _ = cli(s, "--json", "job", "rejected", jshort)
        e.check(rc == 0 and len(json.loads(out)) == 4, "--json rejected")
        rc, out, _ = cli(s, "reprocess", jshort)
        # the guide's line names the job given; the new job follows (issue 14)
        e.check(rc == 0 and re.fullmatch(r"Reprocessing job %s created\nnew job: [0-9a-f]{8}\n" % jshort, out),
                "reprocess: %r" % out)
        rshort = out.split()[-1]
        rc, out, _ = cli(s, "job", "reprocess", jshort)
        e.check(rc == 0 and out.startswith("Reprocessing job "), "job reprocess alias")
        rc, out, _ = cli(s, "job", "watch", rshort)
        e.check(rc == 3, "reprocess against the same schema fails again: %d %r" % (rc, out))
        rc, out, _ = cli(s, "job", "status", rshort)
        e.check(" FAILED " in out and "[XXXXXXXXXXXXXXXXX]   0%" in out, "FAILED line: %r" % out)

        # SUCCESS and CANCELLED
        ok = tmpfile("event_id,timestamp\n" + "".join("s%d,%d\n" % (i, 1700000000 + i) for i in range(20)), ".csv")
        rc, out, _ = cli(s, "job", "create", mshort, ok)
        sshort = out.split()[1]
        rc, out, _ = cli(s, "job", "watch", sshort)
        e.check(rc == 0 and "[#################] 100%" in out, "SUCCESS watch: %r" % out)
        big = tmpfile("event_id,timestamp\n" + "".join("b%d,%d\n" % (i, 1700000000 + i) for i in range(80000)), ".csv")
        s["gateway"]  # the job may be cancelled at any point before it finishes
        rc, out, _ = cli(s, "job", "create", mshort, big)
        bshort = out.split()[1]
        rc, out, err = cli(s, "job", "cancel", bshort)
        if rc == 0:
            e.check(out == "job %s cancelled\n" % bshort, "cancel: %r" % out)
            rc, out, _ = cli(s, "job", "status", bshort)
            e.check(" CANCELLED " in out and "X]" in out, "CANCELLED line: %r" % out)
            rc, out, err = cli(s, "job", "cancel", bshort)
            e.check(rc == 1 and "job already finished" in err, "cancel twice: %r" % err)
        rc, out, _ = cli(s, "job", "list")
        e.check(out.startswith(HDR) and len(out.splitlines()) == 2 + 5, "job list: %r" % out)
        e.check(out.splitlines()[2].startswith(bshort), "newest first")

        # model update / delete
        schema2 = tmpfile(json.dumps(dict(SCHEMA, required=["event_id"])), ".json")
        rc, out, _ = cli(s, "model", "update", mshort, schema2)
        e.check(rc == 0 and out == "model %s updated (version 2).\n" % mshort, "update: %r" % out)
        rc, out, _ = cli(s, "model", "delete", mshort)
        e.check(rc == 0 and out == "model %s deleted\n" % mshort, "delete: %r" % out)


def test_errors_prefixes_and_help():
    with e.Stack(workers=0) as s:
        rc, out, err = cli(s, "job", "status", "deadbeef")
        e.check(rc == 1 and err == "batchcli: job deadbeef not found\n" and out == "", "unknown job: %r" % err)
        rc, out, err = cli(s, "job", "status", "abc")
        e.check(rc == 1 and "at least 4 characters" in err, "short prefix: %r" % err)
        bad = tmpfile('{"type":"object","properties":{"p":{"type":"money"}}}', ".json")
        rc, out, err = cli(s, "model", "create", "x", bad)
        e.check(rc == 1 and err == "batchcli: properties.p.type: unsupported type 'money' (HTTP 400)\n", repr(err))
        rc, out, err = cli(s, "model", "create", "x", "/nonexistent.json")
        e.check(rc == 1 and "/nonexistent.json" in err, repr(err))
        # two models whose ids share a prefix are ambiguous; create until they do
        good = tmpfile(json.dumps(SCHEMA), ".json")
        ids = []
        for i in range(40):
            rc, out, _ = cli(s, "--json", "model", "create", "m%d" % i, good)
            ids.append(json.loads(out)["model_id"])
        first = {}
        pair = None
        for mid in ids:
            if mid[0] in first:
                pair = (first[mid[0]], mid)
                break
            first[mid[0]] = mid
        if pair:
            common = os.path.commonprefix(pair)
            prefix = common if len(common) >= 4 else None
            if prefix:
                rc, out, err = cli(s, "model", "describe", prefix)
                e.check(rc == 1 and "ambiguous" in err and pair[0] in err and pair[1] in err, repr(err))
        rc, out, err = cli(s, "model", "describe", ids[0][:6])
        e.check(rc == 0 and ids[0] in out, "unique prefix resolves")
        rc, out, err = cli(s, "job", "list", tenant="bad tenant!")
        e.check(rc == 1 and "invalid tenant" in err, repr(err))
        rc, out, err = cli(s, "model", "list", tenant="other")
        e.check(rc == 0 and len(out.splitlines()) == 2, "other tenant sees no models: %r" % out)
        for args in (["--help"], ["job", "--help"], ["job", "watch", "--help"], ["schema", "--help"]):
            rc, out, err = cli(s, *args)
            e.check(rc == 0 and out.startswith("usage: batchcli"), "%s: %r" % (args, out))
        rc, out, err = cli(s, "frobnicate")
        e.check(rc == 1 and "unknown command" in err, repr(err))
        rc, out, err = cli(s, "job", "status")
        e.check(rc == 1 and "usage: batchcli job status <job>" in err, repr(err))
    rc, out, err = cli(None, "job", "list")
    e.check(rc == 1 and err.startswith("batchcli: cannot reach http://127.0.0.1:1"), "server down: %r" % err)


def test_rejected_table_has_every_guide_code():
    """The guide's rejected-rows example (tests/data/guide) uploaded as NDJSON
    through batchcli: the table matches the guide's layout line by line."""
    data = os.path.join(e.SRC, "tests", "data", "guide")
    with e.Stack(workers=1) as s:
        rc, out, err = cli(s, "--json", "model", "create", "guide", os.path.join(data, "schema.json"))
        e.check(rc == 0, err)
        mid = json.loads(out)["model_id"]
        rc, out, err = cli(s, "job", "create", mid[:8], os.path.join(data, "rows.ndjson"))
        e.check(rc == 0, err)
        jshort = out.split()[1]
        rc, out, _ = cli(s, "job", "watch", jshort)
        e.check(rc == 2, "PARTIAL_SUCCESS: %d" % rc)
        rc, out, _ = cli(s, "job", "rejected", jshort)
        expected = ["ROW  EVENT_ID COLUMN      TYPE        ERROR               OBSERVED         MESSAGE",
                    "---- -------- ----------- ----------- ------------------- ---------------- " + "-" * 84]
        with open(os.path.join(data, "expected.tsv")) as f:
            for line in f:
                row, eid, col, typ, code, obs, msg = line.rstrip("\n").split("\t")
                expected.append("%-4s %-8s %-11s %-11s %-19s %-16s %s" % (row, eid, col, typ, code, obs, msg))
        e.check(out.splitlines() == expected, "rejected table:\n%s\nexpected:\n%s" % (out, "\n".join(expected)))


def test_schema_detection_offline():
    path = tmpfile("event_id,timestamp,price,country\ne1,1700000000,1.5,US\ne2,1700000001,2,FR\n"
                   "e3,1700000002,3.25,US\ne4,1700000003,4,FR\n", ".csv")
    rc, out, err = cli(None, "schema", path)
    e.check(rc == 0, err)
    e.check(json.loads(out) == {"type": "object", "properties": {
        "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
        "price": {"type": "number"}, "country": {"type": "string"}},  # 4 rows: too few for a CATEGORY (issue 15)
        "required": ["event_id", "timestamp", "price", "country"],
        "x-event-id": "event_id", "x-event-time": "timestamp"}, out)
    rc, out, err = cli(None, "schema", "/nonexistent.csv")
    e.check(rc == 1 and "cannot read" in err, err)


if __name__ == "__main__":
    e.run_tests(globals())
