/* gRPC server glue.
 *
 * Threading: `threads` serving threads share one NEXT completion queue
 * (registered with the server). For every method the server keeps `threads`
 * outstanding requests ("slots"); each slot owns a PLUCK queue bound to the
 * call it accepts. Whichever thread is idle takes the next accepted call and
 * serves it synchronously on that slot's pluck queue, then re-requests the
 * slot. So `threads` calls are in flight at once, handlers may block, and a
 * long call (an upload stream) never holds up a call of another method while
 * another thread is idle.
 *
 * Streams: a client-streaming or bidirectional handler reads with
 * bok_rpc_call_read() and (bidirectional) writes with bok_rpc_call_write() on
 * its own thread; reads and writes alternate, never overlap. Server
 * reflection (rpc_reflection.c) is such a stream, registered by every server
 * beside grpc.health.v1.Health.
 *
 * Detached server streams (bok_rpc_server_add_server_stream): the call is
 * accepted and admitted on a serving thread like any other, but it is bound
 * to the server's stream queue instead of the slot's pluck queue. Its start
 * handler keeps a handle (bok_rpc_sstream_t) and returns at once; every later
 * operation is asynchronous and completes on the one stream thread, which
 * sends the next queued message or the status and notices the end of the
 * call (RECV_CLOSE_ON_SERVER, started when the call is admitted). So
 * hundreds of watchers hold no serving thread.
 *
 * Identity: a BOK_RPC_WORKER_ONLY method's caller is checked
 * (rpc_auth.c) before the tenant and the handler; refusals are logged with
 * the peer address and counted like any call.
 *
 * Shutdown: bok_rpc_server_shutdown() (or SIGINT/SIGTERM in wait, through
 * bok_signals_wait of rpc_run.c) wakes the
 * waiting thread, which asks gRPC to shut down, gives in-flight calls a grace
 * period, cancels the rest, then drains and joins the serving threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/support/alloc.h>

#include "bok/util.h"
#include "grpc/health/v1/health.pb-c.h"
#include "bok/fault.h"
#include "rpc_internal.h"

#define MAX_METHODS 32
#define SHUTDOWN_GRACE_MS 5000

typedef struct {
  char *path;
  const ProtobufCMessageDescriptor *req_desc; /* NULL for client streams */
  bok_rpc_tenant_mode_t tenant;
  bok_rpc_unary_fn unary;
  bok_rpc_stream_fn stream;
  bok_rpc_sstream_fn sstart; /* detached server streams */
  void *ud;
  void *handle;
  /* metrics, resolved once: the duration child at start, the per-code
   * counters on a code's first use (then read with an atomic load) */
  bok_metric_t *dur;
  bok_metric_t *by_code[17];
} method_t;

typedef struct thread_s thread_t;

typedef struct {
  bok_rpc_server_t *s;
  method_t *m;                  /* NULL: unregistered methods (UNIMPLEMENTED) */
  grpc_call_details details;    /* unregistered methods only */
  grpc_completion_queue *pluck; /* bound to the accepted call */
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
} slot_t;

struct thread_s {
  bok_rpc_server_t *s;
  pthread_t th;
};

struct bok_rpc_server {
  bok_rpc_server_opts_t opts;
  char *addr;
  grpc_server *server;
  grpc_completion_queue *shutdown_cq;
  method_t methods[MAX_METHODS];
  int nmethods;
  thread_t *threads;
  int nthreads;
  grpc_completion_queue *cq; /* shared by the serving threads */
  slot_t *slots;             /* nthreads * nmethods */
  int nslots;
  int started;
  int stopped;
  volatile int shutting_down;
  int wake_pipe[2];
  pthread_mutex_t mu;
  bok_metric_family_t *m_requests, *m_duration;
  bok_rpc_worker_auth_t *auth; /* worker credential accepted (copied at start) */
  bok_rpc_reflection_t *refl;  /* the compiled-in API descriptors (read-only) */
  char **services;             /* service names, set by start (read-only then) */
  size_t nservices;
  /* detached server streams: their calls' queue, its thread, and the
   * streams whose call has not ended yet (st_mu) */
  grpc_completion_queue *stream_cq;
  pthread_t stream_th;
  pthread_mutex_t st_mu;
  bok_rpc_sstream_t *live;
};

/* A detached stream's operation in flight: the tag the stream thread gets. */
typedef struct {
  bok_rpc_sstream_t *st;
  int kind; /* OP_WRITE, OP_STATUS, OP_CLOSED */
} sst_op_t;
enum { OP_WRITE, OP_STATUS, OP_CLOSED };

/* Owned by two references: the handler's (release) and the glue's (dropped
 * by the stream thread once the call ended and no operation is in flight).
 * Fields below mu are guarded by it. */
struct bok_rpc_sstream {
  bok_rpc_server_t *s; /* used only while the call lives */
  method_t *m;
  grpc_call *call; /* NULL once the glue let go of it */
  char tenant_buf[72];
  const char *tenant;
  double t0;
  sst_op_t op_write, op_status, op_closed;
  int cancelled; /* RECV_CLOSE_ON_SERVER's answer */
  bok_rpc_sstream_t *prev, *next; /* s->live, under s->st_mu */
  pthread_mutex_t mu;
  int refs;
  int md_sent;
  int writing;               /* a SEND_MESSAGE in flight (inflight) */
  grpc_byte_buffer *inflight, *pending;
  int end_wanted;            /* end after pending */
  grpc_status_code end_code;
  grpc_slice end_msg;
  int status_sent;
  int over;                  /* the call ended: no operation starts */
  int ops;                   /* operations in flight */
};

struct bok_rpc_call {
  bok_rpc_server_t *s;
  method_t *m;
  grpc_call *call;
  grpc_completion_queue *pluck;
  const char *tenant;
  char tenant_buf[72];
  gpr_timespec deadline;
  int md_sent; /* initial metadata went out with the first write */
  int done;
  grpc_status_code code; /* the status sent, once done */
};

static void logf_(bok_rpc_server_t *s, bok_log_level_t lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(bok_rpc_server_t *s, bok_log_level_t lvl, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bok_vlogf(s->opts.log, s->opts.log_opaque, lvl, fmt, ap);
  va_end(ap);
}

/* ---- per-call ops -------------------------------------------------------- */

static void call_wait(bok_rpc_call_t *c, void *tag) {
  grpc_completion_queue_pluck(c->pluck, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

const char *bok_rpc_call_tenant(const bok_rpc_call_t *call) { return call->tenant; }
const char *bok_rpc_call_method(const bok_rpc_call_t *call) { return call->m->path; }

int bok_rpc_call_read(bok_rpc_call_t *c, const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **msg) {
  *msg = NULL;
  grpc_byte_buffer *bb = NULL;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &bb;
  int tag;
  if (grpc_call_start_batch(c->call, &op, 1, &tag, NULL) != GRPC_CALL_OK) return -1;
  grpc_event ev =
      grpc_completion_queue_pluck(c->pluck, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (!ev.success) {
    if (bb) grpc_byte_buffer_destroy(bb);
    return -1;
  }
  if (!bb) {
    /* NULL with success: the client half-closed -- or the call died (client
     * cancel, deadline), which gRPC also reports this way. */
    if (grpc_call_failed_before_recv_message(c->call)) return -1;
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC)) >= 0)
      return -1;
    return 0;
  }
  *msg = bok_rpc_unpack(bb, desc);
  grpc_byte_buffer_destroy(bb);
  return *msg ? 1 : -1;
}

static void finish_call(bok_rpc_call_t *c, grpc_byte_buffer *resp, grpc_status_code code,
                        const char *details) {
  if (c->done) return;
  c->done = 1;
  c->code = code;
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  int n = 0;
  int cancelled = 0;
  if (!c->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
  }
  if (resp) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = resp;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n].data.recv_close_on_server.cancelled = &cancelled;
  n++;
  grpc_slice det = grpc_slice_from_copied_string(details ? details : "");
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n].data.send_status_from_server.status_details = details && *details ? &det : NULL;
  n++;
  int tag;
  if (grpc_call_start_batch(c->call, ops, (size_t)n, &tag, NULL) == GRPC_CALL_OK) call_wait(c, &tag);
  grpc_slice_unref(det);
}

void bok_rpc_call_reply(bok_rpc_call_t *c, const ProtobufCMessage *resp) {
  size_t n = protobuf_c_message_get_packed_size(resp);
  if (n > c->s->opts.max_message) {
    bok_rpc_call_fail(c, BOK_ERR_TOO_LARGE, "response too large (%zu bytes, limit %zu)", n,
                      c->s->opts.max_message);
    return;
  }
  grpc_byte_buffer *bb = bok_rpc_pack(resp);
  if (!bb) {
    finish_call(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  finish_call(c, bb, GRPC_STATUS_OK, NULL);
  grpc_byte_buffer_destroy(bb);
}

void bok_rpc_call_fail(bok_rpc_call_t *c, bok_err_code_t code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (code == BOK_OK) code = BOK_ERR_UNKNOWN;
  finish_call(c, NULL, (grpc_status_code)code, msg);
}

int bok_rpc_call_write(bok_rpc_call_t *c, const ProtobufCMessage *msg) {
  if (c->done) return -1;
  size_t n = protobuf_c_message_get_packed_size(msg);
  if (n > c->s->opts.max_message) {
    bok_rpc_call_fail(c, BOK_ERR_TOO_LARGE, "response too large (%zu bytes, limit %zu)", n,
                      c->s->opts.max_message);
    return -1;
  }
  grpc_byte_buffer *bb = bok_rpc_pack(msg);
  if (!bb) {
    finish_call(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return -1;
  }
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t nops = 0;
  if (!c->md_sent) ops[nops++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[nops].op = GRPC_OP_SEND_MESSAGE;
  ops[nops].data.send_message.send_message = bb;
  nops++;
  c->md_sent = 1;
  int tag, ok = 0;
  if (grpc_call_start_batch(c->call, ops, nops, &tag, NULL) == GRPC_CALL_OK) {
    grpc_event ev =
        grpc_completion_queue_pluck(c->pluck, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    ok = ev.success;
  }
  grpc_byte_buffer_destroy(bb);
  return ok ? 0 : -1;
}

void bok_rpc_call_close(bok_rpc_call_t *c) { finish_call(c, NULL, GRPC_STATUS_OK, NULL); }

/* ---- health -------------------------------------------------------------- */

static void health_check(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  bok_rpc_server_t *s = ud;
  const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
  int known = r->service == NULL || r->service[0] == '\0';
  for (int i = 0; i < s->nmethods && !known; i++) {
    const char *p = s->methods[i].path + 1; /* "pkg.Service/Method" */
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (strlen(r->service) == n && strncmp(p, r->service, n) == 0) known = 1;
  }
  if (!known) {
    bok_rpc_call_fail(call, BOK_ERR_NOT_FOUND, "unknown service");
    return;
  }
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  char why[256] = "";
  int ready = !s->shutting_down && (!s->opts.ready || s->opts.ready(s->opts.ready_ud, why, sizeof why));
  resp.status = ready ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
  bok_rpc_call_reply(call, &resp.base);
}

/* ---- reflection ----------------------------------------------------------- */

/* grpc.reflection.v1(alpha).ServerReflection/ServerReflectionInfo: one
 * answer per request until the client half-closes. The two versions share
 * their messages' wire format, so v1's code serves both. */
static void reflection_info(void *ud, bok_rpc_call_t *call) {
  bok_rpc_server_t *s = ud;
  for (;;) {
    ProtobufCMessage *m = NULL;
    int r = bok_rpc_call_read(call, &grpc__reflection__v1__server_reflection_request__descriptor, &m);
    if (r == 0) {
      bok_rpc_call_close(call);
      return;
    }
    if (r < 0) {
      bok_rpc_call_fail(call, BOK_ERR_INVALID, "malformed request, or the stream was cancelled");
      return;
    }
    bok_rpc_reflection_answer_t a;
    bok_rpc_reflection_answer(s->refl, (const char *const *)s->services, s->nservices, (const void *)m, &a);
    int w = bok_rpc_call_write(call, &a.msg.base);
    bok_rpc_reflection_answer_done(&a);
    protobuf_c_message_free_unpacked(m, NULL);
    if (w != 0) {
      bok_rpc_call_fail(call, BOK_ERR_CANCELLED, "client went away"); /* no-op when write ended it */
      return;
    }
  }
}

/* The distinct service names of the registered methods ("/pkg.Svc/M"). */
static int collect_services(bok_rpc_server_t *s) {
  s->services = calloc((size_t)s->nmethods, sizeof *s->services);
  if (!s->services) return -1;
  for (int i = 0; i < s->nmethods; i++) {
    const char *p = s->methods[i].path + 1;
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    size_t j = 0;
    while (j < s->nservices && !(strlen(s->services[j]) == n && strncmp(s->services[j], p, n) == 0)) j++;
    if (j < s->nservices) continue;
    if (!(s->services[s->nservices] = strndup(p, n))) return -1;
    s->nservices++;
  }
  return 0;
}

/* ---- serving threads ------------------------------------------------------ */

static int request_slot(slot_t *sl) {
  bok_rpc_server_t *s = sl->s;
  grpc_metadata_array_init(&sl->md);
  sl->payload = NULL;
  sl->call = NULL;
  grpc_call_error e;
  if (!sl->m) {
    grpc_call_details_init(&sl->details);
    e = grpc_server_request_call(s->server, &sl->call, &sl->details, &sl->md, sl->pluck, s->cq, sl);
    if (e != GRPC_CALL_OK) {
      grpc_call_details_destroy(&sl->details);
      grpc_metadata_array_destroy(&sl->md);
      return -1;
    }
    return 0;
  }
  e = grpc_server_request_registered_call(
      s->server, sl->m->handle, &sl->call, &sl->deadline, &sl->md,
      sl->m->req_desc ? &sl->payload : NULL, sl->m->sstart ? s->stream_cq : sl->pluck, s->cq, sl);
  if (e != GRPC_CALL_OK) {
    grpc_metadata_array_destroy(&sl->md);
    return -1;
  }
  return 0;
}

static void serve_unknown(slot_t *sl) {
  bok_rpc_call_t c;
  memset(&c, 0, sizeof c);
  c.s = sl->s;
  c.call = sl->call;
  c.pluck = sl->pluck;
  char path[200];
  bok_rpc_slice_str(sl->details.method, path, sizeof path);
  bok_rpc_call_fail(&c, BOK_ERR_UNIMPLEMENTED, "unknown method %s", path);
  grpc_call_details_destroy(&sl->details);
  grpc_metadata_array_destroy(&sl->md);
  grpc_call_unref(sl->call);
  sl->call = NULL;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Counts and times a finished call: two atomic adds once the per-code child
 * exists; its first use resolves it (a lock + lookup, once per code). */
static void count_call(bok_rpc_server_t *s, method_t *m, grpc_status_code code, double secs) {
  bok_histogram_observe(m->dur, secs);
  int ci = code >= 0 && code <= 16 ? (int)code : 2;
  bok_metric_t *c = __atomic_load_n(&m->by_code[ci], __ATOMIC_ACQUIRE);
  if (!c) {
    const char *v[] = {m->path, bok_err_code_name((bok_err_code_t)ci)};
    c = bok_metric_child(s->m_requests, v);
    __atomic_store_n(&m->by_code[ci], c, __ATOMIC_RELEASE);
  }
  bok_counter_inc(c);
}

/* Reads the tenant into c and checks the caller: BOK_OK, or the code to
 * fail with and why. */
static bok_err_code_t admit(slot_t *sl, bok_rpc_call_t *c, char *why, size_t cap) {
  for (size_t i = 0; i < sl->md.count; i++) {
    if (grpc_slice_str_cmp(sl->md.metadata[i].key, BOK_TENANT_MD) == 0) {
      grpc_slice v = sl->md.metadata[i].value;
      if (GRPC_SLICE_LENGTH(v) < sizeof c->tenant_buf) {
        bok_rpc_slice_str(v, c->tenant_buf, sizeof c->tenant_buf);
        if (bok_tenant_valid(c->tenant_buf, strlen(c->tenant_buf))) c->tenant = c->tenant_buf;
      }
      break;
    }
  }
  bok_err_code_t denied = BOK_OK;
  if (sl->m->tenant & BOK_RPC_WORKER_ONLY) denied = bok_rpc_worker_check(c->s->auth, sl->call, &sl->md, why, cap);
  if (denied != BOK_OK) {
    char *peer = grpc_call_get_peer(sl->call);
    logf_(c->s, BOK_LOG_WARN, "refused %s from %s: %s (%s)", sl->m->path, peer ? peer : "?", why,
          bok_err_code_name(denied));
    gpr_free(peer);
    return denied;
  }
  if ((sl->m->tenant & BOK_RPC_TENANT_REQUIRED) && !c->tenant) {
    snprintf(why, cap, "missing or invalid x-tenant-id metadata");
    return BOK_ERR_INVALID;
  }
  return BOK_OK;
}

static void serve_sstream(slot_t *sl, bok_rpc_call_t *c, double t0);

static void serve_slot(slot_t *sl) {
  if (!sl->m) {
    serve_unknown(sl);
    return;
  }
  double t0 = mono_s();
  bok_rpc_call_t c;
  memset(&c, 0, sizeof c);
  c.s = sl->s;
  c.m = sl->m;
  c.call = sl->call;
  c.pluck = sl->pluck;
  c.deadline = sl->deadline;
  if (sl->m->sstart) {
    serve_sstream(sl, &c, t0);
    goto out;
  }
  char why[200];
  bok_err_code_t denied = admit(sl, &c, why, sizeof why);
  bok_log_ctx_set(c.tenant, NULL); /* the handler's log lines carry tenant= */
  bok_fault("rpc.server"); /* tests: BOK_FAULT=rpc.server:delay=MS slows every call */
  if (denied != BOK_OK) {
    bok_rpc_call_fail(&c, denied, "%s", why);
  } else if (sl->m->req_desc) {
    ProtobufCMessage *req = bok_rpc_unpack(sl->payload, sl->m->req_desc);
    if (!req) {
      bok_rpc_call_fail(&c, BOK_ERR_INVALID, "malformed request message");
    } else {
      sl->m->unary(sl->m->ud, &c, req);
      protobuf_c_message_free_unpacked(req, NULL);
    }
  } else {
    sl->m->stream(sl->m->ud, &c);
  }
  if (!c.done) {
    logf_(c.s, BOK_LOG_ERROR, "handler for %s returned without answering", sl->m->path);
    bok_rpc_call_fail(&c, BOK_ERR_INTERNAL, "handler did not answer");
  }
  bok_log_ctx_clear();
  count_call(c.s, sl->m, c.code, mono_s() - t0);
out:
  if (sl->payload) grpc_byte_buffer_destroy(sl->payload);
  grpc_metadata_array_destroy(&sl->md);
  grpc_call_unref(sl->call);
  sl->call = NULL;
  sl->payload = NULL;
}

/* ---- detached server streams ------------------------------------------------ */

static void sst_free(bok_rpc_sstream_t *st) {
  if (st->inflight) grpc_byte_buffer_destroy(st->inflight);
  if (st->pending) grpc_byte_buffer_destroy(st->pending);
  grpc_slice_unref(st->end_msg);
  pthread_mutex_destroy(&st->mu);
  free(st);
}

/* Drops one reference; st->mu held by the caller, released here. */
static void sst_unref_unlock(bok_rpc_sstream_t *st) {
  int left = --st->refs;
  pthread_mutex_unlock(&st->mu);
  if (left == 0) sst_free(st);
}

/* Starts the next operation if none is in flight: the pending message, else
 * the status once one is wanted. st->mu held; any thread. */
static void sst_pump_locked(bok_rpc_sstream_t *st) {
  if (st->over || st->status_sent || st->writing) return;
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (!st->md_sent) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (st->pending) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = st->pending;
    n++;
    if (grpc_call_start_batch(st->call, ops, n, &st->op_write, NULL) != GRPC_CALL_OK) return;
    st->inflight = st->pending;
    st->pending = NULL;
    st->writing = 1;
  } else if (st->end_wanted) {
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = st->end_code;
    ops[n].data.send_status_from_server.status_details =
        GRPC_SLICE_LENGTH(st->end_msg) ? &st->end_msg : NULL;
    n++;
    if (grpc_call_start_batch(st->call, ops, n, &st->op_status, NULL) != GRPC_CALL_OK) return;
    st->status_sent = 1;
  } else {
    return;
  }
  st->md_sent = 1;
  st->ops++;
}

static void sst_end_locked(bok_rpc_sstream_t *st, grpc_status_code code, const char *msg) {
  if (st->end_wanted || st->over) return;
  st->end_wanted = 1;
  st->end_code = code;
  grpc_slice_unref(st->end_msg);
  st->end_msg = grpc_slice_from_copied_string(msg ? msg : "");
  sst_pump_locked(st);
}

/* On a serving thread: admits the call, hands it to the start handler. */
static void serve_sstream(slot_t *sl, bok_rpc_call_t *c, double t0) {
  bok_rpc_server_t *s = sl->s;
  bok_rpc_sstream_t *st = calloc(1, sizeof *st);
  if (!st) {
    grpc_call_cancel_with_status(sl->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  st->s = s;
  st->m = sl->m;
  st->call = sl->call;
  grpc_call_ref(st->call);
  st->t0 = t0;
  st->end_msg = grpc_empty_slice();
  st->op_write = (sst_op_t){st, OP_WRITE};
  st->op_status = (sst_op_t){st, OP_STATUS};
  st->op_closed = (sst_op_t){st, OP_CLOSED};
  pthread_mutex_init(&st->mu, NULL);
  st->refs = 2; /* the handler's and the glue's */
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &st->cancelled;
  if (grpc_call_start_batch(st->call, &op, 1, &st->op_closed, NULL) != GRPC_CALL_OK) {
    grpc_call_cancel_with_status(sl->call, GRPC_STATUS_INTERNAL, "cannot start the stream", NULL);
    grpc_call_unref(st->call);
    sst_free(st);
    return;
  }
  st->ops = 1;
  pthread_mutex_lock(&s->st_mu);
  st->next = s->live;
  if (s->live) s->live->prev = st;
  s->live = st;
  pthread_mutex_unlock(&s->st_mu);
  char why[200];
  bok_err_code_t denied = admit(sl, c, why, sizeof why);
  if (c->tenant) {
    memcpy(st->tenant_buf, c->tenant_buf, sizeof st->tenant_buf);
    st->tenant = st->tenant_buf;
  }
  ProtobufCMessage *req = NULL;
  if (denied == BOK_OK && !(req = bok_rpc_unpack(sl->payload, sl->m->req_desc))) {
    denied = BOK_ERR_INVALID;
    snprintf(why, sizeof why, "malformed request message");
  }
  if (denied != BOK_OK) {
    bok_rpc_sstream_end(st, denied, "%s", why);
    bok_rpc_sstream_release(st);
    return;
  }
  bok_log_ctx_set(c->tenant, NULL);
  sl->m->sstart(sl->m->ud, st, req);
  bok_log_ctx_clear();
  protobuf_c_message_free_unpacked(req, NULL);
}

/* The stream thread: completions of every detached stream's operations. */
static void *stream_main(void *arg) {
  bok_rpc_server_t *s = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->stream_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    sst_op_t *op = ev.tag;
    bok_rpc_sstream_t *st = op->st;
    pthread_mutex_lock(&st->mu);
    st->ops--;
    if (op->kind == OP_WRITE) {
      st->writing = 0;
      grpc_byte_buffer_destroy(st->inflight);
      st->inflight = NULL;
      if (ev.success) sst_pump_locked(st);
    } else if (op->kind == OP_CLOSED) {
      st->over = 1;
      pthread_mutex_lock(&s->st_mu);
      if (st->prev) st->prev->next = st->next;
      else s->live = st->next;
      if (st->next) st->next->prev = st->prev;
      pthread_mutex_unlock(&s->st_mu);
      grpc_status_code code = st->cancelled || !st->status_sent ? GRPC_STATUS_CANCELLED : st->end_code;
      count_call(s, st->m, code, mono_s() - st->t0);
    }
    if (!st->over || st->ops > 0) {
      pthread_mutex_unlock(&st->mu);
      continue;
    }
    grpc_call_unref(st->call); /* the call ended and nothing is in flight */
    st->call = NULL;
    sst_unref_unlock(st);
  }
  return NULL;
}

const char *bok_rpc_sstream_tenant(const bok_rpc_sstream_t *st) { return st->tenant; }

int bok_rpc_sstream_write(bok_rpc_sstream_t *st, const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  grpc_byte_buffer *bb = NULL;
  pthread_mutex_lock(&st->mu);
  int ok = !st->over && !st->end_wanted;
  if (ok && n > st->s->opts.max_message) {
    char why[120];
    snprintf(why, sizeof why, "message too large (%zu bytes, limit %zu)", n, st->s->opts.max_message);
    sst_end_locked(st, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
    ok = 0;
  }
  if (ok && !(bb = bok_rpc_pack(msg))) {
    sst_end_locked(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    ok = 0;
  }
  if (ok) {
    if (st->pending) grpc_byte_buffer_destroy(st->pending); /* the latest wins */
    st->pending = bb;
    sst_pump_locked(st);
  }
  pthread_mutex_unlock(&st->mu);
  return ok ? 0 : -1;
}

void bok_rpc_sstream_end(bok_rpc_sstream_t *st, bok_err_code_t code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&st->mu);
  sst_end_locked(st, (grpc_status_code)code, msg);
  pthread_mutex_unlock(&st->mu);
}

int bok_rpc_sstream_alive(bok_rpc_sstream_t *st) {
  pthread_mutex_lock(&st->mu);
  int alive = !st->over && !st->end_wanted;
  pthread_mutex_unlock(&st->mu);
  return alive;
}

void bok_rpc_sstream_release(bok_rpc_sstream_t *st) {
  if (!st) return;
  pthread_mutex_lock(&st->mu);
  sst_end_locked(st, GRPC_STATUS_UNAVAILABLE, "stream abandoned by the server");
  sst_unref_unlock(st);
}

static void *thread_main(void *arg) {
  thread_t *t = arg;
  bok_rpc_server_t *s = t->s;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    slot_t *sl = ev.tag;
    if (!ev.success) {
      /* The server is shutting down: this request will never be served. */
      grpc_metadata_array_destroy(&sl->md);
      if (sl->payload) grpc_byte_buffer_destroy(sl->payload);
      if (!sl->m) grpc_call_details_destroy(&sl->details);
      continue;
    }
    serve_slot(sl);
    if (!s->shutting_down) request_slot(sl);
  }
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

bok_rpc_server_t *bok_rpc_server_new(const bok_rpc_server_opts_t *opts, bok_err_t *err) {
  bok_rpc_server_t *s = calloc(1, sizeof *s);
  if (!s) {
    bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
    return NULL;
  }
  s->opts = *opts;
  s->addr = strdup(opts->addr ? opts->addr : "127.0.0.1:0");
  s->nthreads = opts->threads > 0 ? opts->threads : 8;
  if (s->opts.max_message == 0) s->opts.max_message = 4u << 20;
  if (pipe2(s->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    bok_err_set(err, BOK_ERR_INTERNAL, "pipe: %s", strerror(errno));
    free(s->addr);
    free(s);
    return NULL;
  }
  s->refl = bok_rpc_reflection_new(bok_proto_descriptor_set, bok_proto_descriptor_set_len);
  if (!s->refl) { /* a build error or out of memory */
    bok_err_set(err, BOK_ERR_INTERNAL, "cannot index the compiled-in API descriptors");
    close(s->wake_pipe[0]);
    close(s->wake_pipe[1]);
    free(s->addr);
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->st_mu, NULL);
  bok_rpc_lib_ref();
  bok_rpc_server_add_unary(s, "/grpc.health.v1.Health/Check",
                           &grpc__health__v1__health_check_request__descriptor,
                           BOK_RPC_TENANT_OPTIONAL, health_check, s);
  bok_rpc_server_add_bidi_stream(s, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 BOK_RPC_TENANT_OPTIONAL, reflection_info, s);
  bok_rpc_server_add_bidi_stream(s, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                 BOK_RPC_TENANT_OPTIONAL, reflection_info, s);
  return s;
}

static int add_method(bok_rpc_server_t *s, const char *path, const ProtobufCMessageDescriptor *d,
                      bok_rpc_tenant_mode_t tenant, bok_rpc_unary_fn u, bok_rpc_stream_fn st,
                      void *ud) {
  if (s->started || s->nmethods >= MAX_METHODS) return -1;
  method_t *m = &s->methods[s->nmethods++];
  m->path = strdup(path);
  m->req_desc = d;
  m->tenant = tenant;
  m->unary = u;
  m->stream = st;
  m->ud = ud;
  return 0;
}

int bok_rpc_server_add_unary(bok_rpc_server_t *s, const char *path,
                             const ProtobufCMessageDescriptor *req_desc,
                             bok_rpc_tenant_mode_t tenant, bok_rpc_unary_fn fn, void *ud) {
  return add_method(s, path, req_desc, tenant, fn, NULL, ud);
}

int bok_rpc_server_add_client_stream(bok_rpc_server_t *s, const char *path,
                                     bok_rpc_tenant_mode_t tenant, bok_rpc_stream_fn fn, void *ud) {
  return add_method(s, path, NULL, tenant, NULL, fn, ud);
}

int bok_rpc_server_add_bidi_stream(bok_rpc_server_t *s, const char *path,
                                   bok_rpc_tenant_mode_t tenant, bok_rpc_stream_fn fn, void *ud) {
  return add_method(s, path, NULL, tenant, NULL, fn, ud);
}

int bok_rpc_server_add_server_stream(bok_rpc_server_t *s, const char *path,
                                     const ProtobufCMessageDescriptor *req_desc,
                                     bok_rpc_tenant_mode_t tenant, bok_rpc_sstream_fn fn, void *ud) {
  if (!req_desc || !fn || s->started || s->nmethods >= MAX_METHODS) return -1;
  method_t *m = &s->methods[s->nmethods++];
  m->path = strdup(path);
  m->req_desc = req_desc;
  m->tenant = tenant;
  m->sstart = fn;
  m->ud = ud;
  return 0;
}

int bok_rpc_server_start(bok_rpc_server_t *s, bok_err_t *err) {
  if (s->services == NULL && collect_services(s) != 0) abort(); /* out of memory at start-up */
  grpc_arg args[4];
  size_t nargs = 2;
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = (int)s->opts.max_message;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
  args[1].value.integer = 0;
  if (s->opts.stream_window > 0) { /* a fixed window: what a stream may buffer (rpc.h) */
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)GRPC_ARG_HTTP2_BDP_PROBE;
    args[nargs++].value.integer = 0;
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES;
    args[nargs++].value.integer = s->opts.stream_window > (1u << 30) ? 1 << 30 : (int)s->opts.stream_window;
  }
  grpc_channel_args ca = {nargs, args};
  s->server = grpc_server_create(&ca, NULL);
  for (int i = 0; i < s->nmethods; i++) {
    method_t *m = &s->methods[i];
    m->handle = grpc_server_register_method(
        s->server, m->path, NULL,
        m->req_desc ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
    if (!m->handle) return bok_err_set(err, BOK_ERR_INTERNAL, "cannot register %s", m->path);
  }
  s->auth = bok_rpc_worker_auth_snapshot();
  if (!s->auth) abort(); /* out of memory at start-up */
  grpc_server_credentials *creds = bok_rpc_server_creds(); /* TLS when configured (rpc_auth.c) */
  int port = grpc_server_add_http2_port(s->server, s->addr, creds);
  grpc_server_credentials_release(creds);
  if (port <= 0) {
    grpc_server_destroy(s->server);
    s->server = NULL;
    return bok_err_set(err, BOK_ERR_UNAVAILABLE, "cannot listen on %s", s->addr);
  }
  s->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->shutdown_cq, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  s->stream_cq = grpc_completion_queue_create_for_next(NULL);
  if (pthread_create(&s->stream_th, NULL, stream_main, s) != 0) abort();
  s->threads = calloc((size_t)s->nthreads, sizeof *s->threads);
  s->nslots = s->nthreads * (s->nmethods + 1); /* + unregistered methods */
  s->slots = calloc((size_t)s->nslots, sizeof *s->slots);
  if (!s->threads || !s->slots) abort(); /* out of memory at start-up */
  for (int i = 0; i < s->nslots; i++) {
    s->slots[i].s = s;
    int mi = i % (s->nmethods + 1);
    s->slots[i].m = mi < s->nmethods ? &s->methods[mi] : NULL;
    s->slots[i].pluck = grpc_completion_queue_create_for_pluck(NULL);
  }
  bok_metrics_t *reg = s->opts.metrics ? s->opts.metrics : bok_metrics_default();
  const char *ln[] = {"method", "code"};
  s->m_requests = bok_metrics_family(reg, BOK_METRIC_COUNTER, "bok_rpc_requests_total",
                                     "gRPC calls served, by method and status code.", 2, ln, NULL, 0);
  s->m_duration = bok_metrics_family(reg, BOK_METRIC_HISTOGRAM, "bok_rpc_request_duration_seconds",
                                     "Time from receiving a gRPC call to sending its status.", 1, ln, NULL, 0);
  for (int i = 0; i < s->nmethods; i++) {
    const char *v[] = {s->methods[i].path};
    s->methods[i].dur = bok_metric_child(s->m_duration, v);
  }
  grpc_server_start(s->server);
  for (int i = 0; i < s->nslots; i++) request_slot(&s->slots[i]);
  for (int i = 0; i < s->nthreads; i++) {
    s->threads[i].s = s;
    if (pthread_create(&s->threads[i].th, NULL, thread_main, &s->threads[i]) != 0) abort();
  }
  s->started = 1;
  logf_(s, BOK_LOG_INFO, "gRPC listening on %s (port %d, %d threads)", s->addr, port, s->nthreads);
  return port;
}

void bok_rpc_server_shutdown(bok_rpc_server_t *s) {
  char c = 1;
  ssize_t w = write(s->wake_pipe[1], &c, 1);
  (void)w;
}

static void stop_server(bok_rpc_server_t *s) {
  pthread_mutex_lock(&s->mu);
  if (!s->started || s->stopped) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->stopped = 1;
  s->shutting_down = 1;
  int tag;
  grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &tag);
  /* Detached streams last until their owner ends them: end them now. */
  pthread_mutex_lock(&s->st_mu);
  for (bok_rpc_sstream_t *st = s->live; st; st = st->next)
    grpc_call_cancel_with_status(st->call, GRPC_STATUS_UNAVAILABLE, "server shutting down", NULL);
  pthread_mutex_unlock(&s->st_mu);
  grpc_event ev = grpc_completion_queue_next(s->shutdown_cq, bok_rpc_deadline(SHUTDOWN_GRACE_MS), NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    logf_(s, BOK_LOG_WARN, "grace period over: cancelling in-flight calls");
    grpc_server_cancel_all_calls(s->server);
    grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  }
  grpc_completion_queue_shutdown(s->cq);
  for (int i = 0; i < s->nthreads; i++) pthread_join(s->threads[i].th, NULL);
  grpc_completion_queue_shutdown(s->stream_cq);
  pthread_join(s->stream_th, NULL);
  grpc_completion_queue_destroy(s->stream_cq);
  s->stream_cq = NULL;
  grpc_server_destroy(s->server);
  s->server = NULL;
  grpc_completion_queue_shutdown(s->shutdown_cq);
  while (grpc_completion_queue_next(s->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(s->shutdown_cq);
  grpc_completion_queue_destroy(s->cq);
  s->cq = NULL;
  for (int i = 0; i < s->nslots; i++) {
    grpc_completion_queue_shutdown(s->slots[i].pluck);
    while (grpc_completion_queue_pluck(s->slots[i].pluck, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->slots[i].pluck);
  }
  pthread_mutex_unlock(&s->mu);
  logf_(s, BOK_LOG_INFO, "gRPC server stopped");
}

void bok_rpc_server_wait(bok_rpc_server_t *s, int handle_signals) {
  bok_signals_wait(s->wake_pipe[0], handle_signals, NULL, NULL);
  if (handle_signals) logf_(s, BOK_LOG_INFO, "shutting down");
  stop_server(s);
}

void bok_rpc_server_destroy(bok_rpc_server_t *s) {
  if (!s) return;
  stop_server(s);
  if (s->server) grpc_server_destroy(s->server); /* created but never started */
  for (int i = 0; i < s->nmethods; i++) free(s->methods[i].path);
  for (size_t i = 0; i < s->nservices; i++) free(s->services[i]);
  free(s->services);
  bok_rpc_reflection_free(s->refl);
  bok_rpc_worker_auth_free(s->auth);
  free(s->threads);
  free(s->slots);
  free(s->addr);
  close(s->wake_pipe[0]);
  close(s->wake_pipe[1]);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->st_mu);
  free(s);
  bok_rpc_lib_unref();
}
