#include "job_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/v1/model.pb-c.h"
#include "bok/core.h"
#include "bok/fault.h"
#include "bok/schema.h"
#include "bok/util.h"
#include "header_check.h"
#include "job_obs.h"

#define UPLOAD_STATE_ERRLEN 256

static void reply_job(bok_rpc_call_t *call, const job_t *j) {
  Batch__V1__Job p;
  job_to_proto(j, &p, bok_now_ms());
  bok_rpc_call_reply(call, &p.base);
}

/* Fetches a model (current version) for `tenant`. */
static int get_model(job_service_t *svc, const char *tenant, const char *model_id, Batch__V1__Model **m,
                     bok_err_t *err) {
  Batch__V1__GetModelRequest r = BATCH__V1__GET_MODEL_REQUEST__INIT;
  r.model_id = (char *)model_id;
  if (bok_rpc_unary(svc->models, "/batch.v1.ModelService/GetModel", tenant, 10000, &r.base,
                    &batch__v1__model__descriptor, (ProtobufCMessage **)m, err) != 0) {
    if (err->code == BOK_ERR_NOT_FOUND) bok_err_set(err, BOK_ERR_NOT_FOUND, "model not found");
    if (err->code == BOK_ERR_UNAVAILABLE) bok_err_set(err, BOK_ERR_UNAVAILABLE, "model service unavailable");
    return -1;
  }
  return 0;
}

/* ---- committing a job's rows (docs/GUARANTEES.md) ------------------------- */

/* Settles an unknown commit outcome by reading the last message: 0 committed,
 * -1 aborted, 1 still unknown (the resolver thread retries later). */
static int settle(job_service_t *svc, const job_msg_t *last) {
  int r = row_pool_resolve(svc->rows, last->partition, last->offset, 10000);
  return r == 1 ? 0 : r == 0 ? -1 : 1;
}

/* Flushes the job's rows, stores its messages, header and the rows the
 * service rejected itself, commits the rows transaction and stores the
 * outcome. Consumes w. Returns NULL when the rows are committed (or the
 * outcome is still being settled), else the job's error (the job is FAILED;
 * details in kerr). */
static const char *commit_rows(job_service_t *svc, const char *job_id, row_batch_writer_t *w, const char *header,
                               size_t hlen, int64_t total, const Batch__V1__JobResults *malformed,
                               const job_warnings_t *warnings, char *kerr, size_t kerrlen) {
  bok_err_t err;
  if (row_producer_flush(w, kerr, kerrlen) != 0) {
    row_producer_abort(w);
    job_store_fail(svc->store, job_id, "Kafka unavailable", &err);
    return "Kafka unavailable";
  }
  size_t n;
  const row_msg_t *rm = row_producer_messages(w, &n);
  job_msg_t *msgs = malloc((n ? n : 1) * sizeof *msgs);
  for (size_t i = 0; i < n; i++)
    msgs[i] = (job_msg_t){rm[i].first_row, rm[i].last_row, rm[i].rows, rm[i].partition, rm[i].offset};
  bok_fault("job.before_store");
  if (job_store_prepare_commit(svc->store, job_id, header, hlen, total, msgs, n, malformed,
                               warnings ? warnings->w : NULL, warnings ? warnings->n : 0, &err) != 0) {
    snprintf(kerr, kerrlen, "%.200s", err.msg);
    row_producer_abort(w);
    free(msgs);
    job_store_fail(svc->store, job_id, "job storage unavailable", &err);
    return "job storage unavailable";
  }
  int c = row_producer_commit(w, kerr, kerrlen);
  bok_fault("job.after_rows_commit");
  if (c == 1) c = n ? settle(svc, &msgs[n - 1]) : 0;
  if (c == 0) job_store_commit_outcome(svc->store, job_id, 1, NULL, &err);
  if (c < 0) job_store_commit_outcome(svc->store, job_id, 0, "Kafka unavailable", &err);
  if (c == 1)
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_WARN, "job %s: rows commit outcome unknown (%s); settling later",
             job_id, kerr);
  row_producer_end(w);
  free(msgs);
  return c < 0 ? "Kafka unavailable" : NULL;
}

/* ---- upload --------------------------------------------------------------- */

typedef struct {
  job_service_t *svc;
  job_t *job;
  row_batch_writer_t *w;
  bok_buf_t header;
  int have_header;
  int csv;
  int64_t rows;
  int kafka_failed;
  char sep;
  bok_schema_t *schema; /* the model's schema, for the header check (NULL: none) */
  job_warnings_t warnings;
  /* malformed rows are recorded here directly as rejected */
  Batch__V1__JobResults bad;
  size_t bad_cap;
} upload_t;

static void record_malformed(upload_t *u, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  if (u->bad.n_rejected == u->bad_cap) {
    u->bad_cap = u->bad_cap ? u->bad_cap * 2 : 16;
    u->bad.rejected = realloc(u->bad.rejected, u->bad_cap * sizeof *u->bad.rejected);
  }
  Batch__V1__RowRejection *r = calloc(1, sizeof *r);
  batch__v1__row_rejection__init(r);
  r->row = row;
  r->raw.data = malloc(len ? len : 1);
  memcpy(r->raw.data, raw, len);
  r->raw.len = len;
  Batch__V1__RejectedCell *c = calloc(1, sizeof *c);
  batch__v1__rejected_cell__init(c);
  c->row = row;
  c->code = "MALFORMED_ROW";
  char msg[128];
  snprintf(msg, sizeof msg, "Row %lld is malformed: %s.", (long long)row, bok_csv_status_text(st));
  c->message = strdup(msg);
  r->n_cells = 1;
  r->cells = malloc(sizeof *r->cells);
  r->cells[0] = c;
  u->bad.rejected[u->bad.n_rejected++] = r;
}

static void free_malformed(upload_t *u) {
  for (size_t i = 0; i < u->bad.n_rejected; i++) {
    Batch__V1__RowRejection *r = u->bad.rejected[i];
    free(r->raw.data);
    free(r->cells[0]->message);
    free(r->cells[0]);
    free(r->cells);
    free(r);
  }
  free(u->bad.rejected);
}

static int on_record(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  upload_t *u = ud;
  if (u->csv && row == 0) {
    bok_buf_append(&u->header, raw, len);
    u->have_header = 1;
    if (u->schema && st == BOK_CSV_OK) job_header_check(u->schema, raw, len, u->sep, &u->warnings);
    return 0;
  }
  u->rows++;
  if (st != BOK_CSV_OK) {
    record_malformed(u, row, raw, len, st);
    if (st == BOK_CSV_UNTERMINATED_QUOTE) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "row %lld opens a quote that is never closed: the rest of the file was read as that one row",
               (long long)row);
      job_warnings_add(&u->warnings, "UNTERMINATED_QUOTE", "", msg);
    }
    return 0;
  }
  if (row_producer_add(u->w, row, raw, len) != 0) {
    u->kafka_failed = 1;
    return 1;
  }
  return 0;
}

/* The error budget of a new job: the upload's own, else the model's default. */
static void set_budget(job_t *job, const Batch__V1__UploadHeader *h, const Batch__V1__Model *model) {
  if (h->has_max_errors) {
    job->has_max_errors = 1;
    job->max_errors = h->max_errors;
  } else if (model->has_max_errors && model->max_errors >= 0) {
    job->has_max_errors = 1;
    job->max_errors = model->max_errors;
  }
  if (h->has_max_error_rate) {
    job->has_max_error_rate = 1;
    job->max_error_rate = h->max_error_rate;
  } else if (model->has_max_error_rate && model->max_error_rate >= 0) {
    job->has_max_error_rate = 1;
    job->max_error_rate = model->max_error_rate;
  }
}

/* The CSV separator of an upload header, as the gateway accepts it: empty ->
 * ','; a tab ("\t", "\\t" or "tab"); one printable ASCII byte other than '"'.
 * -1 for anything else (NUL, line breaks, quotes, bytes >= 0x80, several
 * characters). */
static int parse_separator(const char *s) {
  if (!s || !*s) return ',';
  if (strcmp(s, "\t") == 0 || strcmp(s, "\\t") == 0 || strcmp(s, "tab") == 0) return '\t';
  if (s[1] != '\0') return -1;
  unsigned char c = (unsigned char)s[0];
  return c >= 0x20 && c < 0x7f && c != '"' ? c : -1;
}

static void upload(void *ud, bok_rpc_call_t *call) {
  job_service_t *svc = ud;
  const char *tenant = bok_rpc_call_tenant(call);
  ProtobufCMessage *m = NULL;
  bok_err_t err;
  bok_err_clear(&err);
  int r = bok_rpc_call_read(call, &batch__v1__upload_request__descriptor, &m);
  Batch__V1__UploadRequest *first = (void *)m;
  if (r != 1 || first->kind_case != BATCH__V1__UPLOAD_REQUEST__KIND_HEADER) {
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    bok_rpc_call_fail(call, BOK_ERR_INVALID, "an upload starts with a header message");
    return;
  }
  Batch__V1__UploadHeader *h = first->header;
  const char *fmt = h->format && *h->format ? h->format : "csv";
  int csv = strcmp(fmt, "csv") == 0;
  if (!csv && strcmp(fmt, "ndjson") != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    bok_rpc_call_fail(call, BOK_ERR_INVALID, "format: use csv or ndjson");
    return;
  }
  int sep = parse_separator(h->separator);
  if (sep < 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    bok_rpc_call_fail(call, BOK_ERR_INVALID,
                      "separator: one printable ASCII character other than '\"', or a tab (\\t); empty means ','");
    return;
  }
  if ((h->has_max_errors && h->max_errors < 0) ||
      (h->has_max_error_rate && !(h->max_error_rate >= 0.0 && h->max_error_rate <= 1.0))) {
    protobuf_c_message_free_unpacked(m, NULL);
    bok_rpc_call_fail(call, BOK_ERR_INVALID,
                      h->has_max_errors && h->max_errors < 0 ? "max_errors: expected a whole number >= 0"
                                                             : "max_error_rate: expected a number from 0 to 1");
    return;
  }
  Batch__V1__Model *model = NULL;
  if (get_model(svc, tenant, h->model_id, &model, &err) != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  job_t job;
  memset(&job, 0, sizeof job);
  job.dry_run = h->dry_run;
  set_budget(&job, h, model);
  char sepstr[2] = {(char)sep, 0};
  job.tenant_id = (char *)tenant;
  job.model_id = model->model_id;
  job.model_name = model->name;
  job.file_name = h->file_name;
  job.format = (char *)fmt;
  job.separator = sepstr;
  job.topic = model->topic;
  job.schema_version = model->version;
  if (job_store_create(svc->store, &job, &err) != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(&model->base, NULL);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  bok_log_ctx_set(bok_rpc_call_tenant(call), job.job_id); /* the upload's lines carry job= */
  char job_id[40];
  snprintf(job_id, sizeof job_id, "%s", job.job_id);
  upload_t u;
  memset(&u, 0, sizeof u);
  u.svc = svc;
  u.csv = csv;
  u.sep = (char)sep;
  if (csv) {
    char cerr[200];
    if (bok_schema_compile(model->schema_json, strlen(model->schema_json), &u.schema, cerr, sizeof cerr) != 0)
      u.schema = NULL; /* the workers report it per row */
  }
  bok_buf_init(&u.header, 0);
  batch__v1__job_results__init(&u.bad);
  u.bad.job_id = job_id;
  char kerr[UPLOAD_STATE_ERRLEN] = "";
  u.w = row_producer_begin(svc->rows, tenant, job_id, model->model_id, model->version, kerr, sizeof kerr);
  protobuf_c_message_free_unpacked(&model->base, NULL);
  protobuf_c_message_free_unpacked(m, NULL);
  const char *job_error = NULL;
  int interrupted = 0;
  if (!u.w) {
    job_error = "Kafka unavailable";
    job_store_fail(svc->store, job_id, job_error, &err);
  } else {
    bok_csv_t *rd = csv ? bok_csv_new(sep, svc->max_row_bytes, on_record, &u)
                        : bok_ndjson_new(svc->max_row_bytes, on_record, &u);
    for (;;) {
      r = bok_rpc_call_read(call, &batch__v1__upload_request__descriptor, &m);
      if (r <= 0) break;
      Batch__V1__UploadRequest *c = (void *)m;
      if (c->kind_case == BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK) bok_counter_add(job_metrics.upload_bytes, c->chunk.len);
      if (c->kind_case == BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK && bok_csv_feed(rd, (const char *)c->chunk.data, c->chunk.len))
        r = -2;
      protobuf_c_message_free_unpacked(m, NULL);
      if (r == -2) break;
      bok_fault("job.mid_upload");
    }
    if (r == 0) bok_csv_finish(rd);
    bok_csv_destroy(rd);
    bok_counter_add(job_metrics.rows_received, (uint64_t)u.rows);
    if (r == -1) {
      interrupted = 1;
      job_error = "upload interrupted";
    } else if (u.kafka_failed) {
      job_error = "Kafka unavailable";
    } else if (csv && !u.have_header) {
      job_error = "file has no header row";
    } else if (u.rows == 0) {
      job_error = "file has no data rows";
    }
    if (job_error) {
      row_producer_abort(u.w);
      job_store_fail(svc->store, job_id, job_error, &err);
    } else {
      job_error = commit_rows(svc, job_id, u.w, u.header.data, u.header.len, u.rows, &u.bad, &u.warnings, kerr,
                              sizeof kerr);
    }
  }
  if (job_error)
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_WARN, "job %s failed: %s%s%s", job_id, job_error, kerr[0] ? ": " : "",
             kerr);
  else
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_INFO, "job %s: %lld rows queued", job_id, (long long)u.rows);
  free_malformed(&u);
  bok_buf_free(&u.header);
  bok_schema_destroy(u.schema);
  job_warnings_free(&u.warnings);
  if (interrupted) {
    bok_rpc_call_fail(call, BOK_ERR_CANCELLED, "upload interrupted");
    return;
  }
  job_t out;
  if (job_store_get(svc->store, tenant, job_id, &out, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  reply_job(call, &out);
  job_free(&out);
}

/* ---- queries ---------------------------------------------------------------- */

static void get_job(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  job_t j;
  bok_err_t err;
  if (job_store_get(svc->store, bok_rpc_call_tenant(call), r->job_id, &j, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  reply_job(call, &j);
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
  reply_job(call, &j);
  job_free(&j);
}

static void list_rejected(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ListRejectedRequest *r = (const void *)req;
  Batch__V1__ListRejectedResponse resp;
  bok_err_t err;
  if (job_store_rejected(svc->store, bok_rpc_call_tenant(call), r->job_id, r->limit, r->after_row, &resp, &err) != 0) {
    job_rejected_free(&resp);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  bok_rpc_call_reply(call, &resp.base);
  job_rejected_free(&resp);
}

typedef struct {
  row_batch_writer_t *w;
  int64_t n;
} reproc_t;

static int reproc_row(void *ud, int64_t row, const void *raw, size_t len) {
  reproc_t *x = ud;
  x->n++;
  return row_producer_add(x->w, row, raw, len);
}

static void reprocess(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ReprocessJobRequest *r = (const void *)req;
  const char *tenant = bok_rpc_call_tenant(call);
  bok_err_t err;
  job_t parent;
  if (job_store_get(svc->store, tenant, r->job_id, &parent, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  if (parent.state == BATCH__V1__JOB_STATE__JOB_STATE_PENDING || parent.state == BATCH__V1__JOB_STATE__JOB_STATE_RUNNING) {
    /* its rejected rows are not all known yet */
    bok_rpc_call_fail(call, BOK_ERR_CONFLICT,
                      parent.errors ? "job is still running" : "job is still running (no rejected rows yet)");
    job_free(&parent);
    return;
  }
  if (parent.errors == 0) {
    job_free(&parent);
    bok_rpc_call_fail(call, BOK_ERR_CONFLICT, "job has no rejected rows");
    return;
  }
  Batch__V1__Model *model = NULL;
  if (get_model(svc, tenant, parent.model_id, &model, &err) != 0) {
    job_free(&parent);
    if (err.code == BOK_ERR_NOT_FOUND) bok_err_set(&err, BOK_ERR_CONFLICT, "the model of this job was deleted");
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  job_t job;
  memset(&job, 0, sizeof job);
  job.tenant_id = (char *)tenant;
  job.model_id = parent.model_id;
  job.model_name = model->name;
  job.file_name = parent.file_name;
  job.format = parent.format;
  job.separator = parent.separator;
  job.topic = model->topic;
  job.schema_version = model->version;
  job.parent_job_id = parent.job_id;
  job.header = parent.header;
  job.header_len = parent.header_len;
  job.dry_run = parent.dry_run; /* a dry run's rows are reprocessed as a dry run, with the same budget */
  job.has_max_errors = parent.has_max_errors;
  job.max_errors = parent.max_errors;
  job.has_max_error_rate = parent.has_max_error_rate;
  job.max_error_rate = parent.max_error_rate;
  int rc = job_store_create(svc->store, &job, &err);
  if (rc == 0) bok_log_ctx_set(tenant, job.job_id);
  char kerr[256] = "";
  reproc_t x = {NULL, 0};
  if (rc == 0) {
    x.w = row_producer_begin(svc->rows, tenant, job.job_id, parent.model_id, model->version, kerr, sizeof kerr);
    if (!x.w || job_store_each_rejected_row(svc->store, parent.job_id, reproc_row, &x, &err) != 0) {
      if (x.w) row_producer_abort(x.w);
      job_store_fail(svc->store, job.job_id, "Kafka unavailable", &err);
    } else {
      commit_rows(svc, job.job_id, x.w, parent.header, parent.header_len, x.n, NULL, NULL, kerr, sizeof kerr);
    }
  }
  protobuf_c_message_free_unpacked(&model->base, NULL);
  if (rc != 0) {
    job_free(&parent);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  bok_logf(svc->log, svc->log_opaque, BOK_LOG_INFO, "job %s reprocesses %lld rows of %s", job.job_id,
           (long long)x.n, parent.job_id);
  job_t out;
  if (job_store_get(svc->store, tenant, job.job_id, &out, &err) == 0) {
    reply_job(call, &out);
    job_free(&out);
  } else {
    bok_rpc_call_fail_err(call, &err);
  }
  job_free(&parent);
}

static void error_summary(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  Batch__V1__ErrorSummary resp = BATCH__V1__ERROR_SUMMARY__INIT;
  bok_err_t err;
  if (job_store_summary(svc->store, bok_rpc_call_tenant(call), r->job_id, 0, &resp.entries, &resp.n_entries, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  bok_rpc_call_reply(call, &resp.base);
  job_summary_free(resp.entries, resp.n_entries);
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

/* ---- worker-facing ------------------------------------------------------------- */

static void get_job_spec(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  job_t j;
  bok_err_t err;
  if (job_store_get(svc->store, NULL, r->job_id, &j, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
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
  bok_rpc_call_reply(call, &s.base);
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
  for (size_t i = 0; i < r->n_messages; i++) {
    if (job_store_confirm(svc->store, r->messages[i]->job_id, r->messages[i]->first_row, &err) != 0) {
      bok_rpc_call_fail_err(call, &err);
      return;
    }
  }
  bok_fault("job.confirm");
  Batch__V1__ConfirmResultsResponse resp = BATCH__V1__CONFIRM_RESULTS_RESPONSE__INIT;
  bok_rpc_call_reply(call, &resp.base);
}

int job_service_register(bok_rpc_server_t *srv, job_service_t *svc) {
  int rc = 0;
#define U(name, desc, mode, fn) rc |= bok_rpc_server_add_unary(srv, "/batch.v1.JobService/" name, desc, mode, fn, svc)
  rc |= bok_rpc_server_add_client_stream(srv, "/batch.v1.JobService/Upload", BOK_RPC_TENANT_REQUIRED, upload, svc);
  U("GetJob", &batch__v1__get_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, get_job);
  U("ListJobs", &batch__v1__list_jobs_request__descriptor, BOK_RPC_TENANT_REQUIRED, list_jobs);
  U("CancelJob", &batch__v1__cancel_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, cancel_job);
  U("ListRejected", &batch__v1__list_rejected_request__descriptor, BOK_RPC_TENANT_REQUIRED, list_rejected);
  U("ReprocessJob", &batch__v1__reprocess_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, reprocess);
  U("GetErrorSummary", &batch__v1__get_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, error_summary);
  U("ReadRejectedRows", &batch__v1__read_rejected_rows_request__descriptor, BOK_RPC_TENANT_REQUIRED,
    read_rejected_rows);
  U("GetJobSpec", &batch__v1__get_job_request__descriptor, BOK_RPC_WORKER_ONLY, get_job_spec);
  U("ReportResults", &batch__v1__report_results_request__descriptor, BOK_RPC_WORKER_ONLY, report);
  U("ConfirmResults", &batch__v1__confirm_results_request__descriptor, BOK_RPC_WORKER_ONLY, confirm);
#undef U
  return rc;
}
