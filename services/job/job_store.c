/* job_store.c -- durable jobs (job_store.h): SQLite schema (opened through
 * lib/store), job rows with the schema their rows are validated with, the
 * counting of results (job_count_locked: counters, rejected rows, the error
 * summary, the error budget), rejected rows as pages and as a file. Answers
 * are plain C records; job_proto.c maps them to batch.v1 messages. */
#include "job_store.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bok/csv.h"
#include "bok/store.h"
#include "bok/util.h"
#include "job_store_int.h"


/* Opened with journal_mode=WAL, synchronous=NORMAL (bok_store_open). */
static const char *SCHEMA_SQL =
    "CREATE TABLE IF NOT EXISTS jobs("
    " job_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, model_id TEXT NOT NULL, model_name TEXT NOT NULL,"
    " file_name TEXT NOT NULL, format TEXT NOT NULL, separator TEXT NOT NULL, topic TEXT NOT NULL,"
    " schema_version INTEGER NOT NULL, header BLOB, state INTEGER NOT NULL, total INTEGER NOT NULL DEFAULT 0,"
    " success INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, started_at INTEGER NOT NULL DEFAULT 0, finished_at INTEGER NOT NULL DEFAULT 0,"
    " parent_job_id TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', upload_done INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs(tenant_id, created_at);"
    "CREATE TABLE IF NOT EXISTS processed(job_id TEXT NOT NULL, row INTEGER NOT NULL,"
    " PRIMARY KEY(job_id, row)) WITHOUT ROWID;"
    /* Rows-topic messages already counted (per-message reports): one row per
     * ~500 data rows. */
    "CREATE TABLE IF NOT EXISTS processed_batches(job_id TEXT NOT NULL, first_row INTEGER NOT NULL,"
    " PRIMARY KEY(job_id, first_row)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rejected(job_id TEXT NOT NULL, row INTEGER NOT NULL, raw BLOB,"
    " PRIMARY KEY(job_id, row)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rejected_cells(job_id TEXT NOT NULL, row INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " event_id TEXT, col TEXT, type TEXT, code TEXT, observed TEXT, has_observed INTEGER, message TEXT,"
    " PRIMARY KEY(job_id, row, idx)) WITHOUT ROWID;"
    /* Every rows-topic message the job service wrote (checked reports,
     * commit resolution): stored before the upload transaction commits. */
    "CREATE TABLE IF NOT EXISTS row_messages(job_id TEXT NOT NULL, first_row INTEGER NOT NULL,"
    " last_row INTEGER NOT NULL, rows INTEGER NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,"
    " PRIMARY KEY(job_id, first_row)) WITHOUT ROWID;"
    /* Worker results whose Kafka transaction is not known to have committed
     * yet: one per rows-topic message, the packed JobResults of that message. */
    "CREATE TABLE IF NOT EXISTS staged(job_id TEXT NOT NULL, first_row INTEGER NOT NULL, grp TEXT NOT NULL,"
    " results BLOB NOT NULL, staged_at INTEGER NOT NULL, PRIMARY KEY(job_id, first_row)) WITHOUT ROWID;"
    /* The error summary, kept as results are counted (job_count_locked):
     * one row per (code, column). */
    "CREATE TABLE IF NOT EXISTS error_summary(job_id TEXT NOT NULL, code TEXT NOT NULL, col TEXT NOT NULL,"
    " type TEXT NOT NULL, count INTEGER NOT NULL, first_row INTEGER NOT NULL, example TEXT, has_example INTEGER,"
    " message TEXT, PRIMARY KEY(job_id, code, col)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS job_warnings(job_id TEXT NOT NULL, idx INTEGER NOT NULL, code TEXT NOT NULL,"
    " col TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY(job_id, idx)) WITHOUT ROWID;";

/* Columns added after the first release: added to an older database at open
 * (an "already exists" error is expected and ignored). */
static const char *const MIGRATIONS[] = {
    "ALTER TABLE jobs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN max_errors INTEGER NOT NULL DEFAULT -1",
    "ALTER TABLE jobs ADD COLUMN max_error_rate REAL NOT NULL DEFAULT -1",
    "ALTER TABLE jobs ADD COLUMN halted INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN encoding TEXT NOT NULL DEFAULT 'utf-8'",
    "ALTER TABLE jobs ADD COLUMN schema_json TEXT NOT NULL DEFAULT ''",
    /* 1: every row counted, the job waits for its events to be readable
     * (finalizer.c); the final state is set once they are. */
    "ALTER TABLE jobs ADD COLUMN settling INTEGER NOT NULL DEFAULT 0",
    NULL,
};

int js_db_fail(job_store_t *st, bok_err_t *err) {
  return bok_store_fail(st->s.db, "job", err);
}

static void reader_open(js_reader_t *rd, const char *path);
static void reader_close(js_reader_t *rd);
static void stmts_close(job_store_t *st);

job_store_t *job_store_open(const char *path, bok_err_t *err) {
  bok_store_opts_t o = {SCHEMA_SQL, MIGRATIONS, 0, 5000};
  job_store_t *st = bok_store_new(sizeof(job_store_t), path, &o, err);
  if (st) reader_open(&st->rd, path); /* after the schema exists */
  return st;
}

void job_store_close(job_store_t *st) {
  if (!st) return;
  reader_close(&st->rd);
  stmts_close(st);
  bok_store_delete(st);
}

/* The cache entry of sql: the caller's pointer first, then the text. */
static js_stmt_t *stmt_find(job_store_t *st, const char *sql) {
  for (size_t i = 0; i < st->nstmts; i++)
    if (st->stmts[i].key == sql && strcmp(st->stmts[i].sql, sql) == 0) return &st->stmts[i];
  for (size_t i = 0; i < st->nstmts; i++)
    if (strcmp(st->stmts[i].sql, sql) == 0) return &st->stmts[i];
  return NULL;
}

sqlite3_stmt *js_prep(job_store_t *st, const char *sql) {
  js_stmt_t *e = stmt_find(st, sql);
  if (e && !e->busy) {
    e->busy = 1;
    return e->s;
  }
  if (e || st->nstmts == JS_STMT_CACHE) return bok_store_prep(st->s.db, sql); /* in use, or cache full */
  sqlite3_stmt *s = NULL;
  char *copy = strdup(sql);
  if (!copy || sqlite3_prepare_v3(st->s.db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
    free(copy);
    sqlite3_finalize(s);
    return NULL;
  }
  st->stmts[st->nstmts++] = (js_stmt_t){sql, copy, s, 1};
  return s;
}

void js_done(job_store_t *st, sqlite3_stmt *s) {
  if (!s) return;
  for (size_t i = 0; i < st->nstmts; i++)
    if (st->stmts[i].s == s) {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
      st->stmts[i].busy = 0;
      return;
    }
  sqlite3_finalize(s);
}

static void stmts_close(job_store_t *st) {
  for (size_t i = 0; i < st->nstmts; i++) {
    sqlite3_finalize(st->stmts[i].s);
    free(st->stmts[i].sql);
  }
  st->nstmts = 0;
}

int job_store_fail_interrupted(job_store_t *st) {
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET state=?1, error='upload interrupted (service restarted)',"
                             " finished_at=?2, updated_at=?2 WHERE upload_done=0 AND state IN (1,2)");
  sqlite3_bind_int(s, 1, S_FAILED);
  sqlite3_bind_int64(s, 2, bok_now_ms());
  sqlite3_step(s);
  js_done(st, s);
  int n = sqlite3_changes(st->s.db);
  pthread_mutex_unlock(&st->s.mu);
  return n;
}

int job_store_create(job_store_t *st, job_t *j, bok_err_t *err) {
  if (!j->job_id[0]) bok_uuid_new(j->job_id);
  j->created_at = j->updated_at = bok_now_ms();
  j->state = S_PENDING;
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st,
                         "INSERT INTO jobs(job_id,tenant_id,model_id,model_name,file_name,format,separator,topic,"
                         "schema_version,header,state,created_at,updated_at,parent_job_id,total,upload_done,"
                         "dry_run,max_errors,max_error_rate,encoding,schema_json)"
                         " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?12,?13,?14,0,?15,?16,?17,?18,?19)");
  bok_store_bind(s, "tttTTtttIbiITIiIdtT", j->job_id, j->tenant_id, j->model_id, j->model_name, j->file_name,
                 j->format, j->separator ? j->separator : ",", j->topic, j->schema_version, (const void *)j->header,
                 j->header_len, (int)S_PENDING, j->created_at, j->parent_job_id, j->total, j->dry_run,
                 j->has_max_errors ? j->max_errors : (int64_t)-1, j->has_max_error_rate ? j->max_error_rate : -1.0,
                 j->encoding && *j->encoding ? j->encoding : "utf-8", j->schema_json);
  int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return rc;
}

#define JOB_COLS                                                                                    \
  "job_id,tenant_id,model_id,model_name,file_name,format,separator,topic,schema_version,header,state," \
  "total,success,errors,created_at,updated_at,started_at,finished_at,parent_job_id,error,upload_done," \
  "dry_run,max_errors,max_error_rate,halted,encoding"

static void row_to_job(sqlite3_stmt *s, job_t *j) {
  memset(j, 0, sizeof *j);
  snprintf(j->job_id, sizeof j->job_id, "%s", (const char *)sqlite3_column_text(s, 0));
  j->tenant_id = bok_store_col_dup(s, 1);
  j->model_id = bok_store_col_dup(s, 2);
  j->model_name = bok_store_col_dup(s, 3);
  j->file_name = bok_store_col_dup(s, 4);
  j->format = bok_store_col_dup(s, 5);
  j->separator = bok_store_col_dup(s, 6);
  j->topic = bok_store_col_dup(s, 7);
  j->schema_version = sqlite3_column_int64(s, 8);
  j->header = bok_store_col_blob(s, 9, &j->header_len);
  j->state = sqlite3_column_int(s, 10);
  j->total = sqlite3_column_int64(s, 11);
  j->success = sqlite3_column_int64(s, 12);
  j->errors = sqlite3_column_int64(s, 13);
  j->created_at = sqlite3_column_int64(s, 14);
  j->updated_at = sqlite3_column_int64(s, 15);
  j->started_at = sqlite3_column_int64(s, 16);
  j->finished_at = sqlite3_column_int64(s, 17);
  j->parent_job_id = bok_store_col_dup(s, 18);
  j->error = bok_store_col_dup(s, 19);
  j->upload_done = sqlite3_column_int(s, 20);
  j->dry_run = sqlite3_column_int(s, 21);
  j->max_errors = sqlite3_column_int64(s, 22);
  j->has_max_errors = j->max_errors >= 0;
  j->max_error_rate = sqlite3_column_double(s, 23);
  j->has_max_error_rate = j->max_error_rate >= 0;
  j->halted = sqlite3_column_int(s, 24);
  j->encoding = bok_store_col_dup(s, 25);
}

int job_store_set_format(job_store_t *st, const char *id, const char *format, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET format=?2 WHERE job_id=?1");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, format, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return rc;
}

/* ---- warnings and the error summary ------------------------------------------ */

static void summary_row(sqlite3_stmt *s, job_summary_t *e) {
  e->code = bok_store_col_dup(s, 0);
  e->column = bok_store_col_dup(s, 1);
  e->type = bok_store_col_dup(s, 2);
  e->count = sqlite3_column_int64(s, 3);
  e->first_row = sqlite3_column_int64(s, 4);
  e->example = bok_store_col_dup(s, 5);
  e->has_example = sqlite3_column_int(s, 6);
  e->message = bok_store_col_dup(s, 7);
}

static void summary_clear(job_summary_t *e) {
  free(e->code);
  free(e->column);
  free(e->type);
  free(e->example);
  free(e->message);
}

void job_summary_free(job_summary_t *e, size_t n) {
  for (size_t i = 0; i < n; i++) summary_clear(&e[i]);
  free(e);
}

/* Makes room for one more element in *arr (n used, *cap allocated, grown
 * from `first`); 0, or -1 when memory ran out (*arr unchanged). */
static int grow(void **arr, size_t n, size_t *cap, size_t first, size_t size) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : first;
  void *p = realloc(*arr, nc * size);
  if (!p) return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

/* The summary of job `id`, largest first; mu held. 0 ok, -1 SQLite error
 * or out of memory. */
#define SUMMARY_SQL                                                                                   \
  "SELECT code,col,type,count,first_row,example,has_example,message FROM error_summary"             \
  " WHERE job_id=?1 ORDER BY count DESC, first_row, code, col LIMIT ?2"

/* Steps s (bound SUMMARY_SQL) into *out / *n. 0 ok, -1 SQLite error or out
 * of memory. */
static int summary_fill(sqlite3_stmt *s, job_summary_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (grow((void **)out, *n, &cap, 8, sizeof **out) != 0) break;
    summary_row(s, &(*out)[(*n)++]);
  }
  return rc == SQLITE_DONE ? 0 : -1;
}

static int summary_locked(job_store_t *st, const char *id, int limit, job_summary_t **out, size_t *n) {
  sqlite3_stmt *s = js_prep(st, SUMMARY_SQL);
  bok_store_bind(s, "ti", id, limit > 0 ? limit : -1);
  int rc = summary_fill(s, out, n);
  js_done(st, s);
  return rc;
}

#define WARN_SQL "SELECT code,col,message FROM job_warnings WHERE job_id=?1 ORDER BY idx"

/* Steps s (job_warnings rows, WARN_SQL) into j's warnings. */
static void warnings_fill(sqlite3_stmt *s, job_t *j) {
  size_t cap = 0;
  while (sqlite3_step(s) == SQLITE_ROW) {
    if (grow((void **)&j->warnings, j->n_warnings, &cap, 4, sizeof *j->warnings) != 0) break;
    job_warn_t *w = &j->warnings[j->n_warnings++];
    w->code = bok_store_col_dup(s, 0);
    w->column = bok_store_col_dup(s, 1);
    w->message = bok_store_col_dup(s, 2);
  }
}

/* Loads a job's warnings and top errors into j; mu held. */
static void load_diagnostics(job_store_t *st, job_t *j) {
  sqlite3_stmt *s = js_prep(st, WARN_SQL);
  bok_store_bind(s, "t", j->job_id);
  warnings_fill(s, j);
  js_done(st, s);
  summary_locked(st, j->job_id, 3, &j->top_errors, &j->n_top_errors);
}

void job_free(job_t *j) {
  if (!j) return;
  for (size_t i = 0; i < j->n_warnings; i++) {
    free(j->warnings[i].code);
    free(j->warnings[i].column);
    free(j->warnings[i].message);
  }
  free(j->warnings);
  job_summary_free(j->top_errors, j->n_top_errors);
  free(j->tenant_id);
  free(j->model_id);
  free(j->model_name);
  free(j->file_name);
  free(j->format);
  free(j->separator);
  free(j->encoding);
  free(j->topic);
  free(j->parent_job_id);
  free(j->error);
  free(j->header);
  memset(j, 0, sizeof *j);
}

void job_list_free(job_t *j, size_t n) {
  for (size_t i = 0; i < n; i++) job_free(&j[i]);
  free(j);
}

static int get_locked(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err) {
  sqlite3_stmt *s = js_prep(st, tenant ? "SELECT " JOB_COLS " FROM jobs WHERE job_id=?1 AND tenant_id=?2"
                                    : "SELECT " JOB_COLS " FROM jobs WHERE job_id=?1");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  if (tenant) sqlite3_bind_text(s, 2, tenant, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  int ret = 0;
  if (rc == SQLITE_ROW) {
    row_to_job(s, out);
    load_diagnostics(st, out);
  }
  else if (rc == SQLITE_DONE)
    ret = bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  else
    ret = js_db_fail(st, err);
  js_done(st, s);
  return ret;
}

/* ---- GetJob's reader (js_reader_t) ------------------------------------------- */

static sqlite3_stmt *reader_prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
    sqlite3_finalize(s);
    return NULL;
  }
  return s;
}

/* The summary rows of one job in key order: no ORDER BY, so no sorter (its
 * temporary b-tree, allocated and freed per call, was 40 % of GetJob's CPU). */
#define TOP_SQL                                                                                       \
  "SELECT code,col,type,count,first_row,example,has_example,message FROM error_summary WHERE job_id=?1"
#define TOP_N 3

/* SUMMARY_SQL's order: count DESC, first_row, code, col. Is row s before e? */
static int summary_before(sqlite3_stmt *s, const job_summary_t *e) {
  int64_t c = sqlite3_column_int64(s, 3), f = sqlite3_column_int64(s, 4);
  if (c != e->count) return c > e->count;
  if (f != e->first_row) return f < e->first_row;
  int k = strcmp((const char *)sqlite3_column_text(s, 0), e->code);
  if (k) return k < 0;
  return strcmp((const char *)sqlite3_column_text(s, 1), e->column) < 0;
}

/* Steps s (bound TOP_SQL) keeping the first TOP_N rows in SUMMARY_SQL's
 * order in j->top_errors (what summary_locked(..., 3, ...) gives). */
static void top_errors_fill(sqlite3_stmt *s, job_t *j) {
  job_summary_t *top = calloc(TOP_N, sizeof *top);
  size_t n = 0;
  while (top && sqlite3_step(s) == SQLITE_ROW) {
    size_t at = n;
    while (at > 0 && summary_before(s, &top[at - 1])) at--;
    if (at >= TOP_N) continue;
    if (n == TOP_N) summary_clear(&top[--n]); /* the last one drops out */
    memmove(&top[at + 1], &top[at], (n - at) * sizeof *top);
    summary_row(s, &top[at]);
    n++;
  }
  if (n == 0) {
    free(top);
    top = NULL;
  }
  j->top_errors = top;
  j->n_top_errors = n;
}

static void reader_close(js_reader_t *rd) {
  if (!rd->db) return;
  sqlite3_stmt *all[] = {rd->begin, rd->commit, rd->get, rd->get_t, rd->warn, rd->sum};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) sqlite3_finalize(all[i]);
  sqlite3_close(rd->db);
  pthread_mutex_destroy(&rd->rmu);
  memset(rd, 0, sizeof *rd);
}

/* A second connection to the file at `path` for job_store_get; on any
 * failure (or ":memory:", which would be another database) rd->db stays
 * NULL and reads go through the main connection. */
static void reader_open(js_reader_t *rd, const char *path) {
  memset(rd, 0, sizeof *rd);
  if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) return;
  if (sqlite3_open_v2(path, &rd->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    sqlite3_close(rd->db);
    rd->db = NULL;
    return;
  }
  pthread_mutex_init(&rd->rmu, NULL);
  sqlite3_busy_timeout(rd->db, 5000);
  sqlite3_exec(rd->db, "PRAGMA query_only=1", NULL, NULL, NULL);
  rd->begin = reader_prep(rd->db, "BEGIN");
  rd->commit = reader_prep(rd->db, "COMMIT");
  rd->get = reader_prep(rd->db, "SELECT " JOB_COLS " FROM jobs WHERE job_id=?1");
  rd->get_t = reader_prep(rd->db, "SELECT " JOB_COLS " FROM jobs WHERE job_id=?1 AND tenant_id=?2");
  rd->warn = reader_prep(rd->db, WARN_SQL);
  rd->sum = reader_prep(rd->db, TOP_SQL);
  if (!rd->begin || !rd->commit || !rd->get || !rd->get_t || !rd->warn || !rd->sum) reader_close(rd);
}

/* Steps one kept statement (bound by the caller) for its first row and
 * resets it; SQLite's result code of the step. */
static int reader_get_row(js_reader_t *rd, const char *tenant, const char *id, job_t *out) {
  sqlite3_stmt *s = tenant ? rd->get_t : rd->get;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  if (tenant) sqlite3_bind_text(s, 2, tenant, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    row_to_job(s, out);
    sqlite3_bind_text(rd->warn, 1, out->job_id, -1, SQLITE_STATIC);
    warnings_fill(rd->warn, out);
    sqlite3_reset(rd->warn);
    sqlite3_bind_text(rd->sum, 1, out->job_id, -1, SQLITE_STATIC);
    top_errors_fill(rd->sum, out);
    sqlite3_reset(rd->sum);
  }
  sqlite3_reset(s);
  return rc;
}

/* get_locked on the reader: the job and its diagnostics from one snapshot
 * (one read transaction). rmu held. */
static int reader_get(js_reader_t *rd, const char *tenant, const char *id, job_t *out, bok_err_t *err) {
  int ret = 0;
  if (sqlite3_step(rd->begin) != SQLITE_DONE) {
    sqlite3_reset(rd->begin);
    return bok_store_fail(rd->db, "job", err);
  }
  sqlite3_reset(rd->begin);
  int rc = reader_get_row(rd, tenant, id, out);
  if (rc == SQLITE_DONE)
    ret = bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  else if (rc != SQLITE_ROW)
    ret = bok_store_fail(rd->db, "job", err);
  sqlite3_step(rd->commit); /* ends the read transaction; nothing to fail */
  sqlite3_reset(rd->commit);
  if (sqlite3_get_autocommit(rd->db) == 0) sqlite3_exec(rd->db, "ROLLBACK", NULL, NULL, NULL);
  return ret;
}

/* GetJob's read (job_store.h): on the reader when there is one, so it never
 * queues behind s.mu (report writes, uploads). */
int job_store_get_committed(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err) {
  if (!st->rd.db) return job_store_get(st, tenant, id, out, err);
  pthread_mutex_lock(&st->rd.rmu);
  int r = reader_get(&st->rd, tenant, id, out, err);
  pthread_mutex_unlock(&st->rd.rmu);
  return r;
}

int job_store_get(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int r = get_locked(st, tenant, id, out, err);
  pthread_mutex_unlock(&st->s.mu);
  return r;
}

int job_store_schema(job_store_t *st, const char *id, char **json, bok_err_t *err) {
  *json = NULL;
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "SELECT schema_json FROM jobs WHERE job_id=?1");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s), ret = 0;
  if (rc == SQLITE_ROW)
    *json = bok_store_col_dup(s, 0);
  else
    ret = rc == SQLITE_DONE ? bok_err_set(err, BOK_ERR_NOT_FOUND, "not found") : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_list(job_store_t *st, const char *tenant, int state, int limit, job_t **out, size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "SELECT " JOB_COLS " FROM jobs WHERE tenant_id=?1 AND (?2=0 OR state=?2)"
                             " ORDER BY created_at DESC, rowid DESC LIMIT ?3");
  sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, state);
  sqlite3_bind_int(s, 3, limit > 0 ? limit : -1);
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = realloc(*out, cap * sizeof **out);
    }
    row_to_job(s, &(*out)[*n]);
    load_diagnostics(st, &(*out)[(*n)++]);
  }
  int ret = rc == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

/* The final state of a job whose rows are all counted. */
static void finish_now(job_store_t *st, const char *id, int64_t now, int only_settling) {
  sqlite3_stmt *s = js_prep(st, only_settling
                                    ? "UPDATE jobs SET state = CASE WHEN errors=0 THEN ?2 WHEN success=0 THEN ?3 ELSE ?4 END,"
                                      " finished_at=?5, updated_at=?5, settling=0,"
                                      " started_at = CASE WHEN started_at=0 THEN ?5 ELSE started_at END"
                                      " WHERE job_id=?1 AND upload_done=1 AND state IN (1,2) AND success+errors>=total"
                                      " AND settling=1"
                                    : "UPDATE jobs SET state = CASE WHEN errors=0 THEN ?2 WHEN success=0 THEN ?3 ELSE ?4 END,"
                                      " finished_at=?5, updated_at=?5, settling=0,"
                                      " started_at = CASE WHEN started_at=0 THEN ?5 ELSE started_at END"
                                      " WHERE job_id=?1 AND upload_done=1 AND state IN (1,2) AND success+errors>=total"
                                      " AND settling=0");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, S_SUCCESS);
  sqlite3_bind_int(s, 3, S_FAILED);
  sqlite3_bind_int(s, 4, S_PARTIAL);
  sqlite3_bind_int64(s, 5, now);
  sqlite3_step(s);
  js_done(st, s);
}

/* Moves a job to its final state when every row is processed. With a settle
 * hook (job_store_set_settle), a job that published events is marked
 * settling instead and the hook told: Kafka answers a commit before it has
 * written the transaction's markers, so its events may not be readable yet
 * (docs/GUARANTEES.md); job_store_finish_settled sets the state once they are. */
void js_maybe_finish(job_store_t *st, const char *id, int64_t now) {
  if (!st->on_settle) {
    finish_now(st, id, now, 0);
    return;
  }
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET settling=1, updated_at=?2 WHERE job_id=?1 AND upload_done=1"
                                " AND state IN (1,2) AND success+errors>=total AND success>0 AND dry_run=0 AND settling=0");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, now);
  int marked = sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(st->s.db) > 0;
  js_done(st, s);
  if (marked) {
    st->on_settle(st->on_settle_ud, id);
    return;
  }
  finish_now(st, id, now, 0); /* nothing published; a settling job is left to its hook */
}

void job_store_set_settle(job_store_t *st, job_store_change_fn fn, void *ud) {
  pthread_mutex_lock(&st->s.mu);
  st->on_settle = fn;
  st->on_settle_ud = ud;
  pthread_mutex_unlock(&st->s.mu);
}

int job_store_settling(job_store_t *st, job_settling_t **out, size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "SELECT job_id, topic FROM jobs WHERE settling=1 AND state IN (1,2) LIMIT 10000");
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      job_settling_t *grown = realloc(*out, cap * sizeof **out);
      if (!grown) break;
      *out = grown;
    }
    job_settling_t *x = &(*out)[(*n)++];
    snprintf(x->job_id, sizeof x->job_id, "%s", (const char *)sqlite3_column_text(s, 0));
    snprintf(x->topic, sizeof x->topic, "%s", (const char *)sqlite3_column_text(s, 1));
  }
  int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_finish_settled(job_store_t *st, const char *id, bok_err_t *err) {
  bok_err_clear(err);
  pthread_mutex_lock(&st->s.mu);
  finish_now(st, id, bok_now_ms(), 1);
  js_changed(st, id);
  pthread_mutex_unlock(&st->s.mu);
  return 0;
}

int job_store_finish_upload(job_store_t *st, const char *id, const char *header, size_t hlen, int64_t total,
                            bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int64_t now = bok_now_ms();
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET header=?2, total=?3, upload_done=1, updated_at=?4 WHERE job_id=?1");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(s, 2, header ? header : "", (int)hlen, SQLITE_STATIC);
  sqlite3_bind_int64(s, 3, total);
  sqlite3_bind_int64(s, 4, now);
  int ret = sqlite3_step(s) == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  if (ret == 0) js_maybe_finish(st, id, now);
  js_changed(st, id);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_mark_started(job_store_t *st, const char *id, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int64_t now = bok_now_ms();
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET started_at=?2, updated_at=?2 WHERE job_id=?1 AND started_at=0"
                                " AND state IN (1,2)");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, now);
  int ret = sqlite3_step(s) == SQLITE_DONE ? 0 : js_db_fail(st, err);
  int changed = ret == 0 && sqlite3_changes(st->s.db) > 0;
  js_done(st, s);
  if (changed) js_changed(st, id);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

void job_store_set_watch(job_store_t *st, job_store_change_fn fn, void *ud) {
  pthread_mutex_lock(&st->s.mu);
  st->on_change = fn;
  st->on_change_ud = ud;
  pthread_mutex_unlock(&st->s.mu);
}

int job_store_fail(job_store_t *st, const char *id, const char *error, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET state=?2, error=?3, finished_at=?4, updated_at=?4, upload_done=1"
                             " WHERE job_id=?1 AND state IN (1,2)");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, S_FAILED);
  sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 4, bok_now_ms());
  int ret = sqlite3_step(s) == SQLITE_DONE ? 0 : js_db_fail(st, err);
  js_done(st, s);
  js_changed(st, id);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

/* 1 when the job is settling: every row counted, its events committed and
 * becoming readable (finalizer.c). mu held. */
static int settling_locked(job_store_t *st, const char *id) {
  sqlite3_stmt *q = js_prep(st, "SELECT settling FROM jobs WHERE job_id=?1");
  sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
  int settling = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) != 0;
  js_done(st, q);
  return settling;
}

int job_store_cancel(job_store_t *st, const char *tenant, const char *id, job_t *out, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int ret = get_locked(st, tenant, id, out, err);
  if (ret == 0) {
    if (out->state == S_RUNNING && settling_locked(st, id)) {
      /* Nothing is left to cancel: every row is processed and its events are
       * committed. CANCELLED here would tell the user the data stopped while
       * every event becomes readable. */
      ret = bok_err_set(err, BOK_ERR_CONFLICT,
                        "job already finished processing: every row is counted and its events are committed "
                        "(it becomes %s once they are readable)",
                        out->errors > 0 ? "PARTIAL_SUCCESS" : "SUCCESS");
    } else if (out->state != S_PENDING && out->state != S_RUNNING) {
      ret = bok_err_set(err, BOK_ERR_CONFLICT, "job already finished (%s)",
                        out->state == S_CANCELLED ? "CANCELLED" : out->state == S_SUCCESS ? "SUCCESS"
                                                              : out->state == S_FAILED    ? "FAILED"
                                                                                          : "PARTIAL_SUCCESS");
    } else {
      int64_t now = bok_now_ms();
      sqlite3_stmt *s = js_prep(st, "UPDATE jobs SET state=?2, finished_at=?3, updated_at=?3 WHERE job_id=?1");
      sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
      sqlite3_bind_int(s, 2, S_CANCELLED);
      sqlite3_bind_int64(s, 3, now);
      if (sqlite3_step(s) != SQLITE_DONE) ret = js_db_fail(st, err);
      js_done(st, s);
      out->state = S_CANCELLED;
      out->finished_at = out->updated_at = now;
      js_changed(st, id);
    }
  }
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_state_locked(job_store_t *st, const char *id) {
  sqlite3_stmt *q = js_prep(st, "SELECT state FROM jobs WHERE job_id=?1");
  sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
  int state = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
  js_done(st, q);
  return state;
}

int job_store_report(job_store_t *st, const Batch__V1__JobResults *res, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int state = job_state_locked(st, res->job_id);
  if (state < 0) {
    pthread_mutex_unlock(&st->s.mu);
    return bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  }
  if (state == S_CANCELLED) {
    pthread_mutex_unlock(&st->s.mu);
    return 1;
  }
  if (state != S_PENDING && state != S_RUNNING) {
    /* Finished: every row is already counted; a redelivered batch is
     * accepted (its events still have to be published) and changes nothing. */
    pthread_mutex_unlock(&st->s.mu);
    return 0;
  }
  bok_store_begin(st->s.db);
  int ret = job_count_locked(st, res);
  if (ret == 0) {
    ret = bok_store_commit(st->s.db, "job", err);
  } else {
    js_db_fail(st, err);
    bok_store_rollback(st->s.db);
  }
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

/* ---- the error summary and the error budget (at counting time) ---------------- */

/* Rejected cells of one count, grouped by (code, column). Strings borrowed
 * from the results being counted. */
typedef struct {
  const Batch__V1__RejectedCell *first; /* cell of the lowest row */
  int64_t first_row, count;
} sum_group_t;

typedef struct {
  sum_group_t *g;
  size_t n, cap;
} sum_acc_t;

static int str_eq(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static void sum_add(sum_acc_t *a, const Batch__V1__RejectedCell *c, int64_t row) {
  for (size_t i = 0; i < a->n; i++) {
    sum_group_t *g = &a->g[i];
    if (str_eq(g->first->code, c->code) && str_eq(g->first->column, c->column)) {
      g->count++;
      if (row < g->first_row) g->first = c, g->first_row = row;
      return;
    }
  }
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 8;
    a->g = realloc(a->g, a->cap * sizeof *a->g);
  }
  a->g[a->n++] = (sum_group_t){c, row, 1};
}

/* Adds the groups to the job's summary (one upsert per code and column). */
static int sum_store(job_store_t *st, const char *job_id, const sum_acc_t *a) {
  if (!a->n) return 0;
  sqlite3_stmt *u = js_prep(
      st, "INSERT INTO error_summary(job_id,code,col,type,count,first_row,example,has_example,message)"
          " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT(job_id,code,col) DO UPDATE SET count=count+excluded.count,"
          " example=CASE WHEN excluded.first_row<first_row THEN excluded.example ELSE example END,"
          " has_example=CASE WHEN excluded.first_row<first_row THEN excluded.has_example ELSE has_example END,"
          " message=CASE WHEN excluded.first_row<first_row THEN excluded.message ELSE message END,"
          " first_row=min(first_row, excluded.first_row)");
  int ret = u ? 0 : -1;
  for (size_t i = 0; i < a->n && ret == 0; i++) {
    const Batch__V1__RejectedCell *c = a->g[i].first;
    sqlite3_reset(u);
    bok_store_bind(u, "tTTTIItiT", job_id, c->code, c->column, c->type, a->g[i].count, a->g[i].first_row,
                   c->has_observed && c->observed ? c->observed : "", (int)c->has_observed, c->message);
    if (sqlite3_step(u) != SQLITE_DONE) ret = -1;
  }
  js_done(st, u);
  return ret;
}

/* "1,234,567" */
static void fmt_thousands(int64_t v, char out[32]) {
  char d[32];
  int n = snprintf(d, sizeof d, "%lld", (long long)(v < 0 ? 0 : v));
  int o = 0;
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) out[o++] = ',';
    out[o++] = d[i];
  }
  out[o] = '\0';
}

void job_budget_message(int64_t rejected, int64_t processed, int by_rate, double rate, int64_t max_errors,
                        int64_t published, int dry_run, char *out, size_t cap) {
  char r[32], p[32], lim[48], pub[32];
  fmt_thousands(rejected, r);
  fmt_thousands(processed, p);
  if (by_rate) {
    snprintf(lim, sizeof lim, "%.4g%%", rate * 100.0);
  } else {
    char m[32];
    fmt_thousands(max_errors, m);
    snprintf(lim, sizeof lim, "%s rejected %s", m, max_errors == 1 ? "row" : "rows");
  }
  fmt_thousands(published, pub);
  if (dry_run)
    snprintf(out, cap, "error budget exceeded: %s of the first %s rows rejected (limit %s); dry run, no event published",
             r, p, lim);
  else
    snprintf(out, cap, "error budget exceeded: %s of the first %s rows rejected (limit %s); %s %s already published",
             r, p, lim, pub, published == 1 ? "event was" : "events were");
}

/* After counting: a job over its error budget becomes FAILED and halted (its
 * remaining rows are skipped like a cancelled job's). mu held, inside the
 * counting transaction. */
static int check_budget(job_store_t *st, const char *id, int64_t now) {
  sqlite3_stmt *q = js_prep(st, "SELECT success, errors, total, max_errors, max_error_rate, dry_run, state"
                                " FROM jobs WHERE job_id=?1");
  sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step(q) != SQLITE_ROW) {
    js_done(st, q);
    return 0;
  }
  int64_t ok = sqlite3_column_int64(q, 0), bad = sqlite3_column_int64(q, 1), total = sqlite3_column_int64(q, 2);
  int64_t max_errors = sqlite3_column_int64(q, 3);
  double rate = sqlite3_column_double(q, 4);
  int dry = sqlite3_column_int(q, 5), state = sqlite3_column_int(q, 6);
  js_done(st, q);
  if (state != S_PENDING && state != S_RUNNING) return 0;
  int64_t processed = ok + bad;
  int64_t from = total < 1000 ? total : 1000;
  int by_count = max_errors >= 0 && bad > max_errors;
  int by_rate = !by_count && rate >= 0 && processed > 0 && processed >= from && (double)bad > rate * (double)processed;
  if (!by_count && !by_rate) return 0;
  char msg[300];
  job_budget_message(bad, processed, by_rate, rate, max_errors, ok, dry, msg, sizeof msg);
  sqlite3_stmt *u = js_prep(st, "UPDATE jobs SET state=?2, error=?3, halted=1, finished_at=?4, updated_at=?4,"
                                " started_at = CASE WHEN started_at=0 THEN ?4 ELSE started_at END WHERE job_id=?1");
  sqlite3_bind_text(u, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(u, 2, S_FAILED);
  sqlite3_bind_text(u, 3, msg, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(u, 4, now);
  int ret = sqlite3_step(u) == SQLITE_DONE ? 0 : -1;
  js_done(st, u);
  return ret;
}

/* Marks the messages of res counted now (fresh[i]) and returns their valid
 * rows; a message counted before is skipped whole. *ret = -1 on a SQLite
 * error. */
static int64_t count_messages(job_store_t *st, const Batch__V1__JobResults *res, uint8_t *fresh, int *ret) {
  int64_t ok = 0;
  if (!res->n_batches) return 0;
  sqlite3_stmt *bi = js_prep(st, "INSERT OR IGNORE INTO processed_batches(job_id,first_row) VALUES(?1,?2)");
  for (size_t i = 0; i < res->n_batches && *ret == 0; i++) {
    const Batch__V1__BatchResult *b = res->batches[i];
    sqlite3_reset(bi);
    sqlite3_bind_text(bi, 1, res->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(bi, 2, b->first_row);
    if (sqlite3_step(bi) != SQLITE_DONE) *ret = -1;
    fresh[i] = sqlite3_changes(st->s.db) > 0;
    if (fresh[i]) ok += b->valid;
  }
  js_done(st, bi);
  return ok;
}

/* Records a row once in `processed` (per-row form); 1 when new. */
static int first_time(job_store_t *st, sqlite3_stmt *ins, const char *job_id, int64_t row, int *ret) {
  sqlite3_reset(ins);
  sqlite3_bind_text(ins, 1, job_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(ins, 2, row);
  if (sqlite3_step(ins) != SQLITE_DONE) *ret = -1;
  return sqlite3_changes(st->s.db) > 0;
}

/* Stores a rejected row, its cells, and adds them to the summary. */
static int store_rejected(sqlite3_stmt *rej, sqlite3_stmt *cell, const char *job_id, const Batch__V1__RowRejection *r,
                          sum_acc_t *acc) {
  int ret = 0;
  sqlite3_reset(rej);
  bok_store_bind(rej, "tIb", job_id, r->row, (const void *)r->raw.data, r->raw.len);
  if (sqlite3_step(rej) != SQLITE_DONE) ret = -1;
  for (size_t c = 0; c < r->n_cells; c++) {
    const Batch__V1__RejectedCell *x = r->cells[c];
    sum_add(acc, x, r->row);
    sqlite3_reset(cell);
    bok_store_bind(cell, "tIItttttit", job_id, r->row, (int64_t)c, x->event_id, x->column, x->type, x->code,
                   x->observed, (int)x->has_observed, x->message);
    if (sqlite3_step(cell) != SQLITE_DONE) ret = -1;
  }
  return ret;
}

/* Adds ok/bad to the job's counters, then the budget and final-state checks. */
static int add_counts(job_store_t *st, const char *job_id, int64_t ok, int64_t bad) {
  int64_t now = bok_now_ms();
  sqlite3_stmt *u = js_prep(st, "UPDATE jobs SET success=success+?2, errors=errors+?3, updated_at=?4,"
                                " state=?5, started_at = CASE WHEN started_at=0 THEN ?4 ELSE started_at END"
                                " WHERE job_id=?1");
  sqlite3_bind_text(u, 1, job_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(u, 2, ok);
  sqlite3_bind_int64(u, 3, bad);
  sqlite3_bind_int64(u, 4, now);
  sqlite3_bind_int(u, 5, S_RUNNING);
  int ret = sqlite3_step(u) == SQLITE_DONE ? 0 : -1;
  js_done(st, u);
  if (ret == 0) ret = check_budget(st, job_id, now);
  if (ret == 0) js_maybe_finish(st, job_id, now);
  return ret;
}

/* Counts results of a PENDING/RUNNING job; mu held, inside a transaction.
 * Per-message form: a message already counted is skipped whole, with its
 * rejected rows. Per-row form (the job service's own rejections, tests):
 * each row once. */
int job_count_locked(job_store_t *st, const Batch__V1__JobResults *res) {
  sum_acc_t acc = {NULL, 0, 0};
  int ret = 0;
  sqlite3_stmt *ins = js_prep(st, "INSERT OR IGNORE INTO processed(job_id,row) VALUES(?1,?2)");
  sqlite3_stmt *rej = js_prep(st, "INSERT OR REPLACE INTO rejected(job_id,row,raw) VALUES(?1,?2,?3)");
  sqlite3_stmt *cell = js_prep(st, "INSERT OR REPLACE INTO rejected_cells(job_id,row,idx,event_id,col,type,code,"
                                   "observed,has_observed,message) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  uint8_t fresh_small[64];
  uint8_t *fresh = res->n_batches <= sizeof fresh_small ? fresh_small : calloc(res->n_batches, 1);
  int64_t ok = count_messages(st, res, fresh, &ret), bad = 0;
  for (size_t i = 0; i < res->n_valid_rows; i++) ok += first_time(st, ins, res->job_id, res->valid_rows[i], &ret);
  for (size_t i = 0; i < res->n_rejected && ret == 0; i++) {
    const Batch__V1__RowRejection *r = res->rejected[i];
    size_t k = 0;
    while (k < res->n_batches && !(r->row >= res->batches[k]->first_row && r->row <= res->batches[k]->last_row)) k++;
    if (k < res->n_batches ? !fresh[k] : !first_time(st, ins, res->job_id, r->row, &ret)) continue; /* counted before */
    bad++;
    if (store_rejected(rej, cell, res->job_id, r, &acc) != 0) ret = -1;
  }
  js_done(st, ins);
  js_done(st, rej);
  js_done(st, cell);
  if (fresh != fresh_small) free(fresh);
  if (ret == 0) ret = sum_store(st, res->job_id, &acc);
  free(acc.g);
  if (ret == 0 && (ok || bad)) {
    ret = add_counts(st, res->job_id, ok, bad);
    js_changed(st, res->job_id);
  }
  return ret;
}

static void cell_row(sqlite3_stmt *s, job_cell_t *c) {
  c->row = sqlite3_column_int64(s, 0);
  c->event_id = bok_store_col_dup(s, 1);
  c->column = bok_store_col_dup(s, 2);
  c->type = bok_store_col_dup(s, 3);
  c->code = bok_store_col_dup(s, 4);
  c->observed = bok_store_col_dup(s, 5);
  c->has_observed = sqlite3_column_int(s, 6);
  c->message = bok_store_col_dup(s, 7);
}

int job_store_rejected(job_store_t *st, const char *tenant, const char *id, int limit, int64_t after_row,
                       job_cell_t **out, size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  job_t j;
  int ret = get_locked(st, tenant, id, &j, err);
  if (ret == 0) {
    job_free(&j);
    sqlite3_stmt *s = js_prep(st, "SELECT row,event_id,col,type,code,observed,has_observed,message FROM rejected_cells"
                               " WHERE job_id=?1 AND row IN (SELECT row FROM rejected WHERE job_id=?1 AND row>?2"
                               " ORDER BY row LIMIT ?3) ORDER BY row, idx");
    bok_store_bind(s, "tIi", id, after_row, limit > 0 ? limit : 1000);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      if (grow((void **)out, *n, &cap, 64, sizeof **out) != 0) {
        ret = bok_err_set(err, BOK_ERR_UNAVAILABLE, "out of memory");
        break;
      }
      cell_row(s, &(*out)[(*n)++]);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = js_db_fail(st, err);
    js_done(st, s);
  }
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

void job_cells_free(job_cell_t *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(c[i].event_id);
    free(c[i].column);
    free(c[i].type);
    free(c[i].code);
    free(c[i].observed);
    free(c[i].message);
  }
  free(c);
}

int job_store_each_rejected_row(job_store_t *st, const char *id, job_row_fn fn, void *ud, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "SELECT row, raw FROM rejected WHERE job_id=?1 ORDER BY row");
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int rc, ret = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (fn(ud, sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1)) != 0) {
      ret = bok_err_set(err, BOK_ERR_UNAVAILABLE, "cannot queue rows");
      break;
    }
  }
  if (ret == 0 && rc != SQLITE_DONE) ret = js_db_fail(st, err);
  js_done(st, s);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int job_store_count_by_state(job_store_t *st, int64_t counts[JOB_STORE_NSTATES], bok_err_t *err) {
  memset(counts, 0, JOB_STORE_NSTATES * sizeof counts[0]);
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = js_prep(st, "SELECT state, count(*) FROM jobs GROUP BY state");
  int rc = s ? SQLITE_ROW : SQLITE_ERROR;
  while (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    int state = sqlite3_column_int(s, 0);
    if (state >= 0 && state < JOB_STORE_NSTATES) counts[state] = sqlite3_column_int64(s, 1);
  }
  js_done(st, s);
  int out = rc == SQLITE_DONE ? 0 : js_db_fail(st, err);
  pthread_mutex_unlock(&st->s.mu);
  return out;
}

int job_store_summary(job_store_t *st, const char *tenant, const char *id, int limit, job_summary_t **out,
                      size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  job_t j;
  int ret = get_locked(st, tenant, id, &j, err);
  if (ret == 0) {
    job_free(&j);
    if (summary_locked(st, id, limit, out, n) != 0) {
      ret = js_db_fail(st, err);
      job_summary_free(*out, *n);
      *out = NULL;
      *n = 0;
    }
  }
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

/* ---- rejected rows as a file ------------------------------------------------------ */

/* Appends s as one CSV field (quoted when it holds sep, '"', CR or LF). */
static void csv_field(bok_buf_t *b, const char *s, char sep) {
  if (!strchr(s, sep) && !strpbrk(s, "\"\r\n")) {
    bok_buf_appends(b, s);
    return;
  }
  bok_buf_appendc(b, '"');
  for (; *s; s++) {
    if (*s == '"') bok_buf_appendc(b, '"');
    bok_buf_appendc(b, *s);
  }
  bok_buf_appendc(b, '"');
}

/* The cells of one rejected row: (column, code, message) in order. */
static sqlite3_stmt *cells_of(sqlite3_stmt *q, const char *id, int64_t row) {
  sqlite3_reset(q);
  sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, row);
  return q;
}

static const char *coltext(sqlite3_stmt *s, int i) {
  const unsigned char *t = sqlite3_column_text(s, i);
  return t ? (const char *)t : "";
}

/* CSV: the raw row, then _row and _errors ("col: CODE; CODE"). */
static void annotate_csv(bok_buf_t *b, sqlite3_stmt *cells, int64_t row, char sep) {
  char num[32];
  snprintf(num, sizeof num, "%c%lld%c", sep, (long long)row, sep);
  bok_buf_appends(b, num);
  bok_buf_t e = BOK_BUF_INIT(0);
  int first = 1;
  while (sqlite3_step(cells) == SQLITE_ROW) {
    if (!first) bok_buf_appends(&e, "; ");
    first = 0;
    if (*coltext(cells, 0)) bok_buf_printf(&e, "%s: ", coltext(cells, 0));
    bok_buf_appends(&e, coltext(cells, 1));
  }
  csv_field(b, e.data ? e.data : "", sep);
  bok_buf_free(&e);
}

/* NDJSON: the raw object with "_row" and "_errors" ([{column, error,
 * message}]) added; a line that is not a JSON object is kept as "_raw". */
static void annotate_ndjson(bok_buf_t *b, const char *raw, size_t len, sqlite3_stmt *cells, int64_t row) {
  json_t *errs = json_array();
  while (sqlite3_step(cells) == SQLITE_ROW) {
    json_t *o = json_object();
    json_object_set_new(o, "column", json_string(coltext(cells, 0)));
    json_object_set_new(o, "error", json_string(coltext(cells, 1)));
    json_t *m = json_string(coltext(cells, 2));
    json_object_set_new(o, "message", m ? m : json_string(""));
    json_array_append_new(errs, o);
  }
  char *et = json_dumps(errs, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(errs);
  json_t *obj = json_loadb(raw, len, 0, NULL);
  size_t end = len;
  while (end && (raw[end - 1] == ' ' || raw[end - 1] == '\t' || raw[end - 1] == '\r')) end--;
  if (json_is_object(obj) && end && raw[end - 1] == '}') {
    bok_buf_append(b, raw, end - 1); /* the object without its closing brace */
    bok_buf_printf(b, "%s\"_row\":%lld,\"_errors\":%s}", json_object_size(obj) ? "," : "", (long long)row,
                   et ? et : "[]");
  } else {
    bok_buf_printf(b, "{\"_row\":%lld,\"_errors\":%s,\"_raw\":", (long long)row, et ? et : "[]");
    json_t *rs = json_stringn_nocheck(raw, len);
    char *rt = rs && bok_utf8_valid(raw, len) ? json_dumps(rs, JSON_ENCODE_ANY) : NULL;
    if (rt) {
      bok_buf_appends(b, rt);
    } else { /* not UTF-8: each byte as its Latin-1 code point, so nothing is lost silently */
      bok_buf_appendc(b, '"');
      for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '"' || c == '\\') bok_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f) bok_buf_printf(b, "\\u%04x", c);
        else bok_buf_appendc(b, (char)c);
      }
      bok_buf_appendc(b, '"');
    }
    free(rt);
    json_decref(rs);
    bok_buf_appendc(b, '}');
  }
  json_decref(obj);
  free(et);
}

int job_store_rejected_file_page(job_store_t *st, const char *tenant, const char *id, int64_t after_row, int limit,
                                 size_t max_bytes, int annotate, bok_buf_t *out, job_page_t *page, bok_err_t *err) {
  memset(page, 0, sizeof *page);
  page->last_row = after_row;
  pthread_mutex_lock(&st->s.mu);
  job_t j;
  int ret = get_locked(st, tenant, id, &j, err);
  if (ret != 0) {
    pthread_mutex_unlock(&st->s.mu);
    return ret;
  }
  int csv = strcmp(j.format, "ndjson") != 0;
  char sep = j.separator[0] ? j.separator[0] : ',';
  snprintf(page->format, sizeof page->format, "%s", csv ? "csv" : "ndjson");
  if (csv && after_row <= 0) {
    bok_buf_append(out, j.header, j.header_len);
    if (annotate) bok_buf_printf(out, "%c_row%c_errors", sep, sep);
    bok_buf_appendc(out, '\n');
  }
  sqlite3_stmt *s = js_prep(st, "SELECT row, raw FROM rejected WHERE job_id=?1 AND row>?2 ORDER BY row LIMIT ?3");
  sqlite3_stmt *cells = annotate ? js_prep(st, "SELECT col, code, message FROM rejected_cells WHERE job_id=?1"
                                               " AND row=?2 ORDER BY idx")
                                 : NULL;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, after_row);
  sqlite3_bind_int(s, 3, limit > 0 ? limit : 1000);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t row = sqlite3_column_int64(s, 0);
    const char *raw = sqlite3_column_blob(s, 1);
    size_t len = (size_t)sqlite3_column_bytes(s, 1);
    if (!raw) raw = "";
    if (annotate && !csv) {
      annotate_ndjson(out, raw, len, cells_of(cells, id, row), row);
    } else {
      bok_buf_append(out, raw, len);
      if (annotate) annotate_csv(out, cells_of(cells, id, row), row, sep);
    }
    bok_buf_appendc(out, '\n');
    page->last_row = row;
    page->rows++;
    if (max_bytes && out->len >= max_bytes) break;
  }
  int lim = limit > 0 ? limit : 1000;
  if (rc == SQLITE_DONE) {
    page->done = page->rows < lim; /* a full page may have a next one (LIMIT ends the query too) */
  } else if (rc != SQLITE_ROW) {
    ret = js_db_fail(st, err);
  }
  js_done(st, s);
  js_done(st, cells);
  job_free(&j);
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}
