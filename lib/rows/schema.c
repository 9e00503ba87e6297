/* Compiles a model's JSON Schema (SPEC 5, 12) into typed columns; every
 * refusal names the property and the reason. */
#include "bok/schema.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bok_schema {
  bok_column_t *cols;
  size_t n;
  int additional;
  int event_id;
  int event_time;
};

const char *bok_col_type_name(bok_col_type_t t) {
  static const char *n[] = {"STRING", "INTEGER", "FLOAT", "BOOLEAN", "CATEGORY", "TIMESTAMP", "VECTOR"};
  return (unsigned)t < 7 ? n[t] : "UNKNOWN";
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Keywords a property may carry besides the ones we interpret. */
static int is_annotation(const char *k) {
  static const char *ok[] = {"description", "title", "default", "examples", "$comment", "deprecated", NULL};
  for (int i = 0; ok[i]; i++)
    if (strcmp(k, ok[i]) == 0) return 1;
  return 0;
}

static int get_count(json_t *v, const char *prop, const char *kw, int64_t *out, char *err, size_t errlen) {
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return fail(err, errlen, "properties.%s.%s: must be a non-negative integer", prop, kw);
  *out = json_integer_value(v);
  return 0;
}

/* The column's type from "type", "format", "enum" and "items". */
static int prop_type(const char *name, json_t *p, bok_column_t *c, char *err, size_t errlen) {
  json_t *type = json_object_get(p, "type");
  if (!type) return fail(err, errlen, "properties.%s.type: required", name);
  if (!json_is_string(type)) return fail(err, errlen, "properties.%s.type: must be a string", name);
  const char *t = json_string_value(type);
  json_t *fmt = json_object_get(p, "format");
  json_t *en = json_object_get(p, "enum");
  if (strcmp(t, "string") == 0) {
    if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "date-time") == 0))
      return fail(err, errlen, "properties.%s.format: unsupported format for string (use \"date-time\")", name);
    if (fmt && en) return fail(err, errlen, "properties.%s.enum: a date-time column takes no enum", name);
    c->type = fmt ? BOK_COL_TIMESTAMP : en ? BOK_COL_CATEGORY : BOK_COL_STRING;
    c->date_time = fmt != NULL;
  } else if (strcmp(t, "integer") == 0) {
    if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "unix-time") == 0))
      return fail(err, errlen, "properties.%s.format: unsupported format for integer (use \"unix-time\")", name);
    c->type = fmt ? BOK_COL_TIMESTAMP : BOK_COL_INTEGER;
  } else if (strcmp(t, "number") == 0) {
    c->type = BOK_COL_FLOAT;
  } else if (strcmp(t, "boolean") == 0) {
    c->type = BOK_COL_BOOLEAN;
  } else if (strcmp(t, "array") == 0) {
    json_t *items = json_object_get(p, "items");
    json_t *it = items ? json_object_get(items, "type") : NULL;
    if (!json_is_object(items) || !json_is_string(it) ||
        (strcmp(json_string_value(it), "number") != 0 && strcmp(json_string_value(it), "integer") != 0))
      return fail(err, errlen, "properties.%s.items: arrays must have items {\"type\":\"number\"}", name);
    c->type = BOK_COL_VECTOR;
  } else {
    return fail(err, errlen, "properties.%s.type: unsupported type '%s'", name, t);
  }
  if (fmt && c->type != BOK_COL_TIMESTAMP)
    return fail(err, errlen, "properties.%s.format: only integer (unix-time) and string (date-time) columns take a format",
                name);
  if (en && c->type != BOK_COL_CATEGORY)
    return fail(err, errlen, "properties.%s.enum: only string columns take an enum", name);
  return 0;
}

static int prop_enum(const char *name, json_t *v, bok_column_t *c, char *err, size_t errlen) {
  if (!json_is_array(v) || json_array_size(v) == 0)
    return fail(err, errlen, "properties.%s.enum: must be a non-empty array of strings", name);
  c->n_enum = json_array_size(v);
  c->enum_values = calloc(c->n_enum, sizeof(char *));
  for (size_t i = 0; i < c->n_enum; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_string(e)) return fail(err, errlen, "properties.%s.enum[%zu]: must be a string", name, i);
    c->enum_values[i] = strdup(json_string_value(e));
  }
  return 0;
}

/* One keyword k (not type, format, items or an annotation) of the column. */
static int prop_keyword(const char *name, const char *k, json_t *v, bok_column_t *c, char *err, size_t errlen) {
  if (!strcmp(k, "enum")) return prop_enum(name, v, c, err, errlen);
  if (!strcmp(k, "minimum") || !strcmp(k, "maximum")) {
    if (c->type != BOK_COL_INTEGER && c->type != BOK_COL_FLOAT && (c->type != BOK_COL_TIMESTAMP || c->date_time))
      return fail(err, errlen, "properties.%s.%s: only numeric columns take %s", name, k, k);
    if (!json_is_number(v)) return fail(err, errlen, "properties.%s.%s: must be a number", name, k);
    if (k[1] == 'i') {
      c->has_minimum = 1;
      c->minimum = json_number_value(v);
    } else {
      c->has_maximum = 1;
      c->maximum = json_number_value(v);
    }
    return 0;
  }
  if (!strcmp(k, "minLength") || !strcmp(k, "maxLength")) {
    if (c->type != BOK_COL_STRING && c->type != BOK_COL_CATEGORY)
      return fail(err, errlen, "properties.%s.%s: only string columns take %s", name, k, k);
    return get_count(v, name, k, k[1] == 'i' ? &c->min_length : &c->max_length, err, errlen);
  }
  if (!strcmp(k, "minItems") || !strcmp(k, "maxItems")) {
    if (c->type != BOK_COL_VECTOR) return fail(err, errlen, "properties.%s.%s: only array columns take %s", name, k, k);
    return get_count(v, name, k, k[1] == 'i' ? &c->min_items : &c->max_items, err, errlen);
  }
  return fail(err, errlen, "properties.%s.%s: unsupported keyword", name, k);
}

static int compile_prop(const char *name, json_t *p, bok_column_t *c, char *err, size_t errlen) {
  c->min_length = c->max_length = c->min_items = c->max_items = -1;
  if (!json_is_object(p)) return fail(err, errlen, "properties.%s: must be an object", name);
  if (prop_type(name, p, c, err, errlen) != 0) return -1;
  const char *k;
  json_t *v;
  json_object_foreach(p, k, v) {
    if (!strcmp(k, "type") || !strcmp(k, "format") || !strcmp(k, "items") || is_annotation(k)) continue;
    if (prop_keyword(name, k, v, c, err, errlen) != 0) return -1;
  }
  if (c->has_minimum && c->has_maximum && c->minimum > c->maximum)
    return fail(err, errlen, "properties.%s.minimum: greater than maximum", name);
  if (c->min_length >= 0 && c->max_length >= 0 && c->min_length > c->max_length)
    return fail(err, errlen, "properties.%s.minLength: greater than maxLength", name);
  if (c->min_items >= 0 && c->max_items >= 0 && c->min_items > c->max_items)
    return fail(err, errlen, "properties.%s.minItems: greater than maxItems", name);
  return 0;
}

static int event_col(bok_schema_t *s, json_t *root, const char *kw, const char *def, int *out,
                     char *err, size_t errlen) {
  json_t *v = json_object_get(root, kw);
  *out = -1;
  if (json_is_null(v)) return 0; /* explicitly none */
  if (v) {
    if (!json_is_string(v)) return fail(err, errlen, "%s: must be the name of a property", kw);
    *out = bok_schema_find(s, json_string_value(v), strlen(json_string_value(v)));
    if (*out < 0) return fail(err, errlen, "%s: '%s' is not a property", kw, json_string_value(v));
  } else {
    /* The default applies only to a column of a fitting type. */
    int c = bok_schema_find(s, def, strlen(def));
    if (c >= 0) {
      bok_col_type_t t = s->cols[c].type;
      int is_time = strcmp(kw, "x-event-time") == 0;
      if (is_time ? (t == BOK_COL_TIMESTAMP || t == BOK_COL_INTEGER) : (t == BOK_COL_STRING || t == BOK_COL_INTEGER))
        *out = c;
    }
  }
  return 0;
}

/* "properties": one column each, in order. */
static int compile_props(bok_schema_t *s, json_t *root, char *err, size_t errlen) {
  json_t *props = json_object_get(root, "properties");
  if (!json_is_object(props) || json_object_size(props) == 0)
    return fail(err, errlen, "schema.properties: must be a non-empty object");
  s->cols = calloc(json_object_size(props), sizeof *s->cols);
  const char *k;
  json_t *v;
  json_object_foreach(props, k, v) {
    if (!*k) return fail(err, errlen, "properties: a property name must not be empty");
    bok_column_t *c = &s->cols[s->n++];
    c->name = strdup(k);
    if (compile_prop(k, v, c, err, errlen) != 0) return -1;
  }
  return 0;
}

/* "required": marks the named columns. */
static int mark_required(bok_schema_t *s, json_t *root, char *err, size_t errlen) {
  json_t *req = json_object_get(root, "required");
  if (!req) return 0;
  if (!json_is_array(req)) return fail(err, errlen, "required: must be an array of property names");
  for (size_t i = 0; i < json_array_size(req); i++) {
    json_t *r = json_array_get(req, i);
    int idx = json_is_string(r) ? bok_schema_find(s, json_string_value(r), strlen(json_string_value(r))) : -1;
    if (idx < 0)
      return fail(err, errlen, "required[%zu]: %s%s%s is not a property", i, json_is_string(r) ? "'" : "",
                  json_is_string(r) ? json_string_value(r) : "value", json_is_string(r) ? "'" : "");
    s->cols[idx].required = 1;
  }
  return 0;
}

/* x-event-id / x-event-time (or their defaults) and their column types. */
static int event_cols(bok_schema_t *s, json_t *root, char *err, size_t errlen) {
  if (event_col(s, root, "x-event-id", "event_id", &s->event_id, err, errlen)) return -1;
  if (event_col(s, root, "x-event-time", "timestamp", &s->event_time, err, errlen)) return -1;
  if (s->event_id >= 0) {
    bok_col_type_t t = s->cols[s->event_id].type;
    if (t != BOK_COL_STRING && t != BOK_COL_INTEGER)
      return fail(err, errlen, "properties.%s.type: the event id must be a string or integer",
                  s->cols[s->event_id].name);
  }
  if (s->event_time >= 0) {
    bok_col_type_t t = s->cols[s->event_time].type;
    if (t != BOK_COL_TIMESTAMP && t != BOK_COL_INTEGER)
      return fail(err, errlen, "properties.%s.type: the event time must be an integer unix-time or a string date-time",
                  s->cols[s->event_time].name);
  }
  return 0;
}

static int compile_root(bok_schema_t *s, json_t *root, char *err, size_t errlen) {
  if (!json_is_object(root)) return fail(err, errlen, "schema: must be a JSON object");
  json_t *type = json_object_get(root, "type");
  if (!json_is_string(type) || strcmp(json_string_value(type), "object") != 0)
    return fail(err, errlen, "schema.type: must be \"object\"");
  if (compile_props(s, root, err, errlen) != 0 || mark_required(s, root, err, errlen) != 0) return -1;
  json_t *add = json_object_get(root, "additionalProperties");
  if (add && !json_is_boolean(add)) return fail(err, errlen, "additionalProperties: must be true or false");
  s->additional = add && json_is_true(add);
  return event_cols(s, root, err, errlen);
}

int bok_schema_compile(const char *json, size_t len, bok_schema_t **out, char *err, size_t errlen) {
  *out = NULL;
  json_error_t je;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) return fail(err, errlen, "schema: invalid JSON: %s", je.text);
  bok_schema_t *s = calloc(1, sizeof *s);
  int rc = compile_root(s, root, err, errlen);
  json_decref(root);
  if (rc == 0)
    *out = s;
  else
    bok_schema_destroy(s);
  return rc;
}

void bok_schema_destroy(bok_schema_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->cols[i].name);
    for (size_t j = 0; j < s->cols[i].n_enum; j++) free(s->cols[i].enum_values[j]);
    free(s->cols[i].enum_values);
  }
  free(s->cols);
  free(s);
}

size_t bok_schema_ncols(const bok_schema_t *s) { return s->n; }
const bok_column_t *bok_schema_col(const bok_schema_t *s, size_t i) { return i < s->n ? &s->cols[i] : NULL; }
int bok_schema_find(const bok_schema_t *s, const char *name, size_t len) {
  for (size_t i = 0; i < s->n; i++)
    if (strlen(s->cols[i].name) == len && memcmp(s->cols[i].name, name, len) == 0) return (int)i;
  return -1;
}
int bok_schema_event_id_col(const bok_schema_t *s) { return s->event_id; }
int bok_schema_event_time_col(const bok_schema_t *s) { return s->event_time; }
int bok_schema_additional_ok(const bok_schema_t *s) { return s->additional; }
