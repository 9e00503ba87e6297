/* job_watch.h -- JobService/WatchJob: live job state for many watchers.
 *
 * The store calls job_watch_changed() (its change hook) whenever a job's
 * state or counters may have changed. One watch thread reads a watched job
 * from the store once per change (at most every min_interval_ms per job, 100
 * by default: ~10 updates/s), whatever the number of its watchers, and
 * writes the job to each of them; a finished job's final state is always
 * sent, then its streams end with OK. Watchers that went away are dropped on
 * the next pass (at least once a second). */
#ifndef JOB_WATCH_H
#define JOB_WATCH_H

#include "bok/log.h"
#include "bok/rpc.h"
#include "job_store.h"

/* Where updates go: bok_rpc_sstream_* by default (tests pass fakes). */
typedef struct {
  int (*write)(void *w, const ProtobufCMessage *msg); /* 0 sent/queued */
  void (*close)(void *w);                             /* ends OK */
  void (*fail)(void *w, bok_err_code_t code, const char *msg);
  int (*alive)(void *w);
  void (*release)(void *w);
} job_watch_sink_t;

typedef struct job_watch job_watch_t;

/* Starts the watch thread and sets the store's change hook. sink NULL: gRPC
 * streams. min_interval_ms <= 0: 100. NULL if the thread cannot start. */
job_watch_t *job_watch_start(job_store_t *store, const job_watch_sink_t *sink, int min_interval_ms,
                             bok_log_fn log, void *log_opaque);
/* Clears the hook, stops the thread, ends every watcher (UNAVAILABLE) and
 * releases it. NULL is fine. */
void job_watch_stop(job_watch_t *jw);
/* Adds a watcher of job_id (the caller checked the tenant); takes over its
 * reference. It gets the job's current state within min_interval_ms, then
 * every change. -1 (watcher not taken) when stopping or out of memory. */
int job_watch_add(job_watch_t *jw, const char *job_id, void *watcher);
/* The store's change hook (store lock held): marks the job if watched. */
void job_watch_changed(void *jw, const char *job_id);
/* Jobs read from the store so far (tests: one read per change, not per
 * watcher). */
uint64_t job_watch_reads(job_watch_t *jw);

#endif
