/* When a lane's batch is full (loop.c wk_batch_full): by rows (~500 a
 * rows-topic message) or by payload bytes (kafka.batch_max_bytes), so a file
 * of large rows does not make one transaction of ~40 messages of up to 8 MB
 * each; a single message larger than the cap still makes a batch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "worker_int.h"

static void lane(worker_t *w, int rows, int64_t bytes) {
  memset(w, 0, sizeof *w);
  w->batch_max_rows = rows;
  w->batch_max_bytes = bytes;
}

static void test_full_by_rows(void **state) {
  (void)state;
  worker_t w;
  batch_t b;
  lane(&w, 20000, 8 << 20);
  memset(&b, 0, sizeof b);
  b.bytes = 39 * 40000; /* 39 messages of ~40 KB: 19,500 rows */
  assert_false(wk_batch_full(&w, &b, 39));
  b.bytes = 40 * 40000;
  assert_true(wk_batch_full(&w, &b, 40));
}

static void test_full_by_bytes(void **state) {
  (void)state;
  worker_t w;
  batch_t b;
  lane(&w, 20000, 8 << 20);
  memset(&b, 0, sizeof b);
  b.bytes = (8 << 20) - 1; /* 3 messages of large rows, just under the cap */
  assert_false(wk_batch_full(&w, &b, 3));
  b.bytes = 8 << 20;
  assert_true(wk_batch_full(&w, &b, 4));
}

static void test_first_message_always_taken(void **state) {
  (void)state;
  worker_t w;
  batch_t b;
  lane(&w, 20000, 1 << 20);
  memset(&b, 0, sizeof b);
  assert_false(wk_batch_full(&w, &b, 0)); /* empty: collect on */
  b.bytes = 0;
  lane(&w, 20000, 0); /* a cap of 0: one message per batch, never none */
  assert_false(wk_batch_full(&w, &b, 0));
  b.bytes = 5 << 20;
  assert_true(wk_batch_full(&w, &b, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_by_rows),
      cmocka_unit_test(test_full_by_bytes),
      cmocka_unit_test(test_first_message_always_taken),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
