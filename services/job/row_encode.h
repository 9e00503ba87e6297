/* row_encode.h -- the rows topic's RowBatch message (proto/batch/v1/rows.proto)
 * written without protobuf-c's per-row structs: each row is encoded once, as
 * it arrives, into the batch's buffer, and the message is that buffer behind
 * the header fields. The bytes are the ones batch__v1__row_batch__pack
 * writes for the same message (tests/unit/services/job/test_row_encode.c).
 * Pure functions; any thread. */
#ifndef ROW_ENCODE_H
#define ROW_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "bok/buf.h"

/* Appends one `rows` entry (Row{row, raw}) to body. 0, or -1 when body
 * cannot grow (its content is then unchanged). */
int row_encode_row(bok_buf_t *body, int64_t row, const void *raw, size_t len);

/* The packed RowBatch: tenant_id, job_id, model_id, schema_version, then
 * the rows entries in body. malloc'd (the caller frees it, or hands it to
 * librdkafka with RD_KAFKA_MSG_F_FREE), its size in *sz; NULL when out of
 * memory. */
uint8_t *row_encode_batch(const char *tenant, const char *job_id, const char *model_id, int64_t schema_version,
                          const void *body, size_t blen, size_t *sz);

#endif
