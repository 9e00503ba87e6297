/* model_service.h -- the batch.v1.ModelService gRPC handlers over a store. */
#ifndef MODEL_SERVICE_H
#define MODEL_SERVICE_H

#include "bok/rpc.h"
#include "model_store.h"
#include "topic_maker.h"

typedef struct {
  model_store_t *store;     /* borrowed; outlives the server */
  const char *topic_prefix; /* borrowed; e.g. "bok.events" */
  topic_maker_t *topics;    /* borrowed; NULL = no Kafka configured */
} model_service_t;

/* Registers the five ModelService methods on `srv` (before start). */
int model_service_register(bok_rpc_server_t *srv, model_service_t *svc);

#endif
