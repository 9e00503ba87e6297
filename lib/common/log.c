#include "bok/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int g_min_level = BOK_LOG_INFO;

static const char *level_name(bok_log_level_t l) {
  switch (l) {
    case BOK_LOG_DEBUG: return "DEBUG";
    case BOK_LOG_INFO: return "INFO";
    case BOK_LOG_WARN: return "WARN";
    case BOK_LOG_ERROR: return "ERROR";
  }
  return "?";
}

void bok_log_set_level(bok_log_level_t level) { g_min_level = (int)level; }

int bok_log_level_parse(const char *s, bok_log_level_t *out) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++) {
    if (s && strcasecmp(s, names[i]) == 0) {
      *out = (bok_log_level_t)i;
      return 0;
    }
  }
  return -1;
}

void bok_log_stderr(void *opaque, bok_log_level_t level, const char *msg) {
  if ((int)level < g_min_level) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char line[4096];
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: %s\n",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (int)(tv.tv_usec / 1000), level_name(level),
                   opaque ? (const char *)opaque : "bok", msg);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) {
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  /* One write per line keeps lines whole across threads. */
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

void bok_vlogf(bok_log_fn fn, void *opaque, bok_log_level_t level, const char *fmt, va_list ap) {
  if (!fn) return;
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  fn(opaque, level, msg);
}

void bok_logf(bok_log_fn fn, void *opaque, bok_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bok_vlogf(fn, opaque, level, fmt, ap);
  va_end(ap);
}
