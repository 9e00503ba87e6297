/* Header check at upload (issue 14): case and space mismatches, unknown and
 * missing columns become warnings with exact messages; a good header has
 * none. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "header_check.h"

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"integer\",\"format\":\"unix-time\"},\"amount\":{\"type\":\"number\"},"
    "\"note\":{\"type\":\"string\"}},\"required\":[\"amount\"]}";

static bok_schema_t *schema(const char *json) {
  bok_schema_t *s = NULL;
  char err[200];
  assert_int_equal(bok_schema_compile(json, strlen(json), &s, err, sizeof err), 0);
  return s;
}

static size_t check(bok_schema_t *s, const char *header, job_warnings_t *w) {
  memset(w, 0, sizeof *w);
  return job_header_check(s, header, strlen(header), ',', w);
}

static void test_good_header_has_no_warning(void **st) {
  (void)st;
  bok_schema_t *s = schema(SCHEMA);
  job_warnings_t w;
  assert_int_equal(check(s, "event_id,timestamp,amount", &w), 0); /* optional 'note' may be absent */
  assert_int_equal(check(s, "amount,note,timestamp,event_id", &w), 0);
  job_warnings_free(&w);
  bok_schema_destroy(s);
}

static void test_case_and_spaces(void **st) {
  (void)st;
  bok_schema_t *s = schema(SCHEMA);
  job_warnings_t w;
  assert_int_equal(check(s, "event_id,Timestamp,\" amount \"", &w), 2);
  assert_string_equal(w.w[0].code, "HEADER_CASE_MISMATCH");
  assert_string_equal(w.w[0].column, "timestamp");
  assert_string_equal(w.w[0].message,
                      "the header has 'Timestamp' but the schema expects 'timestamp' (column names are case-sensitive)");
  assert_string_equal(w.w[1].code, "HEADER_CASE_MISMATCH");
  assert_string_equal(w.w[1].column, "amount");
  assert_string_equal(w.w[1].message,
                      "the header has ' amount ' but the schema expects 'amount' (remove the spaces around the name)");
  job_warnings_free(&w);
  bok_schema_destroy(s);
}

static void test_unknown_and_missing(void **st) {
  (void)st;
  bok_schema_t *s = schema(SCHEMA);
  job_warnings_t w;
  /* amount (required) and event_id/timestamp (event columns) are missing */
  assert_int_equal(check(s, "note,colour", &w), 4);
  assert_string_equal(w.w[0].code, "HEADER_UNKNOWN_COLUMN");
  assert_string_equal(w.w[0].column, "colour");
  assert_string_equal(w.w[0].message, "the header has 'colour', which the schema does not know: rows with a value in it are "
                                      "rejected with EXTRA_COLUMN (remove the column, or add it to the schema)");
  assert_string_equal(w.w[1].code, "HEADER_MISSING_COLUMN");
  assert_string_equal(w.w[1].column, "event_id");
  assert_string_equal(w.w[3].column, "amount");
  assert_string_equal(w.w[3].message,
                      "the required column 'amount' is not in the header: every row is rejected with MISSING_COLUMN");
  job_warnings_free(&w);
  bok_schema_destroy(s);
}

static void test_exact_column_wins_over_a_near_one(void **st) {
  (void)st;
  bok_schema_t *s = schema(SCHEMA);
  job_warnings_t w;
  /* 'Amount' next to 'amount' is just an unknown column */
  assert_int_equal(check(s, "event_id,timestamp,Amount,amount", &w), 1);
  assert_string_equal(w.w[0].code, "HEADER_UNKNOWN_COLUMN");
  assert_string_equal(w.w[0].column, "Amount");
  job_warnings_free(&w);
  bok_schema_destroy(s);
}

static void test_additional_properties_allow_unknown(void **st) {
  (void)st;
  bok_schema_t *s = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
                           "\"additionalProperties\":true}");
  job_warnings_t w;
  assert_int_equal(check(s, "a,b,c", &w), 0);
  job_warnings_free(&w);
  bok_schema_destroy(s);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_good_header_has_no_warning), cmocka_unit_test(test_case_and_spaces),
                                 cmocka_unit_test(test_unknown_and_missing),
                                 cmocka_unit_test(test_exact_column_wins_over_a_near_one),
                                 cmocka_unit_test(test_additional_properties_allow_unknown)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
