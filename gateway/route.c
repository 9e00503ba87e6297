#include "route.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "bok/util.h"

static int seg_is(const char *p, size_t n, const char *lit) { return strlen(lit) == n && memcmp(p, lit, n) == 0; }

gw_route_kind_t gw_route_parse(const char *path, size_t len, gw_route_t *out) {
  out->kind = GW_R_NOT_FOUND;
  out->id[0] = '\0';
  while (len > 1 && path[len - 1] == '/') len--;
  if (len == 0 || path[0] != '/') return out->kind;
  /* split into at most 3 segments */
  const char *seg[4];
  size_t sl[4];
  size_t n = 0;
  size_t i = 1;
  while (i <= len) {
    size_t j = i;
    while (j < len && path[j] != '/') j++;
    if (n == 4) return out->kind = GW_R_NOT_FOUND;
    seg[n] = path + i;
    sl[n] = j - i;
    n++;
    i = j + 1;
  }
  if (n == 0 || n > 3) return out->kind;
  for (size_t k = 0; k < n; k++)
    if (sl[k] == 0) return out->kind; /* "//" */
  if (n == 1) {
    if (seg_is(seg[0], sl[0], "healthz")) return out->kind = GW_R_HEALTHZ;
    if (seg_is(seg[0], sl[0], "readyz")) return out->kind = GW_R_READYZ;
    if (seg_is(seg[0], sl[0], "metrics")) return out->kind = GW_R_METRICS;
    if (seg_is(seg[0], sl[0], "schema")) return out->kind = GW_R_SCHEMA;
    if (seg_is(seg[0], sl[0], "models")) return out->kind = GW_R_MODELS;
    if (seg_is(seg[0], sl[0], "jobs")) return out->kind = GW_R_JOBS;
    if (seg_is(seg[0], sl[0], "openapi.yaml")) return out->kind = GW_R_OPENAPI;
    return out->kind;
  }
  int models = seg_is(seg[0], sl[0], "models"), jobs = seg_is(seg[0], sl[0], "jobs");
  if (!models && !jobs) return out->kind;
  if (sl[1] != 36) return out->kind;
  char id[37];
  memcpy(id, seg[1], 36);
  id[36] = '\0';
  if (!bok_uuid_valid(id)) return out->kind;
  gw_route_kind_t k;
  if (n == 2)
    k = models ? GW_R_MODEL : GW_R_JOB;
  else if (jobs && seg_is(seg[2], sl[2], "rejected"))
    k = GW_R_JOB_REJECTED;
  else if (jobs && seg_is(seg[2], sl[2], "reprocess"))
    k = GW_R_JOB_REPROCESS;
  else
    return out->kind;
  for (int c = 0; c < 36; c++) out->id[c] = (char)tolower((unsigned char)id[c]);
  out->id[36] = '\0';
  return out->kind = k;
}

/* HEAD is served wherever GET answers without a backend call. */
static const gw_route_info_t ROUTES[] = {
    {GW_R_HEALTHZ, "/healthz", "GET, HEAD"},
    {GW_R_READYZ, "/readyz", "GET, HEAD"},
    {GW_R_METRICS, "/metrics", "GET, HEAD"},
    {GW_R_OPENAPI, "/openapi.yaml", "GET, HEAD"},
    {GW_R_SCHEMA, "/schema", "POST"},
    {GW_R_MODELS, "/models", "GET, POST"},
    {GW_R_MODEL, "/models/{id}", "GET, PUT, PATCH, DELETE"},
    {GW_R_JOBS, "/jobs", "GET, POST"},
    {GW_R_JOB, "/jobs/{id}", "GET, DELETE"},
    {GW_R_JOB_REJECTED, "/jobs/{id}/rejected", "GET"},
    {GW_R_JOB_REPROCESS, "/jobs/{id}/reprocess", "POST"},
};

const gw_route_info_t *gw_route_table(size_t *n) {
  *n = sizeof ROUTES / sizeof ROUTES[0];
  return ROUTES;
}

const char *gw_route_allow_header(gw_route_kind_t kind) {
  for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
    if (ROUTES[i].kind == kind) return ROUTES[i].methods;
  return "";
}

const char *gw_route_template(gw_route_kind_t kind) {
  for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
    if (ROUTES[i].kind == kind) return ROUTES[i].tmpl;
  return "unmatched";
}

int gw_route_allows(gw_route_kind_t kind, const char *method, size_t mlen) {
  const char *allow = gw_route_allow_header(kind);
  const char *p = allow;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == mlen && memcmp(p, method, n) == 0) return 1;
    if (!e) break;
    p = e + 2;
  }
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int gw_query_param(const char *q, size_t qlen, const char *key, char *out, size_t cap) {
  size_t kl = strlen(key);
  const char *end = q + qlen;
  while (q && q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *e = amp ? amp : end;
    if ((size_t)(e - q) >= kl && memcmp(q, key, kl) == 0 && (q + kl == e || q[kl] == '=')) {
      const char *v = q + kl + (q + kl < e ? 1 : 0);
      size_t n = 0;
      while (v < e) {
        char c = *v++;
        if (c == '+') {
          c = ' ';
        } else if (c == '%') {
          if (e - v < 2 || hexval(v[0]) < 0 || hexval(v[1]) < 0) return -1;
          c = (char)(hexval(v[0]) * 16 + hexval(v[1]));
          v += 2;
        }
        if (n + 1 >= cap) return -1;
        out[n++] = c;
      }
      out[n] = '\0';
      return 1;
    }
    q = e + 1;
  }
  return 0;
}

int gw_parse_count(const char *s, int64_t max, int64_t *out) {
  if (!*s) return -1;
  int64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    if (v > (max - (*s - '0')) / 10) return -1; /* v * 10 + digit > max, checked before it can overflow */
    v = v * 10 + (*s - '0');
    if (v > max) return -1;
  }
  *out = v;
  return 0;
}

int gw_is_json_content_type(const char *v, size_t len) {
  static const char J[] = "application/json";
  size_t jl = sizeof J - 1;
  while (len && (*v == ' ' || *v == '\t')) v++, len--;
  if (len < jl || strncasecmp(v, J, jl) != 0) return 0;
  v += jl;
  len -= jl;
  while (len && (*v == ' ' || *v == '\t')) v++, len--;
  return len == 0 || *v == ';';
}

static int ends_with(const char *s, size_t n, const char *suf) {
  size_t l = strlen(suf);
  return n >= l && strncasecmp(s + n - l, suf, l) == 0;
}

static int ctype_is(const char *v, size_t len, const char *t) {
  size_t l = strlen(t);
  if (len < l || strncasecmp(v, t, l) != 0) return 0;
  return len == l || v[l] == ';' || v[l] == ' ';
}

const char *gw_upload_format(const char *fn, size_t flen, const char *ct, size_t clen) {
  if (fn && (ends_with(fn, flen, ".ndjson") || ends_with(fn, flen, ".jsonl"))) return "ndjson";
  if (ct && (ctype_is(ct, clen, "application/x-ndjson") || ctype_is(ct, clen, "application/jsonl") ||
             ctype_is(ct, clen, "application/x-jsonlines") || ctype_is(ct, clen, "application/ndjson")))
    return "ndjson";
  return "csv";
}

int gw_tenant_resolve(const char *v, size_t len, char out[65]) {
  if (!v || len == 0) {
    memcpy(out, GW_DEFAULT_TENANT, sizeof GW_DEFAULT_TENANT);
    return 0;
  }
  if (!bok_tenant_valid(v, len)) return -1;
  memcpy(out, v, len);
  out[len] = '\0';
  return 0;
}
