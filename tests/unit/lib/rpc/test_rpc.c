/* gRPC glue over loopback: unary, tenants, errors, streaming, async,
 * concurrency, deadlines, dead backends, retries, bidirectional streams,
 * health. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch/v1/job.pb-c.h"
#include "bok/rpc.h"
#include "bok/util.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc_internal.h"

#define GET "/batch.v1.JobService/GetJob"
#define UPLOAD "/batch.v1.JobService/Upload"
#define CANCEL "/batch.v1.JobService/CancelJob"
#define CHAT "/test.Echo/Chat"

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
/* "gate": a call waits (up to 20 s) until GATE_N calls are inside the
 * handler at once. It answers "gate-open" when they were -- proof that the
 * server runs calls concurrently, whatever the machine's load -- and
 * "gate-alone" when it gave up waiting. */
#define GATE_N 4
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static int g_gate_in;
static char *gate_wait(void) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 20;
  pthread_mutex_lock(&g_gate_mu);
  g_gate_in++;
  pthread_cond_broadcast(&g_gate_cv);
  int rc = 0;
  while (g_gate_in < GATE_N && rc == 0) rc = pthread_cond_timedwait(&g_gate_cv, &g_gate_mu, &dl);
  char *reply = g_gate_in >= GATE_N ? "gate-open" : "gate-alone";
  pthread_mutex_unlock(&g_gate_mu);
  return reply;
}

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
  if (strcmp(r->job_id, "gate") == 0) {
    Batch__V1__Job j = BATCH__V1__JOB__INIT;
    j.job_id = gate_wait();
    bok_rpc_call_reply(call, &j.base);
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

/* Chat (bidirectional): answers each GetJobRequest with a Job of that id;
 * the id "big" gets a Job over the server's 4 MiB limit, which ends the call
 * with RESOURCE_EXHAUSTED. */
static void chat(void *ud, bok_rpc_call_t *call) {
  (void)ud;
  ProtobufCMessage *m;
  int r;
  while ((r = bok_rpc_call_read(call, &batch__v1__get_job_request__descriptor, &m)) == 1) {
    const Batch__V1__GetJobRequest *q = (const void *)m;
    Batch__V1__Job j = BATCH__V1__JOB__INIT;
    j.job_id = q->job_id;
    char *big = NULL;
    if (strcmp(q->job_id, "big") == 0) {
      big = calloc(1, (5u << 20) + 1);
      memset(big, 'x', 5u << 20);
      j.error = big;
    }
    int w = bok_rpc_call_write(call, &j.base);
    free(big);
    protobuf_c_message_free_unpacked(m, NULL);
    if (w != 0) {
      bok_rpc_call_fail(call, BOK_ERR_CANCELLED, "client went away"); /* no-op when write ended it */
      return;
    }
  }
  if (r < 0) {
    bok_rpc_call_fail(call, BOK_ERR_CANCELLED, "client went away");
    return;
  }
  bok_rpc_call_close(call);
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
  bok_rpc_server_add_bidi_stream(g_srv, CHAT, BOK_RPC_TENANT_OPTIONAL, chat, NULL);
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

/* A bidirectional call made with gRPC C core directly (lib/rpc has no
 * client for these: reflection clients are grpcurl & co.). */
typedef struct {
  grpc_channel *ch;
  grpc_completion_queue *cq;
  grpc_call *call;
  int got_md;
} raw_t;

static int raw_batch(raw_t *c, grpc_op *ops, size_t n) {
  int tag;
  if (grpc_call_start_batch(c->call, ops, n, &tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(c->cq, &tag, bok_rpc_deadline(10000), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void raw_open(raw_t *c) {
  memset(c, 0, sizeof *c);
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  c->ch = grpc_channel_create(g_target, creds, NULL);
  grpc_channel_credentials_release(creds);
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method = grpc_slice_from_static_string(CHAT);
  c->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method, NULL,
                                     bok_rpc_deadline(10000), NULL);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  assert_true(raw_batch(c, &op, 1));
}

/* Sends a request for `id` and returns the job id of the answer (caller
 * frees), or NULL when no answer came. */
static char *raw_ask(raw_t *c, const char *id) {
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  r.job_id = (char *)id;
  grpc_byte_buffer *out = bok_rpc_pack(&r.base), *in = NULL;
  grpc_metadata_array imd;
  grpc_metadata_array_init(&imd);
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = out;
  if (!c->got_md) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &imd;
    c->got_md = 1;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &in;
  raw_batch(c, ops, n);
  grpc_byte_buffer_destroy(out);
  grpc_metadata_array_destroy(&imd);
  if (!in) return NULL;
  Batch__V1__Job *j = (Batch__V1__Job *)bok_rpc_unpack(in, &batch__v1__job__descriptor);
  grpc_byte_buffer_destroy(in);
  assert_non_null(j);
  char *got = strdup(j->job_id);
  protobuf_c_message_free_unpacked(&j->base, NULL);
  return got;
}

/* Half-closes, returns the status and frees the call. */
static grpc_status_code raw_finish(raw_t *c) {
  grpc_metadata_array tmd;
  grpc_metadata_array_init(&tmd);
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[1].data.recv_status_on_client.trailing_metadata = &tmd;
  ops[1].data.recv_status_on_client.status = &status;
  ops[1].data.recv_status_on_client.status_details = &details;
  if (!raw_batch(c, ops, 2)) { /* the call already ended: its status only */
    ops[0] = ops[1];
    raw_batch(c, ops, 1);
  }
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&tmd);
  grpc_call_unref(c->call);
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(c->cq);
  grpc_channel_destroy(c->ch);
  return status;
}

/* A bidirectional stream: one answer per request, in order, then OK at the
 * client's half-close; an answer over the limit ends it RESOURCE_EXHAUSTED. */
static void test_bidi_stream(void **state) {
  (void)state;
  raw_t c;
  raw_open(&c);
  const char *ids[] = {"one", "two", "three"};
  for (int i = 0; i < 3; i++) {
    char *got = raw_ask(&c, ids[i]);
    assert_non_null(got);
    assert_string_equal(got, ids[i]);
    free(got);
  }
  assert_int_equal(raw_finish(&c), GRPC_STATUS_OK);

  raw_open(&c);
  char *got = raw_ask(&c, "first");
  assert_string_equal(got, "first");
  free(got);
  assert_null(raw_ask(&c, "big"));
  assert_int_equal(raw_finish(&c), GRPC_STATUS_RESOURCE_EXHAUSTED);
}

typedef struct {
  bok_rpc_channel_t *ch;
  int ok;
} par_t;

static void *par_call(void *arg) {
  par_t *p = arg;
  Batch__V1__Job *j = NULL;
  bok_err_t err;
  if (get(p->ch, "t1", "gate", 30000, &j, &err) == 0) {
    p->ok = strcmp(j->job_id, "gate-open") == 0;
    protobuf_c_message_free_unpacked(&j->base, NULL);
  }
  return NULL;
}

/* GATE_N calls on one channel are inside the server's handler at the same
 * time (each waits for the others): no time measured, so load cannot make
 * it fail, and a server serving one call at a time cannot pass. */
static void test_calls_in_flight_concurrently(void **state) {
  (void)state;
  bok_rpc_channel_t *ch = bok_rpc_channel_new(g_target);
  pthread_t th[GATE_N];
  par_t p[GATE_N];
  for (int i = 0; i < GATE_N; i++) {
    p[i].ch = ch;
    p[i].ok = 0;
    pthread_create(&th[i], NULL, par_call, &p[i]);
  }
  for (int i = 0; i < GATE_N; i++) {
    pthread_join(th[i], NULL);
    assert_true(p[i].ok);
  }
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
      cmocka_unit_test(test_bidi_stream),
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
