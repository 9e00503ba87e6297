/* The job service's mapping from store records to batch.v1 messages
 * (job_proto.h): every field a client sees, times derived at `now`, nested
 * warnings and error summaries, rejected cells, and empty lists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "job_proto.h"

static void test_job_fields_and_nested_lists(void **s) {
  (void)s;
  job_warn_t w[2] = {{"UNKNOWN_COLUMN", "x", "column x is not in the schema"}, {"UNTERMINATED_QUOTE", "", "row 3"}};
  job_summary_t top[1] = {{"NOT_AN_INTEGER", "n", "INTEGER", 3, 10, "\"a\"", 1, "msg"}};
  job_t j;
  memset(&j, 0, sizeof j);
  strcpy(j.job_id, "j1");
  j.tenant_id = "t";
  j.model_id = "m";
  j.model_name = "M";
  j.file_name = "f.csv";
  j.format = "csv";
  j.encoding = "utf-8";
  j.parent_job_id = "";
  j.error = "";
  j.total = 10;
  j.success = 7;
  j.errors = 3;
  j.state = BATCH__V1__JOB_STATE__JOB_STATE_RUNNING;
  j.created_at = 1000;
  j.started_at = 1500;
  j.schema_version = 2;
  j.has_max_errors = 1;
  j.max_errors = 5;
  j.warnings = w;
  j.n_warnings = 2;
  j.top_errors = top;
  j.n_top_errors = 1;
  Batch__V1__Job p;
  job_to_proto(&j, &p, 4000);
  assert_string_equal(p.job_id, "j1");
  assert_string_equal(p.model_name, "M");
  assert_int_equal(p.total, 10);
  assert_int_equal(p.success, 7);
  assert_int_equal(p.errors, 3);
  assert_int_equal(p.waiting_ms, 500);
  assert_int_equal(p.processing_ms, 2500); /* still running at now */
  assert_int_equal(p.schema_version, 2);
  assert_true(p.has_max_errors);
  assert_int_equal(p.max_errors, 5);
  assert_int_equal(p.n_warnings, 2);
  assert_string_equal(p.warnings[1]->code, "UNTERMINATED_QUOTE");
  assert_string_equal(p.warnings[0]->column, "x");
  assert_int_equal(p.n_top_errors, 1);
  assert_string_equal(p.top_errors[0]->code, "NOT_AN_INTEGER");
  assert_int_equal(p.top_errors[0]->count, 3);
  assert_int_equal(p.top_errors[0]->first_row, 10);
  assert_true(p.top_errors[0]->has_example);
  assert_string_equal(p.top_errors[0]->example, "\"a\"");
  /* it packs: the message is well formed */
  size_t n = batch__v1__job__get_packed_size(&p);
  assert_true(n > 0);
  job_proto_release(&p);
  assert_null(p.warnings);
  assert_int_equal(p.n_top_errors, 0);
  j.n_warnings = j.n_top_errors = 0;
  job_to_proto(&j, &p, 4000);
  assert_int_equal(p.n_warnings, 0);
  assert_null(p.warnings);
  job_proto_release(&p);
}

static void test_cells_and_summary(void **s) {
  (void)s;
  job_cell_t c[2] = {{4, "e4", "n", "INTEGER", "NOT_AN_INTEGER", "\"x\"", 1, "m1"},
                     {4, "e4", "v", "STRING", "NULL_VALUE", "", 0, "m2"}};
  Batch__V1__ListRejectedResponse r;
  job_cells_to_proto(c, 2, &r);
  assert_int_equal(r.n_cells, 2);
  assert_int_equal(r.cells[1]->row, 4);
  assert_string_equal(r.cells[1]->code, "NULL_VALUE");
  assert_false(r.cells[1]->has_observed);
  assert_true(r.cells[0]->has_observed);
  assert_string_equal(r.cells[0]->observed, "\"x\"");
  job_cells_proto_release(&r);
  job_cells_to_proto(NULL, 0, &r);
  assert_int_equal(r.n_cells, 0);
  job_cells_proto_release(&r);
  job_summary_t e[1] = {{"C", "col", "T", 9, 2, "", 0, "m"}};
  Batch__V1__ErrorSummary sum;
  job_summary_to_proto(e, 1, &sum);
  assert_int_equal(sum.n_entries, 1);
  assert_int_equal(sum.entries[0]->count, 9);
  assert_string_equal(sum.entries[0]->column, "col");
  job_summary_proto_release(&sum);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_job_fields_and_nested_lists),
                                 cmocka_unit_test(test_cells_and_summary)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
