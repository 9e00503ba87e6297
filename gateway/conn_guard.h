/* conn_guard.h -- slow-client limits (conn_guard.c). init/destroy: the
 * server-wide per-IP table. admit: called by a loop thread for each accepted
 * socket before h2o_accept; 0 to go on, -1 when it was refused (over the cap;
 * answered 503 and closed). request_begin: the handler got a complete request
 * (stops the header timer until the request is disposed). */
#ifndef GW_CONN_GUARD_H
#define GW_CONN_GUARD_H

#include "gw_server.h"

typedef struct gw_conn gw_conn_t;
int gw_conn_guard_init(gw_server_t *s);
void gw_conn_guard_destroy(gw_server_t *s);
int gw_conn_admit(gw_thread_t *th, h2o_socket_t *sock);
void gw_conn_request_begin(h2o_req_t *req);

#endif
