"""A 2-minute smoke of the torture run (tests/torture/torture.py, what `make
torture` runs for TORTURE_MINUTES) with a fixed seed: several tenants' jobs
while processes are SIGKILLed and SIGSTOPped, a private broker restarts and
the job service is slowed. It passes only when every invariant held in every
round and the faults really happened."""
import os
import subprocess
import sys

import bok_e2e as e

SCRIPT = os.path.join(e.SRC, "tests", "torture", "torture.py")
SEED = "424242"


def test_torture_smoke():
    e.skip_if_missing("model", "job", "worker", "gateway")
    env = dict(os.environ, BOK_BUILD_DIR=e.BUILD, BOK_SOURCE_DIR=e.SRC, TORTURE_MINUTES="2", TORTURE_SEED=SEED,
               TORTURE_ROUND_SECONDS="50", TORTURE_MAX_ROWS="5000")
    # the script stops itself (its watchdog: minutes + 2 settle times + 5 min)
    p = subprocess.run([sys.executable, SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=860)
    out = p.stdout.decode("utf-8", "replace")
    sys.stdout.write(out)
    e.check("seed %s" % SEED in out, "the seed is printed")
    e.check("round  faults" in out, "the invariants table is printed")
    final = [line for line in out.splitlines() if line.startswith("all ")]
    e.check(final, "the final row of the table is printed")
    faults = final[-1][5:35]
    e.check("kill:" in faults and ("brk:" in faults or "stop:" in faults), "faults were injected: %r" % faults)
    e.check(p.returncode == 0 and "torture PASSED" in out,
            "torture smoke (seed %s) broke an invariant, exit %d; the table above says which" % (SEED, p.returncode))


if __name__ == "__main__":
    e.run_tests(globals())
