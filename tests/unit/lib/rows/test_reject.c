/* Rejected rows as both services report them (bok/reject.h): the cells of a
 * validator's result copied with their row and raw bytes, the MALFORMED_ROW
 * text the guide shows, appending and freeing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bok/reject.h"
#include "bok/rows.h"

static void test_malformed_text(void **s) {
  (void)s;
  Batch__V1__RowRejection *r = bok_reject_malformed(7, "a,\"b", 4, "unterminated quoted field");
  assert_non_null(r);
  assert_int_equal(r->row, 7);
  assert_int_equal(r->raw.len, 4);
  assert_memory_equal(r->raw.data, "a,\"b", 4);
  assert_int_equal(r->n_cells, 1);
  Batch__V1__RejectedCell *c = r->cells[0];
  assert_int_equal(c->row, 7);
  assert_string_equal(c->code, "MALFORMED_ROW");
  assert_string_equal(c->message, "Row 7 is malformed: unterminated quoted field.");
  assert_string_equal(c->column, "");
  assert_string_equal(c->type, "");
  assert_string_equal(c->event_id, "");
  assert_false(c->has_observed);
  bok_reject_free(r);
}

/* The worker's rejection and the validator's result say the same. */
static void test_from_validator(void **s) {
  (void)s;
  const char *schema = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
                       "\"name\":{\"type\":\"string\"}},\"required\":[\"id\",\"name\"]}";
  char err[256];
  bok_schema_t *sc = NULL;
  assert_int_equal(bok_schema_compile(schema, strlen(schema), &sc, err, sizeof err), 0);
  bok_validator_t *v = bok_validator_new(sc, BOK_FMT_CSV, "id,name", 7, ',', err, sizeof err);
  assert_non_null(v);
  bok_row_result_t rr;
  bok_row_result_init(&rr);
  assert_int_equal(bok_validator_row(v, 3, "x,", 2, NULL, &rr), 0);
  assert_true(rr.nrejects >= 1);
  Batch__V1__RowRejection *r = bok_reject_from_result(3, "x,", 2, &rr);
  assert_non_null(r);
  assert_int_equal(r->n_cells, rr.nrejects);
  for (size_t i = 0; i < rr.nrejects; i++) {
    assert_int_equal(r->cells[i]->row, 3);
    assert_string_equal(r->cells[i]->code, rr.rejects[i].code);
    assert_string_equal(r->cells[i]->column, rr.rejects[i].column);
    assert_string_equal(r->cells[i]->message, rr.rejects[i].message);
    assert_int_equal(r->cells[i]->has_observed, rr.rejects[i].observed != NULL);
  }
  bok_reject_free(r);
  /* a reader's reason gives the same text as bok_reject_malformed */
  assert_int_equal(bok_validator_row(v, 9, "\"", 1, "unterminated quoted field", &rr), 0);
  r = bok_reject_malformed(9, "\"", 1, "unterminated quoted field");
  assert_string_equal(r->cells[0]->message, rr.rejects[0].message);
  assert_string_equal(r->cells[0]->code, rr.rejects[0].code);
  bok_reject_free(r);
  bok_row_result_free(&rr);
  bok_validator_destroy(v);
  bok_schema_destroy(sc);
}

static void test_append_and_free_all(void **s) {
  (void)s;
  Batch__V1__JobResults res = BATCH__V1__JOB_RESULTS__INIT;
  size_t cap = 0;
  for (int i = 1; i <= 40; i++) assert_int_equal(bok_reject_append(&res, &cap, bok_reject_malformed(i, "", 0, "x")), 0);
  assert_int_equal(res.n_rejected, 40);
  assert_true(cap >= 40);
  assert_int_equal(res.rejected[39]->row, 40);
  assert_int_equal(res.rejected[0]->raw.len, 0);
  assert_int_equal(bok_reject_append(&res, &cap, NULL), -1);
  assert_int_equal(res.n_rejected, 40);
  bok_reject_free_all(&res);
  assert_null(res.rejected);
  assert_int_equal(res.n_rejected, 0);
  bok_reject_free(NULL);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_malformed_text), cmocka_unit_test(test_from_validator),
                                 cmocka_unit_test(test_append_and_free_all)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
