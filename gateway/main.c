/* bok-gateway: the JSON REST API in front of the gRPC services.
 * main: config, build and start the server (gateway.c), wait for
 * SIGINT/SIGTERM (SIGHUP re-reads the API keys; lib/rpc bok_signals_wait
 * inside gw_server_wait), drain, tear down. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "gateway.h"

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"listen", "threads:int", "tenant_header", "max_json_body:int", "max_upload_body:int", "rpc_timeout_ms:int", "request_timeout_ms:int", "header_timeout_ms:int", "keepalive_timeout_ms:int", "max_connections_per_ip:int", "shutdown_drain_ms:int", "access_log:bool", "auth.required:bool", "auth.api_keys.*", "routes.default.model", "routes.default.job", "routes.tenants.*", "log_level:level", "log_format:format", "rpc.tls.ca", "rpc.tls.cert", "rpc.tls.key", NULL};

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("usage: bok-gateway [--config FILE]\n"
             "The Batch-on-Kafka REST gateway (keys: deploy/config/gateway.yaml; env BOK_<KEY>, TENANT_HEADER).\n"
             "SIGHUP re-reads the config file's API keys (auth.*); SIGINT/SIGTERM stop.\n");
      return 0;
    }
  }
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args_checked(argc, argv, "bok-gateway", KNOWN_KEYS, &rc);
  if (!cfg) return rc;
  rc = 1;
  signal(SIGPIPE, SIG_IGN);
  char err[512];
  gw_server_t *s = gw_server_new(cfg, bok_log_stderr, "gateway", err, sizeof err);
  if (!s || gw_server_start(s, err, sizeof err) < 0) {
    bok_logf(bok_log_stderr, "gateway", BOK_LOG_ERROR, "cannot start: %s", err);
    goto out;
  }
  for (int i = 1; i + 1 < argc; i++) /* SIGHUP re-reads it (API keys) */
    if (strcmp(argv[i], "--config") == 0) gw_server_set_config_path(s, argv[i + 1]);
  gw_server_wait(s, 1);
  rc = 0;
out:
  gw_server_destroy(s);
  bok_config_destroy(cfg);
  return rc;
}
