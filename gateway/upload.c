/* The upload pool: POST /jobs bodies are streamed to JobService/Upload as a
 * client stream, on these threads (never on an event loop).
 *
 * The file data points into h2o's buffered request body, which h2o frees
 * when the request is disposed (e.g. the client hangs up). So the dispose
 * callback marks the upload aborted, cancels the stream (a blocked send
 * fails at once) and waits only while a chunk is being sent; the thread
 * checks `aborted` before each chunk.
 *
 * The pool (queue, threads, the upload each thread runs) is private to this
 * file; the pending call (reply.h) owns an upload through its owner hooks. */
#include "upload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch/v1/job.pb-c.h"
#include "body_pages.h"
#include "json_map.h"
#include "reply.h"

#define CHUNK (1 << 20)

typedef struct gw_upload gw_upload_t;

/* The pool: a queue of uploads and the threads that run them. */
struct gw_upload_pool {
  const atomic_int *stopping; /* the server's flag */
  pthread_t threads[GW_UPLOAD_THREADS];
  int nthreads;
  struct upload_slot {
    gw_upload_pool_t *pool;
    int slot;
  } slots[GW_UPLOAD_THREADS];
  pthread_mutex_t mu;                       /* guards the queue and active */
  pthread_cond_t cv;
  gw_upload_t *head, *tail;                 /* queued */
  gw_upload_t *active[GW_UPLOAD_THREADS];   /* running, by thread */
};

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
  const atomic_int *stopping; /* the server's flag */
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
  if (err->code == BOK_ERR_CANCELLED && atomic_load(u->stopping))
    bok_err_set(err, BOK_ERR_UNAVAILABLE, "the gateway is shutting down");
}

/* The next queued upload (NULL: stopping and none left), marked active
 * in `slot`; once stopping, it is marked aborted to fail fast. */
static gw_upload_t *next_upload(gw_upload_pool_t *pool, int slot) {
  pthread_mutex_lock(&pool->mu);
  while (!pool->head && !atomic_load(pool->stopping)) pthread_cond_wait(&pool->cv, &pool->mu);
  gw_upload_t *u = pool->head;
  if (u) {
    pool->head = u->next;
    if (!pool->head) pool->tail = NULL;
    pool->active[slot] = u;
    if (atomic_load(pool->stopping)) { /* shutting down: fail fast */
      pthread_mutex_lock(&u->mu);
      u->aborted = 1;
      pthread_mutex_unlock(&u->mu);
    }
  }
  pthread_mutex_unlock(&pool->mu);
  return u;
}

static void *upload_main(void *arg) {
  gw_upload_pool_t *pool = ((struct upload_slot *)arg)->pool;
  int slot = ((struct upload_slot *)arg)->slot;
  gw_upload_t *u;
  while ((u = next_upload(pool, slot)) != NULL) {
    run_upload(u);
    pthread_mutex_lock(&pool->mu);
    pool->active[slot] = NULL;
    pthread_mutex_unlock(&pool->mu);
    /* After this post the thread never touches u again; u is freed with its
     * pending (owner_free). */
    gw_pending_post(u->p);
  }
  return NULL;
}

/* Request pool dispose (loop thread): make sure the upload thread is done
 * with the body before h2o frees it. */
static void upload_on_dispose(void *owner) {
  gw_upload_t *u = owner;
  pthread_mutex_lock(&u->mu);
  u->aborted = 1;
  if (u->stream) bok_rpc_stream_cancel(u->stream);
  while (u->in_use) pthread_cond_wait(&u->cv, &u->mu);
  pthread_mutex_unlock(&u->mu);
}

static void upload_release(void *owner) { upload_free(owner); }

int gw_upload_submit(gw_upload_pool_t *pool, gw_thread_t *th, h2o_req_t *req, const char *tenant,
                     const char *model_id, const char *file_name, const char *format, char sep,
                     const gw_job_opts_t *opts, const char *data, size_t len) {
  gw_upload_t *u = calloc(1, sizeof *u);
  if (!u) return -1;
  pthread_mutex_init(&u->mu, NULL);
  pthread_cond_init(&u->cv, NULL);
  u->ch = gw_channel_for(th->srv, tenant, 1);
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
  u->stopping = pool->stopping;
  gw_pending_t *p = gw_pending_new(th, req, "job", render_upload);
  if (!p) {
    upload_free(u);
    return -1;
  }
  p->owner = u;
  p->owner_on_dispose = upload_on_dispose;
  p->owner_free = upload_release;
  p->plain_404 = 0; /* "model not found" is about the form field, keep it */
  u->p = p;
  pthread_mutex_lock(&pool->mu);
  if (pool->tail)
    pool->tail->next = u;
  else
    pool->head = u;
  pool->tail = u;
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
  return 0;
}

int gw_upload_pool_start(const atomic_int *stopping, gw_upload_pool_t **out) {
  gw_upload_pool_t *pool = *out = calloc(1, sizeof *pool);
  if (!pool) return -1;
  pool->stopping = stopping;
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->cv, NULL);
  for (int i = 0; i < GW_UPLOAD_THREADS; i++) {
    pool->slots[i].pool = pool;
    pool->slots[i].slot = i;
    if (pthread_create(&pool->threads[i], NULL, upload_main, &pool->slots[i]) != 0) return -1;
    pool->nthreads = i + 1;
  }
  return 0;
}

void gw_upload_pool_stop_begin(gw_upload_pool_t *pool) {
  if (!pool) return;
  pthread_mutex_lock(&pool->mu);
  for (int i = 0; i < GW_UPLOAD_THREADS; i++) {
    gw_upload_t *u = pool->active[i];
    if (!u) continue;
    pthread_mutex_lock(&u->mu);
    u->aborted = 1;
    if (u->stream) bok_rpc_stream_cancel(u->stream);
    pthread_mutex_unlock(&u->mu);
  }
  pthread_cond_broadcast(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
}

void gw_upload_pool_stop(gw_upload_pool_t *pool) {
  if (!pool) return;
  for (int i = 0; i < pool->nthreads; i++) pthread_join(pool->threads[i], NULL);
  pthread_mutex_destroy(&pool->mu);
  pthread_cond_destroy(&pool->cv);
  free(pool);
}
