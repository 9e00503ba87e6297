/* fault.c -- the BOK_FAULT fault points (fault.h): parsed once from the
 * environment into a small fixed table; a hit counter per entry decides when
 * kill/exit/killafter fire. Never used unless a test sets BOK_FAULT. */
#include "bok/fault.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FAULTS 16

enum { F_KILL, F_EXIT, F_DELAY, F_KILLAFTER, F_FAIL };

typedef struct {
  char point[64];
  int action;
  long ms;
  long nth; /* fire on this hit (kill/exit/killafter) */
  atomic_long hits;
} fault_t;

static fault_t g_faults[MAX_FAULTS];
static int g_nfaults;
static atomic_int g_loaded; /* 0 not read, 1 read */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int parse_one(const char *s, size_t len, fault_t *f) {
  char buf[128];
  if (len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *colon = strchr(buf, ':');
  if (!colon || colon == buf || (size_t)(colon - buf) >= sizeof f->point) return -1;
  *colon = '\0';
  memset(f, 0, sizeof *f);
  memcpy(f->point, buf, (size_t)(colon - buf) + 1);
  char *act = colon + 1;
  char *at = strchr(act, '@');
  f->nth = 1;
  if (at) {
    *at = '\0';
    f->nth = strtol(at + 1, NULL, 10);
    if (f->nth < 1) f->nth = 1;
  }
  if (strcmp(act, "kill") == 0) {
    f->action = F_KILL;
  } else if (strcmp(act, "exit") == 0) {
    f->action = F_EXIT;
  } else if (strncmp(act, "delay=", 6) == 0) {
    f->action = F_DELAY;
    f->ms = strtol(act + 6, NULL, 10);
  } else if (strcmp(act, "fail") == 0) {
    f->action = F_FAIL;
  } else if (strncmp(act, "killafter=", 10) == 0) {
    f->action = F_KILLAFTER;
    f->ms = strtol(act + 10, NULL, 10);
  } else {
    return -1;
  }
  if (f->ms < 0 || f->ms > 3600000) f->ms = 0;
  return 0;
}

static void load(void) {
  g_nfaults = 0;
  const char *env = getenv("BOK_FAULT");
  while (env && *env && g_nfaults < MAX_FAULTS) {
    const char *end = strchr(env, ',');
    size_t len = end ? (size_t)(end - env) : strlen(env);
    if (parse_one(env, len, &g_faults[g_nfaults]) == 0) g_nfaults++;
    env = end ? end + 1 : NULL;
  }
  atomic_store(&g_loaded, 1);
}

void bok_fault_reload(void) { load(); }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void *killer(void *arg) {
  sleep_ms((long)(intptr_t)arg);
  kill(getpid(), SIGKILL);
  return NULL;
}

static void fire(fault_t *f) {
  if (f->action == F_FAIL) return; /* bok_fault_fails() */
  if (f->action == F_DELAY) {
    sleep_ms(f->ms);
    return;
  }
  if (atomic_fetch_add(&f->hits, 1) + 1 != f->nth) return;
  static const char msg[] = "fault point fired\n";
  if (write(2, msg, sizeof msg - 1) < 0) { /* best effort */
  }
  if (f->action == F_KILL) kill(getpid(), SIGKILL);
  if (f->action == F_EXIT) _exit(3);
  if (f->action == F_KILLAFTER) {
    pthread_t t;
    if (pthread_create(&t, NULL, killer, (void *)(intptr_t)f->ms) == 0) pthread_detach(t);
  }
}

void bok_fault(const char *point) {
  if (!atomic_load_explicit(&g_loaded, memory_order_acquire)) pthread_once(&g_once, load);
  for (int i = 0; i < g_nfaults; i++)
    if (strcmp(g_faults[i].point, point) == 0) fire(&g_faults[i]);
}

int bok_fault_fails(const char *point) {
  if (!atomic_load_explicit(&g_loaded, memory_order_acquire)) pthread_once(&g_once, load);
  for (int i = 0; i < g_nfaults; i++)
    if (g_faults[i].action == F_FAIL && strcmp(g_faults[i].point, point) == 0) return 1;
  return 0;
}
