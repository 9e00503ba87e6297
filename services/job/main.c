/* bok-job-service: uploads, jobs, counters, rejected rows (gRPC JobService).
 * main: config, gRPC security, build the service's parts, run the server
 * until SIGINT/SIGTERM (lib/rpc bok_rpc_run), tear down in reverse. */
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"
#include "job_obs.h"
#include "job_service.h"
#include "finalizer.h"
#include "resolver.h"

#define COMP ((void *)"job-service")

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"listen", "db", "threads:int", "model_service", "max_row_bytes:int", "kafka.brokers", "kafka.rows_topic", "kafka.rows_partitions:int", "kafka.replication_factor:int", "kafka.min_insync_replicas:int", "kafka.transactions:bool", "kafka.batch_rows:int", "kafka.transactional_id_prefix", "kafka.rows_topic_retention_ms", "kafka.express_partitions:int", "kafka.express_max_rows:int", "kafka.tenant_stripes:int", "upload_window_kbytes:int", "kafka.produce_buffer_kbytes:int", "resolver.interval_ms:int", "resolver.stage_age_ms:int", "kafka.producer.*", "log_level:level", "log_format:format", "metrics_listen", BOK_RPC_TLS_KEYS, BOK_RPC_WORKER_KEYS, NULL};

/* The service's parts (main owns them all; the handlers borrow them). */
typedef struct {
  job_store_t *store;
  row_pool_t *rows;
  resolver_t *resolver;
  finalizer_t *finalizer;
  job_obs_t *obs;
  bok_rpc_channel_t *models;
  job_watch_t *watch;
  job_service_t svc;
} job_app_t;

static int add_methods(bok_rpc_server_t *s, void *svc) { return job_service_register(s, svc); }

/* The rows pool's stripe choice asks how much of a big job is left
 * (row_pool_outstanding_fn): its rows not counted yet, 0 once it is final
 * or unknown. Upload threads. */
static int64_t job_outstanding(void *ud, const char *tenant, const char *job_id) {
  job_t j;
  bok_err_t err;
  if (job_store_get(ud, tenant, job_id, &j, &err) != 0) return 0;
  int64_t left = 0;
  if (j.state == BATCH__V1__JOB_STATE__JOB_STATE_PENDING || j.state == BATCH__V1__JOB_STATE__JOB_STATE_RUNNING) {
    left = j.total - j.success - j.errors;
    if (left < 1) left = 1; /* not counted yet, or settling */
  }
  job_free(&j);
  return left;
}

/* Opens the store, the Kafka producers, the resolver, the admin port, the
 * model service channel and the watch thread, and fills the run options.
 * 0, or -1 after logging. */
static int build(const bok_config_t *cfg, void *app, bok_rpc_run_opts_t *run) {
  job_app_t *a = app;
  char msg[512];
  bok_err_t err;
  a->store = job_store_open(bok_config_get(cfg, "db", ".run/data/jobs.db"), &err);
  if (!a->store) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "%s", err.msg);
    return -1;
  }
  int n = job_store_fail_interrupted(a->store);
  if (n) bok_logf(bok_log_stderr, COMP, BOK_LOG_WARN, "%d interrupted uploads marked FAILED", n);
  a->rows = row_pool_new(cfg, bok_log_stderr, COMP, msg, sizeof msg);
  if (!a->rows) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "Kafka: %s", msg);
    return -1;
  }
  row_pool_set_outstanding(a->rows, job_outstanding, a->store);
  /* Settles uploads and results the previous incarnation left open (the
   * pool's init_transactions has fenced its transactions by now). */
  a->resolver = resolver_start(a->store, a->rows, (int)bok_config_get_int(cfg, "resolver.interval_ms", 1000),
                               (int)bok_config_get_int(cfg, "resolver.stage_age_ms", 3000), bok_log_stderr, COMP);
  /* Jobs become final once their events are readable (finalizer.h). */
  a->finalizer = finalizer_start(cfg, a->store, bok_log_stderr, COMP, msg, sizeof msg);
  if (!a->finalizer) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "Kafka: %s", msg);
    return -1;
  }
  a->obs = job_obs_start(cfg, a->store, a->rows, bok_log_stderr, COMP, msg, sizeof msg);
  if (!a->obs) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "%s", msg);
    return -1;
  }
  a->models = bok_rpc_channel_new(bok_config_get(cfg, "model_service", "127.0.0.1:50051"));
  a->watch = job_watch_start(a->store, NULL, 100, bok_log_stderr, COMP);
  if (!a->watch) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "cannot start the watch thread");
    return -1;
  }
  a->svc = (job_service_t){.store = a->store,
                           .rows = a->rows,
                           .models = a->models,
                           .max_row_bytes = (size_t)bok_config_get_int(cfg, "max_row_bytes", 1 << 20),
                           .log = bok_log_stderr,
                           .log_opaque = COMP,
                           .watch = a->watch};
  /* bounds what an upload stream buffers ahead of its rows producer (docs/CONFIG.md) */
  int64_t window_kb = bok_config_get_int(cfg, "upload_window_kbytes", 4096);
  size_t window = window_kb > 0 ? (size_t)window_kb << 10 : 0; /* 0: gRPC's default */
  *run = (bok_rpc_run_opts_t){.default_listen = "127.0.0.1:50052", .max_message = 64u << 20, .stream_window = window,
                              .ready = job_obs_ready, .ready_ud = a->obs, .add_methods = add_methods, .ud = &a->svc};
  return 0;
}

/* After the server is gone: the parts in reverse order (NULL ones skipped). */
static void teardown(void *app) {
  job_app_t *a = app;
  resolver_stop(a->resolver);
  finalizer_stop(a->finalizer);
  job_watch_stop(a->watch);
  job_obs_stop(a->obs);
  bok_rpc_channel_destroy(a->models);
  row_pool_destroy(a->rows);
  job_store_close(a->store);
}

int main(int argc, char **argv) {
  job_app_t app = {0};
  bok_rpc_service_t svc = {"bok-job-service", KNOWN_KEYS, BOK_RPC_ROLE_JOB_SERVICE, COMP, &app, build, teardown};
  return bok_rpc_service_main(argc, argv, &svc);
}
