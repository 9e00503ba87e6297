/* job_proto.h -- the job service's mapping between the store's plain C
 * records (job_store.h: job_t, job_summary_t, job_cell_t) and batch.v1
 * messages, so the store never builds a protobuf message.
 *
 * Ownership: every *_to_proto borrows the record's strings (the record must
 * outlive the message) and allocates only arrays, released with the
 * matching *_release. Any thread; nothing is shared. A *_to_proto that runs
 * out of memory leaves the repeated field empty. */
#ifndef JOB_PROTO_H
#define JOB_PROTO_H

#include <stdint.h>

#include "batch/v1/job.pb-c.h"
#include "job_store.h"

/* The job as the API shows it at `now` (waiting/processing times). */
void job_to_proto(const job_t *j, Batch__V1__Job *out, int64_t now);
void job_proto_release(Batch__V1__Job *out);

void job_cells_to_proto(const job_cell_t *c, size_t n, Batch__V1__ListRejectedResponse *out);
void job_cells_proto_release(Batch__V1__ListRejectedResponse *out);

void job_summary_to_proto(const job_summary_t *e, size_t n, Batch__V1__ErrorSummary *out);
void job_summary_proto_release(Batch__V1__ErrorSummary *out);

#endif
