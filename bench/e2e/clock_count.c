/* clock_count.c -- an LD_PRELOAD shim for bench/e2e/profile_worker.py
 * --count-clock (docs/PERFORMANCE.md, "round 3"): per thread, the
 * clock_gettime calls, the waits (cnd_wait/cnd_timedwait, pthread_cond_*,
 * poll with a timeout), and the "bursts": runs of >= BURST clock_gettime calls
 * with no wait between them -- a busy loop, such as librdkafka 2.0.2's main
 * thread serving its queue with a 0 ms timeout until a timer < 1 ms away
 * fires -- with the calls and the wall time they span. Written to
 * $CGCOUNT_OUT.<pid> every second and at exit, one line per thread.
 * Not part of the build: profile_worker.py compiles it with cc into a temp
 * dir (cc -O2 -shared -fPIC clock_count.c -ldl -lpthread). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 1024
#define BURST 50
typedef struct {
  int tid;
  char name[17];
  unsigned long calls, waits, bursts, burst_calls, burst_ns;
  unsigned long run;        /* calls since the last wait */
  long long run_t0, last_t; /* ns */
} slot_t;
static slot_t slots[SLOTS];
static atomic_int nslots;
static __thread slot_t *me;
static int (*real_cg)(clockid_t, struct timespec *);
static int (*real_tw)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
static int (*real_w)(pthread_cond_t *, pthread_mutex_t *);

static slot_t *mine(void) {
  if (!me) {
    int i = atomic_fetch_add(&nslots, 1);
    if (i >= SLOTS) return NULL;
    me = &slots[i];
    me->tid = (int)syscall(SYS_gettid);
  }
  return me;
}
static void end_run(slot_t *s) {
  if (s->run >= BURST) {
    s->bursts++;
    s->burst_calls += s->run;
    s->burst_ns += (unsigned long)(s->last_t - s->run_t0);
  }
  s->run = 0;
}
int clock_gettime(clockid_t c, struct timespec *ts) {
  if (!real_cg) real_cg = dlsym(RTLD_NEXT, "clock_gettime");
  int r = real_cg(c, ts);
  slot_t *s = mine();
  if (s) {
    long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec;
    if (c != CLOCK_MONOTONIC) { struct timespec m; real_cg(CLOCK_MONOTONIC, &m); t = (long long)m.tv_sec * 1000000000LL + m.tv_nsec; }
    if (s->run == 0) s->run_t0 = t;
    s->last_t = t;
    s->run++;
    if ((s->calls++ & 1023) == 0) prctl(PR_GET_NAME, s->name, 0, 0, 0);
  }
  return r;
}
int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *ts) {
  if (!real_tw) real_tw = dlsym(RTLD_NEXT, "pthread_cond_timedwait");
  slot_t *s = mine();
  if (s) { s->waits++; end_run(s); }
  return real_tw(c, m, ts);
}
int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
  if (!real_w) real_w = dlsym(RTLD_NEXT, "pthread_cond_wait");
  slot_t *s = mine();
  if (s) { s->waits++; end_run(s); }
  return real_w(c, m);
}
static int (*real_ctw)(cnd_t *, mtx_t *, const struct timespec *);
static int (*real_cw)(cnd_t *, mtx_t *);
static int (*real_poll)(struct pollfd *, nfds_t, int);
int cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *ts) {
  if (!real_ctw) real_ctw = dlsym(RTLD_NEXT, "cnd_timedwait");
  slot_t *s = mine();
  if (s) { s->waits++; end_run(s); }
  return real_ctw(c, m, ts);
}
int cnd_wait(cnd_t *c, mtx_t *m) {
  if (!real_cw) real_cw = dlsym(RTLD_NEXT, "cnd_wait");
  slot_t *s = mine();
  if (s) { s->waits++; end_run(s); }
  return real_cw(c, m);
}
int poll(struct pollfd *f, nfds_t n, int t) {
  if (!real_poll) real_poll = dlsym(RTLD_NEXT, "poll");
  slot_t *s = mine();
  if (s && t != 0) { s->waits++; end_run(s); }
  return real_poll(f, n, t);
}
static void dump(void) {
  const char *o = getenv("CGCOUNT_OUT");
  if (!o) return;
  char p[512], t[520];
  snprintf(p, sizeof p, "%s.%d", o, (int)getpid());
  snprintf(t, sizeof t, "%s.tmp", p);
  FILE *f = fopen(t, "w");
  if (!f) return;
  int n = atomic_load(&nslots);
  if (n > SLOTS) n = SLOTS;
  for (int i = 0; i < n; i++) {
    slot_t *s = &slots[i];
    fprintf(f, "%d %s calls=%lu waits=%lu bursts=%lu burst_calls=%lu burst_ms=%.1f\n", s->tid, s->name[0] ? s->name : "?",
            s->calls, s->waits, s->bursts, s->burst_calls, s->burst_ns / 1e6);
  }
  fclose(f);
  rename(t, p);
}
static void *dumper(void *a) {
  (void)a;
  for (;;) { sleep(1); dump(); }
  return NULL;
}
__attribute__((constructor)) static void init(void) {
  if (!getenv("CGCOUNT_OUT")) return;
  pthread_t th;
  pthread_create(&th, NULL, dumper, NULL);
  pthread_detach(th);
}
__attribute__((destructor)) static void fini(void) { dump(); }
