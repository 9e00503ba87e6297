/* job_fixture.h -- what the job service's unit tests share: a job row to
 * count results against, and a temporary database file removed with its
 * WAL files. Include after <cmocka.h>. */
#ifndef JOB_FIXTURE_H
#define JOB_FIXTURE_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "job_store.h"

/* A job of `tenant` to create: model m1 v1, csv, topic t. */
static inline void fx_job_init(job_t *j, const char *tenant) {
  memset(j, 0, sizeof *j);
  j->tenant_id = (char *)tenant;
  j->model_id = "m1";
  j->model_name = "Model";
  j->file_name = "f.csv";
  j->format = "csv";
  j->topic = "t";
  j->schema_version = 1;
}

/* A PENDING job made by fx_job_init; its id in id. */
static inline void fx_new_job(job_store_t *st, const char *tenant, char id[40]) {
  job_t j;
  fx_job_init(&j, tenant);
  bok_err_t err;
  assert_int_equal(job_store_create(st, &j, &err), 0);
  strcpy(id, j.job_id);
}

/* /tmp/{name}_{pid}.db in path, no such file yet. */
static inline void fx_db_path(char *path, size_t n, const char *name) {
  snprintf(path, n, "/tmp/%s_%d.db", name, (int)getpid());
  unlink(path);
}

/* Removes the database and its -wal and -shm files. */
static inline void fx_db_remove(const char *path) {
  char p[300];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

#endif
