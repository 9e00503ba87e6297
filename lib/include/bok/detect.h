/* bok/detect.h -- suggests a model schema from a CSV sample.
 *
 * Rules (deterministic; columns in header order):
 *   BOOLEAN   every value is true/false (any case)
 *   TIMESTAMP every value an integer in [946684800, 2147483647] (2000-01-01 ..
 *             2038-01-19), or an integer in int32 range in a column named
 *             timestamp / *time* / *_at
 *   INTEGER   every value a 64-bit integer
 *   FLOAT     every value a finite number
 *   VECTOR    every value a JSON array of numbers
 *   CATEGORY  text with at most 10 distinct values, each seen at least twice
 *             on average (enum sorted)
 *   STRING    anything else
 * A column without blank cells is required. Header names that cannot be
 * properties (empty, repeated, invalid UTF-8, surrounding blanks) are left
 * out and "additionalProperties": true keeps their cells acceptable. Event columns: a column named
 * event_id / timestamp becomes the event id / time only where its detected
 * type fits and it has no blanks; otherwise "x-event-id"/"x-event-time" are
 * set to null so the schema still accepts the sample. The result compiles
 * with bok_schema_compile and validates the sample without rejections. */
#ifndef BOK_DETECT_H
#define BOK_DETECT_H

#include <stddef.h>

/* Returns malloc'd pretty JSON text, or NULL with a message in err (no
 * header, empty sample). Reads at most max_rows data rows (0 = 10000). */
char *bok_detect_schema(const char *csv, size_t len, char sep, size_t max_rows, char *err, size_t errlen);

#endif
