/* topic_delete.c -- bok-topic-delete: deletes Kafka topics, for tests.
 *
 *   bok-topic-delete BROKERS TIMEOUT_MS TOPIC...
 *
 * The e2e harness calls it when a Stack stops, for the rows topic and the
 * events topics that stack made: every stack's topics have unique names, and
 * a broker that keeps all of them runs out of file descriptors after a few
 * suites (each partition holds open files). A topic that does not exist is
 * not an error. Exit 0 when every topic is gone or was never there; 1 with a
 * message per topic on stderr otherwise. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(rd_kafka_event_t *ev) {
  size_t n = 0;
  const rd_kafka_topic_result_t **res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
    fprintf(stderr, "bok-topic-delete: %s: %s\n", rd_kafka_topic_result_name(res[i]),
            rd_kafka_topic_result_error_string(res[i]) ? rd_kafka_topic_result_error_string(res[i]) : rd_kafka_err2str(e));
    bad = 1;
  }
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bok-topic-delete BROKERS TIMEOUT_MS TOPIC...\n");
    return 2;
  }
  int timeout_ms = atoi(argv[2]), ntopics = argc - 3, rc = 1;
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err)) {
    fprintf(stderr, "bok-topic-delete: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return 1;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "bok-topic-delete: %s\n", err);
    return 1;
  }
  rd_kafka_DeleteTopic_t **del = calloc((size_t)ntopics, sizeof *del);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
  if (!del || !q || !opt) goto out;
  rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, sizeof err);
  rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, err, sizeof err);
  for (int i = 0; i < ntopics; i++) del[i] = rd_kafka_DeleteTopic_new(argv[3 + i]);
  rd_kafka_DeleteTopics(rk, del, (size_t)ntopics, opt, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
  if (!ev) {
    fprintf(stderr, "bok-topic-delete: no answer in %d ms\n", timeout_ms + 2000);
  } else if (rd_kafka_event_error(ev)) {
    fprintf(stderr, "bok-topic-delete: %s\n", rd_kafka_event_error_string(ev));
  } else {
    rc = check(ev);
  }
  if (ev) rd_kafka_event_destroy(ev);
  for (int i = 0; i < ntopics; i++) rd_kafka_DeleteTopic_destroy(del[i]);
out:
  free(del);
  if (opt) rd_kafka_AdminOptions_destroy(opt);
  if (q) rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  return rc;
}
