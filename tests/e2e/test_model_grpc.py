"""An independent gRPC client (Debian's python3-grpcio, stubs generated from
proto/ at test time) against the real bok-model-service."""
import os
import subprocess
import sys
import tempfile

import bok_e2e as e

SCHEMA = '{"type":"object","properties":{"id":{"type":"string"},"value":{"type":"integer"}},"required":["id"]}'


def stubs():
    out = tempfile.mkdtemp(prefix="bok-stubs-")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(e.SRC, "proto"),
                    "--python_out=" + out, "--grpc_python_out=" + out, "batch/v1/model.proto"], check=True)
    sys.path.insert(0, out)
    import grpc
    from batch.v1 import model_pb2, model_pb2_grpc
    return grpc, model_pb2, model_pb2_grpc


def test_python_grpc_client_creates_and_lists():
    grpc, pb, pbg = stubs()
    with e.Stack(job=False, workers=0, gateway=False) as s:
        ch = grpc.insecure_channel(s.model_addr)
        stub = pbg.ModelServiceStub(ch)
        md = [("x-tenant-id", "py_tenant")]
        m = stub.CreateModel(pb.CreateModelRequest(name="from python", schema_json=SCHEMA), metadata=md, timeout=5)
        e.check(len(m.model_id) == 36 and m.version == 1 and m.tenant_id == "py_tenant", str(m))
        lst = stub.ListModels(pb.ListModelsRequest(), metadata=md, timeout=5)
        e.check([x.model_id for x in lst.models] == [m.model_id], str(lst))
        up = stub.UpdateModel(pb.UpdateModelRequest(model_id=m.model_id, schema_json=SCHEMA.replace(
            '"required":["id"]', '"required":["id","value"]')), metadata=md, timeout=5)
        e.check(up.version == 2, "update bumps version")
        v1 = stub.GetModel(pb.GetModelRequest(model_id=m.model_id, version=1), metadata=md, timeout=5)
        e.check(v1.schema_json == SCHEMA and v1.version == 1, "old version readable: %s" % v1)

        def code_of(fn):
            try:
                fn()
            except grpc.RpcError as err:
                return err.code(), err.details()
            return None, None

        code, msg = code_of(lambda: stub.ListModels(pb.ListModelsRequest(), timeout=5))
        e.check(code == grpc.StatusCode.INVALID_ARGUMENT and "x-tenant-id" in msg, "no tenant: %s %s" % (code, msg))
        code, _ = code_of(lambda: stub.GetModel(pb.GetModelRequest(model_id=m.model_id),
                                                metadata=[("x-tenant-id", "other")], timeout=5))
        e.check(code == grpc.StatusCode.NOT_FOUND, "other tenant: %s" % code)
        code, msg = code_of(lambda: stub.CreateModel(pb.CreateModelRequest(
            name="bad", schema_json='{"type":"object","properties":{"when":{"type":"date"}}}'), metadata=md, timeout=5))
        e.check(code == grpc.StatusCode.INVALID_ARGUMENT and "properties.when.type" in msg, "bad schema: %s" % msg)

        # grpc.health.v1.Health/Check, encoded by hand (the stubs' "grpc"
        # package would shadow grpcio's): field 1 = service name.
        svc = b"batch.v1.ModelService"
        check = ch.unary_unary("/grpc.health.v1.Health/Check")
        e.check(check(b"\x0a" + bytes([len(svc)]) + svc, timeout=5) == b"\x08\x01", "health: SERVING")

        s["model"].restart()
        lst = stub.ListModels(pb.ListModelsRequest(), metadata=md, timeout=5, wait_for_ready=True)
        e.check(len(lst.models) == 1 and lst.models[0].version == 2, "kept across restart")
        ch.close()


if __name__ == "__main__":
    e.run_tests(globals())
