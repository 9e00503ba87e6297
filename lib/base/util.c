/* util.c -- small helpers (bok/util.h): clocks, ISO 8601 times, UUIDs,
 * tenant name checks, mkdir -p for a file's folder. No state. */
#include "bok/util.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <uuid/uuid.h>

int64_t bok_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bok_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec bok_timespec_add_ms(struct timespec t, int64_t ms) {
  /* Whole seconds and the remainder separately, so no ms * 1e6 overflow. */
  int64_t nsec = (int64_t)t.tv_nsec + (ms % 1000) * 1000000;
  int64_t sec = (int64_t)t.tv_sec + ms / 1000 + nsec / 1000000000;
  nsec %= 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    sec -= 1;
  }
  t.tv_sec = (time_t)sec;
  t.tv_nsec = (long)nsec;
  return t;
}

struct timespec bok_time_deadline(clockid_t clock, int64_t ms) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return bok_timespec_add_ms(ts, ms);
}

void bok_iso8601_ms(int64_t ms, char out[32]) {
  /* Years stay 4 digits for any sane epoch; the buffer is sized for the worst case. */
  time_t s = (time_t)(ms / 1000);
  int milli = (int)(ms % 1000);
  if (milli < 0) {
    milli += 1000;
    s -= 1;
  }
  struct tm tm;
  gmtime_r(&s, &tm);
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
  memcpy(out, tmp, 31);
  out[31] = 0;
}

void bok_uuid_new(char out[37]) {
  uuid_t u;
  uuid_generate_random(u);
  uuid_unparse_lower(u, out);
}

int bok_uuid_valid(const char *s) {
  if (!s || strlen(s) != 36) return 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
    } else if (!isxdigit((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}

int bok_tenant_valid(const char *s, size_t len) {
  if (!s || len < 1 || len > 64) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(isalnum(c) || c == '.' || c == '_' || c == '-')) return 0;
  }
  return 1;
}

int bok_mkdirs_for(const char *path) {
  char buf[1024];
  if (strlen(path) >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(buf, path);
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  }
  return 0;
}
