/* bok-worker: validates rows from Kafka and publishes events.
 *
 * Runs `lanes` worker loops (worker.h: each its own consumer-group member and
 * transactional producer) on as many threads. main: config, gRPC security,
 * build (admin port, lanes), wait for SIGTERM/SIGINT or a lane that ends
 * (lib/rpc bok_signals_wait), stop every lane, join, tear down.
 * A lane never exits on a Kafka or peer outage: it aborts, re-creates its
 * producer when abort cannot help, and retries with back-off. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"
#include "worker.h"
#include "worker_obs.h"

#define MAX_LANES 16
#define COMP ((void *)"worker")

/* Every key this binary reads (README "Ports and configuration"); others are
 * refused at start with their file:line. */
static const char *const KNOWN_KEYS[] = {"worker_id", "lanes:int", "kafka.brokers", "kafka.rows_topic", "kafka.group_id", "kafka.transactions:bool", "kafka.transaction_timeout_ms:int", "kafka.events_partitions:int", "kafka.replication_factor:int", "kafka.min_insync_replicas:int", "kafka.batch_max_rows:int", "kafka.batch_max_bytes:int", "kafka.batch_max_ms:int", "kafka.txn_max_rows:int", "kafka.txn_max_ms:int", "kafka.express_partitions:int", "kafka.tenant_stripes:int", "kafka.fetch_buffer_kbytes:int", "kafka.produce_buffer_kbytes:int", "kafka.producer.*", "kafka.consumer.*", "kafka.events_topic.*", "routes.default.model", "routes.default.job", "routes.tenants.*", "log_level:level", "log_format:format", "metrics_listen", BOK_RPC_TLS_KEYS, "rpc.worker_token_file", NULL};

typedef struct {
  worker_t *w;
  pthread_t th;
  int rc;
  int wake_fd; /* a lane that ends writes here: the process goes down */
} lane_t;

/* The worker's parts (main owns them; lane i's thread owns lanes[i].w's loop). */
typedef struct {
  worker_obs_t *obs;
  lane_t lanes[MAX_LANES];
  int nlanes, started;
  int wake[2];
} worker_app_t;

static void *lane_main(void *arg) {
  lane_t *l = arg;
  l->rc = worker_run(l->w);
  char c = 'x'; /* stop or fatal error: main stops the other lanes */
  ssize_t wr = write(l->wake_fd, &c, 1);
  (void)wr;
  return NULL;
}

/* Creates n lanes (each its own consumer and producer) and one thread per
 * lane. 0 ok; -1 after logging (the lanes made so far are kept for teardown). */
static int start_lanes(const bok_config_t *cfg, worker_app_t *a, int n) {
  static const char *names[MAX_LANES] = {"worker",    "worker.1",  "worker.2",  "worker.3",
                                         "worker.4",  "worker.5",  "worker.6",  "worker.7",
                                         "worker.8",  "worker.9",  "worker.10", "worker.11",
                                         "worker.12", "worker.13", "worker.14", "worker.15"};
  for (int i = 0; i < n; i++) {
    char err[512];
    worker_t *w = worker_new(cfg, i, bok_log_stderr, (void *)names[i], err, sizeof err);
    if (!w) {
      bok_logf(bok_log_stderr, (void *)names[i], BOK_LOG_ERROR, "cannot start: %s", err);
      return -1;
    }
    a->lanes[a->nlanes++] = (lane_t){.w = w, .wake_fd = a->wake[1]};
  }
  for (int i = 0; i < a->nlanes; i++) {
    if (pthread_create(&a->lanes[i].th, NULL, lane_main, &a->lanes[i]) != 0) {
      bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "cannot start lane %d", i);
      return -1;
    }
    a->started++;
  }
  return 0;
}

/* The admin port, the wake pipe and the lanes. 0, or -1 after logging. */
static int build(const bok_config_t *cfg, worker_app_t *a, int n) {
  char err[512];
  a->obs = worker_obs_start(cfg, bok_log_stderr, COMP, err, sizeof err);
  if (!a->obs) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "cannot start: %s", err);
    return -1;
  }
  if (pipe2(a->wake, O_CLOEXEC) != 0) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "cannot start: pipe");
    return -1;
  }
  return start_lanes(cfg, a, n);
}

/* Stops every lane, joins the started ones; their exit code (0 = all ok). */
static int stop_lanes(worker_app_t *a) {
  int rc = 0;
  for (int i = 0; i < a->nlanes; i++) worker_stop(a->lanes[i].w);
  for (int i = 0; i < a->started; i++) {
    pthread_join(a->lanes[i].th, NULL);
    if (a->lanes[i].rc) rc = a->lanes[i].rc;
  }
  return rc;
}

static void teardown(worker_app_t *a) {
  worker_obs_stop(a->obs);
  for (int i = 0; i < a->nlanes; i++) worker_destroy(a->lanes[i].w);
  if (a->wake[0] >= 0) close(a->wake[0]);
  if (a->wake[1] >= 0) close(a->wake[1]);
}

int main(int argc, char **argv) {
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args_checked(argc, argv, "bok-worker", KNOWN_KEYS, &rc);
  if (!cfg) return rc;
  int64_t n = bok_config_get_int(cfg, "lanes", 4);
  if (n < 1 || n > MAX_LANES) {
    bok_logf(bok_log_stderr, COMP, BOK_LOG_ERROR, "lanes must be 1..%d, got %lld", MAX_LANES, (long long)n);
    bok_config_destroy(cfg);
    return 2;
  }
  worker_app_t app = {.wake = {-1, -1}};
  /* Before any channel: TLS material and the worker token it sends. */
  if (bok_rpc_security_init(cfg, BOK_RPC_ROLE_WORKER, bok_log_stderr, COMP, "cannot start: ") != 0) {
    bok_config_destroy(cfg);
    return 1;
  }
  bok_signals_block(NULL); /* every thread from here on leaves the signals to the wait */
  rc = build(cfg, &app, (int)n) == 0 ? 0 : 1;
  if (rc == 0) bok_signals_wait(app.wake[0], 1, NULL, NULL);
  int lanes_rc = stop_lanes(&app);
  if (lanes_rc) rc = lanes_rc;
  teardown(&app);
  return bok_rpc_main_end(cfg, rc);
}
