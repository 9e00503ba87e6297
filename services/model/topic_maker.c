/* topic_maker.c -- the model service's events-topic maker (topic_maker.h).
 *
 * One thread and a ring of topic names under a mutex. The serving threads
 * only copy a name in and signal; the thread takes one name at a time and
 * calls bok_kafka_events_topic_ensure (lib/kafka: the settings every events
 * topic gets), trying a topic up to TRIES times, RETRY_MS apart, while Kafka
 * does not answer or refuses. What happened is logged and counted
 * (bok_model_events_topics_made_total / _failed_total). */
#include "topic_maker.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bok/kafka.h"
#include "bok/metrics.h"
#include "bok/util.h"

#define QUEUE_MAX 256
#define TRIES 3
#define RETRY_MS 2000
#define CREATE_TIMEOUT_MS 5000 /* a stop waits for one try: at most ~7.5 s with the metadata ask */

struct topic_maker {
  const bok_config_t *cfg; /* borrowed */
  bok_log_fn log;
  void *log_ud;
  rd_kafka_t *rk; /* owned; admin requests only */
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *queue[QUEUE_MAX]; /* owned names, ring from head, n of them; mu */
  int head, n, stop;      /* mu */
  bok_metric_t *made, *failed;
};

/* Waits up to ms, or until stop. Returns stop. mu held. */
static int wait_locked(topic_maker_t *tm, int ms) {
  /* tm->cv is a default (CLOCK_REALTIME) condvar. */
  struct timespec ts = bok_time_deadline(CLOCK_REALTIME, ms);
  while (!tm->stop && pthread_cond_timedwait(&tm->cv, &tm->mu, &ts) == 0) {
  }
  return tm->stop;
}

/* Makes one topic, retrying; logs the outcome. Called without mu. */
static void make_one(topic_maker_t *tm, const char *topic) {
  char err[300] = "";
  for (int t = 1; t <= TRIES; t++) {
    if (bok_kafka_events_topic_ensure(tm->rk, tm->cfg, topic, CREATE_TIMEOUT_MS, err, sizeof err) == 0) {
      bok_counter_inc(tm->made);
      bok_logf(tm->log, tm->log_ud, BOK_LOG_INFO, "events topic %s ready", topic);
      return;
    }
    pthread_mutex_lock(&tm->mu);
    int stop = t < TRIES ? wait_locked(tm, RETRY_MS) : tm->stop;
    pthread_mutex_unlock(&tm->mu);
    if (stop) break;
  }
  bok_counter_inc(tm->failed);
  bok_logf(tm->log, tm->log_ud, BOK_LOG_WARN, "events topic %s not made (%s): a worker makes it at the model's first job",
           topic, err);
}

static void *run(void *arg) {
  topic_maker_t *tm = arg;
  pthread_mutex_lock(&tm->mu);
  for (;;) {
    while (!tm->stop && tm->n == 0) pthread_cond_wait(&tm->cv, &tm->mu);
    if (tm->stop) break;
    char *topic = tm->queue[tm->head];
    tm->head = (tm->head + 1) % QUEUE_MAX;
    tm->n--;
    pthread_mutex_unlock(&tm->mu);
    make_one(tm, topic);
    free(topic);
    pthread_mutex_lock(&tm->mu);
  }
  pthread_mutex_unlock(&tm->mu);
  return NULL;
}

/* The admin client: never lets a metadata request make the broker create a
 * topic with its own defaults (bok_kafka_topic_ensure then asks first). */
static rd_kafka_t *new_client(const bok_config_t *cfg, char *err, size_t errlen) {
  static const char *const defaults[] = {"allow.auto.create.topics", "false", "client.id", "bok-model-service", NULL};
  rd_kafka_conf_t *conf = bok_kafka_conf_new(cfg, defaults, "kafka.producer.", err, errlen);
  return conf ? bok_kafka_client_new(RD_KAFKA_PRODUCER, conf, -1, err, errlen) : NULL;
}

topic_maker_t *topic_maker_start(const bok_config_t *cfg, bok_log_fn log, void *log_ud, char *err, size_t errlen) {
  if (errlen) err[0] = '\0';
  const char *brokers = bok_config_get(cfg, "kafka.brokers", NULL);
  if (!brokers || !brokers[0]) return NULL; /* off: the workers make the topics */
  topic_maker_t *tm = calloc(1, sizeof *tm);
  if (!tm) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  *tm = (topic_maker_t){.cfg = cfg, .log = log, .log_ud = log_ud};
  tm->rk = new_client(cfg, err, errlen);
  if (!tm->rk) goto fail;
  bok_metrics_t *m = bok_metrics_default();
  tm->made = bok_metrics_counter(m, "bok_model_events_topics_made_total",
                                 "events topics made (or found made) when their model was made");
  tm->failed = bok_metrics_counter(m, "bok_model_events_topics_failed_total",
                                   "events topics not made with their model (a worker makes them at the first job)");
  pthread_mutex_init(&tm->mu, NULL);
  pthread_cond_init(&tm->cv, NULL);
  if (pthread_create(&tm->th, NULL, run, tm) != 0) {
    snprintf(err, errlen, "cannot start the events-topic thread");
    pthread_cond_destroy(&tm->cv);
    pthread_mutex_destroy(&tm->mu);
    goto fail;
  }
  return tm;
fail:
  if (tm->rk) rd_kafka_destroy(tm->rk);
  free(tm);
  return NULL;
}

void topic_maker_add(topic_maker_t *tm, const char *topic) {
  if (!tm || !topic || !topic[0]) return;
  char *copy = strdup(topic);
  pthread_mutex_lock(&tm->mu);
  int full = tm->n == QUEUE_MAX || !copy;
  if (!full) {
    tm->queue[(tm->head + tm->n) % QUEUE_MAX] = copy;
    tm->n++;
    pthread_cond_signal(&tm->cv);
  }
  pthread_mutex_unlock(&tm->mu);
  if (full) {
    free(copy);
    bok_logf(tm->log, tm->log_ud, BOK_LOG_WARN, "events topic %s not queued (%d waiting): a worker makes it", topic,
             QUEUE_MAX);
  }
}

void topic_maker_stop(topic_maker_t *tm) {
  if (!tm) return;
  pthread_mutex_lock(&tm->mu);
  tm->stop = 1;
  pthread_cond_broadcast(&tm->cv);
  pthread_mutex_unlock(&tm->mu);
  pthread_join(tm->th, NULL);
  for (int i = 0; i < tm->n; i++) free(tm->queue[(tm->head + i) % QUEUE_MAX]);
  pthread_cond_destroy(&tm->cv);
  pthread_mutex_destroy(&tm->mu);
  rd_kafka_destroy(tm->rk);
  free(tm);
}
