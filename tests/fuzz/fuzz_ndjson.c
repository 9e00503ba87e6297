/* libFuzzer: NDJSON lines validated against a fixed schema. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bok/rows.h"

static bok_schema_t *g_schema;
static bok_validator_t *g_v;

static int on_rec(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  bok_validator_row(g_v, row, raw, len, st == BOK_CSV_OK ? NULL : bok_csv_status_text(st), ud);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_schema) {
    const char *s = "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"integer\"},\"t\":{\"type\":\"integer\","
                    "\"format\":\"unix-time\"},\"f\":{\"type\":\"number\"},\"s\":{\"type\":\"string\",\"minLength\":1},"
                    "\"v\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}},\"required\":[\"s\"],\"x-event-time\":\"t\"}";
    char err[100];
    bok_schema_compile(s, strlen(s), &g_schema, err, sizeof err);
    g_v = bok_validator_new(g_schema, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
  }
  bok_row_result_t r;
  bok_row_result_init(&r);
  bok_csv_t *rd = bok_ndjson_new(512, on_rec, &r);
  bok_csv_feed(rd, (const char *)data, size);
  bok_csv_finish(rd);
  bok_csv_destroy(rd);
  bok_row_result_free(&r);
  return 0;
}
