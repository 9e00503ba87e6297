/* Row validation against a compiled schema with the exact SPEC 7/12
 * messages, and the JSON encoding of valid rows as events. */
#include "bok/validate.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bok/csv.h"
#include "cells.h"

#define MAX_FIELDS 4096

struct bok_validator {
  const bok_schema_t *s;
  bok_format_t fmt;
  char sep;
  size_t ncols;
  int nhdr;
  int *col_pos;     /* schema column -> header index, -1 when absent */
  int *hdr_col;     /* header index -> schema column, -1 when not in schema */
  char **hdr_names; /* header names (for EXTRA_COLUMN) */
  int event_id, event_time;
  /* Per schema column, the event's JSON text before its value, made once:
   * `"name":` (`,"name":` after the first column). */
  char **keys;
  size_t *keylens;
};

/* ---- result plumbing ------------------------------------------------------ */

typedef struct {
  size_t event_id, column, type, code, observed, message; /* offsets into strings; observed SIZE_MAX = none */
  int64_t row;
} rej_off_t;

void bok_row_result_init(bok_row_result_t *r) {
  memset(r, 0, sizeof *r);
  bok_buf_init(&r->event, 0);
  bok_buf_init(&r->key, 0);
  bok_buf_init(&r->strings, 0);
  bok_buf_init(&r->scratch, 0);
}

void bok_row_result_free(bok_row_result_t *r) {
  bok_buf_free(&r->event);
  bok_buf_free(&r->key);
  bok_buf_free(&r->strings);
  bok_buf_free(&r->scratch);
  free(r->rejects);
  free(r->fields);
  memset(r, 0, sizeof *r);
}

static size_t put_str(bok_row_result_t *r, const char *s, size_t len) {
  size_t off = r->strings.len;
  bok_buf_append(&r->strings, s, len);
  bok_buf_appendc(&r->strings, '\0');
  return off;
}

/* Adds a rejected cell. observed: JSON text or NULL. */
static void reject(bok_row_result_t *r, int64_t row, const char *event_id, const char *col, const char *type,
                   const char *code, const char *observed, size_t obs_len, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
static void reject(bok_row_result_t *r, int64_t row, const char *event_id, const char *col, const char *type,
                   const char *code, const char *observed, size_t obs_len, const char *fmt, ...) {
  if (r->nrejects == r->rcap) {
    size_t nc = r->rcap ? r->rcap * 2 : 8;
    /* room for both the offset form and the final pointer form */
    void *p = realloc(r->rejects, nc * (sizeof(bok_reject_t) > sizeof(rej_off_t) ? sizeof(bok_reject_t) : sizeof(rej_off_t)));
    if (!p) return;
    r->rejects = p;
    r->rcap = nc;
  }
  rej_off_t *o = (rej_off_t *)(void *)r->rejects + r->nrejects++;
  o->row = row;
  o->event_id = put_str(r, event_id, strlen(event_id));
  o->column = put_str(r, col, strlen(col));
  o->type = put_str(r, type, strlen(type));
  o->code = put_str(r, code, strlen(code));
  o->observed = observed ? put_str(r, observed, obs_len) : SIZE_MAX;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  o->message = put_str(r, msg, strlen(msg));
}

/* Turns offsets into pointers once the strings buffer stops moving. */
static void finalize_rejects(bok_row_result_t *r) {
  const char *b = r->strings.data;
  /* The two layouts differ in size: copy the offsets out first. */
  rej_off_t tmp[64];
  rej_off_t *offs = r->nrejects <= 64 ? tmp : malloc(r->nrejects * sizeof *offs);
  if (!offs) {
    r->nrejects = 0;
    return;
  }
  memcpy(offs, r->rejects, r->nrejects * sizeof *offs);
  for (size_t i = 0; i < r->nrejects; i++) {
    bok_reject_t *x = &r->rejects[i];
    x->row = offs[i].row;
    x->event_id = b + offs[i].event_id;
    x->column = b + offs[i].column;
    x->type = b + offs[i].type;
    x->code = b + offs[i].code;
    x->observed = offs[i].observed == SIZE_MAX ? NULL : b + offs[i].observed;
    x->message = b + offs[i].message;
  }
  if (offs != tmp) free(offs);
}

/* ---- JSON output ------------------------------------------------------------ */

int bok_json_append_string(bok_buf_t *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (bok_buf_reserve(b, len + 2) != 0) return -1;
  bok_buf_appendc(b, '"');
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    bok_buf_append(b, s + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': bok_buf_append(b, "\\\"", 2); break;
      case '\\': bok_buf_append(b, "\\\\", 2); break;
      case '\n': bok_buf_append(b, "\\n", 2); break;
      case '\r': bok_buf_append(b, "\\r", 2); break;
      case '\t': bok_buf_append(b, "\\t", 2); break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        bok_buf_append(b, u, 6);
      }
    }
  }
  bok_buf_append(b, s + run, len - run);
  return bok_buf_appendc(b, '"');
}

/* The observed value of a CSV cell: a JSON string. Uses r->scratch2 via a
 * local buffer. */
static void json_str_tmp(bok_buf_t *tmp, const char *s, size_t len) {
  bok_buf_reset(tmp);
  bok_json_append_string(tmp, s, len);
}

/* 1 if [s, s+len) is a number in JSON's grammar. */
static int is_json_number(const char *s, size_t len) {
  size_t i = 0;
  if (i < len && s[i] == '-') i++;
  if (i >= len) return 0;
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
  } else {
    return 0;
  }
  if (i < len && s[i] == '.') {
    i++;
    size_t d = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    if (i == d) return 0;
  }
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    size_t d = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    if (i == d) return 0;
  }
  return i == len;
}

/* Shortest text that reads back as exactly d. */
static void append_double(bok_buf_t *b, double d) {
  char tmp[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  bok_buf_appends(b, tmp);
}

/* Parses "[n, n, ...]" of JSON numbers (no exponent handling needed: the
 * grammar check covers it) and appends the compact array. Returns the item
 * count, or -1 (output untouched) when the text is anything else. */
static int fast_vector(const char *s, size_t len, bok_buf_t *out) {
  size_t i = 0, mark = out->len;
  int n = 0;
  while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
  if (i >= len || s[i] != '[') return -1;
  i++;
  bok_buf_appendc(out, '[');
  for (;;) {
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i < len && s[i] == ']' && n == 0) break;
    size_t st = i;
    while (i < len && s[i] != ',' && s[i] != ']' && s[i] != ' ' && s[i] != '\t') i++;
    /* exponents may overflow to infinity: leave them to the slow path */
    if (!is_json_number(s + st, i - st) || i - st > 300 || memchr(s + st, 'e', i - st) || memchr(s + st, 'E', i - st))
      goto bad;
    if (n) bok_buf_appendc(out, ',');
    bok_buf_append(out, s + st, i - st);
    n++;
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i < len && s[i] == ',') {
      i++;
      continue;
    }
    if (i < len && s[i] == ']') break;
    goto bad;
  }
  i++;
  while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
  if (i != len) goto bad;
  bok_buf_appendc(out, ']');
  return n;
bad:
  out->len = mark;
  if (out->data) out->data[mark] = '\0';
  return -1;
}

/* ---- scalar parsing ------------------------------------------------------------ */

static size_t utf8_len(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

/* ---- validator ----------------------------------------------------------------- */

bok_validator_t *bok_validator_new(const bok_schema_t *schema, bok_format_t fmt, const char *header, size_t hlen,
                                   char sep, char *err, size_t errlen) {
  bok_validator_t *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->s = schema;
  v->fmt = fmt;
  v->sep = sep ? sep : ',';
  v->ncols = bok_schema_ncols(schema);
  v->event_id = bok_schema_event_id_col(schema);
  v->event_time = bok_schema_event_time_col(schema);
  v->col_pos = malloc(v->ncols * sizeof *v->col_pos);
  for (size_t i = 0; i < v->ncols; i++) v->col_pos[i] = -1;
  v->keys = calloc(v->ncols ? v->ncols : 1, sizeof *v->keys);
  v->keylens = calloc(v->ncols ? v->ncols : 1, sizeof *v->keylens);
  if (!v->col_pos || !v->keys || !v->keylens) {
    snprintf(err, errlen, "out of memory");
    bok_validator_destroy(v);
    return NULL;
  }
  for (size_t i = 0; i < v->ncols; i++) {
    const char *name = bok_schema_col(schema, i)->name;
    bok_buf_t k = BOK_BUF_INIT(0);
    if (i) bok_buf_appendc(&k, ',');
    bok_json_append_string(&k, name, strlen(name));
    bok_buf_appendc(&k, ':');
    v->keys[i] = k.data; /* owned by the validator now */
    v->keylens[i] = k.len;
  }
  if (fmt == BOK_FMT_CSV) {
    bok_slice_t *f = malloc(MAX_FIELDS * sizeof *f);
    bok_buf_t scratch = BOK_BUF_INIT(0);
    int n = bok_csv_parse_record(header, hlen, v->sep, f, MAX_FIELDS, &scratch);
    if (n <= 0 || n > MAX_FIELDS) {
      snprintf(err, errlen, n > MAX_FIELDS ? "the header has more than %d columns" : "the header row cannot be read",
               MAX_FIELDS);
      free(f);
      bok_buf_free(&scratch);
      bok_validator_destroy(v);
      return NULL;
    }
    v->nhdr = n;
    v->hdr_col = malloc((size_t)n * sizeof *v->hdr_col);
    v->hdr_names = calloc((size_t)n, sizeof *v->hdr_names);
    for (int i = 0; i < n; i++) {
      const char *name = f[i].base;
      size_t nl = f[i].len;
      trim(&name, &nl);
      v->hdr_names[i] = strndup(name, nl);
      int c = bok_schema_find(schema, name, nl);
      v->hdr_col[i] = c;
      if (c >= 0 && v->col_pos[c] < 0) v->col_pos[c] = i;
    }
    free(f);
    bok_buf_free(&scratch);
  }
  return v;
}

void bok_validator_destroy(bok_validator_t *v) {
  if (!v) return;
  for (int i = 0; i < v->nhdr; i++) free(v->hdr_names[i]);
  free(v->hdr_names);
  for (size_t i = 0; v->keys && i < v->ncols; i++) free(v->keys[i]);
  free(v->keys);
  free(v->keylens);
  free(v->hdr_col);
  free(v->col_pos);
  free(v);
}

/* A cell to check: CSV text (j == NULL) or an NDJSON value. */
typedef struct {
  const char *s;
  size_t len;
  json_t *j;
} cell_t;

typedef struct {
  bok_validator_t *v;
  bok_row_result_t *r;
  int64_t row;
  const char *eid; /* event id text for reports */
  bok_buf_t obs;   /* observed JSON text */
  int64_t etime_ms; /* set by check_cell for the event-time column */
} rowctx_t;

static const char *observed(rowctx_t *x, const cell_t *c) {
  bok_buf_reset(&x->obs);
  if (c->j) {
    /* display only: 15 digits keeps 3.14 as 3.14 */
    char *t = json_dumps(c->j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    bok_buf_appends(&x->obs, t ? t : "null");
    free(t);
  } else {
    json_str_tmp(&x->obs, c->s, c->len);
  }
  return x->obs.data;
}

#define REJ(x, col, code, c, ...)                                                                            \
  do {                                                                                                       \
    const char *o_ = (c) ? observed((x), (c)) : NULL;                                                        \
    reject((x)->r, (x)->row, (x)->eid, (col)->name, bok_col_type_name((col)->type), (code), o_,             \
           o_ ? (x)->obs.len : 0, __VA_ARGS__);                                                              \
  } while (0)

static void missing(rowctx_t *x, int ci, const bok_column_t *col) {
  if (ci == x->v->event_time)
    REJ(x, col, "MISSING_COLUMN", (cell_t *)NULL,
        "The required column '%s' is missing. Please include a valid timestamp column.", col->name);
  else if (ci == x->v->event_id)
    REJ(x, col, "MISSING_COLUMN", (cell_t *)NULL,
        "The required column '%s' is missing. Each event must have a unique event_id.", col->name);
  else
    REJ(x, col, "MISSING_COLUMN", (cell_t *)NULL, "The required column '%s' is missing.", col->name);
}

static void blank(rowctx_t *x, int ci, const bok_column_t *col, const cell_t *c) {
  if (ci == x->v->event_time && col->date_time)
    REJ(x, col, "INVALID_TIMESTAMP", c,
        "The '%s' value is invalid. Please provide an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z).", col->name);
  else if (ci == x->v->event_time)
    REJ(x, col, "INVALID_TIMESTAMP", c, "The '%s' value is invalid. Please provide a 32-bit Unix timestamp (integer).",
        col->name);
  else if (ci == x->v->event_id)
    REJ(x, col, "INVALID_EVENT_ID", c, "The '%s' value is invalid. Provide a non-empty string or integer identifier.",
        col->name);
  else
    REJ(x, col, "NULL_VALUE", c, "The column '%s' is null or blank. Provide a valid value for this column.", col->name);
}

static void range_num(rowctx_t *x, const bok_column_t *col, const cell_t *c, double d, int *ok) {
  if ((col->has_minimum && d < col->minimum) || (col->has_maximum && d > col->maximum)) {
    char lim[128];
    if (col->has_minimum && col->has_maximum)
      snprintf(lim, sizeof lim, "Provide a value between %.17g and %.17g", col->minimum, col->maximum);
    else if (col->has_minimum)
      snprintf(lim, sizeof lim, "Provide a value of at least %.17g", col->minimum);
    else
      snprintf(lim, sizeof lim, "Provide a value of at most %.17g", col->maximum);
    REJ(x, col, "OUT_OF_RANGE", c, "The value for '%s' is out of range. %s.", col->name, lim);
    *ok = 0;
  }
}

static void range_count(rowctx_t *x, const bok_column_t *col, const cell_t *c, int64_t n, int64_t min, int64_t max,
                        const char *what, int *ok) {
  if ((min >= 0 && n < min) || (max >= 0 && n > max)) {
    char lim[128];
    if (min >= 0 && max >= 0)
      snprintf(lim, sizeof lim, "Provide between %lld and %lld %s", (long long)min, (long long)max, what);
    else if (min >= 0)
      snprintf(lim, sizeof lim, "Provide at least %lld %s", (long long)min, what);
    else
      snprintf(lim, sizeof lim, "Provide at most %lld %s", (long long)max, what);
    REJ(x, col, "OUT_OF_RANGE", c, "The value for '%s' is out of range. %s.", col->name, lim);
    *ok = 0;
  }
}

/* A date-time TIMESTAMP cell: RFC 3339 text (NDJSON: a JSON string),
 * written to the event as UTC with milliseconds. Returns 1 if valid. */
static int check_date_time(rowctx_t *x, int ci, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  const char *s = c->j ? json_string_value(c->j) : c->s;
  size_t len = c->j ? json_string_length(c->j) : c->len;
  int64_t ms;
  if (s) trim(&s, &len);
  if (!s || bok_rfc3339_parse(s, len, &ms) != 0) {
    if (ci == x->v->event_time)
      blank(x, ci, col, c);
    else
      REJ(x, col, "NOT_A_TIMESTAMP", c,
          "The value for '%s' is not a timestamp. Use an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00Z).", col->name);
    return 0;
  }
  char iso[BOK_RFC3339_LEN + 1];
  bok_rfc3339_format_ms(ms, iso);
  bok_buf_appendc(out, '"');
  bok_buf_append(out, iso, BOK_RFC3339_LEN);
  bok_buf_appendc(out, '"');
  if (ci == x->v->event_time) x->etime_ms = ms;
  return 1;
}

/* STRING and CATEGORY cells (an integer is a fine event id). */
static int check_string(rowctx_t *x, int ci, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  int ok = 1, is_eid = ci == x->v->event_id;
  const char *s = c->s;
  size_t len = c->len;
  if (c->j && !json_is_string(c->j)) {
    if (is_eid && json_is_integer(c->j)) {
      char num[32];
      int n = snprintf(num, sizeof num, "%lld", (long long)json_integer_value(c->j));
      bok_json_append_string(out, num, (size_t)n);
      return 1;
    }
    if (is_eid)
      blank(x, ci, col, c);
    else if (col->type == BOK_COL_CATEGORY)
      REJ(x, col, "NOT_A_CATEGORY", c, "The value for '%s' is not a category. Provide a valid string category.",
          col->name);
    else
      REJ(x, col, "NOT_A_STRING", c, "The value for '%s' is not a string. Provide a text value.", col->name);
    return 0;
  }
  if (c->j) {
    s = json_string_value(c->j);
    len = json_string_length(c->j);
  }
  if (col->type == BOK_COL_CATEGORY) {
    int found = 0;
    for (size_t i = 0; i < col->n_enum && !found; i++)
      found = strlen(col->enum_values[i]) == len && memcmp(col->enum_values[i], s, len) == 0;
    if (!found) {
      REJ(x, col, "NOT_A_CATEGORY", c, "The value for '%s' is not a category. Provide a valid string category.",
          col->name);
      return 0;
    }
  }
  if (col->min_length >= 0 || col->max_length >= 0)
    range_count(x, col, c, (int64_t)utf8_len(s, len), col->min_length, col->max_length, "characters", &ok);
  if (ok) bok_json_append_string(out, s, len);
  return ok;
}

/* INTEGER cells and unix-time TIMESTAMP cells (32-bit). */
static int check_integer(rowctx_t *x, int ci, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  int ok = 1, is_eid = ci == x->v->event_id, is_etime = ci == x->v->event_time;
  int64_t i;
  int good;
  if (c->j)
    good = json_is_integer(c->j) && ((i = json_integer_value(c->j)), 1);
  else
    good = parse_int64(c->s, c->len, &i) == 0;
  if (good && col->type == BOK_COL_TIMESTAMP && (i < INT32_MIN || i > INT32_MAX)) good = 0;
  if (good && is_etime && (i < INT32_MIN || i > INT32_MAX)) good = 0;
  if (!good) {
    if (is_etime || is_eid)
      blank(x, ci, col, c);
    else if (col->type == BOK_COL_TIMESTAMP)
      REJ(x, col, "NOT_A_TIMESTAMP", c, "The value for '%s' is not a timestamp. Use a 32-bit Unix timestamp.",
          col->name);
    else
      REJ(x, col, "NOT_AN_INTEGER", c, "The value for '%s' is not an integer. Provide a whole number (e.g. 42).",
          col->name);
    return 0;
  }
  range_num(x, col, c, (double)i, &ok);
  if (ok) bok_buf_append_i64(out, i);
  if (is_etime) x->etime_ms = i * 1000;
  return ok;
}

static int check_float(rowctx_t *x, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  int ok = 1;
  double d = 0;
  int good;
  if (!c->j && !col->has_minimum && !col->has_maximum) {
    /* Fast path: JSON-grammar text without an exponent is finite and is
     * emitted as is, so strtod is not needed. */
    const char *s = c->s;
    size_t len = c->len;
    trim(&s, &len);
    if (len && len < 300 && !memchr(s, 'e', len) && !memchr(s, 'E', len) && is_json_number(s, len)) {
      bok_buf_append(out, s, len);
      return 1;
    }
  }
  if (c->j)
    good = json_is_number(c->j) && ((d = json_number_value(c->j)), 1);
  else
    good = parse_double(c->s, c->len, &d) == 0;
  if (!good) {
    REJ(x, col, "NOT_A_FLOAT", c, "The value for '%s' is not a float. Provide a numeric value (e.g. 3.14).",
        col->name);
    return 0;
  }
  range_num(x, col, c, d, &ok);
  if (!ok) return 0;
  const char *s = c->s;
  size_t len = c->len;
  if (!c->j) trim(&s, &len);
  if (!c->j && is_json_number(s, len))
    bok_buf_append(out, s, len);
  else
    append_double(out, d);
  return 1;
}

static int check_boolean(rowctx_t *x, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  int b;
  int good = c->j ? (json_is_boolean(c->j) && ((b = json_is_true(c->j)), 1)) : parse_bool(c->s, c->len, &b) == 0;
  if (!good) {
    REJ(x, col, "NOT_A_BOOLEAN", c, "The value for '%s' is not a boolean. Use true, false, 1, or 0.", col->name);
    return 0;
  }
  bok_buf_appends(out, b ? "true" : "false");
  return 1;
}

static int check_vector(rowctx_t *x, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  int ok = 1;
  if (!c->j) {
    int n = fast_vector(c->s, c->len, out);
    if (n >= 0) {
      range_count(x, col, c, n, col->min_items, col->max_items, "items", &ok);
      return ok;
    }
    /* not a plain array of JSON numbers: the slow path decides */
  }
  json_t *arr = c->j;
  json_t *own = NULL;
  if (!arr) arr = own = json_loadb(c->s, c->len, JSON_DECODE_ANY, NULL);
  int good = json_is_array(arr);
  for (size_t i = 0; good && i < json_array_size(arr); i++) good = json_is_number(json_array_get(arr, i));
  if (!good) {
    REJ(x, col, "NOT_A_VECTOR", c, "The value for '%s' is not a vector. Provide a list of numeric values.",
        col->name);
    json_decref(own);
    return 0;
  }
  range_count(x, col, c, (int64_t)json_array_size(arr), col->min_items, col->max_items, "items", &ok);
  if (ok) {
    bok_buf_appendc(out, '[');
    for (size_t i = 0; i < json_array_size(arr); i++) {
      json_t *e = json_array_get(arr, i);
      if (i) bok_buf_appendc(out, ',');
      if (json_is_integer(e))
        bok_buf_append_i64(out, json_integer_value(e));
      else
        append_double(out, json_real_value(e));
    }
    bok_buf_appendc(out, ']');
  }
  json_decref(own);
  return ok;
}

/* Checks a present, non-blank cell and appends its JSON value to out.
 * Returns 1 if valid. */
static int check_cell(rowctx_t *x, int ci, const bok_column_t *col, const cell_t *c, bok_buf_t *out) {
  if (c->j && json_is_object(c->j)) { /* nested documents are not a column type */
    REJ(x, col, "UNSUPPORTED_TYPE", c, "The column '%s' uses unsupported type '%s'. Use a supported type.", col->name,
        bok_col_type_name(col->type));
    return 0;
  }
  switch (col->type) {
    case BOK_COL_STRING:
    case BOK_COL_CATEGORY: return check_string(x, ci, col, c, out);
    case BOK_COL_TIMESTAMP:
      if (col->date_time) return check_date_time(x, ci, col, c, out);
      return check_integer(x, ci, col, c, out); /* unix-time is an integer */
    case BOK_COL_INTEGER: return check_integer(x, ci, col, c, out);
    case BOK_COL_FLOAT: return check_float(x, col, c, out);
    case BOK_COL_BOOLEAN: return check_boolean(x, col, c, out);
    case BOK_COL_VECTOR: return check_vector(x, col, c, out);
  }
  return 0;
}

static int is_blank(const cell_t *c) {
  if (c->j) return json_is_null(c->j) || (json_is_string(c->j) && json_string_length(c->j) == 0);
  const char *s = c->s;
  size_t len = c->len;
  trim(&s, &len);
  return len == 0;
}

/* Shared tail: walk the schema columns with a cell getter. */
typedef int (*get_cell_fn)(void *ud, int ci, cell_t *out); /* 1 present, 0 absent */

static int run_columns(rowctx_t *x, get_cell_fn get, void *ud) {
  bok_validator_t *v = x->v;
  bok_row_result_t *r = x->r;
  int valid = 1;
  bok_buf_reset(&r->event);
  bok_buf_reset(&r->key);
  r->event_time_ms = -1;
  bok_buf_appendc(&r->event, '{');
  for (size_t ci = 0; ci < v->ncols; ci++) {
    const bok_column_t *col = bok_schema_col(v->s, ci);
    cell_t c;
    int present = get(ud, (int)ci, &c);
    bok_buf_append(&r->event, v->keys[ci], v->keylens[ci]); /* [,]"name": */
    int is_event = (int)ci == v->event_id || (int)ci == v->event_time;
    if (!present) {
      if (col->required || is_event) {
        missing(x, (int)ci, col);
        valid = 0;
      } else {
        bok_buf_appends(&r->event, "null");
      }
      continue;
    }
    if (is_blank(&c)) {
      if (col->required || is_event) {
        blank(x, (int)ci, col, NULL); /* no observed value for a blank cell */
        valid = 0;
      } else {
        bok_buf_appends(&r->event, "null");
      }
      continue;
    }
    size_t mark = r->event.len;
    if (!check_cell(x, (int)ci, col, &c, &r->event)) {
      valid = 0;
      continue;
    }
    if ((int)ci == v->event_id) {
      const char *val = r->event.data + mark;
      size_t vl = r->event.len - mark;
      if (vl >= 2 && val[0] == '"') {
        /* the key is the unescaped text */
        if (c.j && json_is_string(c.j))
          bok_buf_append(&r->key, json_string_value(c.j), json_string_length(c.j));
        else if (c.j)
          bok_buf_append(&r->key, val + 1, vl - 2);
        else {
          const char *s = c.s;
          size_t l = c.len;
          bok_buf_append(&r->key, s, l);
        }
      } else {
        bok_buf_append(&r->key, val, vl);
      }
    }
    if ((int)ci == v->event_time) r->event_time_ms = x->etime_ms;
  }
  bok_buf_appendc(&r->event, '}');
  return valid;
}

typedef struct {
  bok_validator_t *v;
  bok_slice_t *f;
  int nf;
} csv_cells_t;

static int csv_get(void *ud, int ci, cell_t *out) {
  csv_cells_t *cc = ud;
  int pos = cc->v->col_pos[ci];
  if (pos < 0 || pos >= cc->nf) return 0;
  out->s = cc->f[pos].base;
  out->len = cc->f[pos].len;
  out->j = NULL;
  return 1;
}

static int json_get(void *ud, int ci, cell_t *out) {
  json_t *obj = ((void **)ud)[0];
  bok_validator_t *v = ((void **)ud)[1];
  json_t *val = json_object_get(obj, bok_schema_col(v->s, (size_t)ci)->name);
  if (!val) return 0;
  out->s = NULL;
  out->len = 0;
  out->j = val;
  return 1;
}

static const char *json_type_name(json_t *j) {
  if (json_is_string(j)) return "STRING";
  if (json_is_integer(j)) return "INTEGER";
  if (json_is_real(j)) return "FLOAT";
  if (json_is_boolean(j)) return "BOOLEAN";
  if (json_is_array(j)) return "VECTOR";
  return "STRING";
}

/* A CSV row: split it, check the field count, then every column and the
 * fields no column takes. 1 valid, 0 rejected (rejects in x->r). eidbuf
 * (256 bytes) receives the event id text for the reports. */
static int csv_row(rowctx_t *x, const char *raw, size_t len, char *eidbuf) {
  bok_validator_t *v = x->v;
  bok_row_result_t *r = x->r;
  long long row = (long long)x->row;
  if (!r->fields) {
    r->fields = malloc(MAX_FIELDS * sizeof(bok_slice_t));
    r->fcap = MAX_FIELDS;
  }
  bok_slice_t *f = r->fields;
  int nf = bok_csv_parse_record(raw, len, v->sep, f, MAX_FIELDS, &r->scratch);
  if (nf < 0) {
    reject(r, x->row, "", "", "", "MALFORMED_ROW", NULL, 0, "Row %lld is malformed: unterminated quoted field.", row);
    return 0;
  }
  if (nf != v->nhdr) { /* SPEC 6: too many or too few fields, whatever the columns */
    reject(r, x->row, "", "", "", "MALFORMED_ROW", NULL, 0, "Row %lld is malformed: it has %d fields but the header has %d.",
           row, nf, v->nhdr);
    return 0;
  }
  if (v->event_id >= 0) {
    int pos = v->col_pos[v->event_id];
    if (pos >= 0 && pos < nf) {
      const char *s = f[pos].base;
      size_t l = f[pos].len;
      trim(&s, &l);
      if (l >= 256) l = 255;
      memcpy(eidbuf, s, l);
      eidbuf[l] = '\0';
      x->eid = eidbuf;
    }
  }
  csv_cells_t cc = {v, f, nf};
  int valid = run_columns(x, csv_get, &cc);
  if (bok_schema_additional_ok(v->s)) return valid;
  for (int i = 0; i < nf; i++) {
    if (v->hdr_col[i] >= 0 || f[i].len == 0) continue;
    json_str_tmp(&x->obs, f[i].base, f[i].len);
    reject(r, x->row, x->eid, v->hdr_names[i], "STRING", "EXTRA_COLUMN", x->obs.data, x->obs.len,
           "The column '%s' is not in the schema. Remove or update your schema.", v->hdr_names[i]);
    valid = 0;
  }
  return valid;
}

/* An NDJSON row: one JSON object, then every column and the keys no column
 * takes. As csv_row. */
static int ndjson_row(rowctx_t *x, const char *raw, size_t len, char *eidbuf) {
  bok_validator_t *v = x->v;
  bok_row_result_t *r = x->r;
  json_error_t je;
  json_t *obj = json_loadb(raw, len, 0, &je);
  if (!obj || !json_is_object(obj)) {
    reject(r, x->row, "", "", "", "MALFORMED_ROW", NULL, 0, BOK_MALFORMED_FMT, (long long)x->row,
           obj ? "not a JSON object" : "invalid JSON");
    json_decref(obj);
    return 0;
  }
  if (v->event_id >= 0) {
    json_t *e = json_object_get(obj, bok_schema_col(v->s, (size_t)v->event_id)->name);
    if (json_is_string(e))
      snprintf(eidbuf, 256, "%s", json_string_value(e));
    else if (json_is_integer(e))
      snprintf(eidbuf, 256, "%lld", (long long)json_integer_value(e));
    x->eid = eidbuf;
  }
  void *ud[2] = {obj, v};
  int valid = run_columns(x, json_get, ud);
  const char *k;
  json_t *val;
  json_object_foreach(obj, k, val) {
    if (bok_schema_find(v->s, k, strlen(k)) >= 0) continue;
    if (bok_schema_additional_ok(v->s)) continue;
    char *t = json_dumps(val, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    reject(r, x->row, x->eid, k, json_type_name(val), "EXTRA_COLUMN", t, strlen(t),
           "The column '%s' is not in the schema. Remove or update your schema.", k);
    free(t);
    valid = 0;
  }
  json_decref(obj);
  return valid;
}

int bok_validator_row(bok_validator_t *v, int64_t row, const char *raw, size_t len, const char *st_reason,
                      bok_row_result_t *r) {
  r->nrejects = 0;
  bok_buf_reset(&r->strings);
  rowctx_t x = {v, r, row, "", BOK_BUF_INIT(0), -1};
  int valid;
  char eidbuf[256] = "";
  if (st_reason) {
    reject(r, row, "", "", "", "MALFORMED_ROW", NULL, 0, BOK_MALFORMED_FMT, (long long)row, st_reason);
    valid = 0;
  } else if (v->fmt == BOK_FMT_CSV) {
    valid = csv_row(&x, raw, len, eidbuf);
  } else {
    valid = ndjson_row(&x, raw, len, eidbuf);
  }
  bok_buf_free(&x.obs);
  if (!valid) finalize_rejects(r);
  return valid;
}
