/* topic_maker.h -- makes a model's events topic when the model is made, on a
 * thread of its own, so a consumer can subscribe before the model's first
 * job and no worker lane pays CreateTopics inside a job's first batch.
 *
 * Best effort: a topic that cannot be made now (Kafka down, refused) is made
 * by the worker before the first event of the model, as it always was
 * (services/worker/job_cache.c); model creation never waits for Kafka. */
#ifndef TOPIC_MAKER_H
#define TOPIC_MAKER_H

#include <stddef.h>

#include "bok/config.h"
#include "bok/log.h"

typedef struct topic_maker topic_maker_t;

/* Starts the maker when cfg has a non-empty `kafka.brokers` (else NULL with
 * err ""):
 * a Kafka client from `kafka.brokers` and `kafka.producer.*`, and the
 * events topic's settings (`kafka.events_partitions`,
 * `kafka.replication_factor`, `kafka.min_insync_replicas`,
 * `kafka.events_topic.*`: the same keys, and values, as the workers'). cfg
 * and the log are borrowed until topic_maker_stop. NULL with err set when
 * the client cannot be made (a bad property). */
topic_maker_t *topic_maker_start(const bok_config_t *cfg, bok_log_fn log, void *log_ud, char *err, size_t errlen);

/* Queues `topic` (copied) to be made; never blocks (a full queue drops it,
 * with a warning: the worker makes it then). NULL maker = no-op. Any
 * thread. */
void topic_maker_add(topic_maker_t *tm, const char *topic);

/* Stops the thread (a creation in progress ends first, up to its timeout)
 * and frees everything; queued topics are dropped. NULL is fine. */
void topic_maker_stop(topic_maker_t *tm);

#endif
