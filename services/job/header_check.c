/* header_check.c -- CSV header vs schema at upload (header_check.h). */
#include "header_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bok/buf.h"
#include "bok/csv.h"

#define MAX_HEADER_FIELDS 4096
#define NAME_SHOWN 200 /* a name is quoted up to this many bytes in a message */

void job_warnings_add(job_warnings_t *ws, const char *code, const char *column, const char *message) {
  if (ws->n == ws->cap) {
    ws->cap = ws->cap ? ws->cap * 2 : 4;
    ws->w = realloc(ws->w, ws->cap * sizeof *ws->w);
  }
  ws->w[ws->n++] = (job_warning_t){strdup(code), strdup(column ? column : ""), strdup(message)};
}

void job_warnings_free(job_warnings_t *ws) {
  for (size_t i = 0; i < ws->n; i++) {
    free((char *)ws->w[i].code);
    free((char *)ws->w[i].column);
    free((char *)ws->w[i].message);
  }
  free(ws->w);
  memset(ws, 0, sizeof *ws);
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* The schema column whose name equals f[0..n) but for ASCII case and
 * surrounding spaces, or -1. *spaces_only: the case matched exactly. */
static int near_match(const bok_schema_t *s, const char *f, size_t n, int *spaces_only) {
  while (n && is_space(*f)) f++, n--;
  while (n && is_space(f[n - 1])) n--;
  for (size_t i = 0; i < bok_schema_ncols(s); i++) {
    const char *name = bok_schema_col(s, i)->name;
    if (strlen(name) != n || strncasecmp(name, f, n) != 0) continue;
    *spaces_only = memcmp(name, f, n) == 0;
    return (int)i;
  }
  return -1;
}

static void add_fmt(job_warnings_t *out, const char *code, const char *column, const char *fmt, const char *a,
                    int alen, const char *b) {
  char msg[700];
  snprintf(msg, sizeof msg, fmt, alen, a, b);
  job_warnings_add(out, code, column, msg);
}

size_t job_header_check(const bok_schema_t *s, const char *header, size_t hlen, char sep, job_warnings_t *out) {
  size_t before = out->n, ncols = bok_schema_ncols(s);
  bok_slice_t *f = calloc(MAX_HEADER_FIELDS, sizeof *f);
  unsigned char *exact = calloc(ncols ? ncols : 1, 1), *near = calloc(ncols ? ncols : 1, 1);
  bok_buf_t scratch = BOK_BUF_INIT(0);
  bok_buf_reserve(&scratch, hlen + 1);
  int nf = bok_csv_parse_record(header, hlen, sep, f, MAX_HEADER_FIELDS, &scratch);
  if (nf > MAX_HEADER_FIELDS) nf = MAX_HEADER_FIELDS;
  if (nf < 0) goto done; /* an unreadable header: the rows say why */
  for (int i = 0; i < nf; i++) {
    int k = bok_schema_find(s, f[i].base, f[i].len);
    if (k >= 0) exact[k] = 1;
  }
  for (int i = 0; i < nf; i++) {
    if (bok_schema_find(s, f[i].base, f[i].len) >= 0) continue;
    int shown = f[i].len > NAME_SHOWN ? NAME_SHOWN : (int)f[i].len;
    int spaces_only = 0;
    int k = near_match(s, f[i].base, f[i].len, &spaces_only);
    if (k >= 0 && !exact[k] && !near[k]) {
      near[k] = 1;
      const char *name = bok_schema_col(s, (size_t)k)->name;
      add_fmt(out, "HEADER_CASE_MISMATCH", name,
              spaces_only ? "the header has '%.*s' but the schema expects '%s' (remove the spaces around the name)"
                          : "the header has '%.*s' but the schema expects '%s' (column names are case-sensitive)",
              f[i].base, shown, name);
    } else if (!bok_schema_additional_ok(s)) {
      char col[NAME_SHOWN + 1];
      snprintf(col, sizeof col, "%.*s", shown, f[i].base);
      add_fmt(out, "HEADER_UNKNOWN_COLUMN", col,
              "the header has '%.*s', which the schema does not know: rows with a value in it are rejected with EXTRA_COLUMN%s",
              f[i].base, shown, " (remove the column, or add it to the schema)");
    }
  }
  for (size_t k = 0; k < ncols; k++) {
    const bok_column_t *c = bok_schema_col(s, k);
    int event = (int)k == bok_schema_event_id_col(s) || (int)k == bok_schema_event_time_col(s); /* required too */
    if (!(c->required || event) || exact[k] || near[k]) continue;
    add_fmt(out, "HEADER_MISSING_COLUMN", c->name,
            "the required column '%.*s' is not in the header: every row is rejected with MISSING_COLUMN%s", c->name,
            (int)strlen(c->name), "");
  }
done:
  bok_buf_free(&scratch);
  free(f);
  free(exact);
  free(near);
  return out->n - before;
}
