/* reply.h -- the bottom of the gateway's request path (reply.c): answering a
 * request (JSON, errors, backend errors mapped to HTTP) and pending calls (a
 * request waiting for a backend, answered on its loop thread).
 *
 * Every handler module (handlers, upload, download, watch) sits on top of
 * this one; it knows none of them. Threads: the send functions and
 * gw_call* run on the request's loop thread; gw_pending_post may be called
 * from any thread (it hands the pending back to its loop). */
#ifndef GW_REPLY_H
#define GW_REPLY_H

#include <h2o.h>
#include <jansson.h>

#include "bok/rpc.h"
#include "gw_server.h"

/* Responses (loop thread). `j` is consumed. */
void gw_send_json(h2o_req_t *req, int status, json_t *j);
/* Sends make(key) as JSON. Inside the answer of a shared job read
 * (gw_call_job_read: a leader and its followers get the same answer `key`),
 * the text is made for the first request and reused for the others. */
void gw_send_json_once(h2o_req_t *req, int status, const void *key, json_t *(*make)(const void *key));
void gw_send_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a backend error to an HTTP error response. With plain_404 every
 * NOT_FOUND is answered exactly {"error":"not found"}. */
void gw_send_rpc_error(h2o_req_t *req, const char *service, const bok_err_t *err, int plain_404);
/* Counts a response in the metrics and the access log (gw_send_json does
 * it itself; a handler that sends its own body calls it). */
void gw_count_status(h2o_req_t *req, int status);

/* A request waiting for a backend answer. Loop-thread owned except `msg`
 * fields written by the completing thread before posting. */
typedef struct gw_pending gw_pending_t;
typedef void (*gw_render_fn)(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *err);

struct gw_pending {
  h2o_multithread_message_t msg; /* first: posted to the loop */
  gw_thread_t *th;
  h2o_req_t *req; /* NULL once h2o disposed the request */
  int refs;       /* pool ref + in-flight ref (loop thread only) */
  gw_render_fn render;
  const char *service; /* "model" or "job", for 503 messages */
  ProtobufCMessage *resp;
  bok_err_t err;
  int64_t limit; /* request context for renderers */
  int plain_404; /* NOT_FOUND -> exactly {"error":"not found"} (path ids) */
  int render_errors; /* errors go to render too (resp NULL), not gw_send_rpc_error */
  void *ud;          /* the renderer's state (request pool owned; valid while req != NULL) */
  /* An owner of work done elsewhere (upload.c): on_dispose runs (loop
   * thread) when h2o disposes the request, free when the pending is freed. */
  void *owner;
  void (*owner_on_dispose)(void *owner);
  void (*owner_free)(void *owner);
  int stream_event; /* one event of a stream (watch.c): render(p, NULL, ...) always, no request counters */
  /* gw_call_job_read: requests answered with this call's answer (linked by
   * next_follower; each a pending of its own, never started). */
  gw_pending_t *followers, *next_follower;
};

/* A pending for req (two references: the request pool's and the answer's),
 * NULL out of memory. Loop thread. */
gw_pending_t *gw_pending_new(gw_thread_t *th, h2o_req_t *req, const char *service, gw_render_fn render);
/* Hands p back to its loop thread, which renders it (any thread). */
void gw_pending_post(gw_pending_t *p);
/* The loop's message receiver: renders posted pendings (gateway.c registers
 * it on each loop's queue). */
void gw_pending_on_messages(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages);

/* Starts an async unary call whose answer is rendered on the loop thread. */
int gw_call(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
            const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
            int64_t limit);
/* gw_call for a renderer with state `ud` that renders errors itself. */
int gw_call_ud(gw_thread_t *th, h2o_req_t *req, const char *service, const char *tenant, const char *method,
               const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render,
               void *ud);
/* A read of job `id` (method "/batch.v1.JobService/GetJob" or another
 * taking a GetJobRequest) for req, answered by render (limit as gw_call).
 * Reads of the same (method, tenant, id) that arrive in the same turn of
 * the loop share one call, started at the end of that turn (the loop's zero
 * timeout): every request it answers was received before it started, so
 * the answer is as fresh as a call of its own would be. Loop thread. */
int gw_call_job_read(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *method, const char *id,
                     const ProtobufCMessageDescriptor *resp_desc, gw_render_fn render, int64_t limit);
/* The channel to the tenant's job (job != 0) or model service, from the
 * server's channel cache (any thread). NULL only out of memory. */
bok_rpc_channel_t *gw_channel_for(gw_server_t *s, const char *tenant, int job);

#endif
