/* gateway.c -- the gateway server's life (contract: gateway.h): config into
 * gw_server_t (gw_server.h), listeners and h2o event loops, the upload pool
 * and metrics/readiness started and stopped in order, the API keys reloaded
 * on SIGHUP (the waiting thread, through lib/rpc's bok_signals_wait), and the
 * drain at shutdown. Requests go to handlers.c; answers to reply.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth.h"
#include "bok/util.h"
#include "body_pages.h"
#include "conn_guard.h"
#include "gateway.h"
#include "gw_obs.h"
#include "gw_server.h"
#include "handlers.h"
#include "reply.h"
#include "upload.h"
#include "watch.h"

/* ---- h2o plumbing ----------------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  (void)self;
  gw_thread_t *th = gw_thread_of(req);
  gw_obs_request(th->srv->obs);
  gw_conn_request_begin(req);
  return gw_handle(th, req);
}

static void on_accept(h2o_socket_t *listener, const char *err) {
  if (err) return;
  gw_thread_t *th = listener->data;
  h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
  if (sock && gw_conn_admit(th, sock) == 0) h2o_accept(&th->accept_ctx, sock);
}

/* SO_REUSEPORT would let a second gateway silently share the port: first
 * check, without it, that nobody else listens there. */
static int port_is_free(gw_server_t *s, char *err, size_t errlen) {
  if (s->listen_port == 0) return 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)s->listen_port);
  inet_pton(AF_INET, s->listen_host, &a.sin_addr);
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (!ok) snprintf(err, errlen, "cannot listen on %s:%d: %s", s->listen_host, s->listen_port, strerror(errno));
  close(fd);
  return ok;
}

static int make_listener(gw_server_t *s, char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)(s->bound_port ? s->bound_port : s->listen_port));
  if (inet_pton(AF_INET, s->listen_host, &a.sin_addr) != 1) {
    snprintf(err, errlen, "listen: bad address '%s'", s->listen_host);
    close(fd);
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, SOMAXCONN) != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", s->listen_host, s->listen_port, strerror(errno));
    close(fd);
    return -1;
  }
  if (!s->bound_port) {
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    s->bound_port = ntohs(a.sin_port);
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

/* 1 while the loop still has work: requests waiting for a backend, open
 * connections, or armed timers (h2o_context_dispose requires none). */
static int loop_busy(gw_thread_t *th) {
  h2o_context_t *c = &th->ctx;
  h2o_timeout_t *timeouts[] = {&c->zero_timeout,      &c->one_sec_timeout,   &c->hundred_ms_timeout,
                               &c->handshake_timeout, &c->http1.req_timeout, &c->http2.idle_timeout,
                               &c->http2.graceful_shutdown_timeout, &c->proxy.io_timeout, &th->hdr_timeout};
  if (th->pending > 0 || !h2o_linklist_is_empty(&c->http1._conns) || !h2o_linklist_is_empty(&c->http2._conns))
    return 1;
  for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++)
    if (!h2o_linklist_is_empty(&timeouts[i]->_entries)) return 1;
  return 0;
}

/* h2o 2.2 keeps freed memory in per-thread recycle lists that nothing frees
 * when the thread ends: 4 KiB pool chunks (memory.c, `static __thread
 * mempool_allocator`, at most 16) and socket buffers
 * (`__thread h2o_socket_buffer_prototype`). Pop and free them, so a loop
 * thread leaves nothing behind. */
static void free_h2o_thread_chunks(void) {
  h2o_mem_recycle_t *bufs = &h2o_socket_buffer_prototype.allocator;
  while (bufs->cnt > 0) free(h2o_mem_alloc_recycle(bufs, sizeof(void *)));
  /* the pool chunks' list is static: drain it through throwaway pools */
  for (int i = 0; i < 32; i++) {
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    h2o_mem_alloc_pool(&pool, 1); /* takes one chunk (recycled or new) */
    free(pool.chunks);            /* the pool has exactly that chunk */
  }
}

/* One event loop. On stop: stop accepting, let requests that wait for a
 * backend finish (up to drain_ms), close idle keep-alive connections, then
 * free the context and the loop. If connections are still busy at the
 * deadline the context is left alone (h2o 2.2 cannot dispose a context with
 * live connections); the process is about to exit anyway. */
static void *loop_main(void *arg) {
  gw_thread_t *th = arg;
  gw_server_t *s = th->srv;
  h2o_context_init(&th->ctx, h2o_evloop_create(), &s->h2o_config);
  h2o_vector_reserve(NULL, &th->ctx.storage, 1);
  th->ctx.storage.entries[0].data = th;
  th->ctx.storage.entries[0].dispose = NULL;
  th->ctx.storage.size = 1;
  th->accept_ctx.ctx = &th->ctx;
  th->accept_ctx.hosts = s->h2o_config.hosts;
  h2o_timeout_init(th->ctx.loop, &th->hdr_timeout, (uint64_t)s->header_timeout_ms);
  th->hdr_timeout_inited = 1;
  h2o_multithread_register_receiver(th->ctx.queue, &th->rx, gw_pending_on_messages);
  th->listener = h2o_evloop_socket_create(th->ctx.loop, th->fd, H2O_SOCKET_FLAG_DONT_READ);
  th->fd = -1; /* owned by the listener socket now */
  th->listener->data = th;
  h2o_socket_read_start(th->listener, on_accept);
  sem_post(&s->ready);

  while (!atomic_load(&s->stopping)) h2o_evloop_run(th->ctx.loop, 200);

  h2o_socket_read_stop(th->listener);
  h2o_socket_close(th->listener);
  th->listener = NULL;
  /* No h2o_context_request_shutdown(): in 2.2 it arms a one-second timer
   * that would outlive the drain; the flag alone makes HTTP/1 connections
   * close after their current response. */
  th->ctx.shutdown_requested = 1;
  /* idle keep-alive connections (and slow request readers) time out at once */
  th->ctx.http1.req_timeout.timeout = 0;
  th->ctx.http2.idle_timeout.timeout = 0;
  th->hdr_timeout.timeout = 0;
  gw_watch_stop_all(th); /* event streams never end on their own */
  int64_t deadline = bok_mono_ms() + s->drain_ms;
  do {
    h2o_evloop_run(th->ctx.loop, 20);
  } while (loop_busy(th) && bok_mono_ms() < deadline);
  if (loop_busy(th)) {
    bok_logf(s->log, s->log_opaque, BOK_LOG_WARN, "loop %d: %d request(s) still in flight at shutdown",
             (int)(th - s->threads), th->pending);
    return NULL;
  }
  h2o_multithread_unregister_receiver(th->ctx.queue, &th->rx);
  h2o_evloop_t *loop = th->ctx.loop;
  h2o_multithread_queue_t *queue = th->ctx.queue;
  h2o_timeout_dispose(loop, &th->hdr_timeout);
  h2o_context_dispose(&th->ctx);
  h2o_evloop_destroy(loop); /* closes the queue's socket */
  free(queue);              /* h2o 2.2's evloop destroy_queue does not */
  free_h2o_thread_chunks();
  th->disposed = 1;
  return NULL;
}

static int start_locked(gw_server_t *s, char *err, size_t errlen);

static gw_server_t *server_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen);

/* Validates and copies the config and creates the channels (gRPC starts its
 * threads here); no socket or h2o state yet. */
gw_server_t *gw_server_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen) {
  sigset_t old;
  bok_signals_block(&old); /* threads made here leave the signals to gw_server_wait */
  gw_server_t *s = server_new(cfg, log, log_opaque, err, errlen);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return s;
}

/* listen: "host:port" ("localhost" means 127.0.0.1). 0, or -1 with err. */
static int parse_listen(gw_server_t *s, const bok_config_t *cfg, char *err, size_t errlen) {
  const char *listen = bok_config_get(cfg, "listen", "0.0.0.0:8000");
  const char *colon = strrchr(listen, ':');
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof s->listen_host || !end || *end ||
      end == colon + 1 || port < 0 || port > 65535) {
    snprintf(err, errlen, "listen: expected host:port, got '%s'", listen);
    return -1;
  }
  snprintf(s->listen_host, sizeof s->listen_host, "%.*s", (int)(colon - listen), listen);
  if (strcmp(s->listen_host, "localhost") == 0) snprintf(s->listen_host, sizeof s->listen_host, "127.0.0.1");
  s->listen_port = (int)port;
  return 0;
}

/* The numeric and simple settings (gateway.h), each with its default when
 * absent or out of range. */
static void read_settings(gw_server_t *s, const bok_config_t *cfg) {
  int64_t nth = bok_config_get_int(cfg, "threads", 2);
  s->nthreads = nth < 1 ? 1 : nth > 64 ? 64 : (int)nth;
  const char *th = getenv("TENANT_HEADER");
  if (!th || !*th) th = bok_config_get(cfg, "tenant_header", "X-Tenant-ID");
  size_t i;
  for (i = 0; th[i] && i < sizeof s->tenant_header - 1; i++) s->tenant_header[i] = (char)tolower((unsigned char)th[i]);
  s->tenant_header[i] = '\0';
  int64_t mj = bok_config_get_int(cfg, "max_json_body", 1 << 20);
  int64_t mu = bok_config_get_int(cfg, "max_upload_body", 4LL << 30);
  s->max_json_body = mj > 0 ? (size_t)mj : 1 << 20;
  s->max_upload_body = mu > 0 ? (size_t)mu : 4ULL << 30;
  int64_t to = bok_config_get_int(cfg, "rpc_timeout_ms", 10000);
  s->rpc_timeout_ms = to > 0 && to < 3600000 ? (int)to : 10000;
  s->access_log = bok_config_get_bool(cfg, "access_log", 0);
  int64_t rt = bok_config_get_int(cfg, "request_timeout_ms", 600000);
  s->request_timeout_ms = rt > 0 ? rt : 600000;
  int64_t ht = bok_config_get_int(cfg, "header_timeout_ms", 10000);
  s->header_timeout_ms = ht > 0 ? ht : 10000;
  int64_t ka = bok_config_get_int(cfg, "keepalive_timeout_ms", 60000);
  if (ka <= 0 || ka > 3600000) ka = 60000;
  int64_t rounds = (ka + s->header_timeout_ms - 1) / s->header_timeout_ms;
  s->idle_rounds = rounds < 1 ? 1 : (int)rounds;
  int64_t mc = bok_config_get_int(cfg, "max_connections_per_ip", 64);
  s->max_conns_per_ip = mc >= 0 && mc <= 1000000 ? (int)mc : 64;
  int64_t dr = bok_config_get_int(cfg, "shutdown_drain_ms", 5000);
  s->drain_ms = dr >= 0 && dr < 600000 ? (int)dr : 5000;
}

/* Security (TLS with the gateway's certificate when rpc.tls.* is set,
 * process-wide, so gw_obs's probe channels use it too) and one channel per
 * distinct backend address, made now so that a bad address fails the start
 * (the cache would make them on first use). 0, or -1 with err. */
static int make_channels(gw_server_t *s, const bok_config_t *cfg, char *err, size_t errlen) {
  bok_err_t serr;
  if (bok_rpc_security_from_config(cfg, BOK_RPC_ROLE_SERVICE, &serr) != 0) {
    snprintf(err, errlen, "%s", serr.msg);
    return -1;
  }
  s->channels = bok_rpc_chancache_new(0);
  if (!s->channels) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t r = 0; r < bok_routes_count(s->routes); r++) {
    const bok_route_t *rt = bok_routes_at(s->routes, r);
    const char *addrs[2] = {rt->model_addr, rt->job_addr};
    for (int k = 0; k < 2; k++)
      if (!bok_rpc_chancache_get(s->channels, addrs[k])) {
        snprintf(err, errlen, "cannot create a channel to %s", addrs[k]);
        return -1;
      }
  }
  return 0;
}

static gw_server_t *server_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen) {
  gw_server_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->cfg = cfg;
  s->log = log;
  s->log_opaque = log_opaque;
  s->wake_pipe[0] = s->wake_pipe[1] = -1;
  pthread_mutex_init(&s->keys_mu, NULL);
  sem_init(&s->ready, 0, 0);
  if (parse_listen(s, cfg, err, errlen) != 0) goto fail;
  read_settings(s, cfg);
  if (gw_conn_guard_init(s) != 0) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  s->keys = gw_keys_from_config(cfg, err, errlen);
  if (!s->keys) goto fail;
  s->routes = bok_routes_from_config(cfg, "127.0.0.1:50051", "127.0.0.1:50052", err, errlen);
  if (!s->routes || make_channels(s, cfg, err, errlen) != 0) goto fail;
  if (pipe2(s->wake_pipe, O_CLOEXEC) != 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    goto fail;
  }
  return s;
fail:
  gw_server_destroy(s);
  return NULL;
}

int gw_server_start(gw_server_t *s, char *err, size_t errlen) {
  sigset_t old;
  bok_signals_block(&old); /* threads made here leave the signals to gw_server_wait */
  int rc = start_locked(s, err, errlen);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static int start_locked(gw_server_t *s, char *err, size_t errlen) {
  h2o_config_init(&s->h2o_config);
  s->h2o_inited = 1;
  s->h2o_config.max_request_entity_size = s->max_upload_body;
  /* HTTP/1.1 only (this also turns off HTTP/2 prior knowledge in 2.2): h2o's
   * HTTP/2 keeps private per-thread buffers that cannot be freed at
   * shutdown, and the REST API gains nothing from it. */
  s->h2o_config.http1.upgrade_to_http2 = 0;
  /* h2o 2.2's req_timeout bounds the WHOLE request read (headers + body, not
   * reset by progress) and the keep-alive idle time: 10 s by default, which
   * would cut off any upload taking longer. */
  s->h2o_config.http1.req_timeout = (uint64_t)s->request_timeout_ms;
  s->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("bok-gateway"));
  h2o_hostconf_t *host = h2o_config_register_host(&s->h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
  h->on_req = on_req;
  s->threads = calloc((size_t)s->nthreads, sizeof *s->threads);
  if (!s->threads) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (int i = 0; i < s->nthreads; i++) s->threads[i].fd = -1;
  if (!port_is_free(s, err, errlen)) return -1;
  for (int i = 0; i < s->nthreads; i++) {
    gw_thread_t *th = &s->threads[i];
    th->srv = s;
    th->fd = make_listener(s, err, errlen);
    if (th->fd < 0) return -1;
  }
  if (!(s->obs = gw_obs_new(s->routes))) {
    snprintf(err, errlen, "cannot start the readiness checker");
    return -1;
  }
  if (gw_upload_pool_start(&s->stopping, &s->uploads) != 0) {
    snprintf(err, errlen, "cannot start upload threads");
    return -1;
  }
  if (gw_body_sweeper_start() != 0) {
    snprintf(err, errlen, "cannot start the body page sweeper");
    return -1;
  }
  /* Each loop thread creates its own evloop, context (with its message
   * queue) and listener socket: h2o 2.2 ties socket buffers to the creating
   * thread's recycle list, so nothing of a loop may be made elsewhere. */
  for (int i = 0; i < s->nthreads; i++) {
    gw_thread_t *th = &s->threads[i];
    if (pthread_create(&th->th, NULL, loop_main, th) != 0) {
      snprintf(err, errlen, "cannot start loop thread");
      return -1;
    }
    th->started = 1;
    while (sem_wait(&s->ready) != 0 && errno == EINTR) {
    }
  }
  bok_logf(s->log, s->log_opaque, BOK_LOG_INFO,
           "HTTP listening on %s:%d (%d loops, tenant header '%s', header timeout %lld ms, idle keep-alive %lld ms, "
           "%d connections per IP)",
           s->listen_host, s->bound_port, s->nthreads, s->tenant_header, (long long)s->header_timeout_ms,
           (long long)s->header_timeout_ms * s->idle_rounds, s->max_conns_per_ip);
  if (gw_keys_count(s->keys) > 0 || gw_keys_required(s->keys))
    bok_logf(s->log, s->log_opaque, BOK_LOG_INFO, "API keys on: %zu key(s), auth.required=%s (SIGHUP re-reads them)",
             gw_keys_count(s->keys), gw_keys_required(s->keys) ? "true" : "false");
  return s->bound_port;
}

/* ---- API keys ------------------------------------------------------------------ */

void gw_server_set_config_path(gw_server_t *s, const char *path) {
  snprintf(s->config_path, sizeof s->config_path, "%s", path ? path : "");
}

int gw_server_reload(gw_server_t *s, char *err, size_t errlen) {
  if (!s->config_path[0]) {
    snprintf(err, errlen, "no config file to re-read (started without --config)");
    return -1;
  }
  bok_config_t *cfg = bok_config_load(s->config_path, err, errlen);
  if (!cfg) return -1;
  gw_keys_t *k = gw_keys_from_config(cfg, err, errlen);
  bok_config_destroy(cfg);
  if (!k) return -1;
  size_t n = gw_keys_count(k);
  int required = gw_keys_required(k);
  pthread_mutex_lock(&s->keys_mu);
  gw_keys_t *old = s->keys;
  s->keys = k;
  pthread_mutex_unlock(&s->keys_mu);
  gw_keys_unref(old); /* freed once the last request using it lets go */
  bok_logf(s->log, s->log_opaque, BOK_LOG_INFO, "API keys reloaded from %s: %zu key(s), auth.required=%s",
           s->config_path, n, required ? "true" : "false");
  return 0;
}

/* ---- stop and reload ------------------------------------------------------------ */

void gw_server_stop(gw_server_t *s) {
  char c = 's';
  ssize_t w = write(s->wake_pipe[1], &c, 1);
  (void)w;
}

/* Stops the loops (each drains, see loop_main) and the upload threads. */
static void stop_threads(gw_server_t *s) {
  atomic_store(&s->stopping, 1);
  for (int i = 0; s->threads && i < s->nthreads; i++) {
    gw_thread_t *th = &s->threads[i];
    if (th->started && !th->joined) {
      pthread_join(th->th, NULL);
      th->joined = 1;
    }
  }
  gw_upload_pool_stop_begin(s->uploads);
  gw_upload_pool_stop(s->uploads);
  s->uploads = NULL;
  gw_body_sweeper_stop();
}

/* SIGHUP (on the waiting thread): re-read the API keys. */
static void on_hup(void *ud) {
  gw_server_t *s = ud;
  char err[512];
  if (gw_server_reload(s, err, sizeof err) != 0)
    bok_logf(s->log, s->log_opaque, BOK_LOG_ERROR, "SIGHUP: reload refused, the previous API keys stay: %s", err);
}

void gw_server_wait(gw_server_t *s, int handle_signals) {
  bok_signals_wait(s->wake_pipe[0], handle_signals, on_hup, s);
  bok_logf(s->log, s->log_opaque, BOK_LOG_INFO, "shutting down");
  stop_threads(s);
}

/* State of loops that could not drain stays reachable until exit. */
static gw_server_t *g_undrained;

void gw_server_destroy(gw_server_t *s) {
  if (!s) return;
  stop_threads(s);
  for (int i = 0; s->threads && i < s->nthreads; i++) {
    gw_thread_t *th = &s->threads[i];
    if (th->fd >= 0) close(th->fd);
    if (th->started && !th->disposed) {
      g_undrained = s; /* see loop_main */
      return;
    }
  }
  gw_obs_free(s->obs);
  s->obs = NULL;
  bok_rpc_chancache_destroy(s->channels);
  bok_routes_destroy(s->routes);
  gw_conn_guard_destroy(s);
  gw_keys_unref(s->keys);
  pthread_mutex_destroy(&s->keys_mu);
  if (s->h2o_inited) h2o_config_dispose(&s->h2o_config);
  if (s->wake_pipe[0] >= 0) close(s->wake_pipe[0]);
  if (s->wake_pipe[1] >= 0) close(s->wake_pipe[1]);
  sem_destroy(&s->ready);
  free(s->threads);
  free(s);
}
