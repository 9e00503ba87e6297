/* model_store.h -- durable model storage (SQLite, WAL).
 *
 * Every model keeps each schema version it ever had (model_versions), so a
 * job that started on version N can still be validated with N after an
 * update or a delete. A deleted model is invisible to get(version 0), list,
 * update and delete, but its versions stay readable by explicit number.
 *
 * Thread-safety: one connection guarded by a mutex; any thread may call.
 * Errors come back as bok_err_t (NOT_FOUND, INVALID, UNAVAILABLE). */
#ifndef MODEL_STORE_H
#define MODEL_STORE_H

#include <stdint.h>

#include <stddef.h>
#include <stdint.h>

#include "bok/err.h"

typedef struct {
  char model_id[40];
  char *tenant_id;
  char *name;
  char *schema_json;
  char *topic;
  int64_t version;
  int64_t created_at_ms;
  int64_t updated_at_ms;
  int64_t max_errors;    /* default error budget of its jobs; -1 = none */
  double max_error_rate; /* 0..1; -1 = none */
} model_rec_t;

typedef struct model_store model_store_t;

/* `path` is a file (parent directories are created) or ":memory:". */
model_store_t *model_store_open(const char *path, bok_err_t *err);
void model_store_close(model_store_t *st);
/* A cheap query: 0 when the database answers, -1 (err set) otherwise. */
int model_store_ping(model_store_t *st, bok_err_t *err);

/* Checks name and schema, then inserts version 1. topic =
 * "<topic_prefix>.<tenant>.<model_id>". `out` is filled (free with
 * model_rec_free). */
int model_store_create(model_store_t *st, const char *tenant, const char *name, const char *schema_json,
                       const char *topic_prefix, model_rec_t *out, bok_err_t *err);
/* version 0 = current (and not deleted). */
int model_store_get(model_store_t *st, const char *tenant, const char *id, int64_t version, model_rec_t *out,
                    bok_err_t *err);
/* Oldest first; *out is a malloc'd array of *n records (model_rec_list_free). */
int model_store_list(model_store_t *st, const char *tenant, model_rec_t **out, size_t *n, bok_err_t *err);
/* name NULL/"" keeps the name; schema NULL/"" keeps the schema (and version). */
int model_store_update(model_store_t *st, const char *tenant, const char *id, const char *name,
                       const char *schema_json, model_rec_t *out, bok_err_t *err);
/* The default error budget of new jobs: each value set when its set_* flag
 * is on; -1 removes it. INVALID for other negative values or a rate above 1. */
int model_store_set_budget(model_store_t *st, const char *tenant, const char *id, int set_errors, int64_t max_errors,
                           int set_rate, double max_error_rate, bok_err_t *err);
int model_store_delete(model_store_t *st, const char *tenant, const char *id, bok_err_t *err);

void model_rec_free(model_rec_t *r);
void model_rec_list_free(model_rec_t *r, size_t n);

#endif
