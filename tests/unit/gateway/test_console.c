/* The web console's files compiled into the gateway (gateway/console.c and
 * the generated table): every file is the one in gateway/console/ with its
 * SHA-256, content types, ETags and If-None-Match matching, and the page's
 * references (index.html's src/href, the modules' imports) all name files
 * the gateway serves, so no click ends on a 404. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void sha256_hex(const char *path, char out[65]) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(out, 65, p));
  pclose(p);
}

static void test_embedded_files_are_the_sources(void **state) {
  (void)state;
  size_t n;
  const gw_console_file_t *f = gw_console_files(&n);
  assert_true(n >= 5);
  for (size_t i = 0; i < n; i++) {
    char path[4096], sha[65];
    snprintf(path, sizeof path, "%s/gateway/console/%s", BOK_SOURCE_DIR, f[i].name);
    size_t len = 0;
    char *src = slurp(path, &len);
    if (!src) fail_msg("%s is embedded but not in gateway/console/", f[i].name);
    assert_int_equal(len, *f[i].len);
    assert_memory_equal(src, f[i].data, len);
    assert_int_equal(f[i].data[len], 0);
    sha256_hex(path, sha);
    assert_string_equal(f[i].sha256, sha);
    free(src);
    if (i > 0) assert_true(strcmp(f[i - 1].name, f[i].name) < 0); /* sorted, no duplicates */
  }
  assert_non_null(gw_console_find("index.html", 10));
  assert_non_null(gw_console_find("app.js", 6));
  assert_null(gw_console_find("app.j", 5));
  assert_null(gw_console_find("nope.js", 7));
  assert_null(gw_console_find("", 0));
}

static void test_content_types(void **state) {
  (void)state;
  assert_string_equal(gw_console_content_type("index.html"), "text/html; charset=utf-8");
  assert_string_equal(gw_console_content_type("app.js"), "text/javascript; charset=utf-8");
  assert_string_equal(gw_console_content_type("console.css"), "text/css; charset=utf-8");
  assert_string_equal(gw_console_content_type("icon.svg"), "image/svg+xml");
  assert_string_equal(gw_console_content_type("README"), "application/octet-stream");
  assert_string_equal(gw_console_content_type(".js"), "application/octet-stream");
  size_t n;
  const gw_console_file_t *f = gw_console_files(&n);
  for (size_t i = 0; i < n; i++) /* every file has a real type */
    assert_string_not_equal(gw_console_content_type(f[i].name), "application/octet-stream");
}

static void test_etags(void **state) {
  (void)state;
  const gw_console_file_t *f = gw_console_find("app.js", 6);
  assert_non_null(f);
  char tag[GW_CONSOLE_ETAG_LEN + 1];
  gw_console_etag(f, tag);
  assert_int_equal(strlen(tag), GW_CONSOLE_ETAG_LEN);
  assert_true(tag[0] == '"' && tag[GW_CONSOLE_ETAG_LEN - 1] == '"');
  assert_memory_equal(tag + 1, f->sha256, GW_CONSOLE_ETAG_LEN - 2);
  char other[GW_CONSOLE_ETAG_LEN + 1];
  gw_console_etag(gw_console_find("index.html", 10), other);
  assert_string_not_equal(tag, other);

  const char *e = "\"abc\"";
  const char *yes[] = {"\"abc\"", "*", " \"abc\" ", "W/\"abc\"", "\"x\", \"abc\"", "\"x\",W/\"abc\",\"y\"", ",,\"abc\""};
  const char *no[] = {"", "abc", "\"abd\"", "\"abc", "W/abc", "\"x\", \"y\"", "\"abcd\"", "**", "w/\"abc\""};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (!gw_etag_matches(yes[i], strlen(yes[i]), e)) fail_msg("If-None-Match %s should match", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (gw_etag_matches(no[i], strlen(no[i]), e)) fail_msg("If-None-Match %s should not match", no[i]);
}

/* Every "/console/<name>" in a file and every "./<name>" import names an
 * embedded file. */
static void check_refs(const gw_console_file_t *f, const char *prefix, char stop) {
  const char *p = (const char *)f->data;
  size_t pl = strlen(prefix);
  while ((p = strstr(p, prefix)) != NULL) {
    p += pl;
    const char *e = p;
    while (*e && *e != stop && *e != '\n') e++;
    if (!gw_console_find(p, (size_t)(e - p)))
      fail_msg("%s refers to %s%.*s, which the gateway does not serve", f->name, prefix, (int)(e - p), p);
  }
}

static void test_references_resolve(void **state) {
  (void)state;
  size_t n, refs = 0;
  const gw_console_file_t *f = gw_console_files(&n);
  for (size_t i = 0; i < n; i++) {
    check_refs(&f[i], "\"/console/", '"');
    check_refs(&f[i], "from './", '\'');
    if (strstr((const char *)f[i].data, "from './")) refs++;
  }
  assert_true(refs >= 5);
  const gw_console_file_t *index = gw_console_find("index.html", 10);
  assert_non_null(strstr((const char *)index->data, "<script type=\"module\" src=\"/console/app.js\">"));
  /* the CSP forbids inline scripts and styles: none in the page */
  assert_null(strstr((const char *)index->data, "style="));
  assert_null(strstr((const char *)index->data, "<style"));
  assert_null(strstr((const char *)index->data, "<script>"));
  assert_null(strstr((const char *)index->data, "onclick"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_embedded_files_are_the_sources),
      cmocka_unit_test(test_content_types),
      cmocka_unit_test(test_etags),
      cmocka_unit_test(test_references_resolve),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
