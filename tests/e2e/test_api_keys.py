"""Per-tenant API keys of bok-gateway (issue 12): with keys on, the key
decides the tenant, a tenant header naming another tenant is 403, a missing
or unknown key 401 with WWW-Authenticate; SIGHUP rotates the keys without a
restart; batchcli sends BATCH_API_KEY. Off by default (the guide's
behaviour: test_gateway.py, test_models.py)."""
import hashlib
import os
import signal
import subprocess
import time
import urllib.request

import yaml

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}
K1, K2, K1_NEW = "t1-key-" + "a" * 24, "t2-key-" + "b" * 24, "t1-rotated-" + "c" * 24


def sha(k):
    return hashlib.sha256(k.encode()).hexdigest()


def keys_cfg(required, *pairs):
    return {"auth": {"required": required, "api_keys": [{"tenant": t, "sha256": sha(k)} for t, k in pairs]}}


def call(s, method, path, key=None, tenant=None, json_body=None, body=None, headers=None):
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = "Bearer " + key
    return s.http(method, path, json_body=json_body, body=body, headers=h, tenant=tenant)


def www_authenticate(s, path, key=None):
    h = {"Authorization": "Bearer " + key} if key else {}
    req = urllib.request.Request(s.api_url + path, headers=h)
    try:
        urllib.request.urlopen(req, timeout=10)
        return None
    except urllib.error.HTTPError as ex:
        return ex.code, ex.headers.get("WWW-Authenticate")


def cli(s, *args, key=None, tenant=None):
    env = dict(os.environ, BATCH_API_URL=s.api_url)
    env.pop("BATCH_API_KEY", None)
    env.pop("BATCH_TENANT", None)
    if key is not None:
        env["BATCH_API_KEY"] = key
    if tenant is not None:
        env["BATCH_TENANT"] = tenant
    p = subprocess.run([e.binary("cli")] + list(args), capture_output=True, env=env, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def reload_gateway(s, cfg_update):
    gw = s["gateway"]
    cfg = dict(gw.config)
    cfg.update(cfg_update)
    with open(gw.config_path, "w") as f:
        yaml.safe_dump(cfg, f)
    gw.config = cfg
    gw.proc.send_signal(signal.SIGHUP)


def wait_status(s, path, key, want, timeout=10):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st, _ = call(s, "GET", path, key=key)
        if st == want:
            return st
        time.sleep(0.1)
    return st


def test_keys_decide_the_tenant():
    with e.Stack(job=False, workers=0, overrides={"gateway": keys_cfg(True, ("t1", K1), ("t2", K2))}) as s:
        # no key, a wrong key, a malformed header: 401 + WWW-Authenticate: Bearer
        for key, hdrs in [(None, {}), ("nope", {}), (K1 + "x", {}), (None, {"Authorization": "Basic dTpw"}),
                          (None, {"Authorization": "Bearer"})]:
            st, resp = call(s, "GET", "/models", key=key, headers=hdrs)
            e.check(st == 401 and resp.get("code") == "UNAUTHENTICATED", "%s %s: %s %s" % (key, hdrs, st, resp))
        code, wa = www_authenticate(s, "/models")
        e.check(code == 401 and wa == 'Bearer realm="batch-on-kafka"', "WWW-Authenticate: %s %s" % (code, wa))
        code, wa = www_authenticate(s, "/models", "wrong")
        e.check(code == 401 and wa.startswith("Bearer ") and 'error="invalid_token"' in wa, "bad key: %s" % wa)
        # the key decides the tenant
        st, m = call(s, "POST", "/models", key=K1, json_body={"name": "m1", "schema": SCHEMA})
        e.check(st == 201 and m["tenant_id"] == "t1", "create with t1's key: %s %s" % (st, m))
        st, lst = call(s, "GET", "/models", key=K1)
        e.check(st == 200 and [x["model_id"] for x in lst] == [m["model_id"]], "t1 lists: %s %s" % (st, lst))
        st, lst = call(s, "GET", "/models", key=K2)
        e.check(st == 200 and lst == [], "t2 sees nothing: %s %s" % (st, lst))
        st, resp = call(s, "GET", "/models/" + m["model_id"], key=K2)
        e.check(st == 404 and resp == {"error": "not found"}, "t2 reads t1's model: %s %s" % (st, resp))
        # a tenant header may repeat the key's tenant, never name another
        st, _ = call(s, "GET", "/models", key=K1, tenant="t1")
        e.check(st == 200, "header = key's tenant: %s" % st)
        st, _ = call(s, "GET", "/models", key=K1, tenant="")
        e.check(st == 200, "empty header: %s" % st)
        for t in ("t2", "tenant_a", "T1"):
            st, resp = call(s, "GET", "/models/" + m["model_id"], key=K1, tenant=t)
            e.check(st == 403 and resp.get("code") == "PERMISSION_DENIED" and t in resp["error"],
                    "t1's key, header %s: %s %s" % (t, st, resp))
            st, resp = call(s, "DELETE", "/models/" + m["model_id"], key=K2, tenant="t1")
            e.check(st == 403, "t2's key cannot act as t1: %s %s" % (st, resp))
        st, resp = call(s, "GET", "/models", key=K1, tenant="bad tenant")
        e.check(st == 400, "malformed header: %s %s" % (st, resp))
        # the header alone is no longer an identity
        st, resp = call(s, "GET", "/models", tenant="t1")
        e.check(st == 401, "header without key: %s %s" % (st, resp))
        # POST /schema needs a key too; health, metrics and the spec do not
        st, _ = call(s, "POST", "/schema", body="a,b\n1,2\n", headers={"Content-Type": "text/csv"})
        e.check(st == 401, "schema without key: %s" % st)
        st, _ = call(s, "POST", "/schema", key=K2, body="a,b\n1,2\n", headers={"Content-Type": "text/csv"})
        e.check(st == 200, "schema with key: %s" % st)
        for path in ("/healthz", "/metrics", "/openapi.yaml"):
            st, _ = s.http("GET", path)
            e.check(st == 200, "%s open: %s" % (path, st))
        # batchcli sends BATCH_API_KEY
        rc, out, err = cli(s, "model", "list", key=K1)
        e.check(rc == 0 and "m1" in out, "batchcli with t1's key: %s %r %r" % (rc, out, err))
        rc, out, err = cli(s, "model", "list", key=K2)
        e.check(rc == 0 and "m1" not in out, "batchcli with t2's key: %s %r %r" % (rc, out, err))
        rc, out, err = cli(s, "model", "list")
        e.check(rc != 0 and "API key required" in err, "batchcli without a key: %s %r" % (rc, err))
        rc, out, err = cli(s, "model", "list", key=K1, tenant="t2")
        e.check(rc != 0 and "not for tenant 't2'" in err, "batchcli, t1's key, tenant t2: %s %r" % (rc, err))


def test_sighup_rotates_keys_without_restart():
    with e.Stack(job=False, workers=0, overrides={"gateway": keys_cfg(True, ("t1", K1))}) as s:
        gw = s["gateway"]
        pid = gw.proc.pid
        st, m = call(s, "POST", "/models", key=K1, json_body={"name": "kept", "schema": SCHEMA})
        e.check(st == 201, "model: %s" % st)
        e.check(call(s, "GET", "/models", key=K1_NEW)[0] == 401, "new key not yet known")
        # rotation step 1: both keys
        reload_gateway(s, keys_cfg(True, ("t1", K1), ("t1", K1_NEW)))
        e.check(wait_status(s, "/models", K1_NEW, 200) == 200, "new key works after SIGHUP")
        e.check(call(s, "GET", "/models", key=K1)[0] == 200, "old key still works during the rollover")
        # step 2: only the new key
        reload_gateway(s, keys_cfg(True, ("t1", K1_NEW)))
        e.check(wait_status(s, "/models", K1, 401) == 401, "old key 401 after the second SIGHUP")
        st, lst = call(s, "GET", "/models", key=K1_NEW)
        e.check(st == 200 and [x["model_id"] for x in lst] == [m["model_id"]], "same tenant, same data: %s" % lst)
        rc, out, err = cli(s, "model", "list", key=K1_NEW)
        e.check(rc == 0 and "kept" in out, "batchcli with the new key: %s %r %r" % (rc, out, err))
        # a broken file is refused: the keys in effect stay
        reload_gateway(s, {"auth": {"required": True, "api_keys": [{"tenant": "t1", "sha256": "zz"}]}})
        time.sleep(1)
        e.check(call(s, "GET", "/models", key=K1_NEW)[0] == 200, "keys kept after a refused reload")
        with open(gw.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        e.check("reload refused" in log and "64 hex digits" in log, "refused reload logged")
        e.check(K1_NEW not in log and K1 not in log, "keys never logged")
        # keys off again (auth.required false, no keys): the guide's behaviour
        reload_gateway(s, {"auth": {"required": False, "api_keys": []}})
        st = None
        for _ in range(50):
            st, lst = s.http("GET", "/models", tenant="t1")
            if st == 200:
                break
            time.sleep(0.1)
        e.check(st == 200 and len(lst) == 1, "keys off: the header decides again: %s" % st)
        e.check(gw.alive() and gw.proc.pid == pid, "never restarted")


def test_optional_keys():
    """Keys configured, auth.required false: a request without a key uses
    the tenant header (as in the guide); with a key, the key decides."""
    with e.Stack(job=False, workers=0, overrides={"gateway": keys_cfg(False, ("t1", K1))}) as s:
        st, m = call(s, "POST", "/models", key=K1, json_body={"name": "m", "schema": SCHEMA})
        e.check(st == 201 and m["tenant_id"] == "t1", "key: %s %s" % (st, m))
        st, lst = s.http("GET", "/models", tenant="t1")
        e.check(st == 200 and len(lst) == 1, "header only: %s %s" % (st, lst))
        st, lst = s.http("GET", "/models")
        e.check(st == 200 and lst == [], "no header, no key: tenant_a: %s %s" % (st, lst))
        st, _ = call(s, "GET", "/models", key="unknown")
        e.check(st == 401, "an unknown key is still 401: %s" % st)
        st, _ = call(s, "GET", "/models", key=K1, tenant="tenant_a")
        e.check(st == 403, "key for t1, header tenant_a: %s" % st)


def test_bad_key_config_refused_at_start():
    with e.Stack(model=False, job=False, workers=0, gateway=False) as s:
        for cfg, msg in [(keys_cfg(True), "lists no key"),
                         ({"auth": {"api_keys": [{"tenant": "t1", "sha256": "abc"}]}}, "64 hex digits"),
                         ({"auth": {"api_keys": [{"tenant": "t1", "key": "plain"}]}}, "unknown field")]:
            gw = e.Service("gateway", s.dir, dict(cfg, listen="127.0.0.1:%d" % e.free_port()), name="gw-bad")
            gw.start(wait=False)
            rc = gw.proc.wait(20)
            e.check(rc != 0 and msg in gw.log_tail(), "%s: rc %s, log %s" % (cfg, rc, gw.log_tail()))


if __name__ == "__main__":
    e.run_tests(globals())
