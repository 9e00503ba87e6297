/* watch.c -- GET /jobs/{id}/events: a job's state as server-sent events,
 * from JobService/WatchJob (a gRPC server stream).
 *
 * Each message becomes "event: job\ndata: <the job as GET /jobs/{id}>\n\n";
 * the response ends after the final state (the stream's OK). The stream's
 * messages and its end arrive on the job channel's completion thread and
 * are posted to the request's loop thread (gw_pending_t with stream_event),
 * where everything else here runs. One event is written at a time: an event
 * arriving while the previous one is still being written replaces any event
 * waiting behind it (the latest state wins), so a slow client costs one
 * event of memory. The watch state is heap-owned with two references: the
 * request (until h2o disposes it: the stream is cancelled then) and the
 * stream (until its end is handled on the loop). A loop that stops cancels
 * its streams, so their responses end before it drains. */
#include <stdlib.h>
#include <string.h>

#include "batch/v1/job.pb-c.h"
#include "reply.h"
#include "watch.h"
#include "json_map.h"

struct gw_watch {
  h2o_generator_t gen; /* first: h2o hands it back to proceed/stop */
  gw_thread_t *th;
  h2o_req_t *req;     /* NULL once disposed */
  bok_rpc_sub_t *sub; /* NULL once released */
  gw_watch_t *prev, *next; /* th->watches */
  int refs;
  int started, sending, ended, final_sent;
  bok_err_t end_err;
  char *cur;  /* the event h2o is writing */
  char *next_ev; /* the latest event waiting */
};

static void watch_unref(gw_watch_t *w) {
  if (--w->refs) return;
  free(w->cur);
  free(w->next_ev);
  free(w);
}

/* Writes the waiting event, or ends the response once the stream ended. */
static void pump(gw_watch_t *w) {
  if (!w->req || !w->started || w->sending || w->final_sent) return;
  if (w->next_ev) {
    free(w->cur);
    w->cur = w->next_ev;
    w->next_ev = NULL;
    h2o_iovec_t buf = h2o_iovec_init(w->cur, strlen(w->cur));
    w->sending = 1;
    h2o_send(w->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
  } else if (w->ended) {
    w->final_sent = 1;
    /* OK after the final state; anything else truncates the stream */
    h2o_send(w->req, NULL, 0, w->end_err.code == BOK_OK ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_ERROR);
  }
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  gw_watch_t *w = (gw_watch_t *)g;
  w->sending = 0;
  pump(w);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  ((gw_watch_t *)g)->final_sent = 1; /* h2o gave up on the response: send nothing more */
}

static void on_req_dispose(void *slot) {
  gw_watch_t *w = *(gw_watch_t **)slot;
  w->req = NULL;
  if (w->sub) bok_rpc_sub_release(w->sub); /* cancels: its end still comes */
  w->sub = NULL;
  watch_unref(w);
}

static void start_response(gw_watch_t *w) {
  h2o_req_t *req = w->req;
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
  gw_count_status(req, 200);
  h2o_start_response(req, &w->gen);
  w->started = 1;
}

static char *format_event(const Batch__V1__Job *j) {
  json_t *o = gw_job_json(j);
  char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!data) return NULL;
  size_t n = strlen(data) + 32;
  char *ev = malloc(n);
  if (ev) snprintf(ev, n, "event: job\ndata: %s\n\n", data);
  free(data);
  return ev;
}

/* A stream message (resp) or its end (resp NULL, p->limit 1), on the loop. */
static void on_event(gw_pending_t *p, h2o_req_t *unused, ProtobufCMessage *resp, const bok_err_t *err) {
  (void)unused;
  gw_watch_t *w = p->ud;
  if (resp) {
    if (!w->req || w->final_sent) return;
    char *ev = format_event((const Batch__V1__Job *)resp);
    if (!ev) return; /* out of memory: a later state will follow */
    free(w->next_ev);
    w->next_ev = ev;
    if (!w->started) start_response(w);
    pump(w);
    return;
  }
  w->ended = 1;
  w->end_err = *err;
  if (w->sub) bok_rpc_sub_release(w->sub);
  w->sub = NULL;
  if (w->prev) w->prev->next = w->next;
  else w->th->watches = w->next;
  if (w->next) w->next->prev = w->prev;
  w->th->pending--;
  if (w->req && !w->started) {
    gw_send_rpc_error(w->req, "job", err, 1); /* nothing sent yet: an ordinary error answer */
    w->final_sent = 1;
  } else {
    pump(w);
  }
  watch_unref(w);
}

/* Completion thread: hand each message and the end to the loop. */
static void post(gw_watch_t *w, ProtobufCMessage *msg, const bok_err_t *err) {
  gw_pending_t *p = calloc(1, sizeof *p);
  if (!p) { /* out of memory: drop a message; an end can't be dropped */
    if (msg) {
      protobuf_c_message_free_unpacked(msg, NULL);
      return;
    }
    abort();
  }
  p->th = w->th;
  p->stream_event = 1;
  p->render = on_event;
  p->ud = w;
  p->resp = msg;
  if (err) p->err = *err;
  p->limit = msg ? 0 : 1;
  gw_pending_post(p);
}

static void on_msg(void *ud, ProtobufCMessage *msg) { post(ud, msg, NULL); }
static void on_end(void *ud, const bok_err_t *err) { post(ud, NULL, err); }

int gw_watch_start(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *job_id) {
  bok_rpc_channel_t *ch = gw_channel_for(th->srv, tenant, 1);
  gw_watch_t *w = calloc(1, sizeof *w);
  if (!ch || !w) {
    free(w);
    gw_send_error(req, 503, "UNAVAILABLE", "job service unavailable");
    return 0;
  }
  w->gen.proceed = on_proceed;
  w->gen.stop = on_stop;
  w->th = th;
  w->req = req;
  w->refs = 2;
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  r.job_id = (char *)job_id;
  w->sub = bok_rpc_sub_start(ch, "/batch.v1.JobService/WatchJob", tenant, 0, &r.base, &batch__v1__job__descriptor,
                             on_msg, on_end, w);
  if (!w->sub) {
    free(w);
    gw_send_error(req, 503, "UNAVAILABLE", "cannot start the watch");
    return 0;
  }
  w->next = th->watches;
  if (th->watches) th->watches->prev = w;
  th->watches = w;
  th->pending++; /* until its end is handled: the loop drains it before stopping */
  gw_watch_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_dispose);
  *slot = w;
  return 0;
}

void gw_watch_stop_all(gw_thread_t *th) {
  for (gw_watch_t *w = th->watches; w; w = w->next) {
    if (w->sub) bok_rpc_sub_release(w->sub);
    w->sub = NULL;
  }
}
