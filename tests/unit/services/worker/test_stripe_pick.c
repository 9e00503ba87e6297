/* How a worker lane shares itself between tenant stripes (loop.c
 * wk_stripe_pick, docs/FAIRNESS.md): the waiting stripe served the fewest
 * rows goes next, so busy stripes get equal rows whatever their batch sizes;
 * a stripe that had nothing waiting does not bank a credit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "worker_int.h"

static void test_nothing_waiting_picks_nothing(void **state) {
  (void)state;
  int64_t served[2] = {0, 0};
  int waiting[2] = {0, 0};
  assert_int_equal(wk_stripe_pick(served, waiting, 2, 1000), -1);
  assert_int_equal(served[0], 0);
  assert_int_equal(served[1], 0);
}

/* Two busy stripes whose batches differ in size (1000 vs 400 rows: a lane
 * ends a batch early when a stripe's queue runs dry) still get equal rows. */
static void test_busy_stripes_get_equal_rows(void **state) {
  (void)state;
  int64_t served[2] = {0, 0};
  int waiting[2] = {1, 1};
  const int64_t batch[2] = {1000, 400};
  for (int i = 0; i < 1000; i++) {
    int s = wk_stripe_pick(served, waiting, 2, 1000);
    assert_true(s == 0 || s == 1);
    served[s] += batch[s];
  }
  int64_t d = served[0] - served[1];
  assert_true(d <= 1000 && d >= -1000); /* within one batch */
}

/* Stripe 1 idle while stripe 0 is served 50 batches: when it has rows again
 * it gets one batch ahead at most, not 50 in a row. */
static void test_an_idle_stripe_banks_no_credit(void **state) {
  (void)state;
  int64_t served[2] = {0, 0};
  int waiting[2] = {1, 0};
  for (int i = 0; i < 50; i++) {
    assert_int_equal(wk_stripe_pick(served, waiting, 2, 1000), 0);
    served[0] += 1000;
  }
  waiting[1] = 1;
  int run1 = 0;
  for (int i = 0; i < 10; i++) {
    int s = wk_stripe_pick(served, waiting, 2, 1000);
    served[s] += 1000;
    run1 = s == 1 ? run1 + 1 : 0;
    assert_true(run1 <= 2);
  }
  int64_t d = served[0] - served[1];
  assert_true(d <= 1000 && d >= -1000);
}

/* Three stripes, one of them idle: the two busy ones alternate. */
static void test_three_stripes_one_idle(void **state) {
  (void)state;
  int64_t served[3] = {0, 0, 0};
  int waiting[3] = {1, 0, 1};
  int count[3] = {0, 0, 0};
  for (int i = 0; i < 100; i++) {
    int s = wk_stripe_pick(served, waiting, 3, 500);
    count[s]++;
    served[s] += 500;
  }
  assert_int_equal(count[1], 0);
  assert_int_equal(count[0], 50);
  assert_int_equal(count[2], 50);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nothing_waiting_picks_nothing),
      cmocka_unit_test(test_busy_stripes_get_equal_rows),
      cmocka_unit_test(test_an_idle_stripe_banks_no_credit),
      cmocka_unit_test(test_three_stripes_one_idle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
