/* console.c -- serves the web console (gateway/console/, compiled in by
 * CMake): GET/HEAD / is index.html, /console/<file> the other files, with a
 * Content-Type by extension, a strong ETag from the file's SHA-256 (an
 * If-None-Match that matches is 304) and Cache-Control: no-cache. Called on
 * a loop thread; the tables are read-only. No tenant and no API key: the
 * page asks for them and sends them on its API calls. */
#include "console.h"

#include <string.h>
#include <strings.h>

#include "reply.h"

/* index.html may only load the console's own files and call this origin
 * (no inline script or style, so injected markup cannot run). */
#define CSP                                                                                                \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " \
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const gw_console_file_t *gw_console_find(const char *name, size_t len) {
  size_t n;
  const gw_console_file_t *f = gw_console_files(&n);
  for (size_t i = 0; i < n; i++)
    if (strlen(f[i].name) == len && memcmp(f[i].name, name, len) == 0) return &f[i];
  return NULL;
}

static int has_ext(const char *name, const char *ext) {
  size_t n = strlen(name), e = strlen(ext);
  return n > e && strcasecmp(name + n - e, ext) == 0;
}

const char *gw_console_content_type(const char *name) {
  if (has_ext(name, ".html")) return "text/html; charset=utf-8";
  if (has_ext(name, ".js")) return "text/javascript; charset=utf-8"; /* ES modules need a JS type */
  if (has_ext(name, ".css")) return "text/css; charset=utf-8";
  if (has_ext(name, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void gw_console_etag(const gw_console_file_t *f, char out[GW_CONSOLE_ETAG_LEN + 1]) {
  out[0] = '"';
  memcpy(out + 1, f->sha256, GW_CONSOLE_ETAG_LEN - 2);
  out[GW_CONSOLE_ETAG_LEN - 1] = '"';
  out[GW_CONSOLE_ETAG_LEN] = '\0';
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

int gw_etag_matches(const char *v, size_t len, const char *etag) {
  size_t el = strlen(etag);
  size_t i = 0;
  while (i < len) {
    while (i < len && (is_ows(v[i]) || v[i] == ',')) i++;
    size_t s = i;
    while (i < len && v[i] != ',') i++;
    size_t e = i;
    while (e > s && is_ows(v[e - 1])) e--;
    if (e - s == 1 && v[s] == '*') return 1;
    if (e - s >= 2 && v[s] == 'W' && v[s + 1] == '/') s += 2; /* weak comparison */
    if (e - s == el && memcmp(v + s, etag, el) == 0) return 1;
  }
  return 0;
}

static void add(h2o_req_t *req, const char *name, const char *value) {
  h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value, strlen(value));
}

int gw_console_serve(h2o_req_t *req, const char *name, size_t len) {
  const gw_console_file_t *f = len == 0 ? gw_console_find("index.html", 10) : gw_console_find(name, len);
  if (!f) {
    gw_send_error(req, 404, "NOT_FOUND", "no such console file");
    return 0;
  }
  char *etag = h2o_mem_alloc_pool(&req->pool, GW_CONSOLE_ETAG_LEN + 1);
  gw_console_etag(f, etag);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, GW_CONSOLE_ETAG_LEN);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
  ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
  if (inm >= 0 && gw_etag_matches(req->headers.entries[inm].value.base, req->headers.entries[inm].value.len, etag)) {
    req->res.status = 304;
    req->res.reason = "Not Modified";
    gw_count_status(req, 304);
    h2o_send_inline(req, "", 0);
    return 0;
  }
  const char *ct = gw_console_content_type(f->name);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
  add(req, "x-content-type-options", "nosniff");
  if (has_ext(f->name, ".html")) {
    add(req, "content-security-policy", CSP);
    add(req, "referrer-policy", "no-referrer");
  }
  req->res.status = 200;
  req->res.reason = "OK";
  gw_count_status(req, 200);
  req->res.content_length = *f->len; /* else h2o_send_inline would send it chunked */
  h2o_send_inline(req, (const char *)f->data, *f->len);
  return 0;
}
