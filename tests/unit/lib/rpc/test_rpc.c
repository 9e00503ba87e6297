/* gRPC glue over loopback: unary, tenants, errors, streaming, async,
 * concurrency, deadlines, dead backends, retries, health. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch/v1/job.pb-c.h"
#include "bok/rpc.h"
#include "bok/util.h"
#include "grpc/health/v1/health.pb-c.h"

#define GET "/batch.v1.JobService/GetJob"
#define UPLOAD "/batch.v1.JobService/Upload"
#define CANCEL "/batch.v1.JobService/CancelJob"

static int g_port;
static bok_rpc_server_t *g_srv;
static char g_target[64];

static pthread_mutex_t g_flaky_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_flaky_calls; /* calls of the id "flaky" (GetJob) or of CancelJob */

/* Counts a flaky call; 1 when it is the first since the count was reset. */
static int flaky_first(void) {
  pthread_mutex_lock(&g_flaky_mu);
  int first = g_flaky_calls++ == 0;
  pthread_mutex_unlock(&g_flaky_mu);
  return first;
}

/* GetJob echoes job_id and the tenant; special ids trigger behaviours. */
static void get_job(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  (void)ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  if (strcmp(r->job_id, "flaky") == 0 && flaky_first()) { /* UNAVAILABLE once */
    bok_rpc_call_fail(call, BOK_ERR_UNAVAILABLE, "try again");
    return;
  }
  if (strcmp(r->job_id, "missing") == 0) {
    bok_rpc_call_fail(call, BOK_ERR_NOT_FOUND, "not found");
    return;
  }
  if (strcmp(r->job_id, "empty") == 0) { /* a zero-byte response */
    Batch__V1__Job e = BATCH__V1__JOB__INIT;
    bok_rpc_call_reply(call, &e.base);
    return;
  }
  if (strcmp(r->job_id, "sleeplong") == 0)
    usleep(2500 * 1000);
  else if (strncmp(r->job_id, "sleep", 5) == 0)
    usleep(300 * 1000);
  Batch__V1__Job j = BATCH__V1__JOB__INIT;
  j.job_id = r->job_id;
  j.tenant_id = (char *)(bok_rpc_call_tenant(call) ? bok_rpc_call_tenant(call) : "");
  bok_rpc_call_reply(call, &j.base);
}

/* CancelJob (not idempotent): UNAVAILABLE the first time, then echoes. */
static void cancel_job(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  (void)ud;
  const Batch__V1__CancelJobRequest *r = (const void *)req;
  if (flaky_first()) {
    bok_rpc_call_fail(call, BOK_ERR_UNAVAILABLE, "try again");
    return;
  }
  Batch__V1__Job j = BATCH__V1__JOB__INIT;
  j.job_id = r->job_id;
  bok_rpc_call_reply(call, &j.base);
}

static pthread_mutex_t g_abort_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_stream_aborts; /* uploads whose read returned -1 */
static int g_stream_reading; /* uploads past their first message */

/* Upload counts chunks and bytes; total = bytes, success = chunks. */
static void upload(void *ud, bok_rpc_call_t *call) {
  (void)ud;
  int64_t chunks = 0, bytes = 0;
  ProtobufCMessage *m;
  int r;
  while ((r = bok_rpc_call_read(call, &batch__v1__upload_request__descriptor, &m)) == 1) {
    Batch__V1__UploadRequest *u = (void *)m;
    if (u->kind_case == BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK) {
      chunks++;
      bytes += (int64_t)u->chunk.len;
    } else if (u->kind_case == BATCH__V1__UPLOAD_REQUEST__KIND_HEADER &&
               strcmp(u->header->model_id, "reject") == 0) {
      protobuf_c_message_free_unpacked(m, NULL);
      bok_rpc_call_fail(call, BOK_ERR_NOT_FOUND, "model not found");
      return;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    if (chunks == 0) {
      pthread_mutex_lock(&g_abort_mu);
      g_stream_reading++;
      pthread_mutex_unlock(&g_abort_mu);
    }
  }
  if (r < 0) {
    pthread_mutex_lock(&g_abort_mu);
    g_stream_aborts++;
    pthread_mutex_unlock(&g_abort_mu);
    bok_rpc_call_fail(call, BOK_ERR_CANCELLED, "client went away");
    return;
  }
  Batch__V1__Job j = BATCH__V1__JOB__INIT;
  j.total = bytes;
  j.success = chunks;
  bok_rpc_call_reply(call, &j.base);
}

static int setup(void **state) {
  (void)state;
  bok_rpc_server_opts_t o = {.addr = "127.0.0.1:0", .threads = 4};
  bok_err_t err;
  g_srv = bok_rpc_server_new(&o, &err);
  assert_non_null(g_srv);
  bok_rpc_server_add_unary(g_srv, GET, &batch__v1__get_job_request__descriptor,
                           BOK_RPC_TENANT_REQUIRED, get_job, NULL);
  bok_rpc_server_add_client_stream(g_srv, UPLOAD, BOK_RPC_TENANT_REQUIRED, upload, NULL);
  bok_rpc_server_add_unary(g_srv, CANCEL, &batch__v1__cancel_job_request__descriptor,
                           BOK_RPC_TENANT_REQUIRED, cancel_job, NULL);
  g_port = bok_rpc_server_start(g_srv, &err);
  assert_true(g_port > 0);
  snprintf(g_target, sizeof g_target, "127.0.0.1:%d", g_port);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  bok_rpc_server_shutdown(g_srv);
  bok_rpc_server_wait(g_srv, 0);
  bok_rpc_server_destroy(g_srv);
  return 0;
}

static int get(bok_rpc_channel_t *ch, const char *tenant, const char *id, int timeout,
               Batch__V1__Job **out, bok_err_t *err) {
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  r.job_id = (char *)id;
  return bok_rpc_unary(ch, GET, tenant, timeout, &r.base, &batch__v1__job__descriptor,
                       (ProtobufCMessage **)out, err);
}

static void test_unary_and_tenant(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Batch__V1__Job *j = NULL;
  bok_err_t err;
  int rc = get(ch, "tenant_a", "abc", 5000, &j, &err);
  if (rc != 0) print_message("first call: %s: %s\n", bok_err_code_name(err.code), err.msg);
  assert_int_equal(rc, 0);
  assert_string_equal(j->job_id, "abc");
  assert_string_equal(j->tenant_id, "tenant_a");
  protobuf_c_message_free_unpacked(&j->base, NULL);

  assert_int_equal(get(ch, NULL, "abc", 5000, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_INVALID);
  assert_non_null(strstr(err.msg, "x-tenant-id"));
  assert_int_equal(get(ch, "bad tenant!", "abc", 5000, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_INVALID);

  assert_int_equal(get(ch, "t1", "empty", 5000, &j, &err), 0);
  assert_string_equal(j->job_id, "");
  protobuf_c_message_free_unpacked(&j->base, NULL);

  assert_int_equal(get(ch, "t1", "missing", 5000, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  assert_string_equal(err.msg, "not found");
  assert_int_equal(bok_err_http_status(err.code), 404);
  bok_rpc_channel_destroy(ch);
}

static void test_deadline_and_dead_backend(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Batch__V1__Job *j = NULL;
  bok_err_t err;
  assert_int_equal(get(ch, "t1", "sleep", 50, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_DEADLINE);
  bok_rpc_channel_destroy(ch);

  /* A port nobody listens on: UNAVAILABLE, well within the deadline. */
  bok_rpc_channel_t *dead = bok_rpc_channel_new("127.0.0.1:1");
  int64_t t0 = bok_mono_ms();
  assert_int_equal(get(dead, "t1", "x", 3000, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_true(bok_mono_ms() - t0 < 2500);
  bok_rpc_channel_destroy(dead);
}

/* The channels' service config: an idempotent method (GetJob) that fails
 * with UNAVAILABLE is retried by gRPC and succeeds; CancelJob is not, and a
 * probe channel never retries. */
static void test_idempotent_methods_are_retried(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Batch__V1__Job *j = NULL;
  bok_err_t err;
  g_flaky_calls = 0;
  assert_int_equal(get(ch, "t1", "flaky", 5000, &j, &err), 0);
  assert_string_equal(j->job_id, "flaky");
  protobuf_c_message_free_unpacked(&j->base, NULL);
  assert_int_equal(g_flaky_calls, 2);

  g_flaky_calls = 0;
  Batch__V1__CancelJobRequest c = BATCH__V1__CANCEL_JOB_REQUEST__INIT;
  c.job_id = "j1";
  assert_int_equal(bok_rpc_unary(ch, CANCEL, "t1", 5000, &c.base, &batch__v1__job__descriptor,
                                 (ProtobufCMessage **)&j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_int_equal(g_flaky_calls, 1);
  bok_rpc_channel_destroy(ch);

  bok_rpc_channel_t *probe = bok_rpc_channel_new_probe(g_target);
  g_flaky_calls = 0;
  assert_int_equal(get(probe, "t1", "flaky", 5000, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_int_equal(g_flaky_calls, 1);
  bok_rpc_channel_destroy(probe);
}

typedef struct {
  bok_rpc_channel_t *ch;
  int ok;
} par_t;

static void *par_call(void *arg) {
  par_t *p = arg;
  Batch__V1__Job *j = NULL;
  bok_err_t err;
  if (get(p->ch, "t1", "sleep", 5000, &j, &err) == 0) {
    p->ok = 1;
    protobuf_c_message_free_unpacked(&j->base, NULL);
  }
  return NULL;
}

static void test_calls_in_flight_concurrently(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  pthread_t th[4];
  par_t p[4];
  int64_t t0 = bok_mono_ms();
  for (int i = 0; i < 4; i++) {
    p[i].ch = ch;
    p[i].ok = 0;
    pthread_create(&th[i], NULL, par_call, &p[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_true(p[i].ok);
  }
  /* Four 300 ms calls on four server threads overlap: well under 4 x 300. */
  assert_true(bok_mono_ms() - t0 < 1000);
  bok_rpc_channel_destroy(ch);
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_done, g_ok;

static void on_done(void *ud, ProtobufCMessage *resp, const bok_err_t *err) {
  (void)ud;
  pthread_mutex_lock(&g_mu);
  g_done++;
  if (resp && err->code == BOK_OK) g_ok++;
  pthread_mutex_unlock(&g_mu);
  if (resp) protobuf_c_message_free_unpacked(resp, NULL);
}

static void test_async(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  g_done = g_ok = 0;
  for (int i = 0; i < 50; i++) {
    r.job_id = (char *)(i % 10 == 0 ? "missing" : "abc");
    assert_int_equal(bok_rpc_unary_async(ch, GET, "t1", 5000, &r.base, &batch__v1__job__descriptor,
                                         on_done, NULL),
                     0);
  }
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&g_mu);
    int d = g_done;
    pthread_mutex_unlock(&g_mu);
    if (d == 50) break;
    usleep(10000);
  }
  assert_int_equal(g_done, 50);
  assert_int_equal(g_ok, 45);
  bok_rpc_channel_destroy(ch);
}

static void test_client_stream(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  bok_err_t err;
  bok_rpc_stream_t *st = bok_rpc_stream_open(ch, UPLOAD, "t1", 0, &err);
  assert_non_null(st);
  Batch__V1__UploadRequest u = BATCH__V1__UPLOAD_REQUEST__INIT;
  Batch__V1__UploadHeader h = BATCH__V1__UPLOAD_HEADER__INIT;
  h.model_id = "m";
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_HEADER;
  u.header = &h; /* header and chunk share a oneof union */
  u.header = &h;
  assert_int_equal(bok_rpc_stream_send(st, &u.base, &err), 0);
  static uint8_t chunk[2 << 20];
  memset(chunk, 'x', sizeof chunk);
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK;
  int64_t bytes = 0;
  for (int i = 0; i < 10000; i++) {
    u.chunk.data = chunk;
    u.chunk.len = (i == 5000) ? sizeof chunk : 100; /* one message > 1 MiB */
    bytes += (int64_t)u.chunk.len;
    assert_int_equal(bok_rpc_stream_send(st, &u.base, &err), 0);
  }
  Batch__V1__Job *j = NULL;
  assert_int_equal(bok_rpc_stream_finish(st, &batch__v1__job__descriptor, (ProtobufCMessage **)&j, &err), 0);
  assert_int_equal(j->success, 10000);
  assert_int_equal(j->total, bytes);
  protobuf_c_message_free_unpacked(&j->base, NULL);

  /* The server refuses after the header: the client sees its status. */
  st = bok_rpc_stream_open(ch, UPLOAD, "t1", 0, &err);
  assert_non_null(st);
  h.model_id = "reject";
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_HEADER;
  u.header = &h; /* header and chunk share a oneof union */
  assert_int_equal(bok_rpc_stream_send(st, &u.base, &err), 0);
  int failed = 0;
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK;
  u.chunk.len = 100;
  for (int i = 0; i < 2000 && !failed; i++) failed = bok_rpc_stream_send(st, &u.base, &err) != 0;
  if (failed) {
    assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
    bok_rpc_stream_abort(st);
  } else {
    assert_int_equal(bok_rpc_stream_finish(st, &batch__v1__job__descriptor, (ProtobufCMessage **)&j, &err), -1);
    assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "model not found");
  }

  /* An aborted stream does not hang or crash the server. */
  st = bok_rpc_stream_open(ch, UPLOAD, "t1", 0, &err);
  assert_non_null(st);
  h.model_id = "m";
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_HEADER;
  u.header = &h; /* header and chunk share a oneof union */
  assert_int_equal(bok_rpc_stream_send(st, &u.base, &err), 0);
  bok_rpc_stream_abort(st);
  bok_rpc_channel_destroy(ch);
}

static void test_health(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Grpc__Health__V1__HealthCheckRequest r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  Grpc__Health__V1__HealthCheckResponse *resp = NULL;
  bok_err_t err;
  r.service = "batch.v1.JobService";
  assert_int_equal(bok_rpc_unary(ch, "/grpc.health.v1.Health/Check", NULL, 2000, &r.base,
                                 &grpc__health__v1__health_check_response__descriptor,
                                 (ProtobufCMessage **)&resp, &err),
                   0);
  assert_int_equal(resp->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  /* An empty (zero-byte) request and the overall status "". */
  r.service = "";
  assert_int_equal(bok_rpc_unary(ch, "/grpc.health.v1.Health/Check", NULL, 2000, &r.base,
                                 &grpc__health__v1__health_check_response__descriptor,
                                 (ProtobufCMessage **)&resp, &err),
                   0);
  assert_int_equal(resp->status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  r.service = "nope.Service";
  assert_int_equal(bok_rpc_unary(ch, "/grpc.health.v1.Health/Check", NULL, 2000, &r.base,
                                 &grpc__health__v1__health_check_response__descriptor,
                                 (ProtobufCMessage **)&resp, &err),
                   -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  bok_rpc_channel_destroy(ch);
}

static int abort_count(void) {
  pthread_mutex_lock(&g_abort_mu);
  int n = g_stream_aborts;
  pthread_mutex_unlock(&g_abort_mu);
  return n;
}

static bok_rpc_stream_t *open_upload(bok_rpc_channel_t *ch) {
  bok_err_t err;
  bok_rpc_stream_t *st = bok_rpc_stream_open(ch, UPLOAD, "t1", 10000, &err);
  assert_non_null(st);
  Batch__V1__UploadRequest u = BATCH__V1__UPLOAD_REQUEST__INIT;
  Batch__V1__UploadHeader h = BATCH__V1__UPLOAD_HEADER__INIT;
  h.model_id = "m";
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_HEADER;
  u.header = &h;
  assert_int_equal(bok_rpc_stream_send(st, &u.base, &err), 0);
  u.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK;
  u.chunk.data = (uint8_t *)"a,b\n";
  u.chunk.len = 4;
  assert_int_equal(bok_rpc_stream_send(st, &u.base, &err), 0); /* last: no buffer hint needed */
  return st;
}

/* The server's read returns -1 when the client aborts mid-stream. */
static void test_stream_abort_seen_by_server(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  int before = abort_count();
  bok_rpc_stream_t *st = open_upload(ch);
  usleep(50 * 1000);
  bok_rpc_stream_abort(st);
  for (int i = 0; i < 200 && abort_count() == before; i++) usleep(10 * 1000);
  assert_int_equal(abort_count(), before + 1);
  bok_rpc_channel_destroy(ch);
}

/* Open upload streams occupy some serving threads; unary calls of another
 * method keep being answered at once by the idle ones. */
static void test_busy_threads_do_not_block_others(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  bok_rpc_stream_t *st[3];
  for (int i = 0; i < 3; i++) st[i] = open_upload(ch); /* 3 of 4 threads busy */
  for (int i = 0; i < 40; i++) {
    Batch__V1__Job *j = NULL;
    bok_err_t err;
    assert_int_equal(get(ch, "t1", "abc", 1000, &j, &err), 0);
    protobuf_c_message_free_unpacked(&j->base, NULL);
  }
  for (int i = 0; i < 3; i++) bok_rpc_stream_abort(st[i]);
  bok_rpc_channel_destroy(ch);
}

static void test_unknown_method_and_oversize(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  r.job_id = "x";
  ProtobufCMessage *resp = NULL;
  bok_err_t err;
  int64_t t0 = bok_mono_ms();
  assert_int_equal(bok_rpc_unary(ch, "/batch.v1.JobService/Nope", "t1", 3000, &r.base,
                                 &batch__v1__job__descriptor, &resp, &err),
                   -1);
  assert_int_equal(err.code, BOK_ERR_UNIMPLEMENTED);
  assert_true(bok_mono_ms() - t0 < 2000);

  /* Over the server's 4 MiB default: RESOURCE_EXHAUSTED (HTTP 413). */
  size_t n = 5u << 20;
  char *big = malloc(n + 1);
  memset(big, 'a', n);
  big[n] = '\0';
  r.job_id = big;
  assert_int_equal(bok_rpc_unary(ch, GET, "t1", 5000, &r.base, &batch__v1__job__descriptor, &resp, &err), -1);
  assert_int_equal(err.code, BOK_ERR_TOO_LARGE);
  assert_int_equal(bok_err_http_status(err.code), 413);
  free(big);
  bok_rpc_channel_destroy(ch);
}

typedef struct {
  const char *target;
  int rc;
  bok_err_t err;
} slow_t;

static void *slow_call(void *arg) {
  slow_t *p = arg;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(p->target);
  Batch__V1__Job *j = NULL;
  p->rc = get(ch, "t1", "sleep", 5000, &j, &p->err);
  if (j) protobuf_c_message_free_unpacked(&j->base, NULL);
  bok_rpc_channel_destroy(ch);
  return NULL;
}

static void *send_sigterm(void *arg) {
  (void)arg;
  usleep(150 * 1000);
  kill(getpid(), SIGTERM);
  return NULL;
}

/* SIGTERM while calls are in flight: they finish (grace), wait() returns,
 * the port stops answering. */
static void test_shutdown_with_calls_in_flight(void **state) {
  (void)state;
  bok_rpc_server_opts_t o = {.addr = "127.0.0.1:0", .threads = 3};
  bok_err_t err;
  bok_rpc_server_t *s = bok_rpc_server_new(&o, &err);
  assert_non_null(s);
  bok_rpc_server_add_unary(s, GET, &batch__v1__get_job_request__descriptor,
                           BOK_RPC_TENANT_REQUIRED, get_job, NULL);
  int port = bok_rpc_server_start(s, &err);
  assert_true(port > 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  pthread_t th[3], sig;
  slow_t p[3];
  for (int i = 0; i < 3; i++) {
    p[i].target = target;
    p[i].rc = 99;
    pthread_create(&th[i], NULL, slow_call, &p[i]);
  }
  pthread_create(&sig, NULL, send_sigterm, NULL);
  int64_t t0 = bok_mono_ms();
  bok_rpc_server_wait(s, 1);
  assert_true(bok_mono_ms() - t0 < 3000);
  pthread_join(sig, NULL);
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(p[i].rc, 0);
  }
  bok_rpc_channel_t *ch = bok_rpc_channel_new(target);
  Batch__V1__Job *j = NULL;
  assert_int_equal(get(ch, "t1", "abc", 2000, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  bok_rpc_server_shutdown(s); /* idempotent after wait */
  bok_rpc_server_destroy(s);

  /* A restarted backend on the same port is reached again within ~1 s by
   * the same channel (reconnect backoff is capped). */
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  o.addr = addr;
  s = bok_rpc_server_new(&o, &err);
  bok_rpc_server_add_unary(s, GET, &batch__v1__get_job_request__descriptor,
                           BOK_RPC_TENANT_REQUIRED, get_job, NULL);
  assert_int_equal(bok_rpc_server_start(s, &err), port);
  int64_t t1 = bok_mono_ms();
  int rc = -1;
  while (rc != 0 && bok_mono_ms() - t1 < 5000) {
    rc = get(ch, "t1", "abc", 2000, &j, &err);
    if (rc != 0) usleep(50 * 1000);
  }
  assert_int_equal(rc, 0);
  assert_true(bok_mono_ms() - t1 < 2500);
  protobuf_c_message_free_unpacked(&j->base, NULL);
  bok_rpc_channel_destroy(ch);
  bok_rpc_server_destroy(s); /* without wait(): destroy stops it */
}

/* Destroying a channel with async calls pending ends them at once: every
 * callback runs (CANCELLED), well before the calls' deadlines. */
static void test_async_destroy_pending(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  r.job_id = "sleeplong";
  g_done = g_ok = 0;
  for (int i = 0; i < 3; i++)
    assert_int_equal(bok_rpc_unary_async(ch, GET, "t1", 8000, &r.base, &batch__v1__job__descriptor,
                                         on_done, NULL),
                     0);
  usleep(50 * 1000);
  int64_t t0 = bok_mono_ms();
  bok_rpc_channel_destroy(ch);
  assert_true(bok_mono_ms() - t0 < 1500);
  assert_int_equal(g_done, 3);
  assert_int_equal(g_ok, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_and_tenant),
      cmocka_unit_test(test_deadline_and_dead_backend),
      cmocka_unit_test(test_idempotent_methods_are_retried),
      cmocka_unit_test(test_calls_in_flight_concurrently),
      cmocka_unit_test(test_async),
      cmocka_unit_test(test_client_stream),
      cmocka_unit_test(test_health),
      cmocka_unit_test(test_stream_abort_seen_by_server),
      cmocka_unit_test(test_busy_threads_do_not_block_others),
      cmocka_unit_test(test_unknown_method_and_oversize),
      cmocka_unit_test(test_shutdown_with_calls_in_flight),
      cmocka_unit_test(test_async_destroy_pending),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
