/* watch.h -- GET /jobs/{id}/events (watch.c): the job as server-sent events
 * from JobService/WatchJob. Loop thread. stop_all: the loop is stopping;
 * cancels its streams (their responses end, and the loop's pending count
 * drops, soon after). */
#ifndef GW_WATCH_H
#define GW_WATCH_H

#include "gw_server.h"

int gw_watch_start(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *job_id);
void gw_watch_stop_all(gw_thread_t *th);

#endif
