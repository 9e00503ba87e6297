/* worker_obs.h -- the worker's metrics, consumer lag, readiness and admin
 * HTTP port.
 *
 * worker_metrics holds the counters (NULL until worker_obs_start; updating a
 * NULL metric is a no-op, so worker unit tests need no setup). Counts are
 * taken when a batch's transaction commits, so a retried batch counts once.
 * Readiness: a Kafka broker answers a metadata request and every job service
 * of the routes answers grpc.health.v1.Health/Check with SERVING; probed
 * every 2 s on the prober's thread, /readyz reads the cached result. */
#ifndef WORKER_OBS_H
#define WORKER_OBS_H

#include <librdkafka/rdkafka.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/metrics.h"

typedef struct {
  bok_metric_t *rows_consumed, *rows_valid, *rows_rejected;
  bok_metric_t *batches_committed, *batches_aborted;
  bok_metric_t *batches_cut; /* bulk batches committed short for express messages (loop.c) */
  bok_metric_t *txn_committed, *txn_aborted;
  bok_metric_t *produce_errors;
  bok_metric_t *report_ok, *report_failed;
  bok_metric_t *producer_resets;
  bok_metric_family_t *lag; /* bok_worker_consumer_lag{topic,partition} */
} worker_metrics_t;

extern worker_metrics_t worker_metrics;

/* The consumer's statistics callback (statistics.interval.ms = 1000; runs
 * inside rd_kafka_consumer_poll): refreshes the lag gauges of the assigned
 * partitions. Lag = last stable offset - the application's position; 0 once
 * everything up to the last stable offset was fetched and handed over (a
 * transaction's commit marker is an offset no message ever occupies, so
 * high watermark - position alone would stay at 1 after every job). */
int worker_obs_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque);
#define WORKER_OBS_STATS_INTERVAL_MS "1000"
/* Revoked partitions are no longer this consumer's lag: zero them. */
void worker_obs_lag_clear(const rd_kafka_topic_partition_list_t *parts);

typedef struct worker_obs worker_obs_t;
/* Registers the metrics, starts the prober and (unless metrics_listen is "")
 * the admin HTTP port (default 127.0.0.1:9103). NULL with err on failure. */
worker_obs_t *worker_obs_start(const bok_config_t *cfg, bok_log_fn log, void *lo, char *err, size_t errlen);
void worker_obs_stop(worker_obs_t *o);

#endif
