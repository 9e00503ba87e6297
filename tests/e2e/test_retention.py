"""Events with historical event times survive the broker's retention checks.

Events carry their event time as the Kafka timestamp. A batch file of history
(1970 .. 2038) used to land in an events topic with the broker's default time
retention (24 h here): the commit marker rolled the segment and the next
retention check deleted the job's events after the job said SUCCESS
(issue 11, bug 1). The product now creates its events topics with time
retention off (`kafka.events_topic.retention.ms`, default -1).

A private broker checks retention every 2 s, so a deletion would happen well
inside the test."""
import collections
import json
import subprocess
import time

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "timestamp": {"type": "integer", "format": "unix-time"},
    "amount": {"type": "number"}}, "required": ["event_id", "timestamp"]}
N = 3000


def history_csv():
    lines = ["event_id,timestamp,amount"]
    for i in range(1, N + 1):
        ts = (i * 715827) % 2147483647  # 1970 .. 2038, shuffled
        lines.append("h%d,%d,%s" % (i, ts, "bad" if i % 10 == 0 else "%d.5" % i))
    return "\n".join(lines) + "\n"


def topic_config(bootstrap, topic):
    out = subprocess.run(["kcat", "-b", bootstrap, "-L", "-t", topic, "-J"], capture_output=True, timeout=20).stdout
    return json.loads(out or b"{}")


def test_old_event_times_survive_retention_checks():
    with e.PrivateKafka(env={"BOK_KAFKA_RETENTION_CHECK_MS": "2000"}) as k:
        ov = {"kafka.brokers": k.bootstrap()}
        with e.Stack(workers=1, overrides={"job": ov, "worker": ov}) as s:
            st, m = s.http("POST", "/models", {"name": "history", "schema": SCHEMA})
            e.check(st == 201, "model: %s %s" % (st, m))
            st, j = s.upload(m["model_id"], "history.csv", history_csv())
            e.check(st == 202, "upload: %s %s" % (st, j))
            j = s.wait_job(j["job_id"], timeout=120)
            want = N - N // 10
            e.check(j["state"] == "PARTIAL_SUCCESS" and j["success"] == want, "job: %s" % j)
            first = e.kcat_consume(m["topic"], timeout=30, expect=want, bootstrap=k.bootstrap())
            e.check(len(first) == want, "events right after the job: %d of %d" % (len(first), want))
            e.check(min(x["timestamp"] for x in first) < 86400 * 1000 * 365,
                    "event times from the 1970s are the Kafka timestamps")
            time.sleep(12)  # several retention checks, well past the marker's segment roll
            # a later job on the same topic rolls segments again
            st, j2 = s.upload(m["model_id"], "more.csv", "event_id,timestamp,amount\nz1,1,1.0\n")
            s.wait_job(j2["job_id"], timeout=60)
            time.sleep(6)
            after = e.kcat_consume(m["topic"], timeout=30, bootstrap=k.bootstrap())
            rows = collections.Counter(x["headers"].get("row") for x in after if x["headers"].get("job") == j["job_id"])
            e.check(len(rows) == want and max(rows.values()) == 1,
                    "every event still readable exactly once after retention checks: %d of %d" % (len(rows), want))


if __name__ == "__main__":
    e.run_tests(globals())
