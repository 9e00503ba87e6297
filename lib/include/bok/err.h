/* err.h -- the one error type of the project: bok_err_t, whose code IS the
 * gRPC status code, so an error travels from SQLite or Kafka through gRPC to
 * an HTTP status unchanged. Used by the stores (no gRPC needed) and by
 * bok/rpc.h. A bok_err_t is a plain value owned by whoever declares it. */
#ifndef BOK_ERR_H
#define BOK_ERR_H


typedef enum {
  BOK_OK = 0,
  BOK_ERR_CANCELLED = 1,
  BOK_ERR_UNKNOWN = 2,
  BOK_ERR_INVALID = 3,            /* INVALID_ARGUMENT  -> HTTP 400 */
  BOK_ERR_DEADLINE = 4,           /* DEADLINE_EXCEEDED -> HTTP 504 */
  BOK_ERR_NOT_FOUND = 5,          /* NOT_FOUND         -> HTTP 404 */
  BOK_ERR_EXISTS = 6,             /* ALREADY_EXISTS    -> HTTP 409 */
  BOK_ERR_PERMISSION = 7,         /* PERMISSION_DENIED -> HTTP 403 */
  BOK_ERR_TOO_LARGE = 8,          /* RESOURCE_EXHAUSTED-> HTTP 413 */
  BOK_ERR_CONFLICT = 9,           /* FAILED_PRECONDITION -> HTTP 409 */
  BOK_ERR_ABORTED = 10,
  BOK_ERR_OUT_OF_RANGE = 11,
  BOK_ERR_UNIMPLEMENTED = 12,
  BOK_ERR_INTERNAL = 13,          /* -> HTTP 500 (a bug, never expected) */
  BOK_ERR_UNAVAILABLE = 14,       /* backend down      -> HTTP 503 */
  BOK_ERR_DATA_LOSS = 15,
  BOK_ERR_UNAUTHENTICATED = 16
} bok_err_code_t;

typedef struct {
  bok_err_code_t code;
  char msg[512]; /* human message, NUL-terminated, "" when code == BOK_OK */
} bok_err_t;

/* Sets err (if not NULL) and returns -1, for `return bok_err_set(...)`. */
int bok_err_set(bok_err_t *err, bok_err_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bok_err_clear(bok_err_t *err);
/* HTTP status for a code (0 -> 200). */
int bok_err_http_status(bok_err_code_t code);
/* "NOT_FOUND" etc. */
const char *bok_err_code_name(bok_err_code_t code);

#endif
