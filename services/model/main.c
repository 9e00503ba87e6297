/* bok-model-service: owns models (gRPC batch.v1.ModelService) and, with
 * `kafka.brokers` set, makes each model's events topic when the model is
 * made (topic_maker.c).
 * main: config, gRPC security, build (store, readiness, admin port, topic
 * maker), run the server until SIGINT/SIGTERM (lib/rpc bok_rpc_run), tear
 * down. */
#include <stdio.h>
#include <string.h>

#include "bok/admin_http.h"
#include "bok/config.h"
#include "bok/log.h"
#include "bok/metrics.h"
#include "bok/rpc.h"
#include "model_service.h"

#define COMP ((void *)"model-service")

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"listen", "db", "threads:int", "events_topic_prefix", "kafka.brokers", "kafka.events_partitions:int", "kafka.replication_factor:int", "kafka.min_insync_replicas:int", "kafka.events_topic.*", "kafka.producer.*", "log_level:level", "log_format:format", "metrics_listen", BOK_RPC_TLS_KEYS, NULL};

/* The service's parts (main owns them; the handlers borrow them). */
typedef struct {
  model_store_t *store;
  bok_ready_cache_t *ready;
  bok_admin_http_t *admin;
  topic_maker_t *topics;
  model_service_t svc;
} model_app_t;

/* Readiness: the database answers (probed every 2 s by a ready cache). */
static int db_probe(void *ud, char *reason, size_t n) {
  bok_err_t err;
  if (model_store_ping(ud, &err) == 0) return 1;
  snprintf(reason, n, "database: %s", err.msg);
  return 0;
}

static int add_methods(bok_rpc_server_t *s, void *svc) { return model_service_register(s, svc); }

/* Opens the store, starts readiness and the admin port, fills the run
 * options. 0, or -1 after logging. */
static int build(const bok_config_t *cfg, void *app, bok_rpc_run_opts_t *run) {
  model_app_t *a = app;
  bok_err_t err;
  char msg[512];
  a->store = model_store_open(bok_config_get(cfg, "db", ".run/data/models.db"), &err);
  if (!a->store) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "%s", err.msg);
    return -1;
  }
  a->ready = bok_ready_cache_start(db_probe, a->store, 2000);
  bok_admin_http_opts_t ao = {bok_config_get(cfg, "metrics_listen", "127.0.0.1:9101"), bok_metrics_default(),
                              bok_ready_cache_get, a->ready, bok_log_stderr, COMP};
  a->admin = bok_admin_http_start(&ao, msg, sizeof msg);
  if (!a->admin && msg[0]) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "%s", msg);
    return -1;
  }
  a->topics = topic_maker_start(cfg, bok_log_stderr, COMP, msg, sizeof msg);
  if (!a->topics && msg[0]) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "kafka: %s", msg);
    return -1;
  }
  a->svc = (model_service_t){a->store, bok_config_get(cfg, "events_topic_prefix", "bok.events"), a->topics};
  *run = (bok_rpc_run_opts_t){.default_listen = "127.0.0.1:50051", .ready = bok_ready_cache_get, .ready_ud = a->ready,
                              .add_methods = add_methods, .ud = &a->svc};
  return 0;
}

static void teardown(void *app) {
  model_app_t *a = app;
  bok_admin_http_stop(a->admin);
  topic_maker_stop(a->topics);
  bok_ready_cache_stop(a->ready);
  model_store_close(a->store);
}

int main(int argc, char **argv) {
  model_app_t app = {0};
  bok_rpc_service_t svc = {"bok-model-service", KNOWN_KEYS, BOK_RPC_ROLE_SERVICE, COMP, &app, build, teardown};
  return bok_rpc_service_main(argc, argv, &svc);
}
