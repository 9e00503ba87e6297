/* gw_obs.c -- every gateway metric and /readyz (contract: gw_obs.h).
 *
 * Plain counters are atomics. Labeled children are resolved lazily into
 * tables indexed by route kind, method and status, so after a combination's
 * first response counting it is an atomic load + add. Readiness: lib/obs's
 * ready cache (bok_ready_cache_*) calls probe_all every second on its thread;
 * probe_all checks each backend with grpc.health.v1.Health/Check and keeps
 * each answer in `checks` under mu, which /readyz reads without waiting. */
#include "gw_obs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "bok/admin_http.h"
#include "bok/metrics.h"
#include "bok/rpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "route.h"

#define OBS_ROUTES 32 /* > every gw_route_kind_t */
#define OBS_METHODS 7
#define CHECK_INTERVAL_MS 1000
#define CHECK_TIMEOUT_MS 1000

static const char *METHODS[OBS_METHODS] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OTHER"};

typedef struct {
  char name[200]; /* "job 127.0.0.1:50052" */
  bok_rpc_channel_t *ch;
  int ok;
  char msg[256];
} check_t;

struct gw_obs {
  atomic_long req_total;
  atomic_long resp_by_status[GW_MAX_STATUS]; /* index = HTTP status */
  atomic_long in_flight;
  atomic_long conns_refused;
  atomic_long header_timeouts;
  bok_metric_family_t *f_req, *f_dur;
  bok_metric_t **req; /* [route][method][status] */
  bok_metric_t **dur; /* [route][method] */
  check_t *checks;    /* fixed after new; ok/msg under mu */
  size_t nchecks;
  int checked; /* a whole round finished (under mu) */
  pthread_mutex_t mu;
  atomic_int stopping; /* free: the probe skips the checks left */
  bok_ready_cache_t *ready;
};

/* ---- counting ---------------------------------------------------------------- */

void gw_obs_request(gw_obs_t *o) {
  if (o) atomic_fetch_add(&o->req_total, 1);
}
void gw_obs_in_flight(gw_obs_t *o, int delta) {
  if (o) atomic_fetch_add(&o->in_flight, delta);
}
void gw_obs_conn_refused(gw_obs_t *o) {
  if (o) atomic_fetch_add(&o->conns_refused, 1);
}
void gw_obs_header_timeout(gw_obs_t *o) {
  if (o) atomic_fetch_add(&o->header_timeouts, 1);
}

static int method_index(const h2o_req_t *req) {
  for (int i = 0; i < OBS_METHODS - 1; i++)
    if (req->method.len == strlen(METHODS[i]) && memcmp(req->method.base, METHODS[i], req->method.len) == 0) return i;
  return OBS_METHODS - 1;
}

static bok_metric_t *lazy(bok_metric_t **slot, bok_metric_family_t *f, const char *const *vals) {
  bok_metric_t *c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!c) {
    c = bok_metric_child(f, vals); /* once per combination: the registry returns the same child */
    __atomic_store_n(slot, c, __ATOMIC_RELEASE);
  }
  return c;
}

void gw_obs_count(gw_obs_t *o, h2o_req_t *req, int status) {
  if (!o) return;
  gw_route_t rt;
  gw_route_parse(req->path_normalized.base, req->path_normalized.len, &rt);
  int r = (int)rt.kind < OBS_ROUTES ? (int)rt.kind : 0;
  int m = method_index(req);
  int st = status >= 100 && status < GW_MAX_STATUS ? status : 0;
  char code[8] = "";
  bok_metric_t **slot = &o->req[((size_t)r * OBS_METHODS + (size_t)m) * GW_MAX_STATUS + (size_t)st];
  if (!__atomic_load_n(slot, __ATOMIC_ACQUIRE)) snprintf(code, sizeof code, "%d", st); /* first time only */
  const char *rv[] = {gw_route_template(rt.kind), METHODS[m], code};
  bok_counter_inc(lazy(slot, o->f_req, rv));
  struct timeval now;
  gettimeofday(&now, NULL);
  struct timeval t0 = req->timestamps.request_begin_at;
  double secs = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_usec - t0.tv_usec) / 1e6;
  if (t0.tv_sec == 0 || secs < 0) secs = 0;
  bok_histogram_observe(lazy(&o->dur[(size_t)r * OBS_METHODS + (size_t)m], o->f_dur, rv), secs);
  atomic_fetch_add(&o->resp_by_status[st], 1);
}

void gw_obs_render(gw_obs_t *o, bok_buf_t *b) {
  bok_buf_printf(b,
                 "# HELP bok_gateway_requests_total HTTP requests received.\n"
                 "# TYPE bok_gateway_requests_total counter\n"
                 "bok_gateway_requests_total %ld\n"
                 "# HELP bok_gateway_responses_total HTTP responses sent, by status code.\n"
                 "# TYPE bok_gateway_responses_total counter\n",
                 o ? atomic_load(&o->req_total) : 0L);
  for (int st = 0; o && st < GW_MAX_STATUS; st++) {
    long c = atomic_load(&o->resp_by_status[st]);
    if (c) bok_buf_printf(b, "bok_gateway_responses_total{code=\"%d\"} %ld\n", st, c);
  }
  bok_buf_printf(b,
                 "# HELP bok_gateway_requests_in_flight Requests waiting for a backend answer.\n"
                 "# TYPE bok_gateway_requests_in_flight gauge\n"
                 "bok_gateway_requests_in_flight %ld\n",
                 o ? atomic_load(&o->in_flight) : 0L);
  bok_buf_printf(b,
                 "# HELP bok_gateway_connections_refused_total Connections refused: max_connections_per_ip reached.\n"
                 "# TYPE bok_gateway_connections_refused_total counter\n"
                 "bok_gateway_connections_refused_total %ld\n"
                 "# HELP bok_gateway_header_timeouts_total Connections closed: no complete request head within "
                 "header_timeout_ms.\n"
                 "# TYPE bok_gateway_header_timeouts_total counter\n"
                 "bok_gateway_header_timeouts_total %ld\n",
                 o ? atomic_load(&o->conns_refused) : 0L, o ? atomic_load(&o->header_timeouts) : 0L);
  bok_metrics_render(bok_metrics_default(), b); /* the labeled metrics */
}

/* ---- readiness --------------------------------------------------------------- */

static void add_check(gw_obs_t *o, const char *role, const char *addr) {
  char name[200];
  snprintf(name, sizeof name, "%s %s", role, addr);
  for (size_t i = 0; i < o->nchecks; i++)
    if (strcmp(o->checks[i].name, name) == 0) return;
  check_t *c = &o->checks[o->nchecks++];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->ch = bok_rpc_channel_new_probe(addr); /* never disturbs the request channels */
  snprintf(c->msg, sizeof c->msg, "not checked yet");
}

static void check_one(check_t *c, int *ok, char *msg, size_t n) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  Grpc__Health__V1__HealthCheckResponse *resp = NULL;
  bok_err_t err;
  *ok = 0;
  if (!c->ch) {
    snprintf(msg, n, "no channel");
    return;
  }
  if (bok_rpc_unary(c->ch, "/grpc.health.v1.Health/Check", NULL, CHECK_TIMEOUT_MS, &req.base,
                    &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&resp, &err) != 0) {
    snprintf(msg, n, "%s: %.200s", bok_err_code_name(err.code), err.msg);
    return;
  }
  *ok = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  snprintf(msg, n, "%s", *ok ? "ok" : "not serving");
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* The ready cache's probe (its thread): one round over every backend. */
static int probe_all(void *ud, char *reason, size_t n) {
  gw_obs_t *o = ud;
  int all = 1;
  for (size_t i = 0; i < o->nchecks && !atomic_load(&o->stopping); i++) {
    int ok;
    char msg[256];
    check_one(&o->checks[i], &ok, msg, sizeof msg);
    pthread_mutex_lock(&o->mu);
    o->checks[i].ok = ok;
    snprintf(o->checks[i].msg, sizeof o->checks[i].msg, "%s", msg);
    pthread_mutex_unlock(&o->mu);
    if (!ok && all) snprintf(reason, n, "%s: %s", o->checks[i].name, msg);
    all &= ok;
  }
  pthread_mutex_lock(&o->mu);
  o->checked = 1;
  pthread_mutex_unlock(&o->mu);
  return all;
}

json_t *gw_obs_readyz(gw_obs_t *o, int *status) {
  json_t *checks = json_object();
  json_t *down = json_array();
  pthread_mutex_lock(&o->mu);
  int ready = o->checked;
  for (size_t i = 0; i < o->nchecks; i++) {
    json_object_set_new(checks, o->checks[i].name, json_string(o->checks[i].msg));
    if (!o->checks[i].ok) {
      ready = 0;
      json_array_append_new(down, json_string(o->checks[i].name));
    }
  }
  int started = o->checked;
  pthread_mutex_unlock(&o->mu);
  json_t *body = json_object();
  json_object_set_new(body, "status", json_string(ready ? "ready" : "not ready"));
  json_object_set_new(body, "checks", checks);
  if (!ready) {
    json_object_set_new(body, "down", down);
    if (!started) json_object_set_new(body, "reason", json_string("starting: backends not checked yet"));
  } else {
    json_decref(down);
  }
  *status = ready ? 200 : 503;
  return body;
}

gw_obs_t *gw_obs_new(const bok_routes_t *routes) {
  gw_obs_t *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  pthread_mutex_init(&o->mu, NULL);
  bok_metrics_t *m = bok_metrics_default();
  const char *ln[] = {"route", "method", "code"};
  o->f_req = bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_http_requests_total",
                                "HTTP responses sent, by route template, method and status code.", 3, ln, NULL, 0);
  o->f_dur = bok_metrics_family(m, BOK_METRIC_HISTOGRAM, "bok_http_request_duration_seconds",
                                "Time from the start of a request to its response, by route template and method.", 2,
                                ln, NULL, 0);
  /* large but sparse: calloc'd pages that are never written stay unbacked */
  o->req = calloc((size_t)OBS_ROUTES * OBS_METHODS * GW_MAX_STATUS, sizeof *o->req);
  o->dur = calloc((size_t)OBS_ROUTES * OBS_METHODS, sizeof *o->dur);
  o->checks = calloc(2 * bok_routes_count(routes) + 1, sizeof *o->checks);
  if (!o->req || !o->dur || !o->checks) goto fail;
  for (size_t r = 0; r < bok_routes_count(routes); r++) {
    const bok_route_t *rt = bok_routes_at(routes, r);
    add_check(o, "model", rt->model_addr);
    add_check(o, "job", rt->job_addr);
  }
  o->ready = bok_ready_cache_start(probe_all, o, CHECK_INTERVAL_MS);
  if (!o->ready) goto fail;
  return o;
fail:
  gw_obs_free(o);
  return NULL;
}

void gw_obs_free(gw_obs_t *o) {
  if (!o) return;
  atomic_store(&o->stopping, 1);
  bok_ready_cache_stop(o->ready); /* waits for a running round */
  pthread_mutex_destroy(&o->mu);
  for (size_t i = 0; i < o->nchecks; i++) bok_rpc_channel_destroy(o->checks[i].ch);
  free(o->req);
  free(o->dur);
  free(o->checks);
  free(o);
}
