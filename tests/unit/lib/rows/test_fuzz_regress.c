/* Regression tests for the crashes and broken promises tests/fuzz found in
 * lib/rows (one test per finding, named after the fuzz target; the input is
 * the fuzzer's, minimised). docs/SECURITY.md lists them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

/* Detects a schema for `csv` and validates every data row with it: detect.h
 * promises the suggestion accepts its own sample. Returns the rows refused. */
static int detect_then_validate(const char *csv, size_t len, char sep) {
  char err[256];
  char *json = bok_detect_schema(csv, len, sep, 0, err, sizeof err);
  assert_non_null(json);
  bok_schema_t *s = NULL;
  assert_int_equal(bok_schema_compile(json, strlen(json), &s, err, sizeof err), 0);
  const char *nl = memchr(csv, '\n', len);
  assert_non_null(nl);
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_CSV, csv, (size_t)(nl - csv), sep, err, sizeof err);
  assert_non_null(v);
  bok_row_result_t r;
  bok_row_result_init(&r);
  int refused = 0;
  int64_t row = 1;
  for (const char *p = nl + 1, *end = csv + len; p < end; row++) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    if (!bok_validator_row(v, row, p, (size_t)(e - p), NULL, &r)) refused++;
    p = e + 1;
  }
  bok_row_result_free(&r);
  bok_validator_destroy(v);
  bok_schema_destroy(s);
  free(json);
  return refused;
}

/* fuzz_detect: a cell holding a NUL byte was detected as the integer 0 (and
 * "1\0" as 1), so the suggested schema refused its own sample. */
static void test_detect_nul_cell_is_not_a_number(void **st) {
  (void)st;
  assert_int_equal(detect_then_validate("z\n\0", 3, '\t'), 0);
  assert_int_equal(detect_then_validate("z\n1\0\n2", 6, ','), 0);
  assert_int_equal(detect_then_validate("z\n1.5\0\n2", 8, ','), 0);
}

/* fuzz_detect: 9223372036854775808 (INT64_MAX + 1, 19 digits) passed the
 * overflow check of detection's integer test, so the column became INTEGER
 * and the validator refused that cell. */
static void test_detect_int64_overflow_is_not_an_integer(void **st) {
  (void)st;
  static const char csv[] = "n,m\n9223372036854775807,-9223372036854775808\n9223372036854775808,1\n"
                            "-9223372036854775809,2\n";
  assert_int_equal(detect_then_validate(csv, sizeof csv - 1, ','), 0);
}

/* fuzz_detect: "1e3700000002" overflows to infinity; detection called the
 * column FLOAT (its rule says finite numbers) and the validator refused it. */
static void test_detect_infinite_number_is_not_a_float(void **st) {
  (void)st;
  static const char csv[] = "f\n1.5\n1e3700000002\n-1e999\n";
  assert_int_equal(detect_then_validate(csv, sizeof csv - 1, ','), 0);
}

/* fuzz_detect: a "timestamp" column of integers outside 32 bits was
 * detected as INTEGER yet kept as the event time, which must be a 32-bit
 * Unix time: its own sample was refused (INVALID_TIMESTAMP). */
static void test_detect_wide_timestamp_is_not_the_event_time(void **st) {
  (void)st;
  static const char csv[] = "event_id,timestamp\n1,17001700000002\n2,1700000000\n";
  assert_int_equal(detect_then_validate(csv, sizeof csv - 1, ','), 0);
}

/* fuzz_detect: a cell of spaces or tabs is blank to the validator but was
 * a value to detection, so the column was required and its own sample was
 * refused (NULL_VALUE). */
static void test_detect_whitespace_cell_is_blank(void **st) {
  (void)st;
  static const char csv[] = "a,b\nx,1\n\t,2\n  ,3\n";
  assert_int_equal(detect_then_validate(csv, sizeof csv - 1, ','), 0);
}

/* fuzz_detect: category values were kept as C strings, so "a\0b" became
 * the enum value "a" and the validator refused the cell (NOT_A_CATEGORY). */
static void test_detect_nul_value_is_not_a_category(void **st) {
  (void)st;
  static const char csv[] = "c\na\0b\nx\nx\nx\n";
  assert_int_equal(detect_then_validate(csv, sizeof csv - 1, ','), 0);
}

/* fuzz_detect: header " a" (left out for its blank) then "a": detection
 * described the second column, but the validator trims header names and
 * reads "a" from the first, blank one (NULL_VALUE). */
static void test_detect_blank_padded_name_hides_its_twin(void **st) {
  (void)st;
  static const char csv[] = " a,a,b\n,1,x\n,2,y\n";
  assert_int_equal(detect_then_validate(csv, sizeof csv - 1, ','), 0);
}

/* fuzz_detect: strtoll skips a leading "\r\n" or "\v", so such a quoted
 * cell counted as an integer; the validator refused it (NOT_AN_INTEGER). */
static void test_detect_newline_before_digits_is_not_an_integer(void **st) {
  (void)st;
  static const char csv[] = "n\n\"\r\n1003\"\n\v7\n5\n";
  char err[256];
  char *json = bok_detect_schema(csv, sizeof csv - 1, ',', 0, err, sizeof err);
  assert_non_null(json);
  assert_null(strstr(json, "integer")); /* column n is a STRING */
  free(json);
}

/* fuzz_proto: the worker checks each row of a RowBatch with
 * bok_utf8_valid(raw.data, raw.len); protobuf-c leaves raw.data NULL for an
 * empty row, and NULL + 0 is undefined behaviour (UBSan aborts the ASan
 * build; this test fails there without the fix). */
static void test_utf8_valid_empty_null(void **st) {
  (void)st;
  assert_int_equal(bok_utf8_valid(NULL, 0), 1);
  assert_int_equal(bok_utf8_valid("", 0), 1);
  assert_int_equal(bok_utf8_valid("\xff", 1), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_detect_nul_cell_is_not_a_number),
      cmocka_unit_test(test_detect_int64_overflow_is_not_an_integer),
      cmocka_unit_test(test_detect_infinite_number_is_not_a_float),
      cmocka_unit_test(test_detect_wide_timestamp_is_not_the_event_time),
      cmocka_unit_test(test_detect_whitespace_cell_is_blank),
      cmocka_unit_test(test_detect_nul_value_is_not_a_category),
      cmocka_unit_test(test_detect_blank_padded_name_hides_its_twin),
      cmocka_unit_test(test_detect_newline_before_digits_is_not_an_integer),
      cmocka_unit_test(test_utf8_valid_empty_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
