"""A broker outage mid-job (issue 11, bugs 3 and 4): workers and the job
service ride it out without exiting or wedging, the job finishes with exact
counters and exactly-once events, and uploads work again once the broker is
back (an upload made during the outage fails cleanly)."""
import collections
import threading
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}}, "required": ["event_id", "timestamp"]}
N = 60000


def make_csv(n, prefix="o"):
    lines = ["event_id,timestamp,amount"]
    for i in range(1, n + 1):
        lines.append("%s%d,%d,%s" % (prefix, i, (i * 48271) % 2147483647, "bad" if i % 20 == 0 else "%d.5" % i))
    return "\n".join(lines) + "\n"


def events_of(k, topic, job_id):
    # to the end (the last stable offset): the upload made during the outage may have events too
    evs = e.kcat_consume(topic, timeout=60, bootstrap=k.bootstrap())
    return collections.Counter(x["headers"].get("row") for x in evs if x["headers"].get("job") == job_id)


def forensics(k, topic, rows, want):
    """For a failed exactly-once check: what is in the log (uncommitted
    reads too) and, batch by batch, which transactions hold it."""
    if len(rows) == want and (not rows or max(rows.values()) == 1):
        return ""
    unc = e.kcat_consume(topic, read_committed=False, timeout=60, bootstrap=k.bootstrap())
    return "read_uncommitted: %d events; the topic's partitions:\n%s" % (len(unc), e.txn_log(k.dir, topic))


def test_broker_stop_mid_job_recovers_everything():
    with e.PrivateKafka() as k:
        ov = {"kafka.brokers": k.bootstrap()}
        wov = dict(ov, **{"kafka.batch_max_rows": 2000})
        with e.Stack(workers=2, overrides={"job": ov, "worker": wov}) as s:
            st, m = s.http("POST", "/models", {"name": "outage", "schema": SCHEMA})
            e.check(st == 201, "model: %s" % m)
            st, j = s.upload(m["model_id"], "big.csv", make_csv(N), timeout=180)
            e.check(st == 202, "upload: %s %s" % (st, j))
            deadline = time.time() + 120
            while time.time() < deadline:
                st, cur = s.http("GET", "/jobs/" + j["job_id"])
                if cur["success"] + cur["errors"] > 0:
                    break
                time.sleep(0.05)
            k.run("stop")
            # An upload while the broker is down fails cleanly, never hangs the service.
            box = {}
            t = threading.Thread(target=lambda: box.update(r=s.upload(m["model_id"], "down.csv", make_csv(10, "d"),
                                                                      timeout=180)))
            t.start()
            time.sleep(20)
            k.run("start")
            t.join(200)
            st, down = box.get("r", (None, None))
            e.check(st is not None and (st >= 500 or down["state"] in ("PENDING", "RUNNING", "FAILED", "SUCCESS",
                                                                         "PARTIAL_SUCCESS")),
                    "upload during the outage answered: %s %s" % (st, down))
            j = s.wait_job(j["job_id"], timeout=300)
            want = N - N // 20
            e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == want and j["errors"] == N // 20,
                    "exact counters after the outage: %s" % j)
            rows = events_of(k, m["topic"], j["job_id"])
            e.check(len(rows) == want and max(rows.values()) == 1, "exactly once: %d distinct of %d, max %d\n%s"
                    % (len(rows), want, max(rows.values()) if rows else 0, forensics(k, m["topic"], rows, want)))
            e.check(all(w.died() is None for w in s.workers), "no worker exited: %s" % [w.died() for w in s.workers])
            e.check(s["job"].died() is None, "the job service did not exit")
            # Not wedged: new uploads go through, several in a row (both producers).
            for i in range(3):
                st, j2 = s.upload(m["model_id"], "after%d.csv" % i, make_csv(100, "a%d" % i))
                e.check(st == 202, "upload after the outage: %s %s" % (st, j2))
                j2 = s.wait_job(j2["job_id"], timeout=120)
                e.check(j2["state"] == "PARTIAL_SUCCESS" and j2["success"] == 95, "job after the outage: %s" % j2)


def test_stack_started_while_kafka_is_down_waits_for_it():
    """A broker not up yet when a worker starts is an outage like any other
    (seen under load: a worker lane whose init_transactions ran into a broker
    stop exited with "cannot start", and nothing restarted it). Every
    process stays up past the producer's 30 s init timeout and works once
    Kafka is there."""
    with e.PrivateKafka() as k:
        k.run("stop")
        ov = {"kafka.brokers": k.bootstrap()}
        with e.Stack(workers=1, overrides={"job": ov, "worker": ov}) as s:
            time.sleep(40)
            e.check(s.workers[0].died() is None, "the worker waits for Kafka: exit %s\n%s"
                    % (s.workers[0].died(), s.workers[0].log_tail()))
            e.check(s["job"].died() is None, "the job service waits for Kafka")
            k.run("start")
            st, m = s.http("POST", "/models", {"name": "late", "schema": SCHEMA})
            e.check(st == 201, "model: %s" % m)
            st, j = s.upload(m["model_id"], "late.csv", make_csv(1000, "l"), timeout=180)
            e.check(st == 202, "upload once Kafka is up: %s %s" % (st, j))
            j = s.wait_job(j["job_id"], timeout=240)
            e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == 950 and j["errors"] == 50,
                    "exact counters: %s" % j)
            rows = events_of(k, m["topic"], j["job_id"])
            e.check(len(rows) == 950 and max(rows.values()) == 1, "exactly once: %d distinct, max %d\n%s"
                    % (len(rows), max(rows.values()) if rows else 0, forensics(k, m["topic"], rows, 950)))
            e.check(s.workers[0].died() is None, "the worker is still up")


if __name__ == "__main__":
    e.run_tests(globals())
