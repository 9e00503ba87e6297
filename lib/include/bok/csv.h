/* bok/csv.h -- streaming RFC 4180 CSV: record splitting and field parsing.
 *
 * The splitter is fed chunks of any size (a record may straddle chunks) and
 * calls back once per record with its number (0 = header, 1 = first data
 * row) and raw bytes without the line ending. A UTF-8 BOM at the start is
 * skipped; LF and CRLF both end records; quoted fields may hold separators,
 * "" escapes and newlines; a '"' opens a quoted field only at the start of
 * a field (elsewhere it is text, as in bok_csv_parse_record). Empty lines
 * are skipped and not numbered. Malformed records are still delivered, with
 * a status, and reading goes on at the next record: memory stays bounded by
 * max_record.
 *
 * Unterminated quote (SPEC 6): when the input ends inside a quoted field,
 * bok_csv_finish() delivers the record up to the end of the line where that
 * quote opened, with BOK_CSV_UNTERMINATED_QUOTE and that row's number, then
 * reads the lines after it again as records (numbered on), so no row is
 * swallowed. Limit: when more than max_record bytes follow the quote, the
 * rows in them are lost (the opening row is still reported).
 *
 * Not thread-safe: one splitter per stream. The raw bytes passed to the
 * callback are valid only during the call. */
#ifndef BOK_CSV_H
#define BOK_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "bok/buf.h"

typedef enum {
  BOK_CSV_OK = 0,
  BOK_CSV_UNTERMINATED_QUOTE, /* end of input inside a quoted field */
  BOK_CSV_INVALID_UTF8,
  BOK_CSV_TOO_LONG /* record longer than max_record: raw holds its first max_record bytes */
} bok_csv_status_t;

const char *bok_csv_status_text(bok_csv_status_t st);

/* Return non-zero to stop reading (bok_csv_feed/finish then return it). */
typedef int (*bok_csv_record_fn)(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st);

typedef struct bok_csv bok_csv_t;

/* max_record 0 = 1 MiB. NULL on out of memory. */
bok_csv_t *bok_csv_new(char sep, size_t max_record, bok_csv_record_fn fn, void *ud);
/* The quote character of the CSV splitter (default '"'), before the first
 * feed. */
void bok_csv_set_quote(bok_csv_t *c, char quote);
int bok_csv_feed(bok_csv_t *c, const char *data, size_t len);
/* Flushes the last record (one without a final newline). */
int bok_csv_finish(bok_csv_t *c);
/* Records delivered so far, header included. */
int64_t bok_csv_records(const bok_csv_t *c);
/* The first row delivered as BOK_CSV_UNTERMINATED_QUOTE (0 = none): what a
 * job warning (UNTERMINATED_QUOTE, SPEC 12) names. */
int64_t bok_csv_unterminated_row(const bok_csv_t *c);
void bok_csv_destroy(bok_csv_t *c);

/* NDJSON splitting uses the same interface: lines, rows numbered from 1
 * (there is no header), blank lines skipped. */
bok_csv_t *bok_ndjson_new(size_t max_record, bok_csv_record_fn fn, void *ud);

/* Splits one raw record into fields. Unquoted fields point into `raw`;
 * quoted fields are unescaped into `scratch` (reset by the caller per
 * record; it must not move while fields are used, so it is reserved for
 * len bytes first). Returns the number of fields (<= max; extra fields are
 * counted but not stored) or -1 for an unterminated quote. */
int bok_csv_parse_record(const char *raw, size_t len, char sep, bok_slice_t *fields, size_t max, bok_buf_t *scratch);

/* The same with another quote character (doubled inside a quoted field). */
int bok_csv_parse_record_q(const char *raw, size_t len, char sep, char quote, bok_slice_t *fields, size_t max,
                           bok_buf_t *scratch);

/* 1 if s[0..len) is valid UTF-8. */
int bok_utf8_valid(const char *s, size_t len);

#endif
