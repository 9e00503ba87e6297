/* row_producer.h -- produces a job's rows to the rows topic as RowBatch
 * messages, atomically per job when transactions are on, and answers whether
 * an upload's transaction committed when the service could not see it.
 *
 * A pool of librdkafka producers; a job takes one for its whole upload
 * (row_producer_begin .. commit/abort .. end). Transactional ids are
 * "<prefix>-<n>", stable across restarts so a restarted service fences its
 * old incarnation, and a producer whose transaction failed is re-created with
 * the same id (which fences and resolves its old epoch) instead of being left
 * broken. Thread-safe: many uploads at once, one per producer; a writer is
 * used by the thread that began it.
 *
 * The flow of one upload:
 *   w = begin; add...; flush (every message delivered: partition + offset
 *   known, see row_producer_messages) ; the caller stores the messages ;
 *   commit -> committed | aborted | unknown ; the caller stores the outcome ;
 *   end(w).
 * "unknown" (a commit that failed in a way that does not say whether the
 * coordinator committed) is settled by row_pool_resolve on the last message:
 * a read_committed read of its offset. */
#ifndef ROW_PRODUCER_H
#define ROW_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "bok/config.h"
#include "bok/log.h"

/* Largest kafka.tenant_stripes used (larger values are cut to it). */
#define ROW_STRIPES_MAX 64

typedef struct row_pool row_pool_t;
typedef struct row_batch_writer row_batch_writer_t;

/* One RowBatch message as written: its rows and where it landed. */
typedef struct {
  int64_t first_row, last_row, rows;
  int32_t partition; /* -1 until delivered */
  int64_t offset;
} row_msg_t;

/* A big job as the stripe choice sees it (docs/FAIRNESS.md "Tenant stripes"). */
typedef struct {
  char job_id[40], tenant[72];
  int stripe;
  int64_t outstanding; /* its rows not processed yet; <= 0: none (forgotten) */
} row_bulk_job_t;

/* The stripe (0..g-1) for a new big job of `tenant`, given the big jobs
 * known: the stripe of the tenant's own jobs with outstanding rows if any
 * (a tenant's jobs stay together, so one tenant never takes two stripes'
 * shares), else the stripe with the fewest outstanding rows of other
 * tenants; ties go to the tenant's home stripe, else the next one after it.
 * The jobs known are one job service's: shards see only their own tenants,
 * so with nothing else known each tenant starts from its home stripe.
 * Pure; any thread. */
int row_stripe_choose(const row_bulk_job_t *jobs, size_t n, const char *tenant, int g);
/* The tenant's home stripe: a hash of its name mod g (0 when g <= 1). Pure. */
int row_stripe_home(const char *tenant, int g);

/* Rows of a committed job not processed yet: > 0 while its rows may still be
 * waiting, 0 once it is final or unknown. Called by an upload's thread with
 * the pool's stripe lock held: it may take the store's lock, and must never
 * call back into the pool. */
typedef int64_t (*row_pool_outstanding_fn)(void *ud, const char *tenant, const char *job_id);

/* cfg is borrowed and must outlive the pool (producers are re-created from it). */
row_pool_t *row_pool_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen);
void row_pool_destroy(row_pool_t *p);
/* How the pool learns that a big job's rows are processed (the job store
 * here); without it a big job counts as outstanding until BULK_JOBS_MAX
 * later ones push it out. Call before the first upload. */
void row_pool_set_outstanding(row_pool_t *p, row_pool_outstanding_fn fn, void *ud);
/* Readiness: asks a broker for metadata (blocks up to timeout_ms). 0 when a
 * broker answered, -1 with the reason in err. Any thread. */
int row_pool_probe(row_pool_t *p, int timeout_ms, char *err, size_t errlen);
const char *row_pool_topic(const row_pool_t *p);
/* 1 while an upload of job_id holds a producer (its commit is in progress). */
int row_pool_job_active(row_pool_t *p, const char *job_id);

/* Did the message at (partition, offset) of the rows topic commit? Reads it
 * read_committed: 1 committed, 0 aborted, -1 not known yet (the partition's
 * last stable offset is not past it, or Kafka is unreachable). Blocks up to
 * timeout_ms. Any thread (serialised inside). */
int row_pool_resolve(row_pool_t *p, int32_t partition, int64_t offset, int timeout_ms);
/* The committed offsets of consumer group `group` for partitions[0..n) of the
 * rows topic, stable ones only (require_stable). out[i] = -1 when none.
 * 0 ok, -1 Kafka error. Blocks up to timeout_ms. Any thread. */
int row_pool_committed(row_pool_t *p, const char *group, const int32_t *partitions, size_t n, int64_t *out,
                       int timeout_ms);

/* Takes a producer (waits when all are busy) and begins a transaction. NULL
 * with err set when Kafka is unavailable. */
row_batch_writer_t *row_producer_begin(row_pool_t *p, const char *tenant, const char *job_id, const char *model_id,
                                       int64_t schema_version, char *err, size_t errlen);
/* Adds a row; produces a message when the batch is full. 0 ok, -1 Kafka error. */
int row_producer_add(row_batch_writer_t *w, int64_t row, const void *raw, size_t len);
/* Produces the last batch and waits for every delivery report. 0 when every
 * message is written (not yet committed), -1 with err set. */
int row_producer_flush(row_batch_writer_t *w, char *err, size_t errlen);
/* The messages written so far (valid after a successful flush); owned by w. */
const row_msg_t *row_producer_messages(const row_batch_writer_t *w, size_t *n);
/* Commits: 0 committed, -1 aborted (err set), 1 unknown (err set; settle it
 * with row_pool_resolve on the last message). Does not release w. */
int row_producer_commit(row_batch_writer_t *w, char *err, size_t errlen);
/* Releases the producer after a commit (whatever its outcome). */
void row_producer_end(row_batch_writer_t *w);
/* Aborts and releases: nothing of this job becomes visible to read_committed
 * consumers. */
void row_producer_abort(row_batch_writer_t *w);

#endif
