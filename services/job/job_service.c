/* job_service.c -- the JobService handlers that read and change jobs (get,
 * list, cancel, rejected rows and their file, error summary, watch) and the
 * worker-facing ones (GetJobSpec with the schema stored with the job,
 * ReportResults, ConfirmResults); uploads and reprocessing are in
 * job_upload.c. Answers are mapped from the store's records by job_proto.c.
 * Handlers run on the gRPC server's threads. */
#include "job_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/v1/model.pb-c.h"
#include "bok/rows.h"
#include "bok/fault.h"
#include "job_upload.h"
#include "bok/schema.h"
#include "bok/util.h"
#include "job_obs.h"
#include "job_proto.h"


void job_service_reply(bok_rpc_call_t *call, const job_t *j) {
  Batch__V1__Job p;
  job_to_proto(j, &p, bok_now_ms());
  bok_rpc_call_reply(call, &p.base);
  job_proto_release(&p);
}

/* ---- queries ---------------------------------------------------------------- */

static void get_job(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  job_t j;
  bok_err_t err;
  if (job_store_get_committed(svc->store, bok_rpc_call_tenant(call), r->job_id, &j, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  job_service_reply(call, &j);
  job_free(&j);
}

static void list_jobs(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ListJobsRequest *r = (const void *)req;
  job_t *jobs;
  size_t n;
  bok_err_t err;
  if (job_store_list(svc->store, bok_rpc_call_tenant(call), r->state, r->limit, &jobs, &n, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  Batch__V1__ListJobsResponse resp = BATCH__V1__LIST_JOBS_RESPONSE__INIT;
  Batch__V1__Job *ps = calloc(n ? n : 1, sizeof *ps);
  Batch__V1__Job **pp = calloc(n ? n : 1, sizeof *pp);
  int64_t now = bok_now_ms();
  for (size_t i = 0; i < n; i++) {
    job_to_proto(&jobs[i], &ps[i], now);
    pp[i] = &ps[i];
  }
  resp.n_jobs = n;
  resp.jobs = pp;
  bok_rpc_call_reply(call, &resp.base);
  for (size_t i = 0; i < n; i++) job_proto_release(&ps[i]);
  free(ps);
  free(pp);
  job_list_free(jobs, n);
}

static void cancel_job(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__CancelJobRequest *r = (const void *)req;
  job_t j;
  memset(&j, 0, sizeof j);
  bok_err_t err;
  if (job_store_cancel(svc->store, bok_rpc_call_tenant(call), r->job_id, &j, &err) != 0) {
    job_free(&j);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  bok_logf(svc->log, svc->log_opaque, BOK_LOG_INFO, "job %s cancelled", r->job_id);
  job_service_reply(call, &j);
  job_free(&j);
}

static void list_rejected(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ListRejectedRequest *r = (const void *)req;
  job_cell_t *cells;
  size_t n;
  bok_err_t err;
  if (job_store_rejected(svc->store, bok_rpc_call_tenant(call), r->job_id, r->limit, r->after_row, &cells, &n, &err) !=
      0) {
    job_cells_free(cells, n);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  Batch__V1__ListRejectedResponse resp;
  job_cells_to_proto(cells, n, &resp);
  bok_rpc_call_reply(call, &resp.base);
  job_cells_proto_release(&resp);
  job_cells_free(cells, n);
}

static void error_summary(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  job_summary_t *e;
  size_t n;
  bok_err_t err;
  if (job_store_summary(svc->store, bok_rpc_call_tenant(call), r->job_id, 0, &e, &n, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  Batch__V1__ErrorSummary resp;
  job_summary_to_proto(e, n, &resp);
  bok_rpc_call_reply(call, &resp.base);
  job_summary_proto_release(&resp);
  job_summary_free(e, n);
}

#define FILE_PAGE_BYTES (1u << 20)

static void read_rejected_rows(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ReadRejectedRowsRequest *r = (const void *)req;
  if (r->limit < 0 || r->limit > 100000 || r->after_row < 0) {
    bok_rpc_call_fail(call, BOK_ERR_INVALID, "limit: 0-100000; after_row: >= 0");
    return;
  }
  bok_buf_t data = BOK_BUF_INIT(0);
  job_page_t page;
  bok_err_t err;
  if (job_store_rejected_file_page(svc->store, bok_rpc_call_tenant(call), r->job_id, r->after_row, r->limit,
                                   FILE_PAGE_BYTES, r->annotate, &data, &page, &err) != 0) {
    bok_buf_free(&data);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  Batch__V1__RejectedRowsPage resp = BATCH__V1__REJECTED_ROWS_PAGE__INIT;
  resp.data.data = (uint8_t *)data.data;
  resp.data.len = data.len;
  resp.last_row = page.last_row;
  resp.done = page.done;
  resp.format = page.format;
  resp.rows = page.rows;
  bok_rpc_call_reply(call, &resp.base);
  bok_buf_free(&data);
}

/* WatchJob: the tenant's job, then every change (job_watch.c). A finished
 * job is answered at once. Runs on a serving thread; the stream then lives
 * without one. */
static void watch_job(void *ud, bok_rpc_sstream_t *st, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  job_t j;
  bok_err_t err;
  if (job_store_get(svc->store, bok_rpc_sstream_tenant(st), r->job_id, &j, &err) != 0) {
    bok_rpc_sstream_end(st, err.code, "%s", err.msg);
    bok_rpc_sstream_release(st);
    return;
  }
  int final = j.state != BATCH__V1__JOB_STATE__JOB_STATE_PENDING && j.state != BATCH__V1__JOB_STATE__JOB_STATE_RUNNING;
  if (final || !svc->watch) {
    Batch__V1__Job p;
    job_to_proto(&j, &p, bok_now_ms());
    bok_rpc_sstream_write(st, &p.base);
    job_proto_release(&p);
    if (final) bok_rpc_sstream_end(st, BOK_OK, "%s", "");
    else bok_rpc_sstream_end(st, BOK_ERR_UNAVAILABLE, "%s", "watching is not available");
    bok_rpc_sstream_release(st);
  } else if (job_watch_add(svc->watch, j.job_id, st) != 0) {
    bok_rpc_sstream_end(st, BOK_ERR_UNAVAILABLE, "%s", "job service shutting down");
    bok_rpc_sstream_release(st);
  }
  job_free(&j);
}

/* ---- worker-facing ------------------------------------------------------------- */

/* The schema the job's rows are validated with: stored with the job at
 * upload; for a job stored before that, fetched once more from the model
 * service ("" when that version is gone). 0, or -1 (err). */
static int spec_schema(job_service_t *svc, const job_t *j, char **json, bok_err_t *err) {
  if (job_store_schema(svc->store, j->job_id, json, err) != 0) return -1;
  /* a skipped job's rows are not validated: no schema needed */
  if (**json || j->state == BATCH__V1__JOB_STATE__JOB_STATE_CANCELLED || j->halted) return 0;
  Batch__V1__Model *m = NULL;
  if (job_model_get(svc, j->tenant_id, j->model_id, j->schema_version, &m, err) != 0)
    return err->code == BOK_ERR_NOT_FOUND ? 0 : -1;
  free(*json);
  *json = strdup(m->schema_json);
  protobuf_c_message_free_unpacked(&m->base, NULL);
  return *json ? 0 : bok_err_set(err, BOK_ERR_UNAVAILABLE, "out of memory");
}

static void get_job_spec(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  job_t j;
  bok_err_t err;
  char *schema = NULL;
  if (job_store_get(svc->store, NULL, r->job_id, &j, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  if (spec_schema(svc, &j, &schema, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    free(schema);
    job_free(&j);
    return;
  }
  /* Only workers ask (BOK_RPC_WORKER_ONLY), when a lane takes the job's first
   * rows: its processing starts now. A failed write only leaves started_at
   * to the first report (as before), so the spec is still answered. */
  if (j.started_at == 0 && (j.state == BATCH__V1__JOB_STATE__JOB_STATE_PENDING ||
                            j.state == BATCH__V1__JOB_STATE__JOB_STATE_RUNNING) &&
      job_store_mark_started(svc->store, j.job_id, &err) != 0)
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_WARN, "job %s: started_at not stored: %s", j.job_id, err.msg);
  Batch__V1__JobSpec s = BATCH__V1__JOB_SPEC__INIT;
  s.job_id = j.job_id;
  s.tenant_id = j.tenant_id;
  s.model_id = j.model_id;
  s.schema_version = j.schema_version;
  s.format = j.format;
  s.separator = j.separator;
  s.header.data = (uint8_t *)j.header;
  s.header.len = j.header_len;
  s.state = (Batch__V1__JobState)j.state;
  s.topic = j.topic;
  s.dry_run = j.dry_run;
  s.halted = j.halted;
  s.schema_json = schema;
  bok_rpc_call_reply(call, &s.base);
  free(schema);
  job_free(&j);
}

static void report(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ReportResultsRequest *r = (const void *)req;
  Batch__V1__ReportResultsResponse resp = BATCH__V1__REPORT_RESULTS_RESPONSE__INIT;
  char **cancelled = calloc(r->n_jobs ? r->n_jobs : 1, sizeof *cancelled);
  bok_err_t err;
  for (size_t i = 0; i < r->n_jobs; i++) {
    int rc = job_store_stage(svc->store, r->jobs[i], r->group_id, &err);
    if (rc == 1 || (rc < 0 && err.code == BOK_ERR_NOT_FOUND)) {
      cancelled[resp.n_cancelled_job_ids++] = r->jobs[i]->job_id;
    } else if (rc < 0) {
      if (err.code == BOK_ERR_INVALID)
        bok_logf(svc->log, svc->log_opaque, BOK_LOG_WARN, "worker %s: %s", r->worker_id, err.msg);
      free(cancelled);
      bok_rpc_call_fail_err(call, &err);
      return;
    }
  }
  bok_fault("job.report");
  resp.cancelled_job_ids = cancelled;
  bok_rpc_call_reply(call, &resp.base);
  free(cancelled);
}

static void confirm(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ConfirmResultsRequest *r = (const void *)req;
  bok_err_t err;
  size_t n = r->n_messages;
  const char **ids = malloc((n ? n : 1) * sizeof *ids);
  int64_t *rows = malloc((n ? n : 1) * sizeof *rows);
  int rc = ids && rows ? 0 : bok_err_set(&err, BOK_ERR_UNAVAILABLE, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    ids[i] = r->messages[i]->job_id;
    rows[i] = r->messages[i]->first_row;
  }
  if (rc == 0) rc = job_store_confirm_many(svc->store, ids, rows, n, &err);
  free(ids);
  free(rows);
  if (rc != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  bok_fault("job.confirm");
  Batch__V1__ConfirmResultsResponse resp = BATCH__V1__CONFIRM_RESULTS_RESPONSE__INIT;
  bok_rpc_call_reply(call, &resp.base);
}

int job_service_register(bok_rpc_server_t *srv, job_service_t *svc) {
  int rc = 0;
#define U(name, desc, mode, fn) rc |= bok_rpc_server_add_unary(srv, "/batch.v1.JobService/" name, desc, mode, fn, svc)
  rc |= bok_rpc_server_add_client_stream(srv, "/batch.v1.JobService/Upload", BOK_RPC_TENANT_REQUIRED, job_upload, svc);
  U("GetJob", &batch__v1__get_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, get_job);
  rc |= bok_rpc_server_add_server_stream(srv, "/batch.v1.JobService/WatchJob", &batch__v1__get_job_request__descriptor,
                                         BOK_RPC_TENANT_REQUIRED, watch_job, svc);
  U("ListJobs", &batch__v1__list_jobs_request__descriptor, BOK_RPC_TENANT_REQUIRED, list_jobs);
  U("CancelJob", &batch__v1__cancel_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, cancel_job);
  U("ListRejected", &batch__v1__list_rejected_request__descriptor, BOK_RPC_TENANT_REQUIRED, list_rejected);
  U("ReprocessJob", &batch__v1__reprocess_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, job_reprocess);
  U("GetErrorSummary", &batch__v1__get_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, error_summary);
  U("ReadRejectedRows", &batch__v1__read_rejected_rows_request__descriptor, BOK_RPC_TENANT_REQUIRED,
    read_rejected_rows);
  U("GetJobSpec", &batch__v1__get_job_request__descriptor, BOK_RPC_WORKER_ONLY, get_job_spec);
  U("ReportResults", &batch__v1__report_results_request__descriptor, BOK_RPC_WORKER_ONLY, report);
  U("ConfirmResults", &batch__v1__confirm_results_request__descriptor, BOK_RPC_WORKER_ONLY, confirm);
#undef U
  return rc;
}
