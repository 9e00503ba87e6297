/* model_store.c -- durable models (model_store.h): SQLite (WAL, through
 * lib/store), one row per model and one per schema version (every version
 * kept, a deleted model's too), name and schema checks, the default error
 * budget. */
#include "model_store.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bok/schema.h"
#include "bok/store.h"
#include "bok/util.h"

struct model_store {
  bok_store_t s; /* connection + mutex (lib/store) */
};

/* Opened with journal_mode=WAL, synchronous=FULL (bok_store_open). */
static const char *SCHEMA_SQL =
    "CREATE TABLE IF NOT EXISTS models("
    " model_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL,"
    " version INTEGER NOT NULL, topic TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS models_by_tenant ON models(tenant_id, created_at);"
    "CREATE TABLE IF NOT EXISTS model_versions("
    " model_id TEXT NOT NULL, version INTEGER NOT NULL, schema_json TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, PRIMARY KEY(model_id, version));";

/* The default error budget (issue 14), added to older databases at open (an
 * "already exists" error is expected and ignored). */
static const char *const MIGRATIONS[] = {
    "ALTER TABLE models ADD COLUMN max_errors INTEGER NOT NULL DEFAULT -1",
    "ALTER TABLE models ADD COLUMN max_error_rate REAL NOT NULL DEFAULT -1",
    NULL,
};

model_store_t *model_store_open(const char *path, bok_err_t *err) {
  bok_store_opts_t o = {SCHEMA_SQL, MIGRATIONS, 1, 5000};
  return bok_store_new(sizeof(model_store_t), path, &o, err);
}

void model_store_close(model_store_t *st) { bok_store_delete(st); }

void model_rec_free(model_rec_t *r) {
  if (!r) return;
  free(r->tenant_id);
  free(r->name);
  free(r->schema_json);
  free(r->topic);
  memset(r, 0, sizeof *r);
}

void model_rec_list_free(model_rec_t *r, size_t n) {
  for (size_t i = 0; i < n; i++) model_rec_free(&r[i]);
  free(r);
}

/* Columns: model_id, tenant_id, name, version, topic, created_at, updated_at, schema_json */
#define SELECT_COLS                                                                   \
  "SELECT m.model_id, m.tenant_id, m.name, v.version, m.topic, m.created_at, m.updated_at," \
  " v.schema_json, m.max_errors, m.max_error_rate FROM models m JOIN model_versions v ON v.model_id = m.model_id "

static void row_to_rec(sqlite3_stmt *s, model_rec_t *r) {
  const unsigned char *id = sqlite3_column_text(s, 0);
  snprintf(r->model_id, sizeof r->model_id, "%s", id ? (const char *)id : "");
  r->tenant_id = bok_store_col_dup(s, 1);
  r->name = bok_store_col_dup(s, 2);
  r->version = sqlite3_column_int64(s, 3);
  r->topic = bok_store_col_dup(s, 4);
  r->created_at_ms = sqlite3_column_int64(s, 5);
  r->updated_at_ms = sqlite3_column_int64(s, 6);
  r->schema_json = bok_store_col_dup(s, 7);
  r->max_errors = sqlite3_column_int64(s, 8);
  r->max_error_rate = sqlite3_column_double(s, 9);
}

static int db_fail(model_store_t *st, bok_err_t *err) {
  return bok_store_fail(st->s.db, "model", err);
}

/* Validates a name: 1-200 characters after trimming. */
/* Trims surrounding whitespace into out (a copy); the name must have 1-200
 * characters (UTF-8 code points) and no control characters. */
static int check_name(const char *name, char out[1024], bok_err_t *err) {
  if (!name) return bok_err_set(err, BOK_ERR_INVALID, "name: required");
  while (*name && isspace((unsigned char)*name)) name++;
  size_t n = strlen(name);
  while (n && isspace((unsigned char)name[n - 1])) n--;
  if (n == 0) return bok_err_set(err, BOK_ERR_INVALID, "name: required");
  size_t chars = 0;
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)name[i] < 0x20) return bok_err_set(err, BOK_ERR_INVALID, "name: control characters are not allowed");
    chars += ((unsigned char)name[i] & 0xC0) != 0x80;
  }
  if (chars > 200 || n >= 1024) return bok_err_set(err, BOK_ERR_INVALID, "name: longer than 200 characters");
  memcpy(out, name, n);
  out[n] = '\0';
  return 0;
}

/* Compiles the schema (refusing it with the compiler's message) and returns
 * its compact JSON text (malloc'd). */
static char *check_schema(const char *schema_json, bok_err_t *err) {
  if (!schema_json || !*schema_json) {
    bok_err_set(err, BOK_ERR_INVALID, "schema: required");
    return NULL;
  }
  char msg[400];
  bok_schema_t *s = NULL;
  if (bok_schema_compile(schema_json, strlen(schema_json), &s, msg, sizeof msg) != 0) {
    bok_err_set(err, BOK_ERR_INVALID, "%s", msg);
    return NULL;
  }
  bok_schema_destroy(s);
  /* Stored exactly as given: re-encoding would change numbers (0.1). */
  char *out = strdup(schema_json);
  if (!out) bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
  return out;
}

static int get_locked(model_store_t *st, const char *tenant, const char *id, int64_t version, model_rec_t *out,
                      bok_err_t *err) {
  sqlite3_stmt *s = NULL;
  if (version < 0) return bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  const char *sql = version > 0 ? SELECT_COLS "WHERE m.model_id=?1 AND m.tenant_id=?2 AND v.version=?3"
                                : SELECT_COLS "WHERE m.model_id=?1 AND m.tenant_id=?2 AND v.version=m.version"
                                              " AND m.deleted=0";
  if (sqlite3_prepare_v2(st->s.db, sql, -1, &s, NULL) != SQLITE_OK) return db_fail(st, err);
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, tenant, -1, SQLITE_STATIC);
  if (version > 0) sqlite3_bind_int64(s, 3, version);
  int rc = sqlite3_step(s);
  int ret;
  if (rc == SQLITE_ROW) {
    row_to_rec(s, out);
    ret = 0;
  } else if (rc == SQLITE_DONE) {
    ret = bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  } else {
    ret = db_fail(st, err);
  }
  sqlite3_finalize(s);
  return ret;
}

int model_store_create(model_store_t *st, const char *tenant, const char *name, const char *schema_json,
                       const char *topic_prefix, model_rec_t *out, bok_err_t *err) {
  char tname[1024];
  if (check_name(name, tname, err)) return -1;
  name = tname;
  char *schema = check_schema(schema_json, err);
  if (!schema) return -1;
  char id[37];
  bok_uuid_new(id);
  char topic[256];
  snprintf(topic, sizeof topic, "%s.%s.%s", topic_prefix, tenant, id);
  int64_t now = bok_now_ms();
  int ret = -1;
  pthread_mutex_lock(&st->s.mu);
  /* models(model_id, tenant_id, name, version, topic, created_at, updated_at) */
  if (bok_store_begin(st->s.db) != 0) {
    db_fail(st, err);
  } else if (bok_store_exec(st->s.db, "INSERT INTO models(model_id,tenant_id,name,topic,created_at,updated_at,version)"
                                     " VALUES(?1,?2,?3,?6,?4,?5,1)",
                            "tttIIt", id, tenant, name, now, now, topic) != 0 ||
             bok_store_exec(st->s.db, "INSERT INTO model_versions(model_id,schema_json,created_at,version) VALUES(?1,?2,?4,1)",
                            "tt-I", id, schema, now) != 0) {
    db_fail(st, err);
    bok_store_rollback(st->s.db);
  } else if (bok_store_commit(st->s.db, "model", err) == 0) {
    ret = get_locked(st, tenant, id, 0, out, err);
  }
  pthread_mutex_unlock(&st->s.mu);
  free(schema);
  return ret;
}

int model_store_get(model_store_t *st, const char *tenant, const char *id, int64_t version, model_rec_t *out,
                    bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int r = get_locked(st, tenant, id, version, out, err);
  pthread_mutex_unlock(&st->s.mu);
  return r;
}

int model_store_list(model_store_t *st, const char *tenant, model_rec_t **out, size_t *n, bok_err_t *err) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = NULL;
  int ret = 0;
  if (sqlite3_prepare_v2(st->s.db,
                         SELECT_COLS "WHERE m.tenant_id=?1 AND m.deleted=0 AND v.version=m.version"
                                     " ORDER BY m.created_at, m.rowid",
                         -1, &s, NULL) != SQLITE_OK) {
    ret = db_fail(st, err);
    goto done;
  }
  sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
  size_t cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      model_rec_t *p = realloc(*out, cap * sizeof *p);
      if (!p) {
        ret = bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
        goto done;
      }
      *out = p;
    }
    memset(&(*out)[*n], 0, sizeof **out);
    row_to_rec(s, &(*out)[(*n)++]);
  }
  if (rc != SQLITE_DONE) ret = db_fail(st, err);
done:
  sqlite3_finalize(s);
  pthread_mutex_unlock(&st->s.mu);
  if (ret != 0) {
    model_rec_list_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return ret;
}

int model_store_update(model_store_t *st, const char *tenant, const char *id, const char *name,
                       const char *schema_json, model_rec_t *out, bok_err_t *err) {
  int has_name = name && *name;
  int has_schema = schema_json && *schema_json;
  char tname[1024];
  if (has_name && check_name(name, tname, err)) return -1;
  if (has_name) name = tname;
  char *schema = NULL;
  if (has_schema && !(schema = check_schema(schema_json, err))) return -1;
  int ret = -1;
  model_rec_t cur;
  memset(&cur, 0, sizeof cur);
  pthread_mutex_lock(&st->s.mu);
  if (get_locked(st, tenant, id, 0, &cur, err) != 0) goto done;
  int64_t now = bok_now_ms();
  int64_t version = cur.version;
  if (bok_store_begin(st->s.db) != 0) {
    db_fail(st, err);
    goto done;
  }
  int ok = 1;
  if (has_schema && strcmp(schema, cur.schema_json) != 0) {
    version++;
    ok = bok_store_exec(st->s.db, "INSERT INTO model_versions(model_id,schema_json,created_at,version) VALUES(?1,?2,?4,?5)",
                        "tt-II", id, schema, now, version) == 0;
  }
  if (ok)
    ok = bok_store_exec(st->s.db, "UPDATE models SET name=?2, version=?4, updated_at=?5 WHERE model_id=?1", "tt-II", id,
                        has_name ? name : cur.name, version, now) == 0;
  if (!ok) {
    db_fail(st, err);
    bok_store_rollback(st->s.db);
    goto done;
  }
  if (bok_store_commit(st->s.db, "model", err) != 0) goto done;
  ret = get_locked(st, tenant, id, 0, out, err);
done:
  pthread_mutex_unlock(&st->s.mu);
  model_rec_free(&cur);
  free(schema);
  return ret;
}

int model_store_delete(model_store_t *st, const char *tenant, const char *id, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  int ret = bok_store_exec(st->s.db, "UPDATE models SET deleted=1, updated_at=?4 WHERE model_id=?1 AND tenant_id=?2"
                                   " AND deleted=0",
                           "tt-I", id, tenant, bok_now_ms());
  if (ret != 0)
    db_fail(st, err);
  else if (sqlite3_changes(st->s.db) == 0)
    ret = bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}

int model_store_ping(model_store_t *st, bok_err_t *err) {
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(st->s.db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  sqlite3_finalize(s);
  int out = rc == SQLITE_ROW ? 0 : db_fail(st, err);
  pthread_mutex_unlock(&st->s.mu);
  return out;
}

int model_store_set_budget(model_store_t *st, const char *tenant, const char *id, int set_errors, int64_t max_errors,
                           int set_rate, double max_error_rate, bok_err_t *err) {
  if ((set_errors && max_errors < -1) || (set_rate && max_error_rate != -1.0 && !(max_error_rate >= 0 && max_error_rate <= 1)))
    return bok_err_set(err, BOK_ERR_INVALID, set_errors && max_errors < -1 ? "max_errors: expected a whole number >= 0"
                                                                             : "max_error_rate: expected a number from 0 to 1");
  pthread_mutex_lock(&st->s.mu);
  sqlite3_stmt *s = NULL;
  sqlite3_prepare_v2(st->s.db, "UPDATE models SET max_errors = CASE WHEN ?3 THEN ?4 ELSE max_errors END,"
                             " max_error_rate = CASE WHEN ?5 THEN ?6 ELSE max_error_rate END"
                             " WHERE model_id=?1 AND tenant_id=?2 AND deleted=0", -1, &s, NULL);
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, tenant, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 3, set_errors);
  sqlite3_bind_int64(s, 4, max_errors);
  sqlite3_bind_int(s, 5, set_rate);
  sqlite3_bind_double(s, 6, max_error_rate);
  int ret = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(st, err);
  sqlite3_finalize(s);
  if (ret == 0 && sqlite3_changes(st->s.db) == 0) ret = bok_err_set(err, BOK_ERR_NOT_FOUND, "not found");
  pthread_mutex_unlock(&st->s.mu);
  return ret;
}
