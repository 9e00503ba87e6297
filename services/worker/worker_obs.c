/* worker_obs.c -- the worker's metrics, consumer lag from librdkafka's
 * statistics, readiness (Kafka metadata + Health/Check of every job service,
 * probe channels from lib/rpc's channel cache) and the admin HTTP port
 * (contract: worker_obs.h). */
#include "worker_obs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/admin_http.h"
#include "bok/kafka.h"
#include "bok/routes.h"
#include "bok/rpc.h"
#include "bok/util.h"
#include "grpc/health/v1/health.pb-c.h"

#define PROBE_INTERVAL_MS 2000
#define PROBE_TIMEOUT_MS 1500

worker_metrics_t worker_metrics;

struct worker_obs {
  rd_kafka_t *probe_rk; /* a plain producer handle used only for metadata probes */
  char rows_topic[256];  /* whose replicas the probe checks */
  bok_routes_t *routes;
  bok_rpc_chancache_t *chans; /* probe channels, one per job service address */
  bok_ready_cache_t *ready;
  bok_admin_http_t *http;
};

static void set_lag(const char *topic, int32_t partition, double v) {
  char part[16];
  snprintf(part, sizeof part, "%d", (int)partition);
  const char *vals[] = {topic, part};
  bok_gauge_set(bok_metric_child(worker_metrics.lag, vals), v);
}

static int64_t jint(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

int worker_obs_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  (void)rk, (void)opaque;
  if (!worker_metrics.lag) return 0;
  json_t *root = json_loadb(json, len, 0, NULL);
  json_t *topics = root ? json_object_get(root, "topics") : NULL;
  const char *topic;
  json_t *t;
  json_object_foreach(topics, topic, t) {
    const char *pk;
    json_t *p;
    json_object_foreach(json_object_get(t, "partitions"), pk, p) {
      int32_t part = (int32_t)jint(p, "partition");
      const char *fs = json_string_value(json_object_get(p, "fetch_state"));
      if (part < 0 || !fs || strcmp(fs, "active") != 0) continue; /* not assigned to this consumer */
      int64_t end = jint(p, "ls_offset"), app = jint(p, "app_offset"), next = jint(p, "next_offset");
      int64_t queued = jint(p, "fetchq_cnt");
      if (end < 0) continue;
      double lag;
      if (queued == 0 && next >= end) lag = 0; /* all fetched and handed over */
      else if (app >= 0) lag = (double)(end > app ? end - app : 0);
      else continue; /* nothing consumed yet: unknown */
      set_lag(topic, part, lag);
    }
  }
  json_decref(root);
  return 0; /* librdkafka frees json */
}

void worker_obs_lag_clear(const rd_kafka_topic_partition_list_t *parts) {
  if (!worker_metrics.lag || !parts) return;
  for (int i = 0; i < parts->cnt; i++) set_lag(parts->elems[i].topic, parts->elems[i].partition, 0);
}

static int probe(void *ud, char *reason, size_t n) {
  worker_obs_t *o = ud;
  /* Unreachable: not ready. A broker of the rows topic's replicas down (or
   * partitions under-replicated): still ready, /readyz shows it as
   * "degraded" (the cluster keeps working while min.insync.replicas hold). */
  char note[300];
  if (bok_kafka_cluster_health(o->probe_rk, o->rows_topic, PROBE_TIMEOUT_MS, note, sizeof note) < 0) {
    snprintf(reason, n, "%s", note);
    return 0;
  }
  for (size_t i = 0; i < bok_rpc_chancache_count(o->chans); i++) {
    bok_rpc_channel_t *ch = bok_rpc_chancache_at(o->chans, i);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    bok_err_t err;
    if (bok_rpc_unary(ch, "/grpc.health.v1.Health/Check", NULL, PROBE_TIMEOUT_MS, &req.base,
                      &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&resp, &err) != 0) {
      snprintf(reason, n, "job service %s: %s", bok_rpc_channel_target(ch), err.msg);
      return 0;
    }
    int serving = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (!serving) {
      snprintf(reason, n, "job service %s: not serving", bok_rpc_channel_target(ch));
      return 0;
    }
  }
  snprintf(reason, n, "%s", note);
  return 1;
}

static void register_metrics(void) {
  bok_metrics_t *m = bok_metrics_default();
  worker_metrics.rows_consumed =
      bok_metrics_counter(m, "bok_worker_rows_consumed_total", "Rows consumed from the rows topic (committed batches).");
  worker_metrics.rows_valid = bok_metrics_counter(m, "bok_worker_rows_valid_total", "Rows valid and published as events.");
  worker_metrics.rows_rejected = bok_metrics_counter(m, "bok_worker_rows_rejected_total", "Rows rejected by validation.");
  const char *rl[] = {"result"};
  const char *c[] = {"committed"}, *a[] = {"aborted"}, *ok[] = {"ok"}, *bad[] = {"failed"};
  bok_metric_family_t *f = bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_worker_batches_total",
                                              "Batches processed, by result (committed, aborted).", 1, rl, NULL, 0);
  worker_metrics.batches_committed = bok_metric_child(f, c);
  worker_metrics.batches_aborted = bok_metric_child(f, a);
  worker_metrics.batches_cut = bok_metrics_counter(
      m, "bok_worker_batches_cut_total",
      "Bulk batches committed after part of their messages because express messages arrived (docs/FAIRNESS.md).");
  f = bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_worker_transactions_total",
                         "Kafka transactions, by result (committed, aborted); 0 with transactions off.", 1, rl, NULL, 0);
  worker_metrics.txn_committed = bok_metric_child(f, c);
  worker_metrics.txn_aborted = bok_metric_child(f, a);
  worker_metrics.produce_errors =
      bok_metrics_counter(m, "bok_worker_kafka_produce_errors_total", "Event produce failures.");
  f = bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_worker_report_rpcs_total",
                         "ReportResults calls to job services, by result (ok, failed).", 1, rl, NULL, 0);
  worker_metrics.report_ok = bok_metric_child(f, ok);
  worker_metrics.report_failed = bok_metric_child(f, bad);
  worker_metrics.producer_resets = bok_metrics_counter(
      m, "bok_worker_producer_resets_total", "Transactional producers re-created after a failure abort could not clear.");
  const char *ll[] = {"topic", "partition"};
  worker_metrics.lag = bok_metrics_family(m, BOK_METRIC_GAUGE, "bok_worker_consumer_lag",
                                          "Messages behind the high watermark, per assigned partition.", 2, ll, NULL, 0);
}

worker_obs_t *worker_obs_start(const bok_config_t *cfg, bok_log_fn log, void *lo, char *err, size_t errlen) {
  register_metrics();
  worker_obs_t *o = calloc(1, sizeof *o);
  if (!o) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bok_config_get(cfg, "kafka.brokers", "127.0.0.1:9092"), err,
                        errlen) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set(conf, "client.id", "bok-worker-probe", NULL, 0);
  /* The probe asks for the rows topic's metadata: it must never create the
   * topic (with broker defaults) before the job service does. */
  rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", NULL, 0);
  o->probe_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
  snprintf(o->rows_topic, sizeof o->rows_topic, "%s", bok_config_get(cfg, "kafka.rows_topic", "bok.rows"));
  if (!o->probe_rk) goto fail;
  o->routes = bok_routes_from_config(cfg, "127.0.0.1:50051", "127.0.0.1:50052", err, errlen);
  if (!o->routes) goto fail;
  o->chans = bok_rpc_chancache_new(1);
  int made = o->chans != NULL;
  for (size_t i = 0; made && i < bok_routes_count(o->routes); i++)
    made = bok_rpc_chancache_get(o->chans, bok_routes_at(o->routes, i)->job_addr) != NULL;
  if (!made) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  o->ready = bok_ready_cache_start(probe, o, PROBE_INTERVAL_MS);
  if (!o->ready) goto fail;
  bok_admin_http_opts_t ho = {.addr = bok_config_get(cfg, "metrics_listen", "127.0.0.1:9103"),
                              .metrics = bok_metrics_default(),
                              .ready = bok_ready_cache_get,
                              .ready_ud = o->ready,
                              .log = log,
                              .log_opaque = lo};
  o->http = bok_admin_http_start(&ho, err, errlen);
  if (!o->http && err[0]) goto fail;
  return o;
fail:
  worker_obs_stop(o);
  return NULL;
}

void worker_obs_stop(worker_obs_t *o) {
  if (!o) return;
  bok_admin_http_stop(o->http);
  bok_ready_cache_stop(o->ready);
  bok_rpc_chancache_destroy(o->chans);
  bok_routes_destroy(o->routes);
  if (o->probe_rk) rd_kafka_destroy(o->probe_rk);
  free(o);
}
