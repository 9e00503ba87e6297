/* cli_format.h -- batchcli's tables, exactly as the user guide prints them.
 * Pure functions over plain structs: no I/O, no allocation beyond the
 * caller's buffer. Any thread. */
#ifndef CLI_FORMAT_H
#define CLI_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "bok/buf.h"

typedef struct {
  const char *job_id;
  const char *model_name;
  const char *state;
  int64_t total, success, errors;
  int64_t waiting_ms, processing_ms;
} cli_job_row_t;

typedef struct {
  int64_t row;
  const char *event_id, *column, *type, *error, *observed, *message; /* observed NULL = none */
} cli_rejected_row_t;

/* Columns s (UTF-8) takes on a terminal (wcwidth; double-width characters
 * count 2). */
size_t cli_display_width(const char *s);
/* Appends s with control characters escaped (\n, \r, \t, \xNN, C1 as \u00NN). */
void cli_fmt_escape(bok_buf_t *out, const char *s);
/* Appends s cut to maxw display columns, the last being "…" when cut; maxw
 * 0 = in full. */
void cli_fmt_cut(bok_buf_t *out, const char *s, size_t maxw);

/* "1,234,567" */
void cli_fmt_thousands(int64_t v, char out[32]);
/* "mm:ss", or "h:mm:ss" from one hour on */
void cli_fmt_duration(int64_t ms, char out[32]);
/* Escaped; 9 display columns + ".." for names wider than 11 columns. */
void cli_fmt_model_name(const char *name, char out[64]);
/* "[#####X----------]  29%": 17 cells, # valid, X rejected (and, when
 * cancelled, the unprocessed rest), - unprocessed; percent = valid/total. */
void cli_fmt_progress(int64_t total, int64_t success, int64_t errors, int cancelled, char out[64]);

/* The job table (header, dashes, rows). Columns widen for wider values. */
void cli_fmt_job_table(bok_buf_t *out, const cli_job_row_t *rows, size_t n);
/* One job line without the header (for `job watch`). */
void cli_fmt_job_line(bok_buf_t *out, const cli_job_row_t *row);
typedef struct {
  const char *code, *column, *type, *example; /* example: JSON text, NULL = none */
  int64_t count, first_row;
} cli_error_row_t;

/* The error summary table (`job errors`): CODE COLUMN TYPE COUNT FIRST_ROW
 * EXAMPLE; columns widen for wider values. */
void cli_fmt_errors_table(bok_buf_t *out, const cli_error_row_t *rows, size_t n);

/* The rejected-rows table, cells escaped. */
void cli_fmt_rejected_table(bok_buf_t *out, const cli_rejected_row_t *rows, size_t n);
/* The same fitted to a terminal `term` columns wide (0 = never cut):
 * OBSERVED and MESSAGE are cut with "…". */
void cli_fmt_rejected_table_w(bok_buf_t *out, const cli_rejected_row_t *rows, size_t n, size_t term);

#endif
