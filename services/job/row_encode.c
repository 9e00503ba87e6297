/* row_encode.c -- RowBatch messages written by hand (row_encode.h): the
 * protobuf wire format of proto/batch/v1/rows.proto, fields in number order
 * and proto3 defaults (0, "") left out, as protobuf-c packs them. Used by
 * the rows producer on the upload's thread. */
#include "row_encode.h"

#include <stdlib.h>
#include <string.h>

#include "batch/v1/rows.pb-c.h"

enum { WT_VARINT = 0, WT_LEN = 2 };
#define TAG(field, wt) ((uint8_t)((field) << 3 | (wt)))

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

int row_encode_row(bok_buf_t *body, int64_t row, const void *raw, size_t len) {
  /* Row: 1 row (int64: negative numbers as 10-byte varints), 2 raw */
  size_t inner = (row ? 1 + varint_len((uint64_t)row) : 0) + (len ? 1 + varint_len(len) + len : 0);
  if (bok_buf_reserve(body, 1 + varint_len(inner) + inner) != 0) return -1;
  uint8_t *p = (uint8_t *)body->data + body->len;
  *p++ = TAG(5, WT_LEN); /* RowBatch.rows */
  p = put_varint(p, inner);
  if (row) {
    *p++ = TAG(1, WT_VARINT);
    p = put_varint(p, (uint64_t)row);
  }
  if (len) {
    *p++ = TAG(2, WT_LEN);
    p = put_varint(p, len);
    memcpy(p, raw, len);
    p += len;
  }
  body->len = (size_t)(p - (uint8_t *)body->data);
  body->data[body->len] = '\0';
  return 0;
}

uint8_t *row_encode_batch(const char *tenant, const char *job_id, const char *model_id, int64_t schema_version,
                          const void *body, size_t blen, size_t *sz) {
  Batch__V1__RowBatch b = BATCH__V1__ROW_BATCH__INIT; /* the header fields: protobuf-c writes them */
  b.tenant_id = (char *)tenant;
  b.job_id = (char *)job_id;
  b.model_id = (char *)model_id;
  b.schema_version = schema_version;
  size_t hlen = batch__v1__row_batch__get_packed_size(&b);
  uint8_t *buf = malloc(hlen + blen ? hlen + blen : 1);
  if (!buf) return NULL;
  batch__v1__row_batch__pack(&b, buf);
  if (blen) memcpy(buf + hlen, body, blen);
  *sz = hlen + blen;
  return buf;
}
