/* RowBatch written by hand (services/job/row_encode.c): byte for byte what
 * protobuf-c packs for the same message (header fields set or empty, rows
 * numbered 0, 1, 127, 128, huge and negative, raw empty, short and longer
 * than one varint byte), and what the workers unpack. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "batch/v1/rows.pb-c.h"
#include "row_encode.h"

#define NROWS 9

static void check(const char *tenant, const char *job, const char *model, int64_t version, size_t nrows) {
  static const int64_t numbers[NROWS] = {1, 0, 127, 128, 300, 16384, INT64_MAX, -1, 2};
  static char big[20000];
  memset(big, 'x', sizeof big);
  const size_t lens[NROWS] = {3, 0, 1, 127, 128, 200, 16383, 16384, 20000};
  Batch__V1__Row rows[NROWS], *ptrs[NROWS];
  bok_buf_t body = BOK_BUF_INIT(0);
  for (size_t i = 0; i < nrows; i++) {
    batch__v1__row__init(&rows[i]);
    rows[i].row = numbers[i];
    rows[i].raw.data = (uint8_t *)big;
    rows[i].raw.len = lens[i];
    ptrs[i] = &rows[i];
    assert_int_equal(row_encode_row(&body, numbers[i], big, lens[i]), 0);
  }
  Batch__V1__RowBatch b = BATCH__V1__ROW_BATCH__INIT;
  b.tenant_id = (char *)tenant;
  b.job_id = (char *)job;
  b.model_id = (char *)model;
  b.schema_version = version;
  b.n_rows = nrows;
  b.rows = ptrs;
  size_t want_len = batch__v1__row_batch__get_packed_size(&b);
  uint8_t *want = malloc(want_len + 1);
  batch__v1__row_batch__pack(&b, want);
  size_t got_len = 0;
  uint8_t *got = row_encode_batch(tenant, job, model, version, body.data, body.len, &got_len);
  assert_non_null(got);
  assert_int_equal(got_len, want_len);
  assert_memory_equal(got, want, want_len);
  Batch__V1__RowBatch *u = batch__v1__row_batch__unpack(NULL, got_len, got);
  assert_non_null(u);
  assert_int_equal(u->n_rows, nrows);
  for (size_t i = 0; i < nrows; i++) {
    assert_int_equal(u->rows[i]->row, numbers[i]);
    assert_int_equal(u->rows[i]->raw.len, lens[i]);
  }
  batch__v1__row_batch__free_unpacked(u, NULL);
  free(got);
  free(want);
  bok_buf_free(&body);
}

static void test_same_bytes_as_protobuf_c(void **s) {
  (void)s;
  for (size_t n = 0; n <= NROWS; n++) {
    check("t1", "6a0d7c4e-1111-4222-8333-944455556666", "m-1", 3, n);
    check("", "", "", 0, n);
    check("tenant", "job", "", -5, n);
  }
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_same_bytes_as_protobuf_c)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
