/* A bulk batch cut short for express messages (results.c wk_batch_cut,
 * loop.c, docs/FAIRNESS.md): the transaction commits the offsets after the
 * messages that ran and no further, per partition, so the messages carried
 * into the next batch are neither skipped nor run twice; a failed
 * transaction still rewinds to the start of everything collected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "worker_int.h"

static rd_kafka_t *rk;
static rd_kafka_topic_t *rkt;

static int setup(void **state) {
  (void)state;
  char err[256];
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err); /* no broker needed */
  rkt = rk ? rd_kafka_topic_new(rk, "rows", NULL) : NULL;
  return rkt ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return 0;
}

static int64_t offset_of(const rd_kafka_topic_partition_list_t *l, int32_t p) {
  const rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_find(l, "rows", p);
  return e ? e->offset : -1;
}

/* Messages of partitions 1 and 2 interleaved: 1@10, 2@20, 1@11, 2@21, 1@12,
 * 3@30. Cut after three (1@10, 2@20, 1@11 ran): the next offsets are 1:12
 * and 2:21; 3 is not committed at all. The rewind list still holds every partition's start. */
static void test_cut_commits_what_ran_only(void **state) {
  (void)state;
  const int32_t part[6] = {1, 2, 1, 2, 1, 3};
  const int64_t off[6] = {10, 20, 11, 21, 12, 30};
  rd_kafka_message_t m[6];
  rd_kafka_message_t *msgs[6];
  batch_t b;
  memset(&b, 0, sizeof b);
  wk_batch_reset_offsets(&b);
  for (int i = 0; i < 6; i++) {
    memset(&m[i], 0, sizeof m[i]);
    m[i].rkt = rkt;
    m[i].partition = part[i];
    m[i].offset = off[i];
    msgs[i] = &m[i];
    wk_note_offset(&b, msgs[i]);
  }
  wk_batch_cut(&b, msgs, 3);
  assert_int_equal(b.next->cnt, 2);
  assert_int_equal(offset_of(b.next, 1), 12);
  assert_int_equal(offset_of(b.next, 2), 21);
  assert_int_equal(offset_of(b.next, 3), -1);
  assert_int_equal(offset_of(b.first, 1), 10);
  assert_int_equal(offset_of(b.first, 2), 20);
  assert_int_equal(offset_of(b.first, 3), 30);
  /* the next batch starts with the carried messages: its offsets follow on */
  batch_t c;
  memset(&c, 0, sizeof c);
  wk_batch_reset_offsets(&c);
  for (int i = 3; i < 6; i++) wk_note_offset(&c, msgs[i]);
  assert_int_equal(offset_of(c.first, 2), 21);
  assert_int_equal(offset_of(c.first, 1), 12);
  assert_int_equal(offset_of(c.next, 1), 13);
  assert_int_equal(offset_of(c.next, 3), 31);
  wk_batch_free(&b);
  wk_batch_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cut_commits_what_ran_only),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
