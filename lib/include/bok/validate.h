/* bok/validate.h -- validates rows against a compiled schema and encodes
 * valid rows as JSON events (SPEC 5, 7, 9).
 *
 * A validator is made once per job (file): header problems -- required
 * columns absent from the header, columns not in the schema -- are worked out
 * once there, not per row. It borrows the schema (which must outlive it).
 * One validator per thread; bok_validator_row() reuses the result's buffers,
 * so the hot path does not allocate for valid rows.
 *
 * Codes and messages: exactly SPEC 7, plus
 *   MALFORMED_ROW  "Row {row} is malformed: {reason}."   (column "", type "")
 *   OUT_OF_RANGE   "The value for '{col}' is out of range. {constraint}."
 * (docs/REJECTED_CODES.md lists them all). */
#ifndef BOK_VALIDATE_H
#define BOK_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "bok/buf.h"
#include "bok/schema.h"

/* The MALFORMED_ROW message: row number (long long), then the reason. */
#define BOK_MALFORMED_FMT "Row %lld is malformed: %s."

typedef enum { BOK_FMT_CSV = 0, BOK_FMT_NDJSON = 1 } bok_format_t;

/* One failing cell. Strings point into the owning result; valid until the
 * next bok_validator_row() on it. observed is NULL when there was no value. */
typedef struct {
  int64_t row;
  const char *event_id; /* "" when unknown */
  const char *column;
  const char *type; /* "STRING", ... ("" for MALFORMED_ROW) */
  const char *code;
  const char *observed; /* JSON text or NULL */
  const char *message;
} bok_reject_t;

typedef struct {
  /* valid rows */
  bok_buf_t event;       /* the JSON event object */
  bok_buf_t key;         /* event id text ("" when the model has none) */
  /* The event time in Unix milliseconds; -1 when the model has none. A
   * date-time event time before 1970 is negative: Kafka has no timestamps
   * before 1970 (-1 means "none"), so the worker, which uses this as the
   * Kafka timestamp only when it is not negative, gives such events the
   * processing time as Kafka timestamp; the event JSON keeps the value. */
  int64_t event_time_ms;
  /* rejected rows */
  bok_reject_t *rejects;
  size_t nrejects;
  /* internal */
  size_t rcap;
  bok_buf_t strings;
  bok_buf_t scratch;
  void *fields;
  size_t fcap;
} bok_row_result_t;

void bok_row_result_init(bok_row_result_t *r);
void bok_row_result_free(bok_row_result_t *r);

typedef struct bok_validator bok_validator_t;

/* CSV: `header` is the raw header record (parsed with `sep`). NDJSON: header
 * ignored. NULL with a message in err when the header cannot be read. */
bok_validator_t *bok_validator_new(const bok_schema_t *schema, bok_format_t fmt, const char *header, size_t hlen,
                                   char sep, char *err, size_t errlen);
void bok_validator_destroy(bok_validator_t *v);

/* Validates one raw row. Returns 1 (valid: event/key/event_time_ms set) or 0
 * (rejected: rejects/nrejects set). `st_reason` non-NULL marks the row as
 * malformed by the reader (e.g. "unterminated quoted field"). */
int bok_validator_row(bok_validator_t *v, int64_t row, const char *raw, size_t len, const char *st_reason,
                      bok_row_result_t *res);

/* Appends s as a JSON string literal (quotes, escapes, \u00XX controls). */
int bok_json_append_string(bok_buf_t *b, const char *s, size_t len);

/* RFC 3339 date-times (the "date-time" TIMESTAMP columns, SPEC 12):
 *   YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[.1 to 9 digits]('Z'|'z'|('+'|'-')hh:mm)
 * with real calendar days (Feb 29 only in leap years), hours 0-23, minutes
 * and seconds 0-59 (no leap second 60), offsets up to 23:59, years 0000-9999
 * after conversion to UTC; nothing before or after. Fractions beyond
 * milliseconds are cut off (rounded down). 0 and *ms (Unix milliseconds,
 * negative before 1970) on success, -1 otherwise. Any thread. */
int bok_rfc3339_parse(const char *s, size_t len, int64_t *ms);
/* Writes "YYYY-MM-DDThh:mm:ss.mmmZ" (BOK_RFC3339_LEN bytes + NUL). Returns
 * the length, or -1 when ms is outside years 0000-9999. */
#define BOK_RFC3339_LEN 24
int bok_rfc3339_format_ms(int64_t ms, char out[BOK_RFC3339_LEN + 1]);

#endif
