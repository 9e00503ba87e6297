/* lib/base: bok_timespec_add_ms / bok_time_deadline (bok/util.h), the
 * "now + ms" deadline for pthread_cond_timedwait. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "bok/util.h"

#define NS 1000000000LL

static struct timespec ts(time_t s, long ns) {
  struct timespec t = {.tv_sec = s, .tv_nsec = ns};
  return t;
}

static void expect(struct timespec got, time_t s, long ns) {
  assert_int_equal((int64_t)got.tv_sec, (int64_t)s);
  assert_int_equal((int64_t)got.tv_nsec, (int64_t)ns);
}

static void test_add_zero(void **st) {
  (void)st;
  expect(bok_timespec_add_ms(ts(100, 0), 0), 100, 0);
  expect(bok_timespec_add_ms(ts(100, 999999999), 0), 100, 999999999);
}

static void test_add_no_carry(void **st) {
  (void)st;
  expect(bok_timespec_add_ms(ts(100, 0), 999), 100, 999000000);
  expect(bok_timespec_add_ms(ts(100, 500), 50), 100, 50000500);
}

static void test_add_carry(void **st) {
  (void)st;
  /* 999 ms onto 1 ms past the second: exactly the next second. */
  expect(bok_timespec_add_ms(ts(100, 1000000), 999), 101, 0);
  expect(bok_timespec_add_ms(ts(100, 999999999), 999), 101, 998999999);
  expect(bok_timespec_add_ms(ts(100, 999999999), 1), 101, 999999);
  /* 50 ms, the gateway sweeper's step, across a second. */
  expect(bok_timespec_add_ms(ts(100, 960000000), 50), 101, 10000000);
}

static void test_add_whole_seconds(void **st) {
  (void)st;
  expect(bok_timespec_add_ms(ts(100, 0), 1000), 101, 0);
  expect(bok_timespec_add_ms(ts(100, 123456789), 1000), 101, 123456789);
  expect(bok_timespec_add_ms(ts(100, 999999999), 1000), 101, 999999999);
  expect(bok_timespec_add_ms(ts(100, 0), 2000), 102, 0);
}

static void test_add_mixed(void **st) {
  (void)st;
  expect(bok_timespec_add_ms(ts(100, 0), 1500), 101, 500000000);
  expect(bok_timespec_add_ms(ts(100, 400000000), 1500), 101, 900000000);
  expect(bok_timespec_add_ms(ts(100, 500000000), 1500), 102, 0);
  expect(bok_timespec_add_ms(ts(100, 700000000), 1500), 102, 200000000);
  /* Large: an hour and a bit, no overflow of ms * 1e6 in 32 bits. */
  expect(bok_timespec_add_ms(ts(100, 900000000), 3600250), 3701, 150000000);
}

static void test_add_negative(void **st) {
  (void)st;
  expect(bok_timespec_add_ms(ts(100, 500000000), -1), 100, 499000000);
  expect(bok_timespec_add_ms(ts(100, 0), -1), 99, 999000000);
  expect(bok_timespec_add_ms(ts(100, 0), -1500), 98, 500000000);
}

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * NS + t.tv_nsec; }

/* The deadline is read from the clock asked for: between before + ms and
 * after + ms, tv_nsec normalised. */
static void check_deadline(clockid_t clock, int64_t ms) {
  struct timespec before, after;
  clock_gettime(clock, &before);
  struct timespec d = bok_time_deadline(clock, ms);
  clock_gettime(clock, &after);
  assert_true(d.tv_nsec >= 0 && d.tv_nsec < NS);
  assert_true(ns_of(d) >= ns_of(before) + ms * 1000000);
  assert_true(ns_of(d) <= ns_of(after) + ms * 1000000);
}

static void test_deadline_clocks(void **st) {
  (void)st;
  static const int64_t ms[] = {0, 1, 50, 999, 1000, 1500, 2000};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
    check_deadline(CLOCK_REALTIME, ms[i]);
    check_deadline(CLOCK_MONOTONIC, ms[i]);
  }
}

/* A real wait on a condvar of each clock times out, not at once and not late. */
static void timed_wait(clockid_t clock) {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, clock);
  pthread_cond_init(&cv, &ca);
  pthread_condattr_destroy(&ca);
  int64_t t0 = bok_mono_ms();
  pthread_mutex_lock(&mu);
  struct timespec d = bok_time_deadline(clock, 30);
  int rc;
  while ((rc = pthread_cond_timedwait(&cv, &mu, &d)) == 0) {
  }
  pthread_mutex_unlock(&mu);
  int64_t took = bok_mono_ms() - t0;
  assert_int_equal(rc, ETIMEDOUT);
  assert_true(took >= 25);
  assert_true(took < 5000);
  pthread_cond_destroy(&cv);
}

static void test_deadline_waits(void **st) {
  (void)st;
  timed_wait(CLOCK_REALTIME);
  timed_wait(CLOCK_MONOTONIC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_zero),        cmocka_unit_test(test_add_no_carry),
      cmocka_unit_test(test_add_carry),       cmocka_unit_test(test_add_whole_seconds),
      cmocka_unit_test(test_add_mixed),       cmocka_unit_test(test_add_negative),
      cmocka_unit_test(test_deadline_clocks), cmocka_unit_test(test_deadline_waits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
