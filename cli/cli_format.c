/* cli_format.c -- batchcli's tables: the guide's layouts, cells padded by
 * display width (wcwidth: double-width characters count 2), control
 * characters escaped, long OBSERVED / MESSAGE cells cut with "…". */
#define _XOPEN_SOURCE 700
#include "cli_format.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>

void cli_fmt_thousands(int64_t v, char out[32]) {
  char digits[32];
  int neg = v < 0;
  unsigned long long u = neg ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  int n = snprintf(digits, sizeof digits, "%llu", u);
  int o = 0;
  if (neg) out[o++] = '-';
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) out[o++] = ',';
    out[o++] = digits[i];
  }
  out[o] = '\0';
}

void cli_fmt_duration(int64_t ms, char out[32]) {
  if (ms < 0) ms = 0;
  int64_t s = ms / 1000;
  if (s >= 3600)
    snprintf(out, 32, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  else
    snprintf(out, 32, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

/* The code point at s (UTF-8) and its length in *len; an invalid byte is
 * itself (len 1). */
static unsigned decode(const char *s, size_t *len) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned c = p[0];
  int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
  if (n <= 0) {
    *len = 1;
    return c;
  }
  unsigned cp = c & (0x3F >> n);
  for (int i = 1; i <= n; i++) {
    if ((p[i] & 0xC0) != 0x80) {
      *len = 1;
      return c;
    }
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  *len = (size_t)n + 1;
  return cp;
}

/* Columns a code point takes on a terminal: wcwidth (needs a UTF-8 LC_CTYPE,
 * which main sets), 1 for what it does not know. */
static size_t cp_width(unsigned cp) {
  if (cp < 0x80) return 1;
  int w = wcwidth((wchar_t)cp);
  return w < 0 ? 1 : (size_t)w;
}

size_t cli_display_width(const char *s) {
  size_t n = 0, l;
  while (*s) {
    n += cp_width(decode(s, &l));
    s += l;
  }
  return n;
}
#define width cli_display_width

void cli_fmt_escape(bok_buf_t *out, const char *s) {
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\n') bok_buf_appends(out, "\\n");
    else if (c == '\r') bok_buf_appends(out, "\\r");
    else if (c == '\t') bok_buf_appends(out, "\\t");
    else if (c < 0x20 || c == 0x7f) bok_buf_printf(out, "\\x%02x", c);
    else if (c == 0xC2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9F) /* C1 controls */
      bok_buf_printf(out, "\\u%04x", (unsigned char)*++s);
    else bok_buf_appendc(out, (char)c);
  }
  bok_buf_appendc(out, '\0');
  out->len--;
}

void cli_fmt_cut(bok_buf_t *out, const char *s, size_t maxw) {
  size_t total = width(s);
  if (maxw == 0 || total <= maxw) {
    bok_buf_appends(out, s);
    return;
  }
  size_t w = 0, l;
  while (*s) {
    size_t cw = cp_width(decode(s, &l));
    if (w + cw > maxw - 1) break;
    bok_buf_append(out, s, l);
    w += cw;
    s += l;
  }
  bok_buf_appends(out, "\xE2\x80\xA6"); /* … */
}

/* An escaped copy of s (""-safe) in b; returns b->data. */
static const char *esc(bok_buf_t *b, const char *s) {
  b->len = 0;
  cli_fmt_escape(b, s ? s : "");
  return b->data;
}

void cli_fmt_model_name(const char *name, char out[64]) {
  bok_buf_t e = BOK_BUF_INIT(0);
  cli_fmt_escape(&e, name ? name : "");
  name = e.data;
  if (width(name) <= 11) {
    snprintf(out, 64, "%s", name);
  } else { /* 9 columns of it, then ".." */
    size_t i = 0, w = 0, l;
    while (name[i] && i < 50) {
      size_t cw = cp_width(decode(name + i, &l));
      if (w + cw > 9) break;
      w += cw;
      i += l;
    }
    snprintf(out, 64, "%.*s%*s..", (int)i, name, (int)(9 - w), "");
  }
  bok_buf_free(&e);
}

void cli_fmt_progress(int64_t total, int64_t success, int64_t errors, int cancelled, char out[64]) {
  int hashes = 0, xs = 0;
  if (total > 0) {
    /* cells of processed rows, of which the valid ones are '#' */
    int64_t done = success + errors > total ? total : success + errors;
    hashes = (int)(17 * success / total);
    xs = (int)(17 * done / total) - hashes;
    if (xs < 0) xs = 0;
    if (cancelled) xs = 17 - hashes;
  }
  int pct = total > 0 ? (int)(100 * success / total) : 0;
  char bar[18];
  for (int i = 0; i < 17; i++) bar[i] = i < hashes ? '#' : i < hashes + xs ? 'X' : '-';
  bar[17] = '\0';
  snprintf(out, 64, "[%s] %3d%%", bar, pct);
}

/* ---- tables ----------------------------------------------------------------- */

static void pad(bok_buf_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) bok_buf_appendc(b, ' ');
}

static void left(bok_buf_t *b, const char *s, size_t w) {
  bok_buf_appends(b, s);
  size_t l = width(s);
  if (l < w) pad(b, w - l);
}

static void right(bok_buf_t *b, const char *s, size_t w) {
  size_t l = width(s);
  if (l < w) pad(b, w - l);
  bok_buf_appends(b, s);
}

static void dashes(bok_buf_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) bok_buf_appendc(b, '-');
}

typedef struct {
  char id[16], model[64], total[32], ok[32], errors[32], progress[64], waiting[32], processing[32];
  const char *state;
} job_cells_t;

static void job_cells(const cli_job_row_t *r, job_cells_t *c) {
  snprintf(c->id, sizeof c->id, "%.8s", r->job_id ? r->job_id : "");
  cli_fmt_model_name(r->model_name, c->model);
  c->state = r->state ? r->state : "";
  cli_fmt_thousands(r->total, c->total);
  cli_fmt_thousands(r->success, c->ok);
  cli_fmt_thousands(r->errors, c->errors);
  cli_fmt_progress(r->total, r->success, r->errors, r->state && strcmp(r->state, "CANCELLED") == 0, c->progress);
  cli_fmt_duration(r->waiting_ms, c->waiting);
  cli_fmt_duration(r->processing_ms, c->processing);
}

/* Guide widths: JOB 8, MODEL 11, STATE 15, TOTAL/OK/ERRORS 7, PROGRESS 24,
 * WAITING 7, PROCESSING 11; two spaces before PROCESSING. */
typedef struct {
  size_t w[9];
} job_widths_t;

static void widen(size_t *w, const char *s) {
  size_t l = width(s);
  if (l > *w) *w = l;
}

static void job_row_out(bok_buf_t *b, const job_cells_t *c, const job_widths_t *w) {
  left(b, c->id, w->w[0]);
  bok_buf_appendc(b, ' ');
  left(b, c->model, w->w[1]);
  bok_buf_appendc(b, ' ');
  left(b, c->state, w->w[2]);
  bok_buf_appendc(b, ' ');
  right(b, c->total, w->w[3]);
  bok_buf_appendc(b, ' ');
  right(b, c->ok, w->w[4]);
  bok_buf_appendc(b, ' ');
  right(b, c->errors, w->w[5]);
  bok_buf_appendc(b, ' ');
  left(b, c->progress, w->w[6]);
  bok_buf_appendc(b, ' ');
  right(b, c->waiting, w->w[7]);
  bok_buf_appends(b, "  ");
  right(b, c->processing, w->w[8]);
  bok_buf_appendc(b, '\n');
}

void cli_fmt_job_table(bok_buf_t *b, const cli_job_row_t *rows, size_t n) {
  job_widths_t w = {{8, 11, 15, 7, 7, 7, 24, 7, 11}};
  job_cells_t c;
  for (size_t i = 0; i < n; i++) {
    job_cells(&rows[i], &c);
    widen(&w.w[1], c.model);
    widen(&w.w[2], c.state);
    widen(&w.w[3], c.total);
    widen(&w.w[4], c.ok);
    widen(&w.w[5], c.errors);
    widen(&w.w[7], c.waiting);
    widen(&w.w[8], c.processing);
  }
  static const char *H[] = {"JOB", "MODEL", "STATE", "TOTAL", "OK", "ERRORS", "PROGRESS", "WAITING", "PROCESSING"};
  for (int i = 0; i < 9; i++) {
    if (i == 8) {
      bok_buf_appends(b, " ");
      bok_buf_appends(b, H[i]);
    } else {
      left(b, H[i], w.w[i]);
      bok_buf_appendc(b, ' ');
    }
  }
  bok_buf_appendc(b, '\n');
  for (int i = 0; i < 9; i++) {
    dashes(b, w.w[i]);
    bok_buf_appends(b, i == 8 ? "\n" : i == 7 ? "  " : " ");
  }
  for (size_t i = 0; i < n; i++) {
    job_cells(&rows[i], &c);
    job_row_out(b, &c, &w);
  }
}

void cli_fmt_job_line(bok_buf_t *b, const cli_job_row_t *row) {
  job_widths_t w = {{8, 11, 15, 7, 7, 7, 24, 7, 11}};
  job_cells_t c;
  job_cells(row, &c);
  job_row_out(b, &c, &w);
}

/* Fits OBSERVED (w[5]) and MESSAGE into `term` columns: OBSERVED gets at
 * most a third of what the other columns leave (16 at least), MESSAGE the
 * rest (20 at least). *obs_max / *msg_max = 0: no cut. */
static void fit_width(size_t w[7], size_t term, size_t *obs_max, size_t *msg_max) {
  *obs_max = *msg_max = 0;
  if (!term) return;
  size_t fixed = w[0] + w[1] + w[2] + w[3] + w[4] + 6;
  size_t room = term > fixed ? term - fixed : 0;
  size_t obs = room / 3 > 16 ? room / 3 : 16;
  if (w[5] > obs) w[5] = obs;
  *obs_max = w[5];
  *msg_max = room > w[5] + 20 ? room - w[5] : 20;
}

void cli_fmt_rejected_table(bok_buf_t *b, const cli_rejected_row_t *rows, size_t n) {
  cli_fmt_rejected_table_w(b, rows, n, 0);
}

void cli_fmt_rejected_table_w(bok_buf_t *b, const cli_rejected_row_t *rows, size_t n, size_t term) {
  size_t w[7] = {4, 8, 11, 11, 19, 16, 84};
  char num[32];
  bok_buf_t e = BOK_BUF_INIT(0), cut = BOK_BUF_INIT(0);
  for (size_t i = 0; i < n; i++) {
    snprintf(num, sizeof num, "%lld", (long long)rows[i].row);
    widen(&w[0], num);
    widen(&w[1], esc(&e, rows[i].event_id));
    widen(&w[2], esc(&e, rows[i].column));
    widen(&w[3], esc(&e, rows[i].type));
    widen(&w[4], esc(&e, rows[i].error));
    widen(&w[5], esc(&e, rows[i].observed));
  }
  size_t obs_max, msg_max;
  fit_width(w, term, &obs_max, &msg_max);
  static const char *H[] = {"ROW", "EVENT_ID", "COLUMN", "TYPE", "ERROR", "OBSERVED", "MESSAGE"};
  for (int i = 0; i < 7; i++) {
    if (i == 6) {
      bok_buf_appends(b, H[i]);
    } else {
      left(b, H[i], w[i]);
      bok_buf_appendc(b, ' ');
    }
  }
  bok_buf_appendc(b, '\n');
  for (int i = 0; i < 7; i++) {
    dashes(b, i == 6 && msg_max && msg_max < w[6] ? msg_max : w[i]);
    bok_buf_appendc(b, i == 6 ? '\n' : ' ');
  }
  for (size_t i = 0; i < n; i++) {
    const cli_rejected_row_t *r = &rows[i];
    snprintf(num, sizeof num, "%lld", (long long)r->row);
    left(b, num, w[0]);
    bok_buf_appendc(b, ' ');
    left(b, esc(&e, r->event_id), w[1]);
    bok_buf_appendc(b, ' ');
    left(b, esc(&e, r->column), w[2]);
    bok_buf_appendc(b, ' ');
    left(b, esc(&e, r->type), w[3]);
    bok_buf_appendc(b, ' ');
    left(b, esc(&e, r->error), w[4]);
    bok_buf_appendc(b, ' ');
    cut.len = 0;
    cli_fmt_cut(&cut, esc(&e, r->observed), obs_max);
    left(b, cut.data ? cut.data : "", w[5]);
    bok_buf_appendc(b, ' ');
    cut.len = 0;
    cli_fmt_cut(&cut, esc(&e, r->message), msg_max);
    bok_buf_appends(b, cut.data ? cut.data : "");
    bok_buf_appendc(b, '\n');
  }
  bok_buf_free(&e);
  bok_buf_free(&cut);
}

void cli_fmt_errors_table(bok_buf_t *b, const cli_error_row_t *rows, size_t n) {
  size_t w[5] = {19, 11, 11, 7, 9};
  char num[32], first[32];
  bok_buf_t e = BOK_BUF_INIT(0);
  for (size_t i = 0; i < n; i++) {
    widen(&w[0], rows[i].code ? rows[i].code : "");
    widen(&w[1], esc(&e, rows[i].column));
    widen(&w[2], rows[i].type ? rows[i].type : "");
    cli_fmt_thousands(rows[i].count, num);
    widen(&w[3], num);
    snprintf(first, sizeof first, "%lld", (long long)rows[i].first_row);
    widen(&w[4], first);
  }
  left(b, "CODE", w[0]);
  bok_buf_appendc(b, ' ');
  left(b, "COLUMN", w[1]);
  bok_buf_appendc(b, ' ');
  left(b, "TYPE", w[2]);
  bok_buf_appendc(b, ' ');
  right(b, "COUNT", w[3]);
  bok_buf_appendc(b, ' ');
  right(b, "FIRST_ROW", w[4]);
  bok_buf_appends(b, " EXAMPLE\n");
  for (int i = 0; i < 5; i++) {
    dashes(b, w[i]);
    bok_buf_appendc(b, ' ');
  }
  dashes(b, 16);
  bok_buf_appendc(b, '\n');
  for (size_t i = 0; i < n; i++) {
    const cli_error_row_t *r = &rows[i];
    left(b, r->code ? r->code : "", w[0]);
    bok_buf_appendc(b, ' ');
    left(b, esc(&e, r->column), w[1]);
    bok_buf_appendc(b, ' ');
    left(b, r->type ? r->type : "", w[2]);
    bok_buf_appendc(b, ' ');
    cli_fmt_thousands(r->count, num);
    right(b, num, w[3]);
    bok_buf_appendc(b, ' ');
    snprintf(first, sizeof first, "%lld", (long long)r->first_row);
    right(b, first, w[4]);
    if (r->example) {
      bok_buf_appendc(b, ' ');
      bok_buf_appends(b, esc(&e, r->example));
    }
    bok_buf_appendc(b, '\n');
  }
  bok_buf_free(&e);
}
