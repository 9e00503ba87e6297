/* REST handlers: parse and check the request on the loop thread, then start
 * an async gRPC call whose answer a render function turns into JSON. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "batch/v1/job.pb-c.h"
#include "batch/v1/model.pb-c.h"
#include "bok/detect.h"
#include "bok/util.h"
#include "console.h"
#include "download.h"
#include "gw_obs.h"
#include "handlers.h"
#include "json_map.h"
#include "multipart.h"
#include "reply.h"
#include "route.h"
#include "upload.h"
#include "watch.h"

#define MODEL_SVC "/batch.v1.ModelService/"
#define JOB_SVC "/batch.v1.JobService/"

static int method_is(h2o_req_t *req, const char *m) { return h2o_memis(req->method.base, req->method.len, m, strlen(m)); }

/* ---- render functions ---------------------------------------------------- */

static void render_model(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)e;
  gw_send_json(req, (int)p->limit, gw_model_json((Batch__V1__Model *)resp));
}

static void render_models(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e;
  Batch__V1__ListModelsResponse *r = (void *)resp;
  json_t *a = json_array();
  for (size_t i = 0; i < r->n_models; i++) json_array_append_new(a, gw_model_json(r->models[i]));
  gw_send_json(req, 200, a);
}

static void render_deleted(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e, (void)resp;
  json_t *o = json_object();
  json_object_set_new(o, "status", json_string("deleted"));
  gw_send_json(req, 200, o);
}

static json_t *job_json(const void *job) { return gw_job_json(job); }

static void render_job(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)e;
  gw_send_json_once(req, (int)p->limit, resp, job_json);
}

static void render_jobs(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e;
  Batch__V1__ListJobsResponse *r = (void *)resp;
  json_t *a = json_array();
  for (size_t i = 0; i < r->n_jobs; i++) json_array_append_new(a, gw_job_json(r->jobs[i]));
  gw_send_json(req, 200, a);
}

static void render_cancelled(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e, (void)resp;
  json_t *o = json_object();
  json_object_set_new(o, "status", json_string("cancelled"));
  gw_send_json(req, 200, o);
}

static void render_rejected(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e;
  Batch__V1__ListRejectedResponse *r = (void *)resp;
  json_t *a = json_array();
  for (size_t i = 0; i < r->n_cells; i++) json_array_append_new(a, gw_rejected_json(r->cells[i]));
  gw_send_json(req, 200, a);
}

static void render_summary(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e;
  Batch__V1__ErrorSummary *r = (void *)resp;
  json_t *a = json_array();
  for (size_t i = 0; i < r->n_entries; i++) json_array_append_new(a, gw_summary_entry_json(r->entries[i]));
  gw_send_json(req, 200, a);
}

/* ---- helpers --------------------------------------------------------------- */

#define SEP_EXPECTED                                                                                             \
  "separator: expected one printable ASCII character other than '\"' (or a tab: \\t, tab); empty means ','"

/* The tenant header's value; NULL/0 when absent. */
static h2o_iovec_t tenant_header(gw_thread_t *th, h2o_req_t *req) {
  const char *name = th->srv->tenant_header;
  ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
  return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/* The tenant from the header alone (no API key): in the request pool, or
 * NULL after answering 400. */
static const char *header_tenant(gw_thread_t *th, h2o_req_t *req) {
  h2o_iovec_t v = tenant_header(th, req);
  char *t = h2o_mem_alloc_pool(&req->pool, 65);
  if (gw_tenant_resolve(v.base, v.len, t) != 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "invalid tenant id: use 1-64 characters of A-Z a-z 0-9 . _ -");
    return NULL;
  }
  return t;
}

static void send_401(h2o_req_t *req, int invalid_token, const char *msg) {
  const char *v = invalid_token ? "Bearer realm=\"batch-on-kafka\", error=\"invalid_token\"" : "Bearer realm=\"batch-on-kafka\"";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, v, strlen(v));
  gw_send_error(req, 401, "UNAUTHENTICATED", "%s", msg);
}

/* The current API key table, with a reference the caller drops with
 * gw_keys_unref (a SIGHUP reload may swap the server's table meanwhile). */
static gw_keys_t *current_keys(gw_server_t *s) {
  pthread_mutex_lock(&s->keys_mu);
  gw_keys_t *k = s->keys;
  gw_keys_ref(k);
  pthread_mutex_unlock(&s->keys_mu);
  return k;
}

/* Who is calling (issue 12, SPEC 3): with API keys configured, a valid
 * "Authorization: Bearer <key>" decides the tenant and a tenant header may
 * only repeat it (else 403); a missing key is 401 when auth.required, else
 * the tenant header decides as in the guide; an unknown or malformed key is
 * always 401. Without keys the header is all there is. Returns the tenant
 * (request pool) or NULL after answering. */
static const char *authorize(gw_thread_t *th, h2o_req_t *req) {
  gw_keys_t *keys = current_keys(th->srv);
  const char *tenant = NULL;
  ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
  if (gw_keys_count(keys) == 0 || (ai < 0 && !gw_keys_required(keys))) {
    tenant = header_tenant(th, req);
    goto done;
  }
  if (ai < 0) {
    send_401(req, 0, "API key required: send Authorization: Bearer <key>");
    goto done;
  }
  const char *tok;
  size_t toklen;
  h2o_iovec_t av = req->headers.entries[ai].value;
  char *t = h2o_mem_alloc_pool(&req->pool, 65);
  if (gw_auth_bearer(av.base, av.len, &tok, &toklen) != 0) {
    send_401(req, 1, "malformed Authorization header: expected Bearer <key>");
    goto done;
  }
  if (!gw_keys_lookup(keys, tok, toklen, t)) {
    send_401(req, 1, "invalid API key");
    goto done;
  }
  h2o_iovec_t hv = tenant_header(th, req);
  if (hv.len > 0 && !(hv.len == strlen(t) && memcmp(hv.base, t, hv.len) == 0)) {
    if (!bok_tenant_valid(hv.base, hv.len))
      gw_send_error(req, 400, "INVALID_ARGUMENT", "invalid tenant id: use 1-64 characters of A-Z a-z 0-9 . _ -");
    else
      gw_send_error(req, 403, "PERMISSION_DENIED", "%s: this API key is not for tenant '%.*s'", th->srv->tenant_header,
                    (int)hv.len, hv.base);
    goto done;
  }
  tenant = t;
done:
  gw_keys_unref(keys);
  return tenant;
}

/* Copies path segment [start,len) into the pool as a C string. */
static char *seg_dup(h2o_req_t *req, const char *p, size_t n) {
  char *s = h2o_mem_alloc_pool(&req->pool, n + 1);
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Query parameter (decoded) of the request; 1 found, 0 absent, -1 bad. */
static int query_param(h2o_req_t *req, const char *key, char *out, size_t cap) {
  if (req->query_at == SIZE_MAX) return 0;
  return gw_query_param(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, key, out, cap);
}

/* A numeric query parameter in [min, max] (docs/openapi.yaml gives the same
 * minimum/maximum): 1 and *out set when present, 0 when absent (*out kept),
 * -1 after answering 400 (not digits, out of range, or too long; never
 * overflows). */
static int query_int(h2o_req_t *req, const char *key, int64_t min, int64_t max, int64_t *out) {
  char v[32];
  int q = query_param(req, key, v, sizeof v);
  if (q == 0) return 0;
  if (q > 0 && gw_parse_range(v, min, max, out) == 0) return 1;
  gw_send_error(req, 400, "INVALID_ARGUMENT", "%s: expected an integer %lld-%lld", key, (long long)min,
                (long long)max);
  return -1;
}

/* Parses a JSON body; answers 413/400/415 and returns NULL on failure. */
static json_t *json_body(gw_thread_t *th, h2o_req_t *req) {
  if (req->entity.len > th->srv->max_json_body) {
    gw_send_error(req, 413, "RESOURCE_EXHAUSTED", "request body too large (limit %zu bytes)", th->srv->max_json_body);
    return NULL;
  }
  ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
  if (ct >= 0) {
    h2o_iovec_t v = req->headers.entries[ct].value;
    if (!gw_is_json_content_type(v.base, v.len)) {
      gw_send_error(req, 415, "INVALID_ARGUMENT", "expected Content-Type: application/json");
      return NULL;
    }
  }
  json_error_t je;
  json_t *j = json_loadb(req->entity.base ? req->entity.base : "", req->entity.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "malformed JSON: %s (line %d, column %d)", je.text, je.line,
                  je.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    gw_send_error(req, 400, "INVALID_ARGUMENT", "the request body must be a JSON object");
    return NULL;
  }
  return j;
}

/* Reads "name" and "schema" from a model body into pool strings. Either may
 * be required. Answers 400 and returns -1 on failure. */
static int model_fields(h2o_req_t *req, json_t *j, int require, char **name, char **schema) {
  json_t *n = json_object_get(j, "name");
  json_t *s = json_object_get(j, "schema");
  *name = *schema = NULL;
  if (n && !json_is_string(n)) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "name: must be a string");
    return -1;
  }
  if (require && !n) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "name: required");
    return -1;
  }
  if (n && json_string_length(n) == 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "name: must not be empty");
    return -1;
  }
  if (require && !s) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "schema: required");
    return -1;
  }
  if (s && !json_is_object(s)) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "schema: must be a JSON object");
    return -1;
  }
  if (!require && !n && !s && !json_object_get(j, "max_errors") && !json_object_get(j, "max_error_rate")) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "nothing to update: give a name, a schema, max_errors or max_error_rate");
    return -1;
  }
  if (n) *name = seg_dup(req, json_string_value(n), json_string_length(n));
  if (s) {
    /* 17 digits: the stored schema keeps every double exactly */
    char *t = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!t) {
      gw_send_error(req, 413, "RESOURCE_EXHAUSTED", "schema: too large");
      return -1;
    }
    *schema = seg_dup(req, t, strlen(t));
    free(t);
  }
  return 0;
}

/* max_errors (integer >= 0) and max_error_rate (0..1) of a model update;
 * null removes a default. 0, or -1 after answering 400. */
static int model_budget(h2o_req_t *req, json_t *j, Batch__V1__UpdateModelRequest *r) {
  json_t *me = json_object_get(j, "max_errors"), *mr = json_object_get(j, "max_error_rate");
  if (me) {
    if (!json_is_null(me) && !(json_is_integer(me) && json_integer_value(me) >= 0)) {
      gw_send_error(req, 400, "INVALID_ARGUMENT", "max_errors: expected a whole number >= 0, or null");
      return -1;
    }
    r->has_max_errors = 1;
    r->max_errors = json_is_null(me) ? -1 : json_integer_value(me);
  }
  if (mr) {
    double v = json_number_value(mr);
    if (!json_is_null(mr) && !(json_is_number(mr) && v >= 0 && v <= 1)) {
      gw_send_error(req, 400, "INVALID_ARGUMENT", "max_error_rate: expected a number from 0 to 1, or null");
      return -1;
    }
    r->has_max_error_rate = 1;
    r->max_error_rate = json_is_null(mr) ? -1 : v;
  }
  return 0;
}

/* ---- models ---------------------------------------------------------------- */

static int models_collection(gw_thread_t *th, h2o_req_t *req, const char *tenant) {
  if (method_is(req, "GET")) {
    Batch__V1__ListModelsRequest r = BATCH__V1__LIST_MODELS_REQUEST__INIT;
    return gw_call(th, req, "model", tenant, MODEL_SVC "ListModels", &r.base,
                   &batch__v1__list_models_response__descriptor, render_models, 200);
  }
  /* POST */
  json_t *j = json_body(th, req);
  if (!j) return 0;
  char *name, *schema;
  int rc = model_fields(req, j, 1, &name, &schema);
  json_decref(j);
  if (rc) return 0;
  Batch__V1__CreateModelRequest r = BATCH__V1__CREATE_MODEL_REQUEST__INIT;
  r.name = name;
  r.schema_json = schema;
  return gw_call(th, req, "model", tenant, MODEL_SVC "CreateModel", &r.base, &batch__v1__model__descriptor,
                 render_model, 201);
}

static int model_item(gw_thread_t *th, h2o_req_t *req, const char *tenant, char *id) {
  if (method_is(req, "GET")) {
    Batch__V1__GetModelRequest r = BATCH__V1__GET_MODEL_REQUEST__INIT;
    r.model_id = id;
    return gw_call(th, req, "model", tenant, MODEL_SVC "GetModel", &r.base, &batch__v1__model__descriptor,
                   render_model, 200);
  }
  if (method_is(req, "DELETE")) {
    Batch__V1__DeleteModelRequest r = BATCH__V1__DELETE_MODEL_REQUEST__INIT;
    r.model_id = id;
    return gw_call(th, req, "model", tenant, MODEL_SVC "DeleteModel", &r.base,
                   &batch__v1__delete_model_response__descriptor, render_deleted, 200);
  }
  /* PUT / PATCH */
  json_t *j = json_body(th, req);
  if (!j) return 0;
  char *name, *schema;
  int rc = model_fields(req, j, 0, &name, &schema);
  if (rc) {
    json_decref(j);
    return 0;
  }
  Batch__V1__UpdateModelRequest r = BATCH__V1__UPDATE_MODEL_REQUEST__INIT;
  r.model_id = id;
  if (name) r.name = name;
  if (schema) r.schema_json = schema;
  rc = model_budget(req, j, &r);
  json_decref(j);
  if (rc) return 0;
  return gw_call(th, req, "model", tenant, MODEL_SVC "UpdateModel", &r.base, &batch__v1__model__descriptor,
                 render_model, 200);
}

/* ---- jobs ------------------------------------------------------------------ */

/* A boolean form field or query value: true/false/1/0 (any case); -1 else. */
static int parse_bool(const char *v, size_t n) {
  if ((n == 4 && strncasecmp(v, "true", 4) == 0) || (n == 1 && v[0] == '1')) return 1;
  if ((n == 5 && strncasecmp(v, "false", 5) == 0) || (n == 1 && v[0] == '0')) return 0;
  return -1;
}

/* dry_run, max_errors, max_error_rate form fields (SPEC 12). 0, or -1 after
 * answering 400. */
static int job_opts(h2o_req_t *req, const gw_part_t *parts, size_t n, gw_job_opts_t *o) {
  memset(o, 0, sizeof *o);
  const gw_part_t *p = gw_multipart_find(parts, n, "dry_run");
  if (p && (o->dry_run = parse_bool(p->data.base, p->data.len)) < 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "dry_run: expected true or false");
    return -1;
  }
  char v[32];
  p = gw_multipart_find(parts, n, "max_errors");
  if (p) {
    if (p->data.len >= sizeof v) goto bad_count;
    memcpy(v, p->data.base, p->data.len);
    v[p->data.len] = '\0';
    if (gw_parse_count(v, INT64_MAX, &o->max_errors) != 0) goto bad_count;
    o->has_max_errors = 1;
  }
  p = gw_multipart_find(parts, n, "max_error_rate");
  if (p) {
    if (p->data.len == 0 || p->data.len >= sizeof v) goto bad_rate;
    memcpy(v, p->data.base, p->data.len);
    v[p->data.len] = '\0';
    for (char *c = v; *c; c++)
      if (!((*c >= '0' && *c <= '9') || *c == '.')) goto bad_rate; /* no sign, exponent, inf or nan */
    char *end;
    double r = strtod(v, &end);
    if (*end || !(r >= 0.0 && r <= 1.0)) goto bad_rate;
    o->max_error_rate = r;
    o->has_max_error_rate = 1;
  }
  return 0;
bad_count:
  gw_send_error(req, 400, "INVALID_ARGUMENT", "max_errors: expected a whole number >= 0");
  return -1;
bad_rate:
  gw_send_error(req, 400, "INVALID_ARGUMENT", "max_error_rate: expected a number from 0 to 1 (e.g. 0.1)");
  return -1;
}

/* The value of form field `name` as a NUL-terminated string in v (cap
 * bytes): 1 present, 0 absent, -1 too long. */
static int form_value(const gw_part_t *parts, size_t n, const char *name, char *v, size_t cap) {
  const gw_part_t *p = gw_multipart_find(parts, n, name);
  if (!p) return 0;
  if (p->data.len >= cap) return -1;
  memcpy(v, p->data.base, p->data.len);
  v[p->data.len] = '\0';
  return 1;
}

/* An encoding field's canonical name (as the job service knows them); NULL
 * when unknown. "" = utf-8. */
static const char *encoding_name(const char *v) {
  static const char *const names[][5] = {
      {"utf-8", "utf8", NULL},
      {"latin-1", "latin1", "iso-8859-1", "iso8859-1", NULL},
      {"windows-1252", "cp1252", "windows1252", NULL},
      {"utf-16", "utf16", NULL},
      {"utf-16le", "utf16le", NULL},
      {"utf-16be", "utf16be", NULL},
  };
  if (!*v) return "utf-8";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    for (size_t a = 0; names[i][a]; a++)
      if (strcasecmp(v, names[i][a]) == 0) return names[i][0];
  return NULL;
}

/* A Content-Encoding value: "gzip", "" (identity / none), NULL unknown. */
static const char *compression_name(const char *v, size_t n) {
  if (n == 0 || (n == 8 && strncasecmp(v, "identity", 8) == 0)) return "";
  if ((n == 4 && strncasecmp(v, "gzip", 4) == 0) || (n == 6 && strncasecmp(v, "x-gzip", 6) == 0)) return "gzip";
  return NULL;
}

/* format, encoding, quote, header form fields and the file's
 * Content-Encoding (the part's, else the request's) (SPEC 12 "Upload
 * options"). 0, or -1 after answering 400. *format: NULL = from the file. */
static int upload_opts(h2o_req_t *req, const gw_part_t *parts, size_t n, const gw_part_t *file, char sep,
                       const char **format, gw_job_opts_t *o) {
  char v[64];
  int r = form_value(parts, n, "format", v, sizeof v);
  *format = NULL;
  if (r && (r < 0 || (strcmp(v, "csv") != 0 && strcmp(v, "ndjson") != 0))) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "format: use csv or ndjson");
    return -1;
  }
  if (r) *format = strcmp(v, "csv") == 0 ? "csv" : "ndjson";
  r = form_value(parts, n, "encoding", v, sizeof v);
  o->encoding = r > 0 ? encoding_name(v) : r == 0 ? "" : NULL;
  if (!o->encoding) {
    gw_send_error(req, 400, "INVALID_ARGUMENT",
                  "encoding: use utf-8, latin-1, windows-1252, utf-16 (with a byte order mark), utf-16le or utf-16be");
    return -1;
  }
  r = form_value(parts, n, "quote", v, sizeof v);
  if (r && (r < 0 || (v[0] && (v[1] || v[0] < 0x21 || v[0] > 0x7e || v[0] == sep)))) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "quote: one printable ASCII character other than the separator; "
                  "empty means '\"'");
    return -1;
  }
  o->quote[0] = r > 0 ? v[0] : '\0';
  o->quote[1] = '\0';
  const gw_part_t *h = gw_multipart_find(parts, n, "header");
  int hv = h ? parse_bool(h->data.base, h->data.len) : 1;
  if (hv < 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "header: expected true or false");
    return -1;
  }
  o->no_header = !hv;
  h2o_iovec_t ce = h2o_iovec_init(file->content_encoding.base, file->content_encoding.len);
  ssize_t rce = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_ENCODING, -1);
  if (!ce.len && rce >= 0) ce = req->headers.entries[rce].value;
  o->compression = compression_name(ce.base, ce.len);
  if (!o->compression) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "Content-Encoding: use gzip or identity");
    return -1;
  }
  return 0;
}

/* The format of an upload without a format field: what the file name (a
 * ".gz" ending ignored) or the part's content type says, else NULL (the job
 * service looks at the content). */
static const char *format_of_file(const gw_part_t *file) {
  size_t n = file->filename.len;
  const char *fn = file->filename.base;
  if (n > 3 && strncasecmp(fn + n - 3, ".gz", 3) == 0) n -= 3;
  const char *f = gw_upload_format(fn, n, file->content_type.base, file->content_type.len);
  if (strcmp(f, "ndjson") == 0) return f;
  if ((n > 4 && (strncasecmp(fn + n - 4, ".csv", 4) == 0 || strncasecmp(fn + n - 4, ".tsv", 4) == 0)) ||
      (file->content_type.len >= 8 && strncasecmp(file->content_type.base, "text/csv", 8) == 0))
    return "csv";
  return NULL;
}

/* POST /jobs: the body is fully buffered by h2o; it is validated completely
 * (every boundary, both fields) before the upload stream is opened, so a bad
 * or truncated body never leaves a job behind. */
static int jobs_create(gw_thread_t *th, h2o_req_t *req, const char *tenant) {
  ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  int n = gw_multipart_parse_release(ct >= 0 ? req->headers.entries[ct].value.base : NULL,
                             ct >= 0 ? req->headers.entries[ct].value.len : 0, req->entity.base, req->entity.len,
                             parts, GW_MAX_PARTS, err, sizeof err);
  if (n < 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "%s", err);
    return 0;
  }
  const gw_part_t *mid = gw_multipart_find(parts, (size_t)n, "model_id");
  const gw_part_t *file = gw_multipart_find(parts, (size_t)n, "file");
  if (!mid) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "model_id: required form field");
    return 0;
  }
  if (!file) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "file: required form field");
    return 0;
  }
  bok_slice_t idv = mid->data;
  while (idv.len && isspace((unsigned char)idv.base[idv.len - 1])) idv.len--;
  while (idv.len && isspace((unsigned char)idv.base[0])) idv.base++, idv.len--;
  if (idv.len == 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "model_id: required form field");
    return 0;
  }
  char *model_id = seg_dup(req, idv.base, idv.len);
  if (idv.len != 36 || !bok_uuid_valid(model_id)) {
    gw_send_error(req, 404, "NOT_FOUND", "model not found");
    return 0;
  }
  for (char *c = model_id; *c; c++) *c = (char)tolower((unsigned char)*c);
  char sep = ',';
  const gw_part_t *sp = gw_multipart_find(parts, (size_t)n, "separator");
  if (sp && gw_separator_parse(sp->data.base, sp->data.len, &sep) != 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "%s", SEP_EXPECTED);
    return 0;
  }
  gw_job_opts_t opts;
  if (job_opts(req, parts, (size_t)n, &opts) != 0) return 0;
  const char *format;
  if (upload_opts(req, parts, (size_t)n, file, sep, &format, &opts) != 0) return 0;
  if (!format) format = format_of_file(file);
  const char *fname = "upload";
  if (file->filename.len) { /* any bytes may arrive here; store valid UTF-8 */
    json_t *t = gw_json_str(seg_dup(req, file->filename.base, file->filename.len));
    fname = seg_dup(req, json_string_value(t), json_string_length(t));
    json_decref(t);
    if (!*fname) fname = "upload";
  }
  if (gw_upload_submit(th->srv->uploads, th, req, tenant, model_id, fname, format, sep, &opts, file->data.base, file->data.len) != 0)
    gw_send_error(req, 503, "UNAVAILABLE", "job service unavailable");
  return 0;
}

static int jobs_list(gw_thread_t *th, h2o_req_t *req, const char *tenant) {
  Batch__V1__ListJobsRequest r = BATCH__V1__LIST_JOBS_REQUEST__INIT;
  char v[64];
  int q = query_param(req, "state", v, sizeof v);
  if (q != 0) { /* present: one of the enum's names (empty is refused, issue 12) */
    int st = q > 0 ? gw_job_state_parse(v, strlen(v)) : -1;
    if (st < 0) {
      gw_send_error(req, 400, "INVALID_ARGUMENT",
                    "state: expected PENDING, RUNNING, SUCCESS, PARTIAL_SUCCESS, FAILED or CANCELLED (or in lower case)");
      return 0;
    }
    r.state = (Batch__V1__JobState)st;
  }
  int64_t lim = 0;
  if (query_int(req, "limit", 0, GW_JOBS_LIMIT_MAX, &lim) < 0) return 0;
  r.limit = (int32_t)lim;
  return gw_call(th, req, "job", tenant, JOB_SVC "ListJobs", &r.base, &batch__v1__list_jobs_response__descriptor,
                 render_jobs, 200);
}

static int job_rejected(gw_thread_t *th, h2o_req_t *req, const char *tenant, char *id) {
  Batch__V1__ListRejectedRequest r = BATCH__V1__LIST_REJECTED_REQUEST__INIT;
  r.job_id = id;
  int64_t lim = GW_REJECTED_LIMIT_DEFAULT, after = 0;
  if (query_int(req, "limit", 1, GW_REJECTED_LIMIT_MAX, &lim) < 0) return 0;
  if (query_int(req, "after_row", 0, INT64_MAX, &after) < 0) return 0;
  r.limit = (int32_t)lim;
  r.after_row = after;
  return gw_call(th, req, "job", tenant, JOB_SVC "ListRejected", &r.base,
                 &batch__v1__list_rejected_response__descriptor, render_rejected, 200);
}

/* GET /jobs/{id}/rejected/download[?annotate=true] */
static int job_download(gw_thread_t *th, h2o_req_t *req, const char *tenant, char *id) {
  char v[16];
  int q = query_param(req, "annotate", v, sizeof v);
  int annotate = q > 0 ? parse_bool(v, strlen(v)) : q == 0 ? 0 : -1;
  if (annotate < 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "annotate: expected true or false");
    return 0;
  }
  return gw_download_start(th, req, tenant, id, annotate);
}

/* ---- misc ------------------------------------------------------------------- */

/* POST /schema: body = a CSV or NDJSON sample (by content; ?separator=,
 * default ','), ?rows= (default 10,000), ?confidence= (share in (0, 1],
 * default 0.95), ?explain=true -> {"schema":..., "explain":...} (report of
 * lib/rows/detect.c). The sample is capped at max_json_body bytes, so
 * detection is cheap enough to run inline on the loop thread. */
static int detect_schema(gw_thread_t *th, h2o_req_t *req) {
  if (req->entity.len > th->srv->max_json_body) {
    gw_send_error(req, 413, "RESOURCE_EXHAUSTED", "request body too large (limit %zu bytes)",
                  th->srv->max_json_body);
    return 0;
  }
  char v[16];
  char sep = ',';
  int q = query_param(req, "separator", v, sizeof v);
  if (q < 0 || (q > 0 && gw_separator_parse(v, strlen(v), &sep) != 0)) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "%s", SEP_EXPECTED);
    return 0;
  }
  if (req->entity.len == 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "empty sample: send a CSV sample with a header row as the body");
    return 0;
  }
  bok_detect_opts_t o;
  bok_detect_opts_init(&o);
  o.sep = sep;
  int64_t rows = BOK_DETECT_DEFAULT_ROWS;
  if (query_int(req, "rows", 1, 1000000, &rows) < 0) return 0;
  o.max_rows = (size_t)rows;
  char cv[32], *end = NULL;
  q = query_param(req, "confidence", cv, sizeof cv);
  if (q != 0) {
    o.confidence = q > 0 ? strtod(cv, &end) : 0;
    if (q < 0 || end == cv || *end || !(o.confidence > 0 && o.confidence <= 1)) {
      gw_send_error(req, 400, "INVALID_ARGUMENT", "confidence: expected a share of values in (0, 1], e.g. 0.95");
      return 0;
    }
  }
  int explain = 0;
  q = query_param(req, "explain", v, sizeof v);
  if (q != 0) {
    explain = q > 0 && !strcmp(v, "true");
    if (q < 0 || (!explain && strcmp(v, "false") != 0)) {
      gw_send_error(req, 400, "INVALID_ARGUMENT", "explain: expected true or false");
      return 0;
    }
  }
  char err[200] = "", *report = NULL;
  char *text = bok_detect(req->entity.base, req->entity.len, &o, explain ? &report : NULL, err, sizeof err);
  if (!text) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "%s", err[0] ? err : "cannot detect a schema");
    return 0;
  }
  json_t *j = json_loads(text, 0, NULL);
  free(text);
  if (j && explain) {
    json_t *both = json_object();
    json_object_set_new(both, "schema", j);
    json_object_set_new(both, "explain", report ? json_loads(report, 0, NULL) : json_null());
    j = both;
  }
  free(report);
  if (!j) {
    gw_send_error(req, 500, "INTERNAL", "schema detection produced invalid JSON");
    return 0;
  }
  gw_send_json(req, 200, j);
  return 0;
}

/* GET /metrics: every gateway metric (gw_obs.c) as Prometheus text. */
static int metrics(gw_thread_t *th, h2o_req_t *req) {
  bok_buf_t b = BOK_BUF_INIT(1 << 20);
  gw_obs_render(th->srv->obs, &b);
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; version=0.0.4"));
  gw_count_status(req, 200);
  req->res.content_length = b.len;
  h2o_send_inline(req, b.data ? b.data : "", b.len);
  bok_buf_free(&b);
  return 0;
}

/* GET/HEAD /openapi.yaml: the API description compiled into the binary, so
 * it is served from any working directory and in a container. */
static int openapi(h2o_req_t *req) {
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/yaml"));
  gw_count_status(req, 200);
  req->res.content_length = gw_openapi_yaml_len;
  h2o_send_inline(req, (const char *)gw_openapi_yaml, gw_openapi_yaml_len);
  return 0;
}

static int api(gw_thread_t *th, h2o_req_t *req, const gw_route_t *rt, const char *tenant);

int gw_handle(gw_thread_t *th, h2o_req_t *req) {
  gw_route_t rt;
  gw_route_parse(req->path_normalized.base, req->path_normalized.len, &rt);
  if (rt.kind == GW_R_NOT_FOUND) {
    gw_send_error(req, 404, NULL, "not found");
    return 0;
  }
  int head = method_is(req, "HEAD");
  if (!gw_route_allows(rt.kind, req->method.base, req->method.len) &&
      !(head && (rt.kind == GW_R_HEALTHZ || rt.kind == GW_R_READYZ || rt.kind == GW_R_METRICS))) {
    const char *allow = gw_route_allow_header(rt.kind);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    gw_send_error(req, 405, NULL, "method not allowed");
    return 0;
  }
  if (rt.kind == GW_R_HEALTHZ) {
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    gw_send_json(req, 200, o);
    return 0;
  }
  if (rt.kind == GW_R_METRICS) return metrics(th, req);
  if (rt.kind == GW_R_READYZ) {
    int status;
    json_t *body = gw_obs_readyz(th->srv->obs, &status);
    gw_send_json(req, status, body);
    return 0;
  }
  if (rt.kind == GW_R_OPENAPI) return openapi(req);
  if (rt.kind == GW_R_CONSOLE) return gw_console_serve(req, "", 0);
  if (rt.kind == GW_R_CONSOLE_FILE) { /* the file name: the path's last segment */
    const char *p = req->path_normalized.base, *e = p + req->path_normalized.len;
    while (e > p && e[-1] == '/') e--;
    const char *b = e;
    while (b > p && b[-1] != '/') b--;
    return gw_console_serve(req, b, (size_t)(e - b));
  }

  /* everything below is the API: a key when keys are on (POST /schema has no
   * tenant but costs CPU, so it needs one too) */
  const char *tenant = authorize(th, req);
  if (!tenant) return 0;
  if (rt.kind == GW_R_SCHEMA) return detect_schema(th, req);
  return api(th, req, &rt, tenant);
}

/* The tenant's API routes (authorized; the method is allowed). */
static int api(gw_thread_t *th, h2o_req_t *req, const gw_route_t *rt, const char *tenant) {
  char *id = rt->id[0] ? seg_dup(req, rt->id, 36) : NULL;
  switch (rt->kind) {
    case GW_R_MODELS: return models_collection(th, req, tenant);
    case GW_R_MODEL: return model_item(th, req, tenant, id);
    case GW_R_JOBS: return method_is(req, "GET") ? jobs_list(th, req, tenant) : jobs_create(th, req, tenant);
    case GW_R_JOB:
      if (method_is(req, "GET")) {
        return gw_call_job_read(th, req, tenant, JOB_SVC "GetJob", id, &batch__v1__job__descriptor, render_job, 200);
      } else {
        Batch__V1__CancelJobRequest r = BATCH__V1__CANCEL_JOB_REQUEST__INIT;
        r.job_id = id;
        return gw_call(th, req, "job", tenant, JOB_SVC "CancelJob", &r.base, &batch__v1__job__descriptor,
                       render_cancelled, 200);
      }
    case GW_R_JOB_REJECTED: return job_rejected(th, req, tenant, id);
    case GW_R_JOB_DOWNLOAD: return job_download(th, req, tenant, id);
    case GW_R_JOB_EVENTS: return gw_watch_start(th, req, tenant, id);
    case GW_R_JOB_ERRORS: {
      Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
      r.job_id = id;
      return gw_call(th, req, "job", tenant, JOB_SVC "GetErrorSummary", &r.base,
                     &batch__v1__error_summary__descriptor, render_summary, 200);
    }
    case GW_R_JOB_REPROCESS: {
      Batch__V1__ReprocessJobRequest r = BATCH__V1__REPROCESS_JOB_REQUEST__INIT;
      r.job_id = id;
      return gw_call(th, req, "job", tenant, JOB_SVC "ReprocessJob", &r.base, &batch__v1__job__descriptor,
                     render_job, 202);
    }
    default: break;
  }
  gw_send_error(req, 404, NULL, "not found");
  return 0;
}
