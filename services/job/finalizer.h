/* finalizer.h -- a job becomes final only once its events are readable.
 *
 * Kafka answers a transaction's commit once the commit is durable in its
 * transaction log, and writes the commit markers into the data partitions
 * afterwards. Until a partition has its marker, a read_committed consumer
 * stops before the transaction's events (the partition's last stable offset,
 * LSO, is held there). So a job counted from committed worker transactions is
 * not yet readable at that instant; under load or right after a broker
 * restart the gap was seconds (docs/GUARANTEES.md).
 *
 * The store marks such a job settling (job_store_set_settle). This module's
 * thread takes, per settling job, a snapshot of its events topic's high
 * watermarks -- every event of the job was acknowledged before its
 * transaction committed, so it lies below them -- and sets the final state
 * once every partition's LSO has reached its snapshot. An unrelated
 * transaction still open on those partitions holds the job back as it holds
 * a read_committed reader back (at most until Kafka aborts it on its
 * transaction timeout). While Kafka is unreachable jobs stay RUNNING. The
 * thread makes its two Kafka clients again when their queries go unanswered
 * for 10 s or a job has lagged 60 s (finalizer.c, "Recovery"), and asks for
 * the topic's current partition leaders before each pass's queries (a
 * failover).
 *
 * Threads: one background thread; finalizer_kick may be called from any
 * thread (it only signals). */
#ifndef FINALIZER_H
#define FINALIZER_H

#include "bok/config.h"
#include "bok/log.h"
#include "job_store.h"

typedef struct finalizer finalizer_t;

/* Starts the thread and installs the store's settle hook. `cfg` (read again
 * when clients are made anew) and the store are borrowed and must outlive
 * the finalizer. NULL with err set when the Kafka
 * clients or the thread cannot be made. */
finalizer_t *finalizer_start(const bok_config_t *cfg, job_store_t *store, bok_log_fn log, void *log_opaque,
                             char *err, size_t errlen);
/* Runs one pass on the calling thread (tests): every settling job whose
 * events are readable becomes final. Returns how many did. */
int finalizer_pass(finalizer_t *f);
/* Removes the hook, stops and joins the thread, frees; NULL is fine. */
void finalizer_stop(finalizer_t *f);

#endif
