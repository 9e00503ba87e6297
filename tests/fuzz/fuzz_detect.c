/* libFuzzer: schema detection (POST /schema, batchcli models detect).
 * Checks that a suggestion always compiles and that the validator accepts
 * the sample's header with it, then validates the sample's rows with it
 * (memory safety and UB under ASan/UBSan).
 * Input: byte 0 = separator (bits 0-1) and max_rows (bits 2-4: 0 = default,
 * else 1..7); the rest is the CSV sample. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

static const char SEPS[4] = {',', ';', '\t', '|'};

typedef struct {
  const bok_schema_t *schema;
  char sep;
  int64_t max_rows;
  bok_validator_t *v;
  bok_row_result_t r;
  bok_buf_t scratch;
  bok_slice_t fields[2048];
  int ncols;
} ctx_t;

static int on_rec(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  ctx_t *c = ud;
  if (row == 0) {
    char err[200];
    c->v = bok_validator_new(c->schema, BOK_FMT_CSV, raw, len, c->sep, err, sizeof err);
    if (!c->v) abort(); /* detection read this header: so must the validator */
    bok_buf_reset(&c->scratch);
    c->ncols = bok_csv_parse_record(raw, len, c->sep, c->fields, 2048, &c->scratch);
    return 0;
  }
  if (row > c->max_rows) return 1;
  if (st != BOK_CSV_OK || !bok_utf8_valid(raw, len)) return 0;
  bok_buf_reset(&c->scratch);
  int n = bok_csv_parse_record(raw, len, c->sep, c->fields, 2048, &c->scratch);
  if (n != c->ncols) return 0; /* a row with another field count is MALFORMED_ROW whatever the schema */
  /* Validated for coverage and memory safety. Not asserted valid: detection
   * names `event_id` the event id even with blank cells, on purpose (those
   * rows are INVALID_EVENT_ID), so "every row validates" is not its promise
   * any more (bok/detect.h). */
  (void)bok_validator_row(c->v, row, raw, len, NULL, &c->r);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char sep = SEPS[data[0] & 3];
  size_t max_rows = (data[0] >> 2) & 7;
  const char *csv = (const char *)data + 1;
  size_t len = size - 1;
  char err[256];
  /* confidence 1: every value must fit (the default 95 % lets a suggestion
   * reject a few rows of its own sample, on purpose) */
  bok_detect_opts_t o;
  bok_detect_opts_init(&o);
  o.sep = sep;
  o.max_rows = max_rows;
  o.confidence = 1.0;
  o.format = BOK_DETECT_CSV;
  char *d = bok_detect(csv, len, &o, NULL, err, sizeof err);
  if (!d) return 0;
  ctx_t c;
  memset(&c, 0, sizeof c);
  if (bok_schema_compile(d, strlen(d), (bok_schema_t **)&c.schema, err, sizeof err) != 0) abort();
  c.sep = sep;
  c.max_rows = max_rows ? (int64_t)max_rows : 10000;
  bok_row_result_init(&c.r);
  bok_buf_init(&c.scratch, 0);
  bok_csv_t *rd = bok_csv_new(sep, 0, on_rec, &c);
  if (bok_csv_feed(rd, csv, len) == 0) bok_csv_finish(rd);
  bok_csv_destroy(rd);
  bok_validator_destroy(c.v);
  bok_row_result_free(&c.r);
  bok_buf_free(&c.scratch);
  bok_schema_destroy((bok_schema_t *)c.schema);
  free(d);
  return 0;
}
