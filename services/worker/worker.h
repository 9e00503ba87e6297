/* worker.h -- the Kafka worker: consumes RowBatch messages from the rows
 * topic (consumer group, read_committed), validates rows against their
 * model's schema, publishes valid rows as JSON events and reports results to
 * the job service over gRPC.
 *
 * Exactly-once loop (transactions on): begin -> produce events -> report
 * (staged by the job service, not counted) -> send offsets -> commit ->
 * confirm (now counted; when the confirmation is lost the job service counts
 * from the group's committed offsets). Any failure aborts the transaction
 * (re-creating the producer when abort cannot) and seeks back to the group's
 * committed offsets, so a row is re-produced only in a new transaction and
 * counted once. A lane never exits on an outage. docs/GUARANTEES.md.
 *
 * Threading: worker_run() runs the loop on the calling thread;
 * worker_stop() may be called from any thread or a signal handler.
 *
 * Lanes: one worker process runs `lanes` independent worker_t loops, one per
 * thread, each with its own consumer (a member of the group), transactional
 * producer and job cache, sharing nothing but the read-only config. A lane
 * spends most of a batch waiting for the broker (report, offsets, commit), so
 * a second lane keeps a core busy meanwhile. Lane 0 uses the worker id, lane
 * i > 0 "<worker id>.<i>" (its transactional id and log name). */
#ifndef WORKER_H
#define WORKER_H

#include <signal.h>
#include <stdint.h>

#include "bok/config.h"
#include "bok/log.h"

typedef struct worker worker_t;

worker_t *worker_new(const bok_config_t *cfg, int lane, bok_log_fn log, void *log_opaque, char *err, size_t errlen);
int worker_run(worker_t *w);
void worker_stop(worker_t *w); /* async-signal-safe */
void worker_destroy(worker_t *w);

#endif
