/* reply.c -- answering requests and pending backend calls (contract:
 * reply.h): JSON and error responses, the backend error -> HTTP mapping,
 * the pending call's life (request dispose, answer posted to the loop,
 * render), job reads of one turn of the loop sharing one call
 * (gw_call_job_read) and the per-tenant channel choice. Knows no handler
 * module. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "batch/v1/job.pb-c.h"
#include "gw_obs.h"
#include "json_map.h"
#include "reply.h"

/* ---- responses -------------------------------------------------------------- */

void gw_count_status(h2o_req_t *req, int status) {
  gw_server_t *s = gw_thread_of(req)->srv;
  if (s->access_log) {
    struct timeval now;
    gettimeofday(&now, NULL);
    struct timeval t0 = req->timestamps.request_begin_at;
    long ms = (long)((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_usec - t0.tv_usec) / 1000);
    bok_logf(s->log, s->log_opaque, BOK_LOG_INFO, "%.*s %.*s %d %ldms", (int)req->method.len, req->method.base,
             (int)(req->path.len > 200 ? 200 : req->path.len), req->path.base, status, ms);
  }
  gw_obs_count(s->obs, req, status);
}

static const char *reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

/* Sends text (len bytes) as the JSON body; h2o_send_inline copies it into
 * the request pool. */
static void send_json_text(h2o_req_t *req, int status, const char *text, size_t len) {
  req->res.status = status;
  req->res.reason = reason(status);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
  gw_count_status(req, status);
  req->res.content_length = len; /* h2o_send_inline would send it chunked */
  h2o_send_inline(req, text ? text : "", len);
}

void gw_send_json(h2o_req_t *req, int status, json_t *j) {
  char *text = gw_json_text(j);
  json_decref(j);
  send_json_text(req, status, text, text ? strlen(text) : 0);
  free(text);
}

/* The text of the answer being rendered for a shared call's requests (its
 * leader and followers, gw_pending_on_messages): rendered for the first, sent
 * as is to the rest. `on` only inside that group, so `key` (the answer) is
 * alive whenever it is compared. Loop thread (one per thread). */
static __thread struct {
  int on;
  const void *key;
  int status;
  char *text;
} memo;

static void memo_clear(void) {
  free(memo.text);
  memset(&memo, 0, sizeof memo);
}

void gw_send_json_once(h2o_req_t *req, int status, const void *key, json_t *(*make)(const void *key)) {
  if (memo.on && memo.text && memo.key == key && memo.status == status) {
    send_json_text(req, status, memo.text, strlen(memo.text));
    return;
  }
  json_t *j = make(key);
  char *text = gw_json_text(j);
  json_decref(j);
  send_json_text(req, status, text, text ? strlen(text) : 0);
  if (memo.on && text) {
    free(memo.text);
    memo.key = key;
    memo.status = status;
    memo.text = text;
  } else {
    free(text);
  }
}

void gw_send_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *o = json_object();
  json_object_set_new(o, "error", gw_json_str(msg));
  if (code) json_object_set_new(o, "code", json_string(code));
  gw_send_json(req, status, o);
}

void gw_send_rpc_error(h2o_req_t *req, const char *service, const bok_err_t *err, int plain_404) {
  gw_thread_t *th = gw_thread_of(req);
  switch (err->code) {
    case BOK_ERR_UNAVAILABLE:
      bok_logf(th->srv->log, th->srv->log_opaque, BOK_LOG_WARN, "%s service unavailable: %s", service, err->msg);
      gw_send_error(req, 503, "UNAVAILABLE", "%s service unavailable", service);
      return;
    case BOK_ERR_DEADLINE:
      gw_send_error(req, 504, "DEADLINE_EXCEEDED", "%s service did not answer in time", service);
      return;
    case BOK_ERR_NOT_FOUND:
      if (plain_404 || strcmp(err->msg, "not found") == 0 || !err->msg[0]) {
        gw_send_error(req, 404, NULL, "not found");
        return;
      }
      break;
    case BOK_OK: /* an OK status without a message: never expected */
      gw_send_error(req, 502, "UNKNOWN", "%s service sent an empty answer", service);
      return;
    default:
      break;
  }
  int status = bok_err_http_status(err->code);
  if (status >= 500)
    bok_logf(th->srv->log, th->srv->log_opaque, BOK_LOG_ERROR, "%s service error %s: %s", service,
             bok_err_code_name(err->code), err->msg);
  gw_send_error(req, status, bok_err_code_name(err->code), "%s", err->msg[0] ? err->msg : bok_err_code_name(err->code));
}

/* ---- pending calls ---------------------------------------------------------- */

static void pending_release(gw_pending_t *p) {
  if (--p->refs == 0) {
    if (p->owner_free) p->owner_free(p->owner);
    free(p);
  }
}

/* The request's pool is being cleared (answered or the client went away). */
static void on_req_dispose(void *slot) {
  gw_pending_t *p = *(gw_pending_t **)slot;
  if (p->owner_on_dispose) p->owner_on_dispose(p->owner);
  p->req = NULL;
  pending_release(p);
}

gw_pending_t *gw_pending_new(gw_thread_t *th, h2o_req_t *req, const char *service, gw_render_fn render) {
  gw_pending_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->th = th;
  p->req = req;
  p->refs = 2;
  p->render = render;
  p->service = service;
  p->plain_404 = 1;
  th->pending++;
  gw_pending_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_dispose);
  *slot = p;
  gw_obs_in_flight(th->srv->obs, 1);
  return p;
}

void gw_pending_post(gw_pending_t *p) { h2o_multithread_send_message(&p->th->rx, &p->msg); }

/* Answers p's request (if still there) with p's answer; the loop's counters. */
static void pending_answer(gw_pending_t *p, ProtobufCMessage *resp, const bok_err_t *err) {
  gw_obs_in_flight(p->th->srv->obs, -1);
  p->th->pending--;
  if (p->req) {
    if (resp || p->render_errors)
      p->render(p, p->req, resp, err);
    else
      gw_send_rpc_error(p->req, p->service, err, p->plain_404);
  }
}

void gw_pending_on_messages(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages) {
  (void)rx;
  while (!h2o_linklist_is_empty(messages)) {
    gw_pending_t *p = H2O_STRUCT_FROM_MEMBER(gw_pending_t, msg.link, messages->next);
    h2o_linklist_unlink(&p->msg.link);
    if (p->stream_event) { /* watch.c: the renderer owns the meaning; no request slot */
      p->render(p, NULL, p->resp, &p->err);
      if (p->resp) protobuf_c_message_free_unpacked(p->resp, NULL);
      free(p);
      continue;
    }
    memo.on = p->followers != NULL; /* a shared answer: rendered once (gw_send_json_once) */
    pending_answer(p, p->resp, &p->err);
    for (gw_pending_t *f = p->followers, *next; f; f = next) { /* gw_call_job_read */
      next = f->next_follower;
      pending_answer(f, p->resp, &p->err);
      pending_release(f);
    }
    memo_clear();
    if (p->resp) protobuf_c_message_free_unpacked(p->resp, NULL);
    pending_release(p);
  }
}

static void on_rpc_done(void *ud, ProtobufCMessage *resp, const bok_err_t *err) {
  gw_pending_t *p = ud; /* runs on the channel's completion thread */
  p->resp = resp;
  p->err = *err;
  gw_pending_post(p);
}

bok_rpc_channel_t *gw_channel_for(gw_server_t *s, const char *tenant, int job) {
  const bok_route_t *r = bok_routes_lookup(s->routes, tenant);
  const char *addr = job ? r->job_addr : r->model_addr;
  return bok_rpc_chancache_get(s->channels, addr);
}

/* Starts the call that answers p (and its followers). Loop thread. */
static void pending_start(gw_pending_t *p, const char *tenant, const char *method, const ProtobufCMessage *msg,
                          const ProtobufCMessageDescriptor *resp_desc) {
  gw_thread_t *th = p->th;
  bok_rpc_channel_t *ch = gw_channel_for(th->srv, tenant, strcmp(p->service, "job") == 0);
  if (!ch) {
    bok_err_set(&p->err, BOK_ERR_UNAVAILABLE, "no channel for this tenant");
    gw_pending_post(p);
  } else if (bok_rpc_unary_async(ch, method, tenant, th->srv->rpc_timeout_ms, msg, resp_desc, on_rpc_done, p) != 0) {
    p->err.code = BOK_ERR_UNAVAILABLE;
    snprintf(p->err.msg, sizeof p->err.msg, "cannot start call");
    gw_pending_post(p);
  }
}

static int call_start(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
                      const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
                      int64_t limit, void *ud) {
  gw_pending_t *p = gw_pending_new(th, req, service, render);
  if (!p) {
    gw_send_error(req, 503, "UNAVAILABLE", "out of memory");
    return 0;
  }
  p->limit = limit;
  p->ud = ud;
  p->render_errors = ud != NULL;
  pending_start(p, tenant, method, msg, resp_desc);
  return 0;
}

/* ---- job reads shared within one turn of the loop --------------------------- */

/* One call gathered this turn (th->shared): its first request's pending
 * (the leader: its answer renders the followers too). Loop thread. */
typedef struct gw_shared {
  struct gw_shared *next;
  gw_pending_t *leader;
  const char *method;
  const ProtobufCMessageDescriptor *resp_desc;
  char tenant[72];
  char id[72];
} gw_shared_t;

/* End of the turn (ctx.zero_timeout): starts every gathered call. */
static void shared_flush(h2o_timeout_entry_t *entry) {
  gw_thread_t *th = H2O_STRUCT_FROM_MEMBER(gw_thread_t, shared_tick, entry);
  gw_shared_t *b = th->shared;
  th->shared = NULL;
  while (b) {
    gw_shared_t *next = b->next;
    Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
    r.job_id = b->id;
    pending_start(b->leader, b->tenant, b->method, &r.base, b->resp_desc);
    free(b);
    b = next;
  }
}

static gw_shared_t *shared_find(gw_thread_t *th, const char *tenant, const char *method, const char *id) {
  for (gw_shared_t *b = th->shared; b; b = b->next)
    if (strcmp(b->method, method) == 0 && strcmp(b->id, id) == 0 && strcmp(b->tenant, tenant) == 0) return b;
  return NULL;
}

/* Opens a call for this turn with p as its leader; NULL out of memory or
 * for a key too long to keep (p then gets a call of its own). */
static gw_shared_t *shared_open(gw_thread_t *th, gw_pending_t *p, const char *tenant, const char *method,
                                const char *id, const ProtobufCMessageDescriptor *resp_desc) {
  gw_shared_t *b = NULL;
  if (strlen(tenant) >= sizeof b->tenant || strlen(id) >= sizeof b->id || !(b = calloc(1, sizeof *b))) return NULL;
  b->leader = p;
  b->method = method;
  b->resp_desc = resp_desc;
  snprintf(b->tenant, sizeof b->tenant, "%s", tenant);
  snprintf(b->id, sizeof b->id, "%s", id);
  b->next = th->shared;
  th->shared = b;
  if (!h2o_timeout_is_linked(&th->shared_tick)) {
    th->shared_tick.cb = shared_flush;
    h2o_timeout_link(th->ctx.loop, &th->ctx.zero_timeout, &th->shared_tick);
  }
  return b;
}

int gw_call_job_read(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *method, const char *id,
                     const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render, int64_t limit) {
  gw_pending_t *p = gw_pending_new(th, req, "job", render);
  if (!p) {
    gw_send_error(req, 503, "UNAVAILABLE", "out of memory");
    return 0;
  }
  p->limit = limit;
  if (!id) id = "";
  gw_shared_t *b = shared_find(th, tenant, method, id);
  if (b) { /* answered with the gathered call's answer */
    p->next_follower = b->leader->followers;
    b->leader->followers = p;
    return 0;
  }
  if (shared_open(th, p, tenant, method, id, resp_desc)) return 0;
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT; /* a call of its own, now */
  r.job_id = (char *)id;
  pending_start(p, tenant, method, &r.base, resp_desc);
  return 0;
}

int gw_call(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
            const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
            int64_t limit) {
  return call_start(th, req, service, tenant, method, msg, resp_desc, render, limit, NULL);
}

int gw_call_ud(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
               const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
               void *ud) {
  return call_start(th, req, service, tenant, method, msg, resp_desc, render, 0, ud);
}

