/* job_obs.h -- the job service's metrics, readiness and admin HTTP port.
 *
 * job_metrics holds the service's counters (NULL until job_obs_start, and
 * updating a NULL metric is a no-op, so the handlers and unit tests work
 * without it). Readiness: the database answers and a Kafka broker answers a
 * metadata request, probed every 2 s on the prober's own thread; gRPC
 * Health/Check and /readyz read the cached result. */
#ifndef JOB_OBS_H
#define JOB_OBS_H

#include "bok/admin_http.h"
#include "bok/config.h"
#include "bok/metrics.h"
#include "job_store.h"
#include "row_producer.h"

typedef struct {
  bok_metric_t *rows_received;  /* data rows read from uploads */
  bok_metric_t *upload_bytes;   /* upload bytes received */
  bok_metric_t *produce_errors; /* rows-topic produce/delivery failures */
  bok_metric_t *txn_committed;  /* upload transactions committed */
  bok_metric_t *txn_aborted;    /* upload transactions aborted */
} job_metrics_t;

extern job_metrics_t job_metrics;

typedef struct job_obs job_obs_t;

/* Registers the metrics (default registry), starts the prober and, unless
 * config metrics_listen is "" , the admin HTTP port (default
 * 127.0.0.1:9102). NULL with err on failure. store and rows are borrowed
 * and must outlive job_obs_stop(). */
job_obs_t *job_obs_start(const bok_config_t *cfg, job_store_t *store, row_pool_t *rows, bok_log_fn log, void *lo,
                         char *err, size_t errlen);
/* A bok_ready_fn for the gRPC server options (ud = the job_obs_t). */
int job_obs_ready(void *obs, char *reason, size_t reason_len);
void job_obs_stop(job_obs_t *o);

#endif
