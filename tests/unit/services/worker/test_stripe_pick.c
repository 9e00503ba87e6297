/* How a worker lane shares itself between tenant stripes (loop.c
 * wk_stripe_pick, docs/FAIRNESS.md): the waiting stripe served the fewest
 * rows goes next, so busy stripes get equal rows whatever their batch sizes;
 * a stripe that had nothing waiting does not bank a credit; ties go to the
 * stripe served least recently, whatever its index. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "worker_int.h"

/* The lane's part (loop.c stripe_served): a committed batch of stripe s adds
 * its rows and stamps the stripe with the lane's batch count. */
static void serve(int64_t *served, int64_t *last, int64_t *batches, int s, int64_t rows) {
  served[s] += rows;
  last[s] = ++*batches;
}

static void test_nothing_waiting_picks_nothing(void **state) {
  (void)state;
  int64_t served[2] = {0, 0}, last[2] = {0, 0};
  int waiting[2] = {0, 0};
  assert_int_equal(wk_stripe_pick(served, last, waiting, 2), -1);
  assert_int_equal(served[0], 0);
  assert_int_equal(served[1], 0);
}

/* Two busy stripes whose batches differ in size (1000 vs 400 rows: a lane
 * ends a batch early when a stripe's queue runs dry) still get equal rows. */
static void test_busy_stripes_get_equal_rows(void **state) {
  (void)state;
  int64_t served[2] = {0, 0}, last[2] = {0, 0}, batches = 0;
  int waiting[2] = {1, 1};
  const int64_t batch[2] = {1000, 400};
  for (int i = 0; i < 1000; i++) {
    int s = wk_stripe_pick(served, last, waiting, 2);
    assert_true(s == 0 || s == 1);
    serve(served, last, &batches, s, batch[s]);
  }
  int64_t d = served[0] - served[1];
  assert_true(d <= 1000 && d >= -1000); /* within one batch */
}

/* Stripe 1 idle while stripe 0 is served 50 batches: when it has rows again
 * it gets the next batch, then they alternate; not 50 in a row. */
static void test_an_idle_stripe_banks_no_credit(void **state) {
  (void)state;
  int64_t served[2] = {0, 0}, last[2] = {0, 0}, batches = 0;
  int waiting[2] = {1, 0};
  for (int i = 0; i < 50; i++) {
    assert_int_equal(wk_stripe_pick(served, last, waiting, 2), 0);
    serve(served, last, &batches, 0, 1000);
  }
  waiting[1] = 1;
  int run1 = 0;
  for (int i = 0; i < 10; i++) {
    int s = wk_stripe_pick(served, last, waiting, 2);
    serve(served, last, &batches, s, 1000);
    run1 = s == 1 ? run1 + 1 : 0;
    assert_true(run1 <= 1);
  }
  int64_t d = served[0] - served[1];
  assert_true(d <= 1000 && d >= -1000);
}

/* Three stripes, one of them idle: the two busy ones alternate. */
static void test_three_stripes_one_idle(void **state) {
  (void)state;
  int64_t served[3] = {0, 0, 0}, last[3] = {0, 0, 0}, batches = 0;
  int waiting[3] = {1, 0, 1};
  int count[3] = {0, 0, 0};
  for (int i = 0; i < 100; i++) {
    int s = wk_stripe_pick(served, last, waiting, 3);
    count[s]++;
    serve(served, last, &batches, s, 500);
  }
  assert_int_equal(count[1], 0);
  assert_int_equal(count[0], 50);
  assert_int_equal(count[2], 50);
}

/* Equal rows served: the stripe served less recently goes next, the lower
 * index or the higher. */
static void test_a_tie_goes_to_the_stripe_served_least_recently(void **state) {
  (void)state;
  int64_t served[2] = {3000, 3000};
  int waiting[2] = {1, 1};
  int64_t last[2] = {7, 6};
  assert_int_equal(wk_stripe_pick(served, last, waiting, 2), 1);
  last[0] = 5;
  assert_int_equal(wk_stripe_pick(served, last, waiting, 2), 0);
}

/* Stripe `old` is served alone, then stripe `fresh` has rows too: seq[i] is
 * 1 when the i-th pick after that went to the newcomer. */
static void newcomer_picks(int old, int fresh, int *seq, int n) {
  int64_t served[2] = {0, 0}, last[2] = {0, 0}, batches = 0;
  int waiting[2] = {0, 0};
  waiting[old] = 1;
  for (int i = 0; i < 20; i++) serve(served, last, &batches, wk_stripe_pick(served, last, waiting, 2), 1000);
  waiting[fresh] = 1;
  for (int i = 0; i < n; i++) {
    int s = wk_stripe_pick(served, last, waiting, 2);
    seq[i] = s == fresh;
    serve(served, last, &batches, s, 1000);
  }
}

/* A newcomer takes the same turns whichever stripe it is on: the next
 * batch (it is one batch behind once the other's commits), then one batch
 * each: B A B A ... With ties to the lower index and the idle stripe lifted
 * a batch below the other's count before that one's batch, a newcomer on
 * stripe 0 took B B B A B A ...: three of a lane's first four batches. */
static void test_a_newcomer_gets_the_same_turns_on_either_stripe(void **state) {
  (void)state;
  enum { N = 12 };
  int on0[N], on1[N];
  newcomer_picks(1, 0, on0, N);
  newcomer_picks(0, 1, on1, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(on0[i], on1[i]);
    assert_int_equal(on0[i], i % 2 == 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nothing_waiting_picks_nothing),
      cmocka_unit_test(test_busy_stripes_get_equal_rows),
      cmocka_unit_test(test_an_idle_stripe_banks_no_credit),
      cmocka_unit_test(test_three_stripes_one_idle),
      cmocka_unit_test(test_a_tie_goes_to_the_stripe_served_least_recently),
      cmocka_unit_test(test_a_newcomer_gets_the_same_turns_on_either_stripe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
