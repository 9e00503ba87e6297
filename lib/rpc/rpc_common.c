#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

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

static void free_packed(void *p) { free(p); }

grpc_byte_buffer *bok_rpc_pack(const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return NULL;
  protobuf_c_message_pack(msg, buf);
  /* The slice takes the buffer: no copy for large messages. */
  grpc_slice s = grpc_slice_new(buf, n, free_packed);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

ProtobufCMessage *bok_rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc) {
  if (!bb) return NULL;
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCMessage *m =
      protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  return m;
}

gpr_timespec bok_rpc_deadline(int timeout_ms) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

void bok_rpc_slice_str(grpc_slice s, char *out, size_t cap) {
  size_t n = GRPC_SLICE_LENGTH(s);
  if (n >= cap) n = cap - 1;
  memcpy(out, GRPC_SLICE_START_PTR(s), n);
  out[n] = '\0';
}

void bok_rpc_lib_ref(void) { grpc_init(); }
void bok_rpc_lib_unref(void) { grpc_shutdown(); }
