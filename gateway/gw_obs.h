/* gw_obs.h -- every metric of the gateway and its readiness (gw_obs.c).
 *
 * Metrics: the plain counters of bok_gateway_* (requests, responses by
 * status, in flight, refused connections, header timeouts) and the labeled
 * bok_http_requests_total{route,method,code} and
 * bok_http_request_duration_seconds{route,method} (in bok_metrics_default()).
 * Readiness: lib/obs's ready cache runs grpc.health.v1.Health/Check on every
 * backend of every route each second; /readyz renders the cached result.
 *
 * Ownership: the server owns the gw_obs_t (new at start, free at the end,
 * after the loops are gone). Threads: the counting calls and the render
 * calls are for any thread (atomics; the readiness table under a mutex) and
 * accept NULL (not started: nothing counted); new/free from one thread.
 * Depends on nothing else of the gateway but route.h. */
#ifndef GW_OBS_H
#define GW_OBS_H

#include <h2o.h>
#include <jansson.h>

#include "bok/buf.h"
#include "bok/routes.h"

#define GW_MAX_STATUS 600 /* status codes counted by value; others as 0 */

typedef struct gw_obs gw_obs_t;

/* Registers the metrics and starts the readiness checks of routes' backends
 * (routes must outlive the gw_obs_t). NULL when out of memory or the checker
 * thread cannot start. */
gw_obs_t *gw_obs_new(const bok_routes_t *routes);
/* Stops the checker (it ends between two checks) and frees. NULL: no-op. */
void gw_obs_free(gw_obs_t *o);

void gw_obs_request(gw_obs_t *o);                        /* a request arrived */
void gw_obs_count(gw_obs_t *o, h2o_req_t *req, int status); /* one response */
void gw_obs_in_flight(gw_obs_t *o, int delta);           /* waiting for a backend */
void gw_obs_conn_refused(gw_obs_t *o);                   /* over max_connections_per_ip */
void gw_obs_header_timeout(gw_obs_t *o);                 /* no request head in time */

/* GET /metrics: appends the Prometheus text (these counters, then the whole
 * default registry) to b. */
void gw_obs_render(gw_obs_t *o, bok_buf_t *b);
/* GET /readyz: the body ({"status","checks"[,"down","reason"]}) and the
 * status to send (200 ready, 503 not). Never blocks on a backend. */
json_t *gw_obs_readyz(gw_obs_t *o, int *status);

#endif
