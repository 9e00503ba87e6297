/* row_producer.h -- produces a job's rows to the rows topic as RowBatch
 * messages, atomically per job when transactions are on.
 *
 * A pool of librdkafka producers; a job takes one for its whole upload
 * (row_producer_begin .. commit/abort). Transactional ids are
 * "<prefix>-<n>", stable across restarts so a restarted service fences its
 * old incarnation. Thread-safe: many uploads at once, one per producer. */
#ifndef ROW_PRODUCER_H
#define ROW_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "bok/config.h"
#include "bok/log.h"

typedef struct row_pool row_pool_t;
typedef struct row_batch_writer row_batch_writer_t;

row_pool_t *row_pool_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen);
void row_pool_destroy(row_pool_t *p);
/* Readiness: asks a broker for metadata (blocks up to timeout_ms). 0 when a
 * broker answered, -1 with the reason in err. Any thread. */
int row_pool_probe(row_pool_t *p, int timeout_ms, char *err, size_t errlen);

/* Takes a producer (waits when all are busy) and begins a transaction. */
row_batch_writer_t *row_producer_begin(row_pool_t *p, const char *tenant, const char *job_id, const char *model_id,
                                       int64_t schema_version, char *err, size_t errlen);
/* Adds a row; produces a message when the batch is full. 0 ok, -1 Kafka error. */
int row_producer_add(row_batch_writer_t *w, int64_t row, const void *raw, size_t len);
/* Flushes and commits (0) or fails (-1, err set; the transaction is aborted). */
int row_producer_commit(row_batch_writer_t *w, char *err, size_t errlen);
/* Aborts: nothing of this job becomes visible to read_committed consumers. */
void row_producer_abort(row_batch_writer_t *w);

#endif
