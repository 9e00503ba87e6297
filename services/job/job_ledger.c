/* job_ledger.c -- the job store's half of the exactly-once protocol
 * (job_store.h "the commit protocol", docs/GUARANTEES.md).
 *
 * Uploads: the messages written to the rows topic (row_messages) and the
 * header are stored before the rows transaction commits; the job is then
 * "committing" until its outcome is stored. Worker results: checked against
 * row_messages, then staged (one packed JobResults per message) and counted
 * only when the worker's transaction is known to have committed.
 *
 * Thread-safety: every function takes the store mutex; any thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/store.h"
#include "bok/util.h"
#include "job_store_int.h"

static int exec(job_store_t *st, const char *sql) { return sqlite3_exec(st->s.db, sql, NULL, NULL, NULL); }

static int finish_txn(job_store_t *st, int ret, bok_err_t *err) {
  if (ret == 0) return bok_store_commit(st->s.db, "job", err); /* sets err, rolls back on failure */
  if (!err->msg[0]) js_db_fail(st, err);
  bok_store_rollback(st->s.db);
  return -1;
}

/* ---- uploads ------------------------------------------------------------- */

static int insert_msgs(job_store_t *st, const char *id, const job_msg_t *m, size_t n) {
  sqlite3_stmt *s = js_prep(st, "INSERT OR REPLACE INTO row_messages(job_id,first_row,last_row,rows,part,off)"
                                " VALUES(?1,?2,?3,?4,?5,?6)");
  int ret = 0;
  for (size_t i = 0; i < n && ret == 0; i++) {
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, m[i].first_row);
    sqlite3_bind_int64(s, 3, m[i].last_row);
    sqlite3_bind_int64(s, 4, m[i].rows);
    sqlite3_bind_int(s, 5, m[i].partition);
    sqlite3_bind_int64(s, 6, m[i].offset);
    if (sqlite3_step(s) != SQLITE_DONE) ret = -1;
  }
  js_done(st, s);
  return ret;
}

static int insert_warnings(job_store_t *st, const char *id, const job_warning_t *w, size_t n) {
  if (!n) return 0;
  sqlite3_stmt *s = js_prep(st, "INSERT OR REPLACE INTO job_warnings(job_id,idx,code,col,message) VALUES(?1,?2,?3,?4,?5)");
  int ret = 0;
  for (size_t i = 0; i < n && ret == 0; i++) {
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (int64_t)i);
    sqlite3_bind_text(s, 3, w[i].code, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, w[i].column ? w[i].column : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, w[i].message, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) ret = -1;
  }
  js_done(st, s);
  return ret;
}

int job_store_prepare_commit(job_store_t *st, const char *id, const char *header, size_t hlen, int64_t total,
                             const job_msg_t *msgs, size_t n, const Batch__V1__JobResults *malformed,
                             const job_warning_t *warnings, size_t nwarn, bok_err_t *err) {
  bok_err_clear(err);
  pthread_mutex_lock(&st->s.mu);
  bok_store_begin(st->s.db);
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET header=?2, total=?3, upload_done=?4, updated_at=?5 WHERE job_id=?1");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(s, 2, header ? header : "", (int)hlen, SQLITE_STATIC);
  sqlite3_bind_int64(s, 3, total);
  sqlite3_bind_int(s, 4, UPLOAD_COMMITTING);
  sqlite3_bind_int64(s, 5, bok_now_ms());
  int ret = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
  js_done(st, s);
  if (ret == 0) ret = insert_msgs(st, id, msgs, n);
  if (ret == 0) ret = insert_warnings(st, id, warnings, nwarn);
  /* counted only while the job runs: a job cancelled during its upload stays cancelled */
  int state = job_state_locked(st, id);
  if (ret == 0 && malformed && malformed->n_rejected && (state == S_PENDING || state == S_RUNNING))
    ret = job_count_locked(st, malformed);
  ret = finish_txn(st, ret, err);
  js_changed(st, id);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_commit_outcome(job_store_t *st, const char *id, int committed, const char *error, bok_err_t *err) {
  bok_err_clear(err);
  pthread_mutex_lock(&st->s.mu);
  int64_t now = bok_now_ms();
  sqlite3_stmt *s = committed
                        ? js_prep(st, "UPDATE jobs SET upload_done=1, updated_at=?2 WHERE job_id=?1 AND upload_done=2")
                        : js_prep(st, "UPDATE jobs SET upload_done=1, state=?3, error=?4, finished_at=?2, updated_at=?2"
                                      " WHERE job_id=?1 AND upload_done=2 AND state IN (1,2)");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, now);
  if (!committed) {
    sqlite3_bind_int(s, 3, S_FAILED);
    sqlite3_bind_text(s, 4, error ? error : "Kafka unavailable", -1, SQLITE_STATIC);
  }
  int ret = sqlite3_step(s) == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  if (ret == 0 && committed) js_maybe_finish(st, id, now);
  js_changed(st, id);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_committing(job_store_t *st, job_committing_t **out, size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "SELECT j.job_id, m.part, m.off FROM jobs j LEFT JOIN row_messages m"
                                " ON m.job_id=j.job_id AND m.first_row=(SELECT max(first_row) FROM row_messages"
                                " WHERE job_id=j.job_id) WHERE j.upload_done=2 AND j.state IN (1,2) LIMIT 1000");
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      *out = realloc(*out, cap * sizeof **out);
    }
    job_committing_t *c = &(*out)[(*n)++];
    snprintf(c->job_id, sizeof c->job_id, "%s", (const char *)sqlite3_column_text(s, 0));
    c->partition = sqlite3_column_type(s, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 1);
    c->offset = sqlite3_column_int64(s, 2);
  }
  int ret = rc == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

/* ---- worker results: checked, staged, confirmed ---------------------------- */

static int bad(bok_err_t *err, const char *job, const char *what, long long a) {
  return bok_err_set(err, BOK_ERR_INVALID, "report for job %s refused: %s (%lld)", job, what, a);
}

/* Index of the batch of `res` holding `row`, or -1. */
static long batch_of(const Batch__V1__JobResults *res, int64_t row) {
  for (size_t k = 0; k < res->n_batches; k++)
    if (row >= res->batches[k]->first_row && row <= res->batches[k]->last_row) return (long)k;
  return -1;
}

/* One batch against the message the job service wrote. */
static int check_batch(job_store_t *st, const Batch__V1__JobResults *res, size_t k, sqlite3_stmt *q, bok_err_t *err) {
  const Batch__V1__BatchResult *b = res->batches[k];
  if (b->rows <= 0 || b->valid < 0 || b->valid > b->rows || b->last_row < b->first_row)
    return bad(err, res->job_id, "impossible counts for the message at row", (long long)b->first_row);
  for (size_t i = 0; i < k; i++)
    if (res->batches[i]->first_row == b->first_row) return bad(err, res->job_id, "message listed twice", b->first_row);
  sqlite3_reset(q);
  sqlite3_bind_text(q, 1, res->job_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, b->first_row);
  if (sqlite3_step(q) != SQLITE_ROW) return bad(err, res->job_id, "no such rows message", (long long)b->first_row);
  if (sqlite3_column_int64(q, 0) != b->last_row || sqlite3_column_int64(q, 1) != b->rows)
    return bad(err, res->job_id, "rows do not match the message at row", (long long)b->first_row);
  int64_t rejected = 0, prev = b->first_row - 1;
  for (size_t i = 0; i < res->n_rejected; i++) {
    const Batch__V1__RowRejection *r = res->rejected[i];
    if (r->row < b->first_row || r->row > b->last_row) continue;
    if (r->row <= prev || r->n_cells == 0) return bad(err, res->job_id, "rejected row out of order or empty", r->row);
    prev = r->row;
    rejected++;
  }
  if (rejected != b->rows - b->valid)
    return bad(err, res->job_id, "valid + rejected differ from the message's rows at row", (long long)b->first_row);
  (void)st;
  return 0;
}

static int check_report(job_store_t *st, const Batch__V1__JobResults *res, bok_err_t *err) {
  if (res->n_valid_rows) return bad(err, res->job_id, "per-row results are not accepted", (long long)res->n_valid_rows);
  for (size_t i = 0; i < res->n_rejected; i++)
    if (batch_of(res, res->rejected[i]->row) < 0) return bad(err, res->job_id, "rejected row outside every message", res->rejected[i]->row);
  sqlite3_stmt *q = js_prep(st, "SELECT last_row, rows FROM row_messages WHERE job_id=?1 AND first_row=?2");
  int ret = 0;
  for (size_t k = 0; k < res->n_batches && ret == 0; k++) ret = check_batch(st, res, k, q, err);
  js_done(st, q);
  return ret;
}

/* Packs batch k of res with its rejected rows; caller frees. */
static uint8_t *pack_one(const Batch__V1__JobResults *res, size_t k, size_t *len) {
  Batch__V1__JobResults one = BATCH__V1__JOB_RESULTS__INIT;
  one.job_id = res->job_id;
  Batch__V1__BatchResult *b = res->batches[k];
  one.n_batches = 1;
  one.batches = &b;
  Batch__V1__RowRejection **rej = malloc((res->n_rejected ? res->n_rejected : 1) * sizeof *rej);
  for (size_t i = 0; i < res->n_rejected; i++)
    if (res->rejected[i]->row >= b->first_row && res->rejected[i]->row <= b->last_row) rej[one.n_rejected++] = res->rejected[i];
  one.rejected = rej;
  *len = batch__v1__job_results__get_packed_size(&one);
  uint8_t *buf = malloc(*len ? *len : 1);
  batch__v1__job_results__pack(&one, buf);
  free(rej);
  return buf;
}

static int stage_batches(job_store_t *st, const Batch__V1__JobResults *res, const char *group) {
  sqlite3_stmt *done = js_prep(st, "SELECT 1 FROM processed_batches WHERE job_id=?1 AND first_row=?2");
  sqlite3_stmt *ins = js_prep(st, "INSERT OR REPLACE INTO staged(job_id,first_row,grp,results,staged_at)"
                                  " VALUES(?1,?2,?3,?4,?5)");
  int ret = 0;
  int64_t now = bok_now_ms();
  for (size_t k = 0; k < res->n_batches && ret == 0; k++) {
    sqlite3_reset(done);
    sqlite3_bind_text(done, 1, res->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(done, 2, res->batches[k]->first_row);
    if (sqlite3_step(done) == SQLITE_ROW) continue; /* counted already: a redelivery */
    size_t len;
    uint8_t *buf = pack_one(res, k, &len);
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, res->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, res->batches[k]->first_row);
    sqlite3_bind_text(ins, 3, group ? group : "", -1, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 4, buf, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 5, now);
    if (sqlite3_step(ins) != SQLITE_DONE) ret = -1;
    free(buf);
  }
  js_done(st, done);
  js_done(st, ins);
  return ret;
}

/* 1 when the job was stopped by its error budget. */
static int halted_locked(job_store_t *st, const char *id) {
  sqlite3_stmt *q = js_prep(st, "SELECT halted FROM jobs WHERE job_id=?1");
  sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
  int h = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0);
  js_done(st, q);
  return h;
}

int job_store_stage(job_store_t *st, const Batch__V1__JobResults *res, const char *group, bok_err_t *err) {
  bok_err_clear(err);
  pthread_mutex_lock(&st->s.mu);
  int ret = 0;
  int state = job_state_locked(st, res->job_id);
  if (state < 0) {
    ret = bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  } else if (state == S_CANCELLED || (state == S_FAILED && halted_locked(st, res->job_id))) {
    ret = 1; /* cancelled, or stopped by its error budget: skip its rows */
  } else if (state == S_PENDING || state == S_RUNNING) {
    ret = check_report(st, res, err);
    if (ret == 0) {
      bok_store_begin(st->s.db);
      /* A worker read this job's rows read_committed: its upload committed. */
      sqlite3_stmt *u = js_prep(st, "UPDATE jobs SET upload_done=1 WHERE job_id=?1 AND upload_done=2");
      sqlite3_bind_text(u, 1, res->job_id, -1, SQLITE_STATIC);
      ret = sqlite3_step(u) == SQLITE_DONE ? 0 : -1;
      js_done(st, u);
      if (ret == 0) ret = stage_batches(st, res, group);
      ret = finish_txn(st, ret, err);
    }
  } /* else finished: every row is counted; a redelivered message changes nothing */
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

static void drop_staged(job_store_t *st, const char *job_id, int64_t first_row) {
  sqlite3_stmt *d = js_prep(st, "DELETE FROM staged WHERE job_id=?1 AND first_row=?2");
  sqlite3_bind_text(d, 1, job_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(d, 2, first_row);
  sqlite3_step(d);
  js_done(st, d);
}

/* Unpacked staged results of (job, first_row), or NULL. */
static Batch__V1__JobResults *load_staged(job_store_t *st, const char *job_id, int64_t first_row) {
  sqlite3_stmt *q = js_prep(st, "SELECT results FROM staged WHERE job_id=?1 AND first_row=?2");
  sqlite3_bind_text(q, 1, job_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, first_row);
  Batch__V1__JobResults *res = NULL;
  if (sqlite3_step(q) == SQLITE_ROW)
    res = batch__v1__job_results__unpack(NULL, (size_t)sqlite3_column_bytes(q, 0), sqlite3_column_blob(q, 0));
  js_done(st, q);
  return res;
}

/* Counts the staged results of (job, first_row) and drops them; mu held,
 * inside a transaction. 0 ok, -1 SQLite error. */
static int confirm_locked(job_store_t *st, const char *job_id, int64_t first_row) {
  int state = job_state_locked(st, job_id);
  int ret = 0;
  if (state == S_PENDING || state == S_RUNNING) {
    Batch__V1__JobResults *res = load_staged(st, job_id, first_row);
    if (res) {
      ret = job_count_locked(st, res);
      batch__v1__job_results__free_unpacked(res, NULL);
    }
  }
  if (ret == 0) drop_staged(st, job_id, first_row);
  return ret;
}

int job_store_confirm(job_store_t *st, const char *job_id, int64_t first_row, bok_err_t *err) {
  return job_store_confirm_many(st, &job_id, &first_row, 1, err);
}

int job_store_confirm_many(job_store_t *st, const char *const *job_ids, const int64_t *first_rows, size_t n,
                           bok_err_t *err) {
  bok_err_clear(err);
  pthread_mutex_lock(&st->s.mu);
  int ret = 0;
  bok_store_begin(st->s.db);
  for (size_t i = 0; i < n && ret == 0; i++) ret = confirm_locked(st, job_ids[i], first_rows[i]);
  ret = finish_txn(st, ret, err);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_staged(job_store_t *st, int64_t before_ms, job_staged_t **out, size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  exec(st, "DELETE FROM staged WHERE job_id IN (SELECT job_id FROM jobs WHERE state NOT IN (1,2))");
  sqlite3_stmt *s = js_prep(st, "SELECT s.job_id, s.first_row, s.grp, m.part, m.off FROM staged s"
                                " JOIN row_messages m ON m.job_id=s.job_id AND m.first_row=s.first_row"
                                " WHERE s.staged_at < ?1 ORDER BY s.grp, m.part LIMIT 20000");
  sqlite3_bind_int64(s, 1, before_ms);
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      *out = realloc(*out, cap * sizeof **out);
    }
    job_staged_t *x = &(*out)[(*n)++];
    snprintf(x->job_id, sizeof x->job_id, "%s", (const char *)sqlite3_column_text(s, 0));
    x->first_row = sqlite3_column_int64(s, 1);
    snprintf(x->group, sizeof x->group, "%s", (const char *)sqlite3_column_text(s, 2));
    x->partition = sqlite3_column_int(s, 3);
    x->offset = sqlite3_column_int64(s, 4);
  }
  int ret = rc == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}
