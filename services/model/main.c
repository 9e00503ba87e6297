/* bok-model-service: owns models (gRPC batch.v1.ModelService). */
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"
#include "model_service.h"

int main(int argc, char **argv) {
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args(argc, argv, "bok-model-service", &rc);
  if (!cfg) return rc;
  void *comp = "model-service";
  bok_err_t err;
  bok_rpc_server_t *srv = NULL;
  model_store_t *store = model_store_open(bok_config_get(cfg, "db", ".run/data/models.db"), &err);
  if (!store) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "%s", err.msg);
    goto out;
  }
  model_service_t svc = {store, bok_config_get(cfg, "events_topic_prefix", "bok.events")};
  bok_rpc_server_opts_t opts = {.addr = bok_config_get(cfg, "listen", "127.0.0.1:50051"),
                                .threads = (int)bok_config_get_int(cfg, "threads", 8),
                                .log = bok_log_stderr,
                                .log_opaque = comp};
  srv = bok_rpc_server_new(&opts, &err);
  if (!srv || model_service_register(srv, &svc) != 0 || bok_rpc_server_start(srv, &err) < 0) {
    bok_logf(bok_log_stderr, comp, BOK_LOG_ERROR, "cannot start: %s", err.msg);
    goto out;
  }
  bok_rpc_server_wait(srv, 1);
  rc = 0;
out:
  bok_rpc_server_destroy(srv);
  model_store_close(store);
  bok_config_destroy(cfg);
  return rc;
}
