/* Schema compiling, row validation with the exact SPEC 7 messages (the user
 * guide's rejected-rows example as a fixture), event encoding, detection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

static char *slurp(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", BOK_TEST_DATA, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  p[n] = 0;
  fclose(f);
  if (len) *len = (size_t)n;
  return p;
}

static bok_schema_t *compile(const char *json) {
  bok_schema_t *s = NULL;
  char err[256];
  if (bok_schema_compile(json, strlen(json), &s, err, sizeof err) != 0) fail_msg("compile: %s", err);
  return s;
}

static void test_schema_errors_name_the_property(void **st) {
  (void)st;
  struct {
    const char *json, *err;
  } cases[] = {
      {"[1]", "schema: must be a JSON object"},
      {"{\"type\":\"array\"}", "schema.type: must be \"object\""},
      {"{\"type\":\"object\",\"properties\":{}}", "schema.properties: must be a non-empty object"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"money\"}}}", "properties.p.type: unsupported type 'money'"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{}}}", "properties.p.type: required"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"enum\":[]}}}", "properties.p.enum: must be a non-empty array of strings"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"integer\",\"format\":\"date\"}}}", "properties.p.format: unsupported format for integer (use \"unix-time\")"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}", "properties.p.items: arrays must have items {\"type\":\"number\"}"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"minimum\":1}}}", "properties.p.minimum: only numeric columns take minimum"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"pattern\":\"x\"}}}", "properties.p.pattern: unsupported keyword"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\"}},\"required\":[\"q\"]}", "required[0]: 'q' is not a property"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\"}},\"x-event-time\":\"p\"}", "properties.p.type: the event time must be an integer unix-time or a string date-time"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"format\":\"date\"}}}", "properties.p.format: unsupported format for string (use \"date-time\")"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"number\",\"format\":\"date-time\"}}}", "properties.p.format: only integer (unix-time) and string (date-time) columns take a format"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"format\":\"date-time\",\"enum\":[\"a\"]}}}", "properties.p.enum: a date-time column takes no enum"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"format\":\"date-time\",\"minimum\":0}}}", "properties.p.minimum: only numeric columns take minimum"},
      {"{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\"}},\"additionalProperties\":1}", "additionalProperties: must be true or false"},
      {"{bad", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bok_schema_t *s = NULL;
    char err[256];
    assert_int_equal(bok_schema_compile(cases[i].json, strlen(cases[i].json), &s, err, sizeof err), -1);
    assert_null(s);
    if (cases[i].err)
      assert_string_equal(err, cases[i].err);
    else
      assert_non_null(strstr(err, "schema: invalid JSON"));
  }
  bok_schema_t *s = compile("{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"integer\"},\"timestamp\":"
                            "{\"type\":\"integer\",\"format\":\"unix-time\"},\"v\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":2}}}");
  assert_int_equal(bok_schema_ncols(s), 3);
  assert_int_equal(bok_schema_event_id_col(s), 0);
  assert_int_equal(bok_schema_event_time_col(s), 1);
  assert_int_equal(bok_schema_col(s, 2)->type, BOK_COL_VECTOR);
  bok_schema_destroy(s);
}

/* The user guide's rejected-rows table, reproduced from tests/data/guide. */
static void test_guide_fixture(void **st) {
  (void)st;
  size_t len;
  char *schema_json = slurp("guide/schema.json", NULL);
  char *rows = slurp("guide/rows.ndjson", &len);
  char *expected = slurp("guide/expected.tsv", NULL);
  bok_schema_t *s = compile(schema_json);
  char err[200];
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
  bok_row_result_t r;
  bok_row_result_init(&r);
  bok_buf_t got = BOK_BUF_INIT(0);
  int64_t row = 0;
  int valid = 0;
  for (char *line = strtok(rows, "\n"); line; line = strtok(NULL, "\n")) {
    row++;
    if (bok_validator_row(v, row, line, strlen(line), NULL, &r)) {
      valid++;
      assert_int_equal(row, 15);
      assert_string_equal(r.event.data,
                          "{\"event_id\":\"1015cdef\",\"timestamp\":1700000000,\"attr_float\":2.5,\"attr_int\":42,"
                          "\"attr_bool\":true,\"attr_str\":\"hi \\\"x\\\"\",\"attr_cat\":\"FR\",\"attr_time\":1600000000,"
                          "\"attr_vec\":[1.5,2],\"attr_req\":\"r\",\"attr_x\":null}");
      assert_string_equal(r.key.data, "1015cdef");
      assert_int_equal(r.event_time_ms, 1700000000000LL);
      continue;
    }
    for (size_t i = 0; i < r.nrejects; i++) {
      bok_reject_t *x = &r.rejects[i];
      bok_buf_printf(&got, "%lld\t%s\t%s\t%s\t%s\t%s\t%s\n", (long long)x->row, x->event_id, x->column, x->type,
                     x->code, x->observed ? x->observed : "", x->message);
    }
  }
  assert_int_equal(valid, 1);
  assert_string_equal(got.data, expected);
  bok_buf_free(&got);
  bok_row_result_free(&r);
  bok_validator_destroy(v);
  bok_schema_destroy(s);
  free(schema_json);
  free(rows);
  free(expected);
}

typedef struct {
  bok_schema_t *s;
  bok_validator_t *v;
  bok_row_result_t r;
} csvfix_t;

static void csv_open(csvfix_t *f, const char *schema, const char *header) {
  f->s = compile(schema);
  char err[200];
  f->v = bok_validator_new(f->s, BOK_FMT_CSV, header, strlen(header), ',', err, sizeof err);
  assert_non_null(f->v);
  bok_row_result_init(&f->r);
}

static void csv_close(csvfix_t *f) {
  bok_row_result_free(&f->r);
  bok_validator_destroy(f->v);
  bok_schema_destroy(f->s);
}

static const char *codes(csvfix_t *f, const char *row) {
  static char out[512];
  out[0] = 0;
  if (bok_validator_row(f->v, 1, row, strlen(row), NULL, &f->r)) return "VALID";
  for (size_t i = 0; i < f->r.nrejects; i++) {
    size_t l = strlen(out);
    snprintf(out + l, sizeof out - l, "%s%s:%s", i ? " " : "", f->r.rejects[i].column, f->r.rejects[i].code);
  }
  return out;
}

static void test_csv_types_and_limits(void **st) {
  (void)st;
  csvfix_t f;
  csv_open(&f,
           "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},\"timestamp\":{\"type\":\"integer\","
           "\"format\":\"unix-time\"},\"i\":{\"type\":\"integer\",\"minimum\":0},\"f\":{\"type\":\"number\"},\"b\":{\"type\":"
           "\"boolean\"},\"v\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":3},\"s\":{\"type\":\"string\","
           "\"maxLength\":3}},\"required\":[\"event_id\",\"timestamp\",\"i\"]}",
           "event_id,timestamp,i,f,b,v,s");
  assert_string_equal(codes(&f, "e1,1700000000,9223372036854775807,1e308,TRUE,\"[1,2.5,-3]\",abc"), "VALID");
  assert_string_equal(f.r.event.data,
                      "{\"event_id\":\"e1\",\"timestamp\":1700000000,\"i\":9223372036854775807,\"f\":1e308,\"b\":true,"
                      "\"v\":[1,2.5,-3],\"s\":\"abc\"}");
  assert_string_equal(codes(&f, "e1,1700000000,0,.5,0,,"), "VALID");
  assert_string_equal(f.r.event.data,
                      "{\"event_id\":\"e1\",\"timestamp\":1700000000,\"i\":0,\"f\":0.5,\"b\":false,\"v\":null,\"s\":null}");
  assert_string_equal(codes(&f, "e1,1700000000,9223372036854775808,1e999,yes,[x],x"), "i:NOT_AN_INTEGER f:NOT_A_FLOAT b:NOT_A_BOOLEAN v:NOT_A_VECTOR");
  assert_string_equal(codes(&f, "e1,2147483648,-1,nan,1,\"[1,2,3,4]\",abcd"), "timestamp:INVALID_TIMESTAMP i:OUT_OF_RANGE f:NOT_A_FLOAT v:OUT_OF_RANGE s:OUT_OF_RANGE");
  assert_string_equal(codes(&f, ",1700000000,,,,,"), "event_id:INVALID_EVENT_ID i:NULL_VALUE");
  assert_string_equal(codes(&f, "e1,1700000000,1,2,1,,,extra"), ":MALFORMED_ROW");
  assert_string_equal(f.r.rejects[0].message, "Row 1 is malformed: it has 8 fields but the header has 7.");
  assert_string_equal(codes(&f, "e1,\"1700000000"), ":MALFORMED_ROW");
  /* SPEC 6: too few fields is malformed, whether the missing ones are required or not */
  assert_string_equal(codes(&f, "e1"), ":MALFORMED_ROW");
  assert_string_equal(f.r.rejects[0].message, "Row 1 is malformed: it has 1 fields but the header has 7.");
  assert_string_equal(codes(&f, "e1,1700000000,1,2,1,"), ":MALFORMED_ROW");
  assert_string_equal(f.r.rejects[0].message, "Row 1 is malformed: it has 6 fields but the header has 7.");
  /* a quote inside an unquoted field is text, as the splitter reads it */
  assert_string_equal(codes(&f, "e1,1700000000,1,2,1,,5\" x"), "s:OUT_OF_RANGE");
  csv_close(&f);

  /* header lacks required columns; an unknown header column */
  csv_open(&f, "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},\"timestamp\":{\"type\":\"integer\","
               "\"format\":\"unix-time\"}},\"required\":[\"event_id\",\"timestamp\"]}",
           "event_id,extra");
  assert_string_equal(codes(&f, "a,foo"), "timestamp:MISSING_COLUMN extra:EXTRA_COLUMN");
  assert_string_equal(f.r.rejects[1].observed, "\"foo\"");
  assert_string_equal(f.r.rejects[0].event_id, "a");
  csv_close(&f);
}

/* The event's keys are the column names as JSON strings (escaped), in
 * schema order, separated by commas: the text made once per validator is the
 * text an escape per row made. */
static void test_event_keys_escaped_once_per_validator(void **st) {
  (void)st;
  bok_schema_t *s = compile("{\"type\":\"object\",\"properties\":{\"a\\\"q\":{\"type\":\"string\"},"
                            "\"b\\\\s\":{\"type\":\"integer\"},\"c\\u0001\":{\"type\":\"boolean\"},"
                            "\"event_id\":{\"type\":\"string\"}}}");
  char err[100];
  const char *hdr = "\"a\"\"q\",b\\s,c\x01,event_id";
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_CSV, hdr, strlen(hdr), ',', err, sizeof err);
  assert_non_null(v);
  bok_row_result_t r;
  bok_row_result_init(&r);
  for (int i = 0; i < 3; i++) { /* the same bytes every row */
    const char *row = "x,5,true,e1";
    assert_int_equal(bok_validator_row(v, 2 + i, row, strlen(row), NULL, &r), 1);
    assert_string_equal(r.event.data, "{\"a\\\"q\":\"x\",\"b\\\\s\":5,\"c\\u0001\":true,\"event_id\":\"e1\"}");
    assert_string_equal(r.key.data, "e1");
  }
  /* a missing optional column is null under its key */
  const char *row2 = "y,,,e2";
  assert_int_equal(bok_validator_row(v, 9, row2, strlen(row2), NULL, &r), 1);
  assert_string_equal(r.event.data, "{\"a\\\"q\":\"y\",\"b\\\\s\":null,\"c\\u0001\":null,\"event_id\":\"e2\"}");
  bok_row_result_free(&r);
  bok_validator_destroy(v);
  bok_schema_destroy(s);
}

static void test_ndjson_keeps_json_types(void **st) {
  (void)st;
  bok_schema_t *s = compile("{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"},"
                            "\"event_id\":{\"type\":\"string\"}}}");
  char err[100];
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
  bok_row_result_t r;
  bok_row_result_init(&r);
  const char *row = "{\"s\":12345,\"n\":\"7\",\"event_id\":42}";
  assert_int_equal(bok_validator_row(v, 3, row, strlen(row), NULL, &r), 0);
  assert_int_equal(r.nrejects, 2);
  assert_string_equal(r.rejects[0].code, "NOT_A_STRING");
  assert_string_equal(r.rejects[0].observed, "12345");
  assert_string_equal(r.rejects[1].code, "NOT_AN_INTEGER");
  assert_string_equal(r.rejects[0].event_id, "42");
  row = "{\"s\":\"x\",\"n\":7,\"event_id\":42}";
  assert_int_equal(bok_validator_row(v, 4, row, strlen(row), NULL, &r), 1);
  assert_string_equal(r.event.data, "{\"s\":\"x\",\"n\":7,\"event_id\":\"42\"}");
  assert_string_equal(r.key.data, "42");
  assert_int_equal(bok_validator_row(v, 5, "[1]", 3, NULL, &r), 0);
  assert_string_equal(r.rejects[0].message, "Row 5 is malformed: not a JSON object.");
  assert_int_equal(bok_validator_row(v, 6, "{", 1, NULL, &r), 0);
  assert_string_equal(r.rejects[0].message, "Row 6 is malformed: invalid JSON.");
  assert_int_equal(bok_validator_row(v, 7, "x", 1, "invalid UTF-8", &r), 0);
  assert_string_equal(r.rejects[0].message, "Row 7 is malformed: invalid UTF-8.");
  bok_row_result_free(&r);
  bok_validator_destroy(v);
  bok_schema_destroy(s);
}

static void test_json_string_escaping(void **st) {
  (void)st;
  bok_buf_t b = BOK_BUF_INIT(0);
  bok_json_append_string(&b, "a\"b\\c\n\x01é", 9);
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001é\"");
  bok_buf_free(&b);
}

static void test_detect_round_trip(void **st) {
  (void)st;
  const char sample[] =
      "event_id,timestamp,price,qty,ok,country,vec,note,when_at\n"
      "e1,1700000000,1.5,3,true,US,\"[1,2]\",hello,5\n"
      "e2,1700000100,2,4,false,FR,\"[3]\",,6\n"
      "e3,1700000200,2.25,5,TRUE,US,\"[]\",x,7\n"
      "e4,1700000300,3,6,false,FR,\"[1.5]\",y,8\n";
  char err[100];
  char *json = bok_detect_schema(sample, sizeof sample - 1, ',', 0, err, sizeof err);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"timestamp\": {\n      \"type\": \"integer\",\n      \"format\": \"unix-time\""));
  /* 4 rows are too few for a category (test_detect.c has the corpus) */
  assert_non_null(strstr(json, "\"country\": {\n      \"type\": \"string\"\n    }"));
  assert_non_null(strstr(json, "\"price\": {\n      \"type\": \"number\""));
  assert_non_null(strstr(json, "\"vec\": {\n      \"type\": \"array\""));
  bok_schema_t *s = compile(json);
  assert_int_equal(bok_schema_col(s, (size_t)bok_schema_find(s, "note", 4))->required, 0);
  assert_int_equal(bok_schema_col(s, (size_t)bok_schema_find(s, "when_at", 7))->type, BOK_COL_TIMESTAMP);
  /* The suggestion accepts its own sample. */
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_CSV, "event_id,timestamp,price,qty,ok,country,vec,note,when_at", 56,
                                         ',', err, sizeof err);
  bok_row_result_t r;
  bok_row_result_init(&r);
  const char *rows[] = {"e1,1700000000,1.5,3,true,US,\"[1,2]\",hello,5", "e2,1700000100,2,4,false,FR,\"[3]\",,6",
                        "e3,1700000200,2.25,5,TRUE,US,\"[]\",x,7", "e4,1700000300,3,6,false,FR,\"[1.5]\",y,8"};
  for (int i = 0; i < 4; i++) assert_int_equal(bok_validator_row(v, i + 1, rows[i], strlen(rows[i]), NULL, &r), 1);
  bok_row_result_free(&r);
  bok_validator_destroy(v);
  bok_schema_destroy(s);
  free(json);
  assert_null(bok_detect_schema("", 0, ',', 0, err, sizeof err));
  assert_string_equal(err, "the sample has no header row");
  /* an event_id with a blank stays the event id (the blank row is then
   * rejected as INVALID_EVENT_ID): no "x-event-id": null (issue 15) */
  char *j2 = bok_detect_schema("event_id,a\n,1\nx,2\n", 18, ',', 0, err, sizeof err);
  assert_non_null(strstr(j2, "\"x-event-id\": \"event_id\""));
  s = compile(j2);
  assert_int_equal(bok_schema_event_id_col(s), 0);
  bok_schema_destroy(s);
  free(j2);
}

/* Found by fuzz_schema: header names that cannot be properties. */
static void test_detect_unusable_header_names(void **st) {
  (void)st;
  char err[100];
  assert_null(bok_detect_schema("\0\0", 2, ',', 0, err, sizeof err));
  assert_string_equal(err, "the sample's header has no usable column names");
  const char sample[] = "a,,a, b\n1,2,3,4\n";
  char *j = bok_detect_schema(sample, sizeof sample - 1, ',', 0, err, sizeof err);
  assert_non_null(j);
  assert_non_null(strstr(j, "\"additionalProperties\": true"));
  bok_schema_t *s = compile(j);
  assert_int_equal(bok_schema_ncols(s), 2); /* "a" and " b" (as "b": the validator trims header names) */
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_CSV, "a,,a, b", 7, ',', err, sizeof err);
  bok_row_result_t r;
  bok_row_result_init(&r);
  assert_int_equal(bok_validator_row(v, 1, "1,2,3,4", 7, NULL, &r), 1);
  bok_row_result_free(&r);
  bok_validator_destroy(v);
  bok_schema_destroy(s);
  free(j);
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(test_schema_errors_name_the_property), cmocka_unit_test(test_guide_fixture),
      cmocka_unit_test(test_csv_types_and_limits), cmocka_unit_test(test_ndjson_keeps_json_types),
      cmocka_unit_test(test_event_keys_escaped_once_per_validator),
      cmocka_unit_test(test_json_string_escaping), cmocka_unit_test(test_detect_round_trip),
      cmocka_unit_test(test_detect_unusable_header_names)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
