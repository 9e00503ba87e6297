/* bok_config_check: unknown keys and bad typed values are refused with the
 * file:line (or the environment variable) and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bok/config.h"

static const char *const KNOWN[] = {"listen", "threads:int", "access_log:bool", "log_level:level",
                                    "kafka.brokers", "kafka.producer.*", NULL};

static bok_config_t *load(const char *text, char *path, size_t n) {
  snprintf(path, n, "/tmp/bok-cfgcheck-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char err[256];
  bok_config_t *c = bok_config_load(path, err, sizeof err);
  assert_non_null(c);
  return c;
}

static void expect(const char *text, const char *msg_fmt_line_key) {
  char path[64], err[512], want[600];
  bok_config_t *c = load(text, path, sizeof path);
  int rc = bok_config_check(c, KNOWN, err, sizeof err);
  if (!msg_fmt_line_key) {
    assert_int_equal(rc, 0);
  } else {
    assert_int_equal(rc, -1);
    snprintf(want, sizeof want, msg_fmt_line_key, path);
    assert_string_equal(err, want);
  }
  bok_config_destroy(c);
  unlink(path);
}

static void test_known_keys_pass(void **s) {
  (void)s;
  expect("listen: 1.2.3.4:5\nthreads: 4\naccess_log: yes\nlog_level: warn\nkafka:\n  brokers: k:9092\n"
         "  producer:\n    linger.ms: \"5\"\n    compression.codec: zstd\n",
         NULL);
  expect("kafka:\n  producer: {}\n", NULL); /* an empty map has no keys */
}

static void test_unknown_key_names_its_line(void **s) {
  (void)s;
  expect("listen: x\n# comment\nthreds: 4\n", "%s:3: unknown key 'threds'");
  expect("kafka:\n  brokers: k\n  bokers: k\n", "%s:3: unknown key 'kafka.bokers'");
  expect("kafka:\n  producer: 5\n", "%s:2: unknown key 'kafka.producer'"); /* a map, not a value */
}

static void test_bad_values_are_refused(void **s) {
  (void)s;
  expect("listen: x\nthreads: many\n", "%s:2: threads: expected an integer, got 'many'");
  expect("access_log: maybe\n", "%s:1: access_log: expected true or false, got 'maybe'");
  expect("log_level: loud\n", "%s:1: log_level: expected debug, info, warn or error, got 'loud'");
}

static void test_bad_environment_override(void **s) {
  (void)s;
  setenv("BOK_THREADS", "4x", 1);
  expect("threads: 4\n", "BOK_THREADS: threads: expected an integer, got '4x'");
  unsetenv("BOK_THREADS");
  expect("threads: 4\n", NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_known_keys_pass), cmocka_unit_test(test_unknown_key_names_its_line),
                                     cmocka_unit_test(test_bad_values_are_refused),
                                     cmocka_unit_test(test_bad_environment_override)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
