/* libFuzzer: the protobuf-c decoders of every gRPC request the services
 * accept (ModelService, JobService, grpc.health.v1), the rows-topic RowBatch
 * the worker decodes from Kafka (into its arena, as worker.c does), and the
 * service answers the gateway and worker decode (Job, Model, JobSpec).
 * Each input picks one message type; a message that decodes must re-encode
 * to exactly get_packed_size() bytes, decode again, and re-encode to the
 * same bytes (the encoding is a fixed point).
 * Input: byte 0 = message type (modulo the table), the rest = wire bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch/v1/job.pb-c.h"
#include "batch/v1/model.pb-c.h"
#include "batch/v1/rows.pb-c.h"
#include "bok/arena.h"
#include "bok/csv.h"
#include "grpc/health/v1/health.pb-c.h"

static const ProtobufCMessageDescriptor *const MSGS[] = {
    /* ModelService requests */
    &batch__v1__create_model_request__descriptor,
    &batch__v1__get_model_request__descriptor,
    &batch__v1__list_models_request__descriptor,
    &batch__v1__update_model_request__descriptor,
    &batch__v1__delete_model_request__descriptor,
    /* JobService requests (Upload's stream messages, the worker-facing ones) */
    &batch__v1__upload_request__descriptor,
    &batch__v1__get_job_request__descriptor,
    &batch__v1__list_jobs_request__descriptor,
    &batch__v1__cancel_job_request__descriptor,
    &batch__v1__list_rejected_request__descriptor,
    &batch__v1__reprocess_job_request__descriptor,
    &batch__v1__report_results_request__descriptor,
    /* grpc.health.v1.Health/Check on every service */
    &grpc__health__v1__health_check_request__descriptor,
    /* rows topic (Kafka) -> worker */
    &batch__v1__row_batch__descriptor,
    /* answers decoded by the gateway and the worker */
    &batch__v1__job__descriptor,
    &batch__v1__model__descriptor,
    &batch__v1__job_spec__descriptor,
    &batch__v1__list_rejected_response__descriptor,
};
#define NMSGS (sizeof MSGS / sizeof MSGS[0])

static void *arena_alloc(void *ud, size_t n) { return bok_arena_alloc(ud, n); }
static void arena_nofree(void *ud, void *p) { (void)ud, (void)p; }

static uint8_t *repack(const ProtobufCMessage *m, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n ? n : 1);
  if (!b) abort();
  if (protobuf_c_message_pack(m, b) != n) abort();
  *len = n;
  return b;
}

/* 1 if m or any message inside it kept unknown fields. protobuf-c 1.4.1
 * decodes field number 0 when its tag is a 2-byte varint (80 00) but refuses
 * the 1-byte form it writes back, so such messages do not round-trip; the
 * services ignore unknown fields, so only the known ones are checked. */
static int has_unknown(const ProtobufCMessage *m) {
  if (m->n_unknown_fields) return 1;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      ProtobufCMessage *const *sub = *(ProtobufCMessage *const *const *)(base + f->offset);
      for (size_t k = 0; k < n; k++)
        if (has_unknown(sub[k])) return 1;
    } else {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
      /* a oneof member is set only when the case says so */
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        continue;
      if (sub && has_unknown(sub)) return 1;
    }
  }
  return 0;
}

static void round_trip(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m) {
  size_t n1, n2;
  uint8_t *b1 = repack(m, &n1);
  ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, n1, b1);
  if (!m2) abort(); /* what we encode we must decode */
  uint8_t *b2 = repack(m2, &n2);
  if (n1 != n2 || memcmp(b1, b2, n1) != 0) abort();
  protobuf_c_message_free_unpacked(m2, NULL);
  free(b1);
  free(b2);
}

/* What the worker does with a decoded RowBatch before validation. */
static void worker_rows(const Batch__V1__RowBatch *rb) {
  if (!rb->tenant_id || !rb->job_id || !rb->model_id) abort();
  for (size_t i = 0; i < rb->n_rows; i++) {
    const Batch__V1__Row *row = rb->rows[i];
    (void)bok_utf8_valid((const char *)row->raw.data, row->raw.len);
  }
}

static bok_arena_t g_arena = BOK_ARENA_INIT;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const ProtobufCMessageDescriptor *d = MSGS[data[0] % NMSGS];
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
  if (m) {
    if (!has_unknown(m)) round_trip(d, m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (d == &batch__v1__row_batch__descriptor) {
    ProtobufCAllocator pa = {arena_alloc, arena_nofree, &g_arena};
    bok_arena_reset(&g_arena);
    Batch__V1__RowBatch *rb = batch__v1__row_batch__unpack(&pa, size - 1, data + 1);
    if (!rb != !m) abort(); /* same answer whatever the allocator */
    if (rb) {
      worker_rows(rb);
      batch__v1__row_batch__free_unpacked(rb, &pa);
    }
  }
  return 0;
}
