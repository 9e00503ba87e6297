/* lib/base: YAML config + env overrides, tenant routes, buffers, util. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/buf.h"
#include "bok/config.h"
#include "bok/routes.h"
#include "bok/util.h"

static char *write_tmp(const char *text) {
  static char path[64];
  strcpy(path, "/tmp/bok_cfg_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

static void test_config_nesting_and_env(void **s) {
  (void)s;
  char *p = write_tmp("listen: 127.0.0.1:1\nkafka:\n  brokers: a:1\n  producer:\n    linger.ms: \"5\"\n"
                      "    acks: all\nflag: yes\nnum: 42\nlist:\n  - x\n  - y\n");
  char err[256];
  bok_config_t *c = bok_config_load(p, err, sizeof err);
  assert_non_null(c);
  assert_string_equal(bok_config_get(c, "listen", "d"), "127.0.0.1:1");
  assert_string_equal(bok_config_get(c, "kafka.brokers", "d"), "a:1");
  assert_string_equal(bok_config_get(c, "list.1", "d"), "y");
  assert_string_equal(bok_config_get(c, "absent", "d"), "d");
  assert_int_equal(bok_config_get_int(c, "num", 0), 42);
  assert_int_equal(bok_config_get_int(c, "listen", 7), 7);
  assert_int_equal(bok_config_get_bool(c, "flag", 0), 1);
  setenv("BOK_KAFKA_BROKERS", "env:9", 1);
  setenv("BOK_NOT_IN_FILE", "x", 1);
  assert_string_equal(bok_config_get(c, "kafka.brokers", "d"), "env:9");
  assert_string_equal(bok_config_get(c, "not.in.file", "d"), "x");
  unsetenv("BOK_KAFKA_BROKERS");
  unsetenv("BOK_NOT_IN_FILE");
  int count = 0;
  int cb(void *ud, const char *k, const char *v);
  bok_config_each(c, "kafka.producer.", cb, &count);
  assert_int_equal(count, 2);
  bok_config_destroy(c);
  unlink(p);
}

int cb(void *ud, const char *k, const char *v) {
  int *n = ud;
  if ((strcmp(k, "linger.ms") == 0 && strcmp(v, "5") == 0) || (strcmp(k, "acks") == 0 && strcmp(v, "all") == 0))
    (*n)++;
  return 0;
}

static void test_config_errors(void **s) {
  (void)s;
  char err[256];
  char *p = write_tmp("a: 1\nb: [unclosed\n");
  assert_null(bok_config_load(p, err, sizeof err));
  assert_non_null(strstr(err, p));
  assert_non_null(strstr(err, ":3:") ? strstr(err, ":3:") : strstr(err, ":2:"));
  unlink(p);
  assert_null(bok_config_load("/nonexistent/x.yaml", err, sizeof err));
  assert_non_null(strstr(err, "No such file"));
  bok_config_t *c = bok_config_load(NULL, err, sizeof err);
  assert_string_equal(bok_config_get(c, "x", "def"), "def");
  bok_config_destroy(c);
}

static void test_routes(void **s) {
  (void)s;
  char *p = write_tmp("routes:\n  default:\n    model: m0:1\n    job: j0:1\n  tenants:\n    tenant_b:\n"
                      "      model: m1:1\n    tenant_c:\n      job: j2:1\n");
  char err[256];
  bok_config_t *c = bok_config_load(p, err, sizeof err);
  bok_routes_t *r = bok_routes_from_config(c, "x", "y", err, sizeof err);
  assert_non_null(r);
  assert_int_equal(bok_routes_count(r), 3);
  assert_string_equal(bok_routes_lookup(r, "tenant_a")->model_addr, "m0:1");
  assert_string_equal(bok_routes_lookup(r, NULL)->job_addr, "j0:1");
  assert_string_equal(bok_routes_lookup(r, "tenant_b")->model_addr, "m1:1");
  assert_string_equal(bok_routes_lookup(r, "tenant_b")->job_addr, "j0:1");
  assert_string_equal(bok_routes_lookup(r, "tenant_c")->job_addr, "j2:1");
  assert_string_equal(bok_routes_lookup(r, "tenant_c")->model_addr, "m0:1");
  bok_routes_destroy(r);
  bok_config_destroy(c);
  unlink(p);
  p = write_tmp("routes:\n  tenants:\n    \"bad tenant\":\n      model: m\n");
  c = bok_config_load(p, err, sizeof err);
  assert_null(bok_routes_from_config(c, "x", "y", err, sizeof err));
  assert_non_null(strstr(err, "invalid tenant"));
  bok_config_destroy(c);
  unlink(p);
}

static void test_buf_cap(void **s) {
  (void)s;
  bok_buf_t b = BOK_BUF_INIT(10);
  assert_int_equal(bok_buf_appends(&b, "hello"), 0);
  assert_int_equal(bok_buf_printf(&b, "%d", 1234), 0);
  assert_string_equal(b.data, "hello1234");
  assert_int_equal(bok_buf_appends(&b, "xx"), -1); /* over the cap: unchanged */
  assert_string_equal(b.data, "hello1234");
  bok_buf_consume(&b, 5);
  assert_string_equal(b.data, "1234");
  size_t n;
  char *p = bok_buf_steal(&b, &n);
  assert_int_equal(n, 4);
  free(p);
  assert_int_equal(b.len, 0);
  bok_buf_t big = BOK_BUF_INIT(0);
  for (int i = 0; i < 1000; i++) assert_int_equal(bok_buf_printf(&big, "%0300d", i), 0);
  assert_int_equal(big.len, 300000);
  bok_buf_free(&big);
}

static void test_util(void **s) {
  (void)s;
  char out[32];
  bok_iso8601_ms(1678881700000LL, out);
  assert_string_equal(out, "2023-03-15T12:01:40.000Z");
  char id[37];
  bok_uuid_new(id);
  assert_true(bok_uuid_valid(id));
  assert_false(bok_uuid_valid("123e4567-e89b-12d3-a456-42661417400"));
  assert_false(bok_uuid_valid("456a7890-b1cd-23ef-45gh-67890ijklmno"));
  assert_true(bok_tenant_valid("tenant_a", 8));
  assert_true(bok_tenant_valid("f47ac10b-58cc.x", 15));
  assert_false(bok_tenant_valid("", 0));
  assert_false(bok_tenant_valid("a b", 3));
  char long65[66];
  memset(long65, 'a', 65);
  long65[65] = 0;
  assert_false(bok_tenant_valid(long65, 65));
  assert_true(bok_tenant_valid(long65, 64));
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(test_config_nesting_and_env), cmocka_unit_test(test_config_errors),
      cmocka_unit_test(test_routes), cmocka_unit_test(test_buf_cap), cmocka_unit_test(test_util)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
