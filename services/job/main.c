/* bok-job-service: uploads, jobs, counters, rejected rows (gRPC JobService). */
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"
#include "bok/metrics.h"
#include "job_obs.h"
#include "job_service.h"
#include "resolver.h"

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"listen", "db", "threads:int", "model_service", "max_row_bytes:int", "kafka.brokers", "kafka.rows_topic", "kafka.rows_partitions:int", "kafka.transactions:bool", "kafka.batch_rows:int", "kafka.transactional_id_prefix", "kafka.rows_topic_retention_ms", "kafka.express_partitions:int", "kafka.express_max_rows:int", "kafka.tenant_stripes:int", "resolver.interval_ms:int", "resolver.stage_age_ms:int", "kafka.producer.*", "log_level:level", "log_format:format", "metrics_listen", BOK_RPC_TLS_KEYS, BOK_RPC_WORKER_KEYS, NULL};

int main(int argc, char **argv) {
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args_checked(argc, argv, "bok-job-service", KNOWN_KEYS, &rc);
  if (!cfg) return rc;
  char msg[512];
  void *comp = "job-service";
  bok_err_t err;
  bok_rpc_server_t *srv = NULL;
  row_pool_t *rows = NULL;
  bok_rpc_channel_t *models = NULL;
  job_obs_t *obs = NULL;
  resolver_t *resolver = NULL;
  job_watch_t *watch = NULL;
  /* Before any channel or server: TLS material and the worker token (created
   * on first start when rpc.worker_token_file names a missing file). */
  if (bok_rpc_security_from_config(cfg, BOK_RPC_ROLE_JOB_SERVICE, &err) != 0) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", err.msg);
    bok_config_destroy(cfg);
    return 1;
  }
  bok_rpc_security_describe(msg, sizeof msg);
  bok_logf(bok_log_stderr, comp, BOK_LOG_INFO, "gRPC security: %s", msg);
  job_store_t *store = job_store_open(bok_config_get(cfg, "db", ".run/data/jobs.db"), &err);
  if (!store) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", err.msg);
    goto out;
  }
  int n = job_store_fail_interrupted(store);
  if (n) bok_logf(bok_log_stderr, comp, BOK_LOG_WARN, "%d interrupted uploads marked FAILED", n);
  rows = row_pool_new(cfg, bok_log_stderr, comp, msg, sizeof msg);
  if (!rows) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "Kafka: %s", msg);
    goto out;
  }
  /* Settles uploads and results the previous incarnation left open (the
   * pool's init_transactions has fenced its transactions by now). */
  resolver = resolver_start(store, rows, (int)bok_config_get_int(cfg, "resolver.interval_ms", 1000),
                            (int)bok_config_get_int(cfg, "resolver.stage_age_ms", 3000), bok_log_stderr, comp);
  obs = job_obs_start(cfg, store, rows, bok_log_stderr, comp, msg, sizeof msg);
  if (!obs) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", msg);
    goto out;
  }
  models = bok_rpc_channel_new(bok_config_get(cfg, "model_service", "127.0.0.1:50051"));
  job_service_t svc = {store, rows, models, (size_t)bok_config_get_int(cfg, "max_row_bytes", 1 << 20),
                       bok_log_stderr, comp, NULL};
  watch = job_watch_start(store, NULL, 100, bok_log_stderr, comp);
  if (!watch) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "cannot start the watch thread");
    goto out;
  }
  svc.watch = watch;
  bok_rpc_server_opts_t opts = {.addr = bok_config_get(cfg, "listen", "127.0.0.1:50052"),
                                .threads = (int)bok_config_get_int(cfg, "threads", 8),
                                .max_message = 64u << 20,
                                .log = bok_log_stderr,
                                .log_opaque = comp,
                                .ready = job_obs_ready,
                                .ready_ud = obs};
  srv = bok_rpc_server_new(&opts, &err);
  if (!srv || job_service_register(srv, &svc) != 0 || bok_rpc_server_start(srv, &err) < 0) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "cannot start: %s", err.msg);
    goto out;
  }
  bok_rpc_server_wait(srv, 1);
  rc = 0;
out:
  bok_rpc_server_destroy(srv);
  resolver_stop(resolver);
  job_watch_stop(watch);
  job_obs_stop(obs);
  bok_rpc_channel_destroy(models);
  row_pool_destroy(rows);
  job_store_close(store);
  bok_rpc_security_reset();
  bok_config_destroy(cfg);
  bok_metrics_default_free();
  return rc;
}
