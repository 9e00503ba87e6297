/* When a lane's transaction takes another batch (loop.c wk_txn_more) and
 * how its offsets grow batch by batch (results.c wk_batch_merge_offsets):
 * a transaction runs full bulk batches back to back up to
 * kafka.txn_max_rows rows, kafka.batch_max_bytes of payload and
 * kafka.txn_max_ms, and commits at once for anything else -- a batch that
 * was not full (the job's last rows), an express message waiting, a lane
 * stopping, or transactions off. Its offsets to commit are the latest
 * batch's per partition, its rewind point the earliest batch's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker_int.h"

static worker_t *lane(void) {
  worker_t *w = calloc(1, sizeof *w);
  w->transactions = 1;
  w->txn_max_rows = 20000;
  w->batch_max_rows = 5000;
  w->txn_max_ms = 1000;
  w->batch_max_bytes = 8 << 20;
  w->txn.open = 1;
  w->txn.started_ms = 10000;
  w->txn.rows = 5000;
  w->txn.bytes = 500000;
  return w;
}

static void test_full_batches_share_a_transaction(void **state) {
  (void)state;
  worker_t *w = lane();
  assert_true(wk_txn_more(w, 1, 0, 10100));
  w->txn.rows = 15000;
  assert_true(wk_txn_more(w, 1, 0, 10999));
  free(w);
}

static void test_commits_at_each_limit(void **state) {
  (void)state;
  worker_t *w = lane();
  w->txn.rows = 20000; /* rows */
  assert_false(wk_txn_more(w, 1, 0, 10100));
  w->txn.rows = 5000;
  assert_false(wk_txn_more(w, 1, 0, 11000)); /* age */
  w->txn.bytes = 8 << 20;                    /* payload */
  assert_false(wk_txn_more(w, 1, 0, 10100));
  free(w);
}

static void test_commits_at_once_otherwise(void **state) {
  (void)state;
  worker_t *w = lane();
  assert_false(wk_txn_more(w, 0, 0, 10100)); /* not full: the rows there were */
  assert_false(wk_txn_more(w, 1, 1, 10100)); /* a small job waits */
  w->stop = 1;
  assert_false(wk_txn_more(w, 1, 0, 10100));
  w->stop = 0;
  w->transactions = 0; /* offsets committed per batch */
  assert_false(wk_txn_more(w, 1, 0, 10100));
  w->transactions = 1;
  w->txn_max_rows = 5000; /* txn_max_rows <= batch_max_rows: one batch per transaction */
  assert_false(wk_txn_more(w, 1, 0, 10100));
  w->txn.rows = 100; /* even when the batches are small (100-row messages) */
  assert_false(wk_txn_more(w, 1, 0, 10100));
  w->txn_max_rows = 0; /* off */
  assert_false(wk_txn_more(w, 1, 0, 10100));
  free(w);
}

static void note(batch_t *b, const char *topic, int part, int64_t first, int64_t next) {
  rd_kafka_topic_partition_list_add(b->first, topic, part)->offset = first;
  rd_kafka_topic_partition_list_add(b->next, topic, part)->offset = next;
}

static int64_t off(const rd_kafka_topic_partition_list_t *l, int part) {
  const rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, "rows", part);
  return p ? p->offset : -1;
}

static void test_offsets_first_of_earliest_next_of_latest(void **state) {
  (void)state;
  batch_t t, a, b;
  memset(&t, 0, sizeof t);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  wk_batch_reset_offsets(&t);
  wk_batch_reset_offsets(&a);
  wk_batch_reset_offsets(&b);
  note(&a, "rows", 1, 100, 110);
  note(&a, "rows", 2, 50, 60);
  note(&b, "rows", 1, 110, 120);
  note(&b, "rows", 3, 7, 9);
  wk_batch_merge_offsets(&t, &a);
  wk_batch_merge_offsets(&t, &b);
  assert_int_equal(t.first->cnt, 3);
  assert_int_equal(off(t.first, 1), 100); /* rewind to the first batch's start */
  assert_int_equal(off(t.next, 1), 120);  /* commit after the last batch */
  assert_int_equal(off(t.first, 2), 50);
  assert_int_equal(off(t.next, 2), 60);
  assert_int_equal(off(t.first, 3), 7);
  assert_int_equal(off(t.next, 3), 9);
  wk_batch_free(&t);
  wk_batch_free(&a);
  wk_batch_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_batches_share_a_transaction),
      cmocka_unit_test(test_commits_at_each_limit),
      cmocka_unit_test(test_commits_at_once_otherwise),
      cmocka_unit_test(test_offsets_first_of_earliest_next_of_latest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
