/* route.h -- the REST API's routing table, as pure functions (no h2o, no
 * allocation, any thread), so it can be unit tested on its own. */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  GW_R_NOT_FOUND = 0,
  GW_R_HEALTHZ,       /* /healthz */
  GW_R_READYZ,        /* /readyz */
  GW_R_METRICS,       /* /metrics */
  GW_R_SCHEMA,        /* /schema */
  GW_R_MODELS,        /* /models */
  GW_R_MODEL,         /* /models/{id} */
  GW_R_JOBS,          /* /jobs */
  GW_R_JOB,           /* /jobs/{id} */
  GW_R_JOB_REJECTED,  /* /jobs/{id}/rejected */
  GW_R_JOB_REPROCESS  /* /jobs/{id}/reprocess */
} gw_route_kind_t;

typedef struct {
  gw_route_kind_t kind;
  char id[37]; /* canonical lower-case UUID for MODEL / JOB*, else "" */
} gw_route_t;

/* Routes a normalized path (no query string). Trailing slashes are ignored.
 * A path id that is not a UUID routes to GW_R_NOT_FOUND, so a malformed id
 * never reaches a backend. Returns out->kind. */
gw_route_kind_t gw_route_parse(const char *path, size_t len, gw_route_t *out);

/* The route's template for metric labels ("/jobs/{id}"); "unmatched" for
 * GW_R_NOT_FOUND. Never NULL. */
const char *gw_route_template(gw_route_kind_t kind);

/* 1 if `method` is served on `kind`; 0 otherwise (-> 405). */
int gw_route_allows(gw_route_kind_t kind, const char *method, size_t mlen);
/* The Allow header value for `kind` ("GET, POST"). */
const char *gw_route_allow_header(gw_route_kind_t kind);

/* Finds `key` in a raw query string ("a=1&b=2", without '?') and copies its
 * %-decoded value into out (NUL-terminated). 1 found, 0 absent, -1 value too
 * long or malformed escape. */
int gw_query_param(const char *query, size_t qlen, const char *key, char *out, size_t cap);

/* Parses a non-negative decimal integer (no sign, no spaces, <= max).
 * 0 ok, -1 otherwise. */
int gw_parse_count(const char *s, int64_t max, int64_t *out);

/* 1 if a Content-Type value is application/json (parameters allowed, any
 * case), else 0. */
int gw_is_json_content_type(const char *v, size_t len);

/* Upload format from the file part: "ndjson" for *.ndjson / *.jsonl or a
 * content type application/x-ndjson, application/jsonl (or
 * application/x-jsonlines); else "csv". */
const char *gw_upload_format(const char *filename, size_t flen, const char *ctype, size_t clen);

/* The tenant of a request from its tenant header value (v may be NULL when
 * the header is absent): absent or empty -> "tenant_a"; otherwise it must be
 * 1-64 characters of [A-Za-z0-9._-] (SPEC 3). 0 and the tenant in out, or -1
 * (-> 400). */
#define GW_DEFAULT_TENANT "tenant_a"
int gw_tenant_resolve(const char *v, size_t len, char out[65]);

#endif
