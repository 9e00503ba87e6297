/* job_obs.c -- the job service's metrics and admin HTTP endpoint (/healthz,
 * /readyz from its database and Kafka, probed in the background, /metrics). */
#include "job_obs.h"

#include <stdio.h>
#include <stdlib.h>

#define PROBE_INTERVAL_MS 2000
#define KAFKA_PROBE_TIMEOUT_MS 1500

job_metrics_t job_metrics;

struct job_obs {
  job_store_t *store;
  row_pool_t *rows;
  bok_metric_family_t *by_state;
  bok_ready_cache_t *ready;
  bok_admin_http_t *http;
};

static const char *STATE_NAMES[JOB_STORE_NSTATES] = {"UNSPECIFIED", "PENDING", "RUNNING", "SUCCESS",
                                                     "PARTIAL_SUCCESS", "FAILED", "CANCELLED"};

/* Scrape time: one GROUP BY over the jobs table. */
static void jobs_by_state(void *ud, bok_metrics_sink_t *sink) {
  job_obs_t *o = ud;
  int64_t n[JOB_STORE_NSTATES];
  bok_err_t err;
  if (job_store_count_by_state(o->store, n, &err) != 0) return;
  for (int i = 1; i < JOB_STORE_NSTATES; i++) {
    const char *v[] = {STATE_NAMES[i]};
    bok_metrics_sink_emit(sink, v, (double)n[i]);
  }
}

static int probe(void *ud, char *reason, size_t n) {
  job_obs_t *o = ud;
  int64_t counts[JOB_STORE_NSTATES];
  bok_err_t err;
  if (job_store_count_by_state(o->store, counts, &err) != 0) {
    snprintf(reason, n, "database: %s", err.msg);
    return 0;
  }
  if (row_pool_probe(o->rows, KAFKA_PROBE_TIMEOUT_MS, reason, n) != 0) return 0;
  return 1;
}

int job_obs_ready(void *obs, char *reason, size_t reason_len) {
  job_obs_t *o = obs;
  return bok_ready_cache_get(o->ready, reason, reason_len);
}

job_obs_t *job_obs_start(const bok_config_t *cfg, job_store_t *store, row_pool_t *rows, bok_log_fn log, void *lo,
                         char *err, size_t errlen) {
  job_obs_t *o = calloc(1, sizeof *o);
  if (!o) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  o->store = store;
  o->rows = rows;
  bok_metrics_t *m = bok_metrics_default();
  job_metrics.rows_received =
      bok_metrics_counter(m, "bok_job_upload_rows_total", "Data rows received by uploads (valid or not).");
  job_metrics.upload_bytes = bok_metrics_counter(m, "bok_job_upload_bytes_total", "Upload bytes received.");
  job_metrics.produce_errors =
      bok_metrics_counter(m, "bok_job_kafka_produce_errors_total", "Rows-topic produce or delivery failures.");
  const char *rl[] = {"result"};
  bok_metric_family_t *tx = bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_job_upload_transactions_total",
                                               "Upload Kafka transactions, by result (committed, aborted).", 1, rl,
                                               NULL, 0);
  const char *c[] = {"committed"}, *a[] = {"aborted"};
  job_metrics.txn_committed = bok_metric_child(tx, c);
  job_metrics.txn_aborted = bok_metric_child(tx, a);
  const char *sl[] = {"state"};
  o->by_state = bok_metrics_callback(m, BOK_METRIC_GAUGE, "bok_jobs", "Jobs in the database, by state.", 1, sl,
                                     jobs_by_state, o);
  o->ready = bok_ready_cache_start(probe, o, PROBE_INTERVAL_MS);
  bok_admin_http_opts_t ho = {.addr = bok_config_get(cfg, "metrics_listen", "127.0.0.1:9102"),
                              .metrics = m,
                              .ready = bok_ready_cache_get,
                              .ready_ud = o->ready,
                              .log = log,
                              .log_opaque = lo};
  o->http = bok_admin_http_start(&ho, err, errlen);
  if (!o->ready || (!o->http && err[0])) {
    job_obs_stop(o);
    return NULL;
  }
  return o;
}

void job_obs_stop(job_obs_t *o) {
  if (!o) return;
  bok_admin_http_stop(o->http);
  bok_metrics_remove_callback(o->by_state);
  bok_ready_cache_stop(o->ready);
  free(o);
}
