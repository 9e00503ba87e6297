/* bok/rpc.h -- a small layer over gRPC C core (1.51) for our services.
 *
 * Messages are protobuf-c messages; methods are called by path
 * ("/batch.v1.ModelService/CreateModel"). protoc-c service stubs are unused.
 *
 * Errors: one error type, bok_err_t, whose code IS the gRPC status code, so a
 * handler's failure reaches the client unchanged and the gateway maps it to
 * HTTP with bok_err_http_status().
 *
 * Tenancy: the tenant travels as metadata "x-tenant-id". A method registered
 * with BOK_RPC_TENANT_REQUIRED fails with INVALID_ARGUMENT when the metadata is
 * missing or not a valid tenant id (SPEC 3), before the handler runs. On a
 * BOK_RPC_TENANT_OPTIONAL method an invalid id reads as no tenant (NULL).
 * Unregistered methods answer UNIMPLEMENTED; a request that does not unpack
 * answers INVALID_ARGUMENT; a request over max_message RESOURCE_EXHAUSTED.
 *
 * Service identity (docs/SECURITY.md "Service identity (gRPC)"): a method
 * registered with the flag BOK_RPC_WORKER_ONLY runs only for a caller that
 * shows a worker credential -- a TLS client certificate whose name is in
 * rpc.worker_names, or metadata "x-worker-token" equal to the token of
 * rpc.worker_token_file -- checked before the tenant and the handler.
 * Without one: UNAUTHENTICATED (no or wrong token) or PERMISSION_DENIED (a
 * verified certificate that names no worker, or a server that has no worker
 * credential configured). TLS and the worker credential are process-wide
 * settings (bok_rpc_security_*), set once by main() before any server or
 * channel exists.
 */
#ifndef BOK_RPC_H
#define BOK_RPC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "bok/admin_http.h"
#include "bok/log.h"
#include "bok/metrics.h"

#include "bok/err.h" /* bok_err_t: the error type of every call */

/* ---- Server -------------------------------------------------------------- */

typedef struct bok_rpc_server bok_rpc_server_t;
typedef struct bok_rpc_call bok_rpc_call_t;

/* A method's mode: TENANT_OPTIONAL or TENANT_REQUIRED, optionally OR-ed with
 * the flag WORKER_ONLY (BOK_RPC_WORKER_ONLY alone = tenant optional). */
typedef enum {
  BOK_RPC_TENANT_OPTIONAL = 0,
  BOK_RPC_TENANT_REQUIRED = 1,
  BOK_RPC_WORKER_ONLY = 2
} bok_rpc_tenant_mode_t;

/* A unary handler. `req` is the unpacked request (owned by the glue, freed
 * after the handler returns). The handler must end the call with exactly one
 * of bok_rpc_call_reply() or bok_rpc_call_fail() before returning.
 * Runs on one of the server's threads; handlers of different calls run
 * concurrently, so shared state needs its own locking. */
typedef void (*bok_rpc_unary_fn)(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req);

/* A client-streaming handler: read messages with bok_rpc_call_read() until it
 * returns 0 (client half-closed) or -1 (client went away / deadline), then
 * reply or fail as above. A bidirectional handler reads the same way, sends
 * any number of messages with bok_rpc_call_write() between its reads, and
 * ends with bok_rpc_call_close() (status OK) or bok_rpc_call_fail(). */
typedef void (*bok_rpc_stream_fn)(void *ud, bok_rpc_call_t *call);

typedef struct {
  const char *addr;     /* "127.0.0.1:50051"; port 0 picks a free port */
  int threads;          /* serving threads = calls in flight; 0 -> 8 */
  size_t max_message;   /* max receive/send message bytes; 0 -> 4 MiB */
  /* > 0: every stream's HTTP/2 flow-control window is this many bytes and
   * gRPC's BDP probing (which grows windows to tens of MB on a fast link) is
   * off, so a client stream whose handler reads slower than the client
   * sends buffers at most this much in the transport. 0: gRPC's default. */
  size_t stream_window;
  bok_log_fn log;       /* may be NULL */
  void *log_opaque;
  /* Every call is counted in bok_rpc_requests_total{method,code} and timed in
   * bok_rpc_request_duration_seconds{method} in this registry (NULL: the
   * process-wide bok_metrics_default()). */
  bok_metrics_t *metrics;
  /* Readiness: while it returns 0, grpc.health.v1.Health/Check answers
   * NOT_SERVING. NULL: always ready. Runs on a serving thread for every
   * Check, so it must read a cached state, never probe a backend. */
  bok_ready_fn ready;
  void *ready_ud;
} bok_rpc_server_opts_t;

/* Creates a server (not yet listening). NULL on failure (err set). */
bok_rpc_server_t *bok_rpc_server_new(const bok_rpc_server_opts_t *opts, bok_err_t *err);

/* Registers methods before bok_rpc_server_start(). `path` and `req_desc` must
 * outlive the server (string literals / generated descriptors). */
int bok_rpc_server_add_unary(bok_rpc_server_t *s, const char *path,
                             const ProtobufCMessageDescriptor *req_desc,
                             bok_rpc_tenant_mode_t tenant, bok_rpc_unary_fn fn, void *ud);
int bok_rpc_server_add_client_stream(bok_rpc_server_t *s, const char *path,
                                     bok_rpc_tenant_mode_t tenant, bok_rpc_stream_fn fn, void *ud);
/* A bidirectional stream. Like every call, it holds a serving thread while
 * it lasts. */
int bok_rpc_server_add_bidi_stream(bok_rpc_server_t *s, const char *path,
                                   bok_rpc_tenant_mode_t tenant, bok_rpc_stream_fn fn, void *ud);

/* ---- Server streams (detached) --------------------------------------------
 * A server-streaming method whose stream does NOT hold a serving thread: the
 * start handler runs on a serving thread with the unpacked request (tenant
 * and worker checks done as for unary calls) and gets a stream handle with
 * one reference, which the handler owns. It may end the stream at once
 * (bok_rpc_sstream_end) or keep the handle and write from any thread later;
 * writes and the final status go out from the server's stream thread
 * (one per server) without blocking anyone. Either way the owner drops its
 * reference with bok_rpc_sstream_release() exactly once.
 * Writes never block and never queue more than one message: a message
 * written while the previous one is still being sent replaces any message
 * waiting behind it (the latest state wins), so a slow client costs one
 * message of memory. The stream ends (bok_rpc_sstream_alive() turns 0) when
 * the owner ends it, the client cancels, its deadline passes, or the server
 * shuts down (status UNAVAILABLE). Counted in the metrics like any call, when
 * it ends. */
typedef struct bok_rpc_sstream bok_rpc_sstream_t;
typedef void (*bok_rpc_sstream_fn)(void *ud, bok_rpc_sstream_t *st, const ProtobufCMessage *req);
int bok_rpc_server_add_server_stream(bok_rpc_server_t *s, const char *path,
                                     const ProtobufCMessageDescriptor *req_desc,
                                     bok_rpc_tenant_mode_t tenant, bok_rpc_sstream_fn fn, void *ud);
/* The caller's tenant (NULL if none); valid until release. */
const char *bok_rpc_sstream_tenant(const bok_rpc_sstream_t *st);
/* Queues msg (packed now; the caller keeps msg). Any thread, never blocks.
 * 0 = queued; -1 = the stream is over or ending (or msg exceeds
 * max_message: the stream then ends RESOURCE_EXHAUSTED). */
int bok_rpc_sstream_write(bok_rpc_sstream_t *st, const ProtobufCMessage *msg);
/* Ends the stream after the queued message: code BOK_OK = status OK. Any
 * thread; the first end wins, later ones are ignored. */
void bok_rpc_sstream_end(bok_rpc_sstream_t *st, bok_err_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 while writes can still reach the client (not ended, not cancelled). */
int bok_rpc_sstream_alive(bok_rpc_sstream_t *st);
/* Drops the owner's reference (a stream not yet ended ends UNAVAILABLE).
 * st must not be used afterwards. Safe after the server is destroyed. */
void bok_rpc_sstream_release(bok_rpc_sstream_t *st);

/* Binds, starts the serving threads and the standard grpc.health.v1.Health
 * service (Check answers SERVING for "" and every registered service name,
 * NOT_SERVING while shutting down or while opts.ready says not ready), and
 * server reflection (grpc.reflection.v1 and v1alpha ServerReflection):
 * list_services names every registered service; descriptors come from the
 * gRPC API compiled in from proto/ (batch.v1, health, reflection), so a
 * service without a .proto there is listed but not described.
 * Returns the bound port (> 0) or -1 (err set). */
int bok_rpc_server_start(bok_rpc_server_t *s, bok_err_t *err);

/* Blocks until bok_rpc_server_shutdown() is called or, if
 * `handle_signals` is set, SIGINT/SIGTERM arrives; then shuts down cleanly
 * (in-flight calls finish, within a grace period of 5 s; then the rest are
 * cancelled: their reads return -1, their replies go nowhere).
 * Signals: with handle_signals, wait() is bok_signals_wait (see "Running a
 * binary" below): process-wide SIGINT/SIGTERM handlers (later signals are
 * ignored while the server stops), unblocked in the calling thread for the
 * wait, so it works whether or not the caller
 * blocked them in its other threads (blocking them there is recommended, so
 * that blocking syscalls elsewhere never see EINTR). A signal that arrives
 * before wait() is called gets the previous disposition (default: exit).
 * Call wait() from one thread only; handlers must not call it. */
void bok_rpc_server_wait(bok_rpc_server_t *s, int handle_signals);
/* Async-signal-unsafe; callable from any other thread. Idempotent. */
void bok_rpc_server_shutdown(bok_rpc_server_t *s);
/* Stops (if running) and frees. */
void bok_rpc_server_destroy(bok_rpc_server_t *s);

/* Per-call accessors; valid until the handler returns. */
const char *bok_rpc_call_tenant(const bok_rpc_call_t *call);  /* NULL if none */
const char *bok_rpc_call_method(const bok_rpc_call_t *call);
/* Reads the next message of a client stream into *msg (free with
 * protobuf_c_message_free_unpacked(*msg, NULL)). 1 = message, 0 = end of
 * stream, -1 = client cancelled / deadline / malformed message. */
int bok_rpc_call_read(bok_rpc_call_t *call, const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **msg);
/* Bidirectional streams: sends one message (the first also sends the
 * initial metadata). 0 = sent; -1 = the call is over (client gone,
 * deadline; or the message exceeds max_message, and the call was failed with
 * RESOURCE_EXHAUSTED): stop writing, end the call and return. */
int bok_rpc_call_write(bok_rpc_call_t *call, const ProtobufCMessage *msg);
/* Ends a stream with status OK and no further message. */
void bok_rpc_call_close(bok_rpc_call_t *call);
/* Sends `resp` with status OK. The glue packs a copy; the caller keeps resp. */
void bok_rpc_call_reply(bok_rpc_call_t *call, const ProtobufCMessage *resp);
/* Ends the call with an error status and message. */
void bok_rpc_call_fail(bok_rpc_call_t *call, bok_err_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void bok_rpc_call_fail_err(bok_rpc_call_t *call, const bok_err_t *e) {
  bok_rpc_call_fail(call, e->code, "%s", e->msg);
}

/* ---- Security (process-wide) --------------------------------------------- */

struct bok_config;

/* What the process is, for bok_rpc_security_from_config(). */
typedef enum {
  BOK_RPC_ROLE_SERVICE = 0, /* TLS only (model service, gateway) */
  BOK_RPC_ROLE_JOB_SERVICE, /* serves worker-only methods: loads (creates on first start) the token to accept */
  BOK_RPC_ROLE_WORKER       /* sends its token as x-worker-token on every call it makes */
} bok_rpc_role_t;

typedef struct {
  /* PEM files. All three or none. Set: servers listen with TLS and require a
   * client certificate signed by tls_ca; channels speak TLS, verify the
   * server against tls_ca (the target host must be in its SANs) and present
   * tls_cert. None: plaintext. */
  const char *tls_ca, *tls_cert, *tls_key;
  bok_rpc_role_t role;
  /* The worker token file (JOB_SERVICE: created with 0600 and 32 random
   * bytes, hex, when absent; WORKER: read, and re-read on each call until it
   * exists; sent on calls to the job service only). NULL: no token. */
  const char *worker_token_file;
  /* JOB_SERVICE: certificate names (CN or DNS SAN) accepted as workers,
   * separated by commas or spaces. NULL/"": none. */
  const char *worker_names;
} bok_rpc_security_t;

/* Loads the files and sets the process-wide settings, replacing earlier
 * ones. Affects servers started and channels created afterwards. Call from
 * one thread with no server or channel in use (main() at start; tests).
 * 0 ok, -1 with err set (unreadable PEM, a token file that is too short,
 * readable by others, or cannot be created). */
int bok_rpc_security_set(const bok_rpc_security_t *sec, bok_err_t *err);
/* The same from the keys rpc.tls.ca, rpc.tls.cert, rpc.tls.key,
 * rpc.worker_token_file and rpc.worker_names of `cfg`. */
int bok_rpc_security_from_config(const struct bok_config *cfg, bok_rpc_role_t role, bok_err_t *err);
/* Back to plaintext without credentials; frees what set() loaded. */
void bok_rpc_security_reset(void);
/* A one-line summary for the start-up log ("tls=on worker_auth=token"). */
void bok_rpc_security_describe(char *out, size_t cap);
/* The keys above, for a binary's list of known configuration keys. */
#define BOK_RPC_TLS_KEYS "rpc.tls.ca", "rpc.tls.cert", "rpc.tls.key"
#define BOK_RPC_WORKER_KEYS "rpc.worker_token_file", "rpc.worker_names"

/* ---- Running a binary ------------------------------------------------------
 * The process's signals are handled here and nowhere else: SIGINT and
 * SIGTERM stop (gracefully: servers drain, lanes finish their batch), SIGHUP
 * runs a reload hook where a binary has one (the gateway re-reads its API
 * keys). Threads: the waiting thread is main() in every binary (tests may
 * use another); one wait at a time in the process.
 *
 * bok_signals_block: blocks the three signals in the calling thread, so the
 * threads it starts afterwards inherit a mask without them and only the
 * waiting thread takes them (old: the previous mask, may be NULL).
 * bok_signals_wait: blocks until wake_fd is readable (-> 0; any thread may
 * write a byte there to stop; -1 = none) or, with handle_signals, a stop
 * signal arrives (-> 1). It installs process-wide handlers (self-pipe,
 * SA_RESTART) for SIGINT/SIGTERM, and for SIGHUP when on_hup is set --
 * on_hup(ud) then runs on this thread for each SIGHUP and the wait goes on
 * -- and unblocks them in this thread for its duration; afterwards the
 * caller's mask is back and the handlers stay, doing nothing: a second
 * SIGINT/SIGTERM does not cut the graceful stop short (every stop is
 * bounded: drain and grace periods). A signal that arrives before the wait
 * is pending if blocked, else gets the previous disposition (default:
 * exit). */
typedef void (*bok_hup_fn)(void *ud);
void bok_signals_block(sigset_t *old);
int bok_signals_wait(int wake_fd, int handle_signals, bok_hup_fn on_hup, void *ud);

/* bok_rpc_security_from_config for `role`, then the start-up log line
 * "gRPC security: tls=... worker_auth=..."; on failure logs fail_prefix (may
 * be NULL) and the reason. Before any channel or server. 0 / -1. */
int bok_rpc_security_init(const struct bok_config *cfg, bok_rpc_role_t role, bok_log_fn log, void *comp,
                          const char *fail_prefix);

/* The gRPC services' run: a server from cfg's keys `listen` (default
 * default_listen) and `threads` (default 8), the binary's methods
 * (add_methods(server, ud): 0 ok), start, serve until SIGINT/SIGTERM
 * (bok_rpc_server_wait with signals), graceful stop, destroy. Returns 0
 * after a stop, 1 when the server could not start (logged "cannot start:
 * ..."). The opts' pointers must stay valid for the call. main() only. */
typedef struct {
  const char *default_listen; /* "127.0.0.1:50051" */
  size_t max_message;         /* 0 -> 4 MiB */
  size_t stream_window;       /* bok_rpc_server_opts_t.stream_window */
  bok_log_fn log;
  void *log_opaque;
  bok_ready_fn ready; /* NULL: always ready */
  void *ready_ud;
  int (*add_methods)(bok_rpc_server_t *s, void *ud);
  void *ud;
} bok_rpc_run_opts_t;
int bok_rpc_run(const struct bok_config *cfg, const bok_rpc_run_opts_t *o);
/* A gRPC service's whole main(): config from the command line checked
 * against known_keys (exit 2 on a refused key), gRPC security for role
 * (before any channel or server: TLS material, the worker token created on
 * first start), build(cfg, app, run) -- the binary makes its parts and fills
 * run's default_listen, max_message, ready, ready_ud, add_methods and ud
 * (log and log_opaque are set afterwards: stderr, comp);
 * 0, or -1 after logging --, bok_rpc_run, then teardown(app) (also after a
 * failed build: it skips parts not made) and bok_rpc_main_end. Returns the
 * exit code. main() only. */
typedef struct {
  const char *prog; /* "bok-job-service", for configuration errors */
  const char *const *known_keys;
  bok_rpc_role_t role;
  void *comp; /* log component */
  void *app;  /* the binary's parts, owned by its main */
  int (*build)(const struct bok_config *cfg, void *app, bok_rpc_run_opts_t *run);
  void (*teardown)(void *app);
} bok_rpc_service_t;
int bok_rpc_service_main(int argc, char **argv, const bok_rpc_service_t *svc);

/* The end of a main() that used gRPC: process-wide security reset, cfg
 * destroyed, the default metrics registry freed (after every server,
 * channel and metric user is gone). Returns rc, for `return
 * bok_rpc_main_end(cfg, rc);`. */
int bok_rpc_main_end(struct bok_config *cfg, int rc);

/* ---- Client -------------------------------------------------------------- */

typedef struct bok_rpc_channel bok_rpc_channel_t;
typedef struct bok_rpc_stream bok_rpc_stream_t;

/* A channel to "host:port": plaintext, or TLS with this process's
 * certificate when bok_rpc_security_set() configured TLS. A worker
 * (BOK_RPC_ROLE_WORKER) sends its token with every call of a
 * /batch.v1.JobService/ method. Thread-safe: many threads may call
 * through one channel at once. Never NULL except out of memory. Connection
 * is lazy; a dead backend shows up as BOK_ERR_UNAVAILABLE on calls: at once
 * when its port refuses, within ~1 s (connect timeout) when it accepts but
 * never speaks HTTP/2 (or at the call's deadline if sooner); reconnect
 * backoff is capped at 1 s, so a restarted backend is reached again soon.
 * Max message 64 MiB each way (servers enforce their own, lower limit).
 * Retries (docs/GRPC.md): gRPC retries a call of an idempotent method
 * (ModelService GetModel/ListModels; JobService GetJob, ListJobs,
 * ListRejected, GetJobSpec, ReportResults, ConfirmResults) that fails with
 * UNAVAILABLE, at most 3 attempts (backoff 0.1 s doubling, capped at 1 s)
 * within its deadline; other methods and probe channels are never retried.
 * destroy(): pending async calls are cancelled and their callbacks run (with
 * BOK_ERR_CANCELLED) before it returns; no other call may be in progress. */
bok_rpc_channel_t *bok_rpc_channel_new(const char *target);
/* The same, with a connection of its own, for health probes: its connect
 * attempts and reconnect backoff while the backend is down never affect the
 * other channels to that target (which share connections with each other).
 * No retries. */
bok_rpc_channel_t *bok_rpc_channel_new_probe(const char *target);
void bok_rpc_channel_destroy(bok_rpc_channel_t *ch);
const char *bok_rpc_channel_target(const bok_rpc_channel_t *ch);

/* ---- Channel cache ---------------------------------------------------------
 * One channel per distinct backend address ("host:port"), for processes that
 * call backends chosen per tenant (the gateway, each worker lane).
 * Ownership: the cache owns every channel it made; a channel it returns stays
 * valid until bok_rpc_chancache_destroy(), so callers never destroy it.
 * Threads: get/count/at may be called by any number of threads at once
 * (lookups of known addresses share a read lock; a new address takes the
 * write lock once). destroy: one thread, with no call in progress on any of
 * its channels (bok_rpc_channel_destroy's rule).
 * Limits: none by count -- the cache grows with the addresses it is asked
 * for; get returns NULL only out of memory (the caller reports it, e.g. as
 * UNAVAILABLE), never another address's channel. */
typedef struct bok_rpc_chancache bok_rpc_chancache_t;
/* probe != 0: channels made with bok_rpc_channel_new_probe. NULL out of memory. */
bok_rpc_chancache_t *bok_rpc_chancache_new(int probe);
/* The channel to addr, created on first use. NULL: out of memory (or c or
 * addr NULL). */
bok_rpc_channel_t *bok_rpc_chancache_get(bok_rpc_chancache_t *c, const char *addr);
/* How many channels, and the i-th in creation order (NULL past the end). */
size_t bok_rpc_chancache_count(bok_rpc_chancache_t *c);
bok_rpc_channel_t *bok_rpc_chancache_at(bok_rpc_chancache_t *c, size_t i);
/* Destroys every channel and the cache. NULL is a no-op. */
void bok_rpc_chancache_destroy(bok_rpc_chancache_t *c);

/* A blocking unary call. `tenant` may be NULL (no metadata). On success
 * returns 0 and *resp is an unpacked message of `resp_desc` (free with
 * protobuf_c_message_free_unpacked(*resp, NULL)); on failure returns -1, err
 * holds the status code and message. `timeout_ms` <= 0 means 10 s. A NULL
 * channel (a cache out of memory) fails with UNAVAILABLE. */
int bok_rpc_unary(bok_rpc_channel_t *ch, const char *method, const char *tenant, int timeout_ms,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                  ProtobufCMessage **resp, bok_err_t *err);

/* Asynchronous unary call: returns at once; `cb` runs later on the channel's
 * completion thread (one per channel, started by the first async call) with
 * the result (resp NULL on error; cb owns resp and must free it). Keep cb
 * short: it delays every other completion of the channel.
 * Never blocks the caller -- for event loops (the gateway).
 * Returns 0 if started, -1 if it could not be started (cb not called). */
typedef void (*bok_rpc_done_fn)(void *ud, ProtobufCMessage *resp, const bok_err_t *err);
int bok_rpc_unary_async(bok_rpc_channel_t *ch, const char *method, const char *tenant,
                        int timeout_ms, const ProtobufCMessage *req,
                        const ProtobufCMessageDescriptor *resp_desc, bok_rpc_done_fn cb, void *ud);

/* Server streaming, asynchronous: sends req, then on_msg runs for every
 * message (it owns msg and must free it) and on_end exactly once, last, with
 * the status (err->code BOK_OK: the stream ended normally) -- all on the
 * channel's completion thread, so keep them short. timeout_ms <= 0: none
 * (24 hours). Returns a handle the caller gives back with
 * bok_rpc_sub_release() (any thread, once; cancels the call if it is still
 * running -- on_end still runs, with CANCELLED); NULL when the call cannot
 * start (no callback runs). bok_rpc_channel_destroy() cancels running ones. */
typedef struct bok_rpc_sub bok_rpc_sub_t;
typedef void (*bok_rpc_msg_fn)(void *ud, ProtobufCMessage *msg);
typedef void (*bok_rpc_end_fn)(void *ud, const bok_err_t *err);
bok_rpc_sub_t *bok_rpc_sub_start(bok_rpc_channel_t *ch, const char *method, const char *tenant, int timeout_ms,
                                 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *msg_desc,
                                 bok_rpc_msg_fn on_msg, bok_rpc_end_fn on_end, void *ud);
void bok_rpc_sub_release(bok_rpc_sub_t *sub);

/* Client streaming: open, send any number of messages, then finish to get the
 * single response. Blocking; one thread per stream. timeout_ms covers the
 * whole stream (<= 0: 1 hour). Sends use GRPC_WRITE_BUFFER_HINT (batched
 * into large writes; finish's half-close flushes them). A send that fails
 * (the server already answered, e.g. with an error) returns -1 with the
 * server's status; finish then returns the same status. abort() cancels
 * the call (the server sees -1 from bok_rpc_call_read) and frees the stream. */
bok_rpc_stream_t *bok_rpc_stream_open(bok_rpc_channel_t *ch, const char *method,
                                      const char *tenant, int timeout_ms, bok_err_t *err);
int bok_rpc_stream_send(bok_rpc_stream_t *st, const ProtobufCMessage *msg, bok_err_t *err);
/* Half-closes, waits for the response, frees the stream. 0 ok / -1 err. */
int bok_rpc_stream_finish(bok_rpc_stream_t *st, const ProtobufCMessageDescriptor *resp_desc,
                          ProtobufCMessage **resp, bok_err_t *err);
void bok_rpc_stream_abort(bok_rpc_stream_t *st);
/* Cancels the call from ANY thread without freeing it: a send or finish
 * blocked in the owning thread fails promptly; the owner still calls
 * bok_rpc_stream_abort() to free the stream. */
void bok_rpc_stream_cancel(bok_rpc_stream_t *st);

#endif
