/* Schema detection on the messy corpus of tests/data/detect: each sample's
 * schema equals the hand-written expectation (same properties in the same
 * order), compiles as model create compiles it, and validates the sample
 * rejecting exactly the rows that hold values not fitting (the explanation
 * names them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

static char *slurp(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/detect/%s", BOK_TEST_DATA, name);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
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

typedef struct {
  bok_validator_t *v;
  bok_row_result_t r;
  int64_t rejected, valid;
  int csv;
} run_t;

static int on_row(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  run_t *x = ud;
  if (x->csv && row == 0) return 0; /* the header */
  if (bok_validator_row(x->v, row, raw, len, st == BOK_CSV_OK ? NULL : bok_csv_status_text(st), &x->r))
    x->valid++;
  else
    x->rejected++;
  return 0;
}

/* Validates the whole sample with the schema; returns rejected rows. */
static int64_t validate_sample(const char *schema, const char *data, size_t len, int ndjson, char sep, int64_t *valid) {
  bok_schema_t *s = NULL;
  char err[256];
  if (bok_schema_compile(schema, strlen(schema), &s, err, sizeof err) != 0) fail_msg("compile: %s", err);
  run_t x;
  memset(&x, 0, sizeof x);
  bok_row_result_init(&x.r);
  if (ndjson) {
    x.v = bok_validator_new(s, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
  } else {
    const char *nl = memchr(data, '\n', len);
    x.v = bok_validator_new(s, BOK_FMT_CSV, data, (size_t)(nl - data), sep, err, sizeof err);
    x.csv = 1;
  }
  assert_non_null(x.v);
  bok_csv_t *rd = ndjson ? bok_ndjson_new(0, on_row, &x) : bok_csv_new(sep, 0, on_row, &x);
  bok_csv_feed(rd, data, len);
  bok_csv_finish(rd);
  bok_csv_destroy(rd);
  bok_row_result_free(&x.r);
  bok_validator_destroy(x.v);
  bok_schema_destroy(s);
  *valid = x.valid;
  return x.rejected;
}

static void check_case(const char *file, char sep, int64_t want_rejected, int64_t want_valid) {
  size_t len;
  char *data = slurp(file, &len);
  char base[128];
  snprintf(base, sizeof base, "%s", file);
  *strrchr(base, '.') = '\0';
  char ename[160];
  snprintf(ename, sizeof ename, "%s.schema.json", base);
  char *expected = slurp(ename, NULL);
  bok_detect_opts_t o;
  bok_detect_opts_init(&o);
  o.sep = sep;
  char err[200] = "", *explain = NULL;
  char *got = bok_detect(data, len, &o, &explain, err, sizeof err);
  if (!got) fail_msg("%s: %s", file, err);
  json_t *g = json_loads(got, 0, NULL), *e = json_loads(expected, 0, NULL);
  char *gc = json_dumps(g, JSON_COMPACT | JSON_PRESERVE_ORDER), *ec = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (strcmp(gc, ec) != 0) fail_msg("%s:\n got      %s\n expected %s\n%s", file, gc, ec, explain);
  int ndjson = strstr(explain, "\"format\": \"ndjson\"") != NULL;
  /* NDJSON is recognised by content, whatever the file is called */
  assert_int_equal(ndjson, strstr(data, "{\"") == data);
  int64_t valid;
  int64_t rejected = validate_sample(got, data, len, ndjson, sep, &valid);
  if (rejected != want_rejected || valid != want_valid)
    fail_msg("%s: %lld valid, %lld rejected; expected %lld, %lld\n%s", file, (long long)valid, (long long)rejected,
             (long long)want_valid, (long long)want_rejected, explain);
  char *text = bok_detect_explain_text(explain);
  assert_non_null(text);
  free(text);
  free(gc);
  free(ec);
  json_decref(g);
  json_decref(e);
  free(got);
  free(explain);
  free(expected);
  free(data);
}

static void test_corpus(void **st) {
  (void)st;
  check_case("orders.csv", ',', 4, 56);        /* blank event id, "abc", 1e309, 2^63 */
  check_case("overflow_small.csv", ',', 0, 3); /* 2^63 and 1e309: both columns STRING */
  check_case("overflow_many.csv", ',', 1, 39); /* ... both overflow misfits of INTEGER/FLOAT */
  check_case("events.ndjson", ',', 1, 29);     /* "7" is no NDJSON integer */
  check_case("events_named.json", ',', 1, 29);
  check_case("iso_times.csv", ',', 0, 21);
  check_case("ms_timestamp.csv", ',', 0, 2);
  check_case("codes.csv", ',', 0, 3);
  check_case("booleans.csv", ',', 0, 24);
  check_case("malformed.csv", ',', 3, 4);
  check_case("header_names.csv", ',', 0, 2);
  check_case("semicolon.csv", ';', 0, 2);
}

static char *explain_of(const char *data, double confidence, size_t rows, char **schema) {
  bok_detect_opts_t o;
  bok_detect_opts_init(&o);
  o.confidence = confidence;
  o.max_rows = rows;
  char err[200], *explain = NULL;
  *schema = bok_detect(data, strlen(data), &o, &explain, err, sizeof err);
  assert_non_null(*schema);
  char *text = bok_detect_explain_text(explain);
  free(explain);
  return text;
}

static void test_explain_and_options(void **st) {
  (void)st;
  char *data = slurp("orders.csv", NULL), *schema;
  char *text = explain_of(data, 0, 0, &schema);
  assert_non_null(strstr(text, "csv sample: 60 rows read; a type must fit 95% of a column's values\n"));
  assert_non_null(strstr(text, "\nprice: FLOAT, 96.7% of 60 values fit, required; not fitting: \"abc\", \"1e309\"; "
                               "too large: 1\n"));
  assert_non_null(strstr(text, "\nqty: INTEGER, 98.3% of 60 values fit, required; not fitting: \"9223372036854775808\"; "
                               "too large: 1\n"));
  assert_non_null(strstr(text, "\nevent_id: STRING, 100.0% of 59 values fit, 1 blank, event id\n"));
  assert_non_null(strstr(text, "\nzip: STRING, 100.0% of 60 values fit, required\n"));
  assert_non_null(strstr(text, "\ncreated_at: TIMESTAMP date-time, 100.0% of 60 values fit, required\n"));
  assert_non_null(strstr(text, "\nevent id: event_id; event time: timestamp\n"));
  free(text);
  free(schema);
  /* confidence 99%: price and qty no longer fit a number type */
  text = explain_of(data, 0.99, 0, &schema);
  assert_non_null(strstr(text, "\nprice: STRING, 100.0% of 60 values fit, required; too large: 1\n"));
  assert_non_null(strstr(text, "\nqty: STRING,"));
  free(text);
  free(schema);
  /* 5 rows: too few for a category, no misfits yet */
  text = explain_of(data, 0, 5, &schema);
  assert_non_null(strstr(text, "csv sample: 5 rows read;"));
  assert_non_null(strstr(text, "\nstatus: STRING, 100.0% of 5 values fit, required\n"));
  assert_non_null(strstr(text, "\nprice: FLOAT, 100.0% of 5 values fit, required\n"));
  free(text);
  free(schema);
  free(data);
  /* left-out columns and malformed rows are explained */
  data = slurp("events.ndjson", NULL);
  text = explain_of(data, 0, 0, &schema);
  assert_non_null(strstr(text, "\nmeta: -; nested objects fit no column type: left out (additionalProperties)\n"));
  assert_non_null(strstr(text, "\ncount: INTEGER, 96.7% of 30 values fit, required; not fitting: \"7\"\n"));
  free(text);
  free(schema);
  free(data);
  /* a wide file: the whole report (regression: it stopped at 1 KiB) */
  bok_buf_t w = BOK_BUF_INIT(0);
  for (int i = 0; i < 80; i++) bok_buf_printf(&w, "%scolumn_number_%d", i ? "," : "", i);
  bok_buf_appends(&w, "\n");
  for (int i = 0; i < 80; i++) bok_buf_printf(&w, "%s%d", i ? "," : "", i);
  text = explain_of(w.data, 0, 0, &schema);
  assert_non_null(strstr(text, "\ncolumn_number_79: INTEGER, 100.0% of 1 values fit, required\n"
                               "event id: none; event time: none (Kafka timestamp = processing time)\n"));
  bok_buf_free(&w);
  free(text);
  free(schema);
  data = slurp("malformed.csv", NULL);
  text = explain_of(data, 0, 0, &schema);
  assert_non_null(strstr(text, "csv sample: 4 rows read, 3 malformed rows left out;"));
  free(text);
  free(schema);
  free(data);
}

/* The schemas of the issue's complaints, one by one. */
static void test_issue_cases(void **st) {
  (void)st;
  char err[200];
  /* a blank event_id cell keeps the event id; never "null" */
  char *j = bok_detect_schema("event_id,a\n,1\nx,2\n", 18, ',', 0, err, sizeof err);
  assert_null(strstr(j, "null"));
  assert_non_null(strstr(j, "\"x-event-id\": \"event_id\""));
  free(j);
  /* no event columns: no x-event-* keys at all */
  j = bok_detect_schema("a,b\n1,2\n", 8, ',', 0, err, sizeof err);
  assert_null(strstr(j, "x-event"));
  free(j);
  /* the empty sample and a header without usable names */
  assert_null(bok_detect_schema("", 0, ',', 0, err, sizeof err));
  assert_string_equal(err, "the sample has no header row");
  assert_null(bok_detect_schema("\0\0", 2, ',', 0, err, sizeof err));
  assert_string_equal(err, "the sample's header has no usable column names");
  /* NDJSON by content; keys are properties, not the text of the line */
  const char nd[] = "\n{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2}\n";
  j = bok_detect_schema(nd, sizeof nd - 1, ',', 0, err, sizeof err);
  assert_non_null(j);
  json_t *s = json_loads(j, 0, NULL);
  json_t *props = json_object_get(s, "properties");
  assert_int_equal(json_object_size(props), 2);
  assert_string_equal(json_string_value(json_object_get(json_object_get(props, "a"), "type")), "integer");
  assert_string_equal(json_string_value(json_array_get(json_object_get(s, "required"), 0)), "a");
  assert_int_equal(json_array_size(json_object_get(s, "required")), 1);
  json_decref(s);
  free(j);
  /* a one-value column is no enum, even over 50 rows */
  bok_buf_t b = BOK_BUF_INIT(0);
  bok_buf_appends(&b, "c,d\n");
  for (int i = 0; i < 60; i++) bok_buf_printf(&b, "r,%s\n", i % 2 ? "x" : "y");
  j = bok_detect_schema(b.data, b.len, ',', 0, err, sizeof err);
  assert_non_null(strstr(j, "\"c\": {\n      \"type\": \"string\"\n    }"));
  assert_non_null(strstr(j, "\"enum\": [\n        \"x\",\n        \"y\"\n      ]"));
  free(j);
  bok_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test(test_corpus), cmocka_unit_test(test_explain_and_options),
                                 cmocka_unit_test(test_issue_cases)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
