/* Internal helpers shared by the rpc server and client (not installed). */
#ifndef BOK_RPC_INTERNAL_H
#define BOK_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "bok/rpc.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define BOK_TENANT_MD "x-tenant-id"
#define BOK_WORKER_TOKEN_MD "x-worker-token"

/* Packs msg into a new byte buffer (caller destroys). NULL on OOM. */
grpc_byte_buffer *bok_rpc_pack(const ProtobufCMessage *msg);
/* Unpacks bb into a message of desc; NULL when malformed. */
ProtobufCMessage *bok_rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc);
gpr_timespec bok_rpc_deadline(int timeout_ms);
/* Copies a slice into a NUL-terminated string of at most cap-1 bytes. */
void bok_rpc_slice_str(grpc_slice s, char *out, size_t cap);
/* Reference-counted grpc_init/grpc_shutdown. */
void bok_rpc_lib_ref(void);
void bok_rpc_lib_unref(void);

/* rpc_auth.c: the process-wide security settings, as gRPC sees them. */
/* New server credentials (TLS requiring a client certificate, or insecure);
 * the caller releases them. */
grpc_server_credentials *bok_rpc_server_creds(void);
/* New channel credentials (TLS with our certificate, or insecure). */
grpc_channel_credentials *bok_rpc_channel_creds(void);
/* A worker's token as a new slice in *out (caller unrefs): 1, or 0 when this
 * process sends none (not a worker, or the file does not exist yet). Any
 * thread. */
int bok_rpc_client_token(grpc_slice *out);
/* What a server accepts as a worker credential: a copy of the settings
 * taken by bok_rpc_server_start(), read-only while it serves. */
typedef struct bok_rpc_worker_auth bok_rpc_worker_auth_t;
bok_rpc_worker_auth_t *bok_rpc_worker_auth_snapshot(void); /* NULL: out of memory */
void bok_rpc_worker_auth_free(bok_rpc_worker_auth_t *a);
/* The worker-only check of a call with metadata md: BOK_OK, or the code to
 * fail with and a message in why. Any serving thread. */
bok_err_code_t bok_rpc_worker_check(const bok_rpc_worker_auth_t *a, grpc_call *call, const grpc_metadata_array *md,
                                    char *why, size_t cap);
/* Constant-time comparison (time depends on the lengths only): 1 if equal. */
int bok_rpc_token_equal(const char *a, size_t alen, const char *b, size_t blen);

/* rpc_reflection.c: server reflection answered from a FileDescriptorSet. */
/* The gRPC API's descriptor set, written by protoc and compiled in
 * (proto/CMakeLists.txt). */
extern const unsigned char bok_proto_descriptor_set[];
extern const size_t bok_proto_descriptor_set_len;
typedef struct bok_rpc_reflection bok_rpc_reflection_t;
/* Indexes a serialized FileDescriptorSet, kept by reference (it must outlive
 * the index). NULL when malformed or out of memory. */
bok_rpc_reflection_t *bok_rpc_reflection_new(const uint8_t *set, size_t len);
void bok_rpc_reflection_free(bok_rpc_reflection_t *r);
/* One answer: `msg` is the response to send; it points into the index, the
 * request, `services` and the buffers below, so it lives until
 * bok_rpc_reflection_answer_done(). */
typedef struct {
  Grpc__Reflection__V1__ServerReflectionResponse msg;
  Grpc__Reflection__V1__FileDescriptorResponse files;
  Grpc__Reflection__V1__ListServiceResponse list;
  Grpc__Reflection__V1__ErrorResponse error;
  Grpc__Reflection__V1__ExtensionNumberResponse ext;
  ProtobufCBinaryData *blobs;
  Grpc__Reflection__V1__ServiceResponse *svcs, **svcp;
  char errmsg[300];
} bok_rpc_reflection_answer_t;
/* Answers one request (any thread): list_services with `services` (fully
 * qualified names), file_by_filename / file_containing_symbol with the file
 * and every file it imports, a question it cannot answer with an
 * error_response (NOT_FOUND; INVALID_ARGUMENT when it asks nothing). v1alpha
 * requests use the same messages. Never fails: out of memory becomes an
 * error_response. */
void bok_rpc_reflection_answer(const bok_rpc_reflection_t *r, const char *const *services, size_t nservices,
                               const Grpc__Reflection__V1__ServerReflectionRequest *req,
                               bok_rpc_reflection_answer_t *a);
void bok_rpc_reflection_answer_done(bok_rpc_reflection_answer_t *a);

#endif
