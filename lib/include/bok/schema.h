/* bok/schema.h -- compiles a model's JSON Schema (SPEC 5) into columns.
 *
 * A compiled schema is immutable: any number of threads may read it at once.
 * The caller owns it and frees it with bok_schema_destroy(). */
#ifndef BOK_SCHEMA_H
#define BOK_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  BOK_COL_STRING = 0,
  BOK_COL_INTEGER,
  BOK_COL_FLOAT,
  BOK_COL_BOOLEAN,
  BOK_COL_CATEGORY,
  BOK_COL_TIMESTAMP,
  BOK_COL_VECTOR
} bok_col_type_t;

typedef struct {
  char *name;
  bok_col_type_t type;
  int required;
  int has_minimum, has_maximum;
  double minimum, maximum;
  int64_t min_length, max_length; /* -1 = none (STRING, CATEGORY) */
  int64_t min_items, max_items;   /* -1 = none (VECTOR) */
  char **enum_values;             /* CATEGORY */
  size_t n_enum;
  int date_time;                  /* TIMESTAMP: 1 = {"type":"string","format":"date-time"} (RFC 3339 text),
                                     0 = {"type":"integer","format":"unix-time"} (32-bit seconds) */
} bok_column_t;

typedef struct bok_schema bok_schema_t;

/* Compiles `json` (len bytes). 0 and *out on success; -1 with a message that
 * names the property and why in err, e.g.
 *   "properties.price.type: unsupported type 'money'". */
int bok_schema_compile(const char *json, size_t len, bok_schema_t **out, char *err, size_t errlen);
void bok_schema_destroy(bok_schema_t *s);

size_t bok_schema_ncols(const bok_schema_t *s);
const bok_column_t *bok_schema_col(const bok_schema_t *s, size_t i);
/* Index of the column named `name` (len bytes), or -1. */
int bok_schema_find(const bok_schema_t *s, const char *name, size_t len);
/* Event id / event time column index, or -1 (SPEC 5 x-event-id/x-event-time). */
int bok_schema_event_id_col(const bok_schema_t *s);
int bok_schema_event_time_col(const bok_schema_t *s);
int bok_schema_additional_ok(const bok_schema_t *s);
/* "STRING", "INTEGER", ... */
const char *bok_col_type_name(bok_col_type_t t);

#endif
