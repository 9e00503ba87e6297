/* Job store: state machine, idempotent per-row reports, cancel rules,
 * rejected paging by rows, reprocess sources, restart durability. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job_fixture.h"
#include "job_store.h"
#include "job_store_int.h"

#define ST(x) BATCH__V1__JOB_STATE__JOB_STATE_##x

static char g_path[64];

static job_store_t *open_store(void) {
  bok_err_t err;
  job_store_t *st = job_store_open(g_path, &err);
  assert_non_null(st);
  return st;
}

static void new_job(job_store_t *st, const char *tenant, char id[40]) { fx_new_job(st, tenant, id); }

/* Storage for up to 16 rejected rows of a test report, one cell each. */
typedef struct {
  Batch__V1__RowRejection rr[16], *rp[16];
  Batch__V1__RejectedCell cell[16], *cp[16];
} rejections_t;

static void fill_rejections(Batch__V1__JobResults *r, rejections_t *x, const int64_t *rej, size_t nrej,
                            const char *code, const char *column) {
  for (size_t i = 0; i < nrej; i++) {
    batch__v1__row_rejection__init(&x->rr[i]);
    batch__v1__rejected_cell__init(&x->cell[i]);
    x->rr[i].row = rej[i];
    x->rr[i].raw.data = (uint8_t *)"raw";
    x->rr[i].raw.len = 3;
    x->cell[i].row = rej[i];
    x->cell[i].code = (char *)code;
    x->cell[i].column = (char *)column;
    x->cell[i].message = "m";
    x->cp[i] = &x->cell[i];
    x->rr[i].cells = &x->cp[i];
    x->rr[i].n_cells = 1;
    x->rp[i] = &x->rr[i];
  }
  r->rejected = x->rp;
  r->n_rejected = nrej;
}

/* A report with valid rows [v0, v1) and rejected rows rej[]. */
static int report(job_store_t *st, const char *id, int64_t v0, int64_t v1, const int64_t *rej, size_t nrej) {
  Batch__V1__JobResults r = BATCH__V1__JOB_RESULTS__INIT;
  r.job_id = (char *)id;
  int64_t valid[1000];
  for (int64_t i = v0; i < v1; i++) valid[r.n_valid_rows++] = i;
  r.valid_rows = valid;
  rejections_t x;
  fill_rejections(&r, &x, rej, nrej, "NOT_A_FLOAT", "amount");
  bok_err_t err;
  return job_store_report(st, &r, &err);
}

static job_t get(job_store_t *st, const char *id) {
  job_t j;
  bok_err_t err;
  assert_int_equal(job_store_get(st, "t1", id, &j, &err), 0);
  return j;
}

static void test_idempotent_reports_and_states(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  job_t j = get(st, id);
  assert_int_equal(j.state, ST(PENDING));
  job_free(&j);
  /* rows arrive before the upload is marked complete (Kafka commit first) */
  int64_t rej[] = {7, 8};
  assert_int_equal(report(st, id, 1, 7, rej, 2), 0);
  assert_int_equal(report(st, id, 1, 7, rej, 2), 0); /* redelivered: ignored */
  j = get(st, id);
  assert_int_equal(j.state, ST(RUNNING));
  assert_int_equal(j.success, 6);
  assert_int_equal(j.errors, 2);
  assert_true(j.started_at > 0);
  job_free(&j);
  bok_err_t err;
  assert_int_equal(job_store_finish_upload(st, id, "a,b", 3, 10, &err), 0);
  j = get(st, id);
  assert_int_equal(j.state, ST(RUNNING)); /* 8 of 10 */
  job_free(&j);
  assert_int_equal(report(st, id, 5, 11, NULL, 0), 0); /* overlaps 5,6 */
  j = get(st, id);
  assert_int_equal(j.success, 8);
  assert_int_equal(j.errors, 2);
  assert_int_equal(j.state, ST(PARTIAL_SUCCESS));
  assert_true(j.finished_at >= j.started_at);
  job_free(&j);
  assert_int_equal(report(st, id, 9, 11, NULL, 0), 0); /* finished: a redelivery is accepted */
  j = get(st, id);
  assert_int_equal(j.success, 8); /* and counts nothing */
  assert_int_equal(j.state, ST(PARTIAL_SUCCESS));
  job_free(&j);
  assert_int_equal(job_store_cancel(st, "t1", id, &j, &err), -1);
  assert_int_equal(err.code, BOK_ERR_CONFLICT);
  job_free(&j);
  job_store_close(st);
}

/* A per-message report: messages given as {first_row, last_row}; rows in
 * rej[] are rejected, every other row of the messages is valid. */
static int report_batches(job_store_t *st, const char *id, const int64_t (*msgs)[2], size_t nmsg, const int64_t *rej,
                          size_t nrej) {
  Batch__V1__JobResults r = BATCH__V1__JOB_RESULTS__INIT;
  r.job_id = (char *)id;
  Batch__V1__BatchResult b[8], *bp[8];
  for (size_t i = 0; i < nmsg; i++) {
    batch__v1__batch_result__init(&b[i]);
    b[i].first_row = msgs[i][0];
    b[i].last_row = msgs[i][1];
    b[i].rows = msgs[i][1] - msgs[i][0] + 1;
    b[i].valid = b[i].rows;
    for (size_t k = 0; k < nrej; k++)
      if (rej[k] >= msgs[i][0] && rej[k] <= msgs[i][1]) b[i].valid--;
    bp[i] = &b[i];
  }
  r.batches = bp;
  r.n_batches = nmsg;
  rejections_t x;
  fill_rejections(&r, &x, rej, nrej, "NOT_AN_INTEGER", "n");
  bok_err_t err;
  return job_store_report(st, &r, &err);
}

/* Per-message reports: a redelivered message (alone or next to new ones) is
 * counted once, with its rejected rows stored once. */
/* started_at marks the first processing (a worker asked for the spec): set
 * once, the state stays PENDING, the first report keeps it, and a finished
 * job is not touched. */
static void test_started_when_a_worker_takes_the_job(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40], done[40];
  bok_err_t err;
  new_job(st, "t1", id);
  assert_int_equal(job_store_mark_started(st, id, &err), 0);
  job_t j = get(st, id);
  int64_t started = j.started_at;
  assert_true(started > 0);
  assert_int_equal(j.state, ST(PENDING));
  job_free(&j);
  usleep(5000);
  assert_int_equal(job_store_mark_started(st, id, &err), 0); /* another lane: no change */
  assert_int_equal(report(st, id, 1, 3, NULL, 0), 0);
  j = get(st, id);
  assert_int_equal(j.started_at, started);
  assert_int_equal(j.state, ST(RUNNING));
  job_free(&j);
  new_job(st, "t1", done);
  assert_int_equal(job_store_cancel(st, "t1", done, &j, &err), 0);
  job_free(&j);
  assert_int_equal(job_store_mark_started(st, done, &err), 0);
  j = get(st, done);
  assert_int_equal(j.started_at, 0);
  job_free(&j);
  assert_int_equal(job_store_mark_started(st, "no-such-job", &err), 0);
  job_store_close(st);
}

static void test_batch_reports_count_each_message_once(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  bok_err_t err;
  assert_int_equal(job_store_finish_upload(st, id, "a,b", 3, 1500, &err), 0);
  const int64_t m1[][2] = {{1, 500}, {501, 1000}};
  const int64_t rej1[] = {10, 20, 700};
  assert_int_equal(report_batches(st, id, m1, 2, rej1, 3), 0);
  job_t j = get(st, id);
  assert_int_equal(j.success, 997);
  assert_int_equal(j.errors, 3);
  assert_int_equal(j.state, ST(RUNNING));
  job_free(&j);
  job_store_close(st); /* a restart keeps which messages were counted */
  st = open_store();
  /* the second message again (a worker died before committing its offsets),
   * in one report with the third */
  const int64_t m2[][2] = {{501, 1000}, {1001, 1500}};
  const int64_t rej2[] = {700, 1499};
  assert_int_equal(report_batches(st, id, m2, 2, rej2, 2), 0);
  j = get(st, id);
  assert_int_equal(j.success, 1496);
  assert_int_equal(j.errors, 4);
  assert_int_equal(j.success + j.errors, 1500);
  assert_int_equal(j.state, ST(PARTIAL_SUCCESS));
  job_free(&j);
  job_cell_t *r;
  size_t nr;
  assert_int_equal(job_store_rejected(st, "t1", id, 100, 0, &r, &nr, &err), 0);
  assert_int_equal(nr, 4);
  assert_int_equal(r[0].row, 10);
  assert_int_equal(r[1].row, 20);
  assert_int_equal(r[2].row, 700);
  assert_int_equal(r[3].row, 1499);
  job_cells_free(r, nr);
  /* a redelivery after the job finished changes nothing */
  const int64_t m3[][2] = {{1, 500}};
  assert_int_equal(report_batches(st, id, m3, 1, rej1, 2), 0);
  j = get(st, id);
  assert_int_equal(j.success, 1496);
  assert_int_equal(j.errors, 4);
  job_free(&j);
  job_store_close(st);
}

static void test_success_failed_cancel(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char a[40], b[40], c[40];
  bok_err_t err;
  new_job(st, "t1", a);
  job_store_finish_upload(st, a, "h", 1, 3, &err);
  report(st, a, 1, 4, NULL, 0);
  job_t j = get(st, a);
  assert_int_equal(j.state, ST(SUCCESS));
  job_free(&j);
  new_job(st, "t1", b);
  job_store_finish_upload(st, b, "h", 1, 2, &err);
  int64_t rej[] = {1, 2};
  report(st, b, 0, 0, rej, 2);
  j = get(st, b);
  assert_int_equal(j.state, ST(FAILED));
  job_free(&j);
  new_job(st, "t1", c);
  job_store_finish_upload(st, c, "h", 1, 100, &err);
  report(st, c, 1, 11, NULL, 0);
  assert_int_equal(job_store_cancel(st, "t2", c, &j, &err), -1); /* other tenant */
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  assert_int_equal(job_store_cancel(st, "t1", c, &j, &err), 0);
  job_free(&j);
  assert_int_equal(report(st, c, 11, 50, NULL, 0), 1); /* frozen */
  j = get(st, c);
  assert_int_equal(j.state, ST(CANCELLED));
  assert_int_equal(j.success, 10);
  job_free(&j);
  /* list: newest first, state filter, tenant scoped */
  job_t *list;
  size_t n;
  assert_int_equal(job_store_list(st, "t1", 0, 0, &list, &n, &err), 0);
  assert_int_equal(n, 3);
  assert_string_equal(list[0].job_id, c);
  job_list_free(list, n);
  assert_int_equal(job_store_list(st, "t1", ST(SUCCESS), 0, &list, &n, &err), 0);
  assert_int_equal(n, 1);
  job_list_free(list, n);
  assert_int_equal(job_store_list(st, "t2", 0, 0, &list, &n, &err), 0);
  assert_int_equal(n, 0);
  job_list_free(list, n);
  job_store_close(st);
}

static void on_settle(void *ud, const char *job_id) {
  (void)job_id;
  (*(int *)ud)++;
}

/* With a settle hook, a job that published events is settling (RUNNING,
 * every row counted) until job_store_finish_settled; a job without events is
 * final at once. (A restart while settling: test_visibility.py.) */
static void test_settling_until_events_are_readable(void **s) {
  (void)s;
  job_store_t *st = open_store();
  int kicks = 0;
  job_store_set_settle(st, on_settle, &kicks);
  char a[40], b[40];
  bok_err_t err;
  new_job(st, "t1", a);
  job_store_finish_upload(st, a, "h", 1, 3, &err);
  report(st, a, 1, 4, NULL, 0);
  job_t j = get(st, a);
  assert_int_equal(j.state, ST(RUNNING));
  assert_int_equal(j.success, 3);
  job_free(&j);
  assert_int_equal(kicks, 1);
  job_settling_t *list;
  size_t n;
  assert_int_equal(job_store_settling(st, &list, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].job_id, a);
  free(list);
  new_job(st, "t1", b); /* every row rejected: nothing to wait for */
  job_store_finish_upload(st, b, "h", 1, 2, &err);
  int64_t rej[] = {1, 2};
  report(st, b, 0, 0, rej, 2);
  j = get(st, b);
  assert_int_equal(j.state, ST(FAILED));
  job_free(&j);
  assert_int_equal(kicks, 1);
  assert_int_equal(job_store_finish_settled(st, b, &err), 0); /* not settling: no-op */
  assert_int_equal(job_store_finish_settled(st, a, &err), 0);
  j = get(st, a);
  assert_int_equal(j.state, ST(SUCCESS));
  assert_true(j.finished_at > 0);
  job_free(&j);
  assert_int_equal(job_store_settling(st, &list, &n, &err), 0);
  assert_int_equal(n, 0);
  free(list);
  job_store_close(st);
}

static int count_rows(void *ud, int64_t row, const void *raw, size_t len) {
  (void)row;
  assert_int_equal(len, 3);
  assert_memory_equal(raw, "raw", 3);
  (*(int *)ud)++;
  return 0;
}

static void test_rejected_paging_and_restart(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  int64_t rej[] = {2, 4, 6, 8, 10};
  report(st, id, 0, 0, rej, 5);
  job_store_close(st);
  st = open_store(); /* restart: everything is still there */
  job_cell_t *r;
  size_t nr;
  bok_err_t err;
  assert_int_equal(job_store_rejected(st, "t1", id, 2, 0, &r, &nr, &err), 0);
  assert_int_equal(nr, 2);
  assert_int_equal(r[0].row, 2);
  assert_int_equal(r[1].row, 4);
  job_cells_free(r, nr);
  assert_int_equal(job_store_rejected(st, "t1", id, 2, 8, &r, &nr, &err), 0);
  assert_int_equal(nr, 1);
  assert_int_equal(r[0].row, 10);
  assert_string_equal(r[0].code, "NOT_A_FLOAT");
  job_cells_free(r, nr);
  assert_int_equal(job_store_rejected(st, "t2", id, 2, 0, &r, &nr, &err), -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  job_cells_free(r, nr);
  int n = 0;
  assert_int_equal(job_store_each_rejected_row(st, id, count_rows, &n, &err), 0);
  assert_int_equal(n, 5);
  /* a job left uploading by a crash becomes FAILED on start-up */
  assert_int_equal(job_store_fail_interrupted(st), 1);
  job_t j = get(st, id);
  assert_int_equal(j.state, ST(FAILED));
  assert_non_null(strstr(j.error, "interrupted"));
  job_free(&j);
  job_store_close(st);
}

/* The schema the workers validate with is stored with the job (GetJobSpec
 * reads it back); a job created without one reads "". */
static void test_schema_kept_with_the_job(void **s) {
  (void)s;
  job_store_t *st = open_store();
  job_t j;
  fx_job_init(&j, "t1");
  j.schema_version = 3;
  j.schema_json = "{\"type\":\"object\"}";
  bok_err_t err;
  assert_int_equal(job_store_create(st, &j, &err), 0);
  char old[40], *json = NULL;
  new_job(st, "t1", old);
  job_store_close(st);
  st = open_store(); /* durable */
  assert_int_equal(job_store_schema(st, j.job_id, &json, &err), 0);
  assert_string_equal(json, "{\"type\":\"object\"}");
  free(json);
  assert_int_equal(job_store_schema(st, old, &json, &err), 0);
  assert_string_equal(json, "");
  free(json);
  assert_int_equal(job_store_schema(st, "nope", &json, &err), -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  assert_null(json);
  job_store_close(st);
}

/* The error summary is kept at counting time: a redelivered message adds
 * nothing, first_row is the lowest row whatever the counting order, and the
 * job carries the largest entries. */
static void test_error_summary_counted_once(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  bok_err_t err;
  assert_int_equal(job_store_finish_upload(st, id, "a,b", 3, 1500, &err), 0);
  const int64_t m2[][2] = {{501, 1000}};
  const int64_t rej2[] = {700, 800};
  assert_int_equal(report_batches(st, id, m2, 1, rej2, 2), 0); /* counted before the first message */
  const int64_t m1[][2] = {{1, 500}};
  const int64_t rej1[] = {10};
  assert_int_equal(report_batches(st, id, m1, 1, rej1, 1), 0);
  assert_int_equal(report_batches(st, id, m2, 1, rej2, 2), 0); /* redelivered */
  job_summary_t *e;
  size_t n;
  assert_int_equal(job_store_summary(st, "t1", id, 0, &e, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(e[0].code, "NOT_AN_INTEGER");
  assert_string_equal(e[0].column, "n");
  assert_int_equal(e[0].count, 3);
  assert_int_equal(e[0].first_row, 10);
  job_summary_free(e, n);
  job_t j = get(st, id);
  assert_int_equal(j.errors, 3);
  assert_int_equal(j.n_top_errors, 1);
  assert_int_equal(j.top_errors[0].count, 3);
  job_free(&j);
  assert_int_equal(job_store_summary(st, "t2", id, 0, &e, &n, &err), -1); /* another tenant's */
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  job_store_close(st);
}

/* GetJob's read (job_store_get_committed): the same job as job_store_get,
 * tenant checked, and it never waits for the store's lock: called from the
 * change hook (the writer holds the lock, its transaction still open) it
 * answers at once with the last committed counters. */
static job_store_t *g_hook_st;
static int g_hook_calls;
static int64_t g_hook_success = -1;

static void hook_reads_committed(void *ud, const char *id) {
  (void)ud;
  job_t j;
  bok_err_t err;
  if (job_store_get_committed(g_hook_st, "t1", id, &j, &err) == 0) {
    g_hook_success = j.success;
    job_free(&j);
  }
  g_hook_calls++;
}

/* Rows rej[] rejected with one cell (code, column), per-row report. */
static void reject_rows(job_store_t *st, const char *id, const int64_t *rej, size_t nrej, const char *code,
                        const char *column) {
  Batch__V1__JobResults r = BATCH__V1__JOB_RESULTS__INIT;
  r.job_id = (char *)id;
  rejections_t x;
  fill_rejections(&r, &x, rej, nrej, code, column);
  bok_err_t err;
  assert_int_equal(job_store_report(st, &r, &err), 0);
}

/* GetJob's top errors (sorted in C) are exactly job_store_get's (SQL ORDER
 * BY count DESC, first_row, code, col). */
static void test_get_committed_top_errors(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  bok_err_t err;
  assert_int_equal(job_store_finish_upload(st, id, "a,b", 3, 1000, &err), 0);
  const int64_t r1[] = {50, 60}, r2[] = {20, 70}, r3[] = {5}, r4[] = {30, 80, 90}, r5[] = {40, 41};
  reject_rows(st, id, r1, 2, "NOT_A_FLOAT", "amount");  /* 2, first 50 */
  reject_rows(st, id, r2, 2, "NOT_A_FLOAT", "qty");     /* 2, first 20 */
  reject_rows(st, id, r3, 1, "MISSING", "amount");      /* 1 */
  reject_rows(st, id, r4, 3, "TOO_LONG", "note");       /* 3 */
  reject_rows(st, id, r5, 2, "ENUM", "country");        /* 2, first 40 */
  job_t a = get(st, id), b;
  assert_int_equal(job_store_get_committed(st, "t1", id, &b, &err), 0);
  assert_int_equal(a.n_top_errors, 3);
  assert_int_equal(b.n_top_errors, a.n_top_errors);
  for (size_t i = 0; i < a.n_top_errors; i++) {
    assert_string_equal(b.top_errors[i].code, a.top_errors[i].code);
    assert_string_equal(b.top_errors[i].column, a.top_errors[i].column);
    assert_int_equal(b.top_errors[i].count, a.top_errors[i].count);
    assert_int_equal(b.top_errors[i].first_row, a.top_errors[i].first_row);
  }
  assert_string_equal(b.top_errors[0].code, "TOO_LONG");
  assert_string_equal(b.top_errors[1].column, "qty");
  assert_string_equal(b.top_errors[2].column, "country");
  job_free(&a);
  job_free(&b);
  job_store_close(st);
}

static void test_get_committed_beside_the_writer(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  bok_err_t err;
  assert_int_equal(job_store_finish_upload(st, id, "a,b", 3, 1500, &err), 0);
  const int64_t m1[][2] = {{1, 500}};
  const int64_t rej1[] = {10};
  assert_int_equal(report_batches(st, id, m1, 1, rej1, 1), 0);
  job_t a = get(st, id), b;
  assert_int_equal(job_store_get_committed(st, "t1", id, &b, &err), 0);
  assert_string_equal(a.job_id, b.job_id);
  assert_int_equal(a.state, b.state);
  assert_int_equal(a.total, b.total);
  assert_int_equal(a.success, b.success);
  assert_int_equal(a.errors, b.errors);
  assert_int_equal(b.n_top_errors, 1);
  assert_int_equal(b.top_errors[0].count, 1);
  job_free(&a);
  job_free(&b);
  assert_int_equal(job_store_get_committed(st, "t2", id, &b, &err), -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  assert_int_equal(job_store_get_committed(st, "t1", "no-such-job", &b, &err), -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  g_hook_st = st;
  job_store_set_watch(st, hook_reads_committed, NULL);
  const int64_t m2[][2] = {{501, 1000}};
  assert_int_equal(report_batches(st, id, m2, 1, NULL, 0), 0);
  job_store_set_watch(st, NULL, NULL);
  assert_true(g_hook_calls > 0);
  assert_int_equal(g_hook_success, 499); /* rows 1..500 but row 10: not yet the second message's */
  assert_int_equal(job_store_get_committed(st, "t1", id, &b, &err), 0);
  assert_int_equal(b.success, 999);
  job_free(&b);
  job_store_close(st);
}

static void test_error_budget_stops_the_job(void **s) {
  (void)s;
  job_store_t *st = open_store();
  job_t nj;
  fx_job_init(&nj, "t1");
  nj.has_max_errors = 1;
  nj.max_errors = 2;
  bok_err_t err;
  assert_int_equal(job_store_create(st, &nj, &err), 0);
  assert_int_equal(job_store_finish_upload(st, nj.job_id, "a,b", 3, 100, &err), 0);
  const int64_t rej[] = {3, 4};
  assert_int_equal(report(st, nj.job_id, 1, 3, rej, 2), 0); /* 2 rejected: within the budget */
  job_t j = get(st, nj.job_id);
  assert_int_equal(j.state, ST(RUNNING));
  job_free(&j);
  const int64_t rej2[] = {6};
  assert_int_equal(report(st, nj.job_id, 5, 6, rej2, 1), 0);
  j = get(st, nj.job_id);
  assert_int_equal(j.state, ST(FAILED));
  assert_true(j.halted);
  assert_string_equal(j.error, "error budget exceeded: 3 of the first 6 rows rejected (limit 2 rejected rows); "
                               "3 events were already published");
  job_free(&j);
  /* its remaining rows are skipped as for a cancelled job */
  Batch__V1__JobResults r = BATCH__V1__JOB_RESULTS__INIT;
  r.job_id = nj.job_id;
  assert_int_equal(job_store_stage(st, &r, "g", &err), 1);
  job_store_close(st);
}

static void test_budget_messages(void **s) {
  (void)s;
  char m[300];
  job_budget_message(1204, 5000, 1, 0.1, -1, 3796, 0, m, sizeof m);
  assert_string_equal(m, "error budget exceeded: 1,204 of the first 5,000 rows rejected (limit 10%); "
                         "3,796 events were already published");
  job_budget_message(1, 1, 0, -1, 0, 0, 1, m, sizeof m);
  assert_string_equal(m, "error budget exceeded: 1 of the first 1 rows rejected (limit 0 rejected rows); "
                         "dry run, no event published");
}

static int setup(void **s) {
  (void)s;
  fx_db_path(g_path, sizeof g_path, "bok_jobs");
  return 0;
}

static int teardown(void **s) {
  (void)s;
  fx_db_remove(g_path);
  return 0;
}

/* js_prep keeps each statement (no compile per call); a second use of the
 * same text while the first is still open gets its own; a statement comes
 * back reset and unbound; close finalizes them all (the database closes:
 * no statement left behind, which ASan's leak check would see). */
static void test_statement_cache(void **s) {
  (void)s;
  job_store_t *st = open_store();
  char id[40];
  new_job(st, "t1", id);
  pthread_mutex_lock(&st->s.mu);
  char sql[] = "SELECT state FROM jobs WHERE job_id=?1";
  sqlite3_stmt *a = js_prep(st, sql);
  assert_non_null(a);
  sqlite3_bind_text(a, 1, id, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(a), SQLITE_ROW);
  sqlite3_stmt *b = js_prep(st, "SELECT state FROM jobs WHERE job_id=?1"); /* same text, a still open */
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  sqlite3_bind_text(b, 1, id, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(b), SQLITE_ROW);
  js_done(st, b); /* not cached: finalized */
  js_done(st, a);
  assert_int_equal(sqlite3_stmt_busy(a), 0);
  sqlite3_stmt *c = js_prep(st, "SELECT state FROM jobs WHERE job_id=?1"); /* another pointer, same text */
  assert_ptr_equal(c, a);
  assert_int_equal(sqlite3_step(c), SQLITE_DONE); /* bindings were cleared: job_id NULL matches nothing */
  js_done(st, c);
  assert_null(js_prep(st, "SELECT nonsense FROM nowhere"));
  js_done(st, NULL);
  pthread_mutex_unlock(&st->s.mu);
  job_t j = get(st, id); /* the store still works around the cached statements */
  assert_int_equal(j.state, ST(PENDING));
  job_free(&j);
  job_store_close(st);
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test_setup_teardown(test_idempotent_reports_and_states, setup, teardown),
      cmocka_unit_test_setup_teardown(test_started_when_a_worker_takes_the_job, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_reports_count_each_message_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_success_failed_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejected_paging_and_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_summary_counted_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_kept_with_the_job, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_committed_beside_the_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_committed_top_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_budget_stops_the_job, setup, teardown),
      cmocka_unit_test(test_budget_messages),
      cmocka_unit_test_setup_teardown(test_statement_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(test_settling_until_events_are_readable, setup, teardown)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
