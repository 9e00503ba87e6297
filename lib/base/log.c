/* log.c -- structured log lines (bok/log.h), logfmt or JSON, to stderr;
 * one write(2) per line, so threads may log at once. */
#include "bok/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int g_min_level = BOK_LOG_INFO;

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

static volatile int g_format = BOK_LOG_FORMAT_LOGFMT;
static _Thread_local char t_tenant[72];
static _Thread_local char t_job[40];

void bok_log_set_format(bok_log_format_t f) { g_format = (int)f; }

int bok_log_format_parse(const char *s, bok_log_format_t *out) {
  if (s && strcasecmp(s, "logfmt") == 0) return *out = BOK_LOG_FORMAT_LOGFMT, 0;
  if (s && strcasecmp(s, "json") == 0) return *out = BOK_LOG_FORMAT_JSON, 0;
  return -1;
}

void bok_log_ctx_set(const char *tenant, const char *job) {
  snprintf(t_tenant, sizeof t_tenant, "%s", tenant ? tenant : "");
  snprintf(t_job, sizeof t_job, "%s", job ? job : "");
}

void bok_log_ctx_clear(void) { t_tenant[0] = t_job[0] = '\0'; }

typedef struct {
  char *p;
  size_t left;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (n > o->left) n = o->left;
  memcpy(o->p, s, n);
  o->p += n;
  o->left -= n;
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

/* A value quoted for logfmt (json = 0) or as a JSON string (json = 1). */
static void put_quoted(out_t *o, const char *s, int json) {
  put(o, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c;
      put(o, esc, 2);
    } else if (c == '\n') {
      put(o, "\\n", 2);
    } else if (c == '\r') {
      put(o, "\\r", 2);
    } else if (c == '\t') {
      put(o, "\\t", 2);
    } else if (c < 0x20 || c == 0x7f) {
      int n = snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x", c);
      put(o, esc, (size_t)n);
    } else {
      put(o, (const char *)&c, 1);
    }
  }
  put(o, "\"", 1);
}

static void field(out_t *o, const char *key, const char *val, int json, int first, int quote) {
  if (json) {
    if (!first) put(o, ",", 1);
    put_quoted(o, key, 1);
    put(o, ":", 1);
    put_quoted(o, val, 1);
    return;
  }
  if (!first) put(o, " ", 1);
  puts_(o, key);
  put(o, "=", 1);
  if (quote)
    put_quoted(o, val, 0);
  else
    puts_(o, val);
}

static const char *level_lower(bok_log_level_t l) {
  switch (l) {
    case BOK_LOG_DEBUG: return "debug";
    case BOK_LOG_INFO: return "info";
    case BOK_LOG_WARN: return "warn";
    case BOK_LOG_ERROR: return "error";
  }
  return "info";
}

void bok_log_format_line(char *buf, size_t cap, bok_log_format_t fmt, const char *ts, bok_log_level_t level,
                         const char *component, const char *tenant, const char *job, const char *msg) {
  out_t o = {buf, cap - 3}; /* room for the closing brace, newline and NUL */
  int json = fmt == BOK_LOG_FORMAT_JSON;
  if (json) put(&o, "{", 1);
  field(&o, "ts", ts, json, 1, 0);
  field(&o, "level", level_lower(level), json, 0, 0);
  field(&o, "component", component, json, 0, 0);
  if (tenant && tenant[0]) field(&o, "tenant", tenant, json, 0, 1);
  if (job && job[0]) field(&o, "job", job, json, 0, 0);
  field(&o, "msg", msg, json, 0, 1);
  o.left += 2;
  if (json) put(&o, "}", 1);
  put(&o, "\n", 1);
  *o.p = '\0';
}

void bok_log_stderr(void *opaque, bok_log_level_t level, const char *msg) {
  if ((int)level < g_min_level) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[64];
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
  char line[4600];
  bok_log_format_line(line, sizeof line, (bok_log_format_t)g_format, ts, level,
                      opaque ? (const char *)opaque : "bok", t_tenant, t_job, msg);
  /* One write per line keeps lines whole across threads. */
  ssize_t w = write(STDERR_FILENO, line, strlen(line));
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
