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
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args(argc, argv, "bok-worker", &rc);
  if (!cfg) return rc;
  char err[512];
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
  rc = worker_run(g_worker);
  worker_destroy(g_worker);
  bok_config_destroy(cfg);
  return rc;
}
