/* libFuzzer: the row validator and event encoder. A few fixed schemas
 * (every column type and constraint, event id/time columns, additional
 * properties on and off) are compiled once; each input picks a schema, a
 * format (CSV with one of four separators, or NDJSON) and is split into rows
 * that are validated. Checks what a user sees: every valid row's event is a
 * JSON object, every rejected cell has a code, a message and (when present)
 * an observed value that is JSON text.
 * Input: byte 0 = schema (bits 0-1), format (bit 2), separator (bits 3-4);
 * the rest is the file (for CSV, its first record is the header). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

static const char *const SCHEMAS[] = {
    /* the guide's schema: every type, three required columns */
    "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},\"timestamp\":{\"type\":\"integer\","
    "\"format\":\"unix-time\"},\"attr_float\":{\"type\":\"number\"},\"attr_int\":{\"type\":\"integer\"},"
    "\"attr_bool\":{\"type\":\"boolean\"},\"attr_str\":{\"type\":\"string\"},\"attr_cat\":{\"type\":\"string\","
    "\"enum\":[\"US\",\"FR\",\"DE\"]},\"attr_vec\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}},"
    "\"attr_req\":{\"type\":\"string\"}},\"required\":[\"event_id\",\"timestamp\",\"attr_req\"]}",
    /* every range and length constraint, no additional properties */
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":5},"
    "\"b\":{\"type\":\"number\",\"minimum\":0.5,\"maximum\":1e300},\"c\":{\"type\":\"string\",\"minLength\":2,"
    "\"maxLength\":4},\"d\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":1,\"maxItems\":3},"
    "\"e\":{\"type\":\"string\",\"enum\":[\"x\",\"\\u00e9\",\"a b\"]}},\"required\":[\"a\"],"
    "\"additionalProperties\":false}",
    /* integer event id, custom event time column, additional properties on */
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"t\":{\"type\":\"integer\","
    "\"format\":\"unix-time\"},\"v\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}},\"s\":{\"type\":"
    "\"string\"}},\"required\":[\"id\",\"t\"],\"x-event-id\":\"id\",\"x-event-time\":\"t\","
    "\"additionalProperties\":true}",
    /* no event columns at all */
    "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"boolean\"},\"timestamp\":{\"type\":\"string\"}},"
    "\"x-event-id\":null,\"x-event-time\":null}",
};
#define NSCHEMAS (sizeof SCHEMAS / sizeof SCHEMAS[0])
static const char SEPS[4] = {',', ';', '\t', '|'};

static bok_schema_t *g_schemas[NSCHEMAS];

typedef struct {
  const bok_schema_t *schema;
  bok_format_t fmt;
  char sep;
  bok_validator_t *v;
  bok_row_result_t r;
} ctx_t;

/* JSON text (integers past 64 bits are JSON too: read them as reals). */
static void check_json(const char *text, size_t len, int want_object) {
  json_error_t e;
  json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
  if (!j || (want_object && !json_is_object(j))) abort();
  json_decref(j);
}

static void check_result(int ok, const bok_row_result_t *r, int64_t row) {
  if (ok) {
    check_json(r->event.data, r->event.len, 1);
    return;
  }
  if (r->nrejects == 0) abort(); /* a rejected row always says why */
  for (size_t i = 0; i < r->nrejects; i++) {
    const bok_reject_t *c = &r->rejects[i];
    if (c->row != row || !c->code[0] || !c->message[0] || !c->column || !c->type || !c->event_id) abort();
    if (c->observed) check_json(c->observed, strlen(c->observed), 0);
  }
}

static int on_rec(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  ctx_t *c = ud;
  if (c->fmt == BOK_FMT_CSV && row == 0) {
    char err[200];
    c->v = bok_validator_new(c->schema, BOK_FMT_CSV, raw, len, c->sep, err, sizeof err);
    return c->v ? 0 : 1;
  }
  if (!c->v) return 1;
  int ok = bok_validator_row(c->v, row, raw, len, st == BOK_CSV_OK ? NULL : bok_csv_status_text(st), &c->r);
  check_result(ok, &c->r, row);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_schemas[0]) {
    for (size_t i = 0; i < NSCHEMAS; i++) {
      char err[200];
      if (bok_schema_compile(SCHEMAS[i], strlen(SCHEMAS[i]), &g_schemas[i], err, sizeof err) != 0) abort();
    }
  }
  if (size < 1) return 0;
  ctx_t c;
  memset(&c, 0, sizeof c);
  c.schema = g_schemas[data[0] & 3];
  c.fmt = (data[0] & 4) ? BOK_FMT_NDJSON : BOK_FMT_CSV;
  c.sep = SEPS[(data[0] >> 3) & 3];
  bok_row_result_init(&c.r);
  if (c.fmt == BOK_FMT_NDJSON) {
    char err[200];
    c.v = bok_validator_new(c.schema, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
    if (!c.v) abort();
  }
  bok_csv_t *rd = c.fmt == BOK_FMT_CSV ? bok_csv_new(c.sep, 1024, on_rec, &c) : bok_ndjson_new(1024, on_rec, &c);
  if (!rd) abort();
  if (bok_csv_feed(rd, (const char *)data + 1, size - 1) == 0) bok_csv_finish(rd);
  bok_csv_destroy(rd);
  bok_validator_destroy(c.v);
  bok_row_result_free(&c.r);
  return 0;
}
