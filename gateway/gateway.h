/* gateway.h -- the h2o REST gateway: JSON REST API -> gRPC services.
 *
 * Threads: `threads` event loops, each with its own h2o context and its own
 * SO_REUSEPORT listening socket. A loop never blocks on gRPC: unary calls
 * are asynchronous (the answer comes back through the context's message
 * queue), uploads run on a small pool of upload threads.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stddef.h>

#include "bok/config.h"
#include "bok/log.h"

typedef struct gw_server gw_server_t;

/* Reads listen, threads, tenant_header (TENANT_HEADER env wins),
 * max_json_body, max_upload_body, rpc_timeout_ms, routes.* from cfg (which
 * must outlive the server), and two optional keys: request_timeout_ms (time
 * to receive one request incl. its body, also the keep-alive idle time;
 * default 600000), shutdown_drain_ms (how long SIGTERM waits for requests
 * in flight; default 5000), access_log (one line per request; false),
 * header_timeout_ms (a request head -- from accept, or from the previous
 * answer on a keep-alive connection -- must be complete within it, else the
 * connection is closed; default 10000), keepalive_timeout_ms (how long a
 * connection that sends nothing stays open, rounded up to whole header
 * timeouts; default 60000) and max_connections_per_ip (open
 * connections per peer address, more are answered 503 and closed; 0 = no
 * cap; default 64). NULL with a message in err on failure. */
gw_server_t *gw_server_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen);
/* The config file a reload re-reads (main thread, before gw_server_wait). */
void gw_server_set_config_path(gw_server_t *s, const char *path);
/* Re-reads the config file's auth.* keys (auth.h) and swaps the API key table
 * atomically; requests in flight keep the table they started with. On any
 * error the previous keys stay. Called by gw_server_wait on SIGHUP (any
 * thread may call it). 0 ok, -1 with err set. Other keys are not reloaded. */
int gw_server_reload(gw_server_t *s, char *err, size_t errlen);
/* Binds and starts the loop threads; returns the bound port or -1. */
int gw_server_start(gw_server_t *s, char *err, size_t errlen);
/* Blocks until SIGINT/SIGTERM (if handle_signals; SIGHUP then reloads the
 * API keys, see gw_server_reload) or gw_server_stop(). */
void gw_server_wait(gw_server_t *s, int handle_signals);
void gw_server_stop(gw_server_t *s);
void gw_server_destroy(gw_server_t *s);

#endif
