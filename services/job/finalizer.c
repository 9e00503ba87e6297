/* finalizer.c -- settling jobs become final once their events are readable
 * (finalizer.h).
 *
 * Design: the store's settle hook only signals the condition variable; the
 * thread lists the settling jobs, keeps one high-watermark snapshot per job
 * (taken the first time it sees the job, with a read_uncommitted client), and
 * compares it with each partition's last stable offset (a read_committed
 * client's ListOffsets answers the LSO). Snapshots of jobs no longer settling
 * are dropped at each pass. Kafka errors leave the job for the next pass.
 *
 * Recovery: the torture run once left a job RUNNING for good after a broker
 * restart -- every row counted, every event readable by any other client --
 * while this thread's queries never saw it (issue 11). So the two clients
 * are not trusted for ever: when no query has succeeded for QUERY_FAIL_MS,
 * or a job has lagged for RENEW_MS since the clients were made, both are
 * destroyed and made again (fresh connections and metadata). Snapshots are
 * kept: they are facts about the log, not about a client. A lagging job is
 * logged every SLOW_WARN_MS with what each client answered. Each pass first
 * asks for the topic's current partition leaders, and every offset query
 * has a deadline (end_offsets): a query sent to a leader that died is
 * retried there, and librdkafka 2.0.2's rd_kafka_query_watermark_offsets
 * waits for it without one, so a job that settled during a failover stayed
 * RUNNING for minutes (test_finalizer.c). */
#include "finalizer.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bok/fault.h"
#include "bok/kafka.h"
#include "bok/util.h"

#define MAX_PARTS 1024
#define PASS_MS 500         /* a pass at least this often (a restart leaves settling jobs without a kick) */
#define SLOW_WARN_MS 30000  /* log a job still settling after this long, and again as often */
#define QUERY_FAIL_MS 10000 /* no query answered for this long: new clients */
#define RENEW_MS 60000      /* a job lagging this long since the clients were made: new clients */

typedef struct {
  char job_id[64];
  int nparts;
  int64_t *hw;     /* per partition: the snapshot */
  int64_t since;   /* first seen (ms) */
  int64_t warned;  /* last warning (ms), 0 none */
  int seen;
} snap_t;

struct finalizer {
  job_store_t *store;
  const bok_config_t *cfg; /* borrowed: outlives the finalizer (new clients) */
  rd_kafka_t *ru, *rc; /* read_uncommitted (high watermarks), read_committed (LSOs); thread only after start */
  int64_t clients_ms;  /* when ru and rc were made */
  int64_t answered_ms; /* last query Kafka answered */
  int renewals;        /* clients made again (tests, logs) */
  bok_log_fn log;
  void *lo;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop, kicked;
  snap_t *snaps;
  size_t nsnaps;
};

#define LOGF(f, lvl, ...) bok_logf((f)->log, (f)->lo, lvl, __VA_ARGS__)

static void kick(void *ud, const char *job_id) {
  (void)job_id;
  finalizer_t *f = ud;
  pthread_mutex_lock(&f->mu);
  f->kicked = 1;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* Partition count of `topic`; -1 when Kafka did not answer or does not know
 * the topic (a job that published events has one: right after a broker
 * restart the metadata may lag, and finishing then would be early). */
static int partitions(finalizer_t *f, const char *topic) {
  rd_kafka_topic_t *t = rd_kafka_topic_new(f->ru, topic, NULL);
  if (!t) return -1;
  const struct rd_kafka_metadata *md = NULL;
  int n = -1;
  if (rd_kafka_metadata(f->ru, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
    const struct rd_kafka_metadata_topic *mt = &md->topics[0];
    if (mt->err == RD_KAFKA_RESP_ERR_NO_ERROR && mt->partition_cnt > 0)
      n = mt->partition_cnt > MAX_PARTS ? MAX_PARTS : mt->partition_cnt;
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  return n;
}

/* Asks any live broker for the topic's partition leaders, so the next
 * watermark queries go to the current ones: a query sent to a leader that
 * died is not answered, whatever its timeout, until librdkafka's request
 * times out, and is then retried there (test_finalizer.c: a job settling
 * during a failover stayed RUNNING for minutes). Errors are ignored: the
 * queries then fail as before. */
static void refresh_leaders(rd_kafka_t *rk, const char *topic) {
  rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
  if (!t) return;
  const struct rd_kafka_metadata *md = NULL;
  if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
}

/* Each partition's end offset in out[0..n-1]: the high watermark for a
 * read_uncommitted client, the last stable offset for a read_committed one
 * (ListOffsets "latest" answers per the client's isolation level). One
 * request per leader, and the call returns within QUERY_MS whatever the
 * brokers do: librdkafka 2.0.2's rd_kafka_query_watermark_offsets waits for
 * its answer without a deadline, and one bound to a leader that died kept
 * this thread for minutes (test_finalizer.c). A partition Kafka answered
 * with an error gets -1 and its index in *bad; the first error is returned. */
#define QUERY_MS 5000
static rd_kafka_resp_err_t end_offsets(rd_kafka_t *rk, const char *topic, int n, int64_t *out, int *bad) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  if (!l) return RD_KAFKA_RESP_ERR__FAIL;
  for (int p = 0; p < n; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_END;
  rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, QUERY_MS);
  for (int p = 0; p < n; p++) out[p] = -1;
  for (int i = 0; !e && i < l->cnt; i++) {
    const rd_kafka_topic_partition_t *t = &l->elems[i];
    if (t->partition < 0 || t->partition >= n) continue;
    if (t->err || t->offset < 0) {
      e = t->err ? t->err : RD_KAFKA_RESP_ERR__BAD_MSG;
      *bad = t->partition;
    } else {
      out[t->partition] = t->offset;
    }
  }
  rd_kafka_topic_partition_list_destroy(l);
  return e;
}

/* The job's snapshot, taken now if it has none. NULL when Kafka did not
 * answer (next pass). */
static snap_t *snapshot(finalizer_t *f, const job_settling_t *j) {
  for (size_t i = 0; i < f->nsnaps; i++)
    if (strcmp(f->snaps[i].job_id, j->job_id) == 0) return &f->snaps[i];
  int n = partitions(f, j->topic);
  if (n < 0) return NULL;
  int64_t *hw = calloc((size_t)n, sizeof *hw);
  if (!hw) return NULL;
  int bad = 0;
  if (end_offsets(f->ru, j->topic, n, hw, &bad) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    free(hw);
    return NULL;
  }
  f->answered_ms = bok_mono_ms();
  snap_t *grown = realloc(f->snaps, (f->nsnaps + 1) * sizeof *grown);
  if (!grown) {
    free(hw);
    return NULL;
  }
  f->snaps = grown;
  snap_t *s = &f->snaps[f->nsnaps++];
  memset(s, 0, sizeof *s);
  snprintf(s->job_id, sizeof s->job_id, "%s", j->job_id);
  s->nparts = n;
  s->hw = hw;
  s->since = bok_mono_ms();
  return s;
}

/* What the first partition behind its snapshot showed. */
typedef struct {
  int part;
  int64_t lso; /* -1 when Kafka did not answer */
  rd_kafka_resp_err_t err;
} lag_t;

/* 1 when every partition's LSO has reached the snapshot, else 0 (*lag says
 * which partition is behind and why). */
static int readable(finalizer_t *f, const char *topic, const snap_t *s, lag_t *lag) {
  refresh_leaders(f->rc, topic);
  int64_t *lso = malloc((size_t)s->nparts * sizeof *lso);
  if (!lso) {
    *lag = (lag_t){0, -1, RD_KAFKA_RESP_ERR__FAIL};
    return 0;
  }
  int bad = 0;
  rd_kafka_resp_err_t e = end_offsets(f->rc, topic, s->nparts, lso, &bad);
  if (!f->renewals && bok_fault_fails("job.finalizer_query")) e = RD_KAFKA_RESP_ERR__TIMED_OUT;
  int ok = 1;
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    *lag = (lag_t){bad, -1, e};
    ok = 0;
  } else {
    f->answered_ms = bok_mono_ms();
    for (int p = 0; ok && p < s->nparts; p++)
      if (lso[p] < s->hw[p]) {
        *lag = (lag_t){p, lso[p], e};
        ok = 0;
      }
  }
  free(lso);
  return ok;
}

/* librdkafka's request timeout (socket.timeout.ms, default 60 s): a request
 * to a leader that died is given up after this long, so the metadata
 * requests (refresh_leaders, partitions) are not left queued behind it.
 * end_offsets has its own deadline. */
#define CLIENT_REQUEST_TIMEOUT_MS "5000"

static rd_kafka_t *client(const bok_config_t *cfg, const char *isolation, char *err, size_t errlen) {
  const char *defaults[] = {"enable.auto.commit", "false", "isolation.level", isolation,
                            "socket.timeout.ms", CLIENT_REQUEST_TIMEOUT_MS, NULL};
  rd_kafka_conf_t *conf = bok_kafka_conf_new(cfg, defaults, NULL, err, errlen);
  return conf ? bok_kafka_client_new(RD_KAFKA_CONSUMER, conf, 0, err, errlen) : NULL;
}

/* Makes both clients again (see the design note); keeps the old ones when
 * new ones cannot be made. Finalizer thread only. */
static void renew_clients(finalizer_t *f, const char *why) {
  char err[256] = "";
  rd_kafka_t *ru = client(f->cfg, "read_uncommitted", err, sizeof err);
  rd_kafka_t *rc = ru ? client(f->cfg, "read_committed", err, sizeof err) : NULL;
  if (!rc) {
    if (ru) rd_kafka_destroy(ru);
    LOGF(f, BOK_LOG_WARN, "finalizer: cannot make new Kafka clients (%s): %s", why, err);
    return;
  }
  rd_kafka_destroy(f->ru);
  rd_kafka_destroy(f->rc);
  f->ru = ru;
  f->rc = rc;
  f->clients_ms = f->answered_ms = bok_mono_ms();
  f->renewals++;
  LOGF(f, BOK_LOG_WARN, "finalizer: new Kafka clients: %s", why);
}

/* A job still behind its snapshot: logged every SLOW_WARN_MS with the
 * partition's LSO and high watermark as Kafka answers them now. */
static void warn_lagging(finalizer_t *f, const job_settling_t *j, snap_t *s, const lag_t *lag) {
  int64_t now = bok_mono_ms();
  if (now - s->since <= SLOW_WARN_MS || now - s->warned < SLOW_WARN_MS) return;
  s->warned = now;
  int64_t *now_hw = malloc((size_t)s->nparts * sizeof *now_hw), hw = -1;
  int bad = 0;
  if (now_hw && end_offsets(f->ru, j->topic, s->nparts, now_hw, &bad) == RD_KAFKA_RESP_ERR_NO_ERROR) hw = now_hw[lag->part];
  free(now_hw);
  LOGF(f, BOK_LOG_WARN, "job %s: every row counted %lld ms ago, its events are not readable yet: %s[%d] last "
       "stable offset %lld < %lld (high watermark now %lld%s%s)", j->job_id, (long long)(now - s->since), j->topic,
       lag->part, (long long)lag->lso, (long long)s->hw[lag->part], (long long)hw,
       lag->err ? "; " : ": a transaction still open there", lag->err ? rd_kafka_err2str(lag->err) : "");
}

static void drop_unseen(finalizer_t *f) {
  size_t k = 0;
  for (size_t i = 0; i < f->nsnaps; i++) {
    if (f->snaps[i].seen) {
      f->snaps[i].seen = 0;
      f->snaps[k++] = f->snaps[i];
    } else {
      free(f->snaps[i].hw);
    }
  }
  f->nsnaps = k;
}

/* New clients when jobs are settling and Kafka has not answered for
 * QUERY_FAIL_MS, or a job has lagged RENEW_MS since the clients were made. */
static void maybe_renew(finalizer_t *f, size_t settling) {
  if (!settling) return;
  int64_t now = bok_mono_ms(), oldest = now;
  for (size_t i = 0; i < f->nsnaps; i++)
    if (f->snaps[i].since < oldest) oldest = f->snaps[i].since;
  if (now - f->answered_ms >= QUERY_FAIL_MS) renew_clients(f, "no query answered for 10 s");
  else if (now - oldest >= RENEW_MS && now - f->clients_ms >= RENEW_MS)
    renew_clients(f, "a job has waited 60 s for its events to become readable");
}

/* One pass; *left = jobs still settling after it. Returns how many became final. */
static int pass(finalizer_t *f, size_t *left) {
  job_settling_t *jobs = NULL;
  size_t n = 0;
  bok_err_t err;
  int done = 0;
  *left = 0;
  if (job_store_settling(f->store, &jobs, &n, &err) != 0) return 0;
  for (size_t i = 0; i < n; i++) {
    snap_t *s = snapshot(f, &jobs[i]);
    if (!s) continue;
    s->seen = 1;
    lag_t lag;
    if (readable(f, jobs[i].topic, s, &lag)) {
      if (job_store_finish_settled(f->store, jobs[i].job_id, &err) == 0) done++;
      s->seen = 0; /* dropped below */
    } else {
      warn_lagging(f, &jobs[i], s, &lag);
    }
  }
  *left = n - (size_t)done;
  free(jobs);
  drop_unseen(f);
  maybe_renew(f, *left);
  return done;
}

int finalizer_pass(finalizer_t *f) {
  size_t left;
  return pass(f, &left);
}

/* Waits for a kick or `ms`; f->mu held. */
static void wait_ms(finalizer_t *f, int ms) {
  if (f->kicked || f->stop) return;
  /* f->cv is a default (CLOCK_REALTIME) condvar. */
  struct timespec ts = bok_time_deadline(CLOCK_REALTIME, ms);
  pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

/* Markers are normally written within milliseconds of the commit's answer:
 * a kicked pass is followed by passes 5, 10, 20 ... ms apart (at most
 * MAX_RETRY_MS) while jobs are left, then one every PASS_MS. */
#define FIRST_RETRY_MS 5
#define MAX_RETRY_MS 250

static void *run(void *arg) {
  finalizer_t *f = arg;
  int delay = PASS_MS;
  pthread_mutex_lock(&f->mu);
  while (!f->stop) {
    wait_ms(f, delay);
    if (f->stop) break;
    int kicked = f->kicked;
    f->kicked = 0;
    pthread_mutex_unlock(&f->mu);
    size_t left = 0;
    pass(f, &left);
    pthread_mutex_lock(&f->mu);
    if (!left) delay = PASS_MS;
    else if (kicked) delay = FIRST_RETRY_MS;
    else delay = delay * 2 > MAX_RETRY_MS ? MAX_RETRY_MS : delay * 2;
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

finalizer_t *finalizer_start(const bok_config_t *cfg, job_store_t *store, bok_log_fn log, void *log_opaque,
                             char *err, size_t errlen) {
  finalizer_t *f = calloc(1, sizeof *f);
  if (!f) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  f->store = store;
  f->cfg = cfg;
  f->log = log;
  f->lo = log_opaque;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  if (!(f->ru = client(cfg, "read_uncommitted", err, errlen)) || !(f->rc = client(cfg, "read_committed", err, errlen)))
    goto fail;
  f->clients_ms = f->answered_ms = bok_mono_ms();
  job_store_set_settle(store, kick, f);
  if (pthread_create(&f->th, NULL, run, f) != 0) {
    job_store_set_settle(store, NULL, NULL);
    snprintf(err, errlen, "cannot start the finalizer thread");
    goto fail;
  }
  return f;
fail:
  if (f->ru) rd_kafka_destroy(f->ru);
  if (f->rc) rd_kafka_destroy(f->rc);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
  return NULL;
}

void finalizer_stop(finalizer_t *f) {
  if (!f) return;
  job_store_set_settle(f->store, NULL, NULL);
  pthread_mutex_lock(&f->mu);
  f->stop = 1;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
  pthread_join(f->th, NULL);
  for (size_t i = 0; i < f->nsnaps; i++) free(f->snaps[i].hw);
  free(f->snaps);
  rd_kafka_destroy(f->ru);
  rd_kafka_destroy(f->rc);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
}
