/* bok/detect.h -- suggests a model schema from a CSV or NDJSON sample
 * (batchcli schema, POST /schema): one implementation for both.
 *
 * Input: NDJSON when the first non-blank line is a JSON object (or when
 * asked), else CSV with a header. At most max_rows data rows are read
 * (default 10,000); malformed rows (SPEC 6: unterminated quote, invalid
 * UTF-8, field count not the header's, NDJSON line not an object) are left
 * out and counted.
 *
 * Types (columns in header / first-seen key order). Blank cells (CSV: empty
 * after trimming spaces and tabs; NDJSON: null, "" or absent) do not count.
 * A column gets the first of these types that at least `confidence` (default
 * 95 %) of its non-blank values fit, the values that do not fit being
 * reported in the explanation:
 *   BOOLEAN   true/false/1/0 (any case) -- with at least one true/false word
 *   TIMESTAMP unix-time: integers in int32 range in a time-like column (name
 *             with time/date/epoch, ts, *_ts, *_at), else integers in
 *             [946684800, 2147483647] (2000-01-01 .. 2038-01-19) in a column
 *             whose name is not id-like
 *   INTEGER   64-bit integers
 *   FLOAT     finite numbers
 *   TIMESTAMP date-time: RFC 3339 text ({"type":"string","format":"date-time"})
 *   VECTOR    JSON arrays of numbers
 *   CATEGORY  (else) text with 2 to 20 distinct values, each seen at least
 *             twice, in at least 50 values (not event_id); enum sorted
 *   STRING    anything else
 * Numbers with a leading zero (01234, -007, 00.5) fit no number type: codes
 * stay strings. Overflow is one rule for both number types: an integer
 * beyond 64 bits (9223372036854775808) and a number beyond a double (1e309)
 * both fit neither INTEGER nor FLOAT (an integer beyond 64 bits does fit
 * FLOAT in a column that holds real fractions), and are counted as "too
 * large". NDJSON values keep their JSON types (a string "42" is no INTEGER).
 *
 * A column with no blank cell (and some value) is required. Event columns
 * are set only to a suitable column, never to null but in one case:
 *   x-event-id   event_id when STRING/INTEGER; else a column named id, uuid,
 *                eventid, event-id or event_uuid that is STRING/INTEGER,
 *                never blank and without repeats in the sample
 *   x-event-time timestamp when it is a TIMESTAMP; else the never-blank
 *                TIMESTAMP column whose name suits best (event*, time, ts,
 *                datetime, date_time, occurred_at, then any). Only when a
 *                column called timestamp holds integers beyond 32 bits (it
 *                would be the event time by SPEC 5's default and reject every
 *                row) and no other column fits is "x-event-time" null.
 * Header names that cannot be properties (empty after trimming, repeated,
 * invalid UTF-8) and NDJSON keys holding mostly objects are left out, with
 * "additionalProperties": true. The result compiles with bok_schema_compile
 * (model create accepts it as is).
 *
 * No global state; any thread, one call at a time per buffer. */
#ifndef BOK_DETECT_H
#define BOK_DETECT_H

#include <stddef.h>

#define BOK_DETECT_DEFAULT_ROWS 10000
#define BOK_DETECT_DEFAULT_CONFIDENCE 0.95

typedef enum { BOK_DETECT_AUTO = 0, BOK_DETECT_CSV, BOK_DETECT_NDJSON } bok_detect_format_t;

typedef struct {
  size_t max_rows;            /* data rows read; 0 = BOK_DETECT_DEFAULT_ROWS */
  double confidence;          /* share in (0, 1]; anything else = the default */
  char sep;                   /* CSV separator; 0 = ',' */
  bok_detect_format_t format; /* AUTO: by content */
} bok_detect_opts_t;

void bok_detect_opts_init(bok_detect_opts_t *o);

/* Returns the schema as malloc'd pretty JSON text, or NULL with a message
 * in err (no header, no usable column, out of memory). When explain is not
 * NULL, *explain gets a malloc'd JSON report:
 *   {"format","rows","malformed","confidence","event_id","event_time",
 *    "columns":[{"column","type","format"?,"values","blanks","fit","share",
 *                "not_fitting":[up to 3 values],"overflow","required",
 *                "event_id"?,"event_time"?,"repeated"?,"note"?}]}
 * opts NULL = defaults. */
char *bok_detect(const char *data, size_t len, const bok_detect_opts_t *opts, char **explain, char *err, size_t errlen);

/* The report as text for people, one line per column, e.g.
 *   price: FLOAT, 98.0% of 50 values fit, required; not fitting: "abc"
 * malloc'd; NULL when explain_json is not a report. */
char *bok_detect_explain_text(const char *explain_json);

/* 1 when the first non-blank line of p (after a UTF-8 byte order mark) is a
 * JSON object: NDJSON rather than CSV. The line must be complete in p. */
int bok_looks_ndjson(const char *p, size_t len);

/* Compatibility: bok_detect() with sep and max_rows, no report. */
char *bok_detect_schema(const char *csv, size_t len, char sep, size_t max_rows, char *err, size_t errlen);

#endif
