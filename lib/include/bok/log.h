/* bok/log.h -- one-line-per-event logging for binaries.
 *
 * Libraries in lib/ never print: they take a bok_log_fn from their caller.
 * Binaries pass bok_log_stderr (or their own) and set the level once at start.
 * Thread-safe: every call writes one whole line with a single write(2).
 */
#ifndef BOK_LOG_H
#define BOK_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
  BOK_LOG_DEBUG = 0,
  BOK_LOG_INFO = 1,
  BOK_LOG_WARN = 2,
  BOK_LOG_ERROR = 3
} bok_log_level_t;

/* A log sink. `msg` is one line without a trailing newline; it is only valid
 * during the call. May be called from any thread. */
typedef void (*bok_log_fn)(void *opaque, bok_log_level_t level, const char *msg);

/* Writes one line per event to stderr, logfmt (default):
 *   ts=2026-11-28T18:00:00.000Z level=info component=job tenant="acme" job=<uuid> msg="..."
 * or JSON: {"ts":"...","level":"info","component":"job","tenant":"acme","job":"...","msg":"..."}.
 * tenant and job come from the calling thread's context (bok_log_ctx_set)
 * and are left out when empty. `opaque` is the component name (const char *,
 * may be NULL). */
void bok_log_stderr(void *opaque, bok_log_level_t level, const char *msg);

/* Minimum level that bok_log_stderr prints; default INFO. */
void bok_log_set_level(bok_log_level_t level);
/* Parses "debug"/"info"/"warn"/"error"; returns -1 on anything else. */
int bok_log_level_parse(const char *s, bok_log_level_t *out);

typedef enum { BOK_LOG_FORMAT_LOGFMT = 0, BOK_LOG_FORMAT_JSON = 1 } bok_log_format_t;
void bok_log_set_format(bok_log_format_t f);
/* "logfmt" / "json"; -1 on anything else. */
int bok_log_format_parse(const char *s, bok_log_format_t *out);

/* The calling thread's log context: lines it logs carry tenant= and job=
 * until cleared. Copies both (NULL or "" = none). Thread-local: gRPC handlers
 * set it per call, workers per message. */
void bok_log_ctx_set(const char *tenant, const char *job);
void bok_log_ctx_clear(void);

/* One formatted line (with its newline, NUL-terminated, cut to cap) into buf:
 * what bok_log_stderr writes; exposed for tests. */
void bok_log_format_line(char *buf, size_t cap, bok_log_format_t fmt, const char *ts, bok_log_level_t level,
                         const char *component, const char *tenant, const char *job, const char *msg);

/* Formats and forwards to `fn` (no-op when fn is NULL). */
void bok_logf(bok_log_fn fn, void *opaque, bok_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void bok_vlogf(bok_log_fn fn, void *opaque, bok_log_level_t level, const char *fmt, va_list ap);

#endif
