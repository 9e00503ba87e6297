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
#include "bok/rpc.h"

typedef struct {
  char job_id[40];
  char *tenant_id, *model_id, *model_name, *file_name, *format, *separator, *topic, *parent_job_id, *error;
  char *header;
  size_t header_len;
  int64_t schema_version;
  int state; /* Batch__V1__JobState */
  int64_t total, success, errors;
  int64_t created_at, updated_at, started_at, finished_at;
  int upload_done;
} job_t;

typedef struct job_store job_store_t;

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
int job_store_get(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err);
int job_store_list(job_store_t *st, const char *tenant, int state, int limit, job_t **out, size_t *n, bok_err_t *err);
void job_free(job_t *j);
void job_list_free(job_t *j, size_t n);
void job_to_proto(const job_t *j, Batch__V1__Job *out, int64_t now);

/* Upload end: header, total, upload_done=1, then completion check. */
int job_store_finish_upload(job_store_t *st, const char *id, const char *header, size_t hlen, int64_t total,
                            bok_err_t *err);
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
                             bok_err_t *err);
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

/* Rejected cells of rows > after_row, at most `limit` rows. */
int job_store_rejected(job_store_t *st, const char *tenant, const char *id, int limit, int64_t after_row,
                       Batch__V1__ListRejectedResponse *out, bok_err_t *err);
void job_rejected_free(Batch__V1__ListRejectedResponse *r);

/* Calls fn for each rejected row of a job (row number, raw bytes), in order. */
typedef int (*job_row_fn)(void *ud, int64_t row, const void *raw, size_t len);
int job_store_each_rejected_row(job_store_t *st, const char *id, job_row_fn fn, void *ud, bok_err_t *err);

#endif
