#include "json_map.h"

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

static json_t *str_or_null(const char *s) { return s && *s ? json_string(s) : json_null(); }

json_t *gw_model_json(const Batch__V1__Model *m) {
  json_t *o = json_object();
  json_object_set_new(o, "model_id", json_string(m->model_id));
  json_object_set_new(o, "tenant_id", json_string(m->tenant_id));
  json_object_set_new(o, "name", json_string(m->name));
  json_t *schema = json_loads(m->schema_json, 0, NULL);
  json_object_set_new(o, "schema", schema ? schema : json_null());
  json_object_set_new(o, "created_at", gw_time_json(m->created_at_ms));
  json_object_set_new(o, "updated_at", gw_time_json(m->updated_at_ms));
  json_object_set_new(o, "version", json_integer(m->version));
  json_object_set_new(o, "topic", json_string(m->topic));
  return o;
}

static const char *STATES[] = {NULL, "PENDING", "RUNNING", "SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"};

const char *gw_job_state_name(Batch__V1__JobState s) {
  return (unsigned)s < sizeof STATES / sizeof STATES[0] ? STATES[s] : NULL;
}

int gw_job_state_parse(const char *s, size_t len) {
  for (int i = 1; i < (int)(sizeof STATES / sizeof STATES[0]); i++)
    if (strlen(STATES[i]) == len && strncasecmp(STATES[i], s, len) == 0) return i;
  return -1;
}

json_t *gw_job_json(const Batch__V1__Job *j) {
  json_t *o = json_object();
  json_object_set_new(o, "job_id", json_string(j->job_id));
  json_object_set_new(o, "tenant_id", json_string(j->tenant_id));
  json_object_set_new(o, "model_id", json_string(j->model_id));
  json_object_set_new(o, "total", json_integer(j->total));
  json_object_set_new(o, "success", json_integer(j->success));
  json_object_set_new(o, "errors", json_integer(j->errors));
  const char *st = gw_job_state_name(j->state);
  json_object_set_new(o, "state", st ? json_string(st) : json_null());
  json_object_set_new(o, "created_at", gw_time_json(j->created_at_ms));
  json_object_set_new(o, "updated_at", gw_time_json(j->updated_at_ms));
  json_object_set_new(o, "model_name", json_string(j->model_name));
  json_object_set_new(o, "file_name", json_string(j->file_name));
  json_object_set_new(o, "started_at", gw_time_json(j->started_at_ms));
  json_object_set_new(o, "finished_at", gw_time_json(j->finished_at_ms));
  json_object_set_new(o, "waiting_ms", json_integer(j->waiting_ms));
  json_object_set_new(o, "processing_ms", json_integer(j->processing_ms));
  json_object_set_new(o, "parent_job_id", str_or_null(j->parent_job_id));
  if (j->error && *j->error) json_object_set_new(o, "error", json_string(j->error));
  return o;
}

json_t *gw_rejected_json(const Batch__V1__RejectedCell *c) {
  json_t *o = json_object();
  json_object_set_new(o, "row", json_integer(c->row));
  json_object_set_new(o, "event_id", json_string(c->event_id));
  json_object_set_new(o, "column", json_string(c->column));
  json_object_set_new(o, "type", json_string(c->type));
  json_object_set_new(o, "error", json_string(c->code));
  if (c->has_observed) {
    json_t *v = json_loads(c->observed, JSON_DECODE_ANY, NULL);
    json_object_set_new(o, "observed", v ? v : json_string(c->observed));
  }
  json_object_set_new(o, "message", json_string(c->message));
  return o;
}
