/* err.c -- the one error type (bok/err.h): setting, clearing, and its HTTP
 * status and gRPC name. */
#include "bok/err.h"

#include <stdarg.h>
#include <stdio.h>

int bok_err_set(bok_err_t *err, bok_err_code_t code, const char *fmt, ...) {
  if (err) {
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

void bok_err_clear(bok_err_t *err) {
  if (err) {
    err->code = BOK_OK;
    err->msg[0] = '\0';
  }
}

int bok_err_http_status(bok_err_code_t code) {
  switch (code) {
    case BOK_OK: return 200;
    case BOK_ERR_INVALID: return 400;
    case BOK_ERR_OUT_OF_RANGE: return 400;
    case BOK_ERR_UNAUTHENTICATED: return 401;
    case BOK_ERR_PERMISSION: return 403;
    case BOK_ERR_NOT_FOUND: return 404;
    case BOK_ERR_EXISTS: return 409;
    case BOK_ERR_CONFLICT: return 409;
    case BOK_ERR_ABORTED: return 409;
    case BOK_ERR_TOO_LARGE: return 413;
    case BOK_ERR_CANCELLED: return 499;
    case BOK_ERR_UNIMPLEMENTED: return 501;
    case BOK_ERR_UNAVAILABLE: return 503;
    case BOK_ERR_DEADLINE: return 504;
    case BOK_ERR_UNKNOWN:
    case BOK_ERR_INTERNAL:
    case BOK_ERR_DATA_LOSS: return 500;
  }
  return 500;
}

const char *bok_err_code_name(bok_err_code_t code) {
  static const char *names[] = {"OK",
                                "CANCELLED",
                                "UNKNOWN",
                                "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED",
                                "NOT_FOUND",
                                "ALREADY_EXISTS",
                                "PERMISSION_DENIED",
                                "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION",
                                "ABORTED",
                                "OUT_OF_RANGE",
                                "UNIMPLEMENTED",
                                "INTERNAL",
                                "UNAVAILABLE",
                                "DATA_LOSS",
                                "UNAUTHENTICATED"};
  if ((unsigned)code < sizeof names / sizeof names[0]) return names[code];
  return "UNKNOWN";
}
