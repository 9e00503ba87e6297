/* API keys of the gateway (gateway/auth.c): the Bearer header parser, the key
 * table built from YAML (what it refuses), lookups by SHA-256, refcounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"


static char g_sha_one[65], g_sha_two[65];

static void sha_hex(const char *key, char out[65]) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "printf %%s '%s' | sha256sum", key);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(out, 65, p));
  pclose(p);
  assert_int_equal(strlen(out), 64);
}

static gw_keys_t *keys_from_yaml(const char *yaml, char *err, size_t errlen) {
  char path[] = "/tmp/bok-test-auth-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  bok_config_t *cfg = bok_config_load(path, err, errlen);
  unlink(path);
  assert_non_null(cfg);
  gw_keys_t *k = gw_keys_from_config(cfg, err, errlen);
  bok_config_destroy(cfg);
  return k;
}

static int setup(void **state) {
  (void)state;
  sha_hex("key-one", g_sha_one);
  sha_hex("key-two", g_sha_two);
  return 0;
}

static int bearer(const char *v, const char *want) {
  const char *t;
  size_t n;
  if (gw_auth_bearer(v, strlen(v), &t, &n) != 0) return want == NULL;
  return want && n == strlen(want) && memcmp(t, want, n) == 0;
}

static void test_bearer(void **state) {
  (void)state;
  assert_true(bearer("Bearer abc", "abc"));
  assert_true(bearer("bearer abc", "abc"));
  assert_true(bearer("BEARER  abc  ", "abc"));
  assert_true(bearer(" Bearer\tA-z0.9_~+/==", "A-z0.9_~+/=="));
  assert_true(bearer("Bearer", NULL));
  assert_true(bearer("Bearer ", NULL));
  assert_true(bearer("Basic abc", NULL));
  assert_true(bearer("Bearerabc", NULL));
  assert_true(bearer("Bearer a b", NULL));
  assert_true(bearer("Bearer a,b", NULL));
  assert_true(bearer("Bearer \"abc\"", NULL));
  assert_true(bearer("Bearer caf\xc3\xa9", NULL));
  assert_true(bearer("", NULL));
  char big[600] = "Bearer ";
  memset(big + 7, 'a', 513);
  big[520] = '\0';
  assert_true(bearer(big, NULL)); /* 513 bytes */
  big[519] = '\0';
  assert_false(bearer(big, NULL)); /* 512 bytes: fine */
}

static void test_keys_from_config(void **state) {
  (void)state;
  char yaml[1024], err[256], t[65];
  snprintf(yaml, sizeof yaml,
           "auth:\n  required: true\n  api_keys:\n    - {tenant: t1, sha256: %s}\n    - tenant: t2\n      sha256: %s\n",
           g_sha_one, g_sha_two);
  gw_keys_t *k = keys_from_yaml(yaml, err, sizeof err);
  assert_non_null(k);
  assert_int_equal(gw_keys_count(k), 2);
  assert_int_equal(gw_keys_required(k), 1);
  assert_int_equal(gw_keys_lookup(k, "key-one", 7, t), 1);
  assert_string_equal(t, "t1");
  assert_int_equal(gw_keys_lookup(k, "key-two", 7, t), 1);
  assert_string_equal(t, "t2");
  assert_int_equal(gw_keys_lookup(k, "key-on", 6, t), 0);
  assert_int_equal(gw_keys_lookup(k, "key-one ", 8, t), 0);
  assert_int_equal(gw_keys_lookup(k, "", 0, t), 0);
  /* refcounts: the table lives until the last unref */
  gw_keys_ref(k);
  gw_keys_unref(k);
  assert_int_equal(gw_keys_lookup(k, "key-one", 7, t), 1);
  gw_keys_unref(k);

  /* upper-case hex is fine; no auth section = off, no keys */
  for (char *c = g_sha_one; *c; c++) *c = (char)toupper((unsigned char)*c);
  snprintf(yaml, sizeof yaml, "auth:\n  api_keys:\n    - {tenant: t1, sha256: %s}\n", g_sha_one);
  k = keys_from_yaml(yaml, err, sizeof err);
  assert_non_null(k);
  assert_int_equal(gw_keys_required(k), 0);
  assert_int_equal(gw_keys_lookup(k, "key-one", 7, t), 1);
  gw_keys_unref(k);
  k = keys_from_yaml("listen: 127.0.0.1:1\n", err, sizeof err);
  assert_non_null(k);
  assert_int_equal(gw_keys_count(k), 0);
  assert_int_equal(gw_keys_required(k), 0);
  assert_int_equal(gw_keys_lookup(k, "key-one", 7, t), 0);
  gw_keys_unref(k);
}

static void refused(const char *yaml, const char *want) {
  char err[256] = "";
  gw_keys_t *k = keys_from_yaml(yaml, err, sizeof err);
  if (k) fail_msg("accepted: %s", yaml);
  if (!strstr(err, want)) fail_msg("error '%s' lacks '%s' for %s", err, want, yaml);
}

static void test_keys_refused(void **state) {
  (void)state;
  char y[1024];
  refused("auth:\n  required: true\n", "lists no key");
  refused("auth:\n  required: maybe\n", "auth.required");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    - {tenant: t1}\n");
  refused(y, "needs both tenant and sha256");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    - {sha256: %s}\n", g_sha_two);
  refused(y, "needs both tenant and sha256");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    - {tenant: 'bad tenant', sha256: %s}\n", g_sha_two);
  refused(y, "api_keys.0.tenant");
  refused("auth:\n  api_keys:\n    - {tenant: t1, sha256: abc}\n", "64 hex digits");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    - {tenant: t1, sha256: %.63sg}\n", g_sha_two);
  refused(y, "64 hex digits");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    - {tenant: t1, sha256: %s, key: plain}\n", g_sha_two);
  refused(y, "unknown field");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    - {tenant: t1, sha256: %s}\n    - {tenant: t2, sha256: %s}\n",
           g_sha_two, g_sha_two);
  refused(y, "the same key");
  snprintf(y, sizeof y, "auth:\n  api_keys:\n    t1: %s\n", g_sha_two);
  refused(y, "expected a list");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bearer),
      cmocka_unit_test(test_keys_from_config),
      cmocka_unit_test(test_keys_refused),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
