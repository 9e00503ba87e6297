/* bok/reject.h -- one rejected row as it is reported and stored
 * (batch.v1.RowRejection: row number, raw bytes, its rejected cells with
 * code and message), built in one place for both services: the worker turns
 * a validator's result into one (bok_reject_from_result), the job service
 * and the worker turn a row that cannot be read or validated at all into a
 * MALFORMED_ROW one (bok_reject_malformed, message BOK_MALFORMED_FMT, the
 * same text the validator writes; docs/REJECTED_CODES.md).
 *
 * Ownership: every builder returns a message that owns all its strings and
 * bytes (malloc'ed), freed with bok_reject_free() -- not with
 * protobuf_c_message_free_unpacked(). NULL when memory ran out. Any thread;
 * nothing is shared. */
#ifndef BOK_REJECT_H
#define BOK_REJECT_H

#include <stddef.h>
#include <stdint.h>

#include "batch/v1/job.pb-c.h"
#include "bok/validate.h"

/* The row's rejection with a copy of every rejected cell of rr. */
Batch__V1__RowRejection *bok_reject_from_result(int64_t row, const void *raw, size_t len, const bok_row_result_t *rr);
/* The row's rejection as one MALFORMED_ROW cell: "Row {row} is malformed: {reason}." */
Batch__V1__RowRejection *bok_reject_malformed(int64_t row, const void *raw, size_t len, const char *reason);
void bok_reject_free(Batch__V1__RowRejection *r);

/* Appends r to res->rejected (capacity *cap, grown as needed); res owns r
 * then. -1 when r is NULL or memory ran out (r is freed). */
int bok_reject_append(Batch__V1__JobResults *res, size_t *cap, Batch__V1__RowRejection *r);
/* Frees res->rejected and every rejection in it (built here); leaves the
 * rest of res alone. */
void bok_reject_free_all(Batch__V1__JobResults *res);

#endif
