/* The upload pool: POST /jobs bodies are streamed to JobService/Upload as a
 * client stream, on these threads (never on an event loop).
 *
 * The file data points into h2o's buffered request body, which h2o frees
 * when the request is disposed (e.g. the client hangs up). So the dispose
 * callback marks the upload aborted, cancels the stream (a blocked send
 * fails at once) and waits only while a chunk is being sent; the thread
 * checks `aborted` before each chunk. */
#include <stdlib.h>
#include <string.h>

#include "batch/v1/job.pb-c.h"
#include "body_pages.h"
#include "gw_internal.h"
#include "json_map.h"

#define CHUNK (1 << 20)

struct gw_upload {
  gw_upload_t *next;
  gw_pending_t *p;
  bok_rpc_channel_t *ch;
  char *tenant, *model_id, *file_name;
  const char *format;
  char sep[2];
  gw_job_opts_t opts;
  const char *data;
  size_t len;
  int timeout_ms;
  /* shared between the loop thread (dispose) and the upload thread */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int aborted;
  int in_use;
  bok_rpc_stream_t *stream;
};

static void render_upload(gw_pending_t *p, h2o_req_t *req, ProtobufCMessage *resp, const bok_err_t *e) {
  (void)p, (void)e;
  gw_send_json(req, 202, gw_job_json((Batch__V1__Job *)resp));
}

static void upload_free(gw_upload_t *u) {
  pthread_mutex_destroy(&u->mu);
  pthread_cond_destroy(&u->cv);
  free(u->tenant);
  free(u->model_id);
  free(u->file_name);
  free(u);
}

/* Marks the body as being read (1) or not (0); 1 fails once aborted. */
static int body_use(gw_upload_t *u, int use) {
  pthread_mutex_lock(&u->mu);
  int ok = !(use && u->aborted);
  if (ok) u->in_use = use;
  if (!use) pthread_cond_broadcast(&u->cv);
  pthread_mutex_unlock(&u->mu);
  return ok;
}

/* Runs on the upload thread: stream the body, leave the answer in p. The
 * body (h2o's buffer) is only touched inside body_use(u, 1) .. (u, 0), which
 * a dispose waits for; everything else (connecting, waiting for the job
 * service's answer) needs no body, so a dispose never waits for it. */
static void run_upload(gw_upload_t *u) {
  gw_pending_t *p = u->p;
  bok_err_t *err = &p->err;
  if (__atomic_load_n(&u->aborted, __ATOMIC_ACQUIRE)) {
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "the gateway is shutting down");
    return;
  }
  bok_rpc_stream_t *st = bok_rpc_stream_open(u->ch, "/batch.v1.JobService/Upload", u->tenant, 0, err);
  if (!st) return;
  pthread_mutex_lock(&u->mu);
  u->stream = st;
  pthread_mutex_unlock(&u->mu);
  Batch__V1__UploadRequest m = BATCH__V1__UPLOAD_REQUEST__INIT;
  Batch__V1__UploadHeader h = BATCH__V1__UPLOAD_HEADER__INIT;
  h.model_id = u->model_id;
  h.file_name = u->file_name;
  h.format = (char *)(u->format ? u->format : "");
  h.separator = u->sep;
  h.dry_run = u->opts.dry_run;
  h.has_max_errors = u->opts.has_max_errors;
  h.max_errors = u->opts.max_errors;
  h.has_max_error_rate = u->opts.has_max_error_rate;
  h.max_error_rate = u->opts.max_error_rate;
  h.encoding = (char *)(u->opts.encoding ? u->opts.encoding : "");
  h.quote = u->opts.quote;
  h.compression = (char *)(u->opts.compression ? u->opts.compression : "");
  h.no_header = u->opts.no_header;
  m.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_HEADER;
  m.header = &h;
  int ok = bok_rpc_stream_send(st, &m.base, err) == 0;
  /* only compares addresses: safe without body_use */
  int release = gw_body_file_backed(u->data, u->len);
  for (size_t off = 0; ok && off < u->len; off += CHUNK) {
    if (!body_use(u, 1)) {
      ok = 0;
      bok_err_set(err, BOK_ERR_CANCELLED, "upload abandoned");
      break;
    }
    Batch__V1__UploadRequest c = BATCH__V1__UPLOAD_REQUEST__INIT;
    c.kind_case = BATCH__V1__UPLOAD_REQUEST__KIND_CHUNK;
    c.chunk.data = (uint8_t *)u->data + off;
    c.chunk.len = u->len - off < CHUNK ? u->len - off : CHUNK;
    ok = bok_rpc_stream_send(st, &c.base, err) == 0; /* packs (copies) the chunk */
    if (release) gw_body_release(u->data, off, off + c.chunk.len); /* sent: drop its pages */
    body_use(u, 0);
  }
  /* finish/abort free the stream: nobody may cancel it any more */
  pthread_mutex_lock(&u->mu);
  u->stream = NULL;
  pthread_mutex_unlock(&u->mu);
  if (ok)
    bok_rpc_stream_finish(st, &batch__v1__job__descriptor, &p->resp, err);
  else
    bok_rpc_stream_abort(st);
  if (err->code == BOK_ERR_CANCELLED && atomic_load(&p->th->srv->stopping))
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "the gateway is shutting down");
}

static void *upload_main(void *arg) {
  gw_server_t *s = ((gw_upload_slot_t *)arg)->s;
  int slot = ((gw_upload_slot_t *)arg)->slot;
  for (;;) {
    pthread_mutex_lock(&s->upload_mu);
    while (!s->upload_head && !atomic_load(&s->stopping)) pthread_cond_wait(&s->upload_cv, &s->upload_mu);
    gw_upload_t *u = s->upload_head;
    if (u) {
      s->upload_head = u->next;
      if (!s->upload_head) s->upload_tail = NULL;
      s->upload_active[slot] = u;
      if (atomic_load(&s->stopping)) { /* shutting down: fail fast */
        pthread_mutex_lock(&u->mu);
        u->aborted = 1;
        pthread_mutex_unlock(&u->mu);
      }
    }
    pthread_mutex_unlock(&s->upload_mu);
    if (!u) break;
    run_upload(u);
    pthread_mutex_lock(&s->upload_mu);
    s->upload_active[slot] = NULL;
    pthread_mutex_unlock(&s->upload_mu);
    /* After this post the thread never touches u again; u is freed with its
     * pending (gw_upload_release). */
    gw_pending_post(u->p);
  }
  return NULL;
}

/* Request pool dispose (loop thread): make sure the upload thread is done
 * with the body before h2o frees it. */
void gw_upload_on_dispose(gw_upload_t *u) {
  pthread_mutex_lock(&u->mu);
  u->aborted = 1;
  if (u->stream) bok_rpc_stream_cancel(u->stream);
  while (u->in_use) pthread_cond_wait(&u->cv, &u->mu);
  pthread_mutex_unlock(&u->mu);
}

int gw_upload_submit(gw_thread_t *th, h2o_req_t *req, const char *tenant, const char *model_id,
                     const char *file_name, const char *format, char sep, const gw_job_opts_t *opts,
                     const char *data, size_t len) {
  gw_server_t *s = th->srv;
  gw_upload_t *u = calloc(1, sizeof *u);
  if (!u) return -1;
  pthread_mutex_init(&u->mu, NULL);
  pthread_cond_init(&u->cv, NULL);
  u->ch = gw_channel_for(s, tenant, 1);
  u->tenant = strdup(tenant);
  u->model_id = strdup(model_id);
  u->file_name = strdup(file_name);
  if (!u->tenant || !u->model_id || !u->file_name || !u->ch) {
    upload_free(u);
    return -1;
  }
  u->format = format;
  u->sep[0] = sep;
  if (opts) u->opts = *opts;
  u->data = data;
  u->len = len;
  gw_pending_t *p = gw_pending_new(th, req, "job", render_upload);
  if (!p) {
    upload_free(u);
    return -1;
  }
  p->upload = u;
  p->plain_404 = 0; /* "model not found" is about the form field, keep it */
  u->p = p;
  pthread_mutex_lock(&s->upload_mu);
  if (s->upload_tail)
    s->upload_tail->next = u;
  else
    s->upload_head = u;
  s->upload_tail = u;
  pthread_cond_signal(&s->upload_cv);
  pthread_mutex_unlock(&s->upload_mu);
  return 0;
}

void gw_upload_release(gw_upload_t *u) { upload_free(u); }

int gw_upload_start(gw_server_t *s) {
  for (int i = 0; i < GW_UPLOAD_THREADS; i++) {
    s->upload_slots[i].s = s;
    s->upload_slots[i].slot = i;
    if (pthread_create(&s->upload_threads[i], NULL, upload_main, &s->upload_slots[i]) != 0) return -1;
    s->n_upload_threads = i + 1;
  }
  return 0;
}

/* Cancels running uploads (their send/finish fail promptly) and wakes the
 * threads; queued uploads fail fast. */
void gw_upload_stop_begin(gw_server_t *s) {
  pthread_mutex_lock(&s->upload_mu);
  for (int i = 0; i < GW_UPLOAD_THREADS; i++) {
    gw_upload_t *u = s->upload_active[i];
    if (!u) continue;
    pthread_mutex_lock(&u->mu);
    u->aborted = 1;
    if (u->stream) bok_rpc_stream_cancel(u->stream);
    pthread_mutex_unlock(&u->mu);
  }
  pthread_cond_broadcast(&s->upload_cv);
  pthread_mutex_unlock(&s->upload_mu);
}

void gw_upload_stop(gw_server_t *s) {
  for (int i = 0; i < s->n_upload_threads; i++) pthread_join(s->upload_threads[i], NULL);
  s->n_upload_threads = 0;
}
