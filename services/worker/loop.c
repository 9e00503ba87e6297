/* loop.c -- a worker lane's loop: collect a batch of rows-topic messages
 * (one tenant turn), run it inside the lane's open transaction (begin once,
 * then events per batch), and after a full bulk batch keep the transaction
 * open for the next one, up to kafka.txn_max_rows / txn_max_ms; then report,
 * send the offsets, commit, confirm. On any failure abort (or re-create the
 * producer) and go back to the group's committed offsets; a rebalance aborts
 * an open transaction before the partitions go (wk_txn_abandon). Never exits
 * on an outage. docs/GUARANTEES.md. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bok/fault.h"
#include "bok/kafka.h"
#include "bok/util.h"
#include "worker_obs.h"
#include "worker_int.h"

/* Logs a transaction API error; 1 when there was none. A fatal error, or one
 * that abort cannot clear, marks the producer for re-creation. */
/* Monotonic microseconds, for the lane's step times (wk_step_t). */
static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Adds the time since *t to step s and restarts *t. */
static void step_done(worker_t *w, wk_step_t s, int64_t *t) {
  int64_t n = now_us();
  w->step_us[s] += n - *t;
  *t = n;
}

static int txn_ok(worker_t *w, rd_kafka_error_t *e, const char *what) {
  if (!e) return 1;
  LOG(w, BOK_LOG_WARN, "%s: %s", what, rd_kafka_error_string(e));
  if (rd_kafka_error_is_fatal(e)) w->reset = 1;
  rd_kafka_error_destroy(e);
  return 0;
}

/* Commits; a commit whose outcome is unknown marks the producer for
 * re-creation (which fences and settles it). */
static int commit_txn(worker_t *w) {
  bok_fault("worker.commit");
  char err[512];
  bok_kafka_commit_t c = bok_kafka_txn_commit(w->producer, TXN_TIMEOUT_MS, 3, err, sizeof err);
  if (c == BOK_KAFKA_COMMITTED) return 1;
  LOG(w, BOK_LOG_WARN, "%s", err);
  if (c == BOK_KAFKA_UNKNOWN) w->reset = 1;
  return 0;
}

/* After a failed transaction: back to the group's committed offsets of the
 * batch's partitions -- the batch start when the transaction aborted, its end
 * when a commit whose answer was lost did commit -- so no message is skipped
 * and none is published twice. Retries while Kafka is down: consuming on
 * from a wrong position would skip rows. Partitions this member no longer
 * owns are left to their new owner. */
static void rewind_to(worker_t *w, const rd_kafka_topic_partition_list_t *first) {
  if (!first || first->cnt == 0) return;
  for (int delay = 200; !w->stop; delay = delay * 2 > 5000 ? 5000 : delay * 2) {
    rd_kafka_topic_partition_list_t *own = NULL;
    rd_kafka_assignment(w->consumer, &own);
    rd_kafka_topic_partition_list_t *to = rd_kafka_topic_partition_list_new(first->cnt);
    for (int i = 0; own && i < first->cnt; i++)
      if (rd_kafka_topic_partition_list_find(own, first->elems[i].topic, first->elems[i].partition))
        rd_kafka_topic_partition_list_add(to, first->elems[i].topic, first->elems[i].partition);
    if (own) rd_kafka_topic_partition_list_destroy(own);
    int done = to->cnt == 0;
    if (!done && rd_kafka_committed(w->consumer, to, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < to->cnt; i++) {
        const rd_kafka_topic_partition_t *f = rd_kafka_topic_partition_list_find(first, to->elems[i].topic,
                                                                                 to->elems[i].partition);
        /* no committed offset yet: the batch start (the reset policy's earliest is not better) */
        if (to->elems[i].offset < 0 || to->elems[i].err) to->elems[i].offset = f->offset;
        to->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
      }
      rd_kafka_error_t *e = rd_kafka_seek_partitions(w->consumer, to, 10000);
      done = !e;
      for (int i = 0; done && i < to->cnt; i++)
        if (to->elems[i].err) done = 0;
      if (e) {
        LOG(w, BOK_LOG_WARN, "seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    }
    rd_kafka_topic_partition_list_destroy(to);
    if (done) return;
    LOG(w, BOK_LOG_WARN, "cannot rewind to the committed offsets yet (retrying in %d ms)", delay);
    for (int t = 0; t < delay && !w->stop; t += 100) usleep(100 * 1000);
  }
}


/* Express batches in a row before the bulk partitions get one batch: small
 * jobs go first, a stream of them never starves the big ones. */
#define EXPRESS_BURST 8
/* Longest wait for a first message while the lane's transaction is open
 * (it commits when nothing comes). */
#define TXN_IDLE_POLL_MS 20
/* Longest wait inside the bulk poll while this lane owns express partitions:
 * an express message waits at most this long for an idle or collecting lane. */
#define EXPRESS_POLL_MS 20

/* 1 when the lane's express queue holds fetched messages. */
static int express_ready(worker_t *w) { return w->express_q && rd_kafka_queue_length(w->express_q) > 0; }

/* Adds m to the batch; 0 when it was an error event (dropped). */
static int take(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int *nm, rd_kafka_message_t *m) {
  if (m->err) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) LOG(w, BOK_LOG_WARN, "consumer: %s", rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    return 0;
  }
  msgs[(*nm)++] = m;
  b->bytes += (int64_t)m->len;
  wk_note_offset(b, m);
  return 1;
}

int wk_batch_full(const worker_t *w, const batch_t *b, int nm) {
  return (int64_t)nm * 500 >= w->batch_max_rows || (nm > 0 && b->bytes >= w->batch_max_bytes);
}

/* Collects what the express partitions have fetched, without waiting: a
 * small job's rows run at once. No rebalance callback runs meanwhile (it
 * only runs inside rd_kafka_consumer_poll), and messages of partitions
 * revoked since they were fetched are dropped by librdkafka. */
static int collect_express(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int max) {
  int nm = 0;
  while (nm < max && !w->stop && !wk_batch_full(w, b, nm)) {
    rd_kafka_message_t *m = rd_kafka_consume_queue(w->express_q, 0);
    if (!m) break;
    take(w, b, msgs, &nm, m);
  }
  return nm;
}

/* Starts a bulk batch with the messages the last one was cut short of
 * (run_txn), and its stripe; drops them when a rebalance came between (the
 * new assignment starts from the committed offsets). Lane thread only. */
static int take_carry(worker_t *w, batch_t *b, rd_kafka_message_t **msgs) {
  int n = w->ncarry;
  w->ncarry = 0;
  if (n && w->carry_gen != w->rebalances) {
    for (int i = 0; i < n; i++) rd_kafka_message_destroy(w->carry[i]);
    return 0;
  }
  for (int i = 0; i < n; i++) {
    msgs[i] = w->carry[i];
    b->bytes += (int64_t)msgs[i]->len;
    wk_note_offset(b, msgs[i]);
  }
  if (n) b->stripe = w->carry_stripe;
  return n;
}

/* Keeps msgs[0..n) (the part of a committed bulk batch that was not run)
 * for the lane's next bulk batch. Only a bulk batch is cut, and every bulk
 * batch starts with the carried messages, so none is held here already:
 * an express batch (n = 0) must leave a carry alone. */
static void keep_carry(worker_t *w, const batch_t *b, rd_kafka_message_t **msgs, int n) {
  if (n <= 0) return;
  for (int i = 0; i < n; i++) w->carry[i] = msgs[i];
  w->ncarry = n;
  w->carry_stripe = b->stripe;
  w->carry_gen = w->rebalances;
}

/* Collects up to ~batch_max_rows rows (or batch_max_ms) of messages of the
 * bulk partitions; stops early when the express queue has messages: at once
 * with `yield`, else (the bulk partitions' turn) only when they have
 * nothing. */
static int collect(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int max, int yield) {
  int nm = take_carry(w, b, msgs);
  int64_t deadline = bok_mono_ms() + w->batch_max_ms;
  int gen = w->rebalances;
  int idle = 0; /* a poll found nothing */
  while (nm < max && !w->stop) {
    int64_t left = deadline - bok_mono_ms();
    if (left <= 0 && nm > 0) break;
    if ((yield || idle) && express_ready(w)) break; /* run what is collected (maybe nothing), then express */
    int wait = nm ? (int)(left > 0 ? left : 0) : w->txn.open ? TXN_IDLE_POLL_MS : 200;
    if (w->express_owned && wait > EXPRESS_POLL_MS) wait = EXPRESS_POLL_MS;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, wait);
    if (gen != w->rebalances) {
      /* A rebalance ran inside poll: the messages collected so far belong
       * to the old assignment. Drop them -- whoever owns their partitions
       * now starts from the committed offsets -- and keep collecting. */
      for (int i = 0; i < nm; i++) rd_kafka_message_destroy(msgs[i]);
      nm = 0;
      b->bytes = 0;
      wk_batch_reset_offsets(b);
      gen = w->rebalances;
    }
    if (!m) {
      if (nm ? !w->express_owned : w->txn.open && idle) break; /* as in collect_stripes */
      idle = 1;
      continue;
    }
    if (take(w, b, msgs, &nm, m) && wk_batch_full(w, b, nm)) break;
  }
  return nm;
}

/* Longest wait for messages of a stripe's queue while collecting (only the
 * consumer poll runs the rebalance callback, so the lane keeps polling it). */
#define STRIPE_POLL_MS 20

/* Whether stripe a goes before stripe b: fewer rows served, then (a tie)
 * served less recently, so no stripe wins ties by its index. */
static int stripe_before(const int64_t *served, const int64_t *last, int a, int b) {
  if (served[a] != served[b]) return served[a] < served[b];
  return last[a] < last[b];
}

int wk_stripe_pick(int64_t *served, const int64_t *last, const int *waiting, int n) {
  int best = -1;
  for (int s = 0; s < n; s++)
    if (waiting[s] && (best < 0 || stripe_before(served, last, s, best))) best = s;
  if (best < 0) return -1;
  for (int s = 0; s < n; s++)
    if (!waiting[s] && served[s] < served[best]) served[s] = served[best];
  return best;
}

/* The stripe to take the next bulk batch from (wk_stripe_pick over the
 * stripes whose queue holds fetched messages); -1 when none has any. */
static int pick_stripe(worker_t *w) {
  int waiting[WK_STRIPES_MAX];
  for (int s = 0; s < w->nstripes; s++) waiting[s] = rd_kafka_queue_length(w->stripe_q[s]) > 0;
  return wk_stripe_pick(w->served, w->stripe_last, waiting, w->nstripes);
}

/* A rebalance ran inside the last consumer poll: the messages collected so
 * far belong to the old assignment. Drops them (whoever owns their
 * partitions now starts from the committed offsets). */
static int drop_collected(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int nm, int *gen) {
  if (*gen == w->rebalances) return nm;
  for (int i = 0; i < nm; i++) rd_kafka_message_destroy(msgs[i]);
  b->bytes = 0;
  wk_batch_reset_offsets(b);
  *gen = w->rebalances;
  return 0;
}

/* collect() for a lane whose bulk partitions are forwarded to stripe queues
 * (kafka.tenant_stripes > 1; also before the first assignment, whose
 * rebalance callback runs in its consumer poll): the batch comes from one
 * stripe, picked by pick_stripe; b->stripe says which (the loop adds the
 * batch's rows to served[] as it runs, run_batch). Lane thread only. The
 * consumer queue is still polled, without waiting while a stripe has
 * messages: it runs the rebalance callback and carries errors. Each
 * partition's messages reach one queue only, so a batch's offsets stay
 * contiguous per partition. */
static int collect_stripes(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int max, int yield) {
  int nm = take_carry(w, b, msgs), s = nm ? b->stripe : -1, gen = w->rebalances, idle = 0;
  int64_t deadline = bok_mono_ms() + w->batch_max_ms;
  while (nm < max && !w->stop) {
    int64_t left = deadline - bok_mono_ms();
    if (left <= 0 && nm > 0) break;
    if ((yield || idle) && express_ready(w)) break; /* run what is collected (maybe nothing), then express */
    if (s < 0) s = pick_stripe(w);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, s < 0 && nm == 0 ? STRIPE_POLL_MS : 0);
    nm = drop_collected(w, b, msgs, nm, &gen);
    if (m) {
      if (take(w, b, msgs, &nm, m) && wk_batch_full(w, b, nm)) break;
      continue;
    }
    if (s < 0) {
      /* Nothing more: run (or, second time, commit) what there is. A poll
       * may return early with nothing (librdkafka wakes it, e.g. when a
       * rebalance pauses the fetchers), so an open transaction waits for a
       * second empty poll: the rebalance callback runs in it. */
      if (nm || (w->txn.open && idle)) break;
      idle = 1;
      continue;
    }
    int wait = nm ? (int)(left < STRIPE_POLL_MS ? (left > 0 ? left : 0) : STRIPE_POLL_MS) : 0;
    m = rd_kafka_consume_queue(w->stripe_q[s], wait);
    if (!m) {
      if (nm) break; /* what the stripe had: run it, the next batch picks again */
      s = -1;
      continue;
    }
    b->stripe = s;
    if (take(w, b, msgs, &nm, m) && wk_batch_full(w, b, nm)) break;
  }
  return nm;
}

/* Runs msgs[0..nm) (batch b) inside the open transaction, their results
 * going to the transaction's batch; with `may_cut` (a bulk batch that
 * yields to express messages) it stops after the message during which
 * express messages arrived and cuts b there, so a small job waits for one
 * message of a bulk batch, not the whole batch. Returns how many ran (nm
 * unless cut), -1 on a failure. */
static int run_msgs(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int nm, int64_t *rows, int may_cut) {
  for (int i = 0; i < nm; i++) {
    if (wk_process_msg(w, &w->txn.b, msgs[i], rows) != 0) return -1;
    if (may_cut && i + 1 < nm && express_ready(w)) {
      wk_batch_cut(b, msgs, i + 1);
      return i + 1;
    }
  }
  return nm;
}

/* ---- the open transaction (wk_txn_t) ----------------------------------------- */

/* Drops the transaction's results and offsets; none is open after it. */
static void txn_clear(worker_t *w) {
  wk_batch_free(&w->txn.b);
  memset(&w->txn, 0, sizeof w->txn);
}

/* Opens the lane's transaction unless one is open. 1 ok. */
static int txn_begin(worker_t *w) {
  if (w->txn.open) return 1;
  txn_clear(w);
  wk_batch_reset_offsets(&w->txn.b);
  w->txn.b.stripe = -1;
  w->txn.started_ms = bok_mono_ms();
  if (w->transactions && !txn_ok(w, rd_kafka_begin_transaction(w->producer), "begin_transaction")) return 0;
  w->txn.open = 1;
  return 1;
}

/* Runs batch b in the lane's transaction (opened if needed): its events,
 * its results and offsets into the transaction, the messages a cut left
 * for the next bulk batch, and its rows to its stripe's turn. 1 ok, 0
 * failed (the caller recovers). *ran: the messages it ran. */
static int run_batch(worker_t *w, batch_t *b, rd_kafka_message_t **msgs, int nm, int *ran, int may_cut) {
  int64_t rows = 0;
  if (!txn_begin(w)) return 0;
  *ran = run_msgs(w, b, msgs, nm, &rows, may_cut);
  if (*ran <= 0) return 0;
  keep_carry(w, b, msgs + *ran, nm - *ran);
  wk_batch_merge_offsets(&w->txn.b, b);
  w->txn.batches++;
  w->txn.rows += rows;
  w->txn.bytes += b->bytes;
  w->turns++;
  if (b->stripe >= 0) { /* the lane's deficit round robin counts the batch as it runs */
    w->served[b->stripe] += rows;
    w->txn.served[b->stripe] += rows;
    w->stripe_last[b->stripe] = w->turns;
  }
  return 1;
}

int wk_txn_more(const worker_t *w, int full, int express_waiting, int64_t now_ms) {
  if (!w->transactions || w->stop || !full || express_waiting || w->txn_max_rows <= w->batch_max_rows) return 0;
  const wk_txn_t *t = &w->txn;
  return t->rows < w->txn_max_rows && t->bytes < w->batch_max_bytes && now_ms - t->started_ms < w->txn_max_ms;
}

/* Ends the open transaction: stage the results, send the offsets, commit
 * (without transactions: flush, then commit the offsets). 1 committed, 0
 * failed (the caller aborts and rewinds). */
static int txn_commit(worker_t *w) {
  batch_t *b = &w->txn.b;
  int ok = 1;
  int64_t t = now_us();
  if (!w->transactions) ok = rd_kafka_flush(w->producer, TXN_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (ok) bok_fault("worker.after_produce");
  if (ok) ok = wk_report(w, b) == 0;
  step_done(w, WK_STEP_REPORT, &t);
  if (ok) bok_fault("worker.after_report");
  if (ok && w->transactions) {
    rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(w->consumer);
    ok = txn_ok(w, rd_kafka_send_offsets_to_transaction(w->producer, b->next, md, TXN_TIMEOUT_MS),
                "send_offsets_to_transaction");
    rd_kafka_consumer_group_metadata_destroy(md);
    step_done(w, WK_STEP_OFFSETS, &t);
    if (ok) bok_fault("worker.after_send_offsets");
    if (ok) ok = commit_txn(w);
  } else if (ok) {
    ok = rd_kafka_commit(w->consumer, b->next, 0) == RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  step_done(w, WK_STEP_COMMIT, &t);
  if (ok) bok_fault("worker.after_commit");
  return ok;
}

/* Aborts the open transaction (or re-creates the producer when abort
 * cannot) and takes back what its batches credited to the stripes. */
static void txn_abort(worker_t *w) {
  if (w->transactions && !w->reset) {
    rd_kafka_error_t *e = rd_kafka_abort_transaction(w->producer, TXN_TIMEOUT_MS);
    if (e) {
      LOG(w, BOK_LOG_WARN, "abort_transaction: %s", rd_kafka_error_string(e));
      w->reset = 1;
      rd_kafka_error_destroy(e);
    }
  }
  if (w->transactions && w->reset) wk_reset_producer(w);
  for (int s = 0; s < w->nstripes && s < WK_STRIPES_MAX; s++) w->served[s] -= w->txn.served[s];
  bok_counter_inc(worker_metrics.batches_aborted);
  if (w->transactions) bok_counter_inc(worker_metrics.txn_aborted);
}

void wk_txn_abandon(worker_t *w) {
  if (!w->txn.open) return;
  LOG(w, BOK_LOG_INFO, "rebalance during an open transaction (%d batches, %lld rows): aborted; its rows run again "
      "from the committed offsets", w->txn.batches, (long long)w->txn.rows);
  txn_abort(w);
  txn_clear(w);
}

/* A failed transaction (b: the batch being run, if any): abort it, drop
 * what was carried over, rewind to the start of all it collected. Never
 * exits the worker. */
static void recover(worker_t *w, batch_t *b) {
  txn_abort(w);
  if (!w->txn.b.first) wk_batch_reset_offsets(&w->txn.b);
  wk_batch_merge_offsets(&w->txn.b, b);
  for (int i = 0; i < w->ncarry; i++) rd_kafka_message_destroy(w->carry[i]);
  w->ncarry = 0;
  rewind_to(w, w->txn.b.first);
  txn_clear(w);
}

/* A committed transaction: the lane's totals and metrics. */
static void count_done(worker_t *w) {
  const wk_txn_t *t = &w->txn;
  w->rows_done += t->rows;
  w->batches += t->batches;
  w->txns++;
  int64_t valid = 0, rejected = 0;
  for (size_t i = 0; i < t->b.n; i++) {
    rejected += (int64_t)t->b.jobs[i].res.n_rejected;
    for (size_t k = 0; k < t->b.jobs[i].res.n_batches; k++) valid += t->b.jobs[i].res.batches[k]->valid;
  }
  bok_counter_add(worker_metrics.rows_consumed, (uint64_t)t->rows);
  bok_counter_add(worker_metrics.rows_valid, (uint64_t)valid);
  bok_counter_add(worker_metrics.rows_rejected, (uint64_t)rejected);
  bok_counter_add(worker_metrics.batches_committed, (uint64_t)t->batches);
  if (w->transactions) bok_counter_inc(worker_metrics.txn_committed);
}

/* 1 when the lane's bulk queues hold fetched messages (a stripe's queue,
 * or with one stripe the consumer queue): another batch is ready. */
static int bulk_waiting(worker_t *w) {
  if (w->nstripes > 1) {
    for (int s = 0; s < w->nstripes; s++)
      if (rd_kafka_queue_length(w->stripe_q[s]) > 0) return 1;
    return 0;
  }
  rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(w->consumer);
  int n = q && rd_kafka_queue_length(q) > 0;
  if (q) rd_kafka_queue_destroy(q);
  return n;
}

/* After a batch ran (or nothing was collected): commits the open
 * transaction unless it takes another batch (wk_txn_more; `full`: the batch
 * was a full bulk batch that ran whole). 1 ok, 0 the commit failed (the
 * caller recovers). */
static int txn_maybe_commit(worker_t *w, int full) {
  if (!w->txn.open) return 1;
  if (wk_txn_more(w, full, express_ready(w), bok_mono_ms())) {
    bok_fault("worker.txn_open");
    return 1;
  }
  if (!txn_commit(w)) return 0;
  int64_t t = now_us();
  wk_confirm(w, &w->txn.b);
  step_done(w, WK_STEP_CONFIRM, &t);
  count_done(w);
  txn_clear(w);
  return 1;
}

/* The lane's totals every 5 s; with tenant stripes, also the rows credited
 * to each stripe (wk_stripe_pick's counts: lifted while a stripe is idle). */
/* " ms: collect=.. run=.. ..." -- the lane's step times so far. */
static void step_times(const worker_t *w, char *out, size_t n) {
  static const char *const names[WK_STEPS] = {"collect", "run", "report", "offsets", "commit", "confirm"};
  size_t k = (size_t)snprintf(out, n, " ms:");
  for (int s = 0; s < WK_STEPS && k < n; s++)
    k += (size_t)snprintf(out + k, n - k, " %s=%lld", names[s], (long long)(w->step_us[s] / 1000));
}

static void log_stats(worker_t *w) {
  char st[200] = "", steps[160];
  size_t n = 0;
  for (int s = 0; w->nstripes > 1 && s < w->nstripes && n + 24 < sizeof st; s++)
    n += (size_t)snprintf(st + n, sizeof st - n, "%s%lld", s ? "/" : " stripe_rows=", (long long)w->served[s]);
  step_times(w, steps, sizeof steps);
  LOG(w, BOK_LOG_INFO, "stats: rows_processed=%lld batches=%lld transactions=%lld%s%s", (long long)w->rows_done,
      (long long)w->batches, (long long)w->txns, st, steps);
}

int worker_run(worker_t *w) {
  int backoff_ms = 0, busy = 0;
  rd_kafka_message_t *msgs[WK_BATCH_MSGS];
  wk_producer_start(w);
  while (!w->stop) {
    for (int t = 0; t < backoff_ms && !w->stop; t += 100) usleep(100 * 1000);
    if (w->stop) break;
    batch_t b;
    memset(&b, 0, sizeof b);
    wk_batch_reset_offsets(&b);
    b.stripe = -1;
    /* Express partitions first, up to EXPRESS_BURST batches in a row. */
    int express = express_ready(w) && w->express_streak < EXPRESS_BURST;
    int yield = w->express_streak < EXPRESS_BURST;
    int64_t t = now_us();
    int nm = express                                 ? collect_express(w, &b, msgs, WK_BATCH_MSGS)
             : w->nstripes > 1 ? collect_stripes(w, &b, msgs, WK_BATCH_MSGS, yield)
                               : collect(w, &b, msgs, WK_BATCH_MSGS, yield);
    w->express_streak = express ? w->express_streak + (nm > 0) : 0;
    /* a lane that ran a batch last time and gets one now was busy: its wait
     * counts; the first batch after idle time does not */
    if (nm > 0 && busy) step_done(w, WK_STEP_COLLECT, &t);
    t = now_us();
    busy = nm > 0;
    int ran = nm, ok = nm == 0 || run_batch(w, &b, msgs, nm, &ran, !express && yield);
    if (nm > 0) step_done(w, WK_STEP_RUN, &t);
    /* a whole bulk batch that was full, or after which more is waiting */
    int full = ok && nm > 0 && ran == nm && !express &&
               (wk_batch_full(w, &b, nm) || nm == WK_BATCH_MSGS || bulk_waiting(w));
    if (ok && ran < nm) {
      bok_counter_inc(worker_metrics.batches_cut);
      nm = ran; /* the rest is carried (run_batch) */
    }
    if (ok) ok = txn_maybe_commit(w, full);
    if (ok) {
      backoff_ms = 0;
    } else {
      recover(w, &b);
      backoff_ms = backoff_ms ? (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 200;
    }
    for (int i = 0; i < nm; i++) rd_kafka_message_destroy(msgs[i]);
    wk_batch_free(&b);
    if (!w->txn.open) wk_jobs_evict(w); /* an open transaction points at its jobs */
    int64_t now = bok_mono_ms();
    if (now - w->last_stat_ms > 5000) {
      if (w->rows_done) log_stats(w);
      w->last_stat_ms = now;
    }
  }
  if (w->txn.open) { /* stopped inside collect with a transaction open: it never ran to its end */
    txn_abort(w);
    txn_clear(w);
  }
  for (int i = 0; i < w->ncarry; i++) rd_kafka_message_destroy(w->carry[i]);
  w->ncarry = 0;
  char steps[160];
  step_times(w, steps, sizeof steps);
  LOG(w, BOK_LOG_INFO, "stopping: rows_processed=%lld batches=%lld transactions=%lld%s", (long long)w->rows_done,
      (long long)w->batches, (long long)w->txns, steps);
  return 0;
}
