"""Server reflection on the model and job services (issue 17, point 1), as a
gRPC client that knows nothing of proto/ would use it:

- a Python reflection client (python3-grpcio, stubs generated at test time
  from proto/grpc/reflection/v1/reflection.proto) lists the services on v1
  and v1alpha, fetches the file of batch.v1.JobService / ModelService, loads
  it into a descriptor pool and calls a method with messages built from the
  fetched descriptors alone;
- grpcurl (`go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest`),
  when installed: list, describe, and calls with JSON bodies encoded from
  reflection. Skipped, saying so, when grpcurl is not on PATH or in ~/go/bin.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import bok_e2e as e

SCHEMA = '{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}'
REFLECTION = "grpc.reflection.v1.ServerReflection"
REFLECTION_ALPHA = "grpc.reflection.v1alpha.ServerReflection"
EXPECTED = {
    "model": {"batch.v1.ModelService", "grpc.health.v1.Health", REFLECTION, REFLECTION_ALPHA},
    "job": {"batch.v1.JobService", "grpc.health.v1.Health", REFLECTION, REFLECTION_ALPHA},
}


def reflection_stubs():
    """reflection_pb2 from our .proto, generated under a top-level module name
    (a `grpc` package of generated code would shadow grpcio's)."""
    out = tempfile.mkdtemp(prefix="bok-refl-stubs-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc",
                    "-I" + os.path.join(e.SRC, "proto", "grpc", "reflection", "v1"),
                    "--python_out=" + out, "reflection.proto"], check=True)
    sys.path.insert(0, out)
    import grpc
    import reflection_pb2
    return grpc, reflection_pb2


class Reflector:
    """One ServerReflectionInfo stream per ask() call, answering each request
    in order (v1 or, with alpha=True, the v1alpha path: same messages)."""

    def __init__(self, grpc, pb, addr, alpha=False):
        self.pb = pb
        self.ch = grpc.insecure_channel(addr)
        svc = REFLECTION_ALPHA if alpha else REFLECTION
        self.call = self.ch.stream_stream("/%s/ServerReflectionInfo" % svc,
                                          request_serializer=pb.ServerReflectionRequest.SerializeToString,
                                          response_deserializer=pb.ServerReflectionResponse.FromString)

    def ask(self, *reqs):
        return list(self.call(iter(reqs), timeout=10))

    def list(self):
        (r,) = self.ask(self.pb.ServerReflectionRequest(list_services=""))
        return {s.name for s in r.list_services_response.service}

    def close(self):
        self.ch.close()


def pool_from(answer):
    """A descriptor pool holding the files of one file_descriptor_response
    (the file first, then its imports: added imports first)."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in answer.file_descriptor_response.file_descriptor_proto]
    pool = descriptor_pool.DescriptorPool()
    for f in reversed(files):
        pool.Add(f)
    return files, pool


def message_class(pool, name):
    from google.protobuf import message_factory
    d = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(d)
    return message_factory.MessageFactory(pool).GetPrototype(d)


def test_python_reflection_client_lists_and_describes():
    grpc, pb = reflection_stubs()
    with e.Stack(workers=0, gateway=False) as s:
        for kind, addr in (("model", s.model_addr), ("job", s.job_addr)):
            for alpha in (False, True):
                r = Reflector(grpc, pb, addr, alpha)
                got = r.list()
                e.check(got == EXPECTED[kind], "%s list (alpha=%s): %s" % (kind, alpha, sorted(got)))
                r.close()

        # Several questions on one stream, answered in order.
        r = Reflector(grpc, pb, s.job_addr)
        Q = pb.ServerReflectionRequest
        answers = r.ask(Q(file_containing_symbol="batch.v1.JobService"),
                        Q(file_containing_symbol="batch.v1.NoSuchService"),
                        Q(file_by_filename="grpc/health/v1/health.proto"),
                        Q(file_containing_symbol="batch.v1.JobService.Upload"))
        e.check(len(answers) == 4, "one answer per question: %d" % len(answers))
        e.check(answers[0].original_request.file_containing_symbol == "batch.v1.JobService", str(answers[0]))
        files, pool = pool_from(answers[0])
        e.check(files[0].name == "batch/v1/job.proto" and files[0].package == "batch.v1", files[0].name)
        svc = pool.FindServiceByName("batch.v1.JobService")
        methods = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in svc.methods}
        e.check(methods["GetJob"] == ("batch.v1.GetJobRequest", "batch.v1.Job"), str(methods))
        e.check(set(methods) >= {"Upload", "GetJob", "ListJobs", "CancelJob", "ListRejected", "ReprocessJob"},
                str(sorted(methods)))
        e.check(answers[1].WhichOneof("message_response") == "error_response"
                and answers[1].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
                and "batch.v1.NoSuchService" in answers[1].error_response.error_message, str(answers[1]))
        e.check(answers[2].file_descriptor_response.file_descriptor_proto, "health.proto by name")
        e.check(answers[3].WhichOneof("message_response") == "file_descriptor_response", "a method is a symbol")
        r.close()

        # A call made with nothing but the fetched descriptors: GetJob of an
        # unknown id is NOT_FOUND, ListJobs answers an empty list.
        ch = grpc.insecure_channel(s.job_addr)
        Req = message_class(pool, "batch.v1.GetJobRequest")
        Job = message_class(pool, "batch.v1.Job")
        get_job = ch.unary_unary("/batch.v1.JobService/GetJob", request_serializer=Req.SerializeToString,
                                 response_deserializer=Job.FromString)
        try:
            get_job(Req(job_id="00000000-0000-0000-0000-000000000000"), metadata=[("x-tenant-id", "refl")], timeout=5)
            raise e.Failure("GetJob of an unknown id succeeded")
        except grpc.RpcError as err:
            e.check(err.code() == grpc.StatusCode.NOT_FOUND, "unknown job: %s" % err.code())
        LReq = message_class(pool, "batch.v1.ListJobsRequest")
        LResp = message_class(pool, "batch.v1.ListJobsResponse")
        lst = ch.unary_unary("/batch.v1.JobService/ListJobs", request_serializer=LReq.SerializeToString,
                             response_deserializer=LResp.FromString)(LReq(), metadata=[("x-tenant-id", "refl")],
                                                                      timeout=5)
        e.check(len(lst.jobs) == 0, str(lst))
        ch.close()

        # The model service describes its own API the same way.
        r = Reflector(grpc, pb, s.model_addr, alpha=True)
        (a,) = r.ask(Q(file_containing_symbol="batch.v1.ModelService"))
        files, pool = pool_from(a)
        e.check(files[0].name == "batch/v1/model.proto", files[0].name)
        e.check([m.name for m in pool.FindServiceByName("batch.v1.ModelService").methods] ==
                ["CreateModel", "GetModel", "ListModels", "UpdateModel", "DeleteModel"], "model methods")
        r.close()


def grpcurl_path():
    p = shutil.which("grpcurl")
    if p:
        return p
    gopath = os.environ.get("GOPATH", os.path.expanduser("~/go"))
    p = os.path.join(gopath, "bin", "grpcurl")
    return p if os.access(p, os.X_OK) else None


def test_grpcurl_lists_describes_and_calls():
    g = grpcurl_path()
    if not g:
        raise e.Skip("grpcurl not installed (go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest)")

    def run(addr, *args, tenant=None, data=None, ok=True):
        cmd = [g, "-plaintext", "-max-time", "10"]
        if tenant:
            cmd += ["-H", "x-tenant-id: " + tenant]
        if data is not None:
            cmd += ["-d", json.dumps(data)]
        p = subprocess.run(cmd + [addr] + list(args), capture_output=True, text=True, timeout=30)
        e.check((p.returncode == 0) == ok, "grpcurl %s: rc=%d\n%s%s" % (args, p.returncode, p.stdout, p.stderr))
        return p.stdout + p.stderr

    with e.Stack(workers=0, gateway=False) as s:
        for kind, addr in (("model", s.model_addr), ("job", s.job_addr)):
            got = set(run(addr, "list").split())
            e.check(got == EXPECTED[kind], "grpcurl list %s: %s" % (kind, sorted(got)))
        out = run(s.job_addr, "describe", "batch.v1.JobService")
        e.check("rpc Upload ( stream .batch.v1.UploadRequest ) returns ( .batch.v1.Job );" in out, out)
        out = run(s.job_addr, "describe", "batch.v1.Job")
        e.check("int64 success = 7;" in out and ".batch.v1.JobState state = 9;" in out, out)
        out = run(s.model_addr, "list", "batch.v1.ModelService")
        e.check(out.split() == ["batch.v1.ModelService.CreateModel", "batch.v1.ModelService.DeleteModel",
                                "batch.v1.ModelService.GetModel", "batch.v1.ModelService.ListModels",
                                "batch.v1.ModelService.UpdateModel"], out)
        # JSON in, JSON out, encoded with the reflected descriptors.
        out = run(s.model_addr, "batch.v1.ModelService/CreateModel", tenant="curl",
                  data={"name": "via grpcurl", "schemaJson": SCHEMA})
        m = json.loads(out)
        e.check(m["tenantId"] == "curl" and m["version"] == "1" and len(m["modelId"]) == 36, out)
        out = run(s.model_addr, "batch.v1.ModelService/GetModel", tenant="other", data={"modelId": m["modelId"]},
                  ok=False)
        e.check("Code: NotFound" in out, out)
        out = run(s.job_addr, "batch.v1.JobService/ListJobs", data={}, ok=False)
        e.check("Code: InvalidArgument" in out and "x-tenant-id" in out, out)
        out = run(s.job_addr, "grpc.health.v1.Health/Check", data={"service": "batch.v1.JobService"})
        e.check(json.loads(out) == {"status": "SERVING"}, out)


if __name__ == "__main__":
    e.run_tests(globals())
