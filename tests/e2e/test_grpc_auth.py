"""Service identity on the job service's gRPC port (issue 12, point 1), with an
independent client (Debian's python3-grpcio, stubs generated from proto/):

- the worker-only methods GetJobSpec and ReportResults refuse a caller
  without the worker token, or with a wrong one, and a forged report changes
  no counter; the normal stack (workers read the token the job service made
  on first start) still runs jobs end to end;
- a job service with no worker credential configured refuses them all;
- with mTLS (certificates from deploy/certs.sh) the gateway and the worker
  work, a Python client with a certificate of the CA is served, the worker's
  certificate name is its credential, and a client without a certificate,
  or in plaintext, is refused."""
import os
import stat
import subprocess
import tempfile
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}, "required": ["id"]}
CSV = "id,n\n" + "".join("r%d,%d\n" % (i, i) for i in range(1, 101))
COUNTERS = ("state", "total", "success", "errors")


stubs = e.job_stubs
code_of = e.grpc_code


def upload_pending(s):
    st, m = s.http("POST", "/models", {"name": "auth", "schema": SCHEMA})
    e.check(st == 201, "create model: %s %s" % (st, m))
    st, j = s.upload(m["model_id"], "a.csv", CSV)
    e.check(st == 202 and j["total"] == 100, "upload: %s %s" % (st, j))
    return j


def counters(s, job_id):
    st, j = s.http("GET", "/jobs/" + job_id)
    e.check(st == 200, "get job: %s %s" % (st, j))
    return {k: j[k] for k in COUNTERS}


def forged_report(pb, job_id):
    """The attack of issue 12: a hand-made report counting rows as valid."""
    return pb.ReportResultsRequest(worker_id="intruder", jobs=[pb.JobResults(
        job_id=job_id, batches=[pb.BatchResult(first_row=1, rows=100, valid=100, last_row=100)])])


def test_worker_only_methods_need_the_worker_token():
    grpc, pb, pbg = stubs()
    with e.Stack(workers=0) as s:
        token_file = os.path.join(s.dir, ".run", "secrets", "worker.token")
        e.check(os.path.exists(token_file), "the job service creates the token on first start")
        mode = stat.S_IMODE(os.stat(token_file).st_mode)
        e.check(mode == 0o600, "token file mode %o" % mode)
        with open(token_file) as f:
            token = f.read().strip()
        e.check(len(token) == 64, "64 hex digits: %d" % len(token))
        j = upload_pending(s)
        before = counters(s, j["job_id"])
        ch = grpc.insecure_channel(s.job_addr)
        stub = pbg.JobServiceStub(ch)
        spec = pb.GetJobRequest(job_id=j["job_id"])
        for md in ([], [("x-tenant-id", j["tenant_id"])], [("x-worker-token", "0" * 64)], [("x-worker-token", token[:-1])],
                   [("x-worker-token", token + "0")]):
            code, msg = code_of(grpc, lambda: stub.GetJobSpec(spec, metadata=md, timeout=5))
            e.check(code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED),
                    "GetJobSpec with %s: %s %s" % ([k for k, _ in md], code, msg))
            code, msg = code_of(grpc, lambda: stub.ReportResults(forged_report(pb, j["job_id"]), metadata=md, timeout=5))
            e.check(code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED),
                    "ReportResults with %s: %s %s" % ([k for k, _ in md], code, msg))
        e.check(counters(s, j["job_id"]) == before, "counters unchanged: %s -> %s" % (before, counters(s, j["job_id"])))
        # the methods for tenants are unchanged, and the token is the credential
        got = stub.GetJob(spec, metadata=[("x-tenant-id", j["tenant_id"])], timeout=5)
        e.check(got.job_id == j["job_id"], "GetJob for the tenant")
        got = stub.GetJobSpec(spec, metadata=[("x-worker-token", token)], timeout=5)
        e.check(got.job_id == j["job_id"] and got.header == b"id,n", "GetJobSpec with the token: %s" % got)
        ch.close()
        with open(s["job"].log_path, errors="replace") as f:
            log = f.read()
        e.check("refused /batch.v1.JobService/ReportResults" in log and token not in log,
                "refusals logged, token never: %s" % s["job"].log_tail(5))
        # a worker started now reads the same file and finishes the job
        s.add_worker()
        done = s.wait_job(j["job_id"])
        e.check(done["state"] == "SUCCESS" and done["success"] == 100, "job end to end: %s" % done)


def test_job_service_without_a_worker_credential_refuses_worker_calls():
    grpc, pb, pbg = stubs()
    with e.Stack(workers=0, gateway=False, overrides={"job": {"rpc.worker_token_file": ""}}) as s:
        e.check(not os.path.exists(os.path.join(s.dir, ".run", "secrets", "worker.token")), "no token made")
        ch = grpc.insecure_channel(s.job_addr)
        stub = pbg.JobServiceStub(ch)
        for md in ([], [("x-worker-token", "0" * 64)]):
            code, msg = code_of(grpc, lambda: stub.GetJobSpec(pb.GetJobRequest(job_id="x"), metadata=md, timeout=5))
            e.check(code == grpc.StatusCode.PERMISSION_DENIED and "accepts no worker credential" in msg,
                    "%s %s" % (code, msg))
        ch.close()


def tls_overrides(certs):
    def tls(name):
        return {"rpc.tls.ca": os.path.join(certs, "ca.pem"), "rpc.tls.cert": os.path.join(certs, name + ".pem"),
                "rpc.tls.key": os.path.join(certs, name + ".key")}
    # as in Docker Compose: the worker's certificate name is its credential, no token
    return {"model": tls("model"), "gateway": tls("gateway"),
            "job": dict(tls("job"), **{"rpc.worker_token_file": "", "rpc.worker_names": "worker"}),
            "worker": dict(tls("worker"), **{"rpc.worker_token_file": ""})}


def test_mtls_stack_with_certificates_from_certs_sh():
    grpc, pb, pbg = stubs()
    certs = tempfile.mkdtemp(prefix="bok-certs-")
    r = subprocess.run(["bash", os.path.join(e.SRC, "deploy", "certs.sh"), certs, "model", "job", "worker", "gateway"],
                       capture_output=True, text=True)
    e.check(r.returncode == 0, "certs.sh: %s" % r.stderr)
    read = lambda n: open(os.path.join(certs, n), "rb").read()
    with e.Stack(workers=1, overrides=tls_overrides(certs)) as s:
        deadline = time.time() + 20
        while True:  # readiness is probed every few seconds
            st, body = s.http("GET", "/readyz")
            if st == 200 or time.time() > deadline:
                break
            time.sleep(0.5)
        e.check(st == 200, "the gateway reaches the services over mTLS: /readyz %s %s" % (st, body))
        for svc in (s["model"], s["job"], s.workers[0]):
            with open(svc.log_path, errors="replace") as f:
                e.check("gRPC security: tls=mtls" in f.read(), "%s: TLS not on: %s" % (svc.name, svc.log_tail(5)))
        j = upload_pending(s)
        done = s.wait_job(j["job_id"])
        e.check(done["state"] == "SUCCESS" and done["success"] == 100, "job over mTLS: %s" % done)

        def stub_with(cert):
            creds = grpc.ssl_channel_credentials(read("ca.pem"), *((read(cert + ".key"), read(cert + ".pem"))
                                                                  if cert else ()))
            ch = grpc.secure_channel(s.job_addr, creds)
            return ch, pbg.JobServiceStub(ch)

        req = pb.GetJobRequest(job_id=j["job_id"])
        ch, stub = stub_with("gateway")  # a client with a certificate of the CA
        got = stub.GetJob(req, metadata=[("x-tenant-id", j["tenant_id"])], timeout=5)
        e.check(got.success == 100, "GetJob over mTLS: %s" % got)
        code, msg = code_of(grpc, lambda: stub.GetJobSpec(req, timeout=5))
        e.check(code == grpc.StatusCode.PERMISSION_DENIED, "gateway certificate is no worker: %s %s" % (code, msg))
        before = counters(s, j["job_id"])
        code, _ = code_of(grpc, lambda: stub.ReportResults(forged_report(pb, j["job_id"]), timeout=5))
        e.check(code == grpc.StatusCode.PERMISSION_DENIED and counters(s, j["job_id"]) == before, "forged report: %s" % code)
        ch.close()
        ch, stub = stub_with("worker")  # the worker's certificate name is its credential
        e.check(stub.GetJobSpec(req, timeout=5).job_id == j["job_id"], "GetJobSpec with the worker certificate")
        ch.close()
        ch, stub = stub_with(None)  # TLS without a client certificate
        code, msg = code_of(grpc, lambda: stub.GetJob(req, metadata=[("x-tenant-id", j["tenant_id"])], timeout=5))
        e.check(code == grpc.StatusCode.UNAVAILABLE, "no client certificate: %s %s" % (code, msg))
        ch.close()
        ch = grpc.insecure_channel(s.job_addr)  # plaintext
        code, msg = code_of(grpc, lambda: pbg.JobServiceStub(ch).GetJob(req, metadata=[("x-tenant-id", j["tenant_id"])],
                                                                         timeout=5))
        e.check(code == grpc.StatusCode.UNAVAILABLE, "plaintext: %s %s" % (code, msg))
        ch.close()


if __name__ == "__main__":
    e.run_tests(globals())
