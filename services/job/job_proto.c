/* job_proto.c -- store records to batch.v1 messages (job_proto.h):
 * borrowed strings, allocated arrays. */
#include "job_proto.h"

#include <stdlib.h>

/* n messages of `size` bytes in one block, with an array of pointers to
 * them; the pointer array (its [0] is the block), or NULL (none, or out of
 * memory). Released by release_array. */
static void **msg_array(size_t n, size_t size) {
  if (!n) return NULL;
  char *block = calloc(n, size);
  void **ptrs = calloc(n, sizeof *ptrs);
  if (!block || !ptrs) {
    free(block);
    free(ptrs);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) ptrs[i] = block + i * size;
  return ptrs;
}

static void release_array(void **ptrs) {
  if (!ptrs) return;
  free(ptrs[0]);
  free(ptrs);
}

static void map_warnings(const job_t *j, Batch__V1__Job *o) {
  Batch__V1__JobWarning **w = (Batch__V1__JobWarning **)msg_array(j->n_warnings, sizeof **w);
  if (!w) return;
  for (size_t i = 0; i < j->n_warnings; i++) {
    batch__v1__job_warning__init(w[i]);
    w[i]->code = j->warnings[i].code;
    w[i]->column = j->warnings[i].column;
    w[i]->message = j->warnings[i].message;
  }
  o->warnings = w;
  o->n_warnings = j->n_warnings;
}

static void map_summary(const job_summary_t *e, size_t n, Batch__V1__ErrorSummaryEntry ***out, size_t *nout) {
  Batch__V1__ErrorSummaryEntry **x = (Batch__V1__ErrorSummaryEntry **)msg_array(n, sizeof **x);
  *out = x;
  *nout = x ? n : 0;
  for (size_t i = 0; x && i < n; i++) {
    batch__v1__error_summary_entry__init(x[i]);
    x[i]->code = e[i].code;
    x[i]->column = e[i].column;
    x[i]->type = e[i].type;
    x[i]->count = e[i].count;
    x[i]->first_row = e[i].first_row;
    x[i]->example = e[i].example;
    x[i]->has_example = e[i].has_example;
    x[i]->message = e[i].message;
  }
}

void job_to_proto(const job_t *j, Batch__V1__Job *o, int64_t now) {
  batch__v1__job__init(o);
  o->job_id = (char *)j->job_id;
  o->tenant_id = j->tenant_id;
  o->model_id = j->model_id;
  o->model_name = j->model_name;
  o->file_name = j->file_name;
  o->total = j->total;
  o->success = j->success;
  o->errors = j->errors;
  o->state = (Batch__V1__JobState)j->state;
  o->created_at_ms = j->created_at;
  o->updated_at_ms = j->updated_at;
  o->started_at_ms = j->started_at;
  o->finished_at_ms = j->finished_at;
  int64_t start_or = j->started_at ? j->started_at : (j->finished_at ? j->finished_at : now);
  o->waiting_ms = start_or - j->created_at;
  if (o->waiting_ms < 0) o->waiting_ms = 0;
  o->processing_ms = j->started_at ? (j->finished_at ? j->finished_at : now) - j->started_at : 0;
  if (o->processing_ms < 0) o->processing_ms = 0;
  o->parent_job_id = j->parent_job_id;
  o->error = j->error;
  o->schema_version = j->schema_version;
  o->format = j->format;
  o->encoding = j->encoding;
  map_warnings(j, o);
  map_summary(j->top_errors, j->n_top_errors, &o->top_errors, &o->n_top_errors);
  o->dry_run = j->dry_run;
  o->has_max_errors = j->has_max_errors;
  o->max_errors = j->max_errors;
  o->has_max_error_rate = j->has_max_error_rate;
  o->max_error_rate = j->max_error_rate;
}

void job_proto_release(Batch__V1__Job *o) {
  release_array((void **)o->warnings);
  release_array((void **)o->top_errors);
  o->warnings = NULL;
  o->top_errors = NULL;
  o->n_warnings = o->n_top_errors = 0;
}

void job_cells_to_proto(const job_cell_t *c, size_t n, Batch__V1__ListRejectedResponse *out) {
  batch__v1__list_rejected_response__init(out);
  Batch__V1__RejectedCell **x = (Batch__V1__RejectedCell **)msg_array(n, sizeof **x);
  for (size_t i = 0; x && i < n; i++) {
    batch__v1__rejected_cell__init(x[i]);
    x[i]->row = c[i].row;
    x[i]->event_id = c[i].event_id;
    x[i]->column = c[i].column;
    x[i]->type = c[i].type;
    x[i]->code = c[i].code;
    x[i]->observed = c[i].observed;
    x[i]->has_observed = c[i].has_observed;
    x[i]->message = c[i].message;
  }
  out->cells = x;
  out->n_cells = x ? n : 0;
}

void job_cells_proto_release(Batch__V1__ListRejectedResponse *out) {
  release_array((void **)out->cells);
  out->cells = NULL;
  out->n_cells = 0;
}

void job_summary_to_proto(const job_summary_t *e, size_t n, Batch__V1__ErrorSummary *out) {
  batch__v1__error_summary__init(out);
  map_summary(e, n, &out->entries, &out->n_entries);
}

void job_summary_proto_release(Batch__V1__ErrorSummary *out) {
  release_array((void **)out->entries);
  out->entries = NULL;
  out->n_entries = 0;
}
