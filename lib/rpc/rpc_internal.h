/* Internal helpers shared by the rpc server and client (not installed). */
#ifndef BOK_RPC_INTERNAL_H
#define BOK_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "bok/rpc.h"

#define BOK_TENANT_MD "x-tenant-id"

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

#endif
