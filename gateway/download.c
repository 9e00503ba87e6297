/* download.c -- GET /jobs/{id}/rejected/download: a job's rejected rows as
 * a file, streamed.
 *
 * One ReadRejectedRows call per page (~1,000 rows or ~1 MiB); the next page
 * is asked for only when h2o has written the previous one (the generator's
 * proceed), so memory stays one page whatever the number of rows, and a slow
 * client slows the reads instead of filling buffers. Everything here runs on
 * the request's loop thread; the state lives in the request pool, and an
 * answer that arrives after the request was disposed is never rendered
 * (gw_pending_t.req is NULL then). */
#include <stdlib.h>
#include <string.h>

#include "batch/v1/job.pb-c.h"
#include "download.h"
#include "reply.h"

typedef struct {
  h2o_generator_t gen; /* first: h2o hands it back to proceed/stop */
  gw_thread_t *th;
  h2o_req_t *req;
  char tenant[65];
  char job_id[37];
  int annotate;
  int64_t after_row;
  int started, done, stopped;
  char *page; /* the page h2o is sending (freed when the next arrives or at dispose) */
} gw_download_t;

static void fetch_page(gw_download_t *d);

static void on_proceed(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  gw_download_t *d = (gw_download_t *)g;
  if (!d->done && !d->stopped) fetch_page(d);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  ((gw_download_t *)g)->stopped = 1;
}

static void on_dispose(void *p) {
  gw_download_t *d = p;
  free(d->page);
  d->page = NULL;
}

static void start_response(gw_download_t *d, h2o_req_t *req, const char *format) {
  int csv = strcmp(format, "ndjson") != 0;
  req->res.status = 200;
  req->res.reason = "OK";
  if (csv)
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/csv; charset=utf-8"));
  else
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/x-ndjson"));
  char *cd = h2o_mem_alloc_pool(&req->pool, 96);
  int n = snprintf(cd, 96, "attachment; filename=\"rejected-%.8s.%s\"", d->job_id, csv ? "csv" : "ndjson");
  h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-disposition"), 0, NULL, cd, (size_t)n);
  gw_count_status(req, 200);
  h2o_start_response(req, &d->gen);
  d->started = 1;
}

static void render_page(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  gw_download_t *d = p->ud;
  if (!resp) {
    if (!d->started)
      gw_send_rpc_error(req, "job", e, 1);
    else /* mid-stream: the client sees a truncated transfer, never a partial file taken as whole */
      h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
    d->done = 1;
    return;
  }
  Batch__V1__RejectedRowsPage *pg = (void *)resp;
  if (!d->started) start_response(d, req, pg->format);
  free(d->page);
  d->page = NULL;
  h2o_iovec_t buf = h2o_iovec_init(NULL, 0);
  if (pg->data.len) {
    d->page = malloc(pg->data.len);
    if (!d->page) {
      h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
      d->done = 1;
      return;
    }
    memcpy(d->page, pg->data.data, pg->data.len);
    buf = h2o_iovec_init(d->page, pg->data.len);
  }
  d->after_row = pg->last_row;
  d->done = pg->done || pg->rows == 0;
  h2o_send(req, &buf, buf.len ? 1 : 0, d->done ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void fetch_page(gw_download_t *d) {
  Batch__V1__ReadRejectedRowsRequest r = BATCH__V1__READ_REJECTED_ROWS_REQUEST__INIT;
  r.job_id = d->job_id;
  r.after_row = d->after_row;
  r.limit = 1000;
  r.annotate = d->annotate;
  gw_call_ud(d->th, d->req, "job", d->tenant, "/batch.v1.JobService/ReadRejectedRows", &r.base,
             &batch__v1__rejected_rows_page__descriptor, render_page, d);
}

int gw_download_start(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *job_id, int annotate) {
  gw_download_t *d = h2o_mem_alloc_shared(&req->pool, sizeof *d, on_dispose);
  memset(d, 0, sizeof *d);
  d->gen.proceed = on_proceed;
  d->gen.stop = on_stop;
  d->th = th;
  d->req = req;
  snprintf(d->tenant, sizeof d->tenant, "%s", tenant);
  snprintf(d->job_id, sizeof d->job_id, "%s", job_id);
  d->annotate = annotate;
  fetch_page(d);
  return 0;
}
