/* json_map.c -- gRPC messages to the REST JSON shapes of the guide and
 * SPEC 4, plus the JSON helpers of the handlers (contract: json_map.h). */
#include "json_map.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bok/util.h"

char *gw_json_text(const json_t *j) {
  return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

json_t *gw_time_json(int64_t ms) {
  if (ms <= 0) return json_null();
  char buf[32];
  bok_iso8601_ms(ms, buf);
  return json_string(buf);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  if (p[0] < 0x80) return 1;
  size_t len;
  unsigned cp;
  if (p[0] >= 0xC2 && p[0] <= 0xDF) len = 2, cp = p[0] & 0x1F;
  else if (p[0] >= 0xE0 && p[0] <= 0xEF) len = 3, cp = p[0] & 0x0F;
  else if (p[0] >= 0xF0 && p[0] <= 0xF4) len = 4, cp = p[0] & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* A malloc'd copy of s with every invalid UTF-8 byte replaced by U+FFFD. */
static char *utf8_sanitize(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(3 * n + 1);
  if (!out) return NULL;
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_seq(p + i, n - i);
    if (l) {
      memcpy(out + o, p + i, l);
      o += l;
      i += l;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    }
  }
  out[o] = '\0';
  return out;
}

json_t *gw_json_str(const char *s) {
  if (!s) s = "";
  json_t *j = json_string(s);
  if (j) return j;
  char *clean = utf8_sanitize(s); /* json_string() refuses invalid UTF-8 */
  j = clean ? json_string(clean) : NULL;
  free(clean);
  return j ? j : json_string("");
}

/* The observed value: its JSON text parsed (invalid UTF-8 replaced first if
 * need be); if it still is not JSON, the text as a string. */
static json_t *observed_json(const char *text) {
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  if (v) return v;
  char *clean = utf8_sanitize(text);
  if (clean) {
    v = json_loads(clean, JSON_DECODE_ANY, NULL);
    free(clean);
    if (v) return v;
  }
  return gw_json_str(text);
}

static json_t *str_or_null(const char *s) { return s && *s ? gw_json_str(s) : json_null(); }

json_t *gw_model_json(const Batch__V1__Model *m) {
  json_t *o = json_object();
  json_object_set_new(o, "model_id", gw_json_str(m->model_id));
  json_object_set_new(o, "tenant_id", gw_json_str(m->tenant_id));
  json_object_set_new(o, "name", gw_json_str(m->name));
  json_t *schema = json_loads(m->schema_json, 0, NULL);
  json_object_set_new(o, "schema", schema ? schema : json_null());
  json_object_set_new(o, "created_at", gw_time_json(m->created_at_ms));
  json_object_set_new(o, "updated_at", gw_time_json(m->updated_at_ms));
  json_object_set_new(o, "version", json_integer(m->version));
  json_object_set_new(o, "topic", gw_json_str(m->topic));
  /* the default error budget, only when set (a model without one keeps the guide's shape) */
  if (m->has_max_errors) json_object_set_new(o, "max_errors", json_integer(m->max_errors));
  if (m->has_max_error_rate) json_object_set_new(o, "max_error_rate", json_real(m->max_error_rate));
  return o;
}

static const char *STATES[] = {NULL, "PENDING", "RUNNING", "SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"};

const char *gw_job_state_name(Batch__V1__JobState s) {
  return (unsigned)s < sizeof STATES / sizeof STATES[0] ? STATES[s] : NULL;
}

int gw_job_state_parse(const char *s, size_t len) {
  int lower = len > 0 && s[0] >= 'a' && s[0] <= 'z';
  for (size_t i = 0; i < len; i++) /* one case throughout, as docs/openapi.yaml lists them */
    if (s[i] != '_' && (lower ? !(s[i] >= 'a' && s[i] <= 'z') : !(s[i] >= 'A' && s[i] <= 'Z'))) return -1;
  for (int i = 1; i < (int)(sizeof STATES / sizeof STATES[0]); i++)
    if (strlen(STATES[i]) == len && strncasecmp(STATES[i], s, len) == 0) return i;
  return -1;
}

json_t *gw_job_json(const Batch__V1__Job *j) {
  json_t *o = json_object();
  json_object_set_new(o, "job_id", gw_json_str(j->job_id));
  json_object_set_new(o, "tenant_id", gw_json_str(j->tenant_id));
  json_object_set_new(o, "model_id", gw_json_str(j->model_id));
  json_object_set_new(o, "total", json_integer(j->total));
  json_object_set_new(o, "success", json_integer(j->success));
  json_object_set_new(o, "errors", json_integer(j->errors));
  const char *st = gw_job_state_name(j->state);
  json_object_set_new(o, "state", st ? json_string(st) : json_null());
  json_object_set_new(o, "created_at", gw_time_json(j->created_at_ms));
  json_object_set_new(o, "updated_at", gw_time_json(j->updated_at_ms));
  json_object_set_new(o, "model_name", gw_json_str(j->model_name));
  json_object_set_new(o, "file_name", gw_json_str(j->file_name));
  json_object_set_new(o, "started_at", gw_time_json(j->started_at_ms));
  json_object_set_new(o, "finished_at", gw_time_json(j->finished_at_ms));
  json_object_set_new(o, "waiting_ms", json_integer(j->waiting_ms));
  json_object_set_new(o, "processing_ms", json_integer(j->processing_ms));
  json_object_set_new(o, "parent_job_id", str_or_null(j->parent_job_id));
  if (j->error && *j->error) json_object_set_new(o, "error", gw_json_str(j->error));
  json_t *w = json_array();
  for (size_t i = 0; i < j->n_warnings; i++) {
    json_t *x = json_object();
    json_object_set_new(x, "code", gw_json_str(j->warnings[i]->code));
    json_object_set_new(x, "column", gw_json_str(j->warnings[i]->column));
    json_object_set_new(x, "message", gw_json_str(j->warnings[i]->message));
    json_array_append_new(w, x);
  }
  json_object_set_new(o, "warnings", w);
  json_t *top = json_array();
  for (size_t i = 0; i < j->n_top_errors; i++) json_array_append_new(top, gw_summary_entry_json(j->top_errors[i]));
  json_object_set_new(o, "top_errors", top);
  json_object_set_new(o, "dry_run", json_boolean(j->dry_run));
  json_object_set_new(o, "max_errors", j->has_max_errors ? json_integer(j->max_errors) : json_null());
  json_object_set_new(o, "max_error_rate", j->has_max_error_rate ? json_real(j->max_error_rate) : json_null());
  return o;
}

json_t *gw_summary_entry_json(const Batch__V1__ErrorSummaryEntry *e) {
  json_t *o = json_object();
  json_object_set_new(o, "code", gw_json_str(e->code));
  json_object_set_new(o, "column", gw_json_str(e->column));
  json_object_set_new(o, "type", gw_json_str(e->type));
  json_object_set_new(o, "count", json_integer(e->count));
  json_object_set_new(o, "first_row", json_integer(e->first_row));
  json_object_set_new(o, "example", e->has_example ? observed_json(e->example) : json_null());
  json_object_set_new(o, "message", gw_json_str(e->message));
  return o;
}

json_t *gw_rejected_json(const Batch__V1__RejectedCell *c) {
  json_t *o = json_object();
  json_object_set_new(o, "row", json_integer(c->row));
  json_object_set_new(o, "event_id", gw_json_str(c->event_id));
  json_object_set_new(o, "column", gw_json_str(c->column));
  json_object_set_new(o, "type", gw_json_str(c->type));
  json_object_set_new(o, "error", gw_json_str(c->code));
  if (c->has_observed) {
    json_object_set_new(o, "observed", observed_json(c->observed));
  }
  json_object_set_new(o, "message", gw_json_str(c->message));
  return o;
}
