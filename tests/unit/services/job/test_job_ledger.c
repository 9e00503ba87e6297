/* Job ledger (job_ledger.c): reports checked against the messages written,
 * staged results that count only when confirmed, commit outcomes, the lists
 * the resolver settles. Mirrors services/job/job_ledger.c. */
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

#define ST(x) BATCH__V1__JOB_STATE__JOB_STATE_##x

static job_store_t *open_mem(void) {
  bok_err_t err;
  job_store_t *st = job_store_open(":memory:", &err);
  assert_non_null(st);
  return st;
}

static void new_job(job_store_t *st, char id[40]) { fx_new_job(st, "t1", id); }

/* A job of 20 rows in two messages (rows 1-10 at p0@5, 11-20 at p1@7). */
static void prepared_job(job_store_t *st, char id[40]) {
  new_job(st, id);
  job_msg_t msgs[2] = {{1, 10, 10, 0, 5}, {11, 20, 10, 1, 7}};
  bok_err_t err;
  assert_int_equal(job_store_prepare_commit(st, id, "a,b", 3, 20, msgs, 2, NULL, NULL, 0, &err), 0);
}

static job_t get(job_store_t *st, const char *id) {
  job_t j;
  bok_err_t err;
  assert_int_equal(job_store_get(st, NULL, id, &j, &err), 0);
  return j;
}

/* One message's result: valid rows, and `nrej` rejected rows from `rej`. */
typedef struct {
  Batch__V1__JobResults res;
  Batch__V1__BatchResult b, *bp;
  Batch__V1__RowRejection rr[10], *rp[10];
  Batch__V1__RejectedCell cell[10], *cp[10];
} report_t;

static void make_report(report_t *r, const char *id, int64_t first, int64_t last, int64_t rows, int64_t valid,
                        const int64_t *rej, size_t nrej) {
  memset(r, 0, sizeof *r);
  batch__v1__job_results__init(&r->res);
  batch__v1__batch_result__init(&r->b);
  r->res.job_id = (char *)id;
  r->b.first_row = first;
  r->b.last_row = last;
  r->b.rows = rows;
  r->b.valid = valid;
  r->bp = &r->b;
  r->res.batches = &r->bp;
  r->res.n_batches = 1;
  for (size_t i = 0; i < nrej; i++) {
    batch__v1__row_rejection__init(&r->rr[i]);
    batch__v1__rejected_cell__init(&r->cell[i]);
    r->rr[i].row = rej[i];
    r->cell[i].row = rej[i];
    r->cell[i].code = "NOT_A_FLOAT";
    r->cell[i].column = "b";
    r->cell[i].message = "m";
    r->cp[i] = &r->cell[i];
    r->rr[i].cells = &r->cp[i];
    r->rr[i].n_cells = 1;
    r->rp[i] = &r->rr[i];
  }
  r->res.rejected = r->rp;
  r->res.n_rejected = nrej;
}

static void test_staged_results_count_only_when_confirmed(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char id[40];
  bok_err_t err;
  prepared_job(st, id);
  assert_int_equal(job_store_commit_outcome(st, id, 1, NULL, &err), 0);
  int64_t rej[] = {3, 4};
  report_t r;
  make_report(&r, id, 1, 10, 10, 8, rej, 2);
  assert_int_equal(job_store_stage(st, &r.res, "g", &err), 0);
  job_t j = get(st, id);
  assert_int_equal(j.success + j.errors, 0); /* staged, not counted */
  assert_int_equal(j.state, ST(PENDING));
  job_free(&j);
  assert_int_equal(job_store_confirm(st, id, 1, &err), 0);
  assert_int_equal(job_store_confirm(st, id, 1, &err), 0); /* idempotent */
  j = get(st, id);
  assert_int_equal(j.success, 8);
  assert_int_equal(j.errors, 2);
  assert_int_equal(j.state, ST(RUNNING));
  job_free(&j);
  /* a redelivery of a counted message is not staged again */
  assert_int_equal(job_store_stage(st, &r.res, "g", &err), 0);
  job_staged_t *s;
  size_t n;
  assert_int_equal(job_store_staged(st, INT64_MAX, &s, &n, &err), 0);
  assert_int_equal(n, 0);
  free(s);
  make_report(&r, id, 11, 20, 10, 10, NULL, 0);
  assert_int_equal(job_store_stage(st, &r.res, "g", &err), 0);
  assert_int_equal(job_store_confirm(st, id, 11, &err), 0);
  j = get(st, id);
  assert_int_equal(j.state, ST(PARTIAL_SUCCESS)); /* final once everything is confirmed */
  assert_int_equal(j.success, 18);
  job_free(&j);
  job_store_close(st);
}

/* ConfirmResults' form: several messages in one transaction count as the
 * same confirms one by one would (the job final at the last), a message
 * listed twice or confirmed again counts once. */
static void test_confirm_many_counts_like_single_confirms(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char id[40];
  bok_err_t err;
  prepared_job(st, id);
  assert_int_equal(job_store_commit_outcome(st, id, 1, NULL, &err), 0);
  int64_t rej[] = {12};
  report_t a, b;
  make_report(&a, id, 1, 10, 10, 10, NULL, 0);
  make_report(&b, id, 11, 20, 10, 9, rej, 1);
  assert_int_equal(job_store_stage(st, &a.res, "g", &err), 0);
  assert_int_equal(job_store_stage(st, &b.res, "g", &err), 0);
  const char *ids[] = {id, id, id};
  int64_t firsts[] = {1, 11, 1};
  assert_int_equal(job_store_confirm_many(st, ids, firsts, 3, &err), 0);
  assert_int_equal(job_store_confirm_many(st, ids, firsts, 2, &err), 0); /* again: nothing staged */
  assert_int_equal(job_store_confirm_many(st, ids, firsts, 0, &err), 0);
  job_t j = get(st, id);
  assert_int_equal(j.success, 19);
  assert_int_equal(j.errors, 1);
  assert_int_equal(j.state, ST(PARTIAL_SUCCESS));
  job_free(&j);
  job_staged_t *s;
  size_t n;
  assert_int_equal(job_store_staged(st, INT64_MAX, &s, &n, &err), 0);
  assert_int_equal(n, 0);
  free(s);
  job_store_close(st);
}

static void test_reports_that_do_not_match_are_refused(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char id[40];
  bok_err_t err;
  prepared_job(st, id);
  report_t r;
  int64_t out[] = {11}, twice[] = {3, 3}, one[] = {3};
  struct {
    int64_t first, last, rows, valid;
    const int64_t *rej;
    size_t nrej;
  } bad[] = {
      {5, 10, 6, 6, NULL, 0},                   /* no such message */
      {1, 10, 11, 11, NULL, 0},                 /* rows differ */
      {1, 9, 10, 10, NULL, 0},                  /* last row differs */
      {1, 10, 10, 4611686018427387904LL, NULL, 0}, /* valid > rows */
      {1, 10, 10, -7, NULL, 0},                 /* negative */
      {1, 10, 10, 9, NULL, 0},                  /* a rejected row missing */
      {1, 10, 10, 9, out, 1},                   /* rejected row outside every message */
      {1, 10, 10, 8, twice, 2},                 /* the same row twice */
      {1, 10, 10, 10, one, 1},                  /* valid + rejected > rows */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    make_report(&r, id, bad[i].first, bad[i].last, bad[i].rows, bad[i].valid, bad[i].rej, bad[i].nrej);
    assert_int_equal(job_store_stage(st, &r.res, "g", &err), -1);
    assert_int_equal(err.code, BOK_ERR_INVALID);
  }
  /* per-row results (the old protocol) are refused from the wire */
  int64_t rows[] = {-7, 99999999};
  Batch__V1__JobResults pr = BATCH__V1__JOB_RESULTS__INIT;
  pr.job_id = id;
  pr.valid_rows = rows;
  pr.n_valid_rows = 2;
  assert_int_equal(job_store_stage(st, &pr, "g", &err), -1);
  job_staged_t *s;
  size_t n;
  assert_int_equal(job_store_staged(st, INT64_MAX, &s, &n, &err), 0);
  assert_int_equal(n, 0); /* nothing was recorded */
  free(s);
  job_store_close(st);
}

static void test_commit_outcomes_and_the_committing_list(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char a[40], b[40];
  bok_err_t err;
  prepared_job(st, a);
  prepared_job(st, b);
  job_committing_t *c;
  size_t n;
  assert_int_equal(job_store_committing(st, &c, &n, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(c[0].partition, 1); /* the last message: rows 11-20 */
  assert_int_equal(c[0].offset, 7);
  free(c);
  assert_int_equal(job_store_commit_outcome(st, a, 0, "Kafka unavailable", &err), 0);
  job_t j = get(st, a);
  assert_int_equal(j.state, ST(FAILED));
  assert_string_equal(j.error, "Kafka unavailable");
  job_free(&j);
  /* a worker's report proves the rows committed */
  report_t r;
  make_report(&r, b, 1, 10, 10, 10, NULL, 0);
  assert_int_equal(job_store_stage(st, &r.res, "g", &err), 0);
  assert_int_equal(job_store_committing(st, &c, &n, &err), 0);
  assert_int_equal(n, 0);
  free(c);
  /* an outcome for a job no longer committing changes nothing */
  assert_int_equal(job_store_commit_outcome(st, b, 0, "late", &err), 0);
  j = get(st, b);
  assert_int_equal(j.state, ST(PENDING));
  job_free(&j);
  job_store_close(st);
}

static void test_staged_list_for_the_resolver(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char id[40];
  bok_err_t err;
  prepared_job(st, id);
  report_t r;
  make_report(&r, id, 11, 20, 10, 10, NULL, 0);
  assert_int_equal(job_store_stage(st, &r.res, "workers-a", &err), 0);
  job_staged_t *s;
  size_t n;
  assert_int_equal(job_store_staged(st, 0, &s, &n, &err), 0); /* too young */
  assert_int_equal(n, 0);
  free(s);
  assert_int_equal(job_store_staged(st, INT64_MAX, &s, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(s[0].group, "workers-a");
  assert_int_equal(s[0].first_row, 11);
  assert_int_equal(s[0].partition, 1);
  assert_int_equal(s[0].offset, 7);
  free(s);
  /* cancelled: staging answers 1, and the staged rows are dropped */
  job_t out;
  assert_int_equal(job_store_cancel(st, "t1", id, &out, &err), 0);
  job_free(&out);
  assert_int_equal(job_store_stage(st, &r.res, "g", &err), 1);
  assert_int_equal(job_store_staged(st, INT64_MAX, &s, &n, &err), 0);
  assert_int_equal(n, 0);
  free(s);
  job_store_close(st);
}

static void test_malformed_rows_are_counted_at_prepare(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char id[40];
  bok_err_t err;
  new_job(st, id);
  report_t r;
  int64_t rej[] = {2};
  make_report(&r, id, 0, 0, 0, 0, rej, 1);
  r.res.n_batches = 0; /* per-row form: the job service's own rejections */
  job_msg_t msgs[1] = {{1, 3, 2, 0, 1}};
  assert_int_equal(job_store_prepare_commit(st, id, "a", 1, 3, msgs, 1, &r.res, NULL, 0, &err), 0);
  job_t j = get(st, id);
  assert_int_equal(j.errors, 1);
  assert_int_equal(j.total, 3);
  assert_string_equal(j.header, "a");
  assert_int_equal(j.state, ST(RUNNING)); /* not final: the upload is not done */
  job_free(&j);
  job_store_close(st);
}

static void test_cancelled_during_upload_stays_cancelled(void **state) {
  (void)state;
  job_store_t *st = open_mem();
  char id[40];
  bok_err_t err;
  new_job(st, id);
  job_t out;
  assert_int_equal(job_store_cancel(st, "t1", id, &out, &err), 0);
  job_free(&out);
  report_t r;
  int64_t rej[] = {2};
  make_report(&r, id, 0, 0, 0, 0, rej, 1);
  r.res.n_batches = 0;
  job_msg_t msgs[1] = {{1, 3, 2, 0, 1}};
  assert_int_equal(job_store_prepare_commit(st, id, "a", 1, 3, msgs, 1, &r.res, NULL, 0, &err), 0);
  job_t j = get(st, id);
  assert_int_equal(j.state, ST(CANCELLED)); /* the malformed rows do not revive it */
  assert_int_equal(j.errors, 0);
  job_free(&j);
  job_store_close(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_staged_results_count_only_when_confirmed),
      cmocka_unit_test(test_confirm_many_counts_like_single_confirms),
      cmocka_unit_test(test_reports_that_do_not_match_are_refused),
      cmocka_unit_test(test_commit_outcomes_and_the_committing_list),
      cmocka_unit_test(test_staged_list_for_the_resolver),
      cmocka_unit_test(test_malformed_rows_are_counted_at_prepare),
      cmocka_unit_test(test_cancelled_during_upload_stays_cancelled),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
