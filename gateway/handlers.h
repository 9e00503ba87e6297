/* handlers.h -- the REST API's handlers (handlers.c): route, authorize,
 * check the request, then answer at once or start the backend call. Loop
 * thread. Returns 0 when the request is (or will be) answered. */
#ifndef GW_HANDLERS_H
#define GW_HANDLERS_H

#include "gw_server.h"

int gw_handle(gw_thread_t *th, h2o_req_t *req);

#endif
