"""gRPC clients as first-class users (issue 17, point 3): every public method
of batch.v1.ModelService and batch.v1.JobService called by an independent
client -- Debian's python3-grpcio with stubs generated from proto/ at test
time -- against the real services, with the status codes a client sees
(docs/GRPC.md):

- models: create, get (current and an older version), list, update (name
  only keeps the version, a schema bumps it), delete;
- uploads: a 50 MB client-streaming Upload whose chunks the client produces
  only as fast as the job service consumes them (HTTP/2 flow control), then
  the job runs to SUCCESS; header-first, format, separator and unknown-model
  errors; an oversize chunk;
- jobs: list (newest first, state filter, limit), get, cancel (and cancel of
  a finished job), page through rejected rows, reprocess;
- errors: unknown ids, other tenants, missing or invalid x-tenant-id,
  oversize messages, the worker-only methods refusing a plain client;
- health: grpc.health.v1.Health/Check per service.
"""
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import bok_e2e as e

SCHEMA = '{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"}},"required":["id"]}'
SCHEMA2 = SCHEMA.replace('"required":["id"]', '"required":["id","n"]')
PAD_SCHEMA = ('{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"},'
              '"pad":{"type":"string"}},"required":["id","n"]}')
FINAL = ("JOB_STATE_SUCCESS", "JOB_STATE_PARTIAL_SUCCESS", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
MiB = 1 << 20


def stubs():
    out = tempfile.mkdtemp(prefix="bok-stubs-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(e.SRC, "proto"),
                    "--python_out=" + out, "--grpc_python_out=" + out, "batch/v1/model.proto",
                    "batch/v1/job.proto"], check=True)
    sys.path.insert(0, out)
    import grpc
    from batch.v1 import job_pb2, job_pb2_grpc, model_pb2, model_pb2_grpc
    return grpc, model_pb2, model_pb2_grpc, job_pb2, job_pb2_grpc


grpc, mpb, mpbg, jpb, jpbg = stubs()
SC = grpc.StatusCode


def md(tenant):
    return [("x-tenant-id", tenant)]


def code_of(fn):
    """The status of a call that must fail: (code, details)."""
    try:
        fn()
    except grpc.RpcError as err:
        return err.code(), err.details()
    raise e.Failure("the call succeeded")


def expect(code, fn, what, in_details=None):
    got, details = code_of(fn)
    e.check(got == code, "%s: %s (%s), want %s" % (what, got, details, code))
    if in_details:
        e.check(in_details in details, "%s: details %r lack %r" % (what, details, in_details))


def health(ch, service):
    """grpc.health.v1.Health/Check, encoded by hand (stubs of health.proto
    would shadow grpcio's `grpc` package): field 1 = service; answer field 1
    = status (1 SERVING)."""
    svc = service.encode()
    check = ch.unary_unary("/grpc.health.v1.Health/Check")
    return check(b"\x0a" + bytes([len(svc)]) + svc, timeout=5)


def state_name(j):
    return jpb.JobState.Name(j.state)


def upload(stub, tenant, model_id, chunks, file_name="f.csv", fmt="", sep="", timeout=120):
    def gen():
        yield jpb.UploadRequest(header=jpb.UploadHeader(model_id=model_id, file_name=file_name, format=fmt,
                                                        separator=sep))
        for c in chunks:
            yield jpb.UploadRequest(chunk=c)
    return stub.Upload(gen(), metadata=md(tenant), timeout=timeout)


def wait_final(stub, tenant, job_id, timeout=180):
    deadline = time.time() + timeout
    while True:
        j = stub.GetJob(jpb.GetJobRequest(job_id=job_id), metadata=md(tenant), timeout=5)
        if state_name(j) in FINAL or time.time() > deadline:
            return j
        time.sleep(0.2)


def upload_bytes_received(svc):
    """bok_job_upload_bytes_total from the job service's /metrics."""
    with urllib.request.urlopen(svc.metrics_url + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("bok_job_upload_bytes_total"):
                return int(float(line.split()[-1]))
    return 0


# ---- ModelService ----------------------------------------------------------------


def test_model_service_every_method_and_its_errors():
    with e.Stack(job=False, workers=0, gateway=False) as s:
        ch = grpc.insecure_channel(s.model_addr)
        stub = mpbg.ModelServiceStub(ch)
        t = md("gm_tenant")
        m = stub.CreateModel(mpb.CreateModelRequest(name="orders", schema_json=SCHEMA), metadata=t, timeout=5)
        e.check(len(m.model_id) == 36 and m.version == 1 and m.tenant_id == "gm_tenant" and m.topic
                and m.created_at_ms > 0 and m.updated_at_ms >= m.created_at_ms, str(m))
        got = stub.GetModel(mpb.GetModelRequest(model_id=m.model_id), metadata=t, timeout=5)
        e.check(got == m, "get = create: %s" % got)
        # name only: the version stays; a new schema: version 2, version 1 still readable
        up = stub.UpdateModel(mpb.UpdateModelRequest(model_id=m.model_id, name="orders v1"), metadata=t, timeout=5)
        e.check(up.name == "orders v1" and up.version == 1 and up.schema_json == SCHEMA, str(up))
        up = stub.UpdateModel(mpb.UpdateModelRequest(model_id=m.model_id, schema_json=SCHEMA2), metadata=t, timeout=5)
        e.check(up.version == 2 and up.name == "orders v1" and up.schema_json == SCHEMA2, str(up))
        old = stub.GetModel(mpb.GetModelRequest(model_id=m.model_id, version=1), metadata=t, timeout=5)
        e.check(old.version == 1 and old.schema_json == SCHEMA, str(old))
        expect(SC.NOT_FOUND, lambda: stub.GetModel(mpb.GetModelRequest(model_id=m.model_id, version=3), metadata=t,
                                                   timeout=5), "a version that does not exist")
        m2 = stub.CreateModel(mpb.CreateModelRequest(name="second", schema_json=SCHEMA), metadata=t, timeout=5)
        lst = stub.ListModels(mpb.ListModelsRequest(), metadata=t, timeout=5)
        e.check([x.model_id for x in lst.models] == [m.model_id, m2.model_id], "oldest first: %s" % lst)
        e.check(stub.DeleteModel(mpb.DeleteModelRequest(model_id=m2.model_id), metadata=t, timeout=5)
                == mpb.DeleteModelResponse(), "delete")
        expect(SC.NOT_FOUND, lambda: stub.GetModel(mpb.GetModelRequest(model_id=m2.model_id), metadata=t, timeout=5),
               "get after delete")
        expect(SC.NOT_FOUND, lambda: stub.DeleteModel(mpb.DeleteModelRequest(model_id=m2.model_id), metadata=t,
                                                      timeout=5), "delete twice")
        e.check(len(stub.ListModels(mpb.ListModelsRequest(), metadata=t, timeout=5).models) == 1, "one left")

        # unknown ids and other tenants: NOT_FOUND, never the other tenant's data
        unknown = "00000000-0000-0000-0000-000000000000"
        for mid, tenant, what in ((unknown, "gm_tenant", "unknown id"), (m.model_id, "gm_other", "other tenant")):
            o = md(tenant)
            expect(SC.NOT_FOUND, lambda: stub.GetModel(mpb.GetModelRequest(model_id=mid), metadata=o, timeout=5),
                   "GetModel " + what)
            expect(SC.NOT_FOUND, lambda: stub.UpdateModel(mpb.UpdateModelRequest(model_id=mid, name="x"), metadata=o,
                                                          timeout=5), "UpdateModel " + what)
            expect(SC.NOT_FOUND, lambda: stub.DeleteModel(mpb.DeleteModelRequest(model_id=mid), metadata=o,
                                                          timeout=5), "DeleteModel " + what)
        e.check(len(stub.ListModels(mpb.ListModelsRequest(), metadata=md("gm_other"), timeout=5).models) == 0,
                "another tenant lists nothing")

        # x-tenant-id missing or invalid: INVALID_ARGUMENT on every method, before the handler
        calls = {
            "CreateModel": lambda o: stub.CreateModel(mpb.CreateModelRequest(name="x", schema_json=SCHEMA), metadata=o,
                                                      timeout=5),
            "GetModel": lambda o: stub.GetModel(mpb.GetModelRequest(model_id=m.model_id), metadata=o, timeout=5),
            "ListModels": lambda o: stub.ListModels(mpb.ListModelsRequest(), metadata=o, timeout=5),
            "UpdateModel": lambda o: stub.UpdateModel(mpb.UpdateModelRequest(model_id=m.model_id, name="y"),
                                                      metadata=o, timeout=5),
            "DeleteModel": lambda o: stub.DeleteModel(mpb.DeleteModelRequest(model_id=m.model_id), metadata=o,
                                                      timeout=5),
        }
        for name, call in calls.items():
            for o in ([], md("bad tenant!"), md("x" * 65)):
                expect(SC.INVALID_ARGUMENT, lambda: call(o), "%s with %s" % (name, o), "x-tenant-id")
        # a bad schema names the offending property
        expect(SC.INVALID_ARGUMENT, lambda: stub.CreateModel(mpb.CreateModelRequest(
            name="bad", schema_json='{"type":"object","properties":{"when":{"type":"date"}}}'), metadata=t,
            timeout=5), "bad schema", "properties.when.type")
        # over the model service's 4 MiB message limit: RESOURCE_EXHAUSTED, and the service carries on
        big = '{"type":"object","description":"%s","properties":{"id":{"type":"string"}}}' % ("x" * (5 * MiB))
        expect(SC.RESOURCE_EXHAUSTED, lambda: stub.CreateModel(mpb.CreateModelRequest(name="big", schema_json=big),
                                                               metadata=t, timeout=20), "5 MiB request")
        e.check(stub.GetModel(mpb.GetModelRequest(model_id=m.model_id), metadata=t, timeout=5).version == 2,
                "served after the oversize request")
        e.check(health(ch, "batch.v1.ModelService") == b"\x08\x01", "health: SERVING")
        e.check(health(ch, "") == b"\x08\x01", "health of the server: SERVING")
        expect(SC.NOT_FOUND, lambda: health(ch, "batch.v1.JobService"), "health of a service it does not serve")
        ch.close()


# ---- JobService ------------------------------------------------------------------


def test_upload_50_mb_stream_with_flow_control():
    """50 MB in 1 MiB chunks, produced lazily: the client never runs more
    than a few flow-control windows ahead of what the job service has
    consumed, and the job's rows all arrive."""
    with e.Stack(workers=1, gateway=False) as s:
        mch = grpc.insecure_channel(s.model_addr)
        m = mpbg.ModelServiceStub(mch).CreateModel(mpb.CreateModelRequest(name="big", schema_json=PAD_SCHEMA),
                                                  metadata=md("big_up"), timeout=5)
        mch.close()
        pad = "p" * 1000
        row_len = len("r0000000,0000000,%s\n" % pad)
        rows = (50 * 1000 * 1000) // row_len + 1
        ahead = []  # bytes produced minus bytes the service had received, before each chunk
        produced = [0]

        def chunks():
            buf = bytearray(b"id,n,pad\n")
            for i in range(1, rows + 1):
                buf += b"r%07d,%07d,%s\n" % (i, i, pad.encode())
                if len(buf) >= MiB:
                    ahead.append(produced[0] - upload_bytes_received(s["job"]))
                    produced[0] += len(buf)
                    yield bytes(buf)
                    buf = bytearray()
            produced[0] += len(buf)
            yield bytes(buf)

        ch = grpc.insecure_channel(s.job_addr)
        stub = jpbg.JobServiceStub(ch)
        t0 = time.time()
        j = upload(stub, "big_up", m.model_id, chunks(), file_name="big.csv", timeout=300)
        e.check(produced[0] >= 50 * 1000 * 1000, "50 MB sent: %d" % produced[0])
        e.check(j.total == rows and j.file_name == "big.csv" and j.format == "csv"
                and state_name(j) in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCESS"),
                "upload answer: %s" % j)
        e.check(upload_bytes_received(s["job"]) == produced[0], "every byte received")
        # flow control: the producer is paced by the service (HTTP/2 windows
        # are at most a few MiB each way), never 50 MB ahead
        e.check(max(ahead) < 16 * MiB, "client ran ahead of the service by %s bytes" % max(ahead))
        sys.stderr.write("upload of %d bytes in %.1fs; max ahead %.1f MiB\n" % (
            produced[0], time.time() - t0, max(ahead) / MiB))
        done = wait_final(stub, "big_up", j.job_id, timeout=600)
        e.check(state_name(done) == "JOB_STATE_SUCCESS" and done.success == rows and done.errors == 0,
                "job: %s" % done)
        ch.close()


CSV_ROWS = 100
BAD_ROWS = (7, 23, 24, 50, 81, 99)


def small_csv():
    lines = ["id,n"]
    for i in range(1, CSV_ROWS + 1):
        lines.append("r%d,%s" % (i, "oops" if i in BAD_ROWS else str(i)))
    return ("\n".join(lines) + "\n").encode()


def test_jobs_every_method_and_its_errors():
    with e.Stack(workers=0, gateway=False) as s:
        mch = grpc.insecure_channel(s.model_addr)
        m = mpbg.ModelServiceStub(mch).CreateModel(mpb.CreateModelRequest(name="jobs", schema_json=SCHEMA),
                                                  metadata=md("gj_tenant"), timeout=5)
        mch.close()
        ch = grpc.insecure_channel(s.job_addr)
        stub = jpbg.JobServiceStub(ch)
        t = md("gj_tenant")
        data = small_csv()

        # Upload, chunks cut anywhere (mid-row, mid-field); no worker yet, so it waits
        pieces = [data[i:i + 37] for i in range(0, len(data), 37)]
        first = upload(stub, "gj_tenant", m.model_id, pieces, file_name="first.csv")
        e.check(first.total == CSV_ROWS and state_name(first) == "JOB_STATE_PENDING" and first.model_id == m.model_id
                and first.model_name == "jobs" and first.schema_version == 1 and first.tenant_id == "gj_tenant",
                str(first))
        got = stub.GetJob(jpb.GetJobRequest(job_id=first.job_id), metadata=t, timeout=5)
        e.check(got.job_id == first.job_id and got.total == CSV_ROWS, str(got))
        # CancelJob: CANCELLED, then FAILED_PRECONDITION as it is finished
        c = stub.CancelJob(jpb.CancelJobRequest(job_id=first.job_id), metadata=t, timeout=5)
        e.check(state_name(c) == "JOB_STATE_CANCELLED" and c.finished_at_ms > 0, str(c))
        expect(SC.FAILED_PRECONDITION, lambda: stub.CancelJob(jpb.CancelJobRequest(job_id=first.job_id), metadata=t,
                                                              timeout=5), "cancel a cancelled job")

        # NDJSON with a tab separator ignored; one upload in one chunk
        nd = b'{"id":"a","n":1}\n{"id":"b","n":2}\n'
        j_nd = upload(stub, "gj_tenant", m.model_id, [nd], file_name="x.ndjson", fmt="ndjson")
        e.check(j_nd.total == 2 and j_nd.format == "ndjson", str(j_nd))
        # a CSV with ';' as separator
        j_semi = upload(stub, "gj_tenant", m.model_id, [b"id;n\nq;1\n"], file_name="semi.csv", sep=";")
        e.check(j_semi.total == 1, str(j_semi))

        # the job with rejected rows runs once a worker is there
        second = upload(stub, "gj_tenant", m.model_id, [data], file_name="second.csv")
        s.add_worker()
        done = wait_final(stub, "gj_tenant", second.job_id)
        e.check(state_name(done) == "JOB_STATE_PARTIAL_SUCCESS" and done.success == CSV_ROWS - len(BAD_ROWS)
                and done.errors == len(BAD_ROWS) and done.started_at_ms > 0 and done.finished_at_ms > 0, str(done))
        for j in (j_nd, j_semi):
            e.check(state_name(wait_final(stub, "gj_tenant", j.job_id)) == "JOB_STATE_SUCCESS", "job %s" % j.file_name)

        # ListRejected: pages of 4 rows, after_row = the last row of the page before
        rows, after, pages = [], 0, 0
        while True:
            page = stub.ListRejected(jpb.ListRejectedRequest(job_id=second.job_id, limit=4, after_row=after),
                                     metadata=t, timeout=5)
            if not page.cells:
                break
            pages += 1
            page_rows = sorted({c.row for c in page.cells})
            e.check(len(page_rows) <= 4 and page_rows[0] > after, "page %d: %s" % (pages, page_rows))
            rows += page_rows
            after = page_rows[-1]
            for c in page.cells:
                e.check(c.column == "n" and c.code == "NOT_AN_INTEGER" and c.type == "INTEGER"
                        and c.has_observed and c.observed == '"oops"' and "'n'" in c.message, str(c))
        e.check(tuple(rows) == BAD_ROWS and pages == 2, "rejected rows %s in %d pages" % (rows, pages))
        all_cells = stub.ListRejected(jpb.ListRejectedRequest(job_id=second.job_id), metadata=t, timeout=5)
        e.check(len(all_cells.cells) == len(BAD_ROWS), "limit 0 = 1000 rows")

        # ReprocessJob: a new job of the rejected rows; of a job without any: FAILED_PRECONDITION
        re = stub.ReprocessJob(jpb.ReprocessJobRequest(job_id=second.job_id), metadata=t, timeout=10)
        e.check(re.parent_job_id == second.job_id and re.total == len(BAD_ROWS) and re.job_id != second.job_id,
                str(re))
        redone = wait_final(stub, "gj_tenant", re.job_id)
        e.check(state_name(redone) == "JOB_STATE_FAILED" and redone.errors == len(BAD_ROWS), "still bad: %s" % redone)
        expect(SC.FAILED_PRECONDITION, lambda: stub.ReprocessJob(jpb.ReprocessJobRequest(job_id=j_nd.job_id),
                                                                 metadata=t, timeout=5), "reprocess a clean job")

        # ListJobs: newest first, by state, limited
        lst = stub.ListJobs(jpb.ListJobsRequest(), metadata=t, timeout=5)
        e.check([j.job_id for j in lst.jobs] == [re.job_id, second.job_id, j_semi.job_id, j_nd.job_id, first.job_id],
                "newest first: %s" % [j.file_name for j in lst.jobs])
        lst = stub.ListJobs(jpb.ListJobsRequest(state=jpb.JOB_STATE_CANCELLED), metadata=t, timeout=5)
        e.check([j.job_id for j in lst.jobs] == [first.job_id], "by state: %s" % lst)
        lst = stub.ListJobs(jpb.ListJobsRequest(limit=2), metadata=t, timeout=5)
        e.check([j.job_id for j in lst.jobs] == [re.job_id, second.job_id], "limit 2")

        # unknown ids and other tenants: NOT_FOUND; another tenant lists nothing
        unknown = "00000000-0000-0000-0000-000000000000"
        for jid, tenant, what in ((unknown, "gj_tenant", "unknown id"), (second.job_id, "gj_other", "other tenant")):
            o = md(tenant)
            expect(SC.NOT_FOUND, lambda: stub.GetJob(jpb.GetJobRequest(job_id=jid), metadata=o, timeout=5),
                   "GetJob " + what)
            expect(SC.NOT_FOUND, lambda: stub.CancelJob(jpb.CancelJobRequest(job_id=jid), metadata=o, timeout=5),
                   "CancelJob " + what)
            expect(SC.NOT_FOUND, lambda: stub.ListRejected(jpb.ListRejectedRequest(job_id=jid), metadata=o, timeout=5),
                   "ListRejected " + what)
            expect(SC.NOT_FOUND, lambda: stub.ReprocessJob(jpb.ReprocessJobRequest(job_id=jid), metadata=o,
                                                           timeout=5), "ReprocessJob " + what)
        e.check(len(stub.ListJobs(jpb.ListJobsRequest(), metadata=md("gj_other"), timeout=5).jobs) == 0, "other")
        expect(SC.NOT_FOUND, lambda: upload(stub, "gj_other", m.model_id, [data]), "upload to another tenant's model")
        expect(SC.NOT_FOUND, lambda: upload(stub, "gj_tenant", unknown, [data]), "upload to an unknown model")

        # Upload errors a client can make
        def no_header():
            yield jpb.UploadRequest(chunk=data)
        expect(SC.INVALID_ARGUMENT, lambda: stub.Upload(no_header(), metadata=t, timeout=10), "chunk first",
               "starts with a header")
        expect(SC.INVALID_ARGUMENT, lambda: upload(stub, "gj_tenant", m.model_id, [data], fmt="xlsx"), "format",
               "csv or ndjson")
        expect(SC.INVALID_ARGUMENT, lambda: upload(stub, "gj_tenant", m.model_id, [data], sep=";;"), "separator")
        empty = upload(stub, "gj_tenant", m.model_id, [b"id,n\n"], file_name="empty.csv")
        e.check(state_name(empty) == "JOB_STATE_FAILED" and empty.error == "file has no data rows", str(empty))

        # x-tenant-id missing or invalid: INVALID_ARGUMENT on every client method
        calls = {
            "Upload": lambda o: stub.Upload(iter([jpb.UploadRequest(header=jpb.UploadHeader(model_id=m.model_id))]),
                                            metadata=o, timeout=5),
            "GetJob": lambda o: stub.GetJob(jpb.GetJobRequest(job_id=second.job_id), metadata=o, timeout=5),
            "ListJobs": lambda o: stub.ListJobs(jpb.ListJobsRequest(), metadata=o, timeout=5),
            "CancelJob": lambda o: stub.CancelJob(jpb.CancelJobRequest(job_id=second.job_id), metadata=o, timeout=5),
            "ListRejected": lambda o: stub.ListRejected(jpb.ListRejectedRequest(job_id=second.job_id), metadata=o,
                                                        timeout=5),
            "ReprocessJob": lambda o: stub.ReprocessJob(jpb.ReprocessJobRequest(job_id=second.job_id), metadata=o,
                                                        timeout=5),
        }
        for name, call in calls.items():
            for o in ([], md("bad tenant!")):
                expect(SC.INVALID_ARGUMENT, lambda: call(o), "%s with %s" % (name, o), "x-tenant-id")

        # the worker-only methods refuse a plain client, with or without a tenant (docs/SECURITY.md)
        worker_calls = {
            "GetJobSpec": lambda o: stub.GetJobSpec(jpb.GetJobRequest(job_id=second.job_id), metadata=o, timeout=5),
            "ReportResults": lambda o: stub.ReportResults(jpb.ReportResultsRequest(worker_id="me", jobs=[
                jpb.JobResults(job_id=second.job_id, valid_rows=[7])]), metadata=o, timeout=5),
            "ConfirmResults": lambda o: stub.ConfirmResults(jpb.ConfirmResultsRequest(worker_id="me", messages=[
                jpb.MessageRef(job_id=second.job_id, first_row=1)]), metadata=o, timeout=5),
        }
        for name, call in worker_calls.items():
            for o in ([], t):
                expect(SC.UNAUTHENTICATED, lambda: call(o), "%s with %s" % (name, o), "worker")
        after_all = stub.GetJob(jpb.GetJobRequest(job_id=second.job_id), metadata=t, timeout=5)
        e.check((after_all.success, after_all.errors) == (done.success, done.errors), "counters unchanged")

        e.check(health(ch, "batch.v1.JobService") == b"\x08\x01", "health: SERVING")
        ch.close()


def test_upload_oversize_chunk_is_resource_exhausted():
    """A message over the job service's 64 MiB limit fails the upload with
    RESOURCE_EXHAUSTED; the job it opened is FAILED, the service serves on."""
    with e.Stack(workers=0, gateway=False) as s:
        mch = grpc.insecure_channel(s.model_addr)
        m = mpbg.ModelServiceStub(mch).CreateModel(mpb.CreateModelRequest(name="big", schema_json=SCHEMA),
                                                  metadata=md("gx_tenant"), timeout=5)
        mch.close()
        ch = grpc.insecure_channel(s.job_addr)
        stub = jpbg.JobServiceStub(ch)
        big = b"id,n\n" + b"a,1\n" * ((64 * MiB) // 4 + 1)
        expect(SC.RESOURCE_EXHAUSTED, lambda: upload(stub, "gx_tenant", m.model_id, [big], timeout=60),
               "65 MiB chunk")
        del big
        ok = upload(stub, "gx_tenant", m.model_id, [b"id,n\na,1\n"])
        e.check(ok.total == 1, "served after: %s" % ok)
        jobs = stub.ListJobs(jpb.ListJobsRequest(), metadata=md("gx_tenant"), timeout=5).jobs
        e.check(len(jobs) == 2 and state_name(jobs[1]) == "JOB_STATE_FAILED" and jobs[1].error == "upload interrupted",
                "the cut upload's job: %s" % jobs[1:])
        ch.close()


if __name__ == "__main__":
    e.run_tests(globals())
