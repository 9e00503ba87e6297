/* bok/admin_http.h -- the operator's HTTP port of a service: metrics, liveness
 * and readiness.
 *
 * A minimal HTTP/1.1 server on its own thread (plain sockets + poll, one
 * request per connection, Connection: close), serving:
 *   GET /metrics  the registry in Prometheus text format 0.0.4
 *   GET /healthz  200 {"status":"ok"} while the process runs (liveness)
 *   GET /readyz   200 {"status":"ready"}, or 503 {"status":"not ready",
 *                 "reason":"..."} when the ready callback says so; 200
 *                 {"status":"ready","degraded":"..."} when it says ready
 *                 but left a note (a dependency is degraded, e.g. a Kafka
 *                 broker of three is down)
 *   anything else 404; a method other than GET/HEAD 405; a request head over
 *   8 KiB 431; a client that does not send its request within 5 s is dropped.
 * Connections are served one at a time: scrapes and probes are small.
 *
 * Ownership: the server borrows the registry and the callback's ud; both must
 * outlive bok_admin_http_stop(). Threads: start/stop from one thread; the
 * ready callback runs on the server thread (keep it fast: read a cached state,
 * never probe a backend synchronously).
 */
#ifndef BOK_ADMIN_HTTP_H
#define BOK_ADMIN_HTTP_H

#include <stddef.h>

#include "bok/log.h"
#include "bok/metrics.h"

/* 1 = ready; 0 = not ready with a short reason written into `reason`. A
 * ready answer may also write a note ("" = none): a degraded dependency. */
typedef int (*bok_ready_fn)(void *ud, char *reason, size_t reason_len);

typedef struct bok_admin_http bok_admin_http_t;

typedef struct {
  const char *addr;        /* "127.0.0.1:9101"; port 0 picks a free port */
  bok_metrics_t *metrics;  /* NULL: /metrics renders nothing */
  bok_ready_fn ready;      /* NULL: always ready */
  void *ready_ud;
  bok_log_fn log;          /* may be NULL */
  void *log_opaque;
} bok_admin_http_opts_t;

/* Binds, logs "metrics listening on HOST:PORT" and starts the thread. NULL
 * with a message in err when the address is bad or cannot be bound; NULL
 * with err "" when addr is NULL or "" (the admin port is switched off). */
bok_admin_http_t *bok_admin_http_start(const bok_admin_http_opts_t *opts, char *err, size_t errlen);
/* The bound port. */
int bok_admin_http_port(const bok_admin_http_t *a);
/* Stops the thread, closes the socket, frees. NULL is a no-op. */
void bok_admin_http_stop(bok_admin_http_t *a);

/* ---- cached readiness ------------------------------------------------------
 * A thread that runs a (possibly slow, blocking) probe every interval_ms and
 * caches its answer, so readiness checks (/readyz, gRPC Health/Check) read a
 * state instead of probing per request. Until the first probe finishes the
 * state is "not ready: starting". */
typedef struct bok_ready_cache bok_ready_cache_t;

/* `probe` has the bok_ready_fn signature and runs on the cache's thread;
 * `ud` must outlive bok_ready_cache_stop(). NULL out of memory. */
bok_ready_cache_t *bok_ready_cache_start(bok_ready_fn probe, void *ud, int interval_ms);
/* A bok_ready_fn: pass the cache as ud. Any thread. */
int bok_ready_cache_get(void *cache, char *reason, size_t reason_len);
/* Stops the thread (waits for a running probe) and frees. NULL is a no-op. */
void bok_ready_cache_stop(bok_ready_cache_t *c);

#endif
