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
sys.path.insert(0, os.path.dirname(SCRIPT))
import torture as tt  # noqa: E402


def fake(tag, valid, invalid=0, state=None, job_id=None, canary=False, status=202, error=None):
    """An Upload of `valid` valid rows (event time 1000 + row) then `invalid`
    invalid ones, whose job is in `state` with counters that match the file."""
    ts = [None] + [1000 + r for r in range(1, valid + 1)] + [None] * invalid
    u = tt.Upload(1, "acme", {"name": "m", "topic": "t"}, tag, "csv", b"", ts, canary=canary)
    u.status = status
    if state:
        u.job_id = job_id or tag + "-job"
        u.job = {"job_id": u.job_id, "state": state, "total": u.n, "success": 0 if error else valid,
                 "errors": invalid, "error": error}
    return u


def ev(job, tag, rows, ts=None):
    return {job: {r: [((ts or (1000 + r)) * 1000, "%s-%d" % (tag, r))] for r in rows}}


def test_checker_finds_each_broken_invariant():
    """The checker itself: a clean job passes, each kind of breakage is counted
    in its own column (no false pass of the smoke below)."""
    ok = fake("a", 3, 1, "PARTIAL_SUCCESS")
    t = tt.evaluate([ok], ev("a-job", "a", [1, 2, 3]))
    e.check([getattr(t, c) for c in tt.Tally.COLS] == [1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], vars(t))
    t = tt.evaluate([ok], ev("a-job", "a", [1, 3]))
    e.check(t.lost == 1 and t.missing == {"a-job": {2}}, "lost: %s" % vars(t))
    events = ev("a-job", "a", [1, 2, 3])
    events["a-job"][2].append(events["a-job"][2][0])
    t = tt.evaluate([ok], events)
    e.check(t.dup == 1 and t.lost == 0, "dup: %s" % vars(t))
    t = tt.evaluate([ok], ev("a-job", "a", [1, 2, 3, 4]))
    e.check(t.extra == 1, "event of an invalid row: %s" % vars(t))
    t = tt.evaluate([ok], ev("a-job", "a", [1, 2, 3], ts=7))
    e.check(t.bad_ts == 3, "timestamps: %s" % vars(t))
    wrong = fake("b", 3, 1, "PARTIAL_SUCCESS")
    wrong.job["success"] = 2
    e.check(tt.evaluate([wrong], ev("b-job", "b", [1, 2, 3])).bad == 1, "counters")
    e.check(tt.evaluate([fake("c", 3, 0, "PARTIAL_SUCCESS")], ev("c-job", "c", [1, 2, 3])).bad == 1, "state")
    e.check(tt.evaluate([fake("d", 3, 0, "RUNNING")], {}).stuck == 1, "stuck")
    # rejected uploads: allowed when they published nothing; a canary must not be rejected
    no_answer = fake("f", 3, status=0)
    t = tt.evaluate([no_answer], {})
    e.check(t.rejected == 1 and t.extra == 0 and t.wedged == 0, "rejected: %s" % vars(t))
    t = tt.evaluate([no_answer], ev("zzz", "f", [1]))
    e.check(t.extra == 1, "events of a rejected upload: %s" % vars(t))
    failed = fake("g", 3, 0, "FAILED", error="Kafka unavailable")
    e.check(tt.evaluate([failed], {}).rejected == 1, "FAILED with an error is a rejected upload")
    e.check(tt.evaluate([failed], ev("g-job", "g", [1])).extra == 1, "and must have no event")
    e.check(tt.evaluate([fake("h", 3, 0, "FAILED", canary=True, error="Kafka unavailable")], {}).wedged == 1,
            "canary")
    e.check(tt.evaluate([fake("i", 3, status=503, canary=True)], {}).wedged == 1, "canary without a job")
    e.check(tt.evaluate([fake("j", 3, status=404)], {}).bad == 1, "a 4xx to an upload")
    e.check(tt.evaluate([fake("k", 3, status=202)], {}).bad == 1, "a 202 job that is not listed")
    # another round's events are none of this round's business; in the final check a stray counts
    e.check(tt.evaluate([ok], dict(ev("a-job", "a", [1, 2, 3]), **ev("old", "x", [1]))).extra == 0, "other round")
    e.check(tt.evaluate([ok], dict(ev("a-job", "a", [1, 2, 3]), **ev("old", "x", [1])), strays=True).extra == 1,
            "stray event in the final check")


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
