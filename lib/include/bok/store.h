/* bok/store.h -- the SQLite helpers both stores use (the job service's
 * job_store.c and job_ledger.c, the model service's model_store.c): open
 * with the house settings (WAL, busy timeout, schema, additive migrations),
 * prepare, bind a sequence of values in one call, step-and-finalize,
 * column copies into owned strings, and BEGIN IMMEDIATE / COMMIT /
 * ROLLBACK with their results checked.
 *
 * Threads: the connection is opened SQLITE_OPEN_FULLMUTEX, but a store
 * keeps its own mutex around each of its operations (a transaction is
 * several calls); these helpers take none. Errors: functions taking a
 * bok_err_t set it (BOK_ERR_UNAVAILABLE, with SQLite's message); the others
 * return SQLite's result code or -1. Libraries never print. */
#ifndef BOK_STORE_H
#define BOK_STORE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "bok/err.h"

typedef struct {
  const char *schema_sql;        /* CREATE TABLE IF NOT EXISTS ... (one exec; required) */
  const char *const *migrations; /* NULL-terminated; each run once per open, errors ignored
                                    ("duplicate column": already applied); may be NULL */
  int synchronous_full;          /* PRAGMA synchronous=FULL (else NORMAL, safe under WAL) */
  int busy_timeout_ms;           /* 0: 5000 */
} bok_store_opts_t;

/* Opens (creates, with its directory) the database at `path` (":memory:"
 * works): journal_mode=WAL, synchronous, busy timeout, the schema, then the
 * migrations. NULL with err set (UNAVAILABLE: "cannot create the directory
 * of {path}: ...", "cannot open {path}: ...", "cannot initialise {path}: ...").
 * Close with sqlite3_close(). */
sqlite3 *bok_store_open(const char *path, const bok_store_opts_t *o, bok_err_t *err);

/* A store: its connection and the mutex its operations hold (a transaction
 * spans several calls). A store's struct has it as its first member. */
typedef struct {
  sqlite3 *db;
  pthread_mutex_t mu;
} bok_store_t;

/* Allocates a zeroed store struct of `size` bytes whose first member is a
 * bok_store_t, opens its database (bok_store_open) and its mutex. NULL with
 * err set. */
void *bok_store_new(size_t size, const char *path, const bok_store_opts_t *o, bok_err_t *err);
/* Closes the database, destroys the mutex and frees the store (NULL: no-op). */
void bok_store_delete(void *store);

/* Sets err to UNAVAILABLE "{what} storage error: {SQLite's last message}";
 * returns -1 (for `return bok_store_fail(...)`). */
int bok_store_fail(sqlite3 *db, const char *what, bok_err_t *err);

/* A prepared statement, or NULL (the error is the connection's). */
sqlite3_stmt *bok_store_prep(sqlite3 *db, const char *sql);

/* Binds parameters 1, 2, ... in order, one letter of `types` each:
 *   t  const char *   text (NULL binds NULL); copied only by reference:
 *                     it must live until the statement is reset or finalized
 *   T  const char *   as t, NULL binds ""
 *   i  int            integer
 *   I  int64_t        integer
 *   d  double         real
 *   b  const void *, size_t   blob (NULL with size 0 binds an empty blob)
 *   -  (no argument)  skips a parameter (left NULL)
 * Returns SQLITE_OK or the first binding's error; an unknown letter is
 * SQLITE_MISUSE. s NULL: SQLITE_MISUSE. */
int bok_store_bind(sqlite3_stmt *s, const char *types, ...);

/* prepare + bind (as bok_store_bind) + one step + finalize, for statements
 * that return no row. 0 when the step was SQLITE_DONE, else -1 (the
 * connection's error message says why). */
int bok_store_exec(sqlite3 *db, const char *sql, const char *types, ...);

/* Column i as an owned copy: text (NULL column: ""), or NULL when memory
 * ran out. */
char *bok_store_col_dup(sqlite3_stmt *s, int i);
/* Column i as an owned blob with a NUL after it (so text stays a C string);
 * *len its length. NULL when memory ran out. */
char *bok_store_col_blob(sqlite3_stmt *s, int i, size_t *len);

/* BEGIN IMMEDIATE: 0, or -1. */
int bok_store_begin(sqlite3 *db);
/* COMMIT: 0, or -1 after setting err (if not NULL) as bok_store_fail(db,
 * what, err) does, with COMMIT's error, and rolling back: the transaction is
 * over either way. */
int bok_store_commit(sqlite3 *db, const char *what, bok_err_t *err);
/* ROLLBACK (nothing to do when no transaction is open). Read the error of a
 * failed statement before: a rollback replaces the connection's message. */
void bok_store_rollback(sqlite3 *db);

#endif
