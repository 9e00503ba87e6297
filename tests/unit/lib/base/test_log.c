/* Log lines: logfmt and JSON, escaping, the thread's tenant/job context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bok/log.h"

#define TS "2026-11-28T18:00:00.000Z"

static void test_logfmt(void **s) {
  (void)s;
  char b[512];
  bok_log_format_line(b, sizeof b, BOK_LOG_FORMAT_LOGFMT, TS, BOK_LOG_WARN, "job", "acme", "0b5c", "upload \"x\" failed\nagain");
  assert_string_equal(b, "ts=" TS " level=warn component=job tenant=\"acme\" job=0b5c msg=\"upload \\\"x\\\" failed\\nagain\"\n");
  bok_log_format_line(b, sizeof b, BOK_LOG_FORMAT_LOGFMT, TS, BOK_LOG_INFO, "worker", "", NULL, "ok");
  assert_string_equal(b, "ts=" TS " level=info component=worker msg=\"ok\"\n"); /* no context: no fields */
}

static void test_json(void **s) {
  (void)s;
  char b[512];
  bok_log_format_line(b, sizeof b, BOK_LOG_FORMAT_JSON, TS, BOK_LOG_ERROR, "gateway", "t1", "j1", "a\\b\x01");
  assert_string_equal(b, "{\"ts\":\"" TS "\",\"level\":\"error\",\"component\":\"gateway\",\"tenant\":\"t1\","
                         "\"job\":\"j1\",\"msg\":\"a\\\\b\\u0001\"}\n");
}

static void test_truncated_line_stays_a_line(void **s) {
  (void)s;
  char b[64], msg[300];
  memset(msg, 'x', sizeof msg - 1);
  msg[sizeof msg - 1] = '\0';
  bok_log_format_line(b, sizeof b, BOK_LOG_FORMAT_JSON, TS, BOK_LOG_INFO, "c", NULL, NULL, msg);
  size_t n = strlen(b);
  assert_true(n < sizeof b);
  assert_int_equal(b[n - 1], '\n');
}

static void test_parse(void **s) {
  (void)s;
  bok_log_format_t f;
  assert_int_equal(bok_log_format_parse("json", &f), 0);
  assert_int_equal(f, BOK_LOG_FORMAT_JSON);
  assert_int_equal(bok_log_format_parse("logfmt", &f), 0);
  assert_int_equal(f, BOK_LOG_FORMAT_LOGFMT);
  assert_int_equal(bok_log_format_parse("xml", &f), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_logfmt), cmocka_unit_test(test_json),
                                     cmocka_unit_test(test_truncated_line_stays_a_line), cmocka_unit_test(test_parse)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
