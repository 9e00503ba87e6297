/* gRPC client glue: blocking unary, async unary, client streaming, async
 * server streaming (bok_rpc_sub_*: on the channel's completion thread too).
 *
 * Every channel uses the process-wide credentials (rpc_auth.c: TLS or
 * plaintext), and every call to the job service (methods of batch.v1.JobService)
 * carries the worker token when this process is a worker with one (metadata
 * x-worker-token), next to x-tenant-id.
 *
 * Blocking calls use a private pluck queue per call. Async calls share the
 * channel's NEXT queue, drained by one completion thread started on first
 * use; callbacks run on that thread. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bok/fault.h"
#include "rpc_internal.h"

#define CLIENT_MAX_MESSAGE (64 << 20)

/* The service config of every channel but the probes (docs/GRPC.md
 * "Deadlines and retries"): gRPC itself retries the idempotent methods --
 * reads, and the worker's reports, which count a message once however often
 * it arrives -- when they fail with UNAVAILABLE (backend restarting,
 * connection reset), at most 3 attempts within the call's deadline. Creating
 * a job, cancelling, reprocessing and model writes are never retried here:
 * a lost answer must not make a second job. */
#define RETRY_METHOD(svc, m) "{\"service\":\"batch.v1." svc "\",\"method\":\"" m "\"}"
static const char SERVICE_CONFIG[] =
    "{\"methodConfig\":[{\"name\":["
    RETRY_METHOD("ModelService", "GetModel") "," RETRY_METHOD("ModelService", "ListModels") ","
    RETRY_METHOD("JobService", "GetJob") "," RETRY_METHOD("JobService", "ListJobs") ","
    RETRY_METHOD("JobService", "ListRejected") "," RETRY_METHOD("JobService", "GetJobSpec") ","
    RETRY_METHOD("JobService", "ReportResults") "," RETRY_METHOD("JobService", "ConfirmResults")
    "],\"retryPolicy\":{\"maxAttempts\":3,\"initialBackoff\":\"0.1s\",\"maxBackoff\":\"1s\","
    "\"backoffMultiplier\":2,\"retryableStatusCodes\":[\"UNAVAILABLE\"]}}]}";

struct bok_rpc_channel {
  grpc_channel *ch;
  char *target;
  pthread_mutex_t mu;
  grpc_completion_queue *cq; /* async completions; NULL until first async call */
  pthread_t th;
  struct unary_s *inflight;  /* async calls not yet completed (under mu) */
  struct bok_rpc_sub *subs;  /* server streams not yet ended (under mu) */
};

/* State of one unary call, blocking or async. */
typedef struct unary_s {
  int is_sub; /* 0: tells the completion thread's tags apart (sub_tag_t: 1) */
  struct unary_s *next, *prev; /* channel's in-flight list (async only) */
  grpc_call *call;
  grpc_metadata md[2]; /* x-tenant-id and/or x-worker-token (values owned) */
  size_t nmd;
  grpc_byte_buffer *send;
  grpc_byte_buffer *recv;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
  const ProtobufCMessageDescriptor *resp_desc;
  const char *target; /* the channel's, for messages */
  bok_rpc_done_fn cb;
  void *ud;
} unary_t;

static void sub_event(void *tag, int success);
static void sub_cancel_all(bok_rpc_channel_t *c);

static void inflight_remove(bok_rpc_channel_t *c, unary_t *u) {
  pthread_mutex_lock(&c->mu);
  if (u->prev) u->prev->next = u->next;
  else c->inflight = u->next;
  if (u->next) u->next->prev = u->prev;
  pthread_mutex_unlock(&c->mu);
}

static bok_rpc_channel_t *channel_new(const char *target, int isolated) {
  bok_rpc_channel_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  bok_rpc_lib_ref();
  c->target = strdup(target);
  grpc_arg args[6];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = CLIENT_MAX_MESSAGE;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
  args[2].value.integer = 100;
  args[3].type = GRPC_ARG_INTEGER;
  /* In gRPC 1.51 this is also the minimum CONNECT TIMEOUT (TCP + HTTP/2
   * SETTINGS): 100 ms failed healthy backends on a loaded machine (and under
   * valgrind); 1 s still fails a black-hole backend (accepts, never speaks)
   * quickly. A refused connection fails at once. */
  args[3].key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
  args[3].value.integer = 1000;
  /* Reconnect quickly after a backend restart instead of the default
   * exponential backoff that can reach two minutes. */
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
  args[1].value.integer = 1000;
  size_t n = 4;
  if (isolated) {
    /* Channels with equal args share their connections (gRPC's global
     * subchannel pool), including the reconnect backoff after a failure: a
     * probe channel gets a pool of its own, so probing a backend that is down
     * never makes a real call fail fast just after the backend came back.
     * Probes report a backend's state as it is: no retries. */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[n++].value.integer = 1;
  } else {
    /* Real calls retry the idempotent methods (SERVICE_CONFIG). */
    args[n].type = GRPC_ARG_STRING;
    args[n].key = (char *)GRPC_ARG_SERVICE_CONFIG;
    args[n++].value.string = (char *)SERVICE_CONFIG;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = (char *)GRPC_ARG_ENABLE_RETRIES;
    args[n++].value.integer = 1;
  }
  grpc_channel_args ca = {n, args};
  grpc_channel_credentials *creds = bok_rpc_channel_creds(); /* TLS when configured (rpc_auth.c) */
  c->ch = grpc_channel_create(target, creds, &ca);
  grpc_channel_credentials_release(creds);
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

bok_rpc_channel_t *bok_rpc_channel_new(const char *target) { return channel_new(target, 0); }
bok_rpc_channel_t *bok_rpc_channel_new_probe(const char *target) { return channel_new(target, 1); }

const char *bok_rpc_channel_target(const bok_rpc_channel_t *ch) { return ch->target; }

void bok_rpc_channel_destroy(bok_rpc_channel_t *c) {
  if (!c) return;
  if (c->cq) {
    /* Pending async calls end now (callbacks see CANCELLED), not at their
     * deadlines. */
    pthread_mutex_lock(&c->mu);
    for (unary_t *u = c->inflight; u; u = u->next)
      if (u->call) grpc_call_cancel(u->call, NULL);
    sub_cancel_all(c);
    pthread_mutex_unlock(&c->mu);
    grpc_completion_queue_shutdown(c->cq);
    pthread_join(c->th, NULL);
    grpc_completion_queue_destroy(c->cq);
  }
  grpc_channel_destroy(c->ch);
  pthread_mutex_destroy(&c->mu);
  free(c->target);
  free(c);
  bok_rpc_lib_unref();
}

static grpc_call *make_call(bok_rpc_channel_t *c, grpc_completion_queue *cq, const char *method,
                            int timeout_ms) {
  grpc_slice m = grpc_slice_from_copied_string(method);
  grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL,
                                             bok_rpc_deadline(timeout_ms), NULL);
  grpc_slice_unref(m);
  return call;
}

/* Only the job service checks the worker token, so only its methods get it
 * (the model service never sees it). */
#define TOKEN_AUDIENCE "/batch.v1.JobService/"

/* Fills md (2 entries) with the call's metadata; returns how many. */
static size_t call_metadata(grpc_metadata *md, const char *method, const char *tenant) {
  size_t n = 0;
  if (tenant) {
    md[n].key = grpc_slice_from_static_string(BOK_TENANT_MD);
    md[n].value = grpc_slice_from_copied_string(tenant);
    n++;
  }
  if (strncmp(method, TOKEN_AUDIENCE, strlen(TOKEN_AUDIENCE)) == 0 && bok_rpc_client_token(&md[n].value)) {
    md[n].key = grpc_slice_from_static_string(BOK_WORKER_TOKEN_MD);
    n++;
  }
  return n;
}

static void free_metadata(grpc_metadata *md, size_t n) {
  for (size_t i = 0; i < n; i++) grpc_slice_unref(md[i].value);
}

static int unary_start(bok_rpc_channel_t *c, grpc_completion_queue *cq, unary_t *u,
                       const char *method, const char *tenant, int timeout_ms,
                       const ProtobufCMessage *req, bok_err_t *err) {
  if (timeout_ms <= 0) timeout_ms = 10000;
  u->target = c->target;
  u->send = bok_rpc_pack(req);
  if (!u->send) return bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
  u->call = make_call(c, cq, method, timeout_ms);
  u->nmd = call_metadata(u->md, method, tenant);
  grpc_metadata_array_init(&u->initial_md);
  grpc_metadata_array_init(&u->trailing_md);
  u->details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = u->nmd;
  ops[0].data.send_initial_metadata.metadata = u->nmd ? u->md : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = u->send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &u->recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
  ops[5].data.recv_status_on_client.status = &u->status;
  ops[5].data.recv_status_on_client.status_details = &u->details;
  if (grpc_call_start_batch(u->call, ops, 6, u, NULL) != GRPC_CALL_OK) {
    return bok_err_set(err, BOK_ERR_INTERNAL, "cannot start call %s", method);
  }
  return 0;
}

/* Turns a finished call into (resp, err) and frees the call state. */
static ProtobufCMessage *unary_finish(unary_t *u, int success, bok_err_t *err) {
  ProtobufCMessage *resp = NULL;
  bok_err_clear(err);
  if (!success) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "call failed");
  } else if (u->status != GRPC_STATUS_OK) {
    char msg[512];
    bok_rpc_slice_str(u->details, msg, sizeof msg);
    const char *m = msg[0] ? msg : bok_err_code_name((bok_err_code_t)u->status);
    if (u->status == GRPC_STATUS_UNAVAILABLE)
      bok_err_set(err, BOK_ERR_UNAVAILABLE, "backend %.64s unavailable: %.400s", u->target, m);
    else
      bok_err_set(err, (bok_err_code_t)u->status, "%s", m);
  } else {
    resp = bok_rpc_unpack(u->recv, u->resp_desc);
    if (!resp) bok_err_set(err, BOK_ERR_INTERNAL, "malformed response message");
  }
  if (u->recv) grpc_byte_buffer_destroy(u->recv);
  if (u->send) grpc_byte_buffer_destroy(u->send);
  grpc_metadata_array_destroy(&u->initial_md);
  grpc_metadata_array_destroy(&u->trailing_md);
  grpc_slice_unref(u->details);
  free_metadata(u->md, u->nmd);
  if (u->call) grpc_call_unref(u->call);
  return resp;
}

int bok_rpc_unary(bok_rpc_channel_t *c, const char *method, const char *tenant, int timeout_ms,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                  ProtobufCMessage **resp, bok_err_t *err) {
  *resp = NULL;
  if (!c) { /* a channel cache out of memory */
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "no channel (out of memory)");
    return -1;
  }
  bok_fault("rpc.client"); /* tests: BOK_FAULT=rpc.client:delay=MS slows every blocking call */
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  unary_t u;
  memset(&u, 0, sizeof u);
  u.resp_desc = resp_desc;
  int rc = unary_start(c, cq, &u, method, tenant, timeout_ms, req, err);
  int success = 0;
  if (rc == 0) {
    grpc_event ev = grpc_completion_queue_pluck(cq, &u, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    success = ev.success;
  }
  bok_err_t tmp;
  if (rc == 0) {
    *resp = unary_finish(&u, success, err ? err : &tmp);
  } else {
    if (u.call) {
      grpc_call_cancel(u.call, NULL);
    }
    if (u.send) grpc_byte_buffer_destroy(u.send);
    u.send = NULL;
    if (u.call) {
      grpc_metadata_array_destroy(&u.initial_md);
      grpc_metadata_array_destroy(&u.trailing_md);
      grpc_slice_unref(u.details);
      free_metadata(u.md, u.nmd);
      grpc_call_unref(u.call);
    }
  }
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  return *resp ? 0 : -1;
}

static void *async_thread(void *arg) {
  bok_rpc_channel_t *c = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    if (*(int *)ev.tag) {
      sub_event(ev.tag, ev.success);
      continue;
    }
    unary_t *u = ev.tag;
    inflight_remove(c, u);
    bok_err_t err;
    ProtobufCMessage *resp = unary_finish(u, ev.success, &err);
    u->cb(u->ud, resp, &err);
    free(u);
  }
  return NULL;
}

/* Starts the completion thread on first use. 0 ok, -1 failed. */
static int async_ready(bok_rpc_channel_t *c) {
  pthread_mutex_lock(&c->mu);
  if (!c->cq) {
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&c->th, NULL, async_thread, c) != 0) {
      grpc_completion_queue_destroy(c->cq);
      c->cq = NULL;
      pthread_mutex_unlock(&c->mu);
      return -1;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return 0;
}

int bok_rpc_unary_async(bok_rpc_channel_t *c, const char *method, const char *tenant,
                        int timeout_ms, const ProtobufCMessage *req,
                        const ProtobufCMessageDescriptor *resp_desc, bok_rpc_done_fn cb, void *ud) {
  if (async_ready(c) != 0) return -1;
  unary_t *u = calloc(1, sizeof *u);
  if (!u) return -1;
  u->resp_desc = resp_desc;
  u->cb = cb;
  u->ud = ud;
  /* Listed before the batch starts, so the completion thread (which
   * unlists it) always finds it. */
  pthread_mutex_lock(&c->mu);
  u->next = c->inflight;
  if (c->inflight) c->inflight->prev = u;
  c->inflight = u;
  pthread_mutex_unlock(&c->mu);
  if (unary_start(c, c->cq, u, method, tenant, timeout_ms, req, NULL) != 0) {
    inflight_remove(c, u);
    if (u->call) {
      grpc_metadata_array_destroy(&u->initial_md);
      grpc_metadata_array_destroy(&u->trailing_md);
      grpc_slice_unref(u->details);
      free_metadata(u->md, u->nmd);
      grpc_call_unref(u->call);
    }
    if (u->send) grpc_byte_buffer_destroy(u->send);
    free(u);
    return -1;
  }
  return 0;
}

/* ---- client streaming ----------------------------------------------------- */

struct bok_rpc_stream {
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_metadata md[2];
  size_t nmd;
  int ended;      /* the final status was received (into err) */
  bok_err_t err; /* that status */
};

static int stream_batch(bok_rpc_stream_t *st, grpc_op *ops, size_t n) {
  int tag;
  if (grpc_call_start_batch(st->call, ops, n, &tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(st->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return ev.success;
}

static void stream_free(bok_rpc_stream_t *st) {
  if (st->call) grpc_call_unref(st->call);
  grpc_completion_queue_shutdown(st->cq);
  while (grpc_completion_queue_pluck(st->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(st->cq);
  free_metadata(st->md, st->nmd);
  free(st);
}

/* Receives the final status into err (and the response if any). */
static int stream_recv_status(bok_rpc_stream_t *st, int close_send,
                              const ProtobufCMessageDescriptor *resp_desc,
                              ProtobufCMessage **resp, bok_err_t *err) {
  grpc_metadata_array imd, tmd;
  grpc_metadata_array_init(&imd);
  grpc_metadata_array_init(&tmd);
  grpc_byte_buffer *recv = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (close_send) ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[n++].data.recv_initial_metadata.recv_initial_metadata = &imd;
  if (resp) {
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &recv;
  }
  ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[n].data.recv_status_on_client.trailing_metadata = &tmd;
  ops[n].data.recv_status_on_client.status = &status;
  ops[n++].data.recv_status_on_client.status_details = &details;
  int ok = stream_batch(st, ops, n);
  int rc = -1;
  if (!ok) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "stream failed");
  } else if (status != GRPC_STATUS_OK) {
    char msg[512];
    bok_rpc_slice_str(details, msg, sizeof msg);
    bok_err_set(err, (bok_err_code_t)status, "%s", msg[0] ? msg : bok_err_code_name((bok_err_code_t)status));
  } else if (resp) {
    *resp = bok_rpc_unpack(recv, resp_desc);
    if (*resp)
      rc = 0;
    else
      bok_err_set(err, BOK_ERR_INTERNAL, "malformed response message");
  } else {
    rc = 0;
  }
  if (recv) grpc_byte_buffer_destroy(recv);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&imd);
  grpc_metadata_array_destroy(&tmd);
  return rc;
}

bok_rpc_stream_t *bok_rpc_stream_open(bok_rpc_channel_t *c, const char *method,
                                      const char *tenant, int timeout_ms, bok_err_t *err) {
  bok_rpc_stream_t *st = calloc(1, sizeof *st);
  if (!st) {
    bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
    return NULL;
  }
  if (timeout_ms <= 0) timeout_ms = 3600 * 1000;
  st->cq = grpc_completion_queue_create_for_pluck(NULL);
  st->call = make_call(c, st->cq, method, timeout_ms);
  st->nmd = call_metadata(st->md, method, tenant);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  op.data.send_initial_metadata.count = st->nmd;
  op.data.send_initial_metadata.metadata = st->nmd ? st->md : NULL;
  if (!stream_batch(st, &op, 1)) {
    bok_err_clear(err);
    stream_recv_status(st, 0, NULL, NULL, err);
    if (!err || err->code == BOK_OK) bok_err_set(err, BOK_ERR_UNAVAILABLE, "cannot open stream");
    stream_free(st);
    return NULL;
  }
  return st;
}

int bok_rpc_stream_send(bok_rpc_stream_t *st, const ProtobufCMessage *msg, bok_err_t *err) {
  grpc_byte_buffer *bb = bok_rpc_pack(msg);
  if (!bb) return bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.flags = GRPC_WRITE_BUFFER_HINT;
  op.data.send_message.send_message = bb;
  int ok = stream_batch(st, &op, 1);
  grpc_byte_buffer_destroy(bb);
  if (!ok) {
    /* The server ended the call (an error, usually): report its status. */
    if (!st->ended) {
      bok_err_clear(&st->err);
      stream_recv_status(st, 0, NULL, NULL, &st->err);
      if (st->err.code == BOK_OK) bok_err_set(&st->err, BOK_ERR_UNAVAILABLE, "stream closed by the server");
      st->ended = 1;
    }
    if (err) *err = st->err;
    return -1;
  }
  return 0;
}

int bok_rpc_stream_finish(bok_rpc_stream_t *st, const ProtobufCMessageDescriptor *resp_desc,
                          ProtobufCMessage **resp, bok_err_t *err) {
  *resp = NULL;
  bok_err_clear(err);
  int rc;
  if (st->ended) { /* a send already failed and received the status */
    if (err) *err = st->err;
    rc = -1;
  } else {
    rc = stream_recv_status(st, 1, resp_desc, resp, err);
  }
  stream_free(st);
  return rc;
}

void bok_rpc_stream_abort(bok_rpc_stream_t *st) {
  if (!st) return;
  grpc_call_cancel(st->call, NULL);
  stream_free(st);
}

void bok_rpc_stream_cancel(bok_rpc_stream_t *st) {
  if (st) grpc_call_cancel(st->call, NULL);
}

/* ---- async server streaming ------------------------------------------------ */

typedef struct {
  int is_sub; /* 1 (see unary_t) */
  struct bok_rpc_sub *sub;
  int kind; /* SUB_START, SUB_MSG, SUB_STATUS */
} sub_tag_t;
enum { SUB_START, SUB_MSG, SUB_STATUS };

/* Two references: the caller's (release) and the call's (dropped by the
 * completion thread after on_end). Everything but refs/ended/call (under mu)
 * belongs to the completion thread once started. */
struct bok_rpc_sub {
  sub_tag_t t_start, t_msg, t_status;
  bok_rpc_channel_t *c;
  struct bok_rpc_sub *next, *prev; /* c->subs */
  grpc_call *call;
  grpc_metadata md[2];
  size_t nmd;
  grpc_byte_buffer *send, *recv;
  grpc_metadata_array initial_md, trailing_md;
  grpc_status_code status;
  grpc_slice details;
  const ProtobufCMessageDescriptor *desc;
  bok_rpc_msg_fn on_msg;
  bok_rpc_end_fn on_end;
  void *ud;
  int ops; /* batches in flight (atomic: the starter and the completion thread) */
  pthread_mutex_t mu;
  int refs;
  int ended; /* on_end ran: call is gone */
};

static void sub_unref_unlock(bok_rpc_sub_t *sb) {
  int left = --sb->refs;
  pthread_mutex_unlock(&sb->mu);
  if (left) return;
  pthread_mutex_destroy(&sb->mu);
  free(sb);
}

/* Starts one RECV_MESSAGE batch; the caller has counted it in sb->ops. */
static int sub_start_recv(bok_rpc_sub_t *sb) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &sb->recv;
  return grpc_call_start_batch(sb->call, &op, 1, &sb->t_msg, NULL) == GRPC_CALL_OK ? 0 : -1;
}

/* The next receive, from the completion thread while it still holds the
 * current event's count (so ops cannot reach 0 in between). */
static int sub_recv(bok_rpc_sub_t *sb) {
  __atomic_add_fetch(&sb->ops, 1, __ATOMIC_ACQ_REL);
  if (sub_start_recv(sb) == 0) return 0;
  __atomic_sub_fetch(&sb->ops, 1, __ATOMIC_ACQ_REL);
  return -1;
}

/* The call is over and nothing is in flight: on_end, then let go. */
static void sub_finish(bok_rpc_sub_t *sb) {
  bok_rpc_channel_t *c = sb->c;
  pthread_mutex_lock(&c->mu);
  if (sb->prev) sb->prev->next = sb->next;
  else c->subs = sb->next;
  if (sb->next) sb->next->prev = sb->prev;
  pthread_mutex_unlock(&c->mu);
  bok_err_t err;
  bok_err_clear(&err);
  if (sb->status != GRPC_STATUS_OK) {
    char msg[400];
    bok_rpc_slice_str(sb->details, msg, sizeof msg);
    bok_err_set(&err, (bok_err_code_t)sb->status, "%s", msg[0] ? msg : bok_err_code_name((bok_err_code_t)sb->status));
  }
  sb->on_end(sb->ud, &err);
  pthread_mutex_lock(&sb->mu);
  sb->ended = 1;
  grpc_call_unref(sb->call);
  sb->call = NULL;
  pthread_mutex_unlock(&sb->mu);
  if (sb->send) grpc_byte_buffer_destroy(sb->send);
  grpc_metadata_array_destroy(&sb->initial_md);
  grpc_metadata_array_destroy(&sb->trailing_md);
  grpc_slice_unref(sb->details);
  free_metadata(sb->md, sb->nmd);
  pthread_mutex_lock(&sb->mu);
  sub_unref_unlock(sb);
}

static void sub_event(void *tag, int success) {
  sub_tag_t *t = tag;
  bok_rpc_sub_t *sb = t->sub;
  if (t->kind == SUB_MSG && success && sb->recv) {
    ProtobufCMessage *m = bok_rpc_unpack(sb->recv, sb->desc);
    grpc_byte_buffer_destroy(sb->recv);
    sb->recv = NULL;
    if (m) sb->on_msg(sb->ud, m);
    else grpc_call_cancel_with_status(sb->call, GRPC_STATUS_INTERNAL, "malformed message", NULL);
    if (m) sub_recv(sb);
  } else if (t->kind == SUB_MSG && sb->recv) {
    grpc_byte_buffer_destroy(sb->recv);
    sb->recv = NULL;
  }
  if (__atomic_sub_fetch(&sb->ops, 1, __ATOMIC_ACQ_REL) == 0) sub_finish(sb);
}

static void sub_cancel_all(bok_rpc_channel_t *c) {
  /* c->mu held by the caller */
  for (bok_rpc_sub_t *sb = c->subs; sb; sb = sb->next) grpc_call_cancel(sb->call, NULL);
}

bok_rpc_sub_t *bok_rpc_sub_start(bok_rpc_channel_t *c, const char *method, const char *tenant, int timeout_ms,
                                 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *msg_desc,
                                 bok_rpc_msg_fn on_msg, bok_rpc_end_fn on_end, void *ud) {
  if (async_ready(c) != 0) return NULL;
  bok_rpc_sub_t *sb = calloc(1, sizeof *sb);
  if (!sb) return NULL;
  sb->send = bok_rpc_pack(req);
  if (!sb->send) {
    free(sb);
    return NULL;
  }
  sb->t_start = (sub_tag_t){1, sb, SUB_START};
  sb->t_msg = (sub_tag_t){1, sb, SUB_MSG};
  sb->t_status = (sub_tag_t){1, sb, SUB_STATUS};
  sb->c = c;
  sb->desc = msg_desc;
  sb->on_msg = on_msg;
  sb->on_end = on_end;
  sb->ud = ud;
  sb->refs = 2;
  pthread_mutex_init(&sb->mu, NULL);
  grpc_metadata_array_init(&sb->initial_md);
  grpc_metadata_array_init(&sb->trailing_md);
  sb->details = grpc_empty_slice();
  sb->call = make_call(c, c->cq, method, timeout_ms > 0 ? timeout_ms : 24 * 3600 * 1000);
  sb->nmd = call_metadata(sb->md, method, tenant);
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = sb->nmd;
  ops[0].data.send_initial_metadata.metadata = sb->nmd ? sb->md : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = sb->send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &sb->initial_md;
  grpc_op st;
  memset(&st, 0, sizeof st);
  st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  st.data.recv_status_on_client.trailing_metadata = &sb->trailing_md;
  st.data.recv_status_on_client.status = &sb->status;
  st.data.recv_status_on_client.status_details = &sb->details;
  pthread_mutex_lock(&c->mu); /* listed first; the completion thread waits for mu to unlist */
  sb->next = c->subs;
  if (c->subs) c->subs->prev = sb;
  c->subs = sb;
  /* All three first batches (start, status, first receive) are counted
   * before any starts: counted one by one, a fast failure (NOT_FOUND) could
   * bring ops to 0 and finish the call before the receive was counted, and
   * the receive's completion would then finish it a second time. */
  sb->ops = 3;
  int ok = grpc_call_start_batch(sb->call, ops, 4, &sb->t_start, NULL) == GRPC_CALL_OK;
  int last = 0;
  if (ok && grpc_call_start_batch(sb->call, &st, 1, &sb->t_status, NULL) != GRPC_CALL_OK) {
    grpc_call_cancel(sb->call, NULL); /* never expected */
    last = __atomic_sub_fetch(&sb->ops, 1, __ATOMIC_ACQ_REL) == 0;
  }
  if (ok && sub_start_recv(sb) != 0) {
    grpc_call_cancel(sb->call, NULL);
    last = __atomic_sub_fetch(&sb->ops, 1, __ATOMIC_ACQ_REL) == 0;
  }
  pthread_mutex_unlock(&c->mu);
  if (last) sub_finish(sb); /* the rare case where everything already completed */
  if (!ok) { /* nothing started: no callback will run */
    pthread_mutex_lock(&c->mu);
    c->subs = sb->next;
    if (sb->next) sb->next->prev = NULL;
    pthread_mutex_unlock(&c->mu);
    grpc_call_unref(sb->call);
    grpc_byte_buffer_destroy(sb->send);
    grpc_metadata_array_destroy(&sb->initial_md);
    grpc_metadata_array_destroy(&sb->trailing_md);
    free_metadata(sb->md, sb->nmd);
    pthread_mutex_destroy(&sb->mu);
    free(sb);
    return NULL;
  }
  return sb;
}

void bok_rpc_sub_release(bok_rpc_sub_t *sb) {
  if (!sb) return;
  pthread_mutex_lock(&sb->mu);
  if (!sb->ended && sb->call) grpc_call_cancel(sb->call, NULL);
  sub_unref_unlock(sb);
}
