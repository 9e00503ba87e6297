/* libFuzzer: the gateway's request-line and header parsing (route.c):
 * routing, query parameters and their integers (limit, after_row), the
 * tenant header, Content-Type checks, the method check. Pure functions, so
 * anything reached here is reached by any HTTP client of port 8000.
 * Input: up to four '\n'-separated fields: request target ("/jobs/{id}?a=1"),
 * method, tenant header value, Content-Type value. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

/* The next '\n'-separated field of [*p, end), copied into an exact-size
 * buffer so ASan sees any overread. */
static char *field(const char **p, const char *end, size_t *len) {
  const char *nl = memchr(*p, '\n', (size_t)(end - *p));
  const char *e = nl ? nl : end;
  *len = (size_t)(e - *p);
  char *f = malloc(*len + 1);
  if (!f) abort();
  memcpy(f, *p, *len);
  f[*len] = '\0';
  *p = nl ? nl + 1 : end;
  return f;
}

static void count(const char *v, int64_t max) {
  int64_t n = -1;
  if (gw_parse_count(v, max, &n) != 0) return;
  errno = 0;
  char *e;
  long long ref = strtoll(v, &e, 10);
  /* accepted: plain digits, in range, the value strtoll reads */
  if (n < 0 || n > max || *e || errno || ref != n || v[0] == '-' || v[0] == '+' || v[0] == ' ') abort();
}

static void query(const char *target, size_t len) {
  const char *q = memchr(target, '?', len);
  size_t pl = q ? (size_t)(q - target) : len;
  gw_route_t r;
  gw_route_kind_t k = gw_route_parse(target, pl, &r);
  if (k != r.kind || (r.id[0] && strlen(r.id) != 36)) abort();
  if (k != GW_R_NOT_FOUND && gw_route_template(k)[0] != '/') abort();
  if (!q) return;
  static const char *const KEYS[] = {"limit", "after_row", "state", "separator"};
  for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
    char v[64];
    int rc = gw_query_param(q + 1, len - pl - 1, KEYS[i], v, sizeof v);
    if (rc < -1 || rc > 1) abort();
    if (rc == 1) {
      if (strlen(v) >= sizeof v) abort();
      count(v, 100000);
      count(v, INT64_MAX / 10);
      count(v, INT64_MAX);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  size_t tl, ml, hl, cl;
  char *target = field(&p, end, &tl);
  char *method = field(&p, end, &ml);
  char *tenant = field(&p, end, &hl);
  char *ctype = field(&p, end, &cl);
  query(target, tl);
  gw_route_t r;
  gw_route_parse(target, tl, &r);
  (void)gw_route_allows(r.kind, method, ml);
  char t[65];
  if (gw_tenant_resolve(hl ? tenant : NULL, hl, t) == 0 && (strlen(t) == 0 || strlen(t) > 64)) abort();
  (void)gw_is_json_content_type(ctype, cl);
  (void)gw_upload_format(tenant, hl, ctype, cl);
  free(target);
  free(method);
  free(tenant);
  free(ctype);
  return 0;
}
