/* job_store_int.h -- what job_store.c shares with job_ledger.c (the same
 * store, split by concern). Not for other modules. Every function here
 * expects st->s.mu held by the caller. */
#ifndef JOB_STORE_INT_H
#define JOB_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "bok/store.h"
#include "job_store.h"

/* GetJob's reads (job_store_get): a connection of their own, so a read
 * never waits for s.mu while a report is being written (WAL: readers do not
 * wait for the writer), with its statements prepared once. Everything here
 * under rmu; db NULL (":memory:", or it could not be opened): job_store_get
 * reads on s.db under s.mu. */
typedef struct {
  pthread_mutex_t rmu;
  sqlite3 *db;
  sqlite3_stmt *begin, *commit, *get, *get_t, *warn, *sum;
} js_reader_t;

/* Statements of the main connection, prepared once (js_prep) and reset
 * after each use (js_done) instead of being compiled for every call. Keyed
 * by the SQL text; `busy` while a caller has it (a nested use of the same
 * text gets a statement of its own). Under s.mu. */
#define JS_STMT_CACHE 64
typedef struct {
  const char *key; /* the caller's pointer (fast path; checked with strcmp) */
  char *sql;       /* own copy of the text */
  sqlite3_stmt *s;
  int busy;
} js_stmt_t;

struct job_store {
  bok_store_t s;                 /* first: connection + mutex (lib/store) */
  js_stmt_t stmts[JS_STMT_CACHE];
  size_t nstmts;
  job_store_change_fn on_change; /* job_store_set_watch; under mu */
  void *on_change_ud;
  job_store_change_fn on_settle; /* job_store_set_settle; under mu. NULL: no readability wait */
  void *on_settle_ud;
  js_reader_t rd;
};

/* Tells the watcher hook that job `id` may have changed (st->s.mu held, so the
 * hook's reader sees the change once it can lock the store). */
static inline void js_changed(job_store_t *st, const char *id) {
  if (st->on_change) st->on_change(st->on_change_ud, id);
}

#define S_PENDING BATCH__V1__JOB_STATE__JOB_STATE_PENDING
#define S_RUNNING BATCH__V1__JOB_STATE__JOB_STATE_RUNNING
#define S_SUCCESS BATCH__V1__JOB_STATE__JOB_STATE_SUCCESS
#define S_PARTIAL BATCH__V1__JOB_STATE__JOB_STATE_PARTIAL_SUCCESS
#define S_FAILED BATCH__V1__JOB_STATE__JOB_STATE_FAILED
#define S_CANCELLED BATCH__V1__JOB_STATE__JOB_STATE_CANCELLED

/* upload_done values */
#define UPLOAD_RUNNING 0    /* rows still arriving; not in Kafka yet */
#define UPLOAD_DONE 1       /* the rows transaction committed */
#define UPLOAD_COMMITTING 2 /* rows and messages stored, commit outcome unknown */

/* The statement of `sql` on the main connection, ready to bind (cached:
 * prepared on first use). NULL when it does not compile. Give it back with
 * js_done (never sqlite3_finalize). */
sqlite3_stmt *js_prep(job_store_t *st, const char *sql);
/* Ends a use of a js_prep statement: reset, bindings cleared, back in the
 * cache (one that was not cached is finalized). NULL: no-op. */
void js_done(job_store_t *st, sqlite3_stmt *s);
int js_db_fail(job_store_t *st, bok_err_t *err); /* sets err from SQLite, returns -1 */
void js_maybe_finish(job_store_t *st, const char *id, int64_t now);
int job_state_locked(job_store_t *st, const char *id); /* -1 = no such job */
/* Counts results of a PENDING/RUNNING job (idempotent per message / row);
 * inside a SQLite transaction. 0 ok, -1 SQLite error. */
int job_count_locked(job_store_t *st, const Batch__V1__JobResults *res);

#endif
