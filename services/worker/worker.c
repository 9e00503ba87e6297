/* worker.c -- a worker lane's life cycle (worker.h): its consumer-group
 * member and its transactional producer, created from the config, re-created
 * when a transaction failure leaves the producer in a state abort cannot
 * clear, destroyed at the end. The loop itself is in loop.c. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/kafka.h"
#include "bok/util.h"
#include "worker_obs.h"
#include "worker_int.h"

/* ---- setup ---------------------------------------------------------------- */

/* Sends the fetched messages of the assigned express partitions to the
 * lane's express queue instead of the consumer queue. Must run before
 * rd_kafka_assign: an application-set forward is kept when the fetch starts
 * (the fetch stop clears it, so every assignment sets it again). All of a
 * partition's messages go to one queue, so its order and offsets stay one
 * sequence. Returns the number of express partitions in parts. */
static int route_express(worker_t *w, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts) {
  int n = 0;
  for (int i = 0; w->express_q && i < parts->cnt; i++) {
    const rd_kafka_topic_partition_t *p = &parts->elems[i];
    if (p->partition >= w->express_parts || strcmp(p->topic, w->rows_topic) != 0) continue;
    rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, p->topic, p->partition);
    if (!pq) continue;
    rd_kafka_queue_forward(pq, w->express_q);
    rd_kafka_queue_destroy(pq);
    n++;
  }
  return n;
}

/* Sends each assigned bulk partition's fetched messages to its stripe's
 * queue (partition E + i: stripe i mod nstripes), for the same reasons and at
 * the same time as route_express. Returns the number of stripes that got
 * partitions. */
static int route_stripes(worker_t *w, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts) {
  int seen[WK_STRIPES_MAX] = {0}, n = 0;
  for (int i = 0; w->nstripes > 1 && i < parts->cnt; i++) {
    const rd_kafka_topic_partition_t *p = &parts->elems[i];
    if (p->partition < w->express_parts || strcmp(p->topic, w->rows_topic) != 0) continue;
    int s = (p->partition - w->express_parts) % w->nstripes;
    rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(rk, p->topic, p->partition);
    if (!pq) continue;
    rd_kafka_queue_forward(pq, w->stripe_q[s]);
    rd_kafka_queue_destroy(pq);
    n += !seen[s];
    seen[s] = 1;
  }
  return n;
}

/* Runs inside rd_kafka_consumer_poll, on the lane's thread. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque) {
  worker_t *w = opaque;
  /* The transaction must end before the partitions go: their next owner
   * starts from the committed offsets, so committing later would publish
   * its rows twice. */
  wk_txn_abandon(w);
  w->rebalances++;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    w->express_owned = route_express(w, rk, parts);
    w->stripe_owned = route_stripes(w, rk, parts);
    LOG(w, BOK_LOG_INFO, "assigned %d partitions (%d express, %d stripes)", parts->cnt, w->express_owned,
        w->stripe_owned);
    rd_kafka_assign(rk, parts);
  } else {
    LOG(w, BOK_LOG_INFO, "revoked %d partitions", parts->cnt);
    worker_obs_lag_clear(parts);
    w->express_owned = 0;
    w->stripe_owned = 0;
    rd_kafka_assign(rk, NULL);
  }
}

/* A lane's share of a process-wide budget in KB (the key's value, or dflt,
 * divided by the configured lanes), at least 1 MB. */
int64_t wk_lane_share_kb(const bok_config_t *cfg, const char *key, int64_t dflt) {
  int64_t total = bok_config_get_int(cfg, key, dflt), lanes = bok_config_get_int(cfg, "lanes", 4);
  if (lanes < 1) lanes = 1;
  int64_t kb = total / lanes;
  return kb < 1024 ? 1024 : kb;
}

/* The transactional producer: its id is stable for a worker id, so a new one
 * (a restarted process, or make_producer again after a failure) fences the
 * old epoch and aborts its open transaction. init_timeout_ms < 0: created
 * without init_transactions (w->need_init set; wk_producer_start does it).
 * 0 ok, -1 with err set. */
static int make_producer(worker_t *w, int init_timeout_ms, char *err, size_t errlen) {
  const bok_config_t *cfg = w->cfg;
  char tid[300];
  /* the group keeps ids of different deployments (and test stacks) apart */
  snprintf(tid, sizeof tid, "bok-worker-%s-%s", w->group_id, w->worker_id);
  /* Short timeout: a worker killed mid-transaction blocks its partitions'
   * offsets (unstable) until the coordinator aborts the transaction. */
  /* allow.auto.create.topics off: an events topic is only ever made by
   * ensure_topic with its retention settings, never by the broker's
   * defaults on a metadata request or a produce. */
  /* queue.buffering.max.kbytes: this lane's share of the process's producer
   * budget (librdkafka's default is 1 GB per producer); a full queue makes
   * produce wait (QUEUE_FULL -> poll, events.c), never fail. */
  /* At least one largest message (message.max.bytes): librdkafka never
   * queues a message larger than the cap, and produce would wait forever. */
  /* queue.buffering.max.messages: librdkafka counts only the payload in
   * the kbytes cap, while a queued event costs ~1-2 KB (its copy, the
   * message, four headers): with a transaction open for 20,000 rows the
   * four lanes' queues held ~35 MB beyond the budget. One message per 2 KB
   * of the share keeps the real size near it (docs/PERFORMANCE.md
   * "The producer queue's real size"). */
  char qkb[24], qmsgs[24];
  int64_t share = wk_lane_share_kb(cfg, "kafka.produce_buffer_kbytes", WK_PRODUCE_BUFFER_KB_DEFAULT);
  int64_t one = bok_config_get_int(cfg, "kafka.producer.message.max.bytes", 1000000) / 1024 + 1;
  snprintf(qkb, sizeof qkb, "%lld", (long long)(share > one ? share : one));
  snprintf(qmsgs, sizeof qmsgs, "%lld", (long long)(share / 2 > 500 ? share / 2 : 500));
  /* zstd level 1, not the codec's default 3: librdkafka makes a fresh zstd
   * context per message set, and level 3's tables (~0.75 MB, allocated and
   * cleared per set) cost more than compressing the events themselves.
   * Consumers read the same bytes; kafka.producer.compression.level
   * overrides it. linger.ms stays 5: 100 saved ~7 % of the worker's CPU
   * but held each lane's events until its commit, +20 MB of peak memory
   * (docs/PERFORMANCE.md "Larger transactions"). */
  const char *defaults[] = {"linger.ms", "5", "compression.codec", "zstd", "compression.level", "1",
                            "enable.idempotence", "true", "batch.num.messages", "10000",
                            "allow.auto.create.topics", "false", "queue.buffering.max.kbytes", qkb,
                            "queue.buffering.max.messages", qmsgs, "transactional.id", tid, "transaction.timeout.ms",
                            bok_config_get(cfg, "kafka.transaction_timeout_ms", "10000"), NULL};
  if (!w->transactions) defaults[16] = NULL; /* no transactional.id */
  rd_kafka_conf_t *pc = bok_kafka_conf_new(cfg, defaults, "kafka.producer.", err, errlen);
  if (!pc) return -1;
  w->producer = bok_kafka_client_new(RD_KAFKA_PRODUCER, pc, init_timeout_ms, err, errlen);
  w->need_init = w->producer && w->transactions && init_timeout_ms < 0;
  return w->producer ? 0 : -1;
}

/* First use of the lane's producer (lane thread, before its first batch):
 * init_transactions, which needs Kafka. A broker down at start is an outage
 * like any other: retried (by re-creating the producer) until Kafka answers
 * or the lane is stopped, never an exit. */
void wk_producer_start(worker_t *w) {
  if (!w->need_init) return;
  char err[512];
  if (bok_kafka_init_transactions(w->producer, 30000, err, sizeof err) == 0) {
    w->need_init = 0;
    return;
  }
  LOG(w, BOK_LOG_WARN, "transactional producer not ready: %s (retrying)", err);
  wk_reset_producer(w);
}

/* Replaces a producer that abort could not bring back (INVALID_TXN_STATE,
 * fenced, fatal): the same transactional.id fences the old epoch. Retries
 * with back-off while Kafka is down; gives up only when stopped. */
void wk_reset_producer(worker_t *w) {
  wk_jobs_drop_topics(w); /* the topic handles belong to the old producer */
  bok_kafka_producer_drop(w->producer);
  w->producer = NULL;
  for (int delay = 500; !w->stop; delay = delay * 2 > 10000 ? 10000 : delay * 2) {
    char err[512];
    if (make_producer(w, 30000, err, sizeof err) == 0) {
      LOG(w, BOK_LOG_INFO, "transactional producer re-created");
      bok_counter_inc(worker_metrics.producer_resets);
      w->reset = 0;
      return;
    }
    LOG(w, BOK_LOG_WARN, "re-creating the producer: %s (retrying in %d ms)", err, delay);
    for (int t = 0; t < delay && !w->stop; t += 100) usleep(100 * 1000);
  }
}

/* The lane's batch, transaction and fairness limits from the config. */
static void worker_limits(worker_t *w, const bok_config_t *cfg) {
  w->batch_max_rows = (int)bok_config_get_int(cfg, "kafka.batch_max_rows", WK_BATCH_MAX_ROWS_DEFAULT);
  w->batch_max_bytes = bok_config_get_int(cfg, "kafka.batch_max_bytes", WK_BATCH_MAX_BYTES_DEFAULT);
  w->batch_max_ms = (int)bok_config_get_int(cfg, "kafka.batch_max_ms", 100);
  w->txn_max_rows = (int)bok_config_get_int(cfg, "kafka.txn_max_rows", WK_TXN_MAX_ROWS_DEFAULT);
  w->txn_max_ms = (int)bok_config_get_int(cfg, "kafka.txn_max_ms", WK_TXN_MAX_MS_DEFAULT);
  w->express_parts = (int)bok_config_get_int(cfg, "kafka.express_partitions", 1);
  if (w->express_parts < 0) w->express_parts = 0;
  w->nstripes = (int)bok_config_get_int(cfg, "kafka.tenant_stripes", WK_STRIPES_DEFAULT);
  if (w->nstripes < 1) w->nstripes = 1;
  if (w->nstripes > WK_STRIPES_MAX) w->nstripes = WK_STRIPES_MAX;
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
  worker_limits(w, cfg);
  bok_row_result_init(&w->rr);
  w->routes = bok_routes_from_config(cfg, "127.0.0.1:50051", "127.0.0.1:50052", err, errlen);
  if (!w->routes) goto fail;
  char fkb[24];
  snprintf(fkb, sizeof fkb, "%lld", (long long)wk_lane_share_kb(cfg, "kafka.fetch_buffer_kbytes",
                                                                  WK_FETCH_BUFFER_KB_DEFAULT));
  const char *cdefaults[] = {"group.id", w->group_id, "isolation.level", "read_committed", "enable.auto.commit",
                              "false", "auto.offset.reset", "earliest", "client.id", w->worker_id,
                              "session.timeout.ms", "10000", "heartbeat.interval.ms", "1000",
                              /* find a rows topic created later */
                              "topic.metadata.refresh.interval.ms", "5000",
                              /* bound the fetch-ahead (librdkafka: 64 MB per
                               * consumer, i.e. per lane): the lane's share of
                               * kafka.fetch_buffer_kbytes; fetch.max.bytes
                               * follows it (librdkafka caps it to this) */
                              "queued.max.messages.kbytes", fkb,
                              /* and the overshoot: one fetch response may land
                               * on a full queue, and zstd record batches grow
                               * ~20x here when decompressed (default 1 MB per
                               * partition); a larger record batch still comes
                               * whole (KIP-74) */
                              "max.partition.fetch.bytes", WK_PARTITION_FETCH_BYTES_DEFAULT, NULL};
  rd_kafka_conf_t *cc = bok_kafka_conf_new(cfg, cdefaults, "kafka.consumer.", err, errlen);
  if (!cc) goto fail;
  rd_kafka_conf_set_opaque(cc, w);
  rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
  rd_kafka_conf_set(cc, "statistics.interval.ms", WORKER_OBS_STATS_INTERVAL_MS, NULL, 0); /* consumer lag */
  rd_kafka_conf_set_stats_cb(cc, worker_obs_stats);
  w->consumer = bok_kafka_client_new(RD_KAFKA_CONSUMER, cc, 0, err, errlen);
  if (!w->consumer) goto fail;
  rd_kafka_poll_set_consumer(w->consumer);
  if (w->express_parts > 0) w->express_q = rd_kafka_queue_new(w->consumer);
  for (int s = 0; w->nstripes > 1 && s < w->nstripes; s++) w->stripe_q[s] = rd_kafka_queue_new(w->consumer);

  /* No init_transactions here (it needs Kafka): a bad producer config fails
   * the start, a broker not up yet does not (wk_producer_start). */
  if (make_producer(w, -1, err, errlen) != 0) goto fail;
  rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, w->rows_topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t se = rd_kafka_subscribe(w->consumer, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (se) {
    snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(se));
    goto fail;
  }
  LOG(w, BOK_LOG_INFO, "worker %s consuming %s (transactions %s, express partitions %d, tenant stripes %d)",
      w->worker_id, w->rows_topic, w->transactions ? "on" : "off", w->express_parts, w->nstripes);
  return w;
fail:
  worker_destroy(w);
  return NULL;
}

void worker_stop(worker_t *w) { w->stop = 1; }

void worker_destroy(worker_t *w) {
  if (!w) return;
  if (w->consumer) {
    rd_kafka_consumer_close(w->consumer); /* stops the fetchers: nothing forwards to express_q any more */
    if (w->express_q) rd_kafka_queue_destroy(w->express_q);
    for (int s = 0; s < WK_STRIPES_MAX; s++)
      if (w->stripe_q[s]) rd_kafka_queue_destroy(w->stripe_q[s]);
    rd_kafka_destroy(w->consumer);
  }
  wk_jobs_drop_topics(w); /* before the producer they belong to */
  if (w->producer) {
    rd_kafka_flush(w->producer, 5000);
    rd_kafka_destroy(w->producer);
  }
  wk_jobs_free(w);
  bok_routes_destroy(w->routes);
  bok_row_result_free(&w->rr);
  bok_arena_free(&w->arena);
  free(w->rows_topic);
  free(w);
}
