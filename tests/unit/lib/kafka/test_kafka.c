/* test_kafka.c -- lib/kafka against librdkafka's mock cluster: an existing
 * topic is left alone without CreateTopics by a client that cannot
 * auto-create topics (the worker's producer), so a controller that does not
 * answer does not matter. The mock of librdkafka 2.0.2 never answers a
 * CreateTopics (and creates missing topics on a metadata request, so the
 * creation path cannot be tested here: the e2e tests cover it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bok/kafka.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (bok/kafka.h) */

static rd_kafka_t *g_mock_rk;
static rd_kafka_mock_cluster_t *g_mock;

static int setup(void **state) {
  (void)state;
  char err[256];
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "log_level", "0", NULL, 0);
  g_mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  assert_non_null(g_mock_rk);
  g_mock = rd_kafka_mock_cluster_new(g_mock_rk, 3);
  assert_non_null(g_mock);
  assert_int_equal(rd_kafka_mock_topic_create(g_mock, "events", 4, 3), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rd_kafka_mock_cluster_destroy(g_mock);
  rd_kafka_destroy(g_mock_rk);
  return 0;
}

/* A producer of the mock cluster; auto_create "false" like the worker's. */
static rd_kafka_t *producer(const char *auto_create) {
  char err[256];
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(g_mock), err,
                                     sizeof err),
                   RD_KAFKA_CONF_OK);
  assert_int_equal(rd_kafka_conf_set(c, "allow.auto.create.topics", auto_create, err, sizeof err), RD_KAFKA_CONF_OK);
  rd_kafka_conf_set(c, "log_level", "0", NULL, 0);
  rd_kafka_t *rk = bok_kafka_client_new(RD_KAFKA_PRODUCER, c, -1, err, sizeof err);
  assert_non_null(rk);
  return rk;
}

static void test_existing_topic_is_left_alone_without_create_topics(void **state) {
  (void)state;
  rd_kafka_t *rk = producer("false");
  char err[256] = "";
  time_t t0 = time(NULL);
  int rc = bok_kafka_topic_ensure(rk, "events", 4, NULL, NULL, NULL, 5000, err, sizeof err);
  if (rc != 0) print_message("ensure: %s\n", err);
  assert_int_equal(rc, 0);
  assert_true(time(NULL) - t0 < 5);
  rd_kafka_destroy(rk);
}

/* The same with broker 1 down and the topic's partitions led by the other
 * two, as after a failover, and a fresh client (the case of the CI stall of
 * 2026-11-29: a CreateTopics sent to a dead controller got no answer). The
 * metadata check waits long enough for the client to reach a live broker. */
static void test_existing_topic_ok_with_a_broker_down(void **state) {
  (void)state;
  for (int p = 0; p < 4; p++) assert_int_equal(rd_kafka_mock_partition_set_leader(g_mock, "events", p, 2 + p % 2), 0);
  assert_int_equal(rd_kafka_mock_broker_set_down(g_mock, 1), 0);
  rd_kafka_t *rk = producer("false");
  char err[256] = "";
  int rc = bok_kafka_topic_ensure(rk, "events", 4, NULL, NULL, NULL, 5000, err, sizeof err);
  if (rc != 0) print_message("ensure: %s\n", err);
  assert_int_equal(rc, 0);
  rd_kafka_destroy(rk);
  assert_int_equal(rd_kafka_mock_broker_set_up(g_mock, 1), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_existing_topic_is_left_alone_without_create_topics),
      cmocka_unit_test(test_existing_topic_ok_with_a_broker_down),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
