/* Schema detection (batchcli schema, POST /schema): reads a CSV or NDJSON
 * sample, gives each column the narrowest type that a share (confidence) of
 * its non-blank values fits, and explains the choice (share, values that do
 * not fit). The rules are listed in bok/detect.h; cell parsing is shared
 * with the validator (cells.h, bok_rfc3339_parse), so a detected type is
 * what validation accepts. Single-threaded per call; no global state. */
#include "bok/detect.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bok/csv.h"
#include "bok/schema.h"
#include "bok/validate.h"
#include "cells.h"

#define MAX_COLS 1024
#define MAX_DISTINCT 20 /* CATEGORY: 2 to this many distinct values ... */
#define MIN_REPEAT 2    /* ... each seen at least this often ... */
#define MIN_ROWS 50     /* ... in at least this many values */
#define MAX_ENUM_LEN 100
#define NEX 3 /* examples of values that do not fit */

/* Candidate types, narrowest first (STRING is the fallback). */
enum { K_BOOL, K_EPOCH, K_I32, K_INT, K_FLOAT, K_ISO, K_VEC, K_STR, K_N };

/* A set of strings (event id uniqueness). */
typedef struct {
  char **slot;
  size_t cap, n;
} strset_t;

typedef struct {
  char *name;
  int skip; /* unusable header name: left out, covered by additionalProperties */
  int id_like, time_like;
  int64_t nonblank, blanks;
  int64_t fit[K_N];
  int64_t words;     /* "true"/"false": a BOOLEAN needs at least one */
  int64_t genuine;   /* finite numbers that are not integers */
  int64_t bigint;    /* integer text beyond 64 bits (overflow) */
  int64_t infinite;  /* number text beyond a double (overflow) */
  int64_t objects;   /* NDJSON: nested objects (no type holds them) */
  int64_t long_text; /* values too long for an enum */
  char *ex[K_N][NEX]; /* first values that do not fit each candidate */
  int nex[K_N];
  char *big_ex[NEX]; /* integers beyond 64 bits (not FLOAT examples when the column has real floats) */
  int nbig;
  char *dv[MAX_DISTINCT + 1];
  int64_t dc[MAX_DISTINCT + 1];
  int nd, many;
  strset_t ids;
  int64_t dups;
} col_t;

typedef struct {
  bok_detect_opts_t o;
  int ndjson;
  int ncols;
  col_t *cols;
  bok_slice_t fields[MAX_COLS];
  bok_buf_t scratch;
  int64_t rows, malformed;
  int have_header;
} det_t;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

/* Adds s; 1 if it was there already. Out of memory counts as new. */
static int strset_add(strset_t *t, const char *s, size_t n) {
  if (t->n * 2 >= t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 64;
    char **ns = calloc(nc, sizeof *ns);
    if (!ns) return 0;
    for (size_t i = 0; i < t->cap; i++) {
      if (!t->slot[i]) continue;
      size_t k = hash(t->slot[i], strlen(t->slot[i])) & (nc - 1);
      while (ns[k]) k = (k + 1) & (nc - 1);
      ns[k] = t->slot[i];
    }
    free(t->slot);
    t->slot = ns;
    t->cap = nc;
  }
  size_t k = hash(s, n) & (t->cap - 1);
  for (; t->slot[k]; k = (k + 1) & (t->cap - 1))
    if (strlen(t->slot[k]) == n && memcmp(t->slot[k], s, n) == 0) return 1;
  t->slot[k] = strndup(s, n);
  if (t->slot[k]) t->n++;
  return 0;
}

static void strset_free(strset_t *t) {
  for (size_t i = 0; i < t->cap; i++) free(t->slot[i]);
  free(t->slot);
}

static int name_in(const char *n, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (strcasecmp(n, list[i]) == 0) return 1;
  return 0;
}

static int ends_with(const char *n, const char *suffix) {
  size_t l = strlen(n), k = strlen(suffix);
  return l >= k && strcasecmp(n + l - k, suffix) == 0;
}

/* Columns that may be the event id although not called event_id. */
static int is_id_name(const char *n) {
  static const char *const ids[] = {"event_id", "id", "uuid", "eventid", "event-id", "event_uuid", NULL};
  return name_in(n, ids);
}

/* Names under which small integers are Unix seconds too. */
static int is_time_name(const char *n) {
  return strcasestr(n, "time") != NULL || strcasecmp(n, "ts") == 0 || ends_with(n, "_ts") || ends_with(n, "_at") ||
         strcasestr(n, "date") != NULL || strcasestr(n, "epoch") != NULL;
}

static void note_misfit(col_t *c, int k, const char *s, size_t n) {
  if (c->nex[k] < NEX) c->ex[k][c->nex[k]++] = strndup(s, n > 200 ? 200 : n);
}

static void see_distinct(col_t *c, const char *s, size_t n) {
  if (n > MAX_ENUM_LEN) c->long_text++;
  if (c->many) return;
  for (int k = 0; k < c->nd; k++)
    if (strlen(c->dv[k]) == n && memcmp(c->dv[k], s, n) == 0) {
      c->dc[k]++;
      return;
    }
  if (c->nd == MAX_DISTINCT) {
    c->many = 1;
    return;
  }
  c->dv[c->nd] = strndup(s, n);
  c->dc[c->nd++] = 1;
}

/* ---- one value ------------------------------------------------------------ */

/* What a value fits, as bits of K_*. */
typedef struct {
  unsigned fits;
  int word, genuine, bigint, infinite;
} cls_t;

/* 1 if the number text has a leading zero ("01234", "-007", "00.5"): such
 * values are codes (zip codes, ids) and stay strings. */
static int leading_zero(const char *s, size_t n) {
  size_t i = n && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return n - i >= 2 && s[i] == '0' && s[i + 1] >= '0' && s[i + 1] <= '9';
}

static int all_digits(const char *s, size_t n) {
  size_t i = n && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == n) return 0;
  for (; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* 1 if the text has a number's grammar: [+-] digits [. digits] or
 * [+-] . digits, then an optional exponent e[+-]digits. */
static int number_grammar(const char *s, size_t n) {
  size_t i = 0, d = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) i++;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, d++;
  }
  if (!d) return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t e = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == e) return 0;
  }
  return i == n;
}

static void int_fits(cls_t *r, int64_t v) {
  r->fits |= 1u << K_INT | 1u << K_FLOAT;
  if (v >= 946684800LL && v <= 2147483647LL) r->fits |= 1u << K_EPOCH; /* 2000-01-01 .. 2038-01-19 */
  if (v >= INT32_MIN && v <= INT32_MAX) r->fits |= 1u << K_I32;
}

static cls_t classify_text(const char *raw, size_t rlen) {
  cls_t r = {1u << K_STR, 0, 0, 0, 0};
  const char *s = raw;
  size_t n = rlen;
  trim(&s, &n);
  int b;
  if (parse_bool(s, n, &b) == 0) {
    r.fits |= 1u << K_BOOL;
    r.word = n > 1;
  }
  int lz = leading_zero(s, n);
  int64_t iv;
  double d;
  if (!lz && parse_int64(s, n, &iv) == 0) {
    int_fits(&r, iv);
  } else if (!lz && all_digits(s, n)) {
    r.bigint = 1; /* overflow: fits neither INTEGER nor (unless the column has real floats) FLOAT */
  } else if (!lz && parse_double(s, n, &d) == 0) {
    r.fits |= 1u << K_FLOAT;
    r.genuine = 1;
  } else if (!lz && number_grammar(s, n)) {
    r.infinite = 1; /* 1e309: overflow, like an integer beyond 64 bits */
  }
  int64_t ms;
  if (n >= 20 && bok_rfc3339_parse(s, n, &ms) == 0) r.fits |= 1u << K_ISO;
  if (n >= 2 && s[0] == '[') {
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, NULL);
    int ok = json_is_array(j);
    for (size_t k = 0; ok && k < json_array_size(j); k++) ok = json_is_number(json_array_get(j, k));
    if (ok) r.fits |= 1u << K_VEC;
    json_decref(j);
  }
  return r;
}

/* NDJSON values keep their JSON types (SPEC 6). */
static cls_t classify_json(json_t *v) {
  cls_t r = {0, 0, 0, 0, 0};
  if (json_is_string(v)) {
    int64_t ms;
    r.fits = 1u << K_STR;
    if (bok_rfc3339_parse(json_string_value(v), json_string_length(v), &ms) == 0) r.fits |= 1u << K_ISO;
  } else if (json_is_integer(v)) {
    int_fits(&r, json_integer_value(v));
  } else if (json_is_real(v)) {
    r.fits = 1u << K_FLOAT;
    r.genuine = 1;
  } else if (json_is_boolean(v)) {
    r.fits = 1u << K_BOOL;
    r.word = 1;
  } else if (json_is_array(v)) {
    int ok = 1;
    for (size_t k = 0; ok && k < json_array_size(v); k++) ok = json_is_number(json_array_get(v, k));
    if (ok) r.fits = 1u << K_VEC;
  }
  return r;
}

static void add_value(col_t *c, cls_t r, const char *text, size_t tlen, int is_object) {
  c->nonblank++;
  for (int k = 0; k < K_N; k++) {
    if (r.fits & (1u << k))
      c->fit[k]++;
    else if (!(k == K_FLOAT && r.bigint))
      note_misfit(c, k, text, tlen);
  }
  c->words += r.word;
  c->genuine += r.genuine;
  c->infinite += r.infinite;
  c->objects += is_object;
  if (r.bigint) {
    c->bigint++;
    if (c->nbig < NEX) c->big_ex[c->nbig++] = strndup(text, tlen);
  }
}

/* ---- reading ---------------------------------------------------------------- */

static void csv_header(det_t *d, int n) {
  d->ncols = n > MAX_COLS ? MAX_COLS : n;
  for (int i = 0; i < d->ncols; i++) {
    col_t *c = &d->cols[i];
    const char *nm = d->fields[i].base;
    size_t nl = d->fields[i].len;
    trim(&nm, &nl); /* the validator matches header names without blanks around them */
    c->name = strndup(nm, nl);
    /* empty, invalid UTF-8, NUL-carrying or repeated names cannot be
     * schema properties */
    c->skip = nl == 0 || memchr(nm, '\0', nl) != NULL || !bok_utf8_valid(nm, nl);
    for (int k = 0; k < i && !c->skip; k++) c->skip = strcmp(d->cols[k].name, c->name) == 0;
    c->id_like = is_id_name(c->name);
    c->time_like = is_time_name(c->name);
  }
  d->have_header = 1;
}

static void csv_cell(col_t *c, const char *s, size_t l) {
  const char *t = s;
  size_t tl = l;
  trim(&t, &tl);
  if (tl == 0) {
    c->blanks++;
    return;
  }
  add_value(c, classify_text(s, l), s, l, 0);
  see_distinct(c, s, l); /* the validator compares enum values with the cell as is */
  if (c->id_like) c->dups += strset_add(&c->ids, t, tl);
}

static int on_csv(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  det_t *d = ud;
  if (row > 0 && (size_t)row > d->o.max_rows) return 1;
  int readable = st == BOK_CSV_OK || (row == 0 && st == BOK_CSV_INVALID_UTF8); /* bad names are left out */
  int n = readable ? bok_csv_parse_record(raw, len, d->o.sep, d->fields, MAX_COLS, &d->scratch) : -1;
  if (row == 0) {
    if (n > 0) csv_header(d, n);
    return n > 0 ? 0 : 1;
  }
  if (n < 0 || n != d->ncols) { /* SPEC 6: a malformed row does not shape the schema */
    d->malformed++;
    return 0;
  }
  d->rows++;
  for (int i = 0; i < d->ncols; i++) csv_cell(&d->cols[i], d->fields[i].base, d->fields[i].len);
  return 0;
}

static int ndjson_column(det_t *d, const char *key) {
  for (int i = 0; i < d->ncols; i++)
    if (strcmp(d->cols[i].name, key) == 0) return i;
  if (d->ncols == MAX_COLS) return -1;
  col_t *c = &d->cols[d->ncols];
  c->name = strdup(key);
  c->skip = key[0] == '\0';
  c->id_like = is_id_name(key);
  c->time_like = is_time_name(key);
  c->blanks = d->rows - 1; /* absent from the rows before */
  return d->ncols++;
}

static int on_ndjson(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  det_t *d = ud;
  if ((size_t)row > d->o.max_rows) return 1;
  json_t *obj = st == BOK_CSV_OK ? json_loadb(raw, len, 0, NULL) : NULL;
  if (!json_is_object(obj)) {
    json_decref(obj);
    d->malformed++;
    return 0;
  }
  d->rows++;
  d->have_header = 1;
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) ndjson_column(d, k);
  for (int i = 0; i < d->ncols; i++) {
    col_t *c = &d->cols[i];
    v = json_object_get(obj, c->name);
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
      c->blanks++;
      continue;
    }
    char *text = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    size_t tl = text ? strlen(text) : 0;
    add_value(c, classify_json(v), text ? text : "", tl, json_is_object(v));
    if (json_is_string(v)) see_distinct(c, text, tl);
    else c->many = 1; /* an enum holds strings only */
    if (c->id_like && (json_is_string(v) || json_is_integer(v))) c->dups += strset_add(&c->ids, text, tl);
    free(text);
  }
  json_decref(obj);
  return 0;
}

/* NDJSON when the first non-blank line is a JSON object. */
int bok_looks_ndjson(const char *p, size_t len) {
  size_t i = len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3) ? 3 : 0;
  while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
  if (i >= len || p[i] != '{') return 0;
  const char *nl = memchr(p + i, '\n', len - i);
  size_t l = nl ? (size_t)(nl - (p + i)) : len - i;
  json_t *j = json_loadb(p + i, l, 0, NULL);
  int ok = json_is_object(j);
  json_decref(j);
  return ok;
}

/* ---- decisions ---------------------------------------------------------------- */

typedef enum { T_STRING, T_BOOLEAN, T_UNIX, T_INTEGER, T_FLOAT, T_ISO, T_VECTOR, T_CATEGORY, T_LEFT_OUT } dtype_t;

static const char *dtype_name(dtype_t t) {
  static const char *n[] = {"STRING", "BOOLEAN", "TIMESTAMP", "INTEGER", "FLOAT", "TIMESTAMP", "VECTOR", "CATEGORY", "-"};
  return n[t];
}

static int64_t float_fit(const col_t *c) { return c->fit[K_FLOAT] + (c->genuine ? c->bigint : 0); }

static int is_category(const det_t *d, const col_t *c) {
  if (c->many || c->nd < 2 || c->nonblank < MIN_ROWS || c->long_text || c->fit[K_STR] != c->nonblank) return 0;
  if (strcmp(c->name, "event_id") == 0) return 0;
  (void)d;
  for (int k = 0; k < c->nd; k++)
    if (c->dc[k] < MIN_REPEAT) return 0;
  return 1;
}

/* The narrowest type that `confidence` of the non-blank values fit; *fit
 * gets how many do. */
static dtype_t decide(const det_t *d, const col_t *c, int64_t *fit) {
  double need = d->o.confidence * (double)c->nonblank;
  *fit = c->fit[K_STR];
  if (c->skip) return T_LEFT_OUT;
  if (c->nonblank == 0) return T_STRING;
  if (d->ndjson && c->objects * 2 > c->nonblank) return T_LEFT_OUT;
#define PICK(cnt, t)                    \
  do {                                  \
    if ((double)(cnt) >= need) {        \
      *fit = (cnt);                     \
      return (t);                       \
    }                                   \
  } while (0)
  if (c->words) PICK(c->fit[K_BOOL], T_BOOLEAN);
  if (c->time_like) PICK(c->fit[K_I32], T_UNIX);
  else if (!c->id_like) PICK(c->fit[K_EPOCH], T_UNIX);
  PICK(c->fit[K_INT], T_INTEGER);
  PICK(float_fit(c), T_FLOAT);
  PICK(c->fit[K_ISO], T_ISO);
  PICK(c->fit[K_VEC], T_VECTOR);
#undef PICK
  if (is_category(d, c)) return T_CATEGORY;
  return T_STRING;
}

/* Candidate whose misfits explain the chosen type. */
static int kind_of(const col_t *c, dtype_t t) {
  switch (t) {
    case T_BOOLEAN: return K_BOOL;
    case T_UNIX: return c->time_like ? K_I32 : K_EPOCH;
    case T_INTEGER: return K_INT;
    case T_FLOAT: return K_FLOAT;
    case T_ISO: return K_ISO;
    case T_VECTOR: return K_VEC;
    default: return K_STR;
  }
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static json_t *property(col_t *c, dtype_t t) {
  json_t *p = json_object();
  switch (t) {
    case T_BOOLEAN: json_object_set_new(p, "type", json_string("boolean")); break;
    case T_UNIX:
      json_object_set_new(p, "type", json_string("integer"));
      json_object_set_new(p, "format", json_string("unix-time"));
      break;
    case T_INTEGER: json_object_set_new(p, "type", json_string("integer")); break;
    case T_FLOAT: json_object_set_new(p, "type", json_string("number")); break;
    case T_ISO:
      json_object_set_new(p, "type", json_string("string"));
      json_object_set_new(p, "format", json_string("date-time"));
      break;
    case T_VECTOR: {
      json_object_set_new(p, "type", json_string("array"));
      json_t *it = json_object();
      json_object_set_new(it, "type", json_string("number"));
      json_object_set_new(p, "items", it);
      break;
    }
    case T_CATEGORY: {
      json_object_set_new(p, "type", json_string("string"));
      qsort(c->dv, (size_t)c->nd, sizeof(char *), cmpstr);
      json_t *e = json_array();
      for (int k = 0; k < c->nd; k++) json_array_append_new(e, json_string(c->dv[k]));
      json_object_set_new(p, "enum", e);
      break;
    }
    default: json_object_set_new(p, "type", json_string("string")); break;
  }
  return p;
}

/* Event id: a column called event_id of a fitting type (SPEC 5's default,
 * blanks and repeats in it are then rejected rows, as they should be); else
 * an id-like column (id, uuid, ...) of a fitting type, never blank and
 * without repeats in the sample. -1 none. */
static int pick_event_id(const det_t *d, const dtype_t *types) {
  for (int i = 0; i < d->ncols; i++)
    if (!strcmp(d->cols[i].name, "event_id") && (types[i] == T_STRING || types[i] == T_INTEGER)) return i;
  for (int i = 0; i < d->ncols; i++) {
    const col_t *c = &d->cols[i];
    if (c->id_like && (types[i] == T_STRING || types[i] == T_INTEGER) && c->blanks == 0 && c->nonblank > 0 &&
        c->dups == 0)
      return i;
  }
  return -1;
}

static int time_score(const char *n) {
  if (strcasestr(n, "event")) return 3;
  static const char *const names[] = {"time", "ts", "datetime", "date_time", "occurred_at", NULL};
  return name_in(n, names) ? 2 : 1;
}

/* Event time: a column called timestamp that is a TIMESTAMP (SPEC 5's
 * default); else the TIMESTAMP column never blank in the sample whose name
 * suits best (event..., time, ts, ...). -1 none. */
static int pick_event_time(const det_t *d, const dtype_t *types) {
  for (int i = 0; i < d->ncols; i++)
    if (!strcmp(d->cols[i].name, "timestamp") && (types[i] == T_UNIX || types[i] == T_ISO)) return i;
  int best = -1, best_score = 0;
  for (int i = 0; i < d->ncols; i++) {
    const col_t *c = &d->cols[i];
    if ((types[i] != T_UNIX && types[i] != T_ISO) || c->blanks || !c->nonblank) continue;
    int s = time_score(c->name);
    if (s > best_score) best = i, best_score = s;
  }
  return best;
}

static json_t *explain_column(const col_t *c, dtype_t t, int64_t fit, int is_eid, int is_etime) {
  json_t *e = json_object();
  json_object_set_new(e, "column", json_string(c->name));
  json_object_set_new(e, "type", json_string(dtype_name(t)));
  if (t == T_ISO) json_object_set_new(e, "format", json_string("date-time"));
  if (t == T_UNIX) json_object_set_new(e, "format", json_string("unix-time"));
  json_object_set_new(e, "values", json_integer(c->nonblank));
  json_object_set_new(e, "blanks", json_integer(c->blanks));
  json_object_set_new(e, "fit", json_integer(fit));
  json_object_set_new(e, "share", json_real(c->nonblank ? (double)fit / (double)c->nonblank : 1.0));
  json_t *ex = json_array();
  if (t != T_LEFT_OUT && t != T_CATEGORY) {
    int k = kind_of(c, t);
    for (int i = 0; i < c->nex[k] && json_array_size(ex) < NEX; i++) json_array_append_new(ex, json_string(c->ex[k][i]));
    if (t == T_FLOAT && !c->genuine)
      for (int i = 0; i < c->nbig && json_array_size(ex) < NEX; i++) json_array_append_new(ex, json_string(c->big_ex[i]));
  }
  json_object_set_new(e, "not_fitting", ex);
  json_object_set_new(e, "overflow", json_integer(c->bigint + c->infinite));
  json_object_set_new(e, "required", json_boolean(t != T_LEFT_OUT && c->blanks == 0 && c->nonblank > 0));
  if (is_eid) json_object_set_new(e, "event_id", json_true());
  if (is_etime) json_object_set_new(e, "event_time", json_true());
  if (is_eid && c->dups) json_object_set_new(e, "repeated", json_integer(c->dups));
  if (t == T_LEFT_OUT)
    json_object_set_new(e, "note", json_string(c->skip ? "the name cannot be a property: left out (additionalProperties)"
                                                       : "nested objects fit no column type: left out (additionalProperties)"));
  return e;
}

/* Builds the schema and the report. 0 or -1 with err. */
static int build(det_t *d, json_t **schema, json_t **report, char *err, size_t errlen) {
  dtype_t *types = calloc((size_t)d->ncols + 1, sizeof *types);
  int64_t *fits = calloc((size_t)d->ncols + 1, sizeof *fits);
  json_t *props = json_object(), *req = json_array(), *cols = json_array();
  int left_out = 0;
  for (int i = 0; i < d->ncols; i++) {
    types[i] = decide(d, &d->cols[i], &fits[i]);
    left_out += types[i] == T_LEFT_OUT;
  }
  int eid = pick_event_id(d, types), etime = pick_event_time(d, types);
  /* A column called timestamp that is an event time by SPEC 5's default
   * but cannot be one (integers beyond 32 bits, e.g. milliseconds): turned
   * off explicitly, the one case where "x-event-time" is null. */
  int ts_null = 0;
  for (int i = 0; i < d->ncols; i++)
    if (!strcmp(d->cols[i].name, "timestamp") && types[i] == T_INTEGER && etime < 0) ts_null = 1;
  for (int i = 0; i < d->ncols; i++) {
    col_t *c = &d->cols[i];
    json_array_append_new(cols, explain_column(c, types[i], fits[i], i == eid, i == etime));
    if (types[i] == T_LEFT_OUT) continue;
    json_object_set_new(props, c->name, property(c, types[i]));
    if (c->blanks == 0 && c->nonblank > 0) json_array_append_new(req, json_string(c->name));
  }
  int rc = -1;
  if (json_object_size(props) == 0) {
    snprintf(err, errlen, d->ndjson ? "the sample has no usable keys" : "the sample's header has no usable column names");
    json_decref(props);
    json_decref(req);
    json_decref(cols);
    goto done;
  }
  json_t *root = json_object();
  json_object_set_new(root, "type", json_string("object"));
  json_object_set_new(root, "properties", props);
  json_object_set_new(root, "required", req);
  if (left_out) json_object_set_new(root, "additionalProperties", json_true());
  if (eid >= 0) json_object_set_new(root, "x-event-id", json_string(d->cols[eid].name));
  if (etime >= 0) json_object_set_new(root, "x-event-time", json_string(d->cols[etime].name));
  if (ts_null) json_object_set_new(root, "x-event-time", json_null());
  *schema = root;
  json_t *r = json_object();
  json_object_set_new(r, "format", json_string(d->ndjson ? "ndjson" : "csv"));
  json_object_set_new(r, "rows", json_integer(d->rows));
  json_object_set_new(r, "malformed", json_integer(d->malformed));
  json_object_set_new(r, "confidence", json_real(d->o.confidence));
  json_object_set_new(r, "event_id", eid >= 0 ? json_string(d->cols[eid].name) : json_null());
  json_object_set_new(r, "event_time", etime >= 0 ? json_string(d->cols[etime].name) : json_null());
  json_object_set_new(r, "columns", cols);
  *report = r;
  rc = 0;
done:
  free(types);
  free(fits);
  return rc;
}

static void det_free(det_t *d) {
  for (int i = 0; i < d->ncols; i++) {
    col_t *c = &d->cols[i];
    free(c->name);
    for (int k = 0; k < c->nd; k++) free(c->dv[k]);
    for (int k = 0; k < K_N; k++)
      for (int j = 0; j < c->nex[k]; j++) free(c->ex[k][j]);
    for (int j = 0; j < c->nbig; j++) free(c->big_ex[j]);
    strset_free(&c->ids);
  }
  free(d->cols);
  bok_buf_free(&d->scratch);
}

/* ---- public ------------------------------------------------------------------------ */

void bok_detect_opts_init(bok_detect_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->max_rows = BOK_DETECT_DEFAULT_ROWS;
  o->confidence = BOK_DETECT_DEFAULT_CONFIDENCE;
  o->sep = ',';
}

char *bok_detect(const char *data, size_t len, const bok_detect_opts_t *opts, char **explain, char *err, size_t errlen) {
  if (explain) *explain = NULL;
  det_t d;
  memset(&d, 0, sizeof d);
  bok_detect_opts_init(&d.o);
  if (opts) {
    if (opts->max_rows) d.o.max_rows = opts->max_rows;
    if (opts->confidence > 0 && opts->confidence <= 1) d.o.confidence = opts->confidence;
    if (opts->sep) d.o.sep = opts->sep;
    d.o.format = opts->format;
  }
  d.cols = calloc(MAX_COLS, sizeof *d.cols);
  if (!d.cols) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  bok_buf_init(&d.scratch, 0);
  d.ndjson = d.o.format == BOK_DETECT_NDJSON || (d.o.format == BOK_DETECT_AUTO && bok_looks_ndjson(data, len));
  bok_csv_t *rd = d.ndjson ? bok_ndjson_new(0, on_ndjson, &d) : bok_csv_new(d.o.sep, 0, on_csv, &d);
  char *out = NULL;
  if (!rd) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  if (bok_csv_feed(rd, data, len) == 0) bok_csv_finish(rd);
  bok_csv_destroy(rd);
  if (!d.have_header) {
    snprintf(err, errlen, d.ndjson ? "the sample has no JSON object lines" : "the sample has no header row");
    goto done;
  }
  json_t *schema = NULL, *report = NULL;
  if (build(&d, &schema, &report, err, errlen) != 0) goto done;
  out = json_dumps(schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (explain) *explain = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  json_decref(schema);
  json_decref(report);
done:
  det_free(&d);
  return out;
}

char *bok_detect_schema(const char *csv, size_t len, char sep, size_t max_rows, char *err, size_t errlen) {
  bok_detect_opts_t o;
  bok_detect_opts_init(&o);
  o.sep = sep ? sep : ',';
  o.max_rows = max_rows;
  return bok_detect(csv, len, &o, NULL, err, errlen);
}

/* JSON string text of s (for examples in the text report). */
static void quoted(bok_buf_t *b, const char *s) { bok_json_append_string(b, s, strlen(s)); }

char *bok_detect_explain_text(const char *explain_json) {
  json_t *r = json_loads(explain_json, 0, NULL);
  if (!r) return NULL;
  bok_buf_t b = BOK_BUF_INIT(0);
  int64_t mal = json_integer_value(json_object_get(r, "malformed"));
  bok_buf_printf(&b, "%s sample: %lld rows read", json_string_value(json_object_get(r, "format")),
                 (long long)json_integer_value(json_object_get(r, "rows")));
  if (mal) bok_buf_printf(&b, ", %lld malformed rows left out", (long long)mal);
  bok_buf_printf(&b, "; a type must fit %.4g%% of a column's values\n",
                 100.0 * json_real_value(json_object_get(r, "confidence")));
  json_t *c;
  size_t i;
  json_array_foreach(json_object_get(r, "columns"), i, c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    json_t *fmt = json_object_get(c, "format");
    bok_buf_printf(&b, "%s: %s%s%s", json_string_value(json_object_get(c, "column")), type, fmt ? " " : "",
                   fmt ? json_string_value(fmt) : "");
    int64_t n = json_integer_value(json_object_get(c, "values"));
    int64_t bl = json_integer_value(json_object_get(c, "blanks"));
    if (strcmp(type, "-") != 0)
      bok_buf_printf(&b, ", %.1f%% of %lld values fit", 100.0 * json_real_value(json_object_get(c, "share")),
                     (long long)n);
    if (bl) bok_buf_printf(&b, ", %lld blank", (long long)bl);
    if (json_is_true(json_object_get(c, "required"))) bok_buf_appends(&b, ", required");
    if (json_is_true(json_object_get(c, "event_id"))) bok_buf_appends(&b, ", event id");
    if (json_is_true(json_object_get(c, "event_time"))) bok_buf_appends(&b, ", event time");
    json_t *rep = json_object_get(c, "repeated");
    if (rep) bok_buf_printf(&b, " (%lld repeated values)", (long long)json_integer_value(rep));
    json_t *ex = json_object_get(c, "not_fitting");
    if (json_array_size(ex)) {
      bok_buf_appends(&b, "; not fitting: ");
      for (size_t k = 0; k < json_array_size(ex); k++) {
        if (k) bok_buf_appends(&b, ", ");
        quoted(&b, json_string_value(json_array_get(ex, k)));
      }
    }
    int64_t ov = json_integer_value(json_object_get(c, "overflow"));
    if (ov) bok_buf_printf(&b, "; too large: %lld", (long long)ov);
    json_t *note = json_object_get(c, "note");
    if (note) bok_buf_printf(&b, "; %s", json_string_value(note));
    bok_buf_appendc(&b, '\n');
  }
  json_t *eid = json_object_get(r, "event_id"), *et = json_object_get(r, "event_time");
  bok_buf_printf(&b, "event id: %s; event time: %s\n", json_is_string(eid) ? json_string_value(eid) : "none",
                 json_is_string(et) ? json_string_value(et) : "none (Kafka timestamp = processing time)");
  json_decref(r);
  return bok_buf_steal(&b, NULL);
}
