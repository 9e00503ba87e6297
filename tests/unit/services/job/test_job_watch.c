/* WatchJob's fan-out (job_watch.c) with fake watchers: one store read per
 * change per job whatever the number of watchers, at most one message per
 * interval, counters that only grow, the final state last then the end;
 * watchers that went away are dropped; stop ends the rest UNAVAILABLE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/util.h"
#include "job_fixture.h"
#include "job_watch.h"

#define ST(x) BATCH__V1__JOB_STATE__JOB_STATE_##x
#define NW 50
#define MAXMSG 200

typedef struct {
  pthread_mutex_t mu;
  int n;
  int64_t at[MAXMSG];
  int state[MAXMSG];
  int64_t done[MAXMSG];
  int closed, failed, released, dead;
  bok_err_code_t fail_code;
} fake_t;

static int f_write(void *w, const ProtobufCMessage *m) {
  fake_t *f = w;
  const Batch__V1__Job *j = (const void *)m;
  pthread_mutex_lock(&f->mu);
  if (f->n < MAXMSG) {
    f->at[f->n] = bok_mono_ms();
    f->state[f->n] = j->state;
    f->done[f->n] = j->success + j->errors;
    f->n++;
  }
  int dead = f->dead;
  pthread_mutex_unlock(&f->mu);
  return dead ? -1 : 0;
}
static void f_close(void *w) { ((fake_t *)w)->closed++; }
static void f_fail(void *w, bok_err_code_t code, const char *msg) {
  (void)msg;
  ((fake_t *)w)->failed++;
  ((fake_t *)w)->fail_code = code;
}
static int f_alive(void *w) {
  fake_t *f = w;
  pthread_mutex_lock(&f->mu);
  int a = !f->dead;
  pthread_mutex_unlock(&f->mu);
  return a;
}
static void f_release(void *w) { ((fake_t *)w)->released++; }
static const job_watch_sink_t SINK = {f_write, f_close, f_fail, f_alive, f_release};

static char g_path[64];

static void new_job(job_store_t *st, char id[40]) { fx_new_job(st, "t1", id); }

/* Valid rows [v0, v1). */
static void report(job_store_t *st, const char *id, int64_t v0, int64_t v1) {
  Batch__V1__JobResults r = BATCH__V1__JOB_RESULTS__INIT;
  r.job_id = (char *)id;
  int64_t valid[100];
  for (int64_t i = v0; i < v1; i++) valid[r.n_valid_rows++] = i;
  r.valid_rows = valid;
  bok_err_t err;
  assert_int_equal(job_store_report(st, &r, &err), 0);
}

static int count_msgs(fake_t *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->n;
  pthread_mutex_unlock(&f->mu);
  return n;
}

static void wait_for(fake_t *f, int n) {
  for (int i = 0; i < 300 && count_msgs(f) < n; i++) usleep(10000);
}

static void test_fan_out_rate_and_final_state(void **s) {
  (void)s;
  bok_err_t err;
  job_store_t *st = job_store_open(g_path, &err);
  assert_non_null(st);
  char id[40];
  new_job(st, id);
  job_watch_t *jw = job_watch_start(st, &SINK, 100, NULL, NULL);
  assert_non_null(jw);
  static fake_t w[NW];
  memset(w, 0, sizeof w);
  for (int i = 0; i < NW; i++) {
    pthread_mutex_init(&w[i].mu, NULL);
    assert_int_equal(job_watch_add(jw, id, &w[i]), 0);
  }
  for (int i = 0; i < NW; i++) wait_for(&w[i], 1);
  for (int i = 0; i < NW; i++) {
    assert_int_equal(w[i].n, 1); /* the current state, once */
    assert_int_equal(w[i].state[0], ST(PENDING));
  }
  assert_true(job_watch_reads(jw) <= 2); /* not one read per watcher */
  /* 60 changes over ~600 ms: at most one message per 100 ms, growing */
  uint64_t r0 = job_watch_reads(jw);
  int64_t t0 = bok_mono_ms();
  for (int k = 0; k < 60; k++) {
    report(st, id, 1 + k * 10, 11 + k * 10);
    usleep(10000);
  }
  int64_t took = bok_mono_ms() - t0;
  assert_int_equal(job_store_finish_upload(st, id, "id", 2, 600, &err), 0); /* all 600 rows counted: SUCCESS */
  for (int i = 0; i < NW; i++)
    for (int k = 0; k < 300 && !w[i].closed; k++) usleep(10000);
  uint64_t reads = job_watch_reads(jw) - r0;
  assert_true(reads <= (uint64_t)(took / 100 + 3));
  for (int i = 0; i < NW; i++) {
    fake_t *f = &w[i];
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->released, 1);
    assert_int_equal(f->failed, 0);
    assert_true(f->n >= 3 && (uint64_t)f->n <= reads + 1);
    for (int k = 1; k < f->n; k++) {
      assert_true(f->done[k] >= f->done[k - 1]);
      assert_true(f->at[k] - f->at[k - 1] >= 90); /* ~10 a second at most */
    }
    assert_int_equal(f->state[f->n - 1], ST(SUCCESS));
    assert_int_equal(f->done[f->n - 1], 600);
    for (int k = 0; k < f->n - 1; k++) assert_int_not_equal(f->state[k], ST(SUCCESS));
  }
  job_watch_stop(jw);
  job_store_close(st);
}

static void test_gone_watchers_dropped_and_stop(void **s) {
  (void)s;
  bok_err_t err;
  job_store_t *st = job_store_open(g_path, &err);
  assert_non_null(st);
  char id[40];
  new_job(st, id);
  job_watch_t *jw = job_watch_start(st, &SINK, 100, NULL, NULL);
  static fake_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  pthread_mutex_init(&a.mu, NULL);
  pthread_mutex_init(&b.mu, NULL);
  assert_int_equal(job_watch_add(jw, id, &a), 0);
  assert_int_equal(job_watch_add(jw, id, &b), 0);
  wait_for(&a, 1);
  wait_for(&b, 1);
  pthread_mutex_lock(&a.mu);
  a.dead = 1; /* the client went away */
  pthread_mutex_unlock(&a.mu);
  for (int k = 0; k < 200 && !a.released; k++) usleep(10000); /* the sweep, within ~1 s */
  assert_int_equal(a.released, 1);
  assert_int_equal(a.closed + a.failed, 0);
  job_watch_stop(jw); /* b still watching: ended UNAVAILABLE */
  assert_int_equal(b.failed, 1);
  assert_int_equal(b.fail_code, BOK_ERR_UNAVAILABLE);
  assert_int_equal(b.released, 1);
  report(st, id, 1, 5); /* the hook is gone: nothing calls the stopped watch */
  job_store_close(st);
}

static int setup(void **s) {
  (void)s;
  fx_db_path(g_path, sizeof g_path, "bok_watch");
  return 0;
}

static int teardown(void **s) {
  (void)s;
  fx_db_remove(g_path);
  return 0;
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test_setup_teardown(test_fan_out_rate_and_final_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gone_watchers_dropped_and_stop, setup, teardown)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
