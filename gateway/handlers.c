/* REST handlers: parse and check the request on the loop thread, then start
 * an async gRPC call whose answer a render function turns into JSON. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/v1/job.pb-c.h"
#include "batch/v1/model.pb-c.h"
#include "bok/detect.h"
#include "bok/util.h"
#include "gw_internal.h"
#include "json_map.h"
#include "multipart.h"

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

static void render_job(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)e;
  gw_send_json(req, (int)p->limit, gw_job_json((Batch__V1__Job *)resp));
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

/* ---- helpers --------------------------------------------------------------- */

/* Returns the tenant (in the request pool) or NULL after answering 400. */
static const char *get_tenant(gw_thread_t *th, h2o_req_t *req) {
  const char *name = th->srv->tenant_header;
  ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
  if (i < 0 || req->headers.entries[i].value.len == 0) return "tenant_a";
  h2o_iovec_t v = req->headers.entries[i].value;
  if (!bok_tenant_valid(v.base, v.len)) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "invalid tenant id: use 1-64 characters of A-Z a-z 0-9 . _ -");
    return NULL;
  }
  char *t = h2o_mem_alloc_pool(&req->pool, v.len + 1);
  memcpy(t, v.base, v.len);
  t[v.len] = '\0';
  return t;
}

/* Copies path segment [start,len) into the pool as a C string. */
static char *seg_dup(h2o_req_t *req, const char *p, size_t n) {
  char *s = h2o_mem_alloc_pool(&req->pool, n + 1);
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Query parameter value (not decoded; our parameters are plain tokens). */
static int query_param(h2o_req_t *req, const char *key, char *out, size_t cap) {
  if (req->query_at == SIZE_MAX) return 0;
  const char *q = req->path.base + req->query_at + 1;
  const char *end = req->path.base + req->path.len;
  size_t kl = strlen(key);
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *e = amp ? amp : end;
    if ((size_t)(e - q) > kl && memcmp(q, key, kl) == 0 && q[kl] == '=') {
      size_t n = (size_t)(e - q) - kl - 1;
      if (n >= cap) n = cap - 1;
      memcpy(out, q + kl + 1, n);
      out[n] = '\0';
      return 1;
    }
    q = e + 1;
  }
  return 0;
}

static int parse_i64(const char *s, int64_t *out) {
  if (!*s) return -1;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*end || v < 0) return -1;
  *out = v;
  return 0;
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
    if (!(v.len >= 16 && strncasecmp(v.base, "application/json", 16) == 0)) {
      gw_send_error(req, 415, "INVALID_ARGUMENT", "expected Content-Type: application/json");
      return NULL;
    }
  }
  json_error_t je;
  json_t *j = json_loadb(req->entity.base ? req->entity.base : "", req->entity.len, 0, &je);
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
  if (require && (!n || json_string_length(n) == 0)) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "name: required");
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
  if (!require && !n && !s) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "nothing to update: give a name and/or a schema");
    return -1;
  }
  if (n) *name = seg_dup(req, json_string_value(n), json_string_length(n));
  if (s) {
    char *t = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    *schema = seg_dup(req, t, strlen(t));
    free(t);
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
  if (method_is(req, "POST")) {
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
  gw_send_error(req, 405, NULL, "method not allowed");
  return 0;
}

static int model_item(gw_thread_t *th, h2o_req_t *req, const char *tenant, char *id) {
  if (method_is(req, "GET")) {
    Batch__V1__GetModelRequest r = BATCH__V1__GET_MODEL_REQUEST__INIT;
    r.model_id = id;
    return gw_call(th, req, "model", tenant, MODEL_SVC "GetModel", &r.base, &batch__v1__model__descriptor,
                   render_model, 200);
  }
  if (method_is(req, "PUT") || method_is(req, "PATCH")) {
    json_t *j = json_body(th, req);
    if (!j) return 0;
    char *name, *schema;
    int rc = model_fields(req, j, 0, &name, &schema);
    json_decref(j);
    if (rc) return 0;
    Batch__V1__UpdateModelRequest r = BATCH__V1__UPDATE_MODEL_REQUEST__INIT;
    r.model_id = id;
    if (name) r.name = name;
    if (schema) r.schema_json = schema;
    return gw_call(th, req, "model", tenant, MODEL_SVC "UpdateModel", &r.base, &batch__v1__model__descriptor,
                   render_model, 200);
  }
  if (method_is(req, "DELETE")) {
    Batch__V1__DeleteModelRequest r = BATCH__V1__DELETE_MODEL_REQUEST__INIT;
    r.model_id = id;
    return gw_call(th, req, "model", tenant, MODEL_SVC "DeleteModel", &r.base,
                   &batch__v1__delete_model_response__descriptor, render_deleted, 200);
  }
  gw_send_error(req, 405, NULL, "method not allowed");
  return 0;
}

/* ---- jobs ------------------------------------------------------------------ */

static const char *upload_format(const gw_part_t *file) {
  const char *fn = file->filename.base;
  size_t n = file->filename.len;
  if ((n >= 7 && strncasecmp(fn + n - 7, ".ndjson", 7) == 0) || (n >= 6 && strncasecmp(fn + n - 6, ".jsonl", 6) == 0))
    return "ndjson";
  const char *ct = file->content_type.base;
  size_t cl = file->content_type.len;
  if (ct && ((cl >= 20 && strncasecmp(ct, "application/x-ndjson", 20) == 0) ||
             (cl >= 17 && strncasecmp(ct, "application/jsonl", 17) == 0)))
    return "ndjson";
  return "csv";
}

static int jobs_create(gw_thread_t *th, h2o_req_t *req, const char *tenant) {
  ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
  gw_part_t parts[16];
  char err[200];
  int n = gw_multipart_parse(ct >= 0 ? req->headers.entries[ct].value.base : NULL,
                             ct >= 0 ? req->headers.entries[ct].value.len : 0, req->entity.base, req->entity.len,
                             parts, 16, err, sizeof err);
  if (n < 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "%s", err);
    return 0;
  }
  const gw_part_t *mid = gw_multipart_find(parts, (size_t)n, "model_id");
  const gw_part_t *file = gw_multipart_find(parts, (size_t)n, "file");
  if (!mid || mid->data.len == 0) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "model_id: required form field");
    return 0;
  }
  if (!file) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "file: required form field");
    return 0;
  }
  char *model_id = seg_dup(req, mid->data.base, mid->data.len);
  if (!bok_uuid_valid(model_id)) {
    gw_send_error(req, 404, "NOT_FOUND", "model not found");
    return 0;
  }
  char *fname = seg_dup(req, file->filename.base ? file->filename.base : "upload", file->filename.len ? file->filename.len : 6);
  if (gw_upload_submit(th, req, tenant, model_id, fname, upload_format(file), file->data.base, file->data.len) != 0)
    gw_send_error(req, 503, "UNAVAILABLE", "upload queue unavailable");
  return 0;
}

static int jobs_collection(gw_thread_t *th, h2o_req_t *req, const char *tenant) {
  if (method_is(req, "GET")) {
    Batch__V1__ListJobsRequest r = BATCH__V1__LIST_JOBS_REQUEST__INIT;
    char v[64];
    if (query_param(req, "state", v, sizeof v)) {
      int st = gw_job_state_parse(v, strlen(v));
      if (st < 0) {
        gw_send_error(req, 400, "INVALID_ARGUMENT", "state: unknown state '%s'", v);
        return 0;
      }
      r.state = (Batch__V1__JobState)st;
    }
    int64_t lim = 0;
    if (query_param(req, "limit", v, sizeof v) && (parse_i64(v, &lim) != 0 || lim > 100000)) {
      gw_send_error(req, 400, "INVALID_ARGUMENT", "limit: expected an integer 0-100000");
      return 0;
    }
    r.limit = (int32_t)lim;
    return gw_call(th, req, "job", tenant, JOB_SVC "ListJobs", &r.base, &batch__v1__list_jobs_response__descriptor,
                   render_jobs, 200);
  }
  if (method_is(req, "POST")) return jobs_create(th, req, tenant);
  gw_send_error(req, 405, NULL, "method not allowed");
  return 0;
}

static int job_item(gw_thread_t *th, h2o_req_t *req, const char *tenant, char *id, const char *sub, size_t sublen) {
  if (sublen == 0) {
    if (method_is(req, "GET")) {
      Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
      r.job_id = id;
      return gw_call(th, req, "job", tenant, JOB_SVC "GetJob", &r.base, &batch__v1__job__descriptor, render_job, 200);
    }
    if (method_is(req, "DELETE")) {
      Batch__V1__CancelJobRequest r = BATCH__V1__CANCEL_JOB_REQUEST__INIT;
      r.job_id = id;
      return gw_call(th, req, "job", tenant, JOB_SVC "CancelJob", &r.base, &batch__v1__job__descriptor,
                     render_cancelled, 200);
    }
  } else if (h2o_memis(sub, sublen, H2O_STRLIT("rejected"))) {
    if (method_is(req, "GET")) {
      Batch__V1__ListRejectedRequest r = BATCH__V1__LIST_REJECTED_REQUEST__INIT;
      r.job_id = id;
      char v[64];
      int64_t lim = 1000, after = 0;
      if (query_param(req, "limit", v, sizeof v) && (parse_i64(v, &lim) != 0 || lim < 1 || lim > 100000)) {
        gw_send_error(req, 400, "INVALID_ARGUMENT", "limit: expected an integer 1-100000");
        return 0;
      }
      if (query_param(req, "after_row", v, sizeof v) && parse_i64(v, &after) != 0) {
        gw_send_error(req, 400, "INVALID_ARGUMENT", "after_row: expected a non-negative integer");
        return 0;
      }
      r.limit = (int32_t)lim;
      r.after_row = after;
      return gw_call(th, req, "job", tenant, JOB_SVC "ListRejected", &r.base,
                     &batch__v1__list_rejected_response__descriptor, render_rejected, 200);
    }
  } else if (h2o_memis(sub, sublen, H2O_STRLIT("reprocess"))) {
    if (method_is(req, "POST")) {
      Batch__V1__ReprocessJobRequest r = BATCH__V1__REPROCESS_JOB_REQUEST__INIT;
      r.job_id = id;
      return gw_call(th, req, "job", tenant, JOB_SVC "ReprocessJob", &r.base, &batch__v1__job__descriptor,
                     render_job, 202);
    }
  } else {
    gw_send_error(req, 404, NULL, "not found");
    return 0;
  }
  gw_send_error(req, 405, NULL, "method not allowed");
  return 0;
}

/* ---- misc ------------------------------------------------------------------- */

/* POST /schema: body = a CSV sample. Detection is bounded (max_json_body
 * bytes, 10,000 rows), so it runs inline on the loop thread. */
static int detect_schema(gw_thread_t *th, h2o_req_t *req) {
  if (!method_is(req, "POST")) {
    gw_send_error(req, 405, NULL, "method not allowed");
    return 0;
  }
  if (req->entity.len > th->srv->max_json_body) {
    gw_send_error(req, 413, "RESOURCE_EXHAUSTED", "sample too large (limit %zu bytes)", th->srv->max_json_body);
    return 0;
  }
  char err[200];
  char *text = bok_detect_schema(req->entity.base ? req->entity.base : "", req->entity.len, ',', 10000, err, sizeof err);
  if (!text) {
    gw_send_error(req, 400, "INVALID_ARGUMENT", "%s", err);
    return 0;
  }
  json_t *j = json_loads(text, 0, NULL);
  free(text);
  gw_send_json(req, 200, j);
  return 0;
}

static int metrics(gw_thread_t *th, h2o_req_t *req) {
  gw_server_t *s = th->srv;
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
                   "# TYPE bok_gateway_requests_total counter\nbok_gateway_requests_total %ld\n"
                   "# TYPE bok_gateway_responses_total counter\n"
                   "bok_gateway_responses_total{class=\"2xx\"} %ld\nbok_gateway_responses_total{class=\"4xx\"} %ld\n"
                   "bok_gateway_responses_total{class=\"5xx\"} %ld\n"
                   "# TYPE bok_gateway_backend_calls_in_flight gauge\nbok_gateway_backend_calls_in_flight %ld\n",
                   atomic_load(&s->req_total), atomic_load(&s->resp_2xx), atomic_load(&s->resp_4xx),
                   atomic_load(&s->resp_5xx), atomic_load(&s->in_flight));
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; version=0.0.4"));
  h2o_send_inline(req, buf, (size_t)n);
  return 0;
}

int gw_handle(gw_thread_t *th, h2o_req_t *req) {
  const char *p = req->path_normalized.base;
  size_t len = req->path_normalized.len;
  while (len > 1 && p[len - 1] == '/') len--; /* "/models/" == "/models" */

  if (h2o_memis(p, len, H2O_STRLIT("/healthz"))) {
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    gw_send_json(req, 200, o);
    return 0;
  }
  if (h2o_memis(p, len, H2O_STRLIT("/metrics"))) return metrics(th, req);

  const char *tenant = get_tenant(th, req);
  if (!tenant) return 0;

  int is_models = len >= 7 && memcmp(p, "/models", 7) == 0 && (len == 7 || p[7] == '/');
  int is_jobs = len >= 5 && memcmp(p, "/jobs", 5) == 0 && (len == 5 || p[5] == '/');
  if (is_models || is_jobs) {
    size_t base = is_models ? 7 : 5;
    if (len == base) return is_models ? models_collection(th, req, tenant) : jobs_collection(th, req, tenant);
    const char *id = p + base + 1;
    const char *slash = memchr(id, '/', (size_t)(p + len - id));
    size_t idlen = slash ? (size_t)(slash - id) : (size_t)(p + len - id);
    char *ids = seg_dup(req, id, idlen);
    const char *sub = slash ? slash + 1 : "";
    size_t sublen = slash ? (size_t)(p + len - sub) : 0;
    if (!bok_uuid_valid(ids) || (is_models && sublen)) {
      gw_send_error(req, 404, NULL, "not found");
      return 0;
    }
    for (char *c = ids; *c; c++) *c = (char)tolower((unsigned char)*c);
    return is_models ? model_item(th, req, tenant, ids) : job_item(th, req, tenant, ids, sub, sublen);
  }
  if (h2o_memis(p, len, H2O_STRLIT("/schema"))) return detect_schema(th, req);
  gw_send_error(req, 404, NULL, "not found");
  return 0;
}
