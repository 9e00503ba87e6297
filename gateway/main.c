/* bok-gateway: the JSON REST API in front of the gRPC services. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "gateway.h"

int main(int argc, char **argv) {
  const char *cfg_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      cfg_path = argv[++i];
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("usage: bok-gateway [--config FILE]\n"
             "The Batch-on-Kafka REST gateway (keys: deploy/config/gateway.yaml; env BOK_<KEY>, TENANT_HEADER).\n");
      return 0;
    } else {
      fprintf(stderr, "usage: bok-gateway [--config FILE]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  char err[512];
  bok_config_t *cfg = bok_config_load(cfg_path, err, sizeof err);
  if (!cfg) {
    fprintf(stderr, "bok-gateway: %s\n", err);
    return 1;
  }
  bok_log_level_t lvl;
  if (bok_log_level_parse(bok_config_get(cfg, "log_level", "info"), &lvl) == 0) bok_log_set_level(lvl);
  int rc = 1;
  gw_server_t *s = gw_server_new(cfg, bok_log_stderr, "gateway", err, sizeof err);
  if (!s || gw_server_start(s, err, sizeof err) < 0) {
    bok_logf(bok_log_stderr, "gateway", BOK_LOG_ERROR, "cannot start: %s", err);
    goto out;
  }
  gw_server_wait(s, 1);
  rc = 0;
out:
  gw_server_destroy(s);
  bok_config_destroy(cfg);
  return rc;
}
