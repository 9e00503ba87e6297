/* resolver.h -- settles what the job service could not see happen: uploads
 * whose rows-transaction outcome is unknown (the service died inside the
 * commit, or Kafka failed there) and worker results that were staged but
 * never confirmed (the worker died after its transaction committed).
 *
 * One background thread; every `interval_ms` it reads the committing uploads
 * (each settled by a read_committed read of its last message) and the staged
 * results older than `stage_age_ms` (counted once the worker group's
 * committed offset has passed their message). docs/GUARANTEES.md. */
#ifndef RESOLVER_H
#define RESOLVER_H

#include "bok/log.h"
#include "job_store.h"
#include "row_producer.h"

typedef struct resolver resolver_t;

/* store and rows are borrowed and must outlive the resolver. NULL when the
 * thread cannot start. */
resolver_t *resolver_start(job_store_t *store, row_pool_t *rows, int interval_ms, int stage_age_ms, bok_log_fn log,
                           void *log_opaque);
/* Runs one pass on the calling thread (tests). */
void resolver_pass(resolver_t *r);
/* Stops and joins the thread; NULL is fine. */
void resolver_stop(resolver_t *r);

#endif
