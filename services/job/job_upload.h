/* job_upload.h -- JobService/Upload and ReprocessJob (job_upload.c). */
#ifndef JOB_UPLOAD_H
#define JOB_UPLOAD_H

#include "job_service.h"

/* Client-streaming handler; ud is the job_service_t. */
void job_upload(void *ud, bok_rpc_call_t *call);
/* Unary handler; ud is the job_service_t. */
void job_reprocess(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req);

#endif
