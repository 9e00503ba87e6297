/* download.h -- GET /jobs/{id}/rejected/download (download.c): the rejected
 * rows as a file, streamed page by page (one page in memory at a time).
 * Loop thread. Returns 0 when the request is (or will be) answered. */
#ifndef GW_DOWNLOAD_H
#define GW_DOWNLOAD_H

#include "gw_server.h"

int gw_download_start(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *job_id, int annotate);

#endif
