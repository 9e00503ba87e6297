/* upload.h -- the upload pool (upload.c): POST /jobs bodies streamed to
 * JobService/Upload by a few threads of their own, never by an event loop.
 * The pool, its queue and its uploads are opaque.
 *
 * Ownership: the server owns the pool. Threads: submit on a loop thread;
 * start/stop_begin/stop/free on the server's controlling thread. */
#ifndef GW_UPLOAD_H
#define GW_UPLOAD_H

#include <stdatomic.h>

#include "gw_server.h"

#define GW_UPLOAD_THREADS 4

typedef struct gw_upload_pool gw_upload_pool_t;

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

/* Starts GW_UPLOAD_THREADS threads. `stopping` (the server's flag, read
 * only; the threads end once it is set and stop_begin woke them): queued
 * uploads fail fast, cancelled ones say the gateway is shutting down. -1
 * when out of memory or a thread cannot start; *out is then the pool with
 * the threads that did start (or NULL), still to stop. */
int gw_upload_pool_start(const atomic_int *stopping, gw_upload_pool_t **out);
/* Queues an upload of data/len (h2o's request body: the pool stops reading
 * it when the request is disposed) answered 202 with the job, or an error,
 * on req's loop. 0 queued; -1 (nothing queued) when out of memory or no
 * channel. */
int gw_upload_submit(gw_upload_pool_t *pool, gw_thread_t *th, h2o_req_t *req, const char *tenant,
                     const char *model_id, const char *file_name, const char *format, char sep,
                     const gw_job_opts_t *opts, const char *data, size_t len);
/* Cancels running uploads (their send/finish fail promptly) and wakes the
 * threads; queued uploads fail fast. */
void gw_upload_pool_stop_begin(gw_upload_pool_t *pool);
/* Joins the threads and frees the pool. NULL: no-op. */
void gw_upload_pool_stop(gw_upload_pool_t *pool);

#endif
