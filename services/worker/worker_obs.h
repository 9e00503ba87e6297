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
  bok_metric_t *txn_committed, *txn_aborted;
  bok_metric_t *produce_errors;
  bok_metric_t *report_ok, *report_failed;
  bok_metric_family_t *lag; /* bok_worker_consumer_lag{topic,partition} */
} worker_metrics_t;

extern worker_metrics_t worker_metrics;

/* Refreshes the lag gauges of `consumer`'s assigned partitions (high
 * watermark - position, from librdkafka's cached fetch state: no broker
 * round trip), at most once a second per calling thread. */
void worker_obs_lag(rd_kafka_t *consumer);
/* Revoked partitions are no longer this consumer's lag: zero them. */
void worker_obs_lag_clear(const rd_kafka_topic_partition_list_t *parts);

typedef struct worker_obs worker_obs_t;
/* Registers the metrics, starts the prober and (unless metrics_listen is "")
 * the admin HTTP port (default 127.0.0.1:9103). NULL with err on failure. */
worker_obs_t *worker_obs_start(const bok_config_t *cfg, bok_log_fn log, void *lo, char *err, size_t errlen);
void worker_obs_stop(worker_obs_t *o);

#endif
