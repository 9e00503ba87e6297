/* body_pages.c -- keeps large upload bodies out of RSS (contract:
 * body_pages.h): drops the pages of a file-backed body already sent, and a
 * sweeper thread pages out every large h2o body file mapping every 50 ms --
 * walking /proc/self/maps only when the process's resident file-backed
 * pages grew by 8 MiB since the last walk (/proc/self/statm: no VMA walk),
 * so an idle or JSON-only gateway never pays for the maps walk (it took a
 * quarter of the gateway's CPU under GET load: issue 20). */
#include "body_pages.h"

#include <h2o/memory.h>
#include <h2o/socket.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bok/util.h"

int gw_body_file_backed(const void *p, size_t len) {
  if (!p || len < (32u << 20)) return 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  uintptr_t a = (uintptr_t)p, b = a + len;
  char line[512];
  int ok = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off, inode;
    char perms[8], dev[16];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &lo, &hi, perms, &off, dev, &inode, &path_at) < 6) continue;
    if (a >= lo && b <= hi) {
      /* shared ('s'), backed by a file (an inode) */
      ok = perms[3] == 's' && inode != 0;
      break;
    }
  }
  fclose(f);
  return ok;
}

void gw_body_release(const void *base, size_t from, size_t to) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)base + from + page - 1) & ~(page - 1);
  uintptr_t hi = ((uintptr_t)base + to) & ~(page - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

int gw_body_sweep(void) {
  /* "/tmp/h2o.b.XXXXXX" -> "/tmp/h2o.b." */
  const char *tmpl = h2o_socket_buffer_mmap_settings.fn_template;
  size_t plen = strcspn(tmpl, "X");
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  struct {
    uintptr_t lo, hi;
  } hit[64];
  int n = 0;
  char line[4096 + 128];
  while (n < 64 && fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off, inode;
    char perms[8], dev[16];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &lo, &hi, perms, &off, dev, &inode, &path_at) < 6) continue;
    if (perms[3] != 's' || inode == 0 || hi - lo < (32ul << 20) || path_at == 0) continue;
    if (strncmp(line + path_at, tmpl, plen) != 0) continue;
    hit[n].lo = lo;
    hit[n].hi = hi;
    n++;
  }
  fclose(f);
  for (int i = 0; i < n; i++) madvise((void *)hit[i].lo, hit[i].hi - hit[i].lo, MADV_PAGEOUT);
  return n;
}

/* Resident shared (file-backed) pages of this process, from /proc/self/statm
 * (its third field: counters, no walk of the mappings); -1 when unreadable. */
static long resident_shared_pages(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size, resident, shared;
  int n = fscanf(f, "%ld %ld %ld", &size, &resident, &shared);
  fclose(f);
  return n == 3 ? shared : -1;
}

/* A body being received grows the resident file-backed pages (its mapping
 * is a shared file): walk the maps once they grew by this much since the
 * last walk (h2o's threshold is 32 MiB, so a body mapping shows up long
 * before it matters). */
#define SWEEP_GROWTH_BYTES (8l << 20)

static pthread_t g_sweeper;
static int g_sweeper_on;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_stop;

static void *sweeper_main(void *arg) {
  (void)arg;
  long base = -1; /* resident shared pages after the last walk (or the lowest since) */
  long growth = SWEEP_GROWTH_BYTES / sysconf(_SC_PAGESIZE);
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    pthread_mutex_unlock(&g_mu);
    long now = resident_shared_pages();
    if (now < 0 || base < 0 || now >= base + growth) {
      gw_body_sweep();
      base = resident_shared_pages();
    } else if (now < base) {
      base = now;
    }
    pthread_mutex_lock(&g_mu);
    /* g_cv is PTHREAD_COND_INITIALIZER: CLOCK_REALTIME. */
    struct timespec ts = bok_time_deadline(CLOCK_REALTIME, 50);
    if (!g_stop) pthread_cond_timedwait(&g_cv, &g_mu, &ts);
  }
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

int gw_body_sweeper_start(void) {
  if (g_sweeper_on) return 0;
  g_stop = 0;
  if (pthread_create(&g_sweeper, NULL, sweeper_main, NULL) != 0) return -1;
  g_sweeper_on = 1;
  return 0;
}

void gw_body_sweeper_stop(void) {
  if (!g_sweeper_on) return;
  pthread_mutex_lock(&g_mu);
  g_stop = 1;
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  pthread_join(g_sweeper, NULL);
  g_sweeper_on = 0;
}
