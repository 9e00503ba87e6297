/* job_upload.h -- JobService/Upload and ReprocessJob (job_upload.c). */
#ifndef JOB_UPLOAD_H
#define JOB_UPLOAD_H

#include "batch/v1/model.pb-c.h"
#include "job_service.h"

/* Fetches a model for `tenant` from the model service: `version` 0 = the
 * current one. 0, or -1 with err (NOT_FOUND "model not found", UNAVAILABLE
 * "model service unavailable", ...); *m is the caller's (free_unpacked). */
int job_model_get(job_service_t *svc, const char *tenant, const char *model_id, int64_t version,
                  Batch__V1__Model **m, bok_err_t *err);
/* Client-streaming handler; ud is the job_service_t. */
void job_upload(void *ud, bok_rpc_call_t *call);
/* Unary handler; ud is the job_service_t. */
void job_reprocess(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req);

#endif
