/* job_upload.c -- the JobService methods that write rows: Upload (a client
 * stream split into rows by the data core, produced to the rows topic in one
 * transaction) and ReprocessJob (a job's rejected rows again, as a child
 * job), and the commit both end with: messages and header stored before the
 * Kafka commit, the outcome after it, an unknown outcome settled from Kafka
 * (docs/GUARANTEES.md). Handlers run on the gRPC server's threads and may
 * block. */
#include "job_upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch/v1/model.pb-c.h"
#include "bok/rows.h"
#include "bok/detect.h"
#include "bok/fault.h"
#include "bok/reject.h"
#include "bok/schema.h"
#include "bok/util.h"
#include "header_check.h"
#include "job_obs.h"
#include "upload_decode.h"

#define UPLOAD_STATE_ERRLEN 256
#define SNIFF_MAX (64 * 1024) /* content bytes read to tell NDJSON from CSV */

/* The options of an upload (SPEC 12 "Upload options"), checked. */
typedef struct {
  int format;           /* 1 csv, 0 ndjson, -1 from the content */
  int sep;
  int gzip;
  int no_header;        /* CSV without a header row: columns in schema order */
  char quote;           /* CSV quote character */
  const char *encoding; /* canonical name (upload_encoding_name) */
} upload_opts_t;

int job_model_get(job_service_t *svc, const char *tenant, const char *model_id, int64_t version,
                  Batch__V1__Model **m, bok_err_t *err) {
  Batch__V1__GetModelRequest r = BATCH__V1__GET_MODEL_REQUEST__INIT;
  r.model_id = (char *)model_id;
  r.version = version;
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
  int no_header;
  char quote;           /* != '"': records are rewritten with '"' quoting (requote) */
  bok_buf_t requoted, scratch;
  bok_csv_t *rd;        /* the splitter; NULL while the format is being sniffed */
  bok_buf_t sniff;      /* the first decoded bytes, while the format is unknown */
  size_t max_row_bytes;
  const char *job_id;
  char decode_error[200];
  int64_t rows;
  int kafka_failed;
  char sep;
  bok_schema_t *schema; /* the model's schema, for the header check (NULL: none) */
  job_warnings_t warnings;
  /* malformed rows are recorded here directly as rejected */
  Batch__V1__JobResults bad;
  size_t bad_cap;
} upload_t;

/* A row the splitter could not read: rejected here as MALFORMED_ROW, built
 * as the workers build theirs (bok/reject.h). */
static void record_malformed(upload_t *u, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  bok_reject_append(&u->bad, &u->bad_cap, bok_reject_malformed(row, raw, len, bok_csv_status_text(st)));
}

/* A CSV record read with quote character u->quote, written again with the
 * '"' quoting the workers read (a field is quoted when it holds the
 * separator, '"' or a line break). This is the row that is stored. -1 when it cannot be read (an open quote). */
static int requote(upload_t *u, const char **raw, size_t *len) {
  bok_slice_t small[64], *f = small;
  int n = bok_csv_parse_record_q(*raw, *len, u->sep, u->quote, f, 64, &u->scratch);
  if (n > 64) {
    f = malloc((size_t)n * sizeof *f);
    if (!f) return -1;
    n = bok_csv_parse_record_q(*raw, *len, u->sep, u->quote, f, (size_t)n, &u->scratch);
  }
  if (n < 0) goto done;
  bok_buf_reset(&u->requoted);
  for (int i = 0; i < n; i++) {
    if (i) bok_buf_append(&u->requoted, &u->sep, 1);
    int q = memchr(f[i].base, u->sep, f[i].len) || memchr(f[i].base, '"', f[i].len) ||
            memchr(f[i].base, '\n', f[i].len) || memchr(f[i].base, '\r', f[i].len);
    if (!q) {
      bok_buf_append(&u->requoted, f[i].base, f[i].len);
      continue;
    }
    bok_buf_append(&u->requoted, "\"", 1);
    for (size_t k = 0; k < f[i].len; k++) {
      bok_buf_append(&u->requoted, f[i].base + k, 1);
      if (f[i].base[k] == '"') bok_buf_append(&u->requoted, "\"", 1);
    }
    bok_buf_append(&u->requoted, "\"", 1);
  }
  *raw = u->requoted.data ? u->requoted.data : "";
  *len = u->requoted.len;
done:
  if (f != small) free(f);
  return n < 0 ? -1 : 0;
}

static int on_record(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  upload_t *u = ud;
  if (u->csv && u->quote != '"' && st == BOK_CSV_OK && requote(u, &raw, &len) != 0) st = BOK_CSV_UNTERMINATED_QUOTE;
  if (u->csv && u->no_header) row++; /* every record is a data row */
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
               "row %lld opens a quote that is never closed: that row is rejected, the rows after it are read as usual",
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

static int ends_with(const char *s, size_t n, const char *suf) {
  size_t l = strlen(suf);
  return n >= l && strncasecmp(s + n - l, suf, l) == 0;
}

/* The format a file name says (a ".gz" ending ignored): 1 csv, 0 ndjson,
 * -1 it says nothing. */
static int format_of_name(const char *name, int *gz) {
  size_t n = name ? strlen(name) : 0;
  *gz = ends_with(name, n, ".gz");
  if (*gz) n -= 3;
  if (ends_with(name, n, ".ndjson") || ends_with(name, n, ".jsonl")) return 0;
  if (ends_with(name, n, ".csv") || ends_with(name, n, ".tsv")) return 1;
  return -1;
}

/* Checks an upload header: format, separator, encoding, quote, compression,
 * error budget. NULL when it is fine (*o set), else the message of an
 * INVALID_ARGUMENT. */
static const char *check_header(const Batch__V1__UploadHeader *h, upload_opts_t *o) {
  int gz;
  o->format = format_of_name(h->file_name, &gz);
  if (h->format && *h->format) {
    if (strcmp(h->format, "csv") != 0 && strcmp(h->format, "ndjson") != 0) return "format: use csv or ndjson";
    o->format = strcmp(h->format, "csv") == 0;
  }
  const char *c = h->compression ? h->compression : "";
  if (*c && strcmp(c, "gzip") != 0 && strcmp(c, "identity") != 0) return "compression: use gzip or identity";
  o->gzip = strcmp(c, "gzip") == 0 || (!*c && gz);
  o->encoding = upload_encoding_name(h->encoding);
  if (!o->encoding) return "encoding: use utf-8, latin-1, windows-1252, utf-16 (with a byte order mark), utf-16le or utf-16be";
  o->no_header = h->no_header;
  o->sep = parse_separator(h->separator);
  int *sep = &o->sep;
  if (*sep < 0) return "separator: one printable ASCII character other than '\"', or a tab (\\t); empty means ','";
  o->quote = h->quote && *h->quote ? h->quote[0] : '"';
  if (h->quote && *h->quote && (h->quote[1] || o->quote < 0x21 || o->quote > 0x7e || o->quote == *sep))
    return "quote: one printable ASCII character other than the separator; empty means '\"'";
  if (h->has_max_errors && h->max_errors < 0) return "max_errors: expected a whole number >= 0";
  if (h->has_max_error_rate && !(h->max_error_rate >= 0.0 && h->max_error_rate <= 1.0))
    return "max_error_rate: expected a number from 0 to 1";
  return NULL;
}

/* Creates the PENDING job of an upload (job_id filled in). 0 ok, -1 err.
 * A format still to be found in the content is stored as csv until then. */
static int create_job(job_service_t *svc, const char *tenant, const Batch__V1__UploadHeader *h,
                      const Batch__V1__Model *model, const upload_opts_t *o, char job_id[40], bok_err_t *err) {
  int csv = o->format != 0, sep = o->sep;
  job_t job;
  memset(&job, 0, sizeof job);
  job.dry_run = h->dry_run;
  set_budget(&job, h, model);
  char sepstr[2] = {(char)sep, 0};
  job.tenant_id = (char *)tenant;
  job.model_id = model->model_id;
  job.model_name = model->name;
  job.file_name = h->file_name;
  job.format = csv ? "csv" : "ndjson";
  job.separator = sepstr;
  job.encoding = (char *)o->encoding;
  job.topic = model->topic;
  job.schema_version = model->version;
  job.schema_json = model->schema_json; /* the workers validate with it (GetJobSpec) */
  if (job_store_create(svc->store, &job, err) != 0) return -1;
  snprintf(job_id, 40, "%s", job.job_id);
  return 0;
}

/* The header of a CSV upload without one: the schema's columns in order,
 * quoted where a name needs it. -1 when there is no schema. */
static int schema_header(upload_t *u) {
  if (!u->schema || bok_schema_ncols(u->schema) == 0) return -1;
  for (size_t i = 0; i < bok_schema_ncols(u->schema); i++) {
    const char *n = bok_schema_col(u->schema, i)->name;
    if (i) bok_buf_append(&u->header, &u->sep, 1);
    int q = strchr(n, u->sep) || strpbrk(n, "\"\r\n");
    if (q) bok_buf_append(&u->header, "\"", 1);
    for (const char *c = n; *c; c++) {
      bok_buf_append(&u->header, c, 1);
      if (*c == '"') bok_buf_append(&u->header, c, 1); /* "" inside quotes */
    }
    if (q) bok_buf_append(&u->header, "\"", 1);
  }
  u->have_header = 1;
  return 0;
}

/* Creates the splitter once the format is known (from the options or the
 * first bytes) and hands it the bytes read so far. Nonzero when the
 * splitter stopped. */
static int start_splitter(upload_t *u) {
  if (u->csv < 0) {
    u->csv = !bok_looks_ndjson(u->sniff.data, u->sniff.len);
    bok_err_t err;
    if (!u->csv) job_store_set_format(u->svc->store, u->job_id, "ndjson", &err);
  }
  u->rd = u->csv ? bok_csv_new(u->sep, u->max_row_bytes, on_record, u) : bok_ndjson_new(u->max_row_bytes, on_record, u);
  if (u->csv) bok_csv_set_quote(u->rd, u->quote);
  int r = u->sniff.len ? bok_csv_feed(u->rd, u->sniff.data, u->sniff.len) : 0;
  bok_buf_free(&u->sniff);
  return r;
}

/* The decoder's sink: UTF-8 text for the splitter (buffered while the
 * format is being sniffed: until a first non-blank line is complete). */
static int to_splitter(void *ud, const char *p, size_t n) {
  upload_t *u = ud;
  if (u->rd) return bok_csv_feed(u->rd, p, n);
  bok_buf_append(&u->sniff, p, n);
  const char *s = u->sniff.data, *e = s + u->sniff.len;
  while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++;
  if (s < e && !memchr(s, '\n', (size_t)(e - s)) && u->sniff.len < SNIFF_MAX) return 0;
  return s < e ? start_splitter(u) : 0;
}

/* Feeds the chunks of the stream through the decoder to the splitter. 0 at
 * the stream's end, -1 when the client went away, -2 when the splitter
 * stopped (Kafka failed), -3 when the stream cannot be decoded
 * (u->decode_error). */
static int stream_rows(bok_rpc_call_t *call, upload_t *u, upload_dec_t *dec) {
  ProtobufCMessage *m = NULL;
  int r;
  for (;;) {
    r = bok_rpc_call_read(call, &batch__v1__upload_request__descriptor, &m);
    if (r <= 0) break;
    Batch__V1__UploadRequest *c = (void *)m;
    if (c->kind_case == BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK) {
      bok_counter_add(job_metrics.upload_bytes, c->chunk.len);
      int d = upload_dec_feed(dec, c->chunk.data, c->chunk.len);
      if (d) r = d == -1 ? -3 : -2;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    if (r < -1) break;
    bok_fault("job.mid_upload");
  }
  if (r == 0) {
    int d = upload_dec_finish(dec);
    if (d) r = d == -1 ? -3 : -2;
  }
  if (r == 0 && !u->rd && start_splitter(u)) r = -2;
  if (r == 0) bok_csv_finish(u->rd);
  if (r == -3) snprintf(u->decode_error, sizeof u->decode_error, "%s", upload_dec_error(dec));
  return r;
}

/* Reads the rows and commits them (or fails the job). Returns the job's
 * error or NULL; *interrupted when the client went away. */
static const char *receive(job_service_t *svc, bok_rpc_call_t *call, upload_t *u, const upload_opts_t *o,
                           const char *job_id, int *interrupted, char *kerr, size_t kerrlen) {
  bok_err_t err;
  int r = -2;
  upload_dec_t *dec = upload_dec_new(o->gzip, o->encoding, to_splitter, u);
  if (u->csv && u->no_header && schema_header(u) != 0) {
    r = -3;
    snprintf(u->decode_error, sizeof u->decode_error, "a file without a header row needs a model schema with columns");
  } else if (dec) {
    r = stream_rows(call, u, dec);
  }
  upload_dec_free(dec);
  bok_csv_destroy(u->rd);
  u->rd = NULL;
  if (!dec) u->kafka_failed = 1; /* out of memory: reported as the upload's failure below */
  bok_counter_add(job_metrics.rows_received, (uint64_t)u->rows);
  const char *job_error = NULL;
  if (r == -1) {
    *interrupted = 1;
    job_error = "upload interrupted";
  } else if (r == -3) {
    job_error = u->decode_error;
  } else if (u->kafka_failed) {
    job_error = "Kafka unavailable";
  } else if (u->csv && !u->have_header) {
    job_error = "file has no header row";
  } else if (u->rows == 0) {
    job_error = "file has no data rows";
  }
  if (!job_error)
    return commit_rows(svc, job_id, u->w, u->header.data, u->header.len, u->rows, &u->bad, &u->warnings, kerr, kerrlen);
  row_producer_abort(u->w);
  job_store_fail(svc->store, job_id, job_error, &err);
  return job_error;
}

static void upload_free(upload_t *u) {
  bok_reject_free_all(&u->bad);
  bok_buf_free(&u->header);
  bok_buf_free(&u->sniff);
  bok_buf_free(&u->requoted);
  bok_buf_free(&u->scratch);
  bok_schema_destroy(u->schema);
  job_warnings_free(&u->warnings);
}

/* The header message: checked, its model resolved, the job created. NULL
 * when the call has been answered with an error. The model is the caller's. */
static Batch__V1__Model *open_upload(job_service_t *svc, bok_rpc_call_t *call, upload_opts_t *o, int *dry_run,
                                     char job_id[40]) {
  ProtobufCMessage *m = NULL;
  bok_err_t err;
  bok_err_clear(&err);
  int r = bok_rpc_call_read(call, &batch__v1__upload_request__descriptor, &m);
  Batch__V1__UploadRequest *first = (void *)m;
  const char *bad = r != 1 || first->kind_case != BATCH__V1__UPLOAD_REQUEST__KIND_HEADER
                        ? "an upload starts with a header message"
                        : check_header(first->header, o);
  Batch__V1__Model *model = NULL;
  if (bad) {
    bok_rpc_call_fail(call, BOK_ERR_INVALID, "%s", bad);
  } else if (job_model_get(svc, bok_rpc_call_tenant(call), first->header->model_id, 0, &model, &err) != 0 ||
             create_job(svc, bok_rpc_call_tenant(call), first->header, model, o, job_id, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    if (model) protobuf_c_message_free_unpacked(&model->base, NULL);
    model = NULL;
  } else {
    *dry_run = first->header->dry_run;
  }
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  return model;
}

/* JobService/Upload: a header message, then the file's bytes; the rows go
 * to the rows topic in one transaction and the job is answered. */
void job_upload(void *ud, bok_rpc_call_t *call) {
  job_service_t *svc = ud;
  const char *tenant = bok_rpc_call_tenant(call);
  int dry_run = 0, interrupted = 0;
  upload_opts_t o;
  memset(&o, 0, sizeof o);
  char job_id[40];
  Batch__V1__Model *model = open_upload(svc, call, &o, &dry_run, job_id);
  if (!model) return;
  (void)dry_run;
  bok_log_ctx_set(tenant, job_id); /* the upload's lines carry job= */
  upload_t u;
  memset(&u, 0, sizeof u);
  u.svc = svc;
  u.csv = o.format;
  u.no_header = o.no_header;
  u.quote = o.quote;
  u.sep = (char)o.sep;
  u.max_row_bytes = svc->max_row_bytes;
  u.job_id = job_id;
  char cerr[200];
  if (o.format != 0 && bok_schema_compile(model->schema_json, strlen(model->schema_json), &u.schema, cerr, sizeof cerr) != 0)
    u.schema = NULL; /* the workers report it per row */
  bok_buf_init(&u.header, 0);
  bok_buf_init(&u.sniff, 0);
  bok_buf_init(&u.requoted, 0);
  bok_buf_init(&u.scratch, 0);
  batch__v1__job_results__init(&u.bad);
  u.bad.job_id = job_id;
  char kerr[UPLOAD_STATE_ERRLEN] = "";
  bok_err_t err;
  u.w = row_producer_begin(svc->rows, tenant, job_id, model->model_id, model->version, kerr, sizeof kerr);
  protobuf_c_message_free_unpacked(&model->base, NULL);
  const char *job_error = "Kafka unavailable";
  if (!u.w)
    job_store_fail(svc->store, job_id, job_error, &err);
  else
    job_error = receive(svc, call, &u, &o, job_id, &interrupted, kerr, sizeof kerr);
  if (job_error)
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_WARN, "job %s failed: %s%s%s", job_id, job_error, kerr[0] ? ": " : "",
             kerr);
  else
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_INFO, "job %s: %lld rows queued", job_id, (long long)u.rows);
  upload_free(&u);
  if (interrupted) {
    bok_rpc_call_fail(call, BOK_ERR_CANCELLED, "upload interrupted");
    return;
  }
  job_t out;
  if (job_store_get(svc->store, tenant, job_id, &out, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  job_service_reply(call, &out);
  job_free(&out);
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

/* The parent job that may be reprocessed: finished, with rejected rows.
 * -1 when the call has been answered with an error. */
static int reprocess_parent(job_service_t *svc, bok_rpc_call_t *call, const char *job_id, job_t *parent) {
  bok_err_t err;
  if (job_store_get(svc->store, bok_rpc_call_tenant(call), job_id, parent, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return -1;
  }
  const char *bad = NULL;
  if (parent->state == BATCH__V1__JOB_STATE__JOB_STATE_PENDING || parent->state == BATCH__V1__JOB_STATE__JOB_STATE_RUNNING)
    /* its rejected rows are not all known yet */
    bad = parent->errors ? "job is still running" : "job is still running (no rejected rows yet)";
  else if (parent->errors == 0)
    bad = "job has no rejected rows";
  if (!bad) return 0;
  bok_rpc_call_fail(call, BOK_ERR_CONFLICT, "%s", bad);
  job_free(parent);
  return -1;
}

/* The child job of `parent` with the model's current version. */
static void reprocess_job(job_t *job, const char *tenant, const job_t *parent, const Batch__V1__Model *model) {
  memset(job, 0, sizeof *job);
  job->tenant_id = (char *)tenant;
  job->model_id = parent->model_id;
  job->model_name = model->name;
  job->file_name = parent->file_name;
  job->format = parent->format;
  job->separator = parent->separator;
  job->topic = model->topic;
  job->schema_version = model->version;
  job->schema_json = model->schema_json;
  job->parent_job_id = (char *)parent->job_id;
  job->header = parent->header;
  job->header_len = parent->header_len;
  job->dry_run = parent->dry_run; /* a dry run's rows are reprocessed as a dry run, with the same budget */
  job->has_max_errors = parent->has_max_errors;
  job->max_errors = parent->max_errors;
  job->has_max_error_rate = parent->has_max_error_rate;
  job->max_error_rate = parent->max_error_rate;
}

/* Produces the parent's rejected rows as the child's and commits them; the
 * rows queued. */
static int64_t reprocess_rows(job_service_t *svc, const char *tenant, const job_t *job, const job_t *parent) {
  char kerr[256] = "";
  bok_err_t err;
  reproc_t x = {NULL, 0};
  x.w = row_producer_begin(svc->rows, tenant, job->job_id, parent->model_id, job->schema_version, kerr, sizeof kerr);
  if (!x.w || job_store_each_rejected_row(svc->store, parent->job_id, reproc_row, &x, &err) != 0) {
    if (x.w) row_producer_abort(x.w);
    job_store_fail(svc->store, job->job_id, "Kafka unavailable", &err);
  } else {
    commit_rows(svc, job->job_id, x.w, parent->header, parent->header_len, x.n, NULL, NULL, kerr, sizeof kerr);
  }
  return x.n;
}

void job_reprocess(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  job_service_t *svc = ud;
  const Batch__V1__ReprocessJobRequest *r = (const void *)req;
  const char *tenant = bok_rpc_call_tenant(call);
  bok_err_t err;
  job_t parent;
  if (reprocess_parent(svc, call, r->job_id, &parent) != 0) return;
  Batch__V1__Model *model = NULL;
  if (job_model_get(svc, tenant, parent.model_id, 0, &model, &err) != 0) {
    job_free(&parent);
    if (err.code == BOK_ERR_NOT_FOUND) bok_err_set(&err, BOK_ERR_CONFLICT, "the model of this job was deleted");
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  job_t job;
  reprocess_job(&job, tenant, &parent, model);
  int rc = job_store_create(svc->store, &job, &err);
  int64_t n = 0;
  if (rc == 0) {
    bok_log_ctx_set(tenant, job.job_id);
    n = reprocess_rows(svc, tenant, &job, &parent);
  }
  protobuf_c_message_free_unpacked(&model->base, NULL);
  job_t out;
  if (rc == 0) {
    bok_logf(svc->log, svc->log_opaque, BOK_LOG_INFO, "job %s reprocesses %lld rows of %s", job.job_id, (long long)n,
             parent.job_id);
    rc = job_store_get(svc->store, tenant, job.job_id, &out, &err);
  }
  if (rc == 0) {
    job_service_reply(call, &out);
    job_free(&out);
  } else {
    bok_rpc_call_fail_err(call, &err);
  }
  job_free(&parent);
}
