#!/usr/bin/python3
"""tests/fuzz/seeds.py -- writes the hand-made seed inputs of every fuzz
target into tests/fuzz/corpus/<target>/seed-*; run.sh's long runs add
minimised inputs next to them (BOK_FUZZ_MERGE=1). Run again after changing a
seed or a .proto (protoc encodes the proto seeds from text format).
Usage: /usr/bin/python3 tests/fuzz/seeds.py"""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GUIDE = os.path.join(REPO, "tests", "data", "guide")


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def guide(name):
    with open(os.path.join(GUIDE, name), "rb") as f:
        return f.read()


GUIDE_CSV = (
    "event_id,timestamp,attr_float,attr_int,attr_bool,attr_str,attr_cat,attr_vec,attr_req\r\n"
    '1001,1700000000,2.5,42,true,"hi ""x""",FR,"[1.5,2]",r\r\n'
    "1002,yesterday,abc,3.14,maybe,,CA,\"[1,\"\"a\"\"]\",\r\n"
    '1003,1700000000,1e3,-7,FALSE,"multi\nline",US,[],r\n'
    "1004,1700000000,,,,,,,\n"
    '1005,"unterminated\n'
)
CSVS = {
    "guide": GUIDE_CSV,
    "bom": "\ufeffa,b\n1,2\n",
    "quotes": 'a,b\n"x,y","he said ""hi"""\n"",\n,\n',
    "crlf": "a;b\r\n1;2\r\n\r\n3;4",
    "badutf8": b"a,b\n\xff\xfe,\xc3\x28\n",
    "long": "a\n" + "x" * 300 + "\n",
}

SCHEMA_EXTRA = {
    "ranges": '{"type":"object","properties":{"a":{"type":"integer","minimum":-5,"maximum":5},'
    '"c":{"type":"string","minLength":2,"maxLength":4},"d":{"type":"array","items":{"type":"number"},'
    '"minItems":1,"maxItems":3},"e":{"type":"string","enum":["x","y"]}},"required":["a"],'
    '"additionalProperties":false}',
    "events": '{"type":"object","properties":{"id":{"type":"integer"},"t":{"type":"integer",'
    '"format":"unix-time"},"ts":{"type":"string","format":"timestamp"}},"x-event-id":"id",'
    '"x-event-time":"t","additionalProperties":true}',
    "nulls": '{"type":"object","properties":{"event_id":{"type":"boolean"}},"x-event-id":null,'
    '"x-event-time":null,"title":"t","description":"d"}',
    "bad-type": '{"type":"object","properties":{"price":{"type":"money"}}}',
    "bad-required": '{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}',
    "empty": "{}",
}

NDJSON_EXTRA = [
    '{"a":1,"v":[1,2.5e3,-0.0],"s":"\\u00e9\\ud83d\\ude00","n":null}\n',
    '[1,2]\n"x"\n{"dup":1,"dup":2}\n{\n',
    '{"s":"x"}\r\n\r\n{"t":1700000000,"s":"y","event_id":9223372036854775807}\n',
]


def csv_seeds():
    for k, v in CSVS.items():
        write("csv", k, v)


def ndjson_seeds():
    write("ndjson", "guide", guide("rows.ndjson"))
    for i, v in enumerate(NDJSON_EXTRA):
        write("ndjson", "extra%d" % i, v)


def schema_seeds():
    write("schema", "guide", guide("schema.json"))
    for k, v in SCHEMA_EXTRA.items():
        write("schema", k, v)


def b(s):
    return s if isinstance(s, bytes) else s.encode()


def validator_seeds():
    # byte 0: schema (bits 0-1), NDJSON (bit 2), separator (bits 3-4)
    write("validator", "guide-csv", bytes([0]) + b(GUIDE_CSV))
    write("validator", "guide-ndjson", bytes([4]) + guide("rows.ndjson"))
    write("validator", "ranges-csv", bytes([1 | 8]) + b("a;b;c;d;e\n5;0.5;ab;[1];x\n6;0.1;a;[];z\n-5;1e301;abcde;[1,2,3,4];\n"))
    write("validator", "ranges-ndjson", bytes([1 | 4]) + b('{"a":5,"c":"abc","d":[1],"e":"a b"}\n{"a":5.5,"f":1}\n'))
    write("validator", "events-tsv", bytes([2 | 16]) + b("id\tt\tv\ts\textra\n1\t1700000000\t[1]\tx\ty\n-1\t99999999999\t\t\t\n"))
    write("validator", "noevents-ndjson", bytes([3 | 4]) + b('{"event_id":true,"timestamp":"t"}\n{"event_id":"x"}\n'))


def detect_seeds():
    # byte 0: separator (bits 0-1), max_rows (bits 2-4)
    write("detect", "guide", bytes([0]) + b(GUIDE_CSV))
    write("detect", "types", bytes([0]) + b(
        "event_id,timestamp,created_at,flag,n,f,cat,vec,s\n"
        "1,1700000000,100,true,-3,1.5,a,[1],x\n2,1700000001,200,FALSE,4,2,a,[],y\n"
        "3,1700000002,300,false,5,1e3,b,\"[1,2]\",z\n4,1700000003,400,True,6,.5,b,[0.5],w\n"))
    write("detect", "blanks", bytes([1 | 8]) + b("a;b;;a; c\n1;;x;y;z\n;2;;;\n"))
    write("detect", "big-ints", bytes([0]) + b("n,m\n9223372036854775807,-9223372036854775808\n9223372036854775808,1\n"))


CT = "multipart/form-data; boundary=XyZ"


def multipart_seeds():
    body = ("--XyZ\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\n"
            "0b9e5a52-2c4e-4a3e-9d4c-1f0e8c3e2a10\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rows.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\nid,value\r\na,1\r\n--XyZ is not a boundary here\r\n\r\n"
            "--XyZ--\r\n")
    write("multipart", "upload", CT + "\n" + body)
    write("multipart", "ndjson", 'multipart/form-data; boundary="a b"\n--a b\r\nContent-Disposition: form-data; '
          'name="file"; filename="x.jsonl"\r\nContent-Type: application/x-ndjson\r\n\r\n{"a":1}\n\r\n--a b--')
    write("multipart", "truncated", CT + "\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc")
    write("multipart", "no-boundary", "multipart/form-data\n--x\r\n\r\n")


def route_seeds():
    # fields: target, method, tenant header, content type
    uuid = "0B9E5A52-2C4E-4A3E-9D4C-1F0E8C3E2A10"
    write("route", "rejected", "/jobs/%s/rejected?limit=10&after_row=9223372036854775807\nGET\ntenant_a\n" % uuid)
    write("route", "list", "/jobs/?state=PARTIAL_SUCCESS&limit=%31%30+0\nGET\n\napplication/json; charset=utf-8")
    write("route", "models", "/models/%s\nPUT\nacme.prod-1\nApplication/JSON" % uuid.lower())
    write("route", "reprocess", "/jobs/%s/reprocess/\nPOST\nbad tenant!\nmultipart/form-data; boundary=x" % uuid)
    write("route", "schema", "/schema?separator=%3B&limit=99999999999999999999\nPOST\n" + "t" * 65 + "\ntext/csv")
    write("route", "misc", "//healthz\nHEAD\n\n")


def proto_seeds():
    # byte 0: message index in fuzz_proto.c's MSGS table
    msgs = [
        (0, "model.proto", "batch.v1.CreateModelRequest", 'name: "m" schema_json: "{\\"type\\":\\"object\\"}"'),
        (1, "model.proto", "batch.v1.GetModelRequest", 'model_id: "0b9e5a52-2c4e-4a3e-9d4c-1f0e8c3e2a10" version: 3'),
        (3, "model.proto", "batch.v1.UpdateModelRequest", 'model_id: "x" name: "n" schema_json: "{}"'),
        (4, "model.proto", "batch.v1.DeleteModelRequest", 'model_id: "x"'),
        (5, "job.proto", "batch.v1.UploadRequest",
         'header { model_id: "m" file_name: "f.csv" format: "csv" separator: "," }'),
        (5, "job.proto", "batch.v1.UploadRequest", 'chunk: "a,b\\n1,2\\n"'),
        (6, "job.proto", "batch.v1.GetJobRequest", 'job_id: "j"'),
        (7, "job.proto", "batch.v1.ListJobsRequest", "state: JOB_STATE_RUNNING limit: -1"),
        (8, "job.proto", "batch.v1.CancelJobRequest", 'job_id: "j"'),
        (9, "job.proto", "batch.v1.ListRejectedRequest", 'job_id: "j" limit: 5 after_row: -9223372036854775808'),
        (10, "job.proto", "batch.v1.ReprocessJobRequest", 'job_id: "j"'),
        (11, "job.proto", "batch.v1.ReportResultsRequest",
         'worker_id: "w" jobs { job_id: "j" valid_rows: [1, 2, -7] rejected { row: 3 raw: "x,y" cells { row: 3 '
         'column: "a" type: "INTEGER" code: "NOT_AN_INTEGER" observed: "\\"y\\"" has_observed: true message: "m" } } '
         'batches { first_row: 1 rows: 3 valid: 2 last_row: 3 } }'),
        (12, "../../grpc/health/v1/health.proto", "grpc.health.v1.HealthCheckRequest", 'service: "batch.v1.JobService"'),
        (13, "rows.proto", "batch.v1.RowBatch",
         'tenant_id: "t" job_id: "j" model_id: "m" schema_version: 1 rows { row: 1 raw: "a,b" } rows { row: 2 raw: "\\377" }'),
        (16, "job.proto", "batch.v1.JobSpec", 'job_id: "j" format: "csv" separator: "," header: "a,b" state: JOB_STATE_PENDING'),
    ]
    for i, (idx, proto, name, text) in enumerate(msgs):
        path = os.path.normpath(os.path.join("batch", "v1", proto))
        out = subprocess.run(["protoc", "--encode=" + name, "-I" + os.path.join(REPO, "proto"),
                              os.path.join(REPO, "proto", path)], input=text.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
        write("proto", "%02d-%s" % (i, name.split(".")[-1]), bytes([idx]) + out)
    write("proto", "empty-list-models", bytes([2]))


if __name__ == "__main__":
    for f in (csv_seeds, ndjson_seeds, schema_seeds, validator_seeds, detect_seeds, multipart_seeds,
              route_seeds, proto_seeds):
        f()
