/* gw_server.h -- the state the gateway's modules share: the server's
 * settings and resources, and each event loop's thread (data only; every
 * function lives in its module's header: reply.h, upload.h, handlers.h,
 * conn_guard.h, download.h, watch.h, gw_obs.h, auth.h).
 *
 * Ownership: gateway.c creates and frees all of it. Threads: settings are
 * written before the loops start and only read afterwards; the fields that
 * change say who may touch them. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <h2o.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/routes.h"
#include "bok/rpc.h"

typedef struct gw_server gw_server_t; /* also in gateway.h */
typedef struct gw_thread gw_thread_t;
typedef struct gw_watch gw_watch_t;
struct gw_keys;
struct gw_obs;
struct gw_upload_pool;
struct gw_ip_count;

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
  int idle_rounds;            /* keepalive_timeout_ms in header timeouts (>= 1): how long an idle connection stays */
  int max_conns_per_ip;       /* open connections per peer address; 0 = no cap */
  pthread_mutex_t ip_mu;      /* guards ip_counts */
  int ip_mu_inited;
  struct gw_ip_count **ip_counts; /* per-IP open connections (conn_guard.c) */
  /* API keys (auth.h): an immutable table swapped under keys_mu by a reload
   * (SIGHUP, on the waiting thread); readers take a reference under keys_mu. */
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
  struct gw_upload_pool *uploads; /* POST /jobs bodies (upload.c, opaque) */
  struct gw_obs *obs;             /* every metric + readiness (gw_obs.c) */
};

struct gw_thread {
  gw_server_t *srv;
  pthread_t th;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept_ctx;
  h2o_multithread_receiver_t rx;
  h2o_socket_t *listener;
  h2o_timeout_t hdr_timeout; /* header_timeout_ms, for conn_guard's timers */
  int hdr_timeout_inited;
  int fd;
  int started;  /* loop thread created */
  int joined;
  int pending;  /* gw_pending_t awaiting their answer (loop thread only) */
  int disposed; /* the loop drained and freed its h2o context and loop */
  gw_watch_t *watches; /* open GET /jobs/{id}/events streams (watch.c; loop thread only) */
  struct gw_shared *shared;        /* job reads gathered this tick (reply.c gw_call_job_read; loop thread only) */
  h2o_timeout_entry_t shared_tick; /* starts them at the end of the tick (ctx.zero_timeout) */
};

/* The loop thread serving req (its h2o context's storage slot 0). */
static inline gw_thread_t *gw_thread_of(h2o_req_t *req) { return req->conn->ctx->storage.entries[0].data; }

#endif
