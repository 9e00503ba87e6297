/* job_store.h -- durable jobs, counters and rejected rows (SQLite, WAL).
 *
 * Counting is idempotent per rows-topic message (`processed_batches`) or per
 * row (`processed`), so a redelivered message never counts twice. Finished
 * states never change. Worker results are staged first and counted only
 * once their Kafka transaction committed (job_store_stage/confirm). Thread-safety: one connection behind a mutex; any thread may call.
 * Strings in job_t are owned by the job_t (job_free). */
#ifndef JOB_STORE_H
#define JOB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "batch/v1/job.pb-c.h"
#include "bok/buf.h"
#include "bok/err.h"

/* A job's warning as stored (owned strings). */
typedef struct {
  char *code, *column, *message;
} job_warn_t;

/* One entry of a job's error summary, per (code, column) (owned strings). */
typedef struct {
  char *code, *column, *type;
  int64_t count, first_row; /* rows with it; the lowest of them */
  char *example;            /* the first row's observed value (has_example) */
  int has_example;
  char *message;            /* the first row's message */
} job_summary_t;

/* One rejected cell as stored (owned strings). */
typedef struct {
  int64_t row;
  char *event_id, *column, *type, *code;
  char *observed; /* "" when !has_observed */
  int has_observed;
  char *message;
} job_cell_t;

/* The store speaks plain C (these types and job_t); job_proto.h maps them to
 * batch.v1 messages. Its inputs from workers (JobResults) are read as they
 * arrive. */
typedef struct {
  char job_id[40];
  char *tenant_id, *model_id, *model_name, *file_name, *format, *separator, *topic, *parent_job_id, *error;
  char *encoding; /* the upload's encoding; its rows are stored converted to UTF-8 */
  char *header;
  size_t header_len;
  int64_t schema_version;
  /* The model's schema at schema_version, stored at create (job_store_create
   * reads it, NULL = ""); not loaded by job_store_get/list: see
   * job_store_schema. */
  char *schema_json;
  int state; /* Batch__V1__JobState */
  int64_t total, success, errors;
  int64_t created_at, updated_at, started_at, finished_at;
  int upload_done;
  int dry_run;           /* validated and counted only: no event published */
  int halted;            /* FAILED by its error budget: its rows are skipped */
  int has_max_errors, has_max_error_rate; /* error budget (0 = none: a zeroed job_t has none) */
  int64_t max_errors;                     /* rows rejected allowed */
  double max_error_rate;                  /* 0..1 */
  /* Loaded by job_store_get/list (owned; job_free): warnings and the three
   * largest error summary entries (job_to_proto maps them). */
  job_warn_t *warnings;
  size_t n_warnings;
  job_summary_t *top_errors;
  size_t n_top_errors;
} job_t;

/* A warning found at upload (header check, unterminated quote). */
typedef struct {
  const char *code, *column, *message;
} job_warning_t;

typedef struct job_store job_store_t;

/* Called with the store's lock held whenever a job's state or counters may
 * have changed (results counted, upload finished or committed, failed,
 * cancelled): must be quick and must not call the store. */
typedef void (*job_store_change_fn)(void *ud, const char *job_id);
/* Sets (fn NULL: clears) the change hook. Any thread. */
void job_store_set_watch(job_store_t *st, job_store_change_fn fn, void *ud);

/* A job whose rows are all counted and whose events may not be readable yet
 * (Kafka writes a transaction's markers after answering its commit). */
typedef struct {
  char job_id[64];
  char topic[256];
} job_settling_t;

/* With a settle hook, a job that published events does not become final when
 * its last row is counted: it is marked settling, `fn` is called (store lock
 * held: only signal another thread), and job_store_finish_settled sets the
 * final state once its events are readable (finalizer.h). Without one (NULL,
 * the default) jobs become final at once. */
void job_store_set_settle(job_store_t *st, job_store_change_fn fn, void *ud);
/* The settling jobs (at most 10,000), in *out (caller frees). 0 or -1. */
int job_store_settling(job_store_t *st, job_settling_t **out, size_t *n, bok_err_t *err);
/* Sets the final state of a settling job (no-op for any other). */
int job_store_finish_settled(job_store_t *st, const char *id, bok_err_t *err);

job_store_t *job_store_open(const char *path, bok_err_t *err);
void job_store_close(job_store_t *st);
/* Jobs per state (index = Batch__V1__JobState), for metrics; doubles as the
 * readiness probe of the database. 0 ok, -1 (err set). */
#define JOB_STORE_NSTATES 7
int job_store_count_by_state(job_store_t *st, int64_t counts[JOB_STORE_NSTATES], bok_err_t *err);
/* Jobs still uploading when the service stopped become FAILED. Returns how many. */
int job_store_fail_interrupted(job_store_t *st);

/* Inserts a PENDING, uploading job (j->job_id, created_at filled in). */
int job_store_create(job_store_t *st, job_t *j, bok_err_t *err);
/* tenant NULL = any tenant (worker-facing). NOT_FOUND if absent. */
/* Sets the format of a job whose format was found in its content. */
int job_store_set_format(job_store_t *st, const char *id, const char *format, bok_err_t *err);
int job_store_get(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err);
/* As job_store_get, for GetJob: the last committed state, read on a
 * connection of its own (WAL snapshot) that never waits for the store's lock
 * while results are being written. Not for readers that must see a change
 * whose hook (job_store_set_watch) just fired: that change may not be
 * committed yet; they use job_store_get, which waits for the writer. Any
 * thread. */
int job_store_get_committed(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err);
/* The schema stored with job `id` (any tenant) in *json (malloc'ed; "" for a
 * job stored before schemas were kept with jobs). 0, or -1 (NOT_FOUND,
 * UNAVAILABLE). Any thread. */
int job_store_schema(job_store_t *st, const char *id, char **json, bok_err_t *err);
int job_store_list(job_store_t *st, const char *tenant, int state, int limit, job_t **out, size_t *n, bok_err_t *err);
void job_free(job_t *j);
void job_list_free(job_t *j, size_t n);

/* Upload end: header, total, upload_done=1, then completion check. */
int job_store_finish_upload(job_store_t *st, const char *id, const char *header, size_t hlen, int64_t total,
                            bok_err_t *err);
/* A worker began the job's first batch (it asked for the job's spec): sets
 * started_at -- SPEC 8 "first processing", the end of waiting_ms -- once,
 * for a PENDING or RUNNING job; the state stays as it is (PENDING until a
 * row is counted). 0 (also when nothing changed), or -1 (err). Any thread. */
int job_store_mark_started(job_store_t *st, const char *id, bok_err_t *err);
/* Job-level failure (no header, broken upload ...): FAILED + error. */
int job_store_fail(job_store_t *st, const char *id, const char *error, bok_err_t *err);
/* PENDING/RUNNING -> CANCELLED; CONFLICT when already finished. */
int job_store_cancel(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err);

/* Records one job's results. Rows already processed are ignored. Returns 1
 * if the job is cancelled (results ignored, nothing more is to be published),
 * 0 if recorded (or the job finished: nothing to record), -1 err. */
int job_store_report(job_store_t *st, const Batch__V1__JobResults *res, bok_err_t *err);

/* ---- the commit protocol (job_ledger.c, docs/GUARANTEES.md) ---- */

/* A rows-topic message as written by the job service. */
typedef struct {
  int64_t first_row, last_row, rows;
  int32_t partition;
  int64_t offset;
} job_msg_t;

/* Before the rows transaction commits, in one SQLite transaction: header,
 * total, the messages written and the rows the job service itself rejected
 * (`malformed`, per-row form, may be NULL); the upload becomes "committing"
 * (its outcome unknown until job_store_commit_outcome). Workers can read the
 * header as soon as they can read a row. */
int job_store_prepare_commit(job_store_t *st, const char *id, const char *header, size_t hlen, int64_t total,
                             const job_msg_t *msgs, size_t n, const Batch__V1__JobResults *malformed,
                             const job_warning_t *warnings, size_t nwarn, bok_err_t *err);
/* The rows transaction's outcome: committed -> the upload is done (the job
 * may finish); not -> FAILED with `error`. A job no longer committing is left
 * alone (0). */
int job_store_commit_outcome(job_store_t *st, const char *id, int committed, const char *error, bok_err_t *err);
/* Uploads whose outcome is unknown (the service died or Kafka failed inside
 * the commit): job id and one of its messages; partition -1 = no message. */
typedef struct {
  char job_id[40];
  int32_t partition;
  int64_t offset;
} job_committing_t;
int job_store_committing(job_store_t *st, job_committing_t **out, size_t *n, bok_err_t *err);

/* A worker's results for its open Kafka transaction: checked against the
 * messages the job service wrote (INVALID when a message, its row count or
 * its rejected rows do not match; nothing is recorded then) and staged, not
 * counted. `group` is the worker's consumer group. Returns 1 if the job is
 * cancelled, 0 staged (or the job is final: nothing to do), -1 err. */
int job_store_stage(job_store_t *st, const Batch__V1__JobResults *res, const char *group, bok_err_t *err);
/* The worker's transaction covering (job, first_row) committed: its staged
 * results count now. Idempotent; 0 also when nothing is staged. */
int job_store_confirm(job_store_t *st, const char *job_id, int64_t first_row, bok_err_t *err);
/* job_store_confirm of n messages (job_ids[i], first_rows[i]), in order, in
 * one SQLite transaction (one write instead of n): all counted, or on an
 * error none (the resolver counts them later, as after a lost confirm). */
int job_store_confirm_many(job_store_t *st, const char *const *job_ids, const int64_t *first_rows, size_t n,
                           bok_err_t *err);
/* Staged results older than `before_ms` (wall clock) of unfinished jobs, with
 * their message's place, for resolution against committed offsets. Also
 * drops staged results of finished jobs. */
typedef struct {
  char job_id[40];
  int64_t first_row;
  char group[128];
  int32_t partition;
  int64_t offset;
} job_staged_t;
int job_store_staged(job_store_t *st, int64_t before_ms, job_staged_t **out, size_t *n, bok_err_t *err);

/* Rejected cells of rows > after_row, at most `limit` rows (0: 1000), in
 * row then cell order; *out (malloc'd, NULL when none) freed with
 * job_cells_free. NOT_FOUND for an unknown job / another tenant's. */
int job_store_rejected(job_store_t *st, const char *tenant, const char *id, int limit, int64_t after_row,
                       job_cell_t **out, size_t *n, bok_err_t *err);
void job_cells_free(job_cell_t *c, size_t n);

/* The job's error summary, largest count first (ties: first_row), at most
 * `limit` entries (0 = all). Entries are malloc'd; free with
 * job_summary_free. NOT_FOUND for an unknown job / another tenant's. */
int job_store_summary(job_store_t *st, const char *tenant, const char *id, int limit, job_summary_t **out,
                      size_t *n, bok_err_t *err);
void job_summary_free(job_summary_t *e, size_t n);

/* One page of the rejected rows as a file (ReadRejectedRows): the raw rows
 * with number > after_row in row order, each ending with "\n", at most
 * `limit` rows (0 = 1000) and about `max_bytes`; CSV pages from row 0 start
 * with the job's header. annotate adds `_row` and `_errors` (CSV: two more
 * fields; NDJSON: two more keys). `out` is appended to. */
typedef struct {
  int64_t last_row;
  int rows;
  int done;
  char format[8];
} job_page_t;
int job_store_rejected_file_page(job_store_t *st, const char *tenant, const char *id, int64_t after_row, int limit,
                                 size_t max_bytes, int annotate, bok_buf_t *out, job_page_t *page, bok_err_t *err);

/* The FAILED job's error when its budget is exceeded (SPEC 12), e.g.
 * "error budget exceeded: 1,204 of the first 5,000 rows rejected (limit 10%);
 * 3,796 events were already published". by_rate: the rate limit tripped
 * (else max_errors). */
void job_budget_message(int64_t rejected, int64_t processed, int by_rate, double rate, int64_t max_errors,
                        int64_t published, int dry_run, char *out, size_t cap);

/* Calls fn for each rejected row of a job (row number, raw bytes), in order. */
typedef int (*job_row_fn)(void *ud, int64_t row, const void *raw, size_t len);
int job_store_each_rejected_row(job_store_t *st, const char *id, job_row_fn fn, void *ud, bok_err_t *err);

#endif
