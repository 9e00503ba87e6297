/* events.c -- one RowBatch message inside the open transaction: decode it
 * (into the lane's arena), validate each row, produce each valid row's JSON
 * event (key = event id, timestamp = event time, headers tenant/job/model/
 * row) and collect the message's results. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/util.h"
#include "worker_obs.h"
#include "worker_int.h"

/* Decimal digits of v into out (>= 21 bytes), no NUL; returns the length. */
static int format_i64(char *out, int64_t v) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  int len = 0;
  if (v < 0) out[len++] = '-';
  while (n) out[len++] = tmp[--n];
  return len;
}

/* The job's topic handle on the lane's producer: made on first use, kept
 * until the job leaves the cache or the producer is replaced. */
static rd_kafka_topic_t *job_rkt(worker_t *w, job_ctx_t *j) {
  if (!j->rkt) j->rkt = rd_kafka_topic_new(w->producer, j->topic, NULL);
  return j->rkt;
}

/* Produces the event in w->rr: key = event id, value = the JSON, timestamp
 * = event time, headers tenant/job/model/row in this order. The same
 * message as RD_KAFKA_V_TOPIC + four RD_KAFKA_V_HEADER would make, without
 * the per-event topic lookup and the strlen of every header. Waits while
 * the queue is full. */
static rd_kafka_resp_err_t produce_event(worker_t *w, job_ctx_t *j, const char *rowbuf, size_t rl, int64_t now_ms) {
  rd_kafka_topic_t *rkt = job_rkt(w, j);
  int64_t ts = w->rr.event_time_ms > 0 ? w->rr.event_time_ms : w->rr.event_time_ms == 0 ? 1 : now_ms;
  rd_kafka_headers_t *h = rd_kafka_headers_new(4);
  rd_kafka_header_add(h, "tenant", 6, j->tenant, (ssize_t)j->tenant_len);
  rd_kafka_header_add(h, "job", 3, j->job_id, (ssize_t)j->job_id_len);
  rd_kafka_header_add(h, "model", 5, j->model_id, (ssize_t)j->model_id_len);
  rd_kafka_header_add(h, "row", 3, rowbuf, (ssize_t)rl);
  const void *key = w->rr.key.len ? w->rr.key.data : NULL;
  rd_kafka_resp_err_t e;
  for (;;) {
    if (rkt)
      e = rd_kafka_producev(w->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, w->rr.key.len),
                            RD_KAFKA_V_VALUE(w->rr.event.data, w->rr.event.len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts),
                            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    else /* no handle (cannot happen for a valid name): the lookup path */
      e = rd_kafka_producev(w->producer, RD_KAFKA_V_TOPIC(j->topic), RD_KAFKA_V_KEY(key, w->rr.key.len),
                            RD_KAFKA_V_VALUE(w->rr.event.data, w->rr.event.len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts),
                            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
    rd_kafka_poll(w->producer, 10);
  }
  if (e) rd_kafka_headers_destroy(h); /* librdkafka owns the headers only on success */
  return e;
}

static void *arena_alloc(void *ud, size_t n) { return bok_arena_alloc(ud, n); }
static void arena_nofree(void *ud, void *p) { (void)ud, (void)p; }

/* Processes one RowBatch message inside the open transaction. 0 ok, -1
 * transient failure (abort + retry), -2 Kafka produce failure. */
int wk_process_msg(worker_t *w, batch_t *b, const rd_kafka_message_t *m, int64_t *rows) {
  /* Decoded into the arena: ~1,000 small objects per message, dropped at once. */
  ProtobufCAllocator pa = {arena_alloc, arena_nofree, &w->arena};
  bok_arena_reset(&w->arena);
  Batch__V1__RowBatch *rb = batch__v1__row_batch__unpack(&pa, m->len, m->payload);
  if (!rb) {
    LOG(w, BOK_LOG_WARN, "skipping a malformed rows message at %s[%d]@%lld", rd_kafka_topic_name(m->rkt),
        (int)m->partition, (long long)m->offset);
    return 0;
  }
  job_ctx_t *j = wk_job_get(w, rb);
  if (!j) {
    batch__v1__row_batch__free_unpacked(rb, &pa);
    return -1;
  }
  int rc = 0;
  bok_log_ctx_set(j->tenant, j->job_id); /* this message's lines carry tenant= and job= */
  if (!j->skip && rb->n_rows > 0) {
    job_res_t *r = wk_res_for(b, j);
    Batch__V1__BatchResult *msg = wk_add_msg(r, rb);
    char rowbuf[24];
    /* The Kafka timestamp of events without an event time -- and of event
     * times before 1970, which Kafka cannot store (the event keeps its value):
     * this message's processing time, read once here instead of once per
     * event inside librdkafka (clock_gettime was 7 % of the worker's CPU).
     * librdkafka reads a timestamp of 0 as "now", so the event time 0
     * (1970-01-01T00:00:00Z) is stamped 1 ms. */
    int64_t now_ms = bok_now_ms();
    for (size_t i = 0; i < rb->n_rows && rc == 0; i++) {
      Batch__V1__Row *row = rb->rows[i];
      const char *raw = (const char *)row->raw.data;
      size_t len = row->raw.len;
      const char *reason = bok_utf8_valid(raw, len) ? NULL : "invalid UTF-8";
      if (j->broken[0]) {
        wk_add_rejected_reason(r, row->row, raw, len, j->broken);
        continue;
      }
      if (!bok_validator_row(j->validator, row->row, raw, len, reason, &w->rr)) {
        wk_add_rejected(r, row->row, raw, len, &w->rr);
        continue;
      }
      if (j->dry_run) { /* validated and counted, never published */
        msg->valid++;
        continue;
      }
      int rl = format_i64(rowbuf, row->row);
      rd_kafka_resp_err_t e = produce_event(w, j, rowbuf, (size_t)rl, now_ms);
      if (e) {
        bok_counter_inc(worker_metrics.produce_errors);
        LOG(w, BOK_LOG_WARN, "produce to %s: %s", j->topic, rd_kafka_err2str(e));
        rc = -2;
        break;
      }
      msg->valid++;
    }
    *rows += (int64_t)rb->n_rows;
  }
  batch__v1__row_batch__free_unpacked(rb, &pa);
  bok_log_ctx_clear();
  return rc;
}
