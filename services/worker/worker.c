#include "worker.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch/v1/job.pb-c.h"
#include "batch/v1/model.pb-c.h"
#include "batch/v1/rows.pb-c.h"
#include "bok/arena.h"
#include "bok/core.h"
#include "bok/fault.h"
#include "bok/routes.h"
#include "bok/rpc.h"
#include "bok/util.h"
#include "worker_obs.h"

#define MAX_JOBS_CACHED 256
#define TXN_TIMEOUT_MS 30000

/* A job this worker has seen: its spec, compiled schema and validator. */
typedef struct job_ctx {
  struct job_ctx *next;
  char job_id[40];
  char tenant[72];
  char model_id[40];
  char topic[300];
  int skip;     /* cancelled, stopped by its error budget, or unknown: publish nothing more */
  int dry_run;  /* validate and report only: no event, no events topic */
  char broken[400]; /* the job's rows cannot be validated (reason): all rejected */
  bok_schema_t *schema;
  bok_validator_t *validator;
  int64_t last_used;
} job_ctx_t;

/* Per-batch results of one job: one BatchResult per rows-topic message (the
 * job service counts each message once), rejected rows listed. */
typedef struct {
  job_ctx_t *job;
  Batch__V1__JobResults res;
  size_t msg_cap, rej_cap;
} job_res_t;

typedef struct {
  char *addr;
  bok_rpc_channel_t *ch;
} chan_t;

struct worker {
  const bok_config_t *cfg;
  bok_log_fn log;
  void *lo;
  char worker_id[128];
  rd_kafka_t *consumer;
  rd_kafka_t *producer;
  char group_id[128];
  int transactions;
  char *rows_topic;
  int batch_max_rows;
  int batch_max_ms;
  int events_partitions;
  volatile sig_atomic_t stop;
  int reset; /* the producer is in a state abort cannot clear: re-create it */
  int rebalances; /* bumped by the rebalance callback (runs inside poll) */
  bok_routes_t *routes;
  chan_t *chans; /* one per job-service/model-service address, grows */
  int nchans;
  job_ctx_t *jobs;
  int njobs;
  char **topics_made;
  int ntopics;
  bok_row_result_t rr;
  bok_arena_t arena; /* decoded rows-topic message; reset per message */
  int64_t rows_done, last_stat_ms, batches;
};

#define LOG(w, lvl, ...) bok_logf((w)->log, (w)->lo, lvl, __VA_ARGS__)

/* ---- setup ---------------------------------------------------------------- */

typedef struct {
  rd_kafka_conf_t *conf;
  char *err;
  size_t errlen;
  int bad;
} confctx_t;

static int set_prop(void *ud, const char *k, const char *v) {
  confctx_t *c = ud;
  if (rd_kafka_conf_set(c->conf, k, v, c->err, c->errlen) != RD_KAFKA_CONF_OK) c->bad = 1;
  return c->bad;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque) {
  worker_t *w = opaque;
  w->rebalances++;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    LOG(w, BOK_LOG_INFO, "assigned %d partitions", parts->cnt);
    rd_kafka_assign(rk, parts);
  } else {
    LOG(w, BOK_LOG_INFO, "revoked %d partitions", parts->cnt);
    worker_obs_lag_clear(parts);
    rd_kafka_assign(rk, NULL);
  }
}

/* The transactional producer: its id is stable for a worker id, so a new one
 * (a restarted process, or make_producer again after a failure) fences the
 * old epoch and aborts its open transaction. 0 ok, -1 with err set. */
static int make_producer(worker_t *w, char *err, size_t errlen) {
  const bok_config_t *cfg = w->cfg;
  rd_kafka_conf_t *pc = rd_kafka_conf_new();
  confctx_t c2 = {pc, err, errlen, 0};
  set_prop(&c2, "bootstrap.servers", bok_config_get(cfg, "kafka.brokers", "127.0.0.1:9092"));
  set_prop(&c2, "linger.ms", "5");
  set_prop(&c2, "compression.codec", "zstd");
  set_prop(&c2, "enable.idempotence", "true");
  set_prop(&c2, "batch.num.messages", "10000");
  if (w->transactions) {
    char tid[300];
    /* the group keeps ids of different deployments (and test stacks) apart */
    snprintf(tid, sizeof tid, "bok-worker-%s-%s", w->group_id, w->worker_id);
    set_prop(&c2, "transactional.id", tid);
    /* Short: a worker killed mid-transaction blocks its partitions' offsets
     * (unstable) until the coordinator aborts the transaction. */
    set_prop(&c2, "transaction.timeout.ms", bok_config_get(cfg, "kafka.transaction_timeout_ms", "10000"));
  }
  bok_config_each(cfg, "kafka.producer.", set_prop, &c2);
  if (c2.bad) {
    rd_kafka_conf_destroy(pc);
    return -1;
  }
  w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, errlen);
  if (!w->producer) return -1;
  if (w->transactions) {
    rd_kafka_error_t *e = rd_kafka_init_transactions(w->producer, 30000);
    if (e) {
      snprintf(err, errlen, "init_transactions: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      rd_kafka_destroy(w->producer);
      w->producer = NULL;
      return -1;
    }
  }
  return 0;
}

/* Replaces a producer that abort could not bring back (INVALID_TXN_STATE,
 * fenced, fatal): the same transactional.id fences the old epoch. Retries
 * with back-off while Kafka is down; gives up only when stopped. */
static void reset_producer(worker_t *w) {
  if (w->producer) {
    rd_kafka_purge(w->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(w->producer);
    w->producer = NULL;
  }
  for (int delay = 500; !w->stop; delay = delay * 2 > 10000 ? 10000 : delay * 2) {
    char err[512];
    if (make_producer(w, err, sizeof err) == 0) {
      LOG(w, BOK_LOG_INFO, "transactional producer re-created");
      bok_counter_inc(worker_metrics.producer_resets);
      w->reset = 0;
      return;
    }
    LOG(w, BOK_LOG_WARN, "re-creating the producer: %s (retrying in %d ms)", err, delay);
    for (int t = 0; t < delay && !w->stop; t += 100) usleep(100 * 1000);
  }
}

worker_t *worker_new(const bok_config_t *cfg, int lane, bok_log_fn log, void *lo, char *err, size_t errlen) {
  worker_t *w = calloc(1, sizeof *w);
  w->cfg = cfg;
  w->log = log;
  w->lo = lo;
  const char *id = bok_config_get(cfg, "worker_id", "");
  if (id[0]) {
    snprintf(w->worker_id, sizeof w->worker_id, "%s", id);
  } else {
    char host[64] = "worker";
    gethostname(host, sizeof host - 1);
    snprintf(w->worker_id, sizeof w->worker_id, "%s-%d", host, (int)getpid());
  }
  if (lane > 0) { /* each lane is its own group member and transactional id */
    size_t n = strlen(w->worker_id);
    snprintf(w->worker_id + n, sizeof w->worker_id - n, ".%d", lane);
  }
  w->transactions = bok_config_get_bool(cfg, "kafka.transactions", 1);
  snprintf(w->group_id, sizeof w->group_id, "%s", bok_config_get(cfg, "kafka.group_id", "bok-workers"));
  w->rows_topic = strdup(bok_config_get(cfg, "kafka.rows_topic", "bok.rows"));
  w->batch_max_rows = (int)bok_config_get_int(cfg, "kafka.batch_max_rows", 5000);
  w->batch_max_ms = (int)bok_config_get_int(cfg, "kafka.batch_max_ms", 100);
  w->events_partitions = (int)bok_config_get_int(cfg, "kafka.events_partitions", 4);
  bok_row_result_init(&w->rr);
  w->routes = bok_routes_from_config(cfg, "127.0.0.1:50051", "127.0.0.1:50052", err, errlen);
  if (!w->routes) goto fail;
  const char *brokers = bok_config_get(cfg, "kafka.brokers", "127.0.0.1:9092");

  rd_kafka_conf_t *cc = rd_kafka_conf_new();
  confctx_t c1 = {cc, err, errlen, 0};
  set_prop(&c1, "bootstrap.servers", brokers);
  set_prop(&c1, "group.id", w->group_id);
  set_prop(&c1, "isolation.level", "read_committed");
  set_prop(&c1, "enable.auto.commit", "false");
  set_prop(&c1, "auto.offset.reset", "earliest");
  set_prop(&c1, "client.id", w->worker_id);
  set_prop(&c1, "session.timeout.ms", "10000");
  set_prop(&c1, "heartbeat.interval.ms", "1000");
  set_prop(&c1, "topic.metadata.refresh.interval.ms", "5000"); /* find a rows topic created later */
  set_prop(&c1, "queued.max.messages.kbytes", "16384");        /* bound the fetch-ahead (default 64 MB) */
  bok_config_each(cfg, "kafka.consumer.", set_prop, &c1);
  if (c1.bad) {
    rd_kafka_conf_destroy(cc);
    goto fail;
  }
  rd_kafka_conf_set_opaque(cc, w);
  rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
  rd_kafka_conf_set(cc, "statistics.interval.ms", WORKER_OBS_STATS_INTERVAL_MS, NULL, 0); /* consumer lag */
  rd_kafka_conf_set_stats_cb(cc, worker_obs_stats);
  w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, errlen);
  if (!w->consumer) goto fail;
  rd_kafka_poll_set_consumer(w->consumer);

  if (make_producer(w, err, errlen) != 0) goto fail;
  rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, w->rows_topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t se = rd_kafka_subscribe(w->consumer, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (se) {
    snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(se));
    goto fail;
  }
  LOG(w, BOK_LOG_INFO, "worker %s consuming %s (transactions %s)", w->worker_id, w->rows_topic,
      w->transactions ? "on" : "off");
  return w;
fail:
  worker_destroy(w);
  return NULL;
}

void worker_stop(worker_t *w) { w->stop = 1; }

static void job_ctx_free(job_ctx_t *j) {
  bok_validator_destroy(j->validator);
  bok_schema_destroy(j->schema);
  free(j);
}

void worker_destroy(worker_t *w) {
  if (!w) return;
  if (w->consumer) {
    rd_kafka_consumer_close(w->consumer);
    rd_kafka_destroy(w->consumer);
  }
  if (w->producer) {
    rd_kafka_flush(w->producer, 5000);
    rd_kafka_destroy(w->producer);
  }
  for (job_ctx_t *j = w->jobs, *n; j; j = n) {
    n = j->next;
    job_ctx_free(j);
  }
  for (int i = 0; i < w->nchans; i++) {
    bok_rpc_channel_destroy(w->chans[i].ch);
    free(w->chans[i].addr);
  }
  free(w->chans);
  for (int i = 0; i < w->ntopics; i++) free(w->topics_made[i]);
  free(w->topics_made);
  bok_routes_destroy(w->routes);
  bok_row_result_free(&w->rr);
  bok_arena_free(&w->arena);
  free(w->rows_topic);
  free(w);
}

/* ---- services --------------------------------------------------------------- */

static bok_rpc_channel_t *chan(worker_t *w, const char *addr) {
  for (int i = 0; i < w->nchans; i++)
    if (strcmp(w->chans[i].addr, addr) == 0) return w->chans[i].ch;
  w->chans = realloc(w->chans, (size_t)(w->nchans + 1) * sizeof *w->chans);
  w->chans[w->nchans].addr = strdup(addr);
  w->chans[w->nchans].ch = bok_rpc_channel_new(addr);
  return w->chans[w->nchans++].ch;
}

typedef struct {
  rd_kafka_NewTopic_t *nt;
  int bad;
} topic_conf_t;

static int set_topic_prop(void *ud, const char *k, const char *v) {
  topic_conf_t *t = ud;
  if (rd_kafka_NewTopic_set_config(t->nt, k, v) != RD_KAFKA_RESP_ERR_NO_ERROR) t->bad = 1;
  return 0;
}

/* Creates an events topic that can never delete committed events by
 * surprise: events carry their event time (1970 .. 2038) as the Kafka
 * timestamp, so time retention is off and any timestamp is accepted unless
 * `kafka.events_topic.*` says otherwise (docs/OPERATIONS.md "Event time and
 * retention"). An existing topic is left as it is. */
static void create_events_topic(worker_t *w, const char *topic) {
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, w->events_partitions, 1, NULL, 0);
  topic_conf_t tc = {nt, 0};
  set_topic_prop(&tc, "retention.ms", "-1");
  set_topic_prop(&tc, "message.timestamp.before.max.ms", "9223372036854775807");
  set_topic_prop(&tc, "message.timestamp.after.max.ms", "9223372036854775807");
  bok_config_each(w->cfg, "kafka.events_topic.", set_topic_prop, &tc);
  if (tc.bad) LOG(w, BOK_LOG_WARN, "kafka.events_topic.*: a property was refused");
  rd_kafka_queue_t *q = rd_kafka_queue_new(w->producer);
  rd_kafka_CreateTopics(w->producer, &nt, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
  if (ev) {
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t e = n ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
      LOG(w, BOK_LOG_WARN, "cannot create topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
}

static void ensure_topic(worker_t *w, const char *topic) {
  for (int i = 0; i < w->ntopics; i++)
    if (strcmp(w->topics_made[i], topic) == 0) return;
  create_events_topic(w, topic);
  /* Produce only once this producer knows every partition's leader (events
   * to partitions librdkafka does not know yet sit unassigned). Bounded
   * wait, 10 s. */
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->producer, topic, NULL);
  for (int tries = 0; rkt && tries < 20; tries++) {
    const struct rd_kafka_metadata *md = NULL;
    int ready = 0;
    if (rd_kafka_metadata(w->producer, 0, rkt, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
      ready = 1;
      for (int i = 0; i < md->topics[0].partition_cnt; i++)
        if (md->topics[0].partitions[i].leader < 0) ready = 0;
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (ready) break;
    usleep(200 * 1000);
  }
  if (rkt) rd_kafka_topic_destroy(rkt);
  w->topics_made = realloc(w->topics_made, (size_t)(w->ntopics + 1) * sizeof(char *));
  w->topics_made[w->ntopics++] = strdup(topic);
}

/* Returns the job's context, fetching spec + schema on first sight.
 * NULL = transient failure (retry the batch later). */
static job_ctx_t *job_get(worker_t *w, const Batch__V1__RowBatch *b) {
  for (job_ctx_t *j = w->jobs; j; j = j->next)
    if (strcmp(j->job_id, b->job_id) == 0) {
      j->last_used = bok_mono_ms();
      return j;
    }
  const bok_route_t *rt = bok_routes_lookup(w->routes, b->tenant_id);
  job_ctx_t *j = calloc(1, sizeof *j);
  snprintf(j->job_id, sizeof j->job_id, "%s", b->job_id);
  snprintf(j->tenant, sizeof j->tenant, "%s", b->tenant_id);
  snprintf(j->model_id, sizeof j->model_id, "%s", b->model_id);
  Batch__V1__GetJobRequest gr = BATCH__V1__GET_JOB_REQUEST__INIT;
  gr.job_id = b->job_id;
  Batch__V1__JobSpec *spec = NULL;
  bok_err_t err;
  if (bok_rpc_unary(chan(w, rt->job_addr), "/batch.v1.JobService/GetJobSpec", b->tenant_id, 10000, &gr.base,
                    &batch__v1__job_spec__descriptor, (ProtobufCMessage **)&spec, &err) != 0) {
    if (err.code != BOK_ERR_NOT_FOUND) {
      LOG(w, BOK_LOG_WARN, "job service: %s", err.msg);
      free(j);
      return NULL;
    }
    LOG(w, BOK_LOG_WARN, "job %s unknown to the job service: skipping its rows", b->job_id);
    j->skip = 1;
    goto add;
  }
  snprintf(j->topic, sizeof j->topic, "%s", spec->topic);
  /* Only a cancelled job is skipped: rows of a finished job are redeliveries
   * of a batch whose transaction did not commit, and must be published. */
  if (spec->state == BATCH__V1__JOB_STATE__JOB_STATE_CANCELLED || spec->halted) j->skip = 1;
  j->dry_run = spec->dry_run;
  Batch__V1__GetModelRequest mr = BATCH__V1__GET_MODEL_REQUEST__INIT;
  mr.model_id = b->model_id;
  mr.version = b->schema_version;
  Batch__V1__Model *m = NULL;
  if (!j->skip) {
    if (bok_rpc_unary(chan(w, rt->model_addr), "/batch.v1.ModelService/GetModel", b->tenant_id, 10000, &mr.base,
                      &batch__v1__model__descriptor, (ProtobufCMessage **)&m, &err) != 0) {
      if (err.code != BOK_ERR_NOT_FOUND) {
        LOG(w, BOK_LOG_WARN, "model service: %s", err.msg);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        free(j);
        return NULL;
      }
      LOG(w, BOK_LOG_WARN, "model %s v%lld not found: rejecting the rows of job %s", b->model_id,
          (long long)b->schema_version, b->job_id);
      snprintf(j->broken, sizeof j->broken, "model version %lld not found", (long long)b->schema_version);
    } else {
      char msg[256];
      if (bok_schema_compile(m->schema_json, strlen(m->schema_json), &j->schema, msg, sizeof msg) != 0) {
        LOG(w, BOK_LOG_ERROR, "job %s: schema does not compile: %s", b->job_id, msg);
        snprintf(j->broken, sizeof j->broken, "the model's schema cannot be used (%s)", msg);
      } else {
        int ndjson = strcmp(spec->format, "ndjson") == 0;
        j->validator = bok_validator_new(j->schema, ndjson ? BOK_FMT_NDJSON : BOK_FMT_CSV, (const char *)spec->header.data,
                                         spec->header.len, spec->separator[0] ? spec->separator[0] : ',', msg, sizeof msg);
        if (!j->validator) {
          LOG(w, BOK_LOG_ERROR, "job %s: %s", b->job_id, msg);
          snprintf(j->broken, sizeof j->broken, "%s", msg);
        }
      }
      protobuf_c_message_free_unpacked(&m->base, NULL);
    }
  }
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  if (!j->skip && !j->broken[0] && !j->dry_run) ensure_topic(w, j->topic);
add:
  j->last_used = bok_mono_ms();
  j->next = w->jobs;
  w->jobs = j;
  w->njobs++;
  return j;
}

/* Drops least recently used jobs beyond the cache size. Called between
 * batches only: a batch in progress points at its jobs. */
static void evict_jobs(worker_t *w) {
  while (w->njobs > MAX_JOBS_CACHED) {
    job_ctx_t **victim = NULL;
    for (job_ctx_t **pp = &w->jobs; *pp; pp = &(*pp)->next)
      if (!victim || (*pp)->last_used < (*victim)->last_used) victim = pp;
    job_ctx_t *v = *victim;
    *victim = v->next;
    job_ctx_free(v);
    w->njobs--;
  }
}

/* ---- batch --------------------------------------------------------------------- */

typedef struct {
  job_res_t *jobs;
  size_t n, cap;
  /* offsets: per partition, first and last offset of the batch */
  rd_kafka_topic_partition_list_t *first;
  rd_kafka_topic_partition_list_t *next;
} batch_t;

static job_res_t *res_for(batch_t *b, job_ctx_t *j) {
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
static Batch__V1__BatchResult *add_msg(job_res_t *r, const Batch__V1__RowBatch *rb) {
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

static void add_rejected(job_res_t *r, int64_t row, const void *raw, size_t len, const bok_row_result_t *rr) {
  if (r->res.n_rejected == r->rej_cap) {
    r->rej_cap = r->rej_cap ? r->rej_cap * 2 : 32;
    r->res.rejected = realloc(r->res.rejected, r->rej_cap * sizeof *r->res.rejected);
  }
  Batch__V1__RowRejection *x = malloc(sizeof *x);
  batch__v1__row_rejection__init(x);
  x->row = row;
  x->raw.data = malloc(len ? len : 1);
  memcpy(x->raw.data, raw, len);
  x->raw.len = len;
  x->n_cells = rr->nrejects;
  x->cells = calloc(rr->nrejects ? rr->nrejects : 1, sizeof *x->cells);
  for (size_t i = 0; i < rr->nrejects; i++) {
    const bok_reject_t *s = &rr->rejects[i];
    Batch__V1__RejectedCell *c = malloc(sizeof *c);
    batch__v1__rejected_cell__init(c);
    c->row = row;
    c->event_id = strdup(s->event_id);
    c->column = strdup(s->column);
    c->type = strdup(s->type);
    c->code = strdup(s->code);
    c->observed = strdup(s->observed ? s->observed : "");
    c->has_observed = s->observed != NULL;
    c->message = strdup(s->message);
    x->cells[i] = c;
  }
  r->res.rejected[r->res.n_rejected++] = x;
}

/* A row of a job that cannot be validated at all: MALFORMED_ROW with why. */
static void add_rejected_reason(job_res_t *r, int64_t row, const void *raw, size_t len, const char *why) {
  bok_row_result_t rr;
  memset(&rr, 0, sizeof rr);
  char msg[512];
  snprintf(msg, sizeof msg, "Row %lld is malformed: %s.", (long long)row, why);
  bok_reject_t x = {row, "", "", "", "MALFORMED_ROW", NULL, msg};
  rr.rejects = &x;
  rr.nrejects = 1;
  add_rejected(r, row, raw, len, &rr);
}

static void batch_free(batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    Batch__V1__JobResults *r = &b->jobs[i].res;
    for (size_t k = 0; k < r->n_batches; k++) free(r->batches[k]);
    free(r->batches);
    for (size_t k = 0; k < r->n_rejected; k++) {
      Batch__V1__RowRejection *x = r->rejected[k];
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
    free(r->rejected);
  }
  free(b->jobs);
  if (b->first) rd_kafka_topic_partition_list_destroy(b->first);
  if (b->next) rd_kafka_topic_partition_list_destroy(b->next);
  memset(b, 0, sizeof *b);
}

static void note_offset(batch_t *b, const rd_kafka_message_t *m) {
  const char *t = rd_kafka_topic_name(m->rkt);
  if (!rd_kafka_topic_partition_list_find(b->first, t, m->partition))
    rd_kafka_topic_partition_list_add(b->first, t, m->partition)->offset = m->offset;
  rd_kafka_topic_partition_t *n = rd_kafka_topic_partition_list_find(b->next, t, m->partition);
  if (!n) n = rd_kafka_topic_partition_list_add(b->next, t, m->partition);
  n->offset = m->offset + 1;
}

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

static void *arena_alloc(void *ud, size_t n) { return bok_arena_alloc(ud, n); }
static void arena_nofree(void *ud, void *p) { (void)ud, (void)p; }

/* Processes one RowBatch message inside the open transaction. 0 ok, -1
 * transient failure (abort + retry), -2 Kafka produce failure. */
static int process_msg(worker_t *w, batch_t *b, const rd_kafka_message_t *m, int64_t *rows) {
  /* Decoded into the arena: ~1,000 small objects per message, dropped at once. */
  ProtobufCAllocator pa = {arena_alloc, arena_nofree, &w->arena};
  bok_arena_reset(&w->arena);
  Batch__V1__RowBatch *rb = batch__v1__row_batch__unpack(&pa, m->len, m->payload);
  if (!rb) {
    LOG(w, BOK_LOG_WARN, "skipping a malformed rows message at %s[%d]@%lld", rd_kafka_topic_name(m->rkt),
        (int)m->partition, (long long)m->offset);
    return 0;
  }
  job_ctx_t *j = job_get(w, rb);
  if (!j) {
    batch__v1__row_batch__free_unpacked(rb, &pa);
    return -1;
  }
  int rc = 0;
  bok_log_ctx_set(j->tenant, j->job_id); /* this message's lines carry tenant= and job= */
  if (!j->skip && rb->n_rows > 0) {
    job_res_t *r = res_for(b, j);
    Batch__V1__BatchResult *msg = add_msg(r, rb);
    char rowbuf[24];
    /* The Kafka timestamp of events without an event time: this message's
     * processing time, read once here instead of once per event inside
     * librdkafka (clock_gettime was 7 % of the worker's CPU). */
    int64_t now_ms = bok_now_ms();
    for (size_t i = 0; i < rb->n_rows && rc == 0; i++) {
      Batch__V1__Row *row = rb->rows[i];
      const char *raw = (const char *)row->raw.data;
      size_t len = row->raw.len;
      const char *reason = bok_utf8_valid(raw, len) ? NULL : "invalid UTF-8";
      if (j->broken[0]) {
        add_rejected_reason(r, row->row, raw, len, j->broken);
        continue;
      }
      if (!bok_validator_row(j->validator, row->row, raw, len, reason, &w->rr)) {
        add_rejected(r, row->row, raw, len, &w->rr);
        continue;
      }
      if (j->dry_run) { /* validated and counted, never published */
        msg->valid++;
        continue;
      }
      int rl = format_i64(rowbuf, row->row);
      rd_kafka_resp_err_t e;
      for (;;) {
        e = rd_kafka_producev(
            w->producer, RD_KAFKA_V_TOPIC(j->topic),
            RD_KAFKA_V_KEY(w->rr.key.len ? w->rr.key.data : NULL, w->rr.key.len),
            RD_KAFKA_V_VALUE(w->rr.event.data, w->rr.event.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(w->rr.event_time_ms > 0 ? w->rr.event_time_ms : now_ms),
            RD_KAFKA_V_HEADER("tenant", j->tenant, -1), RD_KAFKA_V_HEADER("job", j->job_id, -1),
            RD_KAFKA_V_HEADER("model", j->model_id, -1), RD_KAFKA_V_HEADER("row", rowbuf, rl), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(w->producer, 10);
      }
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
static int report(worker_t *w, batch_t *b) {
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
    rc = bok_rpc_unary(chan(w, addr), "/batch.v1.JobService/ReportResults", NULL, 30000, &req.base,
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
static void confirm(worker_t *w, batch_t *b) {
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
    if (bok_rpc_unary(chan(w, addr), "/batch.v1.JobService/ConfirmResults", NULL, 10000, &req.base,
                      &batch__v1__confirm_results_response__descriptor, (ProtobufCMessage **)&resp, &err) != 0)
      LOG(w, BOK_LOG_WARN, "confirming to %s failed (counted later from offsets): %s", addr, err.msg);
    else
      protobuf_c_message_free_unpacked(&resp->base, NULL);
  }
  free(refs);
  free(ptrs);
}

/* Logs a transaction API error; 1 when there was none. A fatal error, or one
 * that abort cannot clear, marks the producer for re-creation. */
static int txn_ok(worker_t *w, rd_kafka_error_t *e, const char *what) {
  if (!e) return 1;
  LOG(w, BOK_LOG_WARN, "%s: %s", what, rd_kafka_error_string(e));
  if (rd_kafka_error_is_fatal(e)) w->reset = 1;
  rd_kafka_error_destroy(e);
  return 0;
}

/* Commits, retrying a retriable failure: after a timeout librdkafka may still
 * be committing, and aborting then could publish the batch twice. */
static int commit_txn(worker_t *w) {
  for (int attempt = 0;; attempt++) {
    bok_fault("worker.commit");
    rd_kafka_error_t *e = rd_kafka_commit_transaction(w->producer, TXN_TIMEOUT_MS);
    if (!e) return 1;
    if (rd_kafka_error_is_retriable(e) && attempt < 3) {
      LOG(w, BOK_LOG_WARN, "commit_transaction (retrying): %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      continue;
    }
    if (!rd_kafka_error_txn_requires_abort(e)) w->reset = 1; /* outcome unknown: fence it */
    return txn_ok(w, e, "commit_transaction");
  }
}

/* After a failed transaction: back to the group's committed offsets of the
 * batch's partitions -- the batch start when the transaction aborted, its end
 * when a commit whose answer was lost did commit -- so no message is skipped
 * and none is published twice. Retries while Kafka is down: consuming on
 * from a wrong position would skip rows. Partitions this member no longer
 * owns are left to their new owner. */
static void rewind_to(worker_t *w, const rd_kafka_topic_partition_list_t *first) {
  if (!first || first->cnt == 0) return;
  for (int delay = 200; !w->stop; delay = delay * 2 > 5000 ? 5000 : delay * 2) {
    rd_kafka_topic_partition_list_t *own = NULL;
    rd_kafka_assignment(w->consumer, &own);
    rd_kafka_topic_partition_list_t *to = rd_kafka_topic_partition_list_new(first->cnt);
    for (int i = 0; own && i < first->cnt; i++)
      if (rd_kafka_topic_partition_list_find(own, first->elems[i].topic, first->elems[i].partition))
        rd_kafka_topic_partition_list_add(to, first->elems[i].topic, first->elems[i].partition);
    if (own) rd_kafka_topic_partition_list_destroy(own);
    int done = to->cnt == 0;
    if (!done && rd_kafka_committed(w->consumer, to, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < to->cnt; i++) {
        const rd_kafka_topic_partition_t *f = rd_kafka_topic_partition_list_find(first, to->elems[i].topic,
                                                                                 to->elems[i].partition);
        /* no committed offset yet: the batch start (the reset policy's earliest is not better) */
        if (to->elems[i].offset < 0 || to->elems[i].err) to->elems[i].offset = f->offset;
        to->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
      }
      rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, to, 10000);
      done = !e;
      for (int i = 0; done && i < to->cnt; i++)
        if (to->elems[i].err) done = 0;
      if (e) {
        LOG(w, BOK_LOG_WARN, "seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    }
    rd_kafka_topic_partition_list_destroy(to);
    if (done) return;
    LOG(w, BOK_LOG_WARN, "cannot rewind to the committed offsets yet (retrying in %d ms)", delay);
    for (int t = 0; t < delay && !w->stop; t += 100) usleep(100 * 1000);
  }
}

static void batch_reset_offsets(batch_t *b) {
  if (b->first) rd_kafka_topic_partition_list_destroy(b->first);
  if (b->next) rd_kafka_topic_partition_list_destroy(b->next);
  b->first = rd_kafka_topic_partition_list_new(8);
  b->next = rd_kafka_topic_partition_list_new(8);
}

/* Collects up to ~batch_max_rows rows (or batch_max_ms) of messages. */
static int collect(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int max) {
  int nm = 0;
  int64_t deadline = bok_mono_ms() + w->batch_max_ms;
  int gen = w->rebalances;
  while (nm < max && !w->stop) {
    int64_t left = deadline - bok_mono_ms();
    if (left <= 0 && nm > 0) break;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, nm ? (int)(left > 0 ? left : 0) : 200);
    if (gen != w->rebalances) {
      /* A rebalance ran inside poll: the messages collected so far belong
       * to the old assignment. Drop them -- whoever owns their partitions
       * now starts from the committed offsets -- and keep collecting. */
      for (int i = 0; i < nm; i++) rd_kafka_message_destroy(msgs[i]);
      nm = 0;
      batch_reset_offsets(b);
      gen = w->rebalances;
    }
    if (!m) {
      if (nm) break;
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) LOG(w, BOK_LOG_WARN, "consumer: %s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    msgs[nm++] = m;
    note_offset(b, m);
    if ((int)(nm * 500) >= w->batch_max_rows) break; /* RowBatch messages carry up to ~500 rows */
  }
  return nm;
}

/* One transaction: begin, produce events, stage results, send offsets,
 * commit. 1 committed, 0 failed (the caller aborts and rewinds). */
static int run_txn(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int nm, int64_t *rows) {
  int ok = 1;
  if (w->transactions) ok = txn_ok(w, rd_kafka_begin_transaction(w->producer), "begin_transaction");
  for (int i = 0; i < nm && ok; i++) ok = process_msg(w, b, msgs[i], rows) == 0;
  if (ok && !w->transactions) ok = rd_kafka_flush(w->producer, TXN_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (ok) bok_fault("worker.after_produce");
  if (ok) ok = report(w, b) == 0;
  if (ok) bok_fault("worker.after_report");
  if (ok && w->transactions) {
    rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(w->consumer);
    ok = txn_ok(w, rd_kafka_send_offsets_to_transaction(w->producer, b->next, md, TXN_TIMEOUT_MS),
                "send_offsets_to_transaction");
    rd_kafka_consumer_group_metadata_destroy(md);
    if (ok) bok_fault("worker.after_send_offsets");
    if (ok) ok = commit_txn(w);
  } else if (ok) {
    ok = rd_kafka_commit(w->consumer, b->next, 0) == RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  if (ok) bok_fault("worker.after_commit");
  return ok;
}

/* A failed transaction: abort it (or re-create the producer when abort
 * cannot), rewind to the batch start. Never exits the worker. */
static void recover(worker_t *w, batch_t *b) {
  if (w->transactions && !w->reset) {
    rd_kafka_error_t *e = rd_kafka_abort_transaction(w->producer, TXN_TIMEOUT_MS);
    if (e) {
      LOG(w, BOK_LOG_WARN, "abort_transaction: %s", rd_kafka_error_string(e));
      w->reset = 1;
      rd_kafka_error_destroy(e);
    }
  }
  if (w->transactions && w->reset) reset_producer(w);
  bok_counter_inc(worker_metrics.batches_aborted);
  if (w->transactions) bok_counter_inc(worker_metrics.txn_aborted);
  rewind_to(w, b->first);
}

static void count_done(worker_t *w, batch_t *b, int64_t rows) {
  w->rows_done += rows;
  w->batches++;
  int64_t valid = 0, rejected = 0;
  for (size_t i = 0; i < b->n; i++) {
    rejected += (int64_t)b->jobs[i].res.n_rejected;
    for (size_t k = 0; k < b->jobs[i].res.n_batches; k++) valid += b->jobs[i].res.batches[k]->valid;
  }
  bok_counter_add(worker_metrics.rows_consumed, (uint64_t)rows);
  bok_counter_add(worker_metrics.rows_valid, (uint64_t)valid);
  bok_counter_add(worker_metrics.rows_rejected, (uint64_t)rejected);
  bok_counter_inc(worker_metrics.batches_committed);
  if (w->transactions) bok_counter_inc(worker_metrics.txn_committed);
}

int worker_run(worker_t *w) {
  int backoff_ms = 0;
  rd_kafka_message_t *msgs[1024];
  while (!w->stop) {
    for (int t = 0; t < backoff_ms && !w->stop; t += 100) usleep(100 * 1000);
    if (w->stop) break;
    batch_t b;
    memset(&b, 0, sizeof b);
    batch_reset_offsets(&b);
    int nm = collect(w, &b, msgs, 1024);
    int64_t rows = 0;
    if (nm > 0 && run_txn(w, &b, msgs, nm, &rows)) {
      confirm(w, &b);
      count_done(w, &b, rows);
      backoff_ms = 0;
    } else if (nm > 0) {
      recover(w, &b);
      backoff_ms = backoff_ms ? (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 200;
    }
    for (int i = 0; i < nm; i++) rd_kafka_message_destroy(msgs[i]);
    batch_free(&b);
    evict_jobs(w);
    int64_t now = bok_mono_ms();
    if (now - w->last_stat_ms > 5000) {
      if (w->rows_done) LOG(w, BOK_LOG_INFO, "stats: rows_processed=%lld batches=%lld", (long long)w->rows_done,
                            (long long)w->batches);
      w->last_stat_ms = now;
    }
  }
  LOG(w, BOK_LOG_INFO, "stopping: rows_processed=%lld batches=%lld", (long long)w->rows_done, (long long)w->batches);
  return 0;
}
