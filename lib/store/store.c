/* store.c -- SQLite helpers shared by the job and model stores
 * (bok/store.h): open with WAL + busy timeout + schema + migrations,
 * prepare, bind sequences, column copies, transactions. */
#include "bok/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/util.h"

static void run_migrations(sqlite3 *db, const char *const *m) {
  for (; m && *m; m++) sqlite3_exec(db, *m, NULL, NULL, NULL);
}

sqlite3 *bok_store_open(const char *path, const bok_store_opts_t *o, bok_err_t *err) {
  sqlite3 *db = NULL;
  char *emsg = NULL;
  if (strcmp(path, ":memory:") != 0 && bok_mkdirs_for(path) != 0) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "cannot create the directory of %s: %s", path, strerror(errno));
    return NULL;
  }
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
      SQLITE_OK) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(db, o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
  const char *pragmas = o->synchronous_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
  if (sqlite3_exec(db, pragmas, NULL, NULL, &emsg) != SQLITE_OK ||
      sqlite3_exec(db, o->schema_sql, NULL, NULL, &emsg) != SQLITE_OK) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "cannot initialise %s: %s", path, emsg ? emsg : sqlite3_errmsg(db));
    goto fail;
  }
  run_migrations(db, o->migrations);
  return db;
fail:
  sqlite3_free(emsg);
  sqlite3_close(db);
  return NULL;
}

void *bok_store_new(size_t size, const char *path, const bok_store_opts_t *o, bok_err_t *err) {
  bok_store_t *s = size >= sizeof *s ? calloc(1, size) : NULL;
  if (!s) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "out of memory");
    return NULL;
  }
  if (!(s->db = bok_store_open(path, o, err))) {
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  return s;
}

void bok_store_delete(void *store) {
  bok_store_t *s = store;
  if (!s) return;
  sqlite3_close(s->db);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int bok_store_fail(sqlite3 *db, const char *what, bok_err_t *err) {
  return bok_err_set(err, BOK_ERR_UNAVAILABLE, "%s storage error: %s", what, sqlite3_errmsg(db));
}

sqlite3_stmt *bok_store_prep(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
    sqlite3_finalize(s);
    return NULL;
  }
  return s;
}

/* One parameter from ap as types[k] says; SQLite's result code. */
static int bind_one(sqlite3_stmt *s, int i, char type, va_list *ap) {
  const char *t;
  const void *b;
  size_t n;
  switch (type) {
    case 't':
      t = va_arg(*ap, const char *);
      return t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
    case 'T':
      t = va_arg(*ap, const char *);
      return sqlite3_bind_text(s, i, t ? t : "", -1, SQLITE_STATIC);
    case 'i':
      return sqlite3_bind_int(s, i, va_arg(*ap, int));
    case 'I':
      return sqlite3_bind_int64(s, i, va_arg(*ap, int64_t));
    case 'd':
      return sqlite3_bind_double(s, i, va_arg(*ap, double));
    case 'b':
      b = va_arg(*ap, const void *);
      n = va_arg(*ap, size_t);
      if (n > 0x7fffffff) return SQLITE_TOOBIG;
      return sqlite3_bind_blob(s, i, b ? b : "", (int)n, SQLITE_STATIC);
    case '-':
      return SQLITE_OK;
    default:
      return SQLITE_MISUSE;
  }
}

static int bind_v(sqlite3_stmt *s, const char *types, va_list *ap) {
  if (!s) return SQLITE_MISUSE;
  for (int i = 0; types && types[i]; i++) {
    int rc = bind_one(s, i + 1, types[i], ap);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

int bok_store_bind(sqlite3_stmt *s, const char *types, ...) {
  va_list ap;
  va_start(ap, types);
  int rc = bind_v(s, types, &ap);
  va_end(ap);
  return rc;
}

int bok_store_exec(sqlite3 *db, const char *sql, const char *types, ...) {
  sqlite3_stmt *s = bok_store_prep(db, sql);
  if (!s) return -1;
  va_list ap;
  va_start(ap, types);
  int rc = bind_v(s, types, &ap);
  va_end(ap);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? 0 : -1;
}

char *bok_store_col_dup(sqlite3_stmt *s, int i) {
  const unsigned char *t = sqlite3_column_text(s, i);
  return strdup(t ? (const char *)t : "");
}

char *bok_store_col_blob(sqlite3_stmt *s, int i, size_t *len) {
  const void *b = sqlite3_column_blob(s, i);
  size_t n = (size_t)sqlite3_column_bytes(s, i);
  char *out = malloc(n + 1);
  if (!out) return NULL;
  if (n) memcpy(out, b, n);
  out[n] = '\0';
  *len = n;
  return out;
}

int bok_store_begin(sqlite3 *db) { return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1; }

int bok_store_commit(sqlite3 *db, const char *what, bok_err_t *err) {
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return 0;
  if (err) bok_store_fail(db, what, err);
  bok_store_rollback(db);
  return -1;
}

void bok_store_rollback(sqlite3 *db) {
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}
