#include "row_producer.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch/v1/rows.pb-c.h"
#include "job_obs.h"

#define POOL 2
#define TXN_TIMEOUT_MS 60000

typedef struct {
  rd_kafka_t *rk;
  int busy;
  /* Delivery reports run on the thread that polls, i.e. the upload owning
   * the slot. They carry the transaction's sequence number as opaque, so a
   * late report of an earlier (aborted) transaction is recognised. */
  uintptr_t seq;
  int failed;
  char errmsg[256];
} slot_t;

struct row_pool {
  slot_t slots[POOL];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *topic;
  int transactions;
  int batch_rows;
  size_t batch_bytes;
  bok_log_fn log;
  void *log_opaque;
};

struct row_batch_writer {
  row_pool_t *pool;
  slot_t *slot;
  char tenant[72], job_id[40], model_id[40];
  int64_t schema_version;
  Batch__V1__Row *rows;
  Batch__V1__Row **ptrs;
  uint8_t **raws;
  size_t n;
  size_t bytes;
};

typedef struct {
  rd_kafka_conf_t *conf;
  char *err;
  size_t errlen;
  int bad;
} conf_ctx_t;

static int set_prop(void *ud, const char *k, const char *v) {
  conf_ctx_t *c = ud;
  if (rd_kafka_conf_set(c->conf, k, v, c->err, c->errlen) != RD_KAFKA_CONF_OK) {
    c->bad = 1;
    return 1;
  }
  return 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  slot_t *slot = opaque;
  if (m->err) bok_counter_inc(job_metrics.produce_errors);
  if (m->err && (uintptr_t)m->_private == slot->seq && !slot->failed) {
    slot->failed = 1;
    snprintf(slot->errmsg, sizeof slot->errmsg, "%s", rd_kafka_err2str(m->err));
  }
}

static rd_kafka_t *make_producer(row_pool_t *p, slot_t *slot, const bok_config_t *cfg, int i, char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_ctx_t cc = {conf, err, errlen, 0};
  set_prop(&cc, "bootstrap.servers", bok_config_get(cfg, "kafka.brokers", "127.0.0.1:9092"));
  set_prop(&cc, "linger.ms", "5");
  set_prop(&cc, "compression.codec", "zstd");
  set_prop(&cc, "enable.idempotence", "true");
  set_prop(&cc, "message.max.bytes", "8000000");
  /* An upload is one transaction: cap what waits in librdkafka's queue
   * (default 1 GB) so memory does not follow the file size. */
  set_prop(&cc, "queue.buffering.max.kbytes", "65536");
  if (p->transactions) {
    /* Stable per instance (its listen address) so a restarted service fences
     * its previous incarnation, and distinct between instances. */
    char def[160], tid[256];
    snprintf(def, sizeof def, "bok-job-%s", bok_config_get(cfg, "listen", "127.0.0.1:50052"));
    for (char *c = def; *c; c++)
      if (*c == ':') *c = '_';
    snprintf(tid, sizeof tid, "%s-%d", bok_config_get(cfg, "kafka.transactional_id_prefix", def), i);
    set_prop(&cc, "transactional.id", tid);
    char t[32];
    snprintf(t, sizeof t, "%d", TXN_TIMEOUT_MS);
    set_prop(&cc, "transaction.timeout.ms", t);
  }
  bok_config_each(cfg, "kafka.producer.", set_prop, &cc);
  if (cc.bad) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, slot);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
  if (!rk) return NULL;
  if (p->transactions) {
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
    if (e) {
      snprintf(err, errlen, "init_transactions: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      rd_kafka_destroy(rk);
      return NULL;
    }
  }
  return rk;
}

/* Creates the rows topic if missing (partitions from config). */
static void ensure_topic(rd_kafka_t *rk, const char *topic, int partitions, bok_log_fn log, void *lo) {
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, NULL, 0);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
  if (ev) {
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (n && rd_kafka_topic_result_error(tr[0]) && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
      bok_logf(log, lo, BOK_LOG_WARN, "cannot create topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
}

row_pool_t *row_pool_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen) {
  row_pool_t *p = calloc(1, sizeof *p);
  p->topic = strdup(bok_config_get(cfg, "kafka.rows_topic", "bok.rows"));
  p->transactions = bok_config_get_bool(cfg, "kafka.transactions", 1);
  p->batch_rows = (int)bok_config_get_int(cfg, "kafka.batch_rows", 500);
  if (p->batch_rows < 1) p->batch_rows = 1;
  p->batch_bytes = 256 * 1024;
  p->log = log;
  p->log_opaque = log_opaque;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  for (int i = 0; i < POOL; i++) {
    p->slots[i].rk = make_producer(p, &p->slots[i], cfg, i, err, errlen);
    if (!p->slots[i].rk) {
      row_pool_destroy(p);
      return NULL;
    }
  }
  ensure_topic(p->slots[0].rk, p->topic, (int)bok_config_get_int(cfg, "kafka.rows_partitions", 8), log, log_opaque);
  return p;
}

void row_pool_destroy(row_pool_t *p) {
  if (!p) return;
  for (int i = 0; i < POOL; i++)
    if (p->slots[i].rk) {
      rd_kafka_flush(p->slots[i].rk, 5000);
      rd_kafka_destroy(p->slots[i].rk);
    }
  free(p->topic);
  free(p);
}

row_batch_writer_t *row_producer_begin(row_pool_t *p, const char *tenant, const char *job_id, const char *model_id,
                                       int64_t schema_version, char *err, size_t errlen) {
  pthread_mutex_lock(&p->mu);
  slot_t *slot = NULL;
  while (!slot) {
    for (int i = 0; i < POOL && !slot; i++)
      if (!p->slots[i].busy) slot = &p->slots[i];
    if (!slot) pthread_cond_wait(&p->cv, &p->mu);
  }
  slot->busy = 1;
  slot->seq++;
  slot->failed = 0;
  slot->errmsg[0] = '\0';
  pthread_mutex_unlock(&p->mu);
  if (p->transactions) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(slot->rk);
    if (e) {
      snprintf(err, errlen, "Kafka: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      pthread_mutex_lock(&p->mu);
      slot->busy = 0;
      pthread_cond_signal(&p->cv);
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
  }
  row_batch_writer_t *w = calloc(1, sizeof *w);
  w->pool = p;
  w->slot = slot;
  snprintf(w->tenant, sizeof w->tenant, "%s", tenant);
  snprintf(w->job_id, sizeof w->job_id, "%s", job_id);
  snprintf(w->model_id, sizeof w->model_id, "%s", model_id);
  w->schema_version = schema_version;
  w->rows = calloc((size_t)p->batch_rows, sizeof *w->rows);
  w->ptrs = calloc((size_t)p->batch_rows, sizeof *w->ptrs);
  w->raws = calloc((size_t)p->batch_rows, sizeof *w->raws);
  return w;
}

static int flush_batch(row_batch_writer_t *w) {
  if (w->n == 0) return 0;
  Batch__V1__RowBatch b = BATCH__V1__ROW_BATCH__INIT;
  b.tenant_id = w->tenant;
  b.job_id = w->job_id;
  b.model_id = w->model_id;
  b.schema_version = w->schema_version;
  b.n_rows = w->n;
  b.rows = w->ptrs;
  size_t sz = batch__v1__row_batch__get_packed_size(&b);
  uint8_t *buf = malloc(sz);
  batch__v1__row_batch__pack(&b, buf);
  char key[64];
  int kl = snprintf(key, sizeof key, "%s-%lld", w->job_id, (long long)w->rows[0].row);
  rd_kafka_resp_err_t e;
  for (;;) {
    e = rd_kafka_producev(w->slot->rk, RD_KAFKA_V_TOPIC(w->pool->topic), RD_KAFKA_V_KEY(key, (size_t)kl),
                          RD_KAFKA_V_VALUE(buf, sz), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                          RD_KAFKA_V_OPAQUE((void *)w->slot->seq), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
    rd_kafka_poll(w->slot->rk, 50);
  }
  if (e) {
    bok_counter_inc(job_metrics.produce_errors);
    free(buf);
    w->slot->failed = 1;
    snprintf(w->slot->errmsg, sizeof w->slot->errmsg, "%s", rd_kafka_err2str(e));
  }
  for (size_t i = 0; i < w->n; i++) free(w->raws[i]);
  w->n = 0;
  w->bytes = 0;
  rd_kafka_poll(w->slot->rk, 0);
  return w->slot->failed ? -1 : 0;
}

int row_producer_add(row_batch_writer_t *w, int64_t row, const void *raw, size_t len) {
  if (w->slot->failed) return -1;
  Batch__V1__Row *r = &w->rows[w->n];
  batch__v1__row__init(r);
  r->row = row;
  w->raws[w->n] = malloc(len ? len : 1);
  memcpy(w->raws[w->n], raw, len);
  r->raw.data = w->raws[w->n];
  r->raw.len = len;
  w->ptrs[w->n] = r;
  w->n++;
  w->bytes += len + 16;
  if ((int)w->n == w->pool->batch_rows || w->bytes >= w->pool->batch_bytes) return flush_batch(w);
  return 0;
}

static void release(row_batch_writer_t *w) {
  for (size_t i = 0; i < w->n; i++) free(w->raws[i]);
  row_pool_t *p = w->pool;
  pthread_mutex_lock(&p->mu);
  w->slot->busy = 0;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  free(w->rows);
  free(w->ptrs);
  free(w->raws);
  free(w);
}

int row_producer_commit(row_batch_writer_t *w, char *err, size_t errlen) {
  int rc = flush_batch(w);
  rd_kafka_t *rk = w->slot->rk;
  if (w->pool->transactions) {
    if (rc == 0) {
      rd_kafka_error_t *e = rd_kafka_commit_transaction(rk, TXN_TIMEOUT_MS);
      if (e) {
        snprintf(err, errlen, "Kafka commit: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rc = -1;
      }
    }
    if (rc != 0) {
      if (w->slot->failed) snprintf(err, errlen, "Kafka: %s", w->slot->errmsg);
      rd_kafka_error_t *e = rd_kafka_abort_transaction(rk, TXN_TIMEOUT_MS);
      if (e) rd_kafka_error_destroy(e);
    }
    bok_counter_inc(rc == 0 ? job_metrics.txn_committed : job_metrics.txn_aborted);
  } else {
    rd_kafka_flush(rk, TXN_TIMEOUT_MS);
    if (w->slot->failed) {
      snprintf(err, errlen, "Kafka: %s", w->slot->errmsg);
      rc = -1;
    }
  }
  release(w);
  return rc;
}

void row_producer_abort(row_batch_writer_t *w) {
  if (w->pool->transactions) {
    rd_kafka_error_t *e = rd_kafka_abort_transaction(w->slot->rk, TXN_TIMEOUT_MS);
    if (e) rd_kafka_error_destroy(e);
    bok_counter_inc(job_metrics.txn_aborted);
  } else {
    rd_kafka_flush(w->slot->rk, TXN_TIMEOUT_MS);
  }
  release(w);
}

int row_pool_probe(row_pool_t *p, int timeout_ms, char *err, size_t errlen) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(p->slots[0].rk, 0, NULL, &md, timeout_ms);
  if (e) {
    snprintf(err, errlen, "Kafka unreachable: %s", rd_kafka_err2str(e));
    return -1;
  }
  rd_kafka_metadata_destroy(md);
  return 0;
}
