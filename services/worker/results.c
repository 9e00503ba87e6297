/* results.c -- a batch's results: per rows-topic message (first and last
 * row, rows, valid) with the rejected rows, staged at the job services
 * (ReportResults, one call per job-service address) before the commit and
 * confirmed (ConfirmResults) after it; the batch's offsets. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/reject.h"
#include "worker_obs.h"
#include "worker_int.h"

job_res_t *wk_res_for(batch_t *b, job_ctx_t *j) {
  for (size_t i = 0; i < b->n; i++)
    if (b->jobs[i].job == j) return &b->jobs[i];
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 8;
    b->jobs = realloc(b->jobs, b->cap * sizeof *b->jobs);
  }
  job_res_t *r = &b->jobs[b->n++];
  memset(r, 0, sizeof *r);
  r->job = j;
  batch__v1__job_results__init(&r->res);
  r->res.job_id = j->job_id;
  return r;
}

/* Starts the result of one rows-topic message. */
Batch__V1__BatchResult *wk_add_msg(job_res_t *r, const Batch__V1__RowBatch *rb) {
  if (r->res.n_batches == r->msg_cap) {
    r->msg_cap = r->msg_cap ? r->msg_cap * 2 : 16;
    r->res.batches = realloc(r->res.batches, r->msg_cap * sizeof *r->res.batches);
  }
  Batch__V1__BatchResult *m = malloc(sizeof *m);
  batch__v1__batch_result__init(m);
  m->first_row = m->last_row = rb->rows[0]->row;
  for (size_t i = 1; i < rb->n_rows; i++) {
    if (rb->rows[i]->row < m->first_row) m->first_row = rb->rows[i]->row;
    if (rb->rows[i]->row > m->last_row) m->last_row = rb->rows[i]->row;
  }
  m->rows = (int64_t)rb->n_rows;
  r->res.batches[r->res.n_batches++] = m;
  return m;
}

/* The rejections are built by lib/rows (bok/reject.h), as the job service's. */
void wk_add_rejected(job_res_t *r, int64_t row, const void *raw, size_t len, const bok_row_result_t *rr) {
  bok_reject_append(&r->res, &r->rej_cap, bok_reject_from_result(row, raw, len, rr));
}

/* A row of a job that cannot be validated at all: MALFORMED_ROW with why. */
void wk_add_rejected_reason(job_res_t *r, int64_t row, const void *raw, size_t len, const char *why) {
  bok_reject_append(&r->res, &r->rej_cap, bok_reject_malformed(row, raw, len, why));
}

void wk_batch_free(batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    Batch__V1__JobResults *r = &b->jobs[i].res;
    for (size_t k = 0; k < r->n_batches; k++) free(r->batches[k]);
    free(r->batches);
    bok_reject_free_all(r);
  }
  free(b->jobs);
  if (b->first) rd_kafka_topic_partition_list_destroy(b->first);
  if (b->next) rd_kafka_topic_partition_list_destroy(b->next);
  memset(b, 0, sizeof *b);
}

void wk_note_offset(batch_t *b, const rd_kafka_message_t *m) {
  const char *t = rd_kafka_topic_name(m->rkt);
  if (!rd_kafka_topic_partition_list_find(b->first, t, m->partition))
    rd_kafka_topic_partition_list_add(b->first, t, m->partition)->offset = m->offset;
  rd_kafka_topic_partition_t *n = rd_kafka_topic_partition_list_find(b->next, t, m->partition);
  if (!n) n = rd_kafka_topic_partition_list_add(b->next, t, m->partition);
  n->offset = m->offset + 1;
}


void wk_batch_reset_offsets(batch_t *b) {
  if (b->first) rd_kafka_topic_partition_list_destroy(b->first);
  if (b->next) rd_kafka_topic_partition_list_destroy(b->next);
  b->first = rd_kafka_topic_partition_list_new(8);
  b->next = rd_kafka_topic_partition_list_new(8);
}

void wk_batch_cut(batch_t *b, rd_kafka_message_t *const *msgs, int k) {
  rd_kafka_topic_partition_list_destroy(b->next);
  b->next = rd_kafka_topic_partition_list_new(8);
  for (int i = 0; i < k; i++) {
    const char *t = rd_kafka_topic_name(msgs[i]->rkt);
    rd_kafka_topic_partition_t *n = rd_kafka_topic_partition_list_find(b->next, t, msgs[i]->partition);
    if (!n) n = rd_kafka_topic_partition_list_add(b->next, t, msgs[i]->partition);
    n->offset = msgs[i]->offset + 1;
  }
}

void wk_batch_merge_offsets(batch_t *t, const batch_t *r) {
  for (int i = 0; r->first && i < r->first->cnt; i++) {
    const rd_kafka_topic_partition_t *p = &r->first->elems[i];
    if (!rd_kafka_topic_partition_list_find(t->first, p->topic, p->partition))
      rd_kafka_topic_partition_list_add(t->first, p->topic, p->partition)->offset = p->offset;
  }
  for (int i = 0; r->next && i < r->next->cnt; i++) {
    const rd_kafka_topic_partition_t *p = &r->next->elems[i];
    rd_kafka_topic_partition_t *n = rd_kafka_topic_partition_list_find(t->next, p->topic, p->partition);
    if (!n) n = rd_kafka_topic_partition_list_add(t->next, p->topic, p->partition);
    if (p->offset > n->offset) n->offset = p->offset;
  }
}

/* The job-service address of batch result i. */
static const char *job_addr(worker_t *w, const batch_t *b, size_t i) {
  return bok_routes_lookup(w->routes, b->jobs[i].job->tenant)->job_addr;
}

/* Marks the jobs the job service says are cancelled: their rows are skipped. */
static void note_cancelled(worker_t *w, const Batch__V1__ReportResultsResponse *resp) {
  for (size_t c = 0; c < resp->n_cancelled_job_ids; c++)
    for (job_ctx_t *j = w->jobs; j; j = j->next)
      if (strcmp(j->job_id, resp->cancelled_job_ids[c]) == 0 && !j->skip) {
        j->skip = 1;
        LOG(w, BOK_LOG_INFO, "job %s is cancelled or finished: skipping its rows", j->job_id);
      }
}

/* Stages the results of the open transaction, one RPC per job service (the
 * job service counts them once the transaction is known to have committed). */
int wk_report(worker_t *w, batch_t *b) {
  Batch__V1__JobResults **list = calloc(b->n ? b->n : 1, sizeof *list);
  int rc = 0;
  for (size_t i = 0; i < b->n && rc == 0; i++) {
    const char *addr = job_addr(w, b, i);
    size_t k, n = 0;
    for (k = 0; k < i && strcmp(job_addr(w, b, k), addr) != 0; k++) {
    }
    if (k < i) continue; /* this address was reported with an earlier job */
    for (k = i; k < b->n; k++)
      if (strcmp(job_addr(w, b, k), addr) == 0) list[n++] = &b->jobs[k].res;
    Batch__V1__ReportResultsRequest req = BATCH__V1__REPORT_RESULTS_REQUEST__INIT;
    req.worker_id = w->worker_id;
    req.group_id = w->group_id;
    req.n_jobs = n;
    req.jobs = list;
    Batch__V1__ReportResultsResponse *resp = NULL;
    bok_err_t err;
    rc = bok_rpc_unary(wk_chan(w, addr), "/batch.v1.JobService/ReportResults", NULL, 30000, &req.base,
                       &batch__v1__report_results_response__descriptor, (ProtobufCMessage **)&resp, &err);
    bok_counter_inc(rc ? worker_metrics.report_failed : worker_metrics.report_ok);
    if (rc != 0) {
      LOG(w, BOK_LOG_WARN, "reporting to %s failed: %s", addr, err.msg);
    } else {
      note_cancelled(w, resp);
      protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
  }
  free(list);
  return rc == 0 ? 0 : -1;
}

/* After the commit: the staged results count now. Best effort: when this
 * fails the job service counts them from the group's committed offsets. */
void wk_confirm(worker_t *w, batch_t *b) {
  size_t total = 0;
  for (size_t i = 0; i < b->n; i++) total += b->jobs[i].res.n_batches;
  if (!total) return;
  Batch__V1__MessageRef *refs = calloc(total, sizeof *refs);
  Batch__V1__MessageRef **ptrs = calloc(total, sizeof *ptrs);
  for (size_t i = 0; i < b->n; i++) {
    const char *addr = job_addr(w, b, i);
    size_t k, n = 0;
    for (k = 0; k < i && strcmp(job_addr(w, b, k), addr) != 0; k++) {
    }
    if (k < i) continue;
    for (k = i; k < b->n; k++) {
      if (strcmp(job_addr(w, b, k), addr) != 0) continue;
      for (size_t m = 0; m < b->jobs[k].res.n_batches; m++) {
        batch__v1__message_ref__init(&refs[n]);
        refs[n].job_id = b->jobs[k].res.job_id;
        refs[n].first_row = b->jobs[k].res.batches[m]->first_row;
        ptrs[n] = &refs[n];
        n++;
      }
    }
    Batch__V1__ConfirmResultsRequest req = BATCH__V1__CONFIRM_RESULTS_REQUEST__INIT;
    req.worker_id = w->worker_id;
    req.n_messages = n;
    req.messages = ptrs;
    Batch__V1__ConfirmResultsResponse *resp = NULL;
    bok_err_t err;
    if (bok_rpc_unary(wk_chan(w, addr), "/batch.v1.JobService/ConfirmResults", NULL, 10000, &req.base,
                      &batch__v1__confirm_results_response__descriptor, (ProtobufCMessage **)&resp, &err) != 0)
      LOG(w, BOK_LOG_WARN, "confirming to %s failed (counted later from offsets): %s", addr, err.msg);
    else
      protobuf_c_message_free_unpacked(&resp->base, NULL);
  }
  free(refs);
  free(ptrs);
}
