/* libFuzzer: the streaming CSV splitter fed in random chunk sizes, then
 * every record parsed and validated against a fixed schema. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bok/rows.h"

static bok_schema_t *g_schema;

typedef struct {
  bok_validator_t *v;
  bok_row_result_t r;
} ctx_t;

static int on_rec(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  ctx_t *c = ud;
  if (row == 0) {
    char err[64];
    c->v = bok_validator_new(g_schema, BOK_FMT_CSV, raw, len, ',', err, sizeof err);
    return 0;
  }
  if (c->v) bok_validator_row(c->v, row, raw, len, st == BOK_CSV_OK ? NULL : bok_csv_status_text(st), &c->r);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_schema) {
    const char *s = "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},\"timestamp\":{\"type\":"
                    "\"integer\",\"format\":\"unix-time\"},\"f\":{\"type\":\"number\",\"maximum\":10},\"b\":{\"type\":"
                    "\"boolean\"},\"c\":{\"type\":\"string\",\"enum\":[\"x\"]},\"v\":{\"type\":\"array\",\"items\":"
                    "{\"type\":\"number\"},\"maxItems\":3},\"s\":{\"type\":\"string\",\"maxLength\":4}},\"required\":[\"f\"]}";
    char err[100];
    bok_schema_compile(s, strlen(s), &g_schema, err, sizeof err);
  }
  ctx_t c;
  memset(&c, 0, sizeof c);
  bok_row_result_init(&c.r);
  bok_csv_t *rd = bok_csv_new(',', 256, on_rec, &c);
  size_t step = size ? (data[0] % 7) + 1 : 1;
  for (size_t off = 0; off < size; off += step) bok_csv_feed(rd, (const char *)data + off, size - off < step ? size - off : step);
  bok_csv_finish(rd);
  bok_csv_destroy(rd);
  bok_validator_destroy(c.v);
  bok_row_result_free(&c.r);
  return 0;
}
