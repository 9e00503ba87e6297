/* kafka.c -- shared librdkafka helpers (bok/kafka.h): configuration, client
 * creation with init_transactions, topic creation (partitions, replication
 * and min.insync.replicas from the configuration) and leader wait, commit
 * with retry. Used by the job service's rows producers and the worker. */
#include "bok/kafka.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  rd_kafka_conf_t *conf;
  char *err;
  size_t errlen;
  int bad;
} conf_ctx_t;

static int set_prop(void *ud, const char *k, const char *v) {
  conf_ctx_t *c = ud;
  if (!c->bad && rd_kafka_conf_set(c->conf, k, v, c->err, c->errlen) != RD_KAFKA_CONF_OK) c->bad = 1;
  return 0;
}

rd_kafka_conf_t *bok_kafka_conf_new(const bok_config_t *cfg, const char *const *defaults, const char *passthrough,
                                    char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_ctx_t c = {conf, err, errlen, 0};
  set_prop(&c, "bootstrap.servers", bok_config_get(cfg, "kafka.brokers", "127.0.0.1:9092"));
  for (size_t i = 0; defaults && defaults[i] && defaults[i + 1]; i += 2) set_prop(&c, defaults[i], defaults[i + 1]);
  if (passthrough) bok_config_each(cfg, passthrough, set_prop, &c);
  if (c.bad) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  return conf;
}

rd_kafka_t *bok_kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, int init_timeout_ms, char *err,
                                 size_t errlen) {
  char tid[8];
  size_t tlen = sizeof tid;
  int transactional = type == RD_KAFKA_PRODUCER &&
                      rd_kafka_conf_get(conf, "transactional.id", tid, &tlen) == RD_KAFKA_CONF_OK && tlen > 1;
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, errlen);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (transactional && init_timeout_ms >= 0 && bok_kafka_init_transactions(rk, init_timeout_ms, err, errlen) != 0) {
    rd_kafka_destroy(rk);
    return NULL;
  }
  return rk;
}

int bok_kafka_init_transactions(rd_kafka_t *rk, int timeout_ms, char *err, size_t errlen) {
  rd_kafka_error_t *e = rd_kafka_init_transactions(rk, timeout_ms);
  if (!e) return 0;
  snprintf(err, errlen, "init_transactions: %s", rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
  return -1;
}

void bok_kafka_producer_drop(rd_kafka_t *rk) {
  if (!rk) return;
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_destroy(rk);
}

typedef struct {
  rd_kafka_NewTopic_t *nt;
  int bad;
  char *err;
  size_t errlen;
} topic_ctx_t;

static int set_topic_prop(void *ud, const char *k, const char *v) {
  topic_ctx_t *t = ud;
  if (!t->bad && rd_kafka_NewTopic_set_config(t->nt, k, v) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(t->err, t->errlen, "topic config %s=%s refused", k, v);
    t->bad = 1;
  }
  return 0;
}

/* 1 when the metadata (asked for up to timeout_ms) lists the topic with a
 * leader for every partition. */
static int leaders_known(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms) {
  const struct rd_kafka_metadata *md = NULL;
  int ready = 0;
  if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
      md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
    ready = 1;
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
      if (md->topics[0].partitions[i].leader < 0) ready = 0;
  }
  if (md) rd_kafka_metadata_destroy(md);
  return ready;
}

int bok_kafka_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, const char *const *configs,
                           const bok_config_t *cfg, const char *cfg_prefix, int timeout_ms, char *err, size_t errlen) {
  char es[256];
  /* A topic that exists is left as it is: no CreateTopics, so no need for a
   * controller (with a broker of a cluster down, librdkafka 2.0.2 kept
   * sending CreateTopics to the dead one it had cached as controller, and a
   * lane could not start a job on an existing topic for minutes). */
  /* Only a client that cannot make the broker auto-create the topic asks
   * (a metadata request of one that can would create it with the broker's
   * defaults). */
  char ac[16] = "";
  size_t acn = sizeof ac;
  const rd_kafka_conf_t *kc = rd_kafka_conf(rk);
  int no_auto = kc && rd_kafka_conf_get(kc, "allow.auto.create.topics", ac, &acn) == RD_KAFKA_CONF_OK &&
                strcmp(ac, "false") == 0;
  rd_kafka_topic_t *known = no_auto ? rd_kafka_topic_new(rk, topic, NULL) : NULL;
  int exists = known && leaders_known(rk, known, timeout_ms / 2 > 1000 ? timeout_ms / 2 : 1000);
  if (known) rd_kafka_topic_destroy(known);
  if (exists) return 0;
  int replication = cfg ? (int)bok_config_get_int(cfg, "kafka.replication_factor", -1) : -1;
  int min_isr = cfg ? (int)bok_config_get_int(cfg, "kafka.min_insync_replicas", 0) : 0;
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication > 0 ? replication : -1, es, sizeof es);
  if (!nt) {
    snprintf(err, errlen, "topic %s: %s", topic, es);
    return -1;
  }
  topic_ctx_t tc = {nt, 0, err, errlen};
  char isr[16];
  snprintf(isr, sizeof isr, "%d", min_isr);
  if (min_isr > 0) set_topic_prop(&tc, "min.insync.replicas", isr);
  for (size_t i = 0; configs && configs[i] && configs[i + 1]; i += 2) set_topic_prop(&tc, configs[i], configs[i + 1]);
  if (cfg && cfg_prefix) bok_config_each(cfg, cfg_prefix, set_topic_prop, &tc);
  int rc = tc.bad ? -1 : 0;
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  if (rc == 0) rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
  rd_kafka_event_t *ev = rc == 0 ? rd_kafka_queue_poll(q, timeout_ms) : NULL;
  if (rc == 0 && !ev) {
    snprintf(err, errlen, "creating topic %s: no answer in %d ms", topic, timeout_ms);
    rc = -1;
  }
  if (ev) {
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t e = n ? rd_kafka_topic_result_error(tr[0]) : rd_kafka_event_error(ev);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      snprintf(err, errlen, "cannot create topic %s: %s", topic,
               n ? rd_kafka_topic_result_error_string(tr[0]) : rd_kafka_err2str(e));
      rc = -1;
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  return rc;
}

const char *const bok_kafka_events_topic_config[] = {"retention.ms", "-1", "message.timestamp.before.max.ms",
                                                     "9223372036854775807", "message.timestamp.after.max.ms",
                                                     "9223372036854775807", NULL};

int bok_kafka_events_topic_ensure(rd_kafka_t *rk, const bok_config_t *cfg, const char *topic, int timeout_ms,
                                  char *err, size_t errlen) {
  int partitions = (int)bok_config_get_int(cfg, "kafka.events_partitions", 4);
  return bok_kafka_topic_ensure(rk, topic, partitions, bok_kafka_events_topic_config, cfg, "kafka.events_topic.",
                                timeout_ms, err, errlen);
}

int bok_kafka_topic_wait_leaders(rd_kafka_t *rk, const char *topic, int timeout_ms) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (!rkt) return -1;
  int ready = 0;
  for (int waited = 0; !ready && waited <= timeout_ms; waited += 200) {
    ready = leaders_known(rk, rkt, 1000);
    if (!ready) usleep(200 * 1000);
  }
  rd_kafka_topic_destroy(rkt);
  return ready ? 0 : -1;
}

int bok_kafka_cluster_health(rd_kafka_t *rk, const char *topic, int timeout_ms, char *note, size_t notelen) {
  note[0] = 0;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (!rkt) {
    snprintf(note, notelen, "Kafka: bad topic %s", topic);
    return -1;
  }
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (e) {
    snprintf(note, notelen, "Kafka unreachable: %s", rd_kafka_err2str(e));
    return -1;
  }
  int32_t down[16];
  int ndown = 0, under = 0, leaderless = 0, parts = 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const struct rd_kafka_metadata_topic *t = &md->topics[0];
    parts = t->partition_cnt;
    for (int i = 0; i < t->partition_cnt; i++) {
      const struct rd_kafka_metadata_partition *pt = &t->partitions[i];
      if (pt->leader < 0) leaderless++;
      if (pt->isr_cnt < pt->replica_cnt) under++;
      for (int r = 0; r < pt->replica_cnt; r++) {
        int known = 0, listed = 0;
        for (int b = 0; b < md->broker_cnt; b++) known |= md->brokers[b].id == pt->replicas[r];
        for (int d = 0; d < ndown; d++) listed |= down[d] == pt->replicas[r];
        if (!known && !listed && ndown < 16) down[ndown++] = pt->replicas[r];
      }
    }
  }
  rd_kafka_metadata_destroy(md);
  if (!ndown && !under && !leaderless) return 0;
  size_t off = (size_t)snprintf(note, notelen, "Kafka degraded:");
  for (int d = 0; d < ndown && off < notelen; d++)
    off += (size_t)snprintf(note + off, notelen - off, "%s broker %d down", d ? "," : "", (int)down[d]);
  if (under && off < notelen)
    off += (size_t)snprintf(note + off, notelen - off, "%s %d of %d partitions of %s under-replicated",
                            ndown ? ";" : "", under, parts, topic);
  if (leaderless && off < notelen)
    snprintf(note + off, notelen - off, "; %d of %d partitions of %s without a leader", leaderless, parts, topic);
  return 1;
}

bok_kafka_commit_t bok_kafka_txn_commit(rd_kafka_t *rk, int timeout_ms, int retries, char *err, size_t errlen) {
  for (int attempt = 0;; attempt++) {
    rd_kafka_error_t *e = rd_kafka_commit_transaction(rk, timeout_ms);
    if (!e) return BOK_KAFKA_COMMITTED;
    snprintf(err, errlen, "commit_transaction: %s", rd_kafka_error_string(e));
    int retry = rd_kafka_error_is_retriable(e) && attempt < retries;
    int abortable = rd_kafka_error_txn_requires_abort(e);
    rd_kafka_error_destroy(e);
    if (retry) continue;
    return abortable ? BOK_KAFKA_ABORT_NEEDED : BOK_KAFKA_UNKNOWN;
  }
}
