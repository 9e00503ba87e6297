/* model_service.c -- ModelService's gRPC methods: request checks, schema
 * compile, calls into model_store.c, protobuf replies. Serving threads call
 * it; the store does the locking. */
#include "model_service.h"

#include <stdlib.h>
#include <string.h>

#include "batch/v1/model.pb-c.h"

static void to_proto(const model_rec_t *r, Batch__V1__Model *m) {
  batch__v1__model__init(m);
  m->model_id = (char *)r->model_id;
  m->tenant_id = r->tenant_id;
  m->name = r->name;
  m->schema_json = r->schema_json;
  m->version = r->version;
  m->topic = r->topic;
  m->created_at_ms = r->created_at_ms;
  m->updated_at_ms = r->updated_at_ms;
  m->has_max_errors = r->max_errors >= 0;
  m->max_errors = m->has_max_errors ? r->max_errors : 0;
  m->has_max_error_rate = r->max_error_rate >= 0;
  m->max_error_rate = m->has_max_error_rate ? r->max_error_rate : 0;
}

static void reply_rec(bok_rpc_call_t *call, model_rec_t *r) {
  Batch__V1__Model m;
  to_proto(r, &m);
  bok_rpc_call_reply(call, &m.base);
  model_rec_free(r);
}

static void create(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  model_service_t *svc = ud;
  const Batch__V1__CreateModelRequest *r = (const void *)req;
  model_rec_t rec;
  memset(&rec, 0, sizeof rec);
  bok_err_t err;
  if (model_store_create(svc->store, bok_rpc_call_tenant(call), r->name, r->schema_json, svc->topic_prefix, &rec,
                         &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  topic_maker_add(svc->topics, rec.topic); /* in the background: never waits for Kafka */
  reply_rec(call, &rec);
}

static void get(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  model_service_t *svc = ud;
  const Batch__V1__GetModelRequest *r = (const void *)req;
  model_rec_t rec;
  memset(&rec, 0, sizeof rec);
  bok_err_t err;
  if (model_store_get(svc->store, bok_rpc_call_tenant(call), r->model_id, r->version, &rec, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  reply_rec(call, &rec);
}

static void list(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  (void)req;
  model_service_t *svc = ud;
  model_rec_t *recs = NULL;
  size_t n = 0;
  bok_err_t err;
  if (model_store_list(svc->store, bok_rpc_call_tenant(call), &recs, &n, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  Batch__V1__ListModelsResponse resp = BATCH__V1__LIST_MODELS_RESPONSE__INIT;
  Batch__V1__Model *ms = calloc(n ? n : 1, sizeof *ms);
  Batch__V1__Model **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  for (size_t i = 0; i < n; i++) {
    to_proto(&recs[i], &ms[i]);
    ptrs[i] = &ms[i];
  }
  resp.n_models = n;
  resp.models = ptrs;
  bok_rpc_call_reply(call, &resp.base);
  free(ptrs);
  free(ms);
  model_rec_list_free(recs, n);
}

static void update(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  model_service_t *svc = ud;
  const Batch__V1__UpdateModelRequest *r = (const void *)req;
  model_rec_t rec;
  memset(&rec, 0, sizeof rec);
  bok_err_t err;
  const char *tenant = bok_rpc_call_tenant(call);
  int budget = r->has_max_errors || r->has_max_error_rate;
  if (budget && ((r->has_max_errors && r->max_errors < -1) ||
                 (r->has_max_error_rate && r->max_error_rate != -1.0 &&
                  !(r->max_error_rate >= 0 && r->max_error_rate <= 1)))) {
    bok_rpc_call_fail(call, BOK_ERR_INVALID, "max_errors: >= 0 (-1 removes it); max_error_rate: 0 to 1 (-1 removes it)");
    return;
  }
  /* name/schema first (they may be refused), then the budget, then the answer */
  if (model_store_update(svc->store, tenant, r->model_id, r->name, r->schema_json, &rec, &err) != 0 ||
      (budget && (model_store_set_budget(svc->store, tenant, r->model_id, r->has_max_errors, r->max_errors,
                                         r->has_max_error_rate, r->max_error_rate, &err) != 0 ||
                  (model_rec_free(&rec), model_store_get(svc->store, tenant, r->model_id, 0, &rec, &err)) != 0))) {
    model_rec_free(&rec);
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  reply_rec(call, &rec);
}

static void del(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  model_service_t *svc = ud;
  const Batch__V1__DeleteModelRequest *r = (const void *)req;
  bok_err_t err;
  if (model_store_delete(svc->store, bok_rpc_call_tenant(call), r->model_id, &err) != 0) {
    bok_rpc_call_fail_err(call, &err);
    return;
  }
  Batch__V1__DeleteModelResponse resp = BATCH__V1__DELETE_MODEL_RESPONSE__INIT;
  bok_rpc_call_reply(call, &resp.base);
}

int model_service_register(bok_rpc_server_t *srv, model_service_t *svc) {
  int rc = 0;
  rc |= bok_rpc_server_add_unary(srv, "/batch.v1.ModelService/CreateModel",
                                 &batch__v1__create_model_request__descriptor, BOK_RPC_TENANT_REQUIRED, create, svc);
  rc |= bok_rpc_server_add_unary(srv, "/batch.v1.ModelService/GetModel", &batch__v1__get_model_request__descriptor,
                                 BOK_RPC_TENANT_REQUIRED, get, svc);
  rc |= bok_rpc_server_add_unary(srv, "/batch.v1.ModelService/ListModels",
                                 &batch__v1__list_models_request__descriptor, BOK_RPC_TENANT_REQUIRED, list, svc);
  rc |= bok_rpc_server_add_unary(srv, "/batch.v1.ModelService/UpdateModel",
                                 &batch__v1__update_model_request__descriptor, BOK_RPC_TENANT_REQUIRED, update, svc);
  rc |= bok_rpc_server_add_unary(srv, "/batch.v1.ModelService/DeleteModel",
                                 &batch__v1__delete_model_request__descriptor, BOK_RPC_TENANT_REQUIRED, del, svc);
  return rc;
}
