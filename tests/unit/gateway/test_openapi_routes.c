/* The gateway's routing table against docs/openapi.yaml: every route kind's
 * template and methods are in the spec the binary embeds, each template
 * routes to its kind, and the embedded copy is the file in docs/. (The other
 * direction, every spec operation is served, is tests/e2e/test_openapi.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

#define UUID "123e4567-e89b-12d3-a456-426614174000"

/* The spec's `paths:` section as "<template> <method>" lines, e.g.
 * "/jobs/{id} delete". The file keeps the usual layout: path keys indented
 * by 2, operation keys by 4. */
static size_t spec_ops(char ops[][64], size_t cap) {
  const char *y = (const char *)gw_openapi_yaml;
  const char *end = y + gw_openapi_yaml_len;
  const char *p = strstr(y, "\npaths:\n");
  assert_non_null(p);
  p += 8;
  size_t n = 0;
  char path[48] = "";
  static const char *METHODS[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (len > 0 && p[0] != ' ' && p[0] != '#') break; /* next top-level key */
    if (len > 3 && memcmp(p, "  /", 3) == 0 && p[len - 1] == ':') {
      assert_true(len - 3 < sizeof path);
      memcpy(path, p + 2, len - 3);
      path[len - 3] = '\0';
    } else if (len > 5 && memcmp(p, "    ", 4) == 0 && p[4] != ' ') {
      for (size_t m = 0; m < sizeof METHODS / sizeof METHODS[0]; m++) {
        size_t ml = strlen(METHODS[m]);
        if (len == 4 + ml + 1 && memcmp(p + 4, METHODS[m], ml) == 0 && p[4 + ml] == ':') {
          assert_true(n < cap);
          snprintf(ops[n++], 64, "%s %s", path, METHODS[m]);
        }
      }
    }
    p += len + 1;
  }
  return n;
}

static int has_op(char ops[][64], size_t n, const char *want) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(ops[i], want) == 0) return 1;
  return 0;
}

static void test_every_route_is_in_the_spec(void **state) {
  (void)state;
  char ops[128][64];
  size_t n = spec_ops(ops, 128);
  assert_true(n >= 10);
  size_t nr;
  const gw_route_info_t *t = gw_route_table(&nr);
  assert_true(nr >= 10);
  for (size_t i = 0; i < nr; i++) {
    const char *m = t[i].methods;
    assert_true(*m);
    while (*m) { /* "GET, HEAD" -> "get", "head" */
      char want[64];
      size_t k = (size_t)snprintf(want, sizeof want, "%s ", t[i].tmpl);
      while (*m && *m != ',') want[k++] = (char)(*m++ | 0x20);
      want[k] = '\0';
      if (!has_op(ops, n, want)) fail_msg("the gateway serves '%s' but docs/openapi.yaml does not list it", want);
      while (*m == ',' || *m == ' ') m++;
    }
  }
}

static void test_table_drives_routing(void **state) {
  (void)state;
  size_t nr;
  const gw_route_info_t *t = gw_route_table(&nr);
  for (size_t i = 0; i < nr; i++) {
    char path[128];
    const char *brace = strstr(t[i].tmpl, "{id}");
    if (brace)
      snprintf(path, sizeof path, "%.*s%s%s", (int)(brace - t[i].tmpl), t[i].tmpl, UUID, brace + 4);
    else
      snprintf(path, sizeof path, "%s", t[i].tmpl);
    gw_route_t r;
    assert_int_equal(gw_route_parse(path, strlen(path), &r), t[i].kind);
    assert_string_equal(gw_route_allow_header(t[i].kind), t[i].methods);
    for (size_t j = 0; j < i; j++) assert_int_not_equal(t[j].kind, t[i].kind);
  }
  gw_route_t r;
  assert_int_equal(gw_route_parse("/openapi.yaml", sizeof "/openapi.yaml" - 1, &r), GW_R_OPENAPI);
  assert_true(gw_route_allows(GW_R_OPENAPI, "HEAD", 4) && !gw_route_allows(GW_R_OPENAPI, "POST", 4));
  assert_int_equal(gw_route_parse("/openapi.json", sizeof "/openapi.json" - 1, &r), GW_R_NOT_FOUND);
}

static void test_embedded_spec_is_docs_openapi_yaml(void **state) {
  (void)state;
  FILE *f = fopen(BOK_SOURCE_DIR "/docs/openapi.yaml", "rb");
  assert_non_null(f);
  char *buf = malloc(gw_openapi_yaml_len + 2);
  assert_non_null(buf);
  size_t got = fread(buf, 1, gw_openapi_yaml_len + 1, f);
  fclose(f);
  assert_int_equal(got, gw_openapi_yaml_len);
  assert_memory_equal(buf, gw_openapi_yaml, got);
  assert_int_equal(gw_openapi_yaml[gw_openapi_yaml_len], 0);
  assert_memory_equal(gw_openapi_yaml, "openapi: 3.0.3\n", 15);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_route_is_in_the_spec),
      cmocka_unit_test(test_table_drives_routing),
      cmocka_unit_test(test_embedded_spec_is_docs_openapi_yaml),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
