/* resolver.c -- the job service's background settler (resolver.h).
 *
 * Uploads: a job left "committing" whose upload no longer holds a producer
 * is settled by row_pool_resolve on its last message: committed -> the
 * upload is done, aborted -> FAILED. Not known yet (another transaction holds
 * the partition's last stable offset, or Kafka is down) -> next pass.
 * Staged results: grouped by consumer group, the group's stable committed
 * offsets of the rows topic are listed once per pass; a result whose message
 * lies below its partition's committed offset was covered by a committed
 * worker transaction and is counted (job_store_confirm). */
#include "resolver.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bok/util.h"

struct resolver {
  job_store_t *store;
  row_pool_t *rows;
  int interval_ms, stage_age_ms;
  bok_log_fn log;
  void *lo;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
};

#define LOGR(r, lvl, ...) bok_logf((r)->log, (r)->lo, lvl, __VA_ARGS__)

static void settle_uploads(resolver_t *r) {
  job_committing_t *c;
  size_t n;
  bok_err_t err;
  if (job_store_committing(r->store, &c, &n, &err) != 0) return;
  for (size_t i = 0; i < n; i++) {
    if (row_pool_job_active(r->rows, c[i].job_id)) continue; /* its upload is committing right now */
    int out = c[i].partition < 0 ? 1 : row_pool_resolve(r->rows, c[i].partition, c[i].offset, 2000);
    if (out < 0) continue;
    job_store_commit_outcome(r->store, c[i].job_id, out, "Kafka unavailable (the upload's transaction did not commit)",
                             &err);
    LOGR(r, BOK_LOG_INFO, "job %s: rows transaction %s", c[i].job_id, out ? "committed" : "aborted");
  }
  free(c);
}

/* Staged results s[from..to) share a group: one offsets lookup. */
static size_t settle_group(resolver_t *r, const job_staged_t *s, size_t from, size_t to) {
  int32_t parts[256];
  int64_t committed[256];
  size_t np = 0, counted = 0;
  for (size_t i = from; i < to; i++) {
    size_t k = 0;
    while (k < np && parts[k] != s[i].partition) k++;
    if (k == np && np < 256) parts[np++] = s[i].partition;
  }
  if (!s[from].group[0] || row_pool_committed(r->rows, s[from].group, parts, np, committed, 5000) != 0) return 0;
  bok_err_t err;
  for (size_t i = from; i < to; i++) {
    size_t k = 0;
    while (k < np && parts[k] != s[i].partition) k++;
    if (k < np && committed[k] > s[i].offset && job_store_confirm(r->store, s[i].job_id, s[i].first_row, &err) == 0)
      counted++;
  }
  return counted;
}

static void settle_staged(resolver_t *r) {
  job_staged_t *s;
  size_t n;
  bok_err_t err;
  if (job_store_staged(r->store, bok_now_ms() - r->stage_age_ms, &s, &n, &err) != 0) return;
  size_t counted = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && strcmp(s[j].group, s[i].group) == 0) j++;
    counted += settle_group(r, s, i, j);
    i = j;
  }
  if (counted) LOGR(r, BOK_LOG_INFO, "counted %zu unconfirmed results of committed worker transactions", counted);
  free(s);
}

void resolver_pass(resolver_t *r) {
  settle_uploads(r);
  settle_staged(r);
}

static void *run(void *arg) {
  resolver_t *r = arg;
  pthread_mutex_lock(&r->mu);
  while (!r->stop) {
    /* r->cv is a default (CLOCK_REALTIME) condvar. */
    struct timespec ts = bok_time_deadline(CLOCK_REALTIME, r->interval_ms);
    if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT || r->stop) continue;
    pthread_mutex_unlock(&r->mu);
    resolver_pass(r);
    pthread_mutex_lock(&r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

resolver_t *resolver_start(job_store_t *store, row_pool_t *rows, int interval_ms, int stage_age_ms, bok_log_fn log,
                           void *log_opaque) {
  resolver_t *r = calloc(1, sizeof *r);
  r->store = store;
  r->rows = rows;
  r->interval_ms = interval_ms > 0 ? interval_ms : 1000;
  r->stage_age_ms = stage_age_ms;
  r->log = log;
  r->lo = log_opaque;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  if (pthread_create(&r->th, NULL, run, r) != 0) {
    free(r);
    return NULL;
  }
  return r;
}

void resolver_stop(resolver_t *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->th, NULL);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}
