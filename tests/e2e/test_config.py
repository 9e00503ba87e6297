"""Every binary refuses a configuration it does not understand, at start, with
the file:line and the key: a misspelled key, a bad value, a bad environment
override. The shipped configs (deploy/config/*.yaml) are accepted."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bok_e2e as e  # noqa: E402

KINDS = ("model", "job", "worker", "gateway")


def run(kind, text, env=None, timeout=20):
    d = tempfile.mkdtemp(prefix="bok-cfg-")
    path = os.path.join(d, "c.yaml")
    with open(path, "w") as f:
        f.write(text)
    t0 = time.time()
    p = subprocess.run([e.binary(kind), "--config", path], env=dict(os.environ, **(env or {})),
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace"), path, time.time() - t0


def test_misspelled_key_is_refused_with_its_line():
    e.skip_if_missing(*KINDS)
    for kind in KINDS:
        rc, err, path, secs = run(kind, "log_level: info\n# a comment\nlisten_addr: 127.0.0.1:1\n")
        e.check(rc == 2, "%s: exit %s (%s)" % (kind, rc, err))
        e.check("%s:3: unknown key 'listen_addr'" % path in err, "%s: stderr %r" % (kind, err))
        e.check(secs < 5, "%s refused at once (%.1f s)" % (kind, secs))


def test_nested_unknown_key_and_bad_values():
    e.skip_if_missing(*KINDS)
    rc, err, path, _ = run("worker", "kafka:\n  brokers: 127.0.0.1:1\n  bach_max_rows: 10\n")
    e.check(rc == 2 and "%s:3: unknown key 'kafka.bach_max_rows'" % path in err, "worker: %s %r" % (rc, err))
    rc, err, path, _ = run("gateway", "threads: two\n")
    e.check(rc == 2 and "%s:1: threads: expected an integer, got 'two'" % path in err, "gateway: %s %r" % (rc, err))
    rc, err, path, _ = run("job", "kafka:\n  transactions: perhaps\n")
    e.check(rc == 2 and "%s:2: kafka.transactions: expected true or false, got 'perhaps'" % path in err,
            "job: %s %r" % (rc, err))
    rc, err, path, _ = run("model", "log_level: loud\n")
    e.check(rc == 2 and "log_level: expected debug, info, warn or error, got 'loud'" in err, "model: %s %r" % (rc, err))


def test_bad_environment_override_is_refused():
    e.skip_if_missing("gateway")
    rc, err, _, _ = run("gateway", "log_level: info\n", env={"BOK_MAX_JSON_BODY": "1MB"})
    e.check(rc == 2 and "BOK_MAX_JSON_BODY: max_json_body: expected an integer, got '1MB'" in err,
            "gateway: %s %r" % (rc, err))


def test_shipped_configs_pass_the_check():
    """deploy/config/*.yaml hold only known keys: each binary gets past the
    check (it then fails later or runs; either way not with exit 2)."""
    e.skip_if_missing(*KINDS)
    for kind in KINDS:
        src = os.path.join(e.SRC, "deploy", "config", e.CONFIGS[kind])
        with open(src) as f:
            text = f.read()
        # every port busy-proof: point listeners at port 0 / nowhere, no Kafka needed to fail fast
        env = {"BOK_LISTEN": "127.0.0.1:0", "BOK_METRICS_LISTEN": "", "BOK_DB": ":memory:",
               "BOK_KAFKA_BROKERS": "127.0.0.1:1"}
        d = tempfile.mkdtemp(prefix="bok-cfg-")
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.Popen([e.binary(kind), "--config", path], env=dict(os.environ, **env),
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        try:
            rc = p.wait(2)
        except subprocess.TimeoutExpired:
            rc = None  # running: the config was accepted
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        err = p.stderr.read().decode("utf-8", "replace")
        e.check(rc != 2 and "unknown key" not in err and "expected" not in err, "%s: %s %r" % (kind, rc, err[-400:]))


def test_json_logs_carry_tenant_and_job():
    """log_format: json gives one JSON object per line; the upload's line
    carries the tenant and the job id."""
    import json
    with e.Stack(workers=1, overrides={"job": {"log_format": "json"}, "worker": {"log_format": "json"}}) as s:
        schema = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
        st, m = s.http("POST", "/models", {"name": "logs", "schema": schema}, tenant="acme")
        e.check(st == 201, "model: %s %s" % (st, m))
        st, j = s.upload(m["model_id"], "l.csv", "id\n1\n2\n", tenant="acme")
        e.check(st == 202, "upload: %s %s" % (st, j))
        s.wait_job(j["job_id"], tenant="acme")
        for name in ("job",):
            lines = open(s.services[name].log_path, encoding="utf-8", errors="replace").read().splitlines()
            objs = []
            for line in lines:
                if line.startswith("{"):
                    objs.append(json.loads(line))  # every JSON line parses
            e.check(objs and all({"ts", "level", "component", "msg"} <= set(o) for o in objs), "fields: %s" % objs[:3])
            mine = [o for o in objs if o.get("job") == j["job_id"]]
            e.check(mine and all(o.get("tenant") == "acme" for o in mine), "job lines with tenant: %s" % objs[-5:])
        wlines = [x for x in open(s.workers[0].log_path, encoding="utf-8", errors="replace").read().splitlines()
                  if x.startswith("{")]
        e.check(wlines and all(json.loads(x)["component"].startswith("worker") for x in wlines), "worker json logs")


if __name__ == "__main__":
    e.run_tests(globals())
