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


def topics_of(bootstrap):
    """Topic names in the cluster's metadata (a request for all topics, which
    never makes the broker create one)."""
    out = subprocess.run(["kcat", "-b", bootstrap, "-L", "-J"], capture_output=True, timeout=20).stdout
    return {t["topic"] for t in json.loads(out or b"{}").get("topics", [])}


def test_a_models_events_topic_is_made_with_the_model():
    """The model service makes a model's events topic when the model is made,
    with the workers' settings (4 partitions, time retention off), so a
    consumer can subscribe before the first job and no worker lane pays
    CreateTopics inside a job's first batch (it held the small jobs queued
    behind it: docs/FAIRNESS.md). No job runs here: before, the topic
    appeared only with the model's first job. Making a model never waits
    for Kafka: with the broker unreachable it is answered at once."""
    boot = e.kafka_bootstrap()
    with e.Stack(workers=0) as s:
        st, m = s.http("POST", "/models", {"name": "early_topic", "schema": SCHEMA})
        e.check(st == 201, "model: %s %s" % (st, m))
        e.check(e.wait_topic(m["topic"], 30, boot), "no events topic %s 30 s after the model was made" % m["topic"])
        parts = e.kafka_topic_replicas(boot, m["topic"])
        e.check(len(parts) == 4, "events topic partitions: %s" % parts)
        cfg = e.kafka_topic_config(boot, m["topic"])
        e.check(cfg.get("retention.ms") == "-1" and cfg.get("message.timestamp.before.max.ms") == "9223372036854775807",
                "events topic configs: %s" % cfg)
    with e.Stack(workers=0, overrides={"model": {"kafka.brokers": "127.0.0.1:1"}}) as s:
        t0 = time.time()
        st, m = s.http("POST", "/models", {"name": "no_kafka", "schema": SCHEMA})
        took = time.time() - t0
        e.check(st == 201 and took < 2, "a model with Kafka unreachable: %s in %.2f s" % (st, took))


def test_no_event_before_the_events_topic_is_made_with_its_settings():
    """Regression (found by a CI rehearsal): when creating the events topic
    failed (a broker just started), the worker produced anyway and the broker
    created the topic by itself with its defaults -- 24 h time retention --
    and a job's old-dated events were deleted after it said SUCCESS. Here the
    creation fails on purpose (an invalid retention.ms): no event may be
    produced and no topic may appear; once the worker's setting is fixed the
    job finishes, exactly once."""
    with e.PrivateKafka() as k:
        ov = {"kafka.brokers": k.bootstrap()}
        wov = dict(ov, **{"kafka.events_topic.retention.ms": "not-a-number"})
        with e.Stack(workers=1, overrides={"job": ov, "worker": wov}) as s:
            st, m = s.http("POST", "/models", {"name": "late_topic", "schema": SCHEMA})
            e.check(st == 201, "model: %s" % m)
            st, j = s.upload(m["model_id"], "h.csv", history_csv())
            e.check(st == 202, "upload: %s %s" % (st, j))
            time.sleep(20)
            e.check(m["topic"] not in topics_of(k.bootstrap()),
                    "the broker made %s with its own defaults" % m["topic"])
            st, cur = s.http("GET", "/jobs/" + j["job_id"])
            e.check(cur["state"] in ("PENDING", "RUNNING") and cur["success"] == 0,
                    "nothing counted while the topic cannot be made: %s" % cur)
            w = s.workers[0]
            w.stop()
            w.config["kafka"].pop("events_topic")
            with open(w.config_path, "w") as f:
                e.yaml.safe_dump(w.config, f)
            w.start()
            done = s.wait_job(j["job_id"], timeout=240)
            e.check(done["state"] == "PARTIAL_SUCCESS" and done["success"] == N - N // 10,
                    "finished once the topic could be made: %s" % done)
            evs = e.kcat_consume(m["topic"], timeout=60, bootstrap=k.bootstrap())
            rows = collections.Counter(x["headers"].get("row") for x in evs if x["headers"].get("job") == j["job_id"])
            e.check(len(rows) == N - N // 10 and max(rows.values()) == 1, "exactly once: %d distinct" % len(rows))


if __name__ == "__main__":
    e.run_tests(globals())
