/* gw_internal.h -- shared between the gateway's modules (not a public API). */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <h2o.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "bok/routes.h"
#include "bok/rpc.h"
#include "gateway.h"

typedef struct gw_thread gw_thread_t;
typedef struct gw_watch gw_watch_t;

typedef struct gw_upload gw_upload_t;
typedef struct gw_upload_slot gw_upload_slot_t;

#define GW_UPLOAD_THREADS 4
#define GW_MAX_STATUS 600

struct gw_server {
  const bok_config_t *cfg;
  bok_log_fn log;
  void *log_opaque;
  char listen_host[128];
  int listen_port;
  int bound_port;
  int nthreads;
  int h2o_inited;
  char tenant_header[128]; /* lower case */
  size_t max_json_body;
  size_t max_upload_body;
  int rpc_timeout_ms;
  int64_t request_timeout_ms; /* receiving one request (incl. an upload body) */
  int access_log;             /* one INFO line per answered request */
  int64_t header_timeout_ms;  /* a request head must be complete within this (conn_guard.c) */
  int max_conns_per_ip;       /* open connections per peer address; 0 = no cap */
  pthread_mutex_t ip_mu;      /* guards ip_counts */
  int ip_mu_inited;
  struct gw_ip_count **ip_counts; /* per-IP open connections (conn_guard.c) */
  atomic_long conns_refused;      /* over max_conns_per_ip */
  atomic_long header_timeouts;    /* closed: no request head within header_timeout_ms */
  /* API keys (auth.c): an immutable table swapped under keys_mu by a reload
   * (main thread, SIGHUP); readers take a reference (gw_server_keys). */
  pthread_mutex_t keys_mu;
  struct gw_keys *keys;
  char config_path[4096]; /* re-read on SIGHUP; "" = none */
  bok_routes_t *routes;
  bok_rpc_chancache_t *channels; /* one per distinct backend address */
  int drain_ms; /* shutdown: how long loops wait for in-flight requests */
  h2o_globalconf_t h2o_config;
  gw_thread_t *threads;
  atomic_int stopping;
  sem_t ready; /* posted by each loop thread once it accepts */
  int wake_pipe[2];
  /* upload pool */
  pthread_t upload_threads[GW_UPLOAD_THREADS];
  gw_upload_t *upload_active[GW_UPLOAD_THREADS]; /* under upload_mu */
  struct gw_upload_slot {
    gw_server_t *s;
    int slot;
  } upload_slots[GW_UPLOAD_THREADS];
  int n_upload_threads;
  pthread_mutex_t upload_mu;
  pthread_cond_t upload_cv;
  gw_upload_t *upload_head, *upload_tail;
  /* metrics */
  atomic_long req_total;
  atomic_long resp_by_status[GW_MAX_STATUS]; /* index = HTTP status */
  atomic_long in_flight;
  struct gw_obs *obs; /* labeled metrics + readiness checker (gw_obs.c) */
};

struct gw_thread {
  gw_server_t *srv;
  pthread_t th;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept_ctx;
  h2o_multithread_receiver_t rx;
  h2o_socket_t *listener;
  h2o_timeout_t hdr_timeout; /* header_timeout_ms, for gw_conn_t timers */
  int hdr_timeout_inited;
  int fd;
  int started;  /* loop thread created */
  int joined;
  int pending;  /* gw_pending_t awaiting their answer (loop thread only) */
  int disposed; /* the loop drained and freed its h2o context and loop */
  gw_watch_t *watches; /* open GET /jobs/{id}/events streams (watch.c; loop thread only) */
};

/* A request waiting for a backend answer. Loop-thread owned except `msg`
 * fields written by the completing thread before posting. */
typedef struct gw_pending gw_pending_t;
typedef void (*gw_render_fn)(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *err);

struct gw_pending {
  h2o_multithread_message_t msg; /* first: posted to the loop */
  gw_thread_t *th;
  h2o_req_t *req; /* NULL once h2o disposed the request */
  int refs;       /* pool ref + in-flight ref (loop thread only) */
  gw_render_fn render;
  const char *service; /* "model" or "job", for 503 messages */
  ProtobufCMessage *resp;
  bok_err_t err;
  int64_t limit; /* request context for renderers */
  int plain_404; /* NOT_FOUND -> exactly {"error":"not found"} (path ids) */
  int render_errors; /* errors go to render too (resp NULL), not gw_send_rpc_error */
  void *ud;          /* the renderer's state (request pool owned; valid while req != NULL) */
  gw_upload_t *upload;
  int stream_event; /* one event of a stream (watch.c): render(p, NULL, ...) always, no request counters */
};

/* Responses (loop thread). `j` is consumed. */
void gw_send_json(h2o_req_t *req, int status, json_t *j);
void gw_send_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a backend error to an HTTP error response. With plain_404 every
 * NOT_FOUND is answered exactly {"error":"not found"}. */
void gw_send_rpc_error(h2o_req_t *req, const char *service, const bok_err_t *err, int plain_404);
/* Counts a response in the metrics (gw_send_json does it itself). */
void gw_count_status(h2o_req_t *req, int status);

/* Starts an async unary call whose answer is rendered on the loop thread. */
int gw_call(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
            const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
            int64_t limit);
/* gw_call for a renderer with state `ud` that renders errors itself. */
int gw_call_ud(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
               const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
               void *ud);
bok_rpc_channel_t *gw_channel_for(gw_server_t *s, const char *tenant, int job);

/* GET /jobs/{id}/rejected/download (download.c): the rejected rows as a
 * file, streamed page by page (one page in memory at a time). */
int gw_download_start(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *job_id, int annotate);

/* GET /jobs/{id}/events (watch.c): the job as server-sent events from
 * JobService/WatchJob. stop_all: the loop is stopping; cancels its streams
 * (their responses end, and the loop's pending count drops, soon after). */
int gw_watch_start(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *job_id);
void gw_watch_stop_all(gw_thread_t *th);

/* Metrics and readiness (gw_obs.c). start: registers the metrics and starts
 * the checker thread (Health/Check of every backend, every second; /readyz
 * reads its cached result, never blocking a loop). count: one response
 * (any thread; atomic adds once the label children exist). */
int gw_obs_start(gw_server_t *s);
void gw_obs_stop(gw_server_t *s);
void gw_obs_count(gw_server_t *s, h2o_req_t *req, int status);
void gw_obs_readyz(h2o_req_t *req);

/* Slow-client limits (conn_guard.c). init/destroy: the server-wide per-IP
 * table. admit: called by a loop thread for each accepted socket before
 * h2o_accept; 0 to go on, -1 when it was refused (over the cap; answered 503
 * and closed). request_begin: the handler got a complete request (stops the
 * header timer until the request is disposed). */
typedef struct gw_conn gw_conn_t;
int gw_conn_guard_init(gw_server_t *s);
void gw_conn_guard_destroy(gw_server_t *s);
int gw_conn_admit(gw_thread_t *th, h2o_socket_t *sock);
void gw_conn_request_begin(h2o_req_t *req);

/* The current API key table with a reference the caller drops with
 * gw_keys_unref (any thread). */
struct gw_keys *gw_server_keys(gw_server_t *s);

/* Handlers (handlers.c). Return 0 when the request is (or will be) answered. */
int gw_handle(gw_thread_t *th, h2o_req_t *req);

/* Upload pool (upload.c). stop_begin cancels running uploads and makes
 * queued ones fail fast; stop joins the threads. */
int gw_upload_start(gw_server_t *s);
void gw_upload_stop_begin(gw_server_t *s);
void gw_upload_stop(gw_server_t *s);
/* Job options of an upload beyond the file (SPEC 12). */
typedef struct {
  int dry_run;
  int has_max_errors, has_max_error_rate;
  int64_t max_errors;
  double max_error_rate;
  /* upload options (SPEC 12): static strings, "" = the job service's default */
  const char *encoding, *compression;
  char quote[2]; /* "" = '"' */
  int no_header;
} gw_job_opts_t;
int gw_upload_submit(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *model_id,
                     const char *file_name, const char *format, char sep, const gw_job_opts_t *opts,
                     const char *data, size_t len);
void gw_upload_on_dispose(gw_upload_t *u);
void gw_upload_release(gw_upload_t *u);
void gw_pending_post(gw_pending_t *p);
gw_pending_t *gw_pending_new(gw_thread_t *th, h2o_req_t *req, const char *service, gw_render_fn render);

#endif
