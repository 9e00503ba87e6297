/* RFC 3339 date-times: the parser's edge cases (calendar, offsets,
 * fractions, case, ranges, trailing bytes), UTC formatting, and date-time
 * TIMESTAMP columns in the validator (event JSON, event time, messages). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

static int64_t ms_of(const char *s) {
  int64_t ms = 0;
  if (bok_rfc3339_parse(s, strlen(s), &ms) != 0) fail_msg("'%s' should parse", s);
  return ms;
}

static const char *utc(const char *s) {
  static char out[BOK_RFC3339_LEN + 1];
  assert_int_equal(bok_rfc3339_format_ms(ms_of(s), out), BOK_RFC3339_LEN);
  return out;
}

static void test_valid_times(void **st) {
  (void)st;
  assert_int_equal(ms_of("1970-01-01T00:00:00Z"), 0);
  assert_int_equal(ms_of("2024-05-01T12:00:00Z"), 1714564800000LL);
  assert_int_equal(ms_of("2024-05-01T12:00:00+02:00"), 1714564800000LL - 7200000);
  assert_int_equal(ms_of("2024-05-01T12:00:00-00:00"), 1714564800000LL);
  assert_int_equal(ms_of("2024-05-01t12:00:00z"), 1714564800000LL); /* lower-case t and z */
  assert_int_equal(ms_of("2024-05-01 12:00:00Z"), 1714564800000LL); /* RFC 3339 5.6 note: a space */
  /* fractions of 1 to 9 digits, cut to milliseconds */
  assert_int_equal(ms_of("2024-05-01T12:00:00.5Z"), 1714564800500LL);
  assert_int_equal(ms_of("2024-05-01T12:00:00.12Z"), 1714564800120LL);
  assert_int_equal(ms_of("2024-05-01T12:00:00.123Z"), 1714564800123LL);
  assert_int_equal(ms_of("2024-05-01T12:00:00.123999999Z"), 1714564800123LL);
  assert_int_equal(ms_of("1969-12-31T23:59:59.999Z"), -1);
  /* leap years */
  assert_string_equal(utc("2024-02-29T00:00:00Z"), "2024-02-29T00:00:00.000Z");
  assert_string_equal(utc("2000-02-29T23:59:59.999+00:00"), "2000-02-29T23:59:59.999Z");
  assert_string_equal(utc("2024-02-28T23:30:00-01:00"), "2024-02-29T00:30:00.000Z");
  assert_string_equal(utc("2023-03-01T00:30:00+01:00"), "2023-02-28T23:30:00.000Z");
  /* offsets cross days, months, years */
  assert_string_equal(utc("2024-05-01T12:00:00+02:00"), "2024-05-01T10:00:00.000Z");
  assert_string_equal(utc("2024-12-31T23:00:00-23:59"), "2025-01-01T22:59:00.000Z");
  assert_string_equal(utc("2025-01-01T00:00:00+23:59"), "2024-12-31T00:01:00.000Z");
  /* years 0000 and 9999, before 1970 */
  assert_string_equal(utc("0000-01-01T00:00:00Z"), "0000-01-01T00:00:00.000Z");
  assert_string_equal(utc("0000-02-29T12:00:00Z"), "0000-02-29T12:00:00.000Z"); /* year 0 is a leap year */
  assert_string_equal(utc("9999-12-31T23:59:59.999999999Z"), "9999-12-31T23:59:59.999Z");
  assert_string_equal(utc("1900-03-01T00:00:00Z"), "1900-03-01T00:00:00.000Z");
  assert_string_equal(utc("1969-07-20T20:17:40.1Z"), "1969-07-20T20:17:40.100Z");
}

static void test_invalid_times(void **st) {
  (void)st;
  const char *bad[] = {
      "", "2024-05-01", "2024-05-01T12:00:00", /* no offset */
      "2024-05-01T12:00Z", "2024-5-01T12:00:00Z", "24-05-01T12:00:00Z", "2024/05/01T12:00:00Z",
      "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z", /* no such days */
      "2024-00-01T00:00:00Z", "2024-13-01T00:00:00Z", "2024-05-00T00:00:00Z", "2024-05-32T00:00:00Z",
      "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:00:60Z", /* no leap second */
      "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00.1234567890Z", "2024-05-01T12:00:00,5Z",
      "2024-05-01T12:00:00+2:00", "2024-05-01T12:00:00+0200", "2024-05-01T12:00:00+02", "2024-05-01T12:00:00+24:00",
      "2024-05-01T12:00:00+02:60", "2024-05-01T12:00:00UTC", "2024-05-01T12:00:00Zjunk", "2024-05-01T12:00:00Z ",
      " 2024-05-01T12:00:00Z", "2024-05-01X12:00:00Z", "+2024-05-01T12:00:00Z", "-001-05-01T12:00:00Z",
      "0000-01-01T00:00:00+00:01", /* before year 0000 in UTC */
      "9999-12-31T23:59:59-00:01", /* after year 9999 in UTC */
      "1714564800", "2024-05-01T12:00:00\xef\xbc\xba",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms = 42;
    if (bok_rfc3339_parse(bad[i], strlen(bad[i]), &ms) == 0) fail_msg("'%s' should not parse", bad[i]);
    assert_int_equal(ms, 42);
  }
  /* length-bounded: bytes past len are not read */
  int64_t ms;
  assert_int_equal(bok_rfc3339_parse("2024-05-01T12:00:00Zgarbage", 20, &ms), 0);
  assert_int_equal(bok_rfc3339_parse("2024-05-01T12:00:00+02:00", 24, &ms), -1);
  char out[BOK_RFC3339_LEN + 1];
  assert_int_equal(bok_rfc3339_format_ms(253402300800000LL, out), -1);
  assert_int_equal(bok_rfc3339_format_ms(-62167219200001LL, out), -1);
}

static bok_schema_t *compile(const char *json) {
  bok_schema_t *s = NULL;
  char err[256];
  if (bok_schema_compile(json, strlen(json), &s, err, sizeof err) != 0) fail_msg("compile: %s", err);
  return s;
}

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"},\"seen\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"unix\":{\"type\":\"integer\",\"format\":\"unix-time\"}},\"required\":[\"event_id\"]}";

static void test_date_time_columns(void **st) {
  (void)st;
  bok_schema_t *s = compile(SCHEMA);
  assert_int_equal(bok_schema_event_time_col(s), 1); /* "timestamp" is the event time by default */
  assert_int_equal(bok_schema_col(s, 1)->type, BOK_COL_TIMESTAMP);
  assert_int_equal(bok_schema_col(s, 1)->date_time, 1);
  assert_int_equal(bok_schema_col(s, 3)->date_time, 0);
  char err[200];
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_CSV, "event_id,timestamp,seen,unix", 28, ',', err, sizeof err);
  bok_row_result_t r;
  bok_row_result_init(&r);
  const char *row = "e1,2024-05-01T12:00:00+02:00, 1969-12-31T23:00:00.5-01:00 ,1700000000";
  assert_int_equal(bok_validator_row(v, 1, row, strlen(row), NULL, &r), 1);
  assert_string_equal(r.event.data, "{\"event_id\":\"e1\",\"timestamp\":\"2024-05-01T10:00:00.000Z\","
                                    "\"seen\":\"1970-01-01T00:00:00.500Z\",\"unix\":1700000000}");
  assert_int_equal(r.event_time_ms, 1714557600000LL);
  /* before 1970: the event time is negative (the worker then uses the
   * processing time as the Kafka timestamp) */
  row = "e2,1960-01-01T00:00:00Z,,";
  assert_int_equal(bok_validator_row(v, 2, row, strlen(row), NULL, &r), 1);
  assert_int_equal(r.event_time_ms, -315619200000LL);
  assert_string_equal(r.event.data, "{\"event_id\":\"e2\",\"timestamp\":\"1960-01-01T00:00:00.000Z\",\"seen\":null,\"unix\":null}");
  /* invalid values: the event time's own message, NOT_A_TIMESTAMP elsewhere */
  row = "e3,2024-02-30T00:00:00Z,1714564800,2024-05-01T12:00:00Z";
  assert_int_equal(bok_validator_row(v, 3, row, strlen(row), NULL, &r), 0);
  assert_int_equal(r.nrejects, 3);
  assert_string_equal(r.rejects[0].code, "INVALID_TIMESTAMP");
  assert_string_equal(r.rejects[0].type, "TIMESTAMP");
  assert_string_equal(r.rejects[0].observed, "\"2024-02-30T00:00:00Z\"");
  assert_string_equal(r.rejects[0].message,
                      "The 'timestamp' value is invalid. Please provide an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z).");
  assert_string_equal(r.rejects[1].code, "NOT_A_TIMESTAMP");
  assert_string_equal(r.rejects[1].message,
                      "The value for 'seen' is not a timestamp. Use an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z).");
  /* unix-time columns keep the guide's 32-bit rule and message */
  assert_string_equal(r.rejects[2].code, "NOT_A_TIMESTAMP");
  assert_string_equal(r.rejects[2].message, "The value for 'unix' is not a timestamp. Use a 32-bit Unix timestamp.");
  row = "e4,,,";
  assert_int_equal(bok_validator_row(v, 4, row, strlen(row), NULL, &r), 0);
  assert_int_equal(r.nrejects, 1);
  assert_null(r.rejects[0].observed);
  assert_string_equal(r.rejects[0].message,
                      "The 'timestamp' value is invalid. Please provide an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z).");
  bok_validator_destroy(v);

  /* NDJSON: a JSON string; a number is not a date-time */
  v = bok_validator_new(s, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
  row = "{\"event_id\":\"n1\",\"timestamp\":\"2024-05-01T12:00:00.987654Z\",\"seen\":1714564800}";
  assert_int_equal(bok_validator_row(v, 1, row, strlen(row), NULL, &r), 0);
  assert_string_equal(r.rejects[0].column, "seen");
  assert_string_equal(r.rejects[0].observed, "1714564800");
  row = "{\"event_id\":\"n1\",\"timestamp\":\"2024-05-01T12:00:00.987654Z\"}";
  assert_int_equal(bok_validator_row(v, 1, row, strlen(row), NULL, &r), 1);
  assert_int_equal(r.event_time_ms, 1714564800987LL);
  assert_string_equal(r.event.data,
                      "{\"event_id\":\"n1\",\"timestamp\":\"2024-05-01T12:00:00.987Z\",\"seen\":null,\"unix\":null}");
  bok_validator_destroy(v);
  bok_row_result_free(&r);
  bok_schema_destroy(s);

  /* x-event-time may name a date-time column */
  s = compile("{\"type\":\"object\",\"properties\":{\"at\":{\"type\":\"string\",\"format\":\"date-time\"}},"
              "\"x-event-time\":\"at\"}");
  assert_int_equal(bok_schema_event_time_col(s), 0);
  bok_schema_destroy(s);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_valid_times), cmocka_unit_test(test_invalid_times),
                                 cmocka_unit_test(test_date_time_columns)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
