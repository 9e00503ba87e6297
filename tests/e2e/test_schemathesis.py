"""schemathesis (property-based API testing) against the running gateway
(issue 12): every operation of docs/openapi.yaml, all of schemathesis's
checks, a fixed seed and >= 1,000 generated cases; it must find nothing.

schemathesis comes from PyPI: deploy/deps.sh installs it into a venv under
the cache dir ($XDG_CACHE_HOME or ~/.cache, batch-on-kafka/schemathesis-venv;
BOK_SCHEMATHESIS names another `st` binary). Without it the test is SKIPPED
with that message. With BOK_BUILD_DIR=build-asan it runs against the
sanitizer build (a sanitizer report in any log fails it, as in every Stack).

One check is relaxed, on four operations only: positive_data_acceptance
(a request the OpenAPI document allows must not be a 400) on POST /models,
PUT/PATCH /models/{id} and POST /schema. OpenAPI 3.0 cannot say that a
property name is not empty, that `required` names properties, or that a CSV
sample has a usable header; those are semantic checks answered 400 naming
the property (docs/openapi.yaml ModelSchema lists them). Every other check,
negative_data_rejection included, runs on every operation.
"""
import os
import re
import shutil
import subprocess
import tempfile

import bok_e2e as e

SEED = 20260512
MAX_EXAMPLES = 50   # per operation and phase: ~3,000 cases over 21 operations
MIN_CASES = 1000
SEMANTIC_400 = ["createModel", "updateModel", "patchModel", "detectSchema"]


def st_binary():
    path = os.environ.get("BOK_SCHEMATHESIS")
    if not path:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(cache, "batch-on-kafka", "schemathesis-venv", "bin", "st")
    if not os.access(path, os.X_OK):
        raise e.Skip("schemathesis is not installed (%s missing): run deploy/deps.sh with PyPI reachable" % path)
    return path


def config_file(d):
    path = os.path.join(d, "schemathesis.toml")
    with open(path, "w") as f:
        for op in SEMANTIC_400:
            f.write('[[operations]]\ninclude-operation-id = "%s"\n'
                    'checks.positive_data_acceptance.enabled = false\n\n' % op)
    return path


def test_schemathesis_finds_nothing():
    st = st_binary()
    # A worker, so jobs the fuzzer creates finish as in production (an event
    # stream of a job that never ends would hold a connection to the end).
    with e.Stack(workers=1) as s:
        work = tempfile.mkdtemp(prefix="bok-st-")
        try:
            cmd = [st, "--config-file", config_file(work), "run", e.OPENAPI_FILE, "--url", s.api_url,
                   "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
                   "--generation-database", "none", "--request-timeout", "30", "--no-color"]
            p = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=3000)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out = p.stdout
        m = re.search(r"(\d+) generated", out)
        cases = int(m.group(1)) if m else 0
        print("schemathesis: %s" % (m.group(0) if m else "no summary"), flush=True)
        e.check(p.returncode == 0, "schemathesis found something (rc %d):\n%s\n%s" % (p.returncode, out[-15000:],
                                                                                     p.stderr[-3000:]))
        e.check(cases >= MIN_CASES, "only %d cases generated:\n%s" % (cases, out[-3000:]))
        e.check(s["gateway"].alive(), "the gateway is still up")


if __name__ == "__main__":
    e.run_tests(globals())
