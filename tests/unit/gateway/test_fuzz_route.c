/* Regression tests for what tests/fuzz/fuzz_route.c found in gateway/route.c
 * (the fuzzer's inputs, minimised). docs/SECURITY.md lists them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "route.h"

/* fuzz_route: v * 10 + digit overflowed int64 before the range check
 * (undefined behaviour; the normal build wrapped to a negative count and
 * accepted it: GET /jobs/{id}/rejected?after_row=9223372036854775808 served
 * page 1). Every count past the maximum is refused, whatever the maximum. */
static void test_parse_count_never_overflows(void **st) {
  (void)st;
  int64_t v = 7;
  assert_int_equal(gw_parse_count("9223372036854775808", INT64_MAX / 10, &v), -1);
  assert_int_equal(gw_parse_count("9223372036854775808", INT64_MAX, &v), -1);
  assert_int_equal(gw_parse_count("99999999999999999999", INT64_MAX, &v), -1);
  assert_int_equal(v, 7); /* untouched on refusal */
  assert_int_equal(gw_parse_count("9223372036854775807", INT64_MAX, &v), 0);
  assert_int_equal(v, INT64_MAX);
  assert_int_equal(gw_parse_count("922337203685477580", INT64_MAX / 10, &v), 0);
  assert_int_equal(v, INT64_MAX / 10);
  assert_int_equal(gw_parse_count("922337203685477581", INT64_MAX / 10, &v), -1);
  assert_int_equal(gw_parse_count("7", 5, &v), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_count_never_overflows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
