/* bok-model-service: owns models (gRPC batch.v1.ModelService). */
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"
#include "bok/admin_http.h"
#include "bok/metrics.h"
#include "model_service.h"

/* Readiness: the database answers (probed every 2 s by a ready cache). */
static int db_probe(void *ud, char *reason, size_t n) {
  bok_err_t err;
  if (model_store_ping(ud, &err) == 0) return 1;
  snprintf(reason, n, "database: %s", err.msg);
  return 0;
}

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"listen", "db", "threads:int", "events_topic_prefix", "log_level:level", "log_format:format", "metrics_listen", BOK_RPC_TLS_KEYS, NULL};

int main(int argc, char **argv) {
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args_checked(argc, argv, "bok-model-service", KNOWN_KEYS, &rc);
  if (!cfg) return rc;
  void *comp = "model-service";
  bok_err_t err;
  bok_rpc_server_t *srv = NULL;
  bok_ready_cache_t *ready = NULL;
  bok_admin_http_t *admin = NULL;
  char msg[512];
  model_store_t *store = NULL;
  if (bok_rpc_security_from_config(cfg, BOK_RPC_ROLE_SERVICE, &err) != 0) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", err.msg);
    goto out;
  }
  bok_rpc_security_describe(msg, sizeof msg);
  bok_logf(bok_log_stderr, comp, BOK_LOG_INFO, "gRPC security: %s", msg);
  store = model_store_open(bok_config_get(cfg, "db", ".run/data/models.db"), &err);
  if (!store) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", err.msg);
    goto out;
  }
  ready = bok_ready_cache_start(db_probe, store, 2000);
  bok_admin_http_opts_t ao = {bok_config_get(cfg, "metrics_listen", "127.0.0.1:9101"), bok_metrics_default(),
                              bok_ready_cache_get, ready, bok_log_stderr, comp};
  admin = bok_admin_http_start(&ao, msg, sizeof msg);
  if (!admin && msg[0]) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", msg);
    goto out;
  }
  model_service_t svc = {store, bok_config_get(cfg, "events_topic_prefix", "bok.events")};
  bok_rpc_server_opts_t opts = {.addr = bok_config_get(cfg, "listen", "127.0.0.1:50051"),
                                .threads = (int)bok_config_get_int(cfg, "threads", 8),
                                .log = bok_log_stderr,
                                .log_opaque = comp,
                                .ready = bok_ready_cache_get,
                                .ready_ud = ready};
  srv = bok_rpc_server_new(&opts, &err);
  if (!srv || model_service_register(srv, &svc) != 0 || bok_rpc_server_start(srv, &err) < 0) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "cannot start: %s", err.msg);
    goto out;
  }
  bok_rpc_server_wait(srv, 1);
  rc = 0;
out:
  bok_rpc_server_destroy(srv);
  bok_admin_http_stop(admin);
  bok_ready_cache_stop(ready);
  model_store_close(store);
  bok_rpc_security_reset();
  bok_config_destroy(cfg);
  bok_metrics_default_free();
  return rc;
}
