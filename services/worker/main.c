/* bok-worker: validates rows from Kafka and publishes events.
 *
 * Runs `lanes` worker loops (worker.h: each its own consumer-group member and
 * transactional producer) on as many threads; SIGTERM/SIGINT stop them all.
 * A lane never exits on a Kafka or peer outage: it aborts, re-creates its
 * producer when abort cannot help, and retries with back-off. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"
#include "worker.h"
#include "worker_obs.h"

#define MAX_LANES 16

static worker_t *g_lanes[MAX_LANES];
static int g_nlanes;

static void stop_all(void) {
  for (int i = 0; i < g_nlanes; i++)
    if (g_lanes[i]) worker_stop(g_lanes[i]);
}

static void on_signal(int sig) {
  (void)sig;
  stop_all();
}

typedef struct {
  worker_t *w;
  int rc;
} lane_t;

static void *lane_main(void *arg) {
  lane_t *l = arg;
  l->rc = worker_run(l->w);
  stop_all(); /* one lane down (stop or fatal error): the process goes down */
  return NULL;
}

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"worker_id", "lanes:int", "kafka.brokers", "kafka.rows_topic", "kafka.group_id", "kafka.transactions:bool", "kafka.transaction_timeout_ms:int", "kafka.events_partitions:int", "kafka.batch_max_rows:int", "kafka.batch_max_ms:int", "kafka.express_partitions:int", "kafka.producer.*", "kafka.consumer.*", "kafka.events_topic.*", "routes.default.model", "routes.default.job", "routes.tenants.*", "log_level:level", "log_format:format", "metrics_listen", BOK_RPC_TLS_KEYS, "rpc.worker_token_file", NULL};

/* Creates n lanes into g_lanes (each its own consumer and producer). 0 ok. */
static int create_lanes(const bok_config_t *cfg, int n) {
  static const char *names[MAX_LANES] = {"worker",    "worker.1",  "worker.2",  "worker.3",
                                         "worker.4",  "worker.5",  "worker.6",  "worker.7",
                                         "worker.8",  "worker.9",  "worker.10", "worker.11",
                                         "worker.12", "worker.13", "worker.14", "worker.15"};
  for (int i = 0; i < n; i++) {
    char err[512];
    worker_t *w = worker_new(cfg, i, bok_log_stderr, (void *)names[i], err, sizeof err);
    if (!w) {
      bok_logf(bok_log_stderr, (void *)names[i], BOK_LOG_ERROR, "cannot start: %s", err);
      return 1;
    }
    g_lanes[g_nlanes++] = w;
  }
  return 0;
}

/* One thread per lane; the threads keep the stop signals blocked (the main
 * thread takes them). 0 ok; on failure the started lanes are stopped. */
static int start_lanes(lane_t *lanes, pthread_t *th, int *started) {
  for (int i = 0; i < g_nlanes; i++) {
    lanes[i].w = g_lanes[i];
    lanes[i].rc = 0;
    if (pthread_create(&th[i], NULL, lane_main, &lanes[i]) != 0) {
      bok_logf(bok_log_stderr, "worker", BOK_LOG_ERROR, "cannot start lane %d", i);
      stop_all();
      return 1;
    }
    (*started)++;
  }
  return 0;
}

int main(int argc, char **argv) {
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args_checked(argc, argv, "bok-worker", KNOWN_KEYS, &rc);
  if (!cfg) return rc;
  int64_t n = bok_config_get_int(cfg, "lanes", 4);
  if (n < 1 || n > MAX_LANES) {
    bok_logf(bok_log_stderr, "worker", BOK_LOG_ERROR, "lanes must be 1..%d, got %lld", MAX_LANES, (long long)n);
    bok_config_destroy(cfg);
    return 2;
  }
  /* Before any channel: TLS material and the worker token it sends. */
  bok_err_t serr;
  if (bok_rpc_security_from_config(cfg, BOK_RPC_ROLE_WORKER, &serr) != 0) {
    bok_logf(bok_log_stderr, "worker", BOK_LOG_ERROR, "cannot start: %s", serr.msg);
    bok_config_destroy(cfg);
    return 1;
  }
  char sdesc[200];
  bok_rpc_security_describe(sdesc, sizeof sdesc);
  bok_logf(bok_log_stderr, "worker", BOK_LOG_INFO, "gRPC security: %s", sdesc);
  /* Block the stop signals until every lane exists, so none is missed. */
  sigset_t stop_sigs, old;
  sigemptyset(&stop_sigs);
  sigaddset(&stop_sigs, SIGINT);
  sigaddset(&stop_sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_sigs, &old);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  char oerr[512];
  worker_obs_t *obs = worker_obs_start(cfg, bok_log_stderr, "worker", oerr, sizeof oerr);
  if (!obs) {
    bok_logf(bok_log_stderr, "worker", BOK_LOG_ERROR, "cannot start: %s", oerr);
    bok_config_destroy(cfg);
    return 1;
  }
  lane_t lanes[MAX_LANES];
  pthread_t th[MAX_LANES];
  int started = 0;
  rc = create_lanes(cfg, (int)n);
  if (rc == 0) rc = start_lanes(lanes, th, &started);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  for (int i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    if (lanes[i].rc) rc = lanes[i].rc;
  }
  worker_obs_stop(obs);
  for (int i = 0; i < g_nlanes; i++) worker_destroy(g_lanes[i]);
  bok_rpc_security_reset();
  bok_config_destroy(cfg);
  bok_metrics_default_free();
  return rc;
}
