"""The job service's gRPC API against hostile callers: upload separators the
gateway refuses are refused here too, and worker reports -- even with the
worker's own token -- count only what matches the rows-topic messages the
job service wrote (issue 12, point 2; issue 11, bug 5)."""
import os
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {"event_id": {"type": "string"}, "v": {"type": "integer"}},
          "required": ["event_id"]}


stubs = e.job_stubs
code_of = e.grpc_code


def test_upload_separators_checked_like_the_gateway():
    grpc, pb, pbg = stubs()
    with e.Stack(workers=0) as s:
        st, m = s.http("POST", "/models", {"name": "sep", "schema": SCHEMA})
        stub = pbg.JobServiceStub(grpc.insecure_channel(s.job_addr))
        md = [("x-tenant-id", "tenant_a")]

        def upload(sep, body=b"event_id;v\ne1;1\n"):
            reqs = [pb.UploadRequest(header=pb.UploadHeader(model_id=m["model_id"], file_name="x.csv", separator=sep)),
                    pb.UploadRequest(chunk=body)]
            return stub.Upload(iter(reqs), metadata=md, timeout=10)

        # (a NUL ends the string for protobuf-c: "\x00" reaches the service as ""
        # and means ",", as the gateway refuses it before)
        for bad in ["ab", '"', "\n", "\r", "\u00e9"]:
            code, msg = code_of(grpc, lambda: upload(bad))
            e.check(code == grpc.StatusCode.INVALID_ARGUMENT and "separator" in msg, "separator %r: %s %s"
                    % (bad, code, msg))
        j = upload(";")
        e.check(j.total == 1, "';' accepted: %s" % j)
        j = upload("\\t", b"event_id\tv\ne1\t1\n")
        e.check(j.total == 1, "tab accepted: %s" % j)


def test_reports_that_do_not_match_the_rows_written_are_refused():
    grpc, pb, pbg = stubs()
    with e.Stack(workers=0) as s:
        st, m = s.http("POST", "/models", {"name": "rep", "schema": SCHEMA})
        body = "event_id,v\n" + "".join("e%d,%d\n" % (i, i) for i in range(1, 11))
        st, j = s.upload(m["model_id"], "ten.csv", body)
        e.check(st == 202 and j["total"] == 10, "upload: %s %s" % (st, j))
        token = open(os.path.join(s.dir, ".run", "secrets", "worker.token")).read().strip()
        stub = pbg.JobServiceStub(grpc.insecure_channel(s.job_addr))
        md = [("x-worker-token", token)]

        def report(*batches, rejected=()):
            res = pb.JobResults(job_id=j["job_id"], batches=list(batches), rejected=list(rejected))
            return stub.ReportResults(pb.ReportResultsRequest(worker_id="evil", group_id=s.group, jobs=[res]),
                                      metadata=md, timeout=10)

        hostile = [
            ("per-row results", lambda: stub.ReportResults(pb.ReportResultsRequest(worker_id="evil", jobs=[
                pb.JobResults(job_id=j["job_id"], valid_rows=[-7, 99999999])]), metadata=md, timeout=10)),
            ("a message never written", lambda: report(pb.BatchResult(first_row=5, last_row=10, rows=6, valid=6))),
            ("more valid rows than rows", lambda: report(pb.BatchResult(first_row=1, last_row=10, rows=10,
                                                                        valid=4611686018427387904))),
            ("row count differs", lambda: report(pb.BatchResult(first_row=1, last_row=10, rows=11, valid=11))),
            ("rejected rows missing", lambda: report(pb.BatchResult(first_row=1, last_row=10, rows=10, valid=8))),
            ("rejected row outside", lambda: report(pb.BatchResult(first_row=1, last_row=10, rows=10, valid=9),
                                                    rejected=[pb.RowRejection(row=11, cells=[pb.RejectedCell(row=11)])])),
        ]
        for what, fn in hostile:
            code, msg = code_of(grpc, fn)
            e.check(code == grpc.StatusCode.INVALID_ARGUMENT, "%s: %s %s" % (what, code, msg))
        # A matching report is only staged: nothing counts until its
        # transaction is confirmed (and no transaction ever committed here).
        report(pb.BatchResult(first_row=1, last_row=10, rows=10, valid=10))
        time.sleep(4)  # past the resolver's stage age: committed offsets say nothing committed
        st, cur = s.http("GET", "/jobs/" + j["job_id"])
        e.check(cur["success"] == 0 and cur["errors"] == 0 and cur["state"] == "PENDING",
                "staged results do not count before their commit: %s" % cur)
        log = open(s["job"].log_path).read()
        e.check("report for job %s refused" % j["job_id"] in log, "refusals are logged")


if __name__ == "__main__":
    e.run_tests(globals())
