/* The SQLite helpers of both stores (bok/store.h): open (WAL on a file,
 * directories made, schema, migrations run again harmlessly, errors named),
 * bind sequences of every kind, column copies, and transactions that commit
 * or roll back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/store.h"

static const char *SCHEMA = "CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, n INTEGER, r REAL, b BLOB, x TEXT);";
static const char *const MIGRATIONS[] = {"ALTER TABLE t ADD COLUMN y INTEGER NOT NULL DEFAULT 7", NULL};

static sqlite3 *mem(void) {
  bok_store_opts_t o = {SCHEMA, MIGRATIONS, 0, 0};
  bok_err_t err;
  sqlite3 *db = bok_store_open(":memory:", &o, &err);
  assert_non_null(db);
  return db;
}

static void test_open_file_wal_and_migrations_twice(void **s) {
  (void)s;
  char dir[] = "/tmp/bok-store-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/sub/dir/x.db", dir);
  bok_store_opts_t o = {SCHEMA, MIGRATIONS, 1, 100};
  bok_err_t err;
  for (int round = 0; round < 2; round++) { /* the second open finds the column there */
    sqlite3 *db = bok_store_open(path, &o, &err);
    assert_non_null(db);
    sqlite3_stmt *q = bok_store_prep(db, "PRAGMA journal_mode");
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    q = bok_store_prep(db, "PRAGMA synchronous");
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 2); /* FULL */
    sqlite3_finalize(q);
    assert_int_equal(bok_store_exec(db, "INSERT OR REPLACE INTO t(k) VALUES(?1)", "t", "a"), 0);
    q = bok_store_prep(db, "SELECT y FROM t WHERE k='a'");
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 7);
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_open_errors_say_what(void **s) {
  (void)s;
  bok_err_t err;
  bok_store_opts_t bad = {"CREATE TABLE nonsense(", NULL, 0, 0};
  assert_null(bok_store_open(":memory:", &bad, &err));
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "cannot initialise :memory:"));
  bok_store_opts_t o = {SCHEMA, NULL, 0, 0};
  assert_null(bok_store_open("/proc/no/such/x.db", &o, &err));
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "/proc/no/such/x.db"));
}

static void test_bind_every_kind_and_copy_columns(void **s) {
  (void)s;
  sqlite3 *db = mem();
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k,n,r,b,x) VALUES(?1,?2,?3,?4,?5)", "TIdbt", "k1", (int64_t)1 << 40,
                                  0.25, "a\0b", (size_t)3, NULL),
                   0);
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k,n,x) VALUES(?1,?2,?3)", "Ti-", NULL, 5), 0);
  sqlite3_stmt *q = bok_store_prep(db, "SELECT k,n,r,b,x FROM t WHERE k=?1");
  assert_int_equal(bok_store_bind(q, "t", "k1"), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  char *k = bok_store_col_dup(q, 0), *x = bok_store_col_dup(q, 4);
  size_t n = 0;
  char *b = bok_store_col_blob(q, 3, &n);
  assert_string_equal(k, "k1");
  assert_string_equal(x, ""); /* NULL column: "" */
  assert_int_equal(n, 3);
  assert_memory_equal(b, "a\0b\0", 4);
  assert_int_equal(sqlite3_column_int64(q, 1), (int64_t)1 << 40);
  assert_true(sqlite3_column_double(q, 2) == 0.25);
  free(k);
  free(x);
  free(b);
  sqlite3_finalize(q);
  q = bok_store_prep(db, "SELECT n, x IS NULL FROM t WHERE k=''"); /* "T" with NULL bound "" */
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 5);
  assert_int_equal(sqlite3_column_int(q, 1), 1); /* '-' left it NULL */
  sqlite3_finalize(q);
  /* errors: a bad letter, a bad statement, a constraint */
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k) VALUES(?1)", "?", "z"), -1);
  assert_int_equal(bok_store_exec(db, "INSERT INTO nowhere VALUES(1)", ""), -1);
  assert_null(bok_store_prep(db, "SELEKT"));
  assert_int_equal(bok_store_bind(NULL, "t", "x"), SQLITE_MISUSE);
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k) VALUES(?1)", "t", "k1"), -1);
  bok_err_t err;
  assert_int_equal(bok_store_fail(db, "test", &err), -1);
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "test storage error: "));
  assert_non_null(strstr(err.msg, "UNIQUE"));
  sqlite3_close(db);
}

static int count(sqlite3 *db) {
  sqlite3_stmt *q = bok_store_prep(db, "SELECT count(*) FROM t");
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  int n = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  return n;
}

static void test_transactions(void **s) {
  (void)s;
  sqlite3 *db = mem();
  assert_int_equal(bok_store_begin(db), 0);
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k) VALUES('a')", NULL), 0);
  assert_int_equal(bok_store_commit(db, "test", NULL), 0);
  assert_int_equal(bok_store_begin(db), 0);
  assert_int_equal(bok_store_begin(db), -1); /* no nesting */
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k) VALUES('b')", NULL), 0);
  bok_store_rollback(db);
  assert_int_equal(count(db), 1);
  bok_store_rollback(db); /* none open: harmless */
  bok_err_t err;
  assert_int_equal(bok_store_commit(db, "test", &err), -1); /* none open */
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "test storage error: cannot commit"));
  assert_int_equal(bok_store_begin(db), 0);
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k) VALUES('d')", NULL), 0);
  assert_int_equal(bok_store_commit(db, "test", &err), 0);
  assert_int_equal(count(db), 2);
  /* a failed COMMIT (deferred foreign key) rolls back */
  assert_int_equal(bok_store_exec(db, "PRAGMA foreign_keys=ON", NULL), 0);
  assert_int_equal(bok_store_exec(db, "CREATE TABLE c(p TEXT REFERENCES t(k) DEFERRABLE INITIALLY DEFERRED)", NULL), 0);
  assert_int_equal(bok_store_begin(db), 0);
  assert_int_equal(bok_store_exec(db, "INSERT INTO t(k) VALUES('e')", NULL), 0);
  assert_int_equal(bok_store_exec(db, "INSERT INTO c(p) VALUES('nowhere')", NULL), 0);
  assert_int_equal(bok_store_commit(db, "test", &err), -1);
  assert_non_null(strstr(err.msg, "FOREIGN KEY"));
  assert_int_equal(count(db), 2);
  assert_true(sqlite3_get_autocommit(db));
  sqlite3_close(db);
}

/* A store struct embeds the connection and its mutex first. */
typedef struct {
  bok_store_t s;
  int extra;
} my_store_t;

static void test_new_and_delete(void **s) {
  (void)s;
  bok_store_opts_t o = {SCHEMA, MIGRATIONS, 0, 0};
  bok_err_t err;
  my_store_t *st = bok_store_new(sizeof *st, ":memory:", &o, &err);
  assert_non_null(st);
  assert_int_equal(st->extra, 0);
  assert_int_equal(pthread_mutex_lock(&st->s.mu), 0);
  assert_int_equal(bok_store_exec(st->s.db, "INSERT INTO t(k) VALUES('a')", NULL), 0);
  assert_int_equal(pthread_mutex_unlock(&st->s.mu), 0);
  bok_store_delete(st);
  bok_store_delete(NULL);
  bok_store_opts_t bad = {"nonsense", NULL, 0, 0};
  assert_null(bok_store_new(sizeof *st, ":memory:", &bad, &err));
  assert_int_equal(err.code, BOK_ERR_UNAVAILABLE);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_open_file_wal_and_migrations_twice),
                                 cmocka_unit_test(test_open_errors_say_what),
                                 cmocka_unit_test(test_bind_every_kind_and_copy_columns),
                                 cmocka_unit_test(test_transactions), cmocka_unit_test(test_new_and_delete)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
