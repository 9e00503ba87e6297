/* header_check.h -- the CSV header checked against a model's schema at
 * upload (SPEC 12): problems that would otherwise only show as thousands of
 * per-row rejections become job warnings.
 *
 *   HEADER_CASE_MISMATCH   a header name equals a schema column but for case
 *                          or surrounding spaces ('Timestamp' vs 'timestamp')
 *   HEADER_MISSING_COLUMN  a required column is absent from the header
 *   HEADER_UNKNOWN_COLUMN  a header column the schema does not know (unless
 *                          the schema allows additional properties)
 *
 * Pure: no I/O; any thread. The per-row codes are unchanged. */
#ifndef HEADER_CHECK_H
#define HEADER_CHECK_H

#include <stddef.h>

#include "bok/schema.h"
#include "job_store.h"

/* Owned warnings (strings malloc'd). */
typedef struct {
  job_warning_t *w;
  size_t n, cap;
} job_warnings_t;

/* Checks `header` (the raw header record, parsed with `sep`) against the
 * schema and appends warnings to out. Returns how many were added. */
size_t job_header_check(const bok_schema_t *schema, const char *header, size_t hlen, char sep, job_warnings_t *out);
/* Appends one warning (copies the strings). */
void job_warnings_add(job_warnings_t *ws, const char *code, const char *column, const char *message);
void job_warnings_free(job_warnings_t *ws);

#endif
