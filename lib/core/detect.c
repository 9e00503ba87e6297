#include "bok/detect.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <strings.h>

#include "bok/csv.h"

#define MAX_COLS 1024
#define MAX_DISTINCT 10

typedef struct {
  char *name;
  int skip; /* unusable header name: left out, covered by additionalProperties */
  int64_t nonblank, blanks;
  int all_int, all_num, all_bool, all_vec, all_epoch, all_i32;
  int has_nul; /* a value holds a NUL byte: no enum (values are C strings) */
  char *distinct[MAX_DISTINCT + 1];
  int ndistinct;
} col_t;

typedef struct {
  char sep;
  size_t max_rows;
  int ncols;
  col_t cols[MAX_COLS];
  bok_slice_t fields[MAX_COLS];
  bok_buf_t scratch;
  int64_t rows;
  int bad;
} det_t;

static int is_int(const char *s, size_t n, long long *out) {
  if (n == 0 || n > 20) return 0;
  char tmp[24];
  memcpy(tmp, s, n);
  tmp[n] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(tmp, &end, 10);
  /* end must reach n: a NUL inside the cell ends strtoll early (fuzz_detect) */
  /* strtoll skips any leading white space ("\r\n5"); the validator only
   * spaces and tabs: leave all of it to STRING (fuzz_detect) */
  if (end != tmp + n || isspace((unsigned char)tmp[0]) || tmp[0] == '+') return 0;
  /* strtoll saturates: reject overflow (INT64_MAX + 1 has 19 digits too) */
  if (errno == ERANGE) return 0;
  *out = v;
  return 1;
}

static int is_num(const char *s, size_t n) {
  if (n == 0 || n > 60) return 0;
  char tmp[64];
  memcpy(tmp, s, n);
  tmp[n] = 0;
  for (size_t i = 0; i < n; i++)
    if (strchr("xXnNiI ", tmp[i])) return 0;
  char *end;
  double d = strtod(tmp, &end);
  return end == tmp + n && isfinite(d); /* 1e999 is inf: the validator refuses it (fuzz_detect) */
}

/* Blank as the validator sees it: nothing but spaces and tabs. */
static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t') return 0;
  return 1;
}

/* 1 if a and b are equal once leading/trailing spaces and tabs are cut. */
static int same_trimmed(const char *a, const char *b) {
  size_t al = strlen(a), bl = strlen(b);
  while (al && is_blank(a, 1)) a++, al--;
  while (al && is_blank(a + al - 1, 1)) al--;
  while (bl && is_blank(b, 1)) b++, bl--;
  while (bl && is_blank(b + bl - 1, 1)) bl--;
  return al == bl && memcmp(a, b, al) == 0;
}

static int on_record(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  det_t *d = ud;
  if (st != BOK_CSV_OK) return 0;
  int n = bok_csv_parse_record(raw, len, d->sep, d->fields, MAX_COLS, &d->scratch);
  if (n < 0) return 0;
  if (row == 0) {
    d->ncols = n > MAX_COLS ? MAX_COLS : n;
    for (int i = 0; i < d->ncols; i++) {
      col_t *c = &d->cols[i];
      const char *nm = d->fields[i].base;
      size_t nl = d->fields[i].len;
      c->name = strndup(nm, nl);
      c->all_int = c->all_num = c->all_bool = c->all_vec = c->all_epoch = c->all_i32 = 1;
      /* empty, invalid UTF-8, NUL-carrying or repeated names cannot be
       * schema properties */
      c->skip = nl == 0 || memchr(nm, '\0', nl) != NULL || !bok_utf8_valid(nm, nl) || nm[0] == ' ' ||
                nm[nl - 1] == ' ' || nm[0] == '\t' || nm[nl - 1] == '\t';
      /* the validator trims header names and maps a column to the first
       * match: " a" before "a" would hide "a" (fuzz_detect) */
      for (int k = 0; k < i && !c->skip; k++) c->skip = same_trimmed(d->cols[k].name, c->name);
    }
    return 0;
  }
  if ((size_t)row > d->max_rows) return 1;
  if (n > d->ncols) return 0; /* a malformed row does not shape the schema */
  d->rows++;
  for (int i = 0; i < d->ncols; i++) {
    col_t *c = &d->cols[i];
    if (i >= n || is_blank(d->fields[i].base, d->fields[i].len)) { /* "\t" too (fuzz_detect) */
      c->blanks++;
      continue;
    }
    const char *s = d->fields[i].base;
    size_t l = d->fields[i].len;
    c->nonblank++;
    long long iv;
    int isint = is_int(s, l, &iv);
    if (!isint) c->all_int = 0;
    if (!isint || iv < 946684800LL || iv > 2147483647LL) c->all_epoch = 0;
    if (!isint || iv < -2147483648LL || iv > 2147483647LL) c->all_i32 = 0;
    if (!is_num(s, l)) c->all_num = 0;
    if (!((l == 4 && !strncasecmp(s, "true", 4)) || (l == 5 && !strncasecmp(s, "false", 5)))) c->all_bool = 0;
    if (c->all_vec) {
      json_t *j = l && s[0] == '[' ? json_loadb(s, l, 0, NULL) : NULL;
      int ok = json_is_array(j);
      for (size_t k = 0; ok && k < json_array_size(j); k++) ok = json_is_number(json_array_get(j, k));
      if (!ok) c->all_vec = 0;
      json_decref(j);
    }
    if (memchr(s, '\0', l)) c->has_nul = 1;
    if (c->ndistinct <= MAX_DISTINCT && !c->has_nul) {
      int found = 0;
      for (int k = 0; k < c->ndistinct && !found; k++) found = strlen(c->distinct[k]) == l && !memcmp(c->distinct[k], s, l);
      if (!found) c->distinct[c->ndistinct++] = strndup(s, l);
    }
  }
  return 0;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int time_name(const char *n) {
  size_t l = strlen(n);
  return strcasestr(n, "time") != NULL || (l > 3 && strcasecmp(n + l - 3, "_at") == 0);
}

char *bok_detect_schema(const char *csv, size_t len, char sep, size_t max_rows, char *err, size_t errlen) {
  det_t *d = calloc(1, sizeof *d);
  d->sep = sep ? sep : ',';
  d->max_rows = max_rows ? max_rows : 10000;
  bok_buf_init(&d->scratch, 0);
  bok_csv_t *rd = bok_csv_new(d->sep, 0, on_record, d);
  if (bok_csv_feed(rd, csv, len) == 0) bok_csv_finish(rd);
  bok_csv_destroy(rd);
  char *out = NULL;
  if (d->ncols == 0) {
    snprintf(err, errlen, "the sample has no header row");
    goto done;
  }
  json_t *props = json_object();
  json_t *req = json_array();
  int eid_ok = 0, etime_ok = 0, has_eid = 0, has_etime = 0, skipped = 0;
  for (int i = 0; i < d->ncols; i++) {
    col_t *c = &d->cols[i];
    if (c->skip) {
      skipped++;
      continue;
    }
    json_t *p = json_object();
    int any = c->nonblank > 0;
    const char *kind;
    if (any && c->all_bool) {
      json_object_set_new(p, "type", json_string("boolean"));
      kind = "boolean";
    } else if (any && c->all_int && (c->all_epoch || (c->all_i32 && time_name(c->name)))) {
      json_object_set_new(p, "type", json_string("integer"));
      json_object_set_new(p, "format", json_string("unix-time"));
      kind = "timestamp";
    } else if (any && c->all_int) {
      json_object_set_new(p, "type", json_string("integer"));
      kind = "integer";
    } else if (any && c->all_num) {
      json_object_set_new(p, "type", json_string("number"));
      kind = "number";
    } else if (any && c->all_vec) {
      json_object_set_new(p, "type", json_string("array"));
      json_t *it = json_object();
      json_object_set_new(it, "type", json_string("number"));
      json_object_set_new(p, "items", it);
      kind = "vector";
    } else if (any && !c->has_nul && c->ndistinct <= MAX_DISTINCT && c->nonblank >= 2 * c->ndistinct &&
               strcmp(c->name, "event_id") != 0) {
      json_object_set_new(p, "type", json_string("string"));
      qsort(c->distinct, (size_t)c->ndistinct, sizeof(char *), cmpstr);
      json_t *e = json_array();
      for (int k = 0; k < c->ndistinct; k++) json_array_append_new(e, json_string(c->distinct[k]));
      json_object_set_new(p, "enum", e);
      kind = "category";
    } else {
      json_object_set_new(p, "type", json_string("string"));
      kind = "string";
    }
    json_object_set_new(props, c->name, p);
    if (c->blanks == 0 && any) json_array_append_new(req, json_string(c->name));
    if (!strcmp(c->name, "event_id")) {
      has_eid = 1;
      eid_ok = c->blanks == 0 && any && (!strcmp(kind, "string") || !strcmp(kind, "integer"));
    }
    if (!strcmp(c->name, "timestamp")) {
      has_etime = 1;
      /* the event time must be a 32-bit Unix time (fuzz_detect) */
      etime_ok = c->blanks == 0 && any && (!strcmp(kind, "timestamp") || (!strcmp(kind, "integer") && c->all_i32));
    }
  }
  if (json_object_size(props) == 0) {
    json_decref(props);
    json_decref(req);
    snprintf(err, errlen, "the sample's header has no usable column names");
    goto done;
  }
  json_t *root = json_object();
  json_object_set_new(root, "type", json_string("object"));
  json_object_set_new(root, "properties", props);
  json_object_set_new(root, "required", req);
  if (skipped) json_object_set_new(root, "additionalProperties", json_true());
  if (has_eid && !eid_ok) json_object_set_new(root, "x-event-id", json_null());
  if (has_etime && !etime_ok) json_object_set_new(root, "x-event-time", json_null());
  out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(root);
done:
  for (int i = 0; i < d->ncols; i++) {
    free(d->cols[i].name);
    for (int k = 0; k < d->cols[i].ndistinct; k++) free(d->cols[i].distinct[k]);
  }
  bok_buf_free(&d->scratch);
  free(d);
  return out;
}
