/* kafka.h -- the librdkafka pieces the job service, the worker and the
 * model service share (the events topic's settings live here once):
 * client configuration with pass-through properties, topic creation with
 * topic configs and the leader wait, transactional producers that can be
 * re-created, and commit with retry.
 *
 * Ownership: a conf returned by bok_kafka_conf_new is the caller's until it
 * is handed to bok_kafka_client_new (which consumes it, also on failure).
 * Nothing here prints; errors are returned in err. Thread-safety: as
 * librdkafka's (handles are thread-safe; a transaction is driven by one
 * thread). */
#ifndef BOK_KAFKA_H
#define BOK_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "bok/config.h"

/* A new conf: bootstrap.servers from `kafka.brokers` (default
 * 127.0.0.1:9092), then `defaults` (NULL-terminated key, value pairs; may be
 * NULL), then every `<passthrough>*` key of cfg (e.g. "kafka.producer.")
 * with the prefix removed. NULL with err set when librdkafka refuses a
 * property. */
rd_kafka_conf_t *bok_kafka_conf_new(const bok_config_t *cfg, const char *const *defaults, const char *passthrough,
                                    char *err, size_t errlen);

/* rd_kafka_new(type, conf) (conf consumed). For a producer whose conf has a
 * transactional.id, also init_transactions (up to init_timeout_ms; a
 * negative timeout skips it: the caller then calls
 * bok_kafka_init_transactions before the first transaction): with the
 * same id as an earlier producer, this fences the old epoch and settles its
 * open transaction. NULL with err set: a bad configuration, or (with the
 * init) Kafka not reachable in time. */
rd_kafka_t *bok_kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, int init_timeout_ms, char *err,
                                 size_t errlen);

/* init_transactions on rk, up to timeout_ms. 0 ok; -1 with err set (Kafka
 * unreachable, or fenced: destroy rk and create a new client then). */
int bok_kafka_init_transactions(rd_kafka_t *rk, int timeout_ms, char *err, size_t errlen);

/* Destroys a producer at once: queued and in-flight messages are purged
 * (their transaction is then fenced by the next producer with the same
 * id). NULL is fine. */
void bok_kafka_producer_drop(rd_kafka_t *rk);

/* Creates `topic` if missing with `partitions` partitions, topic configs
 * from `configs` (NULL-terminated pairs; may be NULL) and every
 * `<cfg_prefix>*` key of cfg (may be NULL). Replication comes from cfg:
 * `kafka.replication_factor` (default -1: the broker's
 * default.replication.factor) and `kafka.min_insync_replicas` (default 0:
 * the broker's min.insync.replicas); cfg NULL = broker defaults. An existing
 * topic is left as it is (0); a client with allow.auto.create.topics=false
 * first asks the metadata (up to timeout_ms / 2, at least 1 s) and sends no
 * CreateTopics for a topic that has leaders, so no controller is needed.
 * -1 with err set when the broker refused or did not answer in timeout_ms
 * (after that metadata wait). */
int bok_kafka_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, const char *const *configs,
                           const bok_config_t *cfg, const char *cfg_prefix, int timeout_ms, char *err, size_t errlen);

/* The topic configs an events topic is made with (NULL-terminated pairs):
 * time retention off and any timestamp accepted, because events carry their
 * event time (1970 .. 2038) as the Kafka timestamp; `kafka.events_topic.*`
 * keys override them (docs/OPERATIONS.md "Event time and retention"). */
extern const char *const bok_kafka_events_topic_config[];

/* Makes a model's events topic (or finds it made): bok_kafka_topic_ensure
 * with `kafka.events_partitions` partitions (default 4),
 * bok_kafka_events_topic_config and the `kafka.events_topic.*` keys of cfg.
 * The model service calls it when a model is made, a worker before the
 * first event of a topic it has not made yet. 0, or -1 with err set. */
int bok_kafka_events_topic_ensure(rd_kafka_t *rk, const bok_config_t *cfg, const char *topic, int timeout_ms,
                                  char *err, size_t errlen);

/* Waits until this client knows a leader for every partition of `topic`
 * (messages to partitions without a known leader sit unassigned). 0 ready,
 * -1 after timeout_ms. */
int bok_kafka_topic_wait_leaders(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* The cluster as seen from `topic`'s metadata, for readiness: -1 when no
 * broker answered within timeout_ms (note: "Kafka unreachable: ..."); 1 when
 * degraded: a broker listed as a replica of the topic is missing from the
 * metadata (down or fenced), or a partition has fewer in-sync replicas than
 * replicas or no leader (note names them, e.g. "Kafka degraded: broker 2
 * down; 8 of 8 partitions of bok.rows under-replicated"); 0 healthy (note ""). */
int bok_kafka_cluster_health(rd_kafka_t *rk, const char *topic, int timeout_ms, char *note, size_t notelen);

/* Outcome of bok_kafka_txn_commit. */
typedef enum {
  BOK_KAFKA_COMMITTED = 0,
  BOK_KAFKA_ABORT_NEEDED = 1, /* failed; abort_transaction clears it */
  BOK_KAFKA_UNKNOWN = 2       /* failed; whether it committed is unknown: re-create the producer */
} bok_kafka_commit_t;

/* commit_transaction, retried up to `retries` times while librdkafka says
 * retriable (after a timeout it may still be committing: calling commit
 * again resumes it, aborting could be refused). err holds the last error. */
bok_kafka_commit_t bok_kafka_txn_commit(rd_kafka_t *rk, int timeout_ms, int retries, char *err, size_t errlen);

#endif
