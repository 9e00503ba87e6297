/* bok-worker: validates rows from Kafka and publishes events. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "worker.h"

static worker_t *g_worker;

static void on_signal(int sig) {
  (void)sig;
  if (g_worker) worker_stop(g_worker);
}

int main(int argc, char **argv) {
  const char *cfg_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      cfg_path = argv[++i];
    } else {
      fprintf(stderr, "usage: bok-worker [--config FILE]\n");
      return 2;
    }
  }
  char err[512];
  bok_config_t *cfg = bok_config_load(cfg_path, err, sizeof err);
  if (!cfg) {
    fprintf(stderr, "bok-worker: %s\n", err);
    return 1;
  }
  bok_log_level_t lvl;
  if (bok_log_level_parse(bok_config_get(cfg, "log_level", "info"), &lvl) == 0) bok_log_set_level(lvl);
  g_worker = worker_new(cfg, bok_log_stderr, "worker", err, sizeof err);
  if (!g_worker) {
    bok_logf(bok_log_stderr, "worker", BOK_LOG_ERROR, "cannot start: %s", err);
    bok_config_destroy(cfg);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int rc = worker_run(g_worker);
  worker_destroy(g_worker);
  bok_config_destroy(cfg);
  return rc;
}
