/* job_cache.c -- the jobs a worker lane has seen: spec (from the job
 * service, with the model's schema source: the worker asks no other
 * service), compiled schema and validator, the
 * events topic (created once with settings that never delete committed
 * events), least-recently-used eviction; and the lane's gRPC channels, one
 * per address. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bok/kafka.h"
#include "bok/util.h"
#include "worker_int.h"

static void wk_job_free(job_ctx_t *j) {
  if (j->rkt) rd_kafka_topic_destroy(j->rkt);
  bok_validator_destroy(j->validator);
  bok_schema_destroy(j->schema);
  free(j);
}


/* The lane's cache is made on first use (lib/rpc: grows, no limit); NULL
 * only out of memory, which the callers treat as an unavailable peer. */
bok_rpc_channel_t *wk_chan(worker_t *w, const char *addr) {
  if (!w->chans) w->chans = bok_rpc_chancache_new(0);
  return bok_rpc_chancache_get(w->chans, addr);
}

/* Creates the events topic (lib/kafka bok_kafka_events_topic_ensure: events
 * topics never delete committed events by surprise; normally the model
 * service made it with the model) or finds it made, and waits for its
 * leaders. 0 ok; -1 when Kafka did not confirm it: nothing
 * may be produced then (a topic the broker made by itself would carry its
 * defaults, time retention included), so the caller fails the batch and
 * it is retried. */
static int ensure_topic(worker_t *w, const char *topic) {
  for (int i = 0; i < w->ntopics; i++)
    if (strcmp(w->topics_made[i], topic) == 0) return 0;
  char err[300];
  if (bok_kafka_events_topic_ensure(w->producer, w->cfg, topic, 15000, err, sizeof err) != 0) {
    LOG(w, BOK_LOG_WARN, "%s (the batch is retried)", err);
    return -1;
  }
  /* Produce only once this producer knows every partition's leader. */
  bok_kafka_topic_wait_leaders(w->producer, topic, 10000);
  w->topics_made = realloc(w->topics_made, (size_t)(w->ntopics + 1) * sizeof(char *));
  w->topics_made[w->ntopics++] = strdup(topic);
  return 0;
}

/* Compiles the spec's schema and makes the job's validator; on failure the
 * job is broken (its rows are rejected with the reason). */
static void job_compile(worker_t *w, job_ctx_t *j, const Batch__V1__JobSpec *spec) {
  char msg[256];
  if (!spec->schema_json[0]) {
    LOG(w, BOK_LOG_WARN, "model %s v%lld not found: rejecting the rows of job %s", spec->model_id,
        (long long)spec->schema_version, j->job_id);
    snprintf(j->broken, sizeof j->broken, "model version %lld not found", (long long)spec->schema_version);
  } else if (bok_schema_compile(spec->schema_json, strlen(spec->schema_json), &j->schema, msg, sizeof msg) != 0) {
    LOG(w, BOK_LOG_ERROR, "job %s: schema does not compile: %s", j->job_id, msg);
    snprintf(j->broken, sizeof j->broken, "the model's schema cannot be used (%s)", msg);
  } else {
    int ndjson = strcmp(spec->format, "ndjson") == 0;
    j->validator = bok_validator_new(j->schema, ndjson ? BOK_FMT_NDJSON : BOK_FMT_CSV, (const char *)spec->header.data,
                                     spec->header.len, spec->separator[0] ? spec->separator[0] : ',', msg, sizeof msg);
    if (!j->validator) {
      LOG(w, BOK_LOG_ERROR, "job %s: %s", j->job_id, msg);
      snprintf(j->broken, sizeof j->broken, "%s", msg);
    }
  }
}

/* Returns the job's context, fetching its spec -- which carries the schema
 * source, so the job service is the only service asked -- on first sight.
 * NULL = transient failure (retry the batch later). */
job_ctx_t *wk_job_get(worker_t *w, const Batch__V1__RowBatch *b) {
  for (job_ctx_t *j = w->jobs; j; j = j->next)
    if (strcmp(j->job_id, b->job_id) == 0) {
      j->last_used = bok_mono_ms();
      return j;
    }
  const bok_route_t *rt = bok_routes_lookup(w->routes, b->tenant_id);
  job_ctx_t *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  snprintf(j->job_id, sizeof j->job_id, "%s", b->job_id);
  snprintf(j->tenant, sizeof j->tenant, "%s", b->tenant_id);
  snprintf(j->model_id, sizeof j->model_id, "%s", b->model_id);
  j->tenant_len = strlen(j->tenant);
  j->job_id_len = strlen(j->job_id);
  j->model_id_len = strlen(j->model_id);
  Batch__V1__GetJobRequest gr = BATCH__V1__GET_JOB_REQUEST__INIT;
  gr.job_id = b->job_id;
  Batch__V1__JobSpec *spec = NULL;
  bok_err_t err;
  if (bok_rpc_unary(wk_chan(w, rt->job_addr), "/batch.v1.JobService/GetJobSpec", b->tenant_id, 10000, &gr.base,
                    &batch__v1__job_spec__descriptor, (ProtobufCMessage **)&spec, &err) != 0) {
    if (err.code != BOK_ERR_NOT_FOUND) {
      LOG(w, BOK_LOG_WARN, "job service: %s", err.msg);
      free(j);
      return NULL;
    }
    LOG(w, BOK_LOG_WARN, "job %s unknown to the job service: skipping its rows", b->job_id);
    j->skip = 1;
    goto add;
  }
  snprintf(j->topic, sizeof j->topic, "%s", spec->topic);
  /* Only a cancelled job is skipped: rows of a finished job are redeliveries
   * of a batch whose transaction did not commit, and must be published. */
  if (spec->state == BATCH__V1__JOB_STATE__JOB_STATE_CANCELLED || spec->halted) j->skip = 1;
  j->dry_run = spec->dry_run;
  if (!j->skip) job_compile(w, j, spec);
  protobuf_c_message_free_unpacked(&spec->base, NULL);
  if (!j->skip && !j->broken[0] && !j->dry_run && ensure_topic(w, j->topic) != 0) {
    wk_job_free(j); /* not cached: the retried batch asks again */
    return NULL;
  }
add:
  j->last_used = bok_mono_ms();
  j->next = w->jobs;
  w->jobs = j;
  w->njobs++;
  return j;
}

/* Drops least recently used jobs beyond the cache size. Called between
 * batches only: a batch in progress points at its jobs. */
void wk_jobs_evict(worker_t *w) {
  while (w->njobs > MAX_JOBS_CACHED) {
    job_ctx_t **victim = NULL;
    for (job_ctx_t **pp = &w->jobs; *pp; pp = &(*pp)->next)
      if (!victim || (*pp)->last_used < (*victim)->last_used) victim = pp;
    job_ctx_t *v = *victim;
    *victim = v->next;
    wk_job_free(v);
    w->njobs--;
  }
}

void wk_jobs_drop_topics(worker_t *w) {
  for (job_ctx_t *j = w->jobs; j; j = j->next)
    if (j->rkt) {
      rd_kafka_topic_destroy(j->rkt);
      j->rkt = NULL;
    }
}

void wk_jobs_free(worker_t *w) {
  for (job_ctx_t *j = w->jobs, *n; j; j = n) {
    n = j->next;
    wk_job_free(j);
  }
  w->jobs = NULL;
  w->njobs = 0;
  bok_rpc_chancache_destroy(w->chans);
  w->chans = NULL;
  for (int i = 0; i < w->ntopics; i++) free(w->topics_made[i]);
  free(w->topics_made);
  w->topics_made = NULL;
  w->ntopics = 0;
}
