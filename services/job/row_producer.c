/* row_producer.c -- the rows-topic producer pool (row_producer.h).
 *
 * Design: POOL transactional producers, each owned by one upload at a time
 * (slot.busy under the pool mutex). Delivery reports run on the thread that
 * polls, i.e. the upload owning the slot; each message carries
 * (transaction sequence << 32 | message index) as its opaque, so a late report
 * of an earlier transaction is recognised and the index finds the message's
 * partition/offset slot. A failed commit or abort never leaves a slot broken:
 * the producer is destroyed and re-created with the same transactional.id,
 * whose init_transactions fences the old epoch and settles its transaction
 * (issue 11, bug 4). A slot whose re-creation failed (broker down) has no
 * producer and is re-created by the next upload that takes it. Kafka down
 * at start is the same outage: the pool is created without contacting
 * Kafka (only the configuration is checked); each slot's init_transactions
 * and the rows topic's creation happen at the first upload that needs them.
 *
 * No upload runs on a cold producer (docs/FAIRNESS.md "cold rows
 * producers"): each producer holds a handle of the rows topic, made once
 * the topic exists (rd_kafka_topic_new asks for the topic's leaders at
 * once; before ensure_topic, its metadata request would make the broker
 * auto-create the topic with its defaults), and produces through it.
 * librdkafka 2.0.2 sends the first message of a topic it learns from a
 * produce call by name only after its metadata timer (250 ms to 1 s), which
 * every first upload on a producer paid: typically the first small job on
 * the second producer, uploaded while a big upload holds the first. When
 * Kafka answers at start, every producer is made ready then
 * (init_transactions, the topic handle, its leaders known), else by its
 * first upload (slot_ready), and again after a re-creation.
 *
 * A separate read_committed consumer (no group membership, never commits)
 * answers "did this message commit?" and lists a consumer group's committed
 * offsets; it is shared under its own mutex.
 *
 * Express partitions (docs/FAIRNESS.md): with kafka.express_partitions = E >
 * 0, partitions 0..E-1 of the rows topic carry small jobs only. An upload's
 * messages are held back until it passes kafka.express_max_rows rows or 8 MB (then
 * they, and every later one, go round-robin to partitions E..N-1 from a start
 * picked by the job id) or ends (then they go to one express partition, picked
 * by the job id). Workers drain their express partitions first.
 * kafka.tenant_stripes = G > 1 (default 2) cuts the bulk partitions into G
 * stripes and keeps each tenant's big jobs on one stripe, chosen when its
 * first big upload turns bulk: the stripe of the tenant's unfinished big jobs
 * if it has any, else the stripe with the least outstanding work of other
 * tenants (the `bulk` table below), so two tenants busy at the same time are
 * on different stripes and a lane holding partitions of several stripes
 * shares itself between them (services/worker/loop.c). */
#include "row_producer.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch/v1/rows.pb-c.h"
#include "bok/kafka.h"
#include "bok/util.h"
#include "job_obs.h"
#include "row_encode.h"

#define POOL 2
/* kafka.produce_buffer_kbytes: librdkafka queue of all slots together (was 64 MB per slot). */
#define ROW_PRODUCE_BUFFER_KB_DEFAULT 32768
/* An upload whose held messages pass this many bytes is not small, whatever
 * its rows: bounds the memory held per upload (rows may be 1 MB each). */
#define EXPRESS_MAX_BYTES (8u << 20)
#define TXN_TIMEOUT_MS 60000
#define STRIPES_DEFAULT 2
/* 1 express partition + 2 stripes x 4 lanes (one worker's default): every
 * lane holds one partition of each stripe (docs/FAIRNESS.md). */
#define ROWS_PARTITIONS_DEFAULT 9
/* Big jobs remembered for the stripe choice; the oldest is forgotten beyond. */
#define BULK_JOBS_MAX 1024
#define COMMIT_TIMEOUT_MS 30000
/* Longest wait per producer when making it ready at start (pool_warm). */
#define WARM_TIMEOUT_MS 5000

typedef struct {
  rd_kafka_t *rk;        /* NULL after a failed re-creation */
  rd_kafka_topic_t *rkt; /* the rows topic on rk once it exists (slot_topic); destroyed with rk (slot_close) */
  int need_init;         /* created without init_transactions (pool start) */
  int index;
  int busy;
  uint32_t seq;                 /* transaction sequence (delivery report opaque) */
  struct row_batch_writer *cur; /* the writer owning the slot */
  int failed;
  char errmsg[256];
  char job_id[40]; /* job of the current writer, for row_pool_job_active */
} slot_t;

struct row_pool {
  slot_t slots[POOL];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  const bok_config_t *cfg;
  char *topic;
  int topic_ready; /* the rows topic exists (under mu) */
  int transactions;
  int batch_rows;
  size_t batch_bytes;
  int express_parts;        /* E: partitions 0..E-1 are express; 0 = off */
  int64_t express_max_rows; /* an upload of at most this many rows is express */
  int stripes;              /* G: bulk partitions in G tenant stripes; 1 = one stripe */
  int npart;                /* partitions of the rows topic; 0 = not known yet (mu) */
  /* The stripe choice (row_pool_stripe): big jobs whose rows may still be
   * waiting, with their tenant and stripe. Under stripe_mu, which is taken
   * before the store's lock (outstanding() reads the store) and never with mu. */
  pthread_mutex_t stripe_mu;
  row_bulk_job_t *bulk;              /* oldest first */
  struct row_batch_writer **bulk_w; /* bulk[i]'s writer while its upload runs, else NULL */
  size_t nbulk;
  row_pool_outstanding_fn outstanding;
  void *outstanding_ud;
  bok_log_fn log;
  void *log_opaque;
  rd_kafka_t *reader; /* read_committed consumer for resolve */
  struct {
    char *name;
    rd_kafka_t *rk;
  } *groups; /* consumer handles per worker group, for committed offsets */
  size_t ngroups;
  pthread_mutex_t reader_mu; /* reader and groups */
};

/* Where an upload's messages go. */
enum {
  ROUTE_KEY,     /* express off: librdkafka's partitioner on the message key */
  ROUTE_HOLD,    /* not decided yet: messages are held */
  ROUTE_EXPRESS, /* a small upload: one express partition */
  ROUTE_BULK     /* a big one: the other partitions, round-robin */
};

/* A packed RowBatch message held until its upload's route is known. */
typedef struct {
  uint8_t *buf;
  size_t sz;
  char key[64];
  int kl;
  size_t idx;
} held_t;

struct row_batch_writer {
  row_pool_t *pool;
  slot_t *slot;
  char tenant[72], job_id[40], model_id[40];
  int64_t schema_version;
  bok_buf_t body;   /* the pending rows, encoded as RowBatch.rows entries (row_encode.h) */
  int64_t key_row;  /* the first pending row (the message key) */
  int64_t min_row, max_row;
  size_t n;
  size_t bytes;
  row_msg_t *msgs;
  size_t nmsgs, msgcap;
  size_t delivered;
  int route;         /* ROUTE_*: where this upload's messages go */
  int npart;         /* the topic's partitions when routing by hand */
  uint32_t spread;   /* from the job id: first bulk partition, the express one */
  int stripe;        /* its bulk stripe, chosen when the route turns bulk */
  int64_t sent_rows; /* rows produced so far (atomic: read by other uploads' stripe choice) */
  size_t nbulk;      /* bulk messages sent (round-robin) */
  held_t *held;      /* packed messages waiting for the express decision */
  size_t nheld, heldcap;
  int64_t held_rows;
  size_t held_bytes;
};

#define LOGP(p, lvl, ...) bok_logf((p)->log, (p)->log_opaque, lvl, __VA_ARGS__)

static void choose_stripe(row_batch_writer_t *w);

/* Delivery report: on the polling (upload) thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  slot_t *slot = opaque;
  uint64_t tag = (uint64_t)(uintptr_t)m->_private;
  if (m->err) bok_counter_inc(job_metrics.produce_errors);
  if ((uint32_t)(tag >> 32) != slot->seq || !slot->cur) return; /* an earlier transaction */
  if (m->err) {
    if (!slot->failed) snprintf(slot->errmsg, sizeof slot->errmsg, "%s", rd_kafka_err2str(m->err));
    slot->failed = 1;
    return;
  }
  size_t idx = (size_t)(tag & 0xffffffffu);
  if (idx < slot->cur->nmsgs) {
    slot->cur->msgs[idx].partition = m->partition;
    slot->cur->msgs[idx].offset = m->offset;
    slot->cur->delivered++;
  }
}

/* init_timeout_ms < 0: no init_transactions (slot->need_init is set; the
 * first upload of the slot does it). */
static rd_kafka_t *make_producer(row_pool_t *p, slot_t *slot, int init_timeout_ms, char *err, size_t errlen) {
  const bok_config_t *cfg = p->cfg;
  /* Stable per instance (its listen address) so a restarted service fences
   * its previous incarnation, and distinct between instances. */
  char def[160], tid[256], tmo[32];
  snprintf(def, sizeof def, "bok-job-%s", bok_config_get(cfg, "listen", "127.0.0.1:50052"));
  for (char *c = def; *c; c++)
    if (*c == ':') *c = '_';
  snprintf(tid, sizeof tid, "%s-%d", bok_config_get(cfg, "kafka.transactional_id_prefix", def), slot->index);
  snprintf(tmo, sizeof tmo, "%d", TXN_TIMEOUT_MS);
  /* An upload is one transaction: cap what waits in librdkafka's queue
   * (default 1 GB) so memory does not follow the file size. The cap is the
   * slot's share of kafka.produce_buffer_kbytes (the whole process's rows
   * producers); a full queue makes the upload wait, never fail. */
  char qkb[24];
  int64_t budget = bok_config_get_int(cfg, "kafka.produce_buffer_kbytes", ROW_PRODUCE_BUFFER_KB_DEFAULT) / POOL;
  /* at least one largest message: librdkafka never queues a message larger
   * than the cap (produce would wait forever) */
  int64_t one = bok_config_get_int(cfg, "kafka.producer.message.max.bytes", 8000000) / 1024 + 1;
  if (budget < one) budget = one;
  snprintf(qkb, sizeof qkb, "%lld", (long long)budget);
  /* zstd level 1, not the codec's default 3 (as the worker's events
   * producer): librdkafka 2.0.2 makes a fresh zstd context per message set,
   * and level 3's ~0.75 MB of tables, allocated, cleared and (jemalloc
   * returns freed pages at once here) faulted in again for every set, cost
   * more than compressing the rows. Workers read the same messages;
   * kafka.producer.compression.level overrides it. */
  const char *defaults[] = {"linger.ms", "5", "compression.codec", "zstd", "compression.level", "1",
                            "enable.idempotence", "true", "message.max.bytes", "8000000",
                            "queue.buffering.max.kbytes", qkb, "transactional.id", tid,
                            "transaction.timeout.ms", tmo, NULL};
  if (!p->transactions) defaults[12] = NULL; /* no transactional.id */
  rd_kafka_conf_t *conf = bok_kafka_conf_new(cfg, defaults, "kafka.producer.", err, errlen);
  if (!conf) return NULL;
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, slot);
  rd_kafka_t *rk = bok_kafka_client_new(RD_KAFKA_PRODUCER, conf, init_timeout_ms, err, errlen);
  slot->need_init = rk && p->transactions && init_timeout_ms < 0;
  return rk;
}

/* The slot's handle of the rows topic, made once the topic exists (never
 * before ensure_topic: the producer may auto-create topics, and its
 * metadata request would create the rows topic with the broker's defaults),
 * with the topic's leaders asked for at once: uploads produce through it,
 * so the first one on this producer does not wait for librdkafka's metadata
 * timer. 0 ok, -1 with err set. The slot's owner (or the pool's creator). */
static int slot_topic(row_pool_t *p, slot_t *slot, char *err, size_t errlen) {
  if (slot->rkt) return 0;
  slot->rkt = rd_kafka_topic_new(slot->rk, p->topic, NULL);
  if (!slot->rkt) {
    snprintf(err, errlen, "rows topic %s: %s", p->topic, rd_kafka_err2str(rd_kafka_last_error()));
    return -1;
  }
  if (bok_kafka_topic_wait_leaders(slot->rk, p->topic, WARM_TIMEOUT_MS) != 0)
    LOGP(p, BOK_LOG_WARN, "rows producer %d: the leaders of %s are not known yet", slot->index, p->topic);
  return 0;
}

/* 1 once the rows topic exists (or making it was tried with Kafka up). Any
 * thread (takes mu). */
static int topic_ready(row_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  int ready = p->topic_ready;
  pthread_mutex_unlock(&p->mu);
  return ready;
}

/* Drops the slot's producer (its queue purged) and topic handle. The slot's
 * owner (or the pool's destroyer). */
static void slot_close(slot_t *slot) {
  if (slot->rkt) rd_kafka_topic_destroy(slot->rkt);
  slot->rkt = NULL;
  bok_kafka_producer_drop(slot->rk);
  slot->rk = NULL;
}

/* Destroys the slot's producer and makes a new one with the same
 * transactional.id (fences the old epoch). Called by the slot's owner. */
static void slot_recreate(row_pool_t *p, slot_t *slot) {
  slot_close(slot);
  char err[256];
  slot->rk = make_producer(p, slot, 30000, err, sizeof err);
  if (slot->rk && topic_ready(p) && slot_topic(p, slot, err, sizeof err) != 0) slot_close(slot);
  if (!slot->rk)
    LOGP(p, BOK_LOG_WARN, "rows producer %d: %s (re-created by the next upload)", slot->index, err);
  else
    LOGP(p, BOK_LOG_INFO, "rows producer %d re-created", slot->index);
}

/* Creates the rows topic if missing. Rows carry their upload time; a job
 * may wait a long time before every worker is back, so they are kept a week
 * by default. */
static int ensure_topic(row_pool_t *p, rd_kafka_t *rk, int timeout_ms) {
  const char *configs[] = {"retention.ms", bok_config_get(p->cfg, "kafka.rows_topic_retention_ms", "604800000"), NULL};
  int partitions = (int)bok_config_get_int(p->cfg, "kafka.rows_partitions", ROWS_PARTITIONS_DEFAULT);
  char err[300];
  if (bok_kafka_topic_ensure(rk, p->topic, partitions, configs, p->cfg, NULL, timeout_ms, err, sizeof err) != 0) {
    LOGP(p, BOK_LOG_WARN, "%s", err);
    return -1;
  }
  return 0;
}

/* Kafka work an upload's slot may still need (upload thread owning the
 * slot): the init_transactions skipped at start, then the rows topic if the
 * start could not create it, and the slot's handle of it. 0 ok, -1 with err
 * set (Kafka unreachable: the upload fails, the next one retries). */
static int slot_ready(row_pool_t *p, slot_t *slot, char *err, size_t errlen) {
  if (!slot->rk) slot_recreate(p, slot);
  if (!slot->rk) {
    snprintf(err, errlen, "Kafka: cannot create the rows producer");
    return -1;
  }
  if (slot->need_init) {
    char e[256];
    if (bok_kafka_init_transactions(slot->rk, 30000, e, sizeof e) != 0) {
      snprintf(err, errlen, "Kafka: %s", e);
      slot_close(slot); /* re-created by the next upload */
      return -1;
    }
    slot->need_init = 0;
  }
  if (!topic_ready(p)) {
    /* Kafka answers (init_transactions did): one more try, and then as at a
     * start with Kafka up, a failure (no right to create topics, a topic
     * made by hand) is logged and the upload goes on. */
    ensure_topic(p, slot->rk, 15000);
    pthread_mutex_lock(&p->mu);
    p->topic_ready = 1;
    pthread_mutex_unlock(&p->mu);
  }
  return slot_topic(p, slot, err, errlen);
}

static rd_kafka_t *make_reader(row_pool_t *p, char *err, size_t errlen) {
  const char *defaults[] = {"group.id", "bok-job-resolver", /* never joins or commits: assign() only */
                            "enable.auto.commit", "false", "enable.auto.offset.store", "false", "isolation.level",
                            "read_committed", "enable.partition.eof", "true", "fetch.max.bytes", "8388608", NULL};
  rd_kafka_conf_t *conf = bok_kafka_conf_new(p->cfg, defaults, NULL, err, errlen);
  rd_kafka_t *rk = conf ? bok_kafka_client_new(RD_KAFKA_CONSUMER, conf, 0, err, errlen) : NULL;
  if (rk) rd_kafka_poll_set_consumer(rk);
  return rk;
}

static uint32_t fnv1a(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

/* The rows topic's partition count, asked once from the broker (0 while it
 * cannot be known: such uploads use the key partitioner). Any thread; rk is
 * a producer the caller holds. Partitions added later are used after a
 * restart. */
static int pool_partitions(row_pool_t *p, rd_kafka_t *rk) {
  pthread_mutex_lock(&p->mu);
  int n = p->npart;
  pthread_mutex_unlock(&p->mu);
  if (n > 0 || !rk) return n;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, p->topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
      md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    n = md->topics[0].partition_cnt;
  if (md) rd_kafka_metadata_destroy(md);
  if (rkt) rd_kafka_topic_destroy(rkt);
  pthread_mutex_lock(&p->mu);
  if (n > 0) p->npart = n;
  pthread_mutex_unlock(&p->mu);
  return n;
}

/* Makes every producer ready for its first upload while Kafka answers (pool
 * creation, no upload yet): init_transactions, and its handle of the rows
 * topic with the leaders known. A producer that is not ready is made so by the first upload
 * that takes it (slot_ready), as when Kafka is down at start. */
static void pool_warm(row_pool_t *p) {
  for (int i = 0; i < POOL; i++) {
    slot_t *slot = &p->slots[i];
    char e[256];
    if (slot->need_init && bok_kafka_init_transactions(slot->rk, WARM_TIMEOUT_MS, e, sizeof e) != 0) {
      LOGP(p, BOK_LOG_WARN, "rows producer %d: %s (done by its first upload)", i, e);
      continue;
    }
    slot->need_init = 0;
    if (slot_topic(p, slot, e, sizeof e) != 0) LOGP(p, BOK_LOG_WARN, "rows producer %d: %s", i, e);
  }
}

row_pool_t *row_pool_new(const bok_config_t *cfg, bok_log_fn log, void *log_opaque, char *err, size_t errlen) {
  row_pool_t *p = calloc(1, sizeof *p);
  p->cfg = cfg;
  p->topic = strdup(bok_config_get(cfg, "kafka.rows_topic", "bok.rows"));
  p->transactions = bok_config_get_bool(cfg, "kafka.transactions", 1);
  p->batch_rows = (int)bok_config_get_int(cfg, "kafka.batch_rows", 500);
  if (p->batch_rows < 1) p->batch_rows = 1;
  p->batch_bytes = 256 * 1024;
  p->express_parts = (int)bok_config_get_int(cfg, "kafka.express_partitions", 1);
  if (p->express_parts < 0) p->express_parts = 0;
  p->express_max_rows = bok_config_get_int(cfg, "kafka.express_max_rows", 1000);
  p->stripes = (int)bok_config_get_int(cfg, "kafka.tenant_stripes", STRIPES_DEFAULT);
  if (p->stripes < 1) p->stripes = 1;
  if (p->stripes > ROW_STRIPES_MAX) p->stripes = ROW_STRIPES_MAX;
  p->bulk = calloc(BULK_JOBS_MAX, sizeof *p->bulk);
  p->bulk_w = calloc(BULK_JOBS_MAX, sizeof *p->bulk_w);
  pthread_mutex_init(&p->stripe_mu, NULL);
  p->log = log;
  p->log_opaque = log_opaque;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  pthread_mutex_init(&p->reader_mu, NULL);
  for (int i = 0; i < POOL; i++) {
    p->slots[i].index = i;
    p->slots[i].rk = make_producer(p, &p->slots[i], -1, err, errlen); /* fails on a bad config only */
    if (!p->slots[i].rk) goto fail;
  }
  p->reader = make_reader(p, err, errlen);
  if (!p->reader) goto fail;
  /* Workers find the topic sooner if it exists before the first upload;
   * with Kafka down this gives up after 5 s and the first upload retries. */
  p->topic_ready = ensure_topic(p, p->slots[0].rk, 5000) == 0;
  int np = p->topic_ready ? pool_partitions(p, p->slots[0].rk) : 0;
  if (p->topic_ready) pool_warm(p);
  if (p->express_parts > 0 && np > 0 && np <= p->express_parts)
    LOGP(p, BOK_LOG_WARN, "express partitions off: %s has %d partitions, kafka.express_partitions is %d", p->topic, np,
         p->express_parts);
  int nbulk = np - (p->express_parts < np ? p->express_parts : 0);
  if (p->stripes > 1 && np > 0 && nbulk % p->stripes != 0)
    LOGP(p, BOK_LOG_WARN,
         "tenant stripes uneven: %s has %d bulk partitions for %d stripes, some lanes will serve one stripe only "
         "(docs/FAIRNESS.md: express + stripes x lanes partitions)",
         p->topic, nbulk, p->stripes);
  return p;
fail:
  row_pool_destroy(p);
  return NULL;
}

void row_pool_destroy(row_pool_t *p) {
  if (!p) return;
  for (int i = 0; i < POOL; i++)
    if (p->slots[i].rk) {
      rd_kafka_flush(p->slots[i].rk, 5000);
      if (p->slots[i].rkt) rd_kafka_topic_destroy(p->slots[i].rkt);
      rd_kafka_destroy(p->slots[i].rk);
    }
  if (p->reader) {
    rd_kafka_consumer_close(p->reader);
    rd_kafka_destroy(p->reader);
  }
  for (size_t i = 0; i < p->ngroups; i++) {
    rd_kafka_destroy(p->groups[i].rk);
    free(p->groups[i].name);
  }
  free(p->groups);
  free(p->bulk);
  free(p->bulk_w);
  pthread_mutex_destroy(&p->stripe_mu);
  pthread_mutex_destroy(&p->reader_mu);
  free(p->topic);
  free(p);
}

const char *row_pool_topic(const row_pool_t *p) { return p->topic; }

void row_pool_set_outstanding(row_pool_t *p, row_pool_outstanding_fn fn, void *ud) {
  pthread_mutex_lock(&p->stripe_mu);
  p->outstanding = fn;
  p->outstanding_ud = ud;
  pthread_mutex_unlock(&p->stripe_mu);
}

int row_stripe_choose(const row_bulk_job_t *jobs, size_t n, const char *tenant, int g) {
  if (g <= 1) return 0;
  if (g > ROW_STRIPES_MAX) g = ROW_STRIPES_MAX;
  int64_t load[ROW_STRIPES_MAX] = {0};
  for (size_t i = 0; i < n; i++) {
    if (jobs[i].outstanding <= 0 || jobs[i].stripe < 0 || jobs[i].stripe >= g) continue;
    if (strcmp(jobs[i].tenant, tenant) == 0) return jobs[i].stripe;
    load[jobs[i].stripe] += jobs[i].outstanding;
  }
  /* Ties start from the tenant's own stripe (row_stripe_home): two job
   * services (shards) that know nothing of each other's jobs then put two
   * tenants on different stripes whenever their names say so, instead of
   * both on stripe 0. */
  int home = row_stripe_home(tenant, g), best = home;
  for (int k = 1; k < g; k++) {
    int s = (home + k) % g;
    if (load[s] < load[best]) best = s;
  }
  return best;
}

int row_stripe_home(const char *tenant, int g) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *c = (const unsigned char *)tenant; *c; c++) h = (h ^ *c) * 16777619u;
  return g > 1 ? (int)(h % (uint32_t)g) : 0;
}

int row_pool_job_active(row_pool_t *p, const char *job_id) {
  int active = 0;
  pthread_mutex_lock(&p->mu);
  for (int i = 0; i < POOL; i++)
    if (p->slots[i].busy && strcmp(p->slots[i].job_id, job_id) == 0) active = 1;
  pthread_mutex_unlock(&p->mu);
  return active;
}

static void release_slot(row_pool_t *p, slot_t *slot) {
  pthread_mutex_lock(&p->mu);
  slot->busy = 0;
  slot->cur = NULL;
  slot->job_id[0] = '\0';
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static slot_t *take_slot(row_pool_t *p, const char *job_id) {
  pthread_mutex_lock(&p->mu);
  slot_t *slot = NULL;
  while (!slot) {
    /* a slot with a live producer first: a broken one costs a re-creation */
    for (int i = 0; i < POOL && !slot; i++)
      if (!p->slots[i].busy && p->slots[i].rk) slot = &p->slots[i];
    for (int i = 0; i < POOL && !slot; i++)
      if (!p->slots[i].busy) slot = &p->slots[i];
    if (!slot) pthread_cond_wait(&p->cv, &p->mu);
  }
  slot->busy = 1;
  slot->seq++;
  slot->failed = 0;
  slot->errmsg[0] = '\0';
  snprintf(slot->job_id, sizeof slot->job_id, "%s", job_id);
  pthread_mutex_unlock(&p->mu);
  return slot;
}

row_batch_writer_t *row_producer_begin(row_pool_t *p, const char *tenant, const char *job_id, const char *model_id,
                                       int64_t schema_version, char *err, size_t errlen) {
  slot_t *slot = take_slot(p, job_id);
  if (slot_ready(p, slot, err, errlen) != 0) {
    release_slot(p, slot);
    return NULL;
  }
  if (p->transactions) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(slot->rk);
    if (e) {
      snprintf(err, errlen, "Kafka: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      slot_recreate(p, slot); /* whatever state it was left in */
      release_slot(p, slot);
      return NULL;
    }
  }
  row_batch_writer_t *w = calloc(1, sizeof *w);
  w->pool = p;
  w->slot = slot;
  slot->cur = w;
  snprintf(w->tenant, sizeof w->tenant, "%s", tenant);
  snprintf(w->job_id, sizeof w->job_id, "%s", job_id);
  snprintf(w->model_id, sizeof w->model_id, "%s", model_id);
  w->schema_version = schema_version;
  w->npart = p->express_parts > 0 || p->stripes > 1 ? pool_partitions(p, slot->rk) : 0;
  w->route = w->npart <= p->express_parts ? ROUTE_KEY : p->express_parts > 0 ? ROUTE_HOLD : ROUTE_BULK;
  w->spread = fnv1a(job_id);
  if (w->route == ROUTE_BULK) choose_stripe(w); /* express off: every upload is big */
  bok_buf_init(&w->body, 0);
  return w;
}

/* Records the message about to be produced; returns its index. */
static size_t note_msg(row_batch_writer_t *w) {
  if (w->nmsgs == w->msgcap) {
    w->msgcap = w->msgcap ? w->msgcap * 2 : 64;
    w->msgs = realloc(w->msgs, w->msgcap * sizeof *w->msgs);
  }
  row_msg_t *m = &w->msgs[w->nmsgs];
  m->first_row = w->min_row;
  m->last_row = w->max_row;
  m->rows = (int64_t)w->n;
  m->partition = -1;
  m->offset = -1;
  return w->nmsgs++;
}

/* Stripes in use: G, at most one per bulk partition. */
static int stripes_used(const row_batch_writer_t *w) {
  int bulk = w->npart - w->pool->express_parts;
  return bulk < 1 ? 1 : w->pool->stripes < bulk ? w->pool->stripes : bulk;
}

/* Outstanding rows of remembered job i (stripe_mu held): from its writer
 * while the upload runs, then from the store. */
static int64_t bulk_outstanding(row_pool_t *p, size_t i) {
  if (p->bulk_w[i]) return __atomic_load_n(&p->bulk_w[i]->sent_rows, __ATOMIC_RELAXED) + 1;
  return p->outstanding ? p->outstanding(p->outstanding_ud, p->bulk[i].tenant, p->bulk[i].job_id) : 1;
}

/* Refreshes the remembered jobs' outstanding rows and forgets the done ones
 * (stripe_mu held). */
static void bulk_prune(row_pool_t *p) {
  size_t k = 0;
  for (size_t i = 0; i < p->nbulk; i++) {
    p->bulk[i].outstanding = bulk_outstanding(p, i);
    if (p->bulk[i].outstanding <= 0 && !p->bulk_w[i]) continue;
    p->bulk[k] = p->bulk[i];
    p->bulk_w[k++] = p->bulk_w[i];
  }
  p->nbulk = k;
}

/* Remembers the writer's job (stripe_mu held); when full, forgets the
 * oldest finished upload. */
static void bulk_add(row_pool_t *p, row_batch_writer_t *w) {
  if (p->nbulk == BULK_JOBS_MAX) {
    size_t i = 0;
    while (i < p->nbulk && p->bulk_w[i]) i++;
    if (i == p->nbulk) return; /* BULK_JOBS_MAX uploads at once: cannot happen with POOL slots */
    memmove(&p->bulk[i], &p->bulk[i + 1], (p->nbulk - i - 1) * sizeof *p->bulk);
    memmove(&p->bulk_w[i], &p->bulk_w[i + 1], (p->nbulk - i - 1) * sizeof *p->bulk_w);
    p->nbulk--;
  }
  row_bulk_job_t *j = &p->bulk[p->nbulk];
  snprintf(j->job_id, sizeof j->job_id, "%s", w->job_id);
  snprintf(j->tenant, sizeof j->tenant, "%s", w->tenant);
  j->stripe = w->stripe;
  j->outstanding = 1;
  p->bulk_w[p->nbulk++] = w;
}

/* Picks the stripe of a job whose route turns bulk, and remembers the job
 * (the upload's thread). */
static void choose_stripe(row_batch_writer_t *w) {
  row_pool_t *p = w->pool;
  int g = stripes_used(w);
  w->stripe = 0;
  if (g <= 1) return;
  pthread_mutex_lock(&p->stripe_mu);
  bulk_prune(p);
  w->stripe = row_stripe_choose(p->bulk, p->nbulk, w->tenant, g);
  bulk_add(p, w);
  pthread_mutex_unlock(&p->stripe_mu);
}

/* The upload of w is over (its thread): an aborted job is forgotten, a
 * committed one is remembered until the store says its rows are done. */
static void bulk_upload_over(row_batch_writer_t *w, int aborted) {
  row_pool_t *p = w->pool;
  pthread_mutex_lock(&p->stripe_mu);
  for (size_t i = 0; i < p->nbulk; i++) {
    if (p->bulk_w[i] != w) continue;
    p->bulk_w[i] = NULL;
    if (aborted) {
      memmove(&p->bulk[i], &p->bulk[i + 1], (p->nbulk - i - 1) * sizeof *p->bulk);
      memmove(&p->bulk_w[i], &p->bulk_w[i + 1], (p->nbulk - i - 1) * sizeof *p->bulk_w);
      p->nbulk--;
    }
    break;
  }
  pthread_mutex_unlock(&p->stripe_mu);
}

/* The partition of the writer's next message (RD_KAFKA_PARTITION_UA: the
 * key partitioner). Bulk partitions E..N-1 form G stripes (partition E + i is
 * in stripe i mod G); a job goes round-robin over its tenant's stripe. */
static int32_t next_partition(row_batch_writer_t *w) {
  uint32_t e = (uint32_t)w->pool->express_parts;
  if (w->route == ROUTE_EXPRESS) return (int32_t)(w->spread % e);
  if (w->route != ROUTE_BULK) return RD_KAFKA_PARTITION_UA;
  uint32_t bulk = (uint32_t)w->npart - e;
  uint32_t g = (uint32_t)stripes_used(w);
  uint32_t mine = (uint32_t)w->stripe % g;
  uint32_t size = (bulk - mine + g - 1) / g; /* partitions in this stripe */
  return (int32_t)(e + mine + ((w->spread + w->nbulk++) % size) * g);
}

/* Produces one packed message (buf is handed to librdkafka or freed). */
static void send_msg(row_batch_writer_t *w, uint8_t *buf, size_t sz, const char *key, int kl, size_t idx) {
  uint64_t tag = ((uint64_t)w->slot->seq << 32) | (uint64_t)idx;
  int32_t part = next_partition(w);
  rd_kafka_resp_err_t e;
  for (;;) {
    e = rd_kafka_producev(w->slot->rk, RD_KAFKA_V_RKT(w->slot->rkt), RD_KAFKA_V_PARTITION(part),
                          RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE(buf, sz),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag),
                          RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
    rd_kafka_poll(w->slot->rk, 50);
  }
  if (e) {
    bok_counter_inc(job_metrics.produce_errors);
    free(buf);
    w->slot->failed = 1;
    snprintf(w->slot->errmsg, sizeof w->slot->errmsg, "%s", rd_kafka_err2str(e));
  }
}

/* Keeps a packed message until the upload's route is decided. */
static void hold_msg(row_batch_writer_t *w, uint8_t *buf, size_t sz, const char *key, int kl, size_t idx) {
  if (w->nheld == w->heldcap) {
    w->heldcap = w->heldcap ? w->heldcap * 2 : 4;
    w->held = realloc(w->held, w->heldcap * sizeof *w->held);
  }
  held_t *h = &w->held[w->nheld++];
  h->buf = buf;
  h->sz = sz;
  snprintf(h->key, sizeof h->key, "%s", key);
  h->kl = kl;
  h->idx = idx;
}

/* Decides the route and produces the held messages, in order. */
static void release_held(row_batch_writer_t *w, int route) {
  w->route = route;
  if (route == ROUTE_BULK) choose_stripe(w);
  for (size_t i = 0; i < w->nheld; i++) {
    if (w->slot->failed) {
      free(w->held[i].buf);
      continue;
    }
    send_msg(w, w->held[i].buf, w->held[i].sz, w->held[i].key, w->held[i].kl, w->held[i].idx);
  }
  w->nheld = 0;
}

static int flush_batch(row_batch_writer_t *w) {
  if (w->n == 0) return 0;
  size_t sz;
  uint8_t *buf = row_encode_batch(w->tenant, w->job_id, w->model_id, w->schema_version, w->body.data, w->body.len, &sz);
  if (!buf) {
    w->slot->failed = 1;
    snprintf(w->slot->errmsg, sizeof w->slot->errmsg, "out of memory");
    return -1;
  }
  char key[64];
  int kl = snprintf(key, sizeof key, "%s-%lld", w->job_id, (long long)w->key_row);
  size_t idx = note_msg(w);
  int64_t rows = (int64_t)w->n;
  __atomic_add_fetch(&w->sent_rows, rows, __ATOMIC_RELAXED);
  bok_buf_reset(&w->body);
  w->n = 0;
  w->bytes = 0;
  if (w->route != ROUTE_HOLD) {
    send_msg(w, buf, sz, key, kl, idx);
  } else {
    hold_msg(w, buf, sz, key, kl, idx);
    w->held_rows += rows;
    w->held_bytes += sz;
    if (w->held_rows > w->pool->express_max_rows || w->held_bytes > EXPRESS_MAX_BYTES) release_held(w, ROUTE_BULK);
  }
  rd_kafka_poll(w->slot->rk, 0);
  return w->slot->failed ? -1 : 0;
}

int row_producer_add(row_batch_writer_t *w, int64_t row, const void *raw, size_t len) {
  if (w->slot->failed) return -1;
  if (row_encode_row(&w->body, row, raw, len) != 0) {
    w->slot->failed = 1;
    snprintf(w->slot->errmsg, sizeof w->slot->errmsg, "out of memory");
    return -1;
  }
  if (w->n == 0) w->key_row = w->min_row = w->max_row = row;
  if (row < w->min_row) w->min_row = row;
  if (row > w->max_row) w->max_row = row;
  w->n++;
  w->bytes += len + 16;
  if ((int)w->n == w->pool->batch_rows || w->bytes >= w->pool->batch_bytes) return flush_batch(w);
  return 0;
}

int row_producer_flush(row_batch_writer_t *w, char *err, size_t errlen) {
  int rc = flush_batch(w);
  if (w->route == ROUTE_HOLD) release_held(w, ROUTE_EXPRESS); /* it ended under the threshold */
  if (rc == 0 && rd_kafka_flush(w->slot->rk, TXN_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "Kafka: the rows were not delivered in time");
    return -1;
  }
  if (w->slot->failed || rc != 0) {
    snprintf(err, errlen, "Kafka: %s", w->slot->errmsg);
    return -1;
  }
  if (w->delivered != w->nmsgs) {
    snprintf(err, errlen, "Kafka: %zu of %zu messages delivered", w->delivered, w->nmsgs);
    return -1;
  }
  return 0;
}

const row_msg_t *row_producer_messages(const row_batch_writer_t *w, size_t *n) {
  *n = w->nmsgs;
  return w->msgs;
}

static void writer_free(row_batch_writer_t *w) {
  bok_buf_free(&w->body);
  for (size_t i = 0; i < w->nheld; i++) free(w->held[i].buf);
  free(w->held);
  free(w->msgs);
  free(w);
}

int row_producer_commit(row_batch_writer_t *w, char *err, size_t errlen) {
  row_pool_t *p = w->pool;
  slot_t *slot = w->slot;
  if (!p->transactions) return 0; /* flushed: the rows are written */
  bok_kafka_commit_t c = bok_kafka_txn_commit(slot->rk, COMMIT_TIMEOUT_MS, 3, err, errlen);
  if (c == BOK_KAFKA_COMMITTED) {
    bok_counter_inc(job_metrics.txn_committed);
    return 0;
  }
  if (c == BOK_KAFKA_ABORT_NEEDED) {
    rd_kafka_error_t *a = rd_kafka_abort_transaction(slot->rk, COMMIT_TIMEOUT_MS);
    if (!a) {
      bok_counter_inc(job_metrics.txn_aborted);
      return -1;
    }
    rd_kafka_error_destroy(a);
  }
  /* Outcome unknown: a new producer with the same id settles the old
   * transaction (commits it if the coordinator had decided to, aborts it
   * otherwise); the caller then reads whether it committed. */
  slot_recreate(p, slot);
  return 1;
}

void row_producer_end(row_batch_writer_t *w) {
  bulk_upload_over(w, 0);
  release_slot(w->pool, w->slot);
  writer_free(w);
}

void row_producer_abort(row_batch_writer_t *w) {
  row_pool_t *p = w->pool;
  bulk_upload_over(w, 1);
  if (p->transactions && w->slot->rk) {
    rd_kafka_error_t *e = rd_kafka_abort_transaction(w->slot->rk, COMMIT_TIMEOUT_MS);
    if (e) {
      LOGP(p, BOK_LOG_WARN, "abort_transaction: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      slot_recreate(p, w->slot); /* fences the transaction: aborted either way */
    }
    bok_counter_inc(job_metrics.txn_aborted);
  } else if (w->slot->rk) {
    rd_kafka_flush(w->slot->rk, TXN_TIMEOUT_MS);
  }
  row_producer_end(w);
}

int row_pool_probe(row_pool_t *p, int timeout_ms, char *err, size_t errlen) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(p->reader, 0, NULL, &md, timeout_ms); /* thread-safe handle */
  if (e) {
    snprintf(err, errlen, "Kafka unreachable: %s", rd_kafka_err2str(e));
    return -1;
  }
  rd_kafka_metadata_destroy(md);
  return 0;
}

/* One read_committed look at (partition, offset); reader_mu held. */
static int resolve_locked(row_pool_t *p, int32_t partition, int64_t offset, int timeout_ms) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, p->topic, partition)->offset = offset;
  int out = -1;
  if (rd_kafka_assign(p->reader, l) != RD_KAFKA_RESP_ERR_NO_ERROR) goto done;
  int64_t deadline = bok_mono_ms() + timeout_ms;
  while (out < 0 && bok_mono_ms() < deadline) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(p->reader, 100);
    if (!m) continue;
    if (m->partition == partition && strcmp(rd_kafka_topic_name(m->rkt), p->topic) == 0) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->offset > offset) out = 0; /* the stable end is past it and it was skipped: aborted */
      } else if (!m->err) {
        out = m->offset == offset ? 1 : m->offset > offset ? 0 : -1;
      }
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(p->reader, NULL);
done:
  rd_kafka_topic_partition_list_destroy(l);
  return out;
}

int row_pool_resolve(row_pool_t *p, int32_t partition, int64_t offset, int timeout_ms) {
  if (!p->transactions) return 1;
  pthread_mutex_lock(&p->reader_mu);
  int r = resolve_locked(p, partition, offset, timeout_ms);
  pthread_mutex_unlock(&p->reader_mu);
  return r;
}

/* A consumer handle of `group` (never subscribes, never commits), cached:
 * rd_kafka_committed asks the group's coordinator for its offsets. (The
 * Admin API's ListConsumerGroupOffsets asserted inside librdkafka 2.0.2 when
 * the broker went away mid-request.) reader_mu held. */
static rd_kafka_t *group_handle(row_pool_t *p, const char *group) {
  for (size_t i = 0; i < p->ngroups; i++)
    if (strcmp(p->groups[i].name, group) == 0) return p->groups[i].rk;
  char err[256];
  const char *defaults[] = {"group.id", group, "enable.auto.commit", "false",
                            "isolation.level", "read_committed", /* stable offsets only */ NULL};
  rd_kafka_conf_t *conf = bok_kafka_conf_new(p->cfg, defaults, NULL, err, sizeof err);
  rd_kafka_t *rk = conf ? bok_kafka_client_new(RD_KAFKA_CONSUMER, conf, 0, err, sizeof err) : NULL;
  if (!rk) return NULL;
  p->groups = realloc(p->groups, (p->ngroups + 1) * sizeof *p->groups);
  p->groups[p->ngroups].name = strdup(group);
  p->groups[p->ngroups].rk = rk;
  p->ngroups++;
  return rk;
}

static int committed_locked(row_pool_t *p, const char *group, const int32_t *parts, size_t n, int64_t *out,
                            int timeout_ms) {
  rd_kafka_t *rk = group_handle(p, group);
  if (!rk) return -1;
  rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++) rd_kafka_topic_partition_list_add(tp, p->topic, parts[i]);
  int rc = rd_kafka_committed(rk, tp, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const rd_kafka_topic_partition_t *x = rd_kafka_topic_partition_list_find(tp, p->topic, parts[i]);
    out[i] = x && !x->err && x->offset >= 0 ? x->offset : -1;
  }
  rd_kafka_topic_partition_list_destroy(tp);
  return rc;
}

int row_pool_committed(row_pool_t *p, const char *group, const int32_t *parts, size_t n, int64_t *out, int timeout_ms) {
  for (size_t i = 0; i < n; i++) out[i] = -1;
  if (n == 0) return 0;
  pthread_mutex_lock(&p->reader_mu);
  int rc = committed_locked(p, group, parts, n, out, timeout_ms);
  pthread_mutex_unlock(&p->reader_mu);
  return rc;
}
