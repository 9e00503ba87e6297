/* job_watch.c -- WatchJob's fan-out (job_watch.h): a registry of watched
 * jobs, each with its watchers, marked by the store's change hook and served
 * by one thread that reads each changed job once and writes it to every
 * watcher of that job.
 *
 * Locks: the store calls job_watch_changed() with its own lock held, which
 * then takes jw->mu; the watch thread never holds jw->mu while it reads the
 * store. Sink calls (gRPC stream writes: never blocking) run under jw->mu.
 * Only the watch thread removes jobs and watchers, so it may use a job entry
 * after dropping the lock to read the store. */
#include "job_watch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bok/util.h"
#include "job_proto.h"

#define SWEEP_MS 1000

typedef struct watcher {
  void *w;
  int sent; /* has had a state */
  struct watcher *next;
} watcher_t;

typedef struct wjob {
  char id[40];
  uint64_t version, read_version; /* changes seen / read: unequal = dirty */
  int64_t last_read;              /* monotonic ms of the last read (end of its delivery), 0 = never */
  int has_last;                   /* what the watchers were sent last */
  int64_t l_state, l_total, l_success, l_errors, l_updated;
  watcher_t *ws;
  struct wjob *next;
} wjob_t;

struct job_watch {
  job_store_t *store;
  job_watch_sink_t sink;
  int interval;
  bok_log_fn log;
  void *log_opaque;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int stop;
  wjob_t *jobs;
  uint64_t reads;
  int64_t last_sweep;
};

/* ---- the default sink: detached gRPC server streams ------------------------ */

static int s_write(void *w, const ProtobufCMessage *m) { return bok_rpc_sstream_write(w, m); }
static void s_close(void *w) { bok_rpc_sstream_end(w, BOK_OK, "%s", ""); }
static void s_fail(void *w, bok_err_code_t code, const char *msg) { bok_rpc_sstream_end(w, code, "%s", msg); }
static int s_alive(void *w) { return bok_rpc_sstream_alive(w); }
static void s_release(void *w) { bok_rpc_sstream_release(w); }
static const job_watch_sink_t RPC_SINK = {s_write, s_close, s_fail, s_alive, s_release};

/* ---- registry (jw->mu held) ---------------------------------------------------- */

static wjob_t *find_job(job_watch_t *jw, const char *id) {
  for (wjob_t *j = jw->jobs; j; j = j->next)
    if (strcmp(j->id, id) == 0) return j;
  return NULL;
}

static void remove_job(job_watch_t *jw, wjob_t *job) {
  for (wjob_t **p = &jw->jobs; *p; p = &(*p)->next) {
    if (*p == job) {
      *p = job->next;
      break;
    }
  }
  free(job);
}

/* Ends (code BOK_OK: closes) and releases every watcher of job, drops it. */
static void end_job(job_watch_t *jw, wjob_t *job, bok_err_code_t code, const char *msg) {
  for (watcher_t *w = job->ws, *n; w; w = n) {
    n = w->next;
    if (code == BOK_OK) jw->sink.close(w->w);
    else jw->sink.fail(w->w, code, msg);
    jw->sink.release(w->w);
    free(w);
  }
  job->ws = NULL;
  remove_job(jw, job);
}

/* Drops watchers whose client went away, and jobs nobody watches. */
static void sweep(job_watch_t *jw) {
  for (wjob_t *j = jw->jobs, *jn; j; j = jn) {
    jn = j->next;
    for (watcher_t **p = &j->ws; *p;) {
      watcher_t *w = *p;
      if (jw->sink.alive(w->w)) {
        p = &w->next;
        continue;
      }
      *p = w->next;
      jw->sink.release(w->w);
      free(w);
    }
    if (!j->ws) remove_job(jw, j);
  }
}

static int terminal(int state) {
  return state == BATCH__V1__JOB_STATE__JOB_STATE_SUCCESS || state == BATCH__V1__JOB_STATE__JOB_STATE_PARTIAL_SUCCESS ||
         state == BATCH__V1__JOB_STATE__JOB_STATE_FAILED || state == BATCH__V1__JOB_STATE__JOB_STATE_CANCELLED;
}

/* Sends what a read found to the job's watchers: everyone when it changed,
 * else only those who have had nothing yet; a final state ends the streams. */
static void deliver(job_watch_t *jw, wjob_t *job, const job_t *j) {
  int changed = !job->has_last || job->l_state != j->state || job->l_total != j->total ||
                job->l_success != j->success || job->l_errors != j->errors || job->l_updated != j->updated_at;
  job->has_last = 1;
  job->l_state = j->state;
  job->l_total = j->total;
  job->l_success = j->success;
  job->l_errors = j->errors;
  job->l_updated = j->updated_at;
  Batch__V1__Job p;
  job_to_proto(j, &p, bok_now_ms());
  for (watcher_t **pw = &job->ws; *pw;) {
    watcher_t *w = *pw;
    if ((changed || !w->sent) && jw->sink.write(w->w, &p.base) != 0) {
      *pw = w->next; /* gone (or ending): drop it */
      jw->sink.release(w->w);
      free(w);
      continue;
    }
    w->sent = 1;
    pw = &w->next;
  }
  job_proto_release(&p);
  /* The interval counts from the end of this delivery, not from the read:
   * a slow read or write (store lock, a busy machine) never brings two
   * messages to a watcher closer together than the interval. */
  job->last_read = bok_mono_ms();
  if (terminal(j->state)) end_job(jw, job, BOK_OK, "");
  else if (!job->ws) remove_job(jw, job);
}

/* ---- the watch thread ------------------------------------------------------ */

static void wait_ms(job_watch_t *jw, int64_t ms) {
  /* jw->cv waits on CLOCK_MONOTONIC (pthread_condattr_setclock in job_watch_start). */
  struct timespec ts = bok_time_deadline(CLOCK_MONOTONIC, ms);
  pthread_cond_timedwait(&jw->cv, &jw->mu, &ts);
}

/* The next dirty job whose interval has passed, or NULL and *wait set to
 * the time until one is due. */
static wjob_t *next_due(job_watch_t *jw, int64_t now, int64_t *wait) {
  *wait = SWEEP_MS;
  for (wjob_t *j = jw->jobs; j; j = j->next) {
    if (j->version == j->read_version) continue;
    int64_t at = j->last_read ? j->last_read + jw->interval : now;
    if (at <= now) return j;
    if (at - now < *wait) *wait = at - now;
  }
  return NULL;
}

static void *watch_main(void *arg) {
  job_watch_t *jw = arg;
  pthread_mutex_lock(&jw->mu);
  while (!jw->stop) {
    int64_t now = bok_mono_ms();
    if (now - jw->last_sweep >= SWEEP_MS) {
      sweep(jw);
      jw->last_sweep = now;
    }
    int64_t wait;
    wjob_t *job = next_due(jw, now, &wait);
    if (!job) {
      wait_ms(jw, wait);
      continue;
    }
    job->read_version = job->version;
    job->last_read = now;
    char id[40];
    memcpy(id, job->id, sizeof id);
    jw->reads++;
    pthread_mutex_unlock(&jw->mu);
    job_t j;
    bok_err_t err;
    int rc = job_store_get(jw->store, NULL, id, &j, &err);
    pthread_mutex_lock(&jw->mu);
    if (rc == 0) {
      deliver(jw, job, &j);
      job_free(&j);
    } else if (err.code == BOK_ERR_NOT_FOUND) {
      end_job(jw, job, BOK_ERR_NOT_FOUND, err.msg);
    } else { /* storage trouble: try again after the interval */
      bok_logf(jw->log, jw->log_opaque, BOK_LOG_WARN, "watch: job %s: %s", id, err.msg);
      job->read_version = job->version - 1;
    }
  }
  pthread_mutex_unlock(&jw->mu);
  return NULL;
}

/* ---- API ---------------------------------------------------------------------- */

void job_watch_changed(void *ud, const char *job_id) {
  job_watch_t *jw = ud;
  pthread_mutex_lock(&jw->mu);
  wjob_t *j = find_job(jw, job_id);
  if (j) {
    j->version++;
    pthread_cond_signal(&jw->cv);
  }
  pthread_mutex_unlock(&jw->mu);
}

job_watch_t *job_watch_start(job_store_t *store, const job_watch_sink_t *sink, int min_interval_ms,
                             bok_log_fn log, void *log_opaque) {
  job_watch_t *jw = calloc(1, sizeof *jw);
  if (!jw) return NULL;
  jw->store = store;
  jw->sink = sink ? *sink : RPC_SINK;
  jw->interval = min_interval_ms > 0 ? min_interval_ms : 100;
  jw->log = log;
  jw->log_opaque = log_opaque;
  pthread_mutex_init(&jw->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&jw->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&jw->th, NULL, watch_main, jw) != 0) {
    pthread_cond_destroy(&jw->cv);
    pthread_mutex_destroy(&jw->mu);
    free(jw);
    return NULL;
  }
  job_store_set_watch(store, job_watch_changed, jw);
  return jw;
}

void job_watch_stop(job_watch_t *jw) {
  if (!jw) return;
  job_store_set_watch(jw->store, NULL, NULL);
  pthread_mutex_lock(&jw->mu);
  jw->stop = 1;
  pthread_cond_signal(&jw->cv);
  pthread_mutex_unlock(&jw->mu);
  pthread_join(jw->th, NULL);
  while (jw->jobs) end_job(jw, jw->jobs, BOK_ERR_UNAVAILABLE, "job service shutting down");
  pthread_cond_destroy(&jw->cv);
  pthread_mutex_destroy(&jw->mu);
  free(jw);
}

int job_watch_add(job_watch_t *jw, const char *job_id, void *watcher) {
  watcher_t *w = calloc(1, sizeof *w);
  if (!w) return -1;
  w->w = watcher;
  pthread_mutex_lock(&jw->mu);
  wjob_t *j = jw->stop ? NULL : find_job(jw, job_id);
  if (!j && !jw->stop && (j = calloc(1, sizeof *j)) != NULL) {
    snprintf(j->id, sizeof j->id, "%s", job_id);
    j->next = jw->jobs;
    jw->jobs = j;
  }
  if (!j) {
    pthread_mutex_unlock(&jw->mu);
    free(w);
    return -1;
  }
  w->next = j->ws;
  j->ws = w;
  j->version++; /* the new watcher needs the current state */
  pthread_cond_signal(&jw->cv);
  pthread_mutex_unlock(&jw->mu);
  return 0;
}

uint64_t job_watch_reads(job_watch_t *jw) {
  pthread_mutex_lock(&jw->mu);
  uint64_t n = jw->reads;
  pthread_mutex_unlock(&jw->mu);
  return n;
}
