/* reject.c -- builds and frees rejected rows (bok/reject.h): the one place
 * where a batch.v1.RowRejection is made, for the worker and the job
 * service alike. */
#include "bok/reject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Batch__V1__RowRejection *row_new(int64_t row, const void *raw, size_t len, size_t ncells) {
  Batch__V1__RowRejection *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  batch__v1__row_rejection__init(x);
  x->row = row;
  x->raw.data = malloc(len ? len : 1);
  x->cells = calloc(ncells ? ncells : 1, sizeof *x->cells);
  if (!x->raw.data || !x->cells) {
    bok_reject_free(x);
    return NULL;
  }
  if (len) memcpy(x->raw.data, raw, len);
  x->raw.len = len;
  return x;
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

/* One cell, owning copies of its strings; NULL when memory ran out. */
static Batch__V1__RejectedCell *cell_new(int64_t row, const bok_reject_t *s) {
  Batch__V1__RejectedCell *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  batch__v1__rejected_cell__init(c);
  c->row = row;
  c->event_id = dup_or_empty(s->event_id);
  c->column = dup_or_empty(s->column);
  c->type = dup_or_empty(s->type);
  c->code = dup_or_empty(s->code);
  c->observed = dup_or_empty(s->observed);
  c->has_observed = s->observed != NULL;
  c->message = dup_or_empty(s->message);
  if (c->event_id && c->column && c->type && c->code && c->observed && c->message) return c;
  free(c->event_id);
  free(c->column);
  free(c->type);
  free(c->code);
  free(c->observed);
  free(c->message);
  free(c);
  return NULL;
}

Batch__V1__RowRejection *bok_reject_from_result(int64_t row, const void *raw, size_t len, const bok_row_result_t *rr) {
  Batch__V1__RowRejection *x = row_new(row, raw, len, rr->nrejects);
  if (!x) return NULL;
  for (size_t i = 0; i < rr->nrejects; i++) {
    x->cells[i] = cell_new(row, &rr->rejects[i]);
    if (!x->cells[i]) goto fail;
    x->n_cells++;
  }
  return x;
fail:
  bok_reject_free(x);
  return NULL;
}

Batch__V1__RowRejection *bok_reject_malformed(int64_t row, const void *raw, size_t len, const char *reason) {
  int n = snprintf(NULL, 0, BOK_MALFORMED_FMT, (long long)row, reason);
  char *msg = n < 0 ? NULL : malloc((size_t)n + 1);
  if (!msg) return NULL;
  snprintf(msg, (size_t)n + 1, BOK_MALFORMED_FMT, (long long)row, reason);
  bok_reject_t cell = {row, "", "", "", "MALFORMED_ROW", NULL, msg};
  bok_row_result_t rr;
  memset(&rr, 0, sizeof rr);
  rr.rejects = &cell;
  rr.nrejects = 1;
  Batch__V1__RowRejection *x = bok_reject_from_result(row, raw, len, &rr);
  free(msg);
  return x;
}

void bok_reject_free(Batch__V1__RowRejection *x) {
  if (!x) return;
  for (size_t c = 0; c < x->n_cells; c++) {
    Batch__V1__RejectedCell *cell = x->cells[c];
    free(cell->event_id);
    free(cell->column);
    free(cell->type);
    free(cell->code);
    free(cell->observed);
    free(cell->message);
    free(cell);
  }
  free(x->cells);
  free(x->raw.data);
  free(x);
}

int bok_reject_append(Batch__V1__JobResults *res, size_t *cap, Batch__V1__RowRejection *r) {
  if (!r) return -1;
  if (res->n_rejected == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(res->rejected, nc * sizeof *res->rejected);
    if (!p) {
      bok_reject_free(r);
      return -1;
    }
    res->rejected = p;
    *cap = nc;
  }
  res->rejected[res->n_rejected++] = r;
  return 0;
}

void bok_reject_free_all(Batch__V1__JobResults *res) {
  for (size_t i = 0; i < res->n_rejected; i++) bok_reject_free(res->rejected[i]);
  free(res->rejected);
  res->rejected = NULL;
  res->n_rejected = 0;
}
