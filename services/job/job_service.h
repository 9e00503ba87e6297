/* job_service.h -- batch.v1.JobService handlers: uploads (client stream) to
 * the rows topic, job state, rejected rows, reprocessing, worker reports. */
#ifndef JOB_SERVICE_H
#define JOB_SERVICE_H

#include "bok/log.h"
#include "bok/rpc.h"
#include "job_store.h"
#include "job_watch.h"
#include "row_producer.h"

typedef struct {
  job_store_t *store;         /* borrowed */
  row_pool_t *rows;           /* borrowed */
  bok_rpc_channel_t *models;  /* borrowed: the model service */
  size_t max_row_bytes;       /* CSV/NDJSON row limit */
  bok_log_fn log;
  void *log_opaque;
  job_watch_t *watch;         /* borrowed: WatchJob's fan-out (NULL: WatchJob UNAVAILABLE) */
} job_service_t;

int job_service_register(bok_rpc_server_t *srv, job_service_t *svc);
/* Answers a call with a job (job_service.c; used by job_upload.c too). */
void job_service_reply(bok_rpc_call_t *call, const job_t *j);

#endif
