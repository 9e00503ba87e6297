/* Gateway metrics (bok_http_requests_total{route,method,code},
 * bok_http_request_duration_seconds{route,method}) and readiness (/readyz).
 *
 * Label children are resolved lazily into tables indexed by route kind,
 * method and status, so after a combination's first response counting it is
 * an atomic load + add. Readiness: a checker thread calls
 * grpc.health.v1.Health/Check on every backend of every route each second;
 * /readyz renders its cached result on the loop thread without waiting. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "bok/metrics.h"
#include "grpc/health/v1/health.pb-c.h"
#include "gw_internal.h"
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
  bok_metric_family_t *f_req, *f_dur;
  bok_metric_t **req;   /* [route][method][status] */
  bok_metric_t **dur;   /* [route][method] */
  check_t *checks;
  size_t nchecks;
  int checked;          /* a whole round finished */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  int started;
  pthread_t th;
};

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

void gw_obs_count(gw_server_t *s, h2o_req_t *req, int status) {
  struct gw_obs *o = s->obs;
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
}

/* ---- readiness ------------------------------------------------------------- */

static void add_check(struct gw_obs *o, gw_server_t *s, const char *role, const char *addr) {
  char name[200];
  snprintf(name, sizeof name, "%s %s", role, addr);
  for (size_t i = 0; i < o->nchecks; i++)
    if (strcmp(o->checks[i].name, name) == 0) return;
  check_t *c = &o->checks[o->nchecks++];
  snprintf(c->name, sizeof c->name, "%s", name);
  (void)s;
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

static void *checker_main(void *arg) {
  struct gw_obs *o = arg;
  pthread_mutex_lock(&o->mu);
  while (!o->stop) {
    for (size_t i = 0; i < o->nchecks && !o->stop; i++) {
      pthread_mutex_unlock(&o->mu);
      int ok;
      char msg[256];
      check_one(&o->checks[i], &ok, msg, sizeof msg);
      pthread_mutex_lock(&o->mu);
      o->checks[i].ok = ok;
      snprintf(o->checks[i].msg, sizeof o->checks[i].msg, "%s", msg);
    }
    o->checked = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += CHECK_INTERVAL_MS / 1000;
    while (!o->stop && pthread_cond_timedwait(&o->cv, &o->mu, &ts) == 0) {
    }
  }
  pthread_mutex_unlock(&o->mu);
  return NULL;
}

void gw_obs_readyz(h2o_req_t *req) {
  gw_server_t *s = ((gw_thread_t *)req->conn->ctx->storage.entries[0].data)->srv;
  struct gw_obs *o = s->obs;
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
  gw_send_json(req, ready ? 200 : 503, body);
}

int gw_obs_start(gw_server_t *s) {
  struct gw_obs *o = calloc(1, sizeof *o);
  if (!o) return -1;
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
  o->checks = calloc(2 * bok_routes_count(s->routes) + 1, sizeof *o->checks);
  pthread_mutex_init(&o->mu, NULL);
  pthread_cond_init(&o->cv, NULL);
  s->obs = o;
  if (!o->req || !o->dur || !o->checks) return -1;
  for (size_t r = 0; r < bok_routes_count(s->routes); r++) {
    const bok_route_t *rt = bok_routes_at(s->routes, r);
    add_check(o, s, "model", rt->model_addr);
    add_check(o, s, "job", rt->job_addr);
  }
  if (pthread_create(&o->th, NULL, checker_main, o) != 0) return -1;
  o->started = 1;
  return 0;
}

void gw_obs_stop(gw_server_t *s) {
  struct gw_obs *o = s->obs;
  if (!o) return;
  if (o->started) {
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->th, NULL);
  }
  pthread_mutex_destroy(&o->mu);
  pthread_cond_destroy(&o->cv);
  for (size_t i = 0; i < o->nchecks; i++) bok_rpc_channel_destroy(o->checks[i].ch);
  free(o->req);
  free(o->dur);
  free(o->checks);
  free(o);
  s->obs = NULL;
}
