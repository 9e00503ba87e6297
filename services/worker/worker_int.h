/* worker_int.h -- what the worker's modules share (not for other code).
 *
 * The worker is cut along a row's path: worker.c (life cycle: consumer and
 * transactional producer), loop.c (collect a batch, run its transaction,
 * recover), job_cache.c (a job's spec, schema and validator, events topics,
 * gRPC channels), events.c (validate a RowBatch message, produce its events),
 * results.c (per-message results, report, confirm), main.c (lanes).
 *
 * Threading: a worker_t and everything it holds belong to the one lane
 * thread that runs worker_run(); only `stop` is written from elsewhere. */
#ifndef WORKER_INT_H
#define WORKER_INT_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>

#include "batch/v1/job.pb-c.h"
#include "batch/v1/rows.pb-c.h"
#include "bok/arena.h"
#include "bok/rows.h"
#include "bok/routes.h"
#include "bok/rpc.h"
#include "worker.h"

#define MAX_JOBS_CACHED 256
/* Largest kafka.tenant_stripes a lane serves stripe by stripe (the job
 * service's ROW_STRIPES_MAX); larger values are cut to it. */
#define WK_STRIPES_MAX 64
#define WK_STRIPES_DEFAULT 2
#define TXN_TIMEOUT_MS 30000
/* Most rows-topic messages in one batch. */
#define WK_BATCH_MSGS 1024

/* A job this worker has seen: its spec, compiled schema and validator. */
typedef struct job_ctx {
  struct job_ctx *next;
  char job_id[40];
  char tenant[72];
  char model_id[40];
  char topic[300];
  /* Header values' lengths (tenant, job, model), measured once per job. */
  size_t tenant_len, job_id_len, model_id_len;
  /* The events topic's handle on the lane's producer, made on the job's
   * first event (RD_KAFKA_V_RKT: no topic lookup per event). Belongs to
   * w->producer: wk_jobs_drop_topics before that producer is destroyed. */
  rd_kafka_topic_t *rkt;
  int skip;     /* cancelled, stopped by its error budget, or unknown: publish nothing more */
  int dry_run;  /* validate and report only: no event, no events topic */
  char broken[400]; /* the job's rows cannot be validated (reason): all rejected */
  bok_schema_t *schema;
  bok_validator_t *validator;
  int64_t last_used;
} job_ctx_t;

/* Per-batch results of one job: one BatchResult per rows-topic message (the
 * job service counts each message once), rejected rows listed. */
typedef struct {
  job_ctx_t *job;
  Batch__V1__JobResults res;
  size_t msg_cap, rej_cap;
} job_res_t;

typedef struct {
  job_res_t *jobs;
  size_t n, cap;
  /* offsets: per partition, first and last offset of the batch */
  rd_kafka_topic_partition_list_t *first;
  rd_kafka_topic_partition_list_t *next;
  int stripe; /* the tenant stripe its messages came from; -1 = none (express, or stripes off) */
  int64_t bytes; /* rows-topic payload collected (the messages' decompressed lengths) */
} batch_t;

/* The lane's open transaction: one or more batches. After a full bulk batch
 * it stays open for the next one (up to kafka.txn_max_rows rows,
 * kafka.txn_max_ms, kafka.batch_max_bytes of payload) while no express
 * message waits, so the broker's and the producer's cost per transaction
 * (markers, AddPartitionsToTxn, offsets, EndTxn, report) is paid less often;
 * each batch is still one tenant turn. Belongs to the lane thread; the
 * rebalance callback (which runs on it, inside the consumer poll) aborts it
 * (wk_txn_abandon). docs/GUARANTEES.md, docs/PERFORMANCE.md. */
typedef struct {
  batch_t b;   /* results and offsets of the batches run in it */
  int open;    /* begin_transaction done (or, without transactions, a batch ran) */
  int batches; /* batches run in it */
  int64_t rows, bytes, started_ms;
  int64_t served[WK_STRIPES_MAX]; /* rows its batches credited to each stripe (taken back on abort) */
} wk_txn_t;

/* The steps of a lane's loop whose wall time it sums (the stats line's
 * "ms:" part): a busy lane waiting for and collecting messages, running batches
 * (validate, encode, produce), then per transaction the report, the
 * offsets, the commit (flushes the events) and the confirm. */
typedef enum { WK_STEP_COLLECT, WK_STEP_RUN, WK_STEP_REPORT, WK_STEP_OFFSETS, WK_STEP_COMMIT, WK_STEP_CONFIRM, WK_STEPS } wk_step_t;

struct worker {
  const bok_config_t *cfg;
  bok_log_fn log;
  void *lo;
  char worker_id[128];
  rd_kafka_t *consumer;
  rd_kafka_t *producer;
  char group_id[128];
  int transactions;
  char *rows_topic;
  /* Express partitions (docs/FAIRNESS.md): rows-topic partitions
   * 0..express_parts-1 carry small jobs only. Their fetch queues are
   * forwarded to express_q (set in the rebalance callback, before assign),
   * which the loop drains before the bulk partitions' consumer queue. */
  int express_parts;
  rd_kafka_queue_t *express_q; /* NULL when express_parts is 0 */
  int express_owned;           /* express partitions in the current assignment */
  int express_streak;          /* express batches run in a row (bulk gets a turn) */
  /* Tenant stripes (docs/FAIRNESS.md): bulk partition E + i is in stripe
   * i mod nstripes. With nstripes > 1 each bulk partition's fetch queue is
   * forwarded to stripe_q[its stripe] (rebalance callback, before assign),
   * and a bulk batch is taken from one stripe's queue: the one with messages
   * that has been served the fewest rows (served[], deficit round robin), so
   * tenants on different stripes share the lane by rows, not by fetch order. */
  int nstripes;
  rd_kafka_queue_t *stripe_q[WK_STRIPES_MAX]; /* NULL when nstripes is 1 */
  int64_t served[WK_STRIPES_MAX];             /* rows run per stripe by this lane (an abort takes its back) */
  int64_t stripe_last[WK_STRIPES_MAX];        /* the lane's `turns` at each stripe's last batch */
  int stripe_owned;                           /* stripes with partitions in the assignment */
  /* A bulk batch cut short because express messages arrived while it ran
   * (docs/FAIRNESS.md): the messages it had collected but not run, in
   * offset order per partition, from stripe carry_stripe. The lane's next
   * bulk batch starts with them, unless a rebalance (carry_gen !=
   * rebalances) came between: then they are dropped, the new assignment
   * starts from the committed offsets. */
  rd_kafka_message_t *carry[WK_BATCH_MSGS];
  int ncarry, carry_stripe, carry_gen;
  int batch_max_rows;
  int batch_max_ms;
  int txn_max_rows, txn_max_ms; /* kafka.txn_max_rows, kafka.txn_max_ms (wk_txn_t) */
  wk_txn_t txn;
  int64_t batch_max_bytes; /* rows-topic payload per batch (kafka.batch_max_bytes) */
  volatile sig_atomic_t stop;
  int reset; /* the producer is in a state abort cannot clear: re-create it */
  int need_init; /* created without init_transactions: wk_producer_start does it */
  int rebalances; /* bumped by the rebalance callback (runs inside poll) */
  bok_routes_t *routes;
  bok_rpc_chancache_t *chans; /* job/model service channels by address (wk_chan) */
  job_ctx_t *jobs;
  int njobs;
  char **topics_made;
  int ntopics;
  bok_row_result_t rr;
  bok_arena_t arena; /* decoded rows-topic message; reset per message */
  int64_t rows_done, last_stat_ms, batches, txns;
  int64_t turns; /* batches run (stripe_last's sequence) */
  int64_t step_us[WK_STEPS]; /* where the lane's time went (wk_step_t), logged with its totals */
};

#define LOG(w, lvl, ...) bok_logf((w)->log, (w)->lo, lvl, __VA_ARGS__)


/* Memory bounds (docs/CONFIG.md, docs/PERFORMANCE.md "Memory"): the whole
 * process's consumer fetch-ahead and producer queue, split evenly over the
 * lanes (each lane is its own consumer and producer), and the per-partition
 * fetch size that bounds what one fetch response adds on top. */
#define WK_FETCH_BUFFER_KB_DEFAULT 16384
/* A batch is one tenant turn; larger batches (10,000 rows) added 8-10 MB
 * to the worker's peak (the rows a lane holds) and made coarser turns
 * (docs/PERFORMANCE.md "Larger transactions"). The byte cap bounds what a
 * lane holds when rows are large. */
#define WK_BATCH_MAX_ROWS_DEFAULT 5000
#define WK_BATCH_MAX_BYTES_DEFAULT (8 << 20)
/* A transaction (one report) may run several full batches (wk_txn_t): up
 * to this many rows, for at most this long. The broker's and the
 * producer's cost per transaction (markers, AddPartitionsToTxn, offsets,
 * EndTxn) is paid per transaction, not per batch (docs/PERFORMANCE.md
 * "Transactions over several batches"). */
#define WK_TXN_MAX_ROWS_DEFAULT 20000 /* rows per transaction over several batches (docs/PERFORMANCE.md) */
#define WK_TXN_MAX_MS_DEFAULT 1000
#define WK_PRODUCE_BUFFER_KB_DEFAULT 16384
#define WK_PARTITION_FETCH_BYTES_DEFAULT "65536"
/* worker.c: a lane's share of a process-wide budget in KB (>= 1024). */
int64_t wk_lane_share_kb(const bok_config_t *cfg, const char *key, int64_t dflt);

/* worker.c: re-creates a producer abort could not bring back. */
void wk_reset_producer(worker_t *w);
/* worker.c: the producer's init_transactions, retried until Kafka answers
 * or the lane stops (lane thread, before its first batch). */
void wk_producer_start(worker_t *w);

/* loop.c: deficit round robin over tenant stripes (pure; any thread). Of
 * the stripes with waiting[s] set, the one with the fewest rows served[s];
 * -1 when none waits. Ties go to the stripe served least recently (the
 * smallest last[s]: the caller's sequence number of the stripe's last
 * batch), not to a stripe by its index, which gave the lower stripe the
 * second batch of every tied pair (docs/FAIRNESS.md). A stripe with nothing
 * waiting is lifted to the chosen one's served rows (an empty flow keeps no
 * deficit): once the chosen batch runs it is one batch behind, so a
 * stripe back from idle gets the next batch, not a run of them. The caller
 * owns both arrays: it adds a batch's rows to served[its stripe] as the
 * batch runs (and takes them back if its transaction aborts), and stamps
 * last[its stripe]. */
int wk_stripe_pick(int64_t *served, const int64_t *last, const int *waiting, int n);

/* 1 when a batch of nm collected messages (b->bytes of rows-topic payload)
 * is full: ~w->batch_max_rows rows (the job service packs ~500 rows a
 * message) or w->batch_max_bytes of payload. A batch always takes its first
 * message, however large. Pure; lane thread (loop.c). */
int wk_batch_full(const worker_t *w, const batch_t *b, int nm);

/* 1 when the open transaction takes another batch after the one just run:
 * that batch was a full bulk batch (`full`), nothing cut it short and no
 * express message waits (`express_waiting` 0), transactions are on, the lane
 * is not stopping, and the transaction is under kafka.txn_max_rows rows,
 * kafka.batch_max_bytes of payload and kafka.txn_max_ms of age at now_ms;
 * txn_max_rows <= batch_max_rows (e.g. 0) is one batch per
 * transaction. Else the caller commits. Pure; lane thread (loop.c). */
int wk_txn_more(const worker_t *w, int full, int express_waiting, int64_t now_ms);

/* loop.c: a rebalance came while the lane's transaction is open (the
 * rebalance callback, on the lane thread): aborts it -- re-creating the
 * producer when abort cannot -- before the partitions go, since their next
 * owner starts from the committed offsets; takes back the stripes' credit
 * and drops its results. No-op when none is open. */
void wk_txn_abandon(worker_t *w);

/* job_cache.c */
bok_rpc_channel_t *wk_chan(worker_t *w, const char *addr); /* cached per address, owned by w */
/* The job's context, fetching spec and schema on first sight; NULL = a
 * transient failure (retry the batch later). Owned by the cache. */
job_ctx_t *wk_job_get(worker_t *w, const Batch__V1__RowBatch *b);
void wk_jobs_evict(worker_t *w); /* between batches only: a batch points at its jobs */
void wk_jobs_free(worker_t *w);  /* jobs, channels and the events topics seen */
/* Destroys every job's topic handle: before the lane's producer is destroyed. */
void wk_jobs_drop_topics(worker_t *w);

/* events.c: one RowBatch message inside the open transaction. 0 ok, -1
 * transient failure (abort + retry), -2 Kafka produce failure. */
int wk_process_msg(worker_t *w, batch_t *b, const rd_kafka_message_t *m, int64_t *rows);

/* results.c */
job_res_t *wk_res_for(batch_t *b, job_ctx_t *j);
Batch__V1__BatchResult *wk_add_msg(job_res_t *r, const Batch__V1__RowBatch *rb);
void wk_add_rejected(job_res_t *r, int64_t row, const void *raw, size_t len, const bok_row_result_t *rr);
void wk_add_rejected_reason(job_res_t *r, int64_t row, const void *raw, size_t len, const char *why);
void wk_note_offset(batch_t *b, const rd_kafka_message_t *m);
void wk_batch_reset_offsets(batch_t *b);
/* Cuts a batch to its first k messages msgs[0..k) (the rest are run by a
 * later batch): b->next from those only; b->first is kept, so a failed
 * transaction still rewinds to the start of everything collected. */
void wk_batch_cut(batch_t *b, rd_kafka_message_t *const *msgs, int k);
/* Adds batch r's offsets to t (a transaction's): per partition, t keeps the
 * first offset of its earliest batch and takes the next offset of the
 * latest. */
void wk_batch_merge_offsets(batch_t *t, const batch_t *r);
void wk_batch_free(batch_t *b);
int wk_report(worker_t *w, batch_t *b);  /* stage the batch's results: 0 ok, -1 failed */
void wk_confirm(worker_t *w, batch_t *b); /* after the commit; best effort */

#endif
