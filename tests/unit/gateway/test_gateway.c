/* Unit tests of the gateway's pure parts: multipart parsing, routing, query
 * strings, tenant resolution, upload format, and the exact JSON shapes of the
 * user guide / SPEC 4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_map.h"
#include "multipart.h"
#include "route.h"

#define CT "multipart/form-data; boundary=XyZ"
#define CTL (sizeof CT - 1)

static int parse(const char *ct, const char *body, size_t len, gw_part_t *parts, char *err) {
  return gw_multipart_parse(ct, ct ? strlen(ct) : 0, body, len, parts, GW_MAX_PARTS, err, 200);
}

static void assert_slice(bok_slice_t s, const char *want) {
  assert_int_equal(s.len, strlen(want));
  assert_memory_equal(s.base, want, s.len);
}

/* ---- multipart --------------------------------------------------------- */

static const char GOOD[] =
    "preamble ignored\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"model_id\"\r\n"
    "\r\n"
    "456a7890-b1cd-43ef-85ab-67890abcdef0\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=\"file\"; filename=\"sample.csv\"\r\n"
    "Content-Type: text/csv\r\n"
    "\r\n"
    "id,value\r\na,1\r\n--XyZ is not a boundary here\r\n\r\n"
    "\r\n--XyZ--\r\n";

static void test_multipart_ok(void **state) {
  (void)state;
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  int n = parse(CT, GOOD, sizeof GOOD - 1, parts, err);
  assert_int_equal(n, 2);
  assert_slice(parts[0].name, "model_id");
  assert_slice(parts[0].data, "456a7890-b1cd-43ef-85ab-67890abcdef0");
  assert_int_equal(parts[0].filename.len, 0);
  const gw_part_t *f = gw_multipart_find(parts, (size_t)n, "file");
  assert_non_null(f);
  assert_slice(f->filename, "sample.csv");
  assert_slice(f->content_type, "text/csv");
  /* the data keeps its own CRLFs and a boundary-like line that is not
   * preceded by CRLF + "--XyZ" at a line start of the delimiter */
  assert_slice(f->data, "id,value\r\na,1\r\n--XyZ is not a boundary here\r\n\r\n");
  assert_null(gw_multipart_find(parts, (size_t)n, "nope"));
}

static void test_multipart_boundary_in_data(void **state) {
  (void)state;
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  /* the boundary text inside the data -- mid-line, or at a line start but
   * followed by more text -- is data; only CRLF "--abc" + (blanks) CRLF or
   * "--" ends a part. Quoted boundary parameter among other parameters. */
  static const char body[] =
      "--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n"
      "x--abc,--abc--\r\n--abcd\r\n--abc is data\r\n--abc-\r\n--abc \t\r\n"
      "Content-Disposition: form-data; name=\"model_id\"\r\n\r\nm\r\n--abc--\r\nepilogue";
  int n = parse("Multipart/Form-Data; charset=utf-8; boundary=\"abc\"", body, sizeof body - 1, parts, err);
  assert_int_equal(n, 2);
  assert_slice(parts[0].data, "x--abc,--abc--\r\n--abcd\r\n--abc is data\r\n--abc-");
  assert_slice(parts[1].name, "model_id");
  assert_slice(parts[1].data, "m");
  /* the same body with a different boundary is one unterminated part */
  assert_int_equal(parse("multipart/form-data; boundary=zzz", body, sizeof body - 1, parts, err), -1);
  /* multipart/form-datax is not multipart/form-data */
  assert_int_equal(parse("multipart/form-datax; boundary=abc", body, sizeof body - 1, parts, err), -1);
}

static void test_multipart_truncated(void **state) {
  (void)state;
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  size_t full = sizeof GOOD - 1;
  /* every strict prefix that cuts the closing delimiter is rejected */
  for (size_t cut = 0; cut < full - 2; cut++) {
    int n = parse(CT, GOOD, cut, parts, err);
    assert_int_equal(n, -1);
    assert_non_null(strstr(err, "multipart"));
  }
  assert_int_equal(parse(CT, GOOD, full, parts, err), 2);
  /* a body without any boundary */
  assert_int_equal(parse(CT, "hello", 5, parts, err), -1);
  assert_non_null(strstr(err, "truncated"));
  /* empty body */
  assert_int_equal(parse(CT, NULL, 0, parts, err), -1);
}

static void test_multipart_bad_headers(void **state) {
  (void)state;
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  assert_int_equal(parse(NULL, GOOD, sizeof GOOD - 1, parts, err), -1);
  assert_non_null(strstr(err, "multipart/form-data"));
  assert_int_equal(parse("application/json", GOOD, sizeof GOOD - 1, parts, err), -1);
  assert_int_equal(parse("multipart/form-data", GOOD, sizeof GOOD - 1, parts, err), -1);
  assert_non_null(strstr(err, "boundary"));
  assert_int_equal(parse("multipart/form-data; boundary=", GOOD, sizeof GOOD - 1, parts, err), -1);
  static const char noname[] = "--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--\r\n";
  assert_int_equal(parse(CT, noname, sizeof noname - 1, parts, err), -1);
  assert_non_null(strstr(err, "name"));
  static const char nodisp[] = "--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--\r\n";
  assert_int_equal(parse(CT, nodisp, sizeof nodisp - 1, parts, err), -1);
  static const char nocolon[] = "--XyZ\r\nbogus header line\r\n\r\nv\r\n--XyZ--\r\n";
  assert_int_equal(parse(CT, nocolon, sizeof nocolon - 1, parts, err), -1);
  assert_non_null(strstr(err, "header"));
  static const char badsep[] = "--XyZ junk\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--XyZ--\r\n";
  /* a first "delimiter" with junk after it is preamble: no part at all */
  assert_int_equal(parse(CT, badsep, sizeof badsep - 1, parts, err), 0);
}

static void test_multipart_missing_parts_and_limits(void **state) {
  (void)state;
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  /* only model_id: parses, but no file part */
  static const char onlyid[] = "--XyZ\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\nm\r\n--XyZ--";
  int n = parse(CT, onlyid, sizeof onlyid - 1, parts, err);
  assert_int_equal(n, 1);
  assert_null(gw_multipart_find(parts, (size_t)n, "file"));
  /* empty form: just the closing delimiter */
  static const char empty[] = "--XyZ--\r\n";
  assert_int_equal(parse(CT, empty, sizeof empty - 1, parts, err), 0);
  /* an empty file part is a part with no data */
  static const char emptyfile[] =
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.csv\"\r\n\r\n\r\n--XyZ--";
  n = parse(CT, emptyfile, sizeof emptyfile - 1, parts, err);
  assert_int_equal(n, 1);
  assert_int_equal(parts[0].data.len, 0);
  /* too many parts */
  char big[4096];
  size_t off = 0;
  for (int i = 0; i < GW_MAX_PARTS + 1; i++)
    off += (size_t)snprintf(big + off, sizeof big - off, "--XyZ\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n", i);
  off += (size_t)snprintf(big + off, sizeof big - off, "--XyZ--");
  assert_int_equal(parse(CT, big, off, parts, err), -1);
  assert_non_null(strstr(err, "too many"));
  /* the first of two parts of the same name wins */
  static const char dup[] =
      "--XyZ\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\none\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\ntwo\r\n--XyZ--";
  n = parse(CT, dup, sizeof dup - 1, parts, err);
  assert_int_equal(n, 2);
  assert_slice(gw_multipart_find(parts, 2, "model_id")->data, "one");
}

static void test_multipart_binary_data(void **state) {
  (void)state;
  /* NUL bytes and invalid UTF-8 are data like any other */
  static const char body[] =
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n\r\n"
      "\x00\xff\xfe\r\n\x01--XyZ\r\n--XyZ--";
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  int n = parse(CT, body, sizeof body - 1, parts, err);
  assert_int_equal(n, 1);
  assert_int_equal(parts[0].data.len, 11);
  assert_memory_equal(parts[0].data.base, "\x00\xff\xfe\r\n\x01--XyZ", 11);
}

/* ---- routing ----------------------------------------------------------- */

#define UUID "123e4567-e89b-12d3-a456-426614174000"

static gw_route_kind_t route(const char *p, gw_route_t *r) { return gw_route_parse(p, strlen(p), r); }

static void test_route_paths(void **state) {
  (void)state;
  gw_route_t r;
  assert_int_equal(route("/healthz", &r), GW_R_HEALTHZ);
  assert_int_equal(route("/metrics", &r), GW_R_METRICS);
  assert_int_equal(route("/readyz", &r), GW_R_READYZ);
  assert_int_equal(route("/schema", &r), GW_R_SCHEMA);
  assert_int_equal(route("/models", &r), GW_R_MODELS);
  assert_int_equal(route("/models/", &r), GW_R_MODELS);
  assert_int_equal(route("/jobs", &r), GW_R_JOBS);
  assert_int_equal(route("/models/" UUID, &r), GW_R_MODEL);
  assert_string_equal(r.id, UUID);
  assert_int_equal(route("/jobs/" UUID, &r), GW_R_JOB);
  assert_int_equal(route("/jobs/" UUID "/", &r), GW_R_JOB);
  assert_int_equal(route("/jobs/" UUID "/rejected", &r), GW_R_JOB_REJECTED);
  assert_string_equal(r.id, UUID);
  assert_int_equal(route("/jobs/" UUID "/reprocess", &r), GW_R_JOB_REPROCESS);
  /* the web console: "/" and any file name under /console/ (console.c knows the files) */
  assert_int_equal(route("/", &r), GW_R_CONSOLE);
  assert_int_equal(route("/console/app.js", &r), GW_R_CONSOLE_FILE);
  assert_int_equal(route("/console/nope.txt/", &r), GW_R_CONSOLE_FILE);
  assert_string_equal(r.id, "");
  /* ids are canonicalized to lower case */
  assert_int_equal(route("/models/123E4567-E89B-12D3-A456-426614174000", &r), GW_R_MODEL);
  assert_string_equal(r.id, UUID);
}

static void test_route_not_found(void **state) {
  (void)state;
  gw_route_t r;
  const char *bad[] = {"",
                       "/nope",
                       "/console",
                       "/console/a/b",
                       "//console/x",
                       "/modelsx",
                       "/model",
                       "/models/123",
                       "/models/not-a-uuid",
                       "/models/" UUID "x",
                       "/models/123e4567-e89b-12d3-a456-42661417400g",
                       "/models/123e4567e89b12d3a456426614174000abcd",
                       "/models/" UUID "/rejected",
                       "/jobs/" UUID "/nope",
                       "/jobs/" UUID "/rejected/x",
                       "/jobs//rejected",
                       "//jobs",
                       "/healthz/x",
                       "models"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(route(bad[i], &r), GW_R_NOT_FOUND);
    assert_string_equal(r.id, "");
  }
}

static int allows(gw_route_kind_t k, const char *m) { return gw_route_allows(k, m, strlen(m)); }

static void test_route_methods(void **state) {
  (void)state;
  assert_true(allows(GW_R_MODELS, "GET") && allows(GW_R_MODELS, "POST"));
  assert_false(allows(GW_R_MODELS, "DELETE") || allows(GW_R_MODELS, "PATCH") || allows(GW_R_MODELS, "GE"));
  assert_true(allows(GW_R_MODEL, "GET") && allows(GW_R_MODEL, "PUT") && allows(GW_R_MODEL, "DELETE"));
  assert_false(allows(GW_R_MODEL, "POST"));
  assert_true(allows(GW_R_JOBS, "GET") && allows(GW_R_JOBS, "POST"));
  assert_true(allows(GW_R_JOB, "GET") && allows(GW_R_JOB, "DELETE"));
  assert_false(allows(GW_R_JOB, "PUT") || allows(GW_R_JOB, "POST"));
  assert_true(allows(GW_R_JOB_REJECTED, "GET") && !allows(GW_R_JOB_REJECTED, "POST"));
  assert_true(allows(GW_R_JOB_REPROCESS, "POST") && !allows(GW_R_JOB_REPROCESS, "GET"));
  assert_true(allows(GW_R_SCHEMA, "POST") && !allows(GW_R_SCHEMA, "GET"));
  assert_true(allows(GW_R_HEALTHZ, "GET"));
  assert_true(allows(GW_R_READYZ, "GET") && !allows(GW_R_READYZ, "POST"));
  /* metric labels use route templates, never raw ids */
  assert_string_equal(gw_route_template(GW_R_JOB_REJECTED), "/jobs/{id}/rejected");
  assert_string_equal(gw_route_template(GW_R_MODEL), "/models/{id}");
  assert_string_equal(gw_route_template(GW_R_NOT_FOUND), "unmatched");
  assert_false(allows(GW_R_NOT_FOUND, "GET"));
  assert_string_equal(gw_route_allow_header(GW_R_JOB), "GET, DELETE");
}

/* ---- small parsers ----------------------------------------------------- */

static void test_query_param(void **state) {
  (void)state;
  char v[16];
  const char *q = "state=running&limit=10&after_row=&x=a%20b+c&flag";
  size_t ql = strlen(q);
  assert_int_equal(gw_query_param(q, ql, "state", v, sizeof v), 1);
  assert_string_equal(v, "running");
  assert_int_equal(gw_query_param(q, ql, "limit", v, sizeof v), 1);
  assert_string_equal(v, "10");
  assert_int_equal(gw_query_param(q, ql, "after_row", v, sizeof v), 1);
  assert_string_equal(v, "");
  assert_int_equal(gw_query_param(q, ql, "x", v, sizeof v), 1);
  assert_string_equal(v, "a b c");
  assert_int_equal(gw_query_param(q, ql, "flag", v, sizeof v), 1);
  assert_string_equal(v, "");
  assert_int_equal(gw_query_param(q, ql, "stat", v, sizeof v), 0);
  assert_int_equal(gw_query_param(q, ql, "nope", v, sizeof v), 0);
  assert_int_equal(gw_query_param("a=%zz", 5, "a", v, sizeof v), -1);
  assert_int_equal(gw_query_param("a=%2", 4, "a", v, sizeof v), -1);
  assert_int_equal(gw_query_param("a=%00", 5, "a", v, sizeof v), -1);
  assert_int_equal(gw_query_param("a=%3B%00", 8, "a", v, sizeof v), -1);
  assert_int_equal(gw_query_param("a=0123456789abcdefXYZ", 21, "a", v, sizeof v), -1);
  assert_int_equal(gw_query_param("", 0, "a", v, sizeof v), 0);
}

static void test_parse_count(void **state) {
  (void)state;
  int64_t v;
  assert_int_equal(gw_parse_count("0", 10, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(gw_parse_count("1000", 100000, &v), 0);
  assert_int_equal(v, 1000);
  assert_int_equal(gw_parse_count("100001", 100000, &v), -1);
  assert_int_equal(gw_parse_count("-1", 100, &v), -1);
  assert_int_equal(gw_parse_count("+1", 100, &v), -1);
  assert_int_equal(gw_parse_count("1x", 100, &v), -1);
  assert_int_equal(gw_parse_count("", 100, &v), -1);
  assert_int_equal(gw_parse_count("99999999999999999999999", INT64_MAX / 10, &v), -1);
}

/* Regression (issue 12): after_row=9223372036854775808 overflowed int64
 * (UBSan abort; the normal build wrapped to a negative row and served page 1). */
static void test_parse_count_overflow(void **state) {
  (void)state;
  int64_t v = 42;
  assert_int_equal(gw_parse_count("9223372036854775807", INT64_MAX, &v), 0);
  assert_true(v == INT64_MAX);
  v = 42;
  const char *over[] = {"9223372036854775808", "9223372036854775809", "9223372036854775810",
                        "18446744073709551615", "18446744073709551616", "99999999999999999999",
                        "92233720368547758070"};
  for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
    assert_int_equal(gw_parse_count(over[i], INT64_MAX, &v), -1);
    assert_true(v == 42); /* untouched on failure */
  }
  /* the old bound (INT64_MAX / 10) let v * 10 + 8 overflow */
  assert_int_equal(gw_parse_count("9223372036854775808", INT64_MAX / 10, &v), -1);
  assert_int_equal(gw_parse_count("922337203685477580", INT64_MAX / 10, &v), 0);
  assert_true(v == INT64_MAX / 10);
  assert_int_equal(gw_parse_count("922337203685477581", INT64_MAX / 10, &v), -1);
  /* leading zeros are just digits */
  assert_int_equal(gw_parse_count("000000000000000000000000000000007", 10, &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(gw_parse_count("0", 0, &v), 0);
  assert_int_equal(gw_parse_count("1", 0, &v), -1);
  assert_int_equal(gw_parse_count("1", -1, &v), -1);
  assert_int_equal(gw_parse_count(" 1", 10, &v), -1);
  assert_int_equal(gw_parse_count("1 ", 10, &v), -1);
  assert_int_equal(gw_parse_count("1e3", 10000, &v), -1);
  assert_int_equal(gw_parse_count("1.0", 10, &v), -1);
  assert_int_equal(gw_parse_count("0x10", 100, &v), -1);
}

static void test_parse_range(void **state) {
  (void)state;
  int64_t v = 42;
  assert_int_equal(gw_parse_range("1", 1, GW_REJECTED_LIMIT_MAX, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(gw_parse_range("100000", 1, GW_REJECTED_LIMIT_MAX, &v), 0);
  assert_int_equal(v, 100000);
  v = 42;
  assert_int_equal(gw_parse_range("0", 1, GW_REJECTED_LIMIT_MAX, &v), -1);
  assert_int_equal(gw_parse_range("100001", 1, GW_REJECTED_LIMIT_MAX, &v), -1);
  assert_int_equal(gw_parse_range("-5", 0, 10, &v), -1);
  assert_int_equal(gw_parse_range("", 0, 10, &v), -1);
  assert_true(v == 42);
  assert_int_equal(gw_parse_range("5", 6, 5, &v), -1); /* empty range */
  assert_int_equal(gw_parse_range("9223372036854775807", 0, INT64_MAX, &v), 0);
  assert_true(v == INT64_MAX);
  assert_int_equal(gw_parse_range("9223372036854775808", 0, INT64_MAX, &v), -1);
}

static int head_done(const char *s) { return gw_http_head_complete(s, strlen(s)); }

static void test_http_head_complete(void **state) {
  (void)state;
  assert_false(head_done(""));
  assert_false(head_done("GET /mod"));
  assert_false(head_done("GET /models HTTP/1.1\r\n"));
  assert_false(head_done("GET /models HTTP/1.1\r\nHost: x\r\n"));
  assert_false(head_done("GET /models HTTP/1.1\r\nHost: x\r\n\r"));
  assert_false(head_done("\r\n\r\n\r\n")); /* empty lines before a request line */
  assert_false(head_done("\r\nGET / HTTP/1.1\r\n"));
  assert_true(head_done("GET /models HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert_true(head_done("GET /models HTTP/1.1\r\n\r\n"));
  assert_true(head_done("GET / HTTP/1.0\n\n"));
  assert_true(head_done("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert_true(head_done("POST /jobs HTTP/1.1\r\nContent-Length: 9\r\n\r\npartial b"));
}

static void test_tenant(void **state) {
  (void)state;
  char t[65];
  assert_int_equal(gw_tenant_resolve(NULL, 0, t), 0);
  assert_string_equal(t, "tenant_a");
  assert_int_equal(gw_tenant_resolve("", 0, t), 0);
  assert_string_equal(t, "tenant_a");
  assert_int_equal(gw_tenant_resolve("Org-1.b_c", 9, t), 0);
  assert_string_equal(t, "Org-1.b_c");
  char max[65];
  memset(max, 'x', 64);
  max[64] = '\0';
  assert_int_equal(gw_tenant_resolve(max, 64, t), 0);
  assert_string_equal(t, max);
  assert_int_equal(gw_tenant_resolve("x", 65, t), -1);
  const char *bad[] = {"bad tenant", "a/b", "t\xc3\xa9", "a:b", "a\"b", "a\tb"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(gw_tenant_resolve(bad[i], strlen(bad[i]), t), -1);
  assert_int_equal(gw_tenant_resolve("a\0b", 3, t), -1);
}

static const char *fmt_of(const char *fn, const char *ct) {
  return gw_upload_format(fn, fn ? strlen(fn) : 0, ct, ct ? strlen(ct) : 0);
}

static void test_content_type_and_format(void **state) {
  (void)state;
#define J(s) gw_is_json_content_type(s, strlen(s))
  assert_true(J("application/json"));
  assert_true(J("Application/JSON; charset=utf-8"));
  assert_true(J("application/json ;charset=utf-8"));
  assert_false(J("application/jsonx"));
  assert_false(J("application/json-patch+json"));
  assert_false(J("text/csv"));
  assert_false(J(""));
#define F(fn, ct) fmt_of(fn, ct)
  assert_string_equal(F("a.csv", "text/csv"), "csv");
  assert_string_equal(F("a.ndjson", "application/octet-stream"), "ndjson");
  assert_string_equal(F("A.JSONL", NULL), "ndjson");
  assert_string_equal(F("rows", "application/x-ndjson"), "ndjson");
  assert_string_equal(F("rows", "application/jsonl; charset=utf-8"), "ndjson");
  assert_string_equal(F("rows.txt", "application/json"), "csv");
  assert_string_equal(F(NULL, NULL), "csv");
  assert_string_equal(F("ndjson", "text/plain"), "csv");
}

/* ---- JSON shapes --------------------------------------------------------- */

static void assert_json(json_t *j, const char *want) {
  char *got = gw_json_text(j);
  json_decref(j);
  assert_non_null(got);
  if (strcmp(got, want) != 0) fprintf(stderr, "got:  %s\nwant: %s\n", got, want);
  assert_string_equal(got, want);
  free(got);
}

static void test_model_json(void **state) {
  (void)state;
  Batch__V1__Model m = BATCH__V1__MODEL__INIT;
  m.model_id = "456a7890-b1cd-43ef-85ab-67890abcdef0";
  m.tenant_id = "tenant_a";
  m.name = "Sample Model";
  m.schema_json = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"value\":{\"type\":\"integer\","
                  "\"minimum\":0.1}},\"required\":[\"id\",\"value\"]}";
  m.version = 2;
  m.topic = "bok.events.tenant_a.456a7890-b1cd-43ef-85ab-67890abcdef0";
  m.created_at_ms = 1678881600000; /* 2023-03-15T12:00:00.000Z */
  m.updated_at_ms = 1678881700123;
  assert_json(gw_model_json(&m),
              "{\"model_id\":\"456a7890-b1cd-43ef-85ab-67890abcdef0\",\"tenant_id\":\"tenant_a\",\"name\":\"Sample "
              "Model\",\"schema\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"value\":{"
              "\"type\":\"integer\",\"minimum\":0.1}},\"required\":[\"id\",\"value\"]},\"created_at\":\"2023-03-15T12:00:00.000Z\","
              "\"updated_at\":\"2023-03-15T12:01:40.123Z\",\"version\":2,\"topic\":\"bok.events.tenant_a.456a7890-"
              "b1cd-43ef-85ab-67890abcdef0\"}");
}

static void test_job_json(void **state) {
  (void)state;
  Batch__V1__Job j = BATCH__V1__JOB__INIT;
  j.job_id = "123e4567-e89b-12d3-a456-426614174000";
  j.tenant_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
  j.model_id = "456a7890-b1cd-43ef-85ab-67890abcdef0";
  j.model_name = "Sample Model";
  j.file_name = "sample.csv";
  j.state = BATCH__V1__JOB_STATE__JOB_STATE_PENDING;
  j.created_at_ms = 1678881700000;
  j.updated_at_ms = 1678881700000;
  j.waiting_ms = 1500;
  /* pending: guide fields first, nulls for unset times and parent, no error */
  assert_json(gw_job_json(&j),
              "{\"job_id\":\"123e4567-e89b-12d3-a456-426614174000\",\"tenant_id\":\"f47ac10b-58cc-4372-a567-"
              "0e02b2c3d479\",\"model_id\":\"456a7890-b1cd-43ef-85ab-67890abcdef0\",\"total\":0,\"success\":0,"
              "\"errors\":0,\"state\":\"PENDING\",\"created_at\":\"2023-03-15T12:01:40.000Z\",\"updated_at\":\"2023-"
              "03-15T12:01:40.000Z\",\"model_name\":\"Sample Model\",\"file_name\":\"sample.csv\",\"started_at\":null,"
              "\"finished_at\":null,\"waiting_ms\":1500,\"processing_ms\":0,\"parent_job_id\":null,"
              "\"warnings\":[],\"top_errors\":[],\"dry_run\":false,\"max_errors\":null,\"max_error_rate\":null}");
  /* finished with a job-level error and a parent */
  j.state = BATCH__V1__JOB_STATE__JOB_STATE_FAILED;
  j.total = 3;
  j.errors = 3;
  j.started_at_ms = 1678881701000;
  j.finished_at_ms = 1678881715000;
  j.updated_at_ms = 1678881715000;
  j.processing_ms = 14000;
  j.parent_job_id = "223e4567-e89b-12d3-a456-426614174001";
  j.error = "file has no header row";
  Batch__V1__JobWarning w = BATCH__V1__JOB_WARNING__INIT, *wp = &w;
  w.code = "HEADER_CASE_MISMATCH";
  w.column = "timestamp";
  w.message = "m";
  j.n_warnings = 1;
  j.warnings = &wp;
  Batch__V1__ErrorSummaryEntry e = BATCH__V1__ERROR_SUMMARY_ENTRY__INIT, *ep = &e;
  e.code = "NOT_A_FLOAT";
  e.column = "x";
  e.type = "FLOAT";
  e.count = 2;
  e.first_row = 3;
  e.example = "\"abc\"";
  e.has_example = 1;
  e.message = "mm";
  j.n_top_errors = 1;
  j.top_errors = &ep;
  j.dry_run = 1;
  j.has_max_errors = 1;
  j.max_errors = 10;
  j.has_max_error_rate = 1;
  j.max_error_rate = 0.1;
  assert_json(gw_job_json(&j),
              "{\"job_id\":\"123e4567-e89b-12d3-a456-426614174000\",\"tenant_id\":\"f47ac10b-58cc-4372-a567-"
              "0e02b2c3d479\",\"model_id\":\"456a7890-b1cd-43ef-85ab-67890abcdef0\",\"total\":3,\"success\":0,"
              "\"errors\":3,\"state\":\"FAILED\",\"created_at\":\"2023-03-15T12:01:40.000Z\",\"updated_at\":\"2023-"
              "03-15T12:01:55.000Z\",\"model_name\":\"Sample Model\",\"file_name\":\"sample.csv\",\"started_at\":"
              "\"2023-03-15T12:01:41.000Z\",\"finished_at\":\"2023-03-15T12:01:55.000Z\",\"waiting_ms\":1500,"
              "\"processing_ms\":14000,\"parent_job_id\":\"223e4567-e89b-12d3-a456-426614174001\",\"error\":\"file "
              "has no header row\",\"warnings\":[{\"code\":\"HEADER_CASE_MISMATCH\",\"column\":\"timestamp\","
              "\"message\":\"m\"}],\"top_errors\":[{\"code\":\"NOT_A_FLOAT\",\"column\":\"x\",\"type\":\"FLOAT\","
              "\"count\":2,\"first_row\":3,\"example\":\"abc\",\"message\":\"mm\"}],\"dry_run\":true,"
              "\"max_errors\":10,\"max_error_rate\":0.1}");
}

static void test_job_states(void **state) {
  (void)state;
  const char *names[] = {"PENDING", "RUNNING", "SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"};
  for (int i = 0; i < 6; i++) {
    assert_string_equal(gw_job_state_name((Batch__V1__JobState)(i + 1)), names[i]);
    assert_int_equal(gw_job_state_parse(names[i], strlen(names[i])), i + 1);
  }
  assert_int_equal(gw_job_state_parse("partial_success", 15), 4);
  assert_null(gw_job_state_name(BATCH__V1__JOB_STATE__JOB_STATE_UNSPECIFIED));
  assert_null(gw_job_state_name((Batch__V1__JobState)99));
  assert_int_equal(gw_job_state_parse("DONE", 4), -1);
  assert_int_equal(gw_job_state_parse("", 0), -1);
  assert_int_equal(gw_job_state_parse("PENDINGX", 8), -1);
  /* the OpenAPI enum lists upper and lower case: nothing else (issue 12) */
  assert_int_equal(gw_job_state_parse("running", 7), 2);
  assert_int_equal(gw_job_state_parse("Running", 7), -1);
  assert_int_equal(gw_job_state_parse("RUNNINg", 7), -1);
  assert_int_equal(gw_job_state_parse("Partial_Success", 15), -1);
  assert_int_equal(gw_job_state_parse("_", 1), -1);
}

static char sep_of(const char *v) {
  char c = 'X';
  return gw_separator_parse(v, strlen(v), &c) == 0 ? c : 0;
}

/* docs/openapi.yaml: separator maxLength 3, pattern of one printable ASCII
 * byte but '"', or a tab (also written \t or tab); empty = ','. */
static void test_separator(void **state) {
  (void)state;
  assert_int_equal(sep_of(""), ',');
  assert_int_equal(sep_of(";"), ';');
  assert_int_equal(sep_of("|"), '|');
  assert_int_equal(sep_of(" "), ' ');
  assert_int_equal(sep_of("~"), '~');
  assert_int_equal(sep_of("\t"), '\t');
  assert_int_equal(sep_of("tab"), '\t');
  assert_int_equal(sep_of("\\t"), '\t');
  const char *bad[] = {"\"", "\n", "\r", "\x01", "\x7f", "\xc3\xa9", "\xff", ";;", ",,", "TAB", "ta", "\\n", "tabs"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(sep_of(bad[i]), 0);
  char c = 'X';
  assert_int_equal(gw_separator_parse("\0", 1, &c), -1); /* NUL */
  assert_int_equal(c, 'X');
}

static void test_rejected_json(void **state) {
  (void)state;
  Batch__V1__RejectedCell c = BATCH__V1__REJECTED_CELL__INIT;
  c.row = 3;
  c.event_id = "1003cdef";
  c.column = "timestamp";
  c.type = "TIMESTAMP";
  c.code = "INVALID_TIMESTAMP";
  c.observed = "\"yesterday\"";
  c.has_observed = 1;
  c.message = "The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer).";
  assert_json(gw_rejected_json(&c),
              "{\"row\":3,\"event_id\":\"1003cdef\",\"column\":\"timestamp\",\"type\":\"TIMESTAMP\",\"error\":"
              "\"INVALID_TIMESTAMP\",\"observed\":\"yesterday\",\"message\":\"The 'timestamp' value is invalid. "
              "Please provide a 32-bit Unix timestamp (integer).\"}");
  /* observed is the JSON value itself: a number (printed as written), an
   * array */
  c.observed = "3.14";
  c.has_observed = 1;
  {
    json_t *r = gw_rejected_json(&c);
    char *txt = gw_json_text(json_object_get(r, "observed"));
    assert_string_equal(txt, "3.14");
    free(txt);
    json_decref(r);
  }
  c.observed = "12345";
  json_t *o = gw_rejected_json(&c);
  assert_true(json_is_integer(json_object_get(o, "observed")));
  json_decref(o);
  c.observed = "[1, \"a\", 3]";
  o = gw_rejected_json(&c);
  assert_true(json_is_array(json_object_get(o, "observed")));
  assert_int_equal(json_array_size(json_object_get(o, "observed")), 3);
  json_decref(o);
  c.observed = "null";
  o = gw_rejected_json(&c);
  assert_true(json_is_null(json_object_get(o, "observed")));
  json_decref(o);
  /* no observed value: the key is absent */
  c.row = 2;
  c.event_id = "";
  c.has_observed = 0;
  c.observed = "";
  c.column = "event_id";
  c.type = "STRING";
  c.code = "MISSING_COLUMN";
  c.message = "The required column 'event_id' is missing. Each event must have a unique event_id.";
  assert_json(gw_rejected_json(&c),
              "{\"row\":2,\"event_id\":\"\",\"column\":\"event_id\",\"type\":\"STRING\",\"error\":\"MISSING_COLUMN\","
              "\"message\":\"The required column 'event_id' is missing. Each event must have a unique event_id.\"}");
}

static void test_invalid_utf8_never_drops_a_key(void **state) {
  (void)state;
  Batch__V1__RejectedCell c = BATCH__V1__REJECTED_CELL__INIT;
  c.row = 1;
  c.event_id = "e\xff" "1";
  c.column = "col\xc3"; /* truncated sequence */
  c.type = "STRING";
  c.code = "EXTRA_COLUMN";
  c.observed = "\"a\xfe\xed\xa0\x80" "b\""; /* bad bytes + an encoded surrogate inside a JSON string */
  c.has_observed = 1;
  c.message = "The column 'col\xc3' is not in the schema. Remove or update your schema.";
  assert_json(gw_rejected_json(&c),
              "{\"row\":1,\"event_id\":\"e\xef\xbf\xbd" "1\",\"column\":\"col\xef\xbf\xbd\",\"type\":\"STRING\","
              "\"error\":\"EXTRA_COLUMN\",\"observed\":\"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
              "b\",\"message\":\"The column 'col\xef\xbf\xbd' is not in the schema. Remove or update your schema.\"}");
  /* valid multi-byte text is kept as is */
  assert_json(gw_json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  assert_json(gw_json_str(NULL), "\"\"");
  /* overlong encodings are invalid */
  assert_json(gw_json_str("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
}

static void test_time_json(void **state) {
  (void)state;
  assert_json(gw_time_json(0), "null");
  assert_json(gw_time_json(-5), "null");
  assert_json(gw_time_json(1), "\"1970-01-01T00:00:00.001Z\"");
  assert_json(gw_time_json(1678881700000), "\"2023-03-15T12:01:40.000Z\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_multipart_ok),
      cmocka_unit_test(test_multipart_boundary_in_data),
      cmocka_unit_test(test_multipart_truncated),
      cmocka_unit_test(test_multipart_bad_headers),
      cmocka_unit_test(test_multipart_missing_parts_and_limits),
      cmocka_unit_test(test_multipart_binary_data),
      cmocka_unit_test(test_route_paths),
      cmocka_unit_test(test_route_not_found),
      cmocka_unit_test(test_route_methods),
      cmocka_unit_test(test_query_param),
      cmocka_unit_test(test_parse_count),
      cmocka_unit_test(test_parse_count_overflow),
      cmocka_unit_test(test_parse_range),
      cmocka_unit_test(test_http_head_complete),
      cmocka_unit_test(test_separator),
      cmocka_unit_test(test_tenant),
      cmocka_unit_test(test_content_type_and_format),
      cmocka_unit_test(test_model_json),
      cmocka_unit_test(test_job_json),
      cmocka_unit_test(test_job_states),
      cmocka_unit_test(test_rejected_json),
      cmocka_unit_test(test_invalid_utf8_never_drops_a_key),
      cmocka_unit_test(test_time_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
