/* cli_http.c -- batchcli's REST calls over libcurl: tenant header, API key
 * (BATCH_API_KEY), JSON answers, multipart uploads (a file or stdin, with a
 * progress bar on a terminal). */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bok/util.h"

#include "bok/buf.h"
#include "cli.h"

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  bok_buf_t *b = ud;
  return bok_buf_append(b, p, sz * n) == 0 ? sz * n : 0;
}

static int perform(cli_t *c, CURL *h, struct curl_slist *hdrs, json_t **resp) {
  bok_buf_t body = BOK_BUF_INIT(256u << 20);
  char tenant_hdr[256];
  if (c->tenant) {
    snprintf(tenant_hdr, sizeof tenant_hdr, "%s: %s", c->tenant_header, c->tenant);
    hdrs = curl_slist_append(hdrs, tenant_hdr);
  }
  if (c->api_key && *c->api_key) { /* curl copies the string */
    char *auth = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", c->api_key) > 0) hdrs = curl_slist_append(hdrs, auth);
    free(auth);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(h);
  long status = -1;
  if (rc != CURLE_OK) {
    fprintf(c->err, "batchcli: cannot reach %s: %s\n", c->api_url, curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    *resp = body.len ? json_loadb(body.data, body.len, JSON_DECODE_ANY, NULL) : NULL;
  }
  bok_buf_free(&body);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return (int)status;
}

int cli_http(cli_t *c, const char *method, const char *path, const char *body, size_t len, const char *ctype,
             json_t **resp) {
  *resp = NULL;
  CURL *h = curl_easy_init();
  char url[2048];
  snprintf(url, sizeof url, "%s%s", c->api_url, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  struct curl_slist *hdrs = NULL;
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    hdrs = curl_slist_append(hdrs, ct);
  }
  return perform(c, h, hdrs, resp);
}

static int ends_with(const char *s, size_t n, const char *suf) {
  size_t l = strlen(suf);
  return n >= l && strncasecmp(s + n - l, suf, l) == 0;
}

/* The file part's content type: what its name says (a ".gz" ending
 * ignored), else none in particular (the gateway looks at the content). */
static const char *upload_ctype(const char *path) {
  size_t l = strlen(path);
  if (ends_with(path, l, ".gz")) l -= 3;
  if (ends_with(path, l, ".ndjson") || ends_with(path, l, ".jsonl")) return "application/x-ndjson";
  if (ends_with(path, l, ".csv") || ends_with(path, l, ".tsv")) return "text/csv";
  return "application/octet-stream";
}

/* ---- the upload progress bar (stderr, a terminal only) ---- */

typedef struct {
  FILE *out;
  int64_t start_ms, last_ms;
  int drawn;
} progress_t;

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)dlnow;
  progress_t *p = ud;
  int64_t now = bok_mono_ms();
  if (ultotal <= 0 || (now - p->last_ms < 100 && ulnow < ultotal)) return 0;
  p->last_ms = now;
  double secs = (double)(now - p->start_ms) / 1000.0, mb = (double)ulnow / 1e6;
  int pct = (int)(100 * ulnow / ultotal), cells = (int)(30 * ulnow / ultotal);
  char bar[31];
  for (int i = 0; i < 30; i++) bar[i] = i < cells ? '#' : '-';
  bar[30] = '\0';
  fprintf(p->out, "\r\033[Kuploading [%s] %3d%%  %.1f/%.1f MB  %.1f MB/s", bar, pct, mb, (double)ultotal / 1e6,
          secs > 0 ? mb / secs : 0.0);
  fflush(p->out);
  p->drawn = 1;
  return 0;
}

/* stdin is copied to an unlinked temporary file first: the upload needs its
 * size (the gateway takes no chunked bodies) and a progress bar its total. */
static FILE *spool_stdin(cli_t *c, curl_off_t *size) {
  FILE *t = tmpfile();
  if (!t) {
    fprintf(c->err, "batchcli: cannot create a temporary file for stdin\n");
    return NULL;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
    if (fwrite(buf, 1, n, t) != n) {
      fprintf(c->err, "batchcli: cannot buffer stdin\n");
      fclose(t);
      return NULL;
    }
  *size = (curl_off_t)ftello(t);
  rewind(t);
  return t;
}

static size_t read_file_cb(char *buf, size_t size, size_t n, void *ud) { return fread(buf, size, n, ud); }

static int seek_file_cb(void *ud, curl_off_t off, int origin) {
  return fseeko(ud, (off_t)off, origin) == 0 ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

int cli_http_upload(cli_t *c, const char *model_id, const char *file_path, const char *const *fields,
                    size_t nfields, json_t **resp) {
  *resp = NULL;
  FILE *in = NULL;
  curl_off_t in_size = 0;
  int from_stdin = strcmp(file_path, "-") == 0;
  if (from_stdin && !(in = spool_stdin(c, &in_size))) return -1;
  CURL *h = curl_easy_init();
  char url[2048];
  snprintf(url, sizeof url, "%s/jobs", c->api_url);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_mime *mime = curl_mime_init(h);
  curl_mimepart *part = curl_mime_addpart(mime);
  curl_mime_name(part, "model_id");
  curl_mime_data(part, model_id, CURL_ZERO_TERMINATED);
  for (size_t i = 0; i < nfields; i++) {
    part = curl_mime_addpart(mime);
    curl_mime_name(part, fields[2 * i]);
    curl_mime_data(part, fields[2 * i + 1], CURL_ZERO_TERMINATED);
  }
  part = curl_mime_addpart(mime);
  curl_mime_name(part, "file");
  if (from_stdin) {
    curl_mime_data_cb(part, in_size, read_file_cb, seek_file_cb, NULL, in);
    curl_mime_filename(part, "stdin");
  } else if (curl_mime_filedata(part, file_path) != CURLE_OK) {
    fprintf(c->err, "batchcli: cannot read %s\n", file_path);
    curl_mime_free(mime);
    curl_easy_cleanup(h);
    return -1;
  }
  curl_mime_type(part, upload_ctype(file_path));
  curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
  progress_t pr = {c->err, bok_mono_ms(), 0, 0};
  if (c->progress) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &pr);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }
  int st = perform(c, h, NULL, resp);
  if (pr.drawn) fputs("\r\033[K", c->err); /* the bar goes away once the answer is in */
  curl_mime_free(mime);
  if (in) fclose(in);
  return st;
}

/* Download sink: a 2xx body goes to the file, anything else is kept (small)
 * to be read as a JSON error. */
typedef struct {
  CURL *h;
  FILE *out;
  bok_buf_t err;
  int checked, ok, write_failed;
} sink_t;

static size_t on_file_data(char *p, size_t sz, size_t n, void *ud) {
  sink_t *s = ud;
  if (!s->checked) {
    long st = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &st);
    s->ok = st >= 200 && st < 300;
    s->checked = 1;
  }
  if (!s->ok) return bok_buf_append(&s->err, p, sz * n) == 0 ? sz * n : 0;
  if (fwrite(p, 1, sz * n, s->out) != sz * n) {
    s->write_failed = 1;
    return 0;
  }
  return sz * n;
}

int cli_http_download(cli_t *c, const char *path, FILE *out, json_t **resp) {
  *resp = NULL;
  CURL *h = curl_easy_init();
  char url[2048];
  snprintf(url, sizeof url, "%s%s", c->api_url, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  struct curl_slist *hdrs = NULL;
  char tenant_hdr[256];
  if (c->tenant) {
    snprintf(tenant_hdr, sizeof tenant_hdr, "%s: %s", c->tenant_header, c->tenant);
    hdrs = curl_slist_append(hdrs, tenant_hdr);
  }
  if (c->api_key && *c->api_key) {
    char *auth = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", c->api_key) > 0) hdrs = curl_slist_append(hdrs, auth);
    free(auth);
  }
  sink_t s = {h, out, BOK_BUF_INIT(1u << 20), 0, 0, 0};
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_file_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(h);
  long status = -1;
  if (rc != CURLE_OK) {
    if (s.write_failed)
      fprintf(c->err, "batchcli: cannot write the file\n");
    else
      fprintf(c->err, "batchcli: download from %s failed: %s\n", c->api_url, curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (s.err.len) *resp = json_loadb(s.err.data, s.err.len, JSON_DECODE_ANY, NULL);
  }
  bok_buf_free(&s.err);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return (int)status;
}

/* Server-sent events: lines split as they arrive, an event dispatched at its
 * blank line; a non-2xx body is kept (small) as the JSON error. */
typedef struct {
  CURL *h;
  cli_event_fn fn;
  void *ud;
  bok_buf_t line, data, err;
  char event[64];
  int checked, ok, stopped;
} sse_t;

static void sse_line(sse_t *s, const char *l, size_t n) {
  if (n == 0) { /* end of an event */
    if (s->data.len && !s->stopped) {
      bok_buf_append(&s->data, "", 1);
      s->stopped = s->fn(s->ud, s->event[0] ? s->event : "message", s->data.data);
    }
    s->data.len = 0;
    s->event[0] = '\0';
  } else if (n > 6 && memcmp(l, "event:", 6) == 0) {
    size_t k = 6 + (l[6] == ' ');
    snprintf(s->event, sizeof s->event, "%.*s", (int)(n - k), l + k);
  } else if (n > 5 && memcmp(l, "data:", 5) == 0) {
    size_t k = 5 + (l[5] == ' ');
    if (s->data.len) bok_buf_append(&s->data, "\n", 1);
    bok_buf_append(&s->data, l + k, n - k);
  } /* comments (":") and other fields: ignored */
}

static size_t on_sse_data(char *p, size_t sz, size_t n, void *ud) {
  sse_t *s = ud;
  size_t len = sz * n;
  if (!s->checked) {
    long st = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &st);
    s->ok = st >= 200 && st < 300;
    s->checked = 1;
  }
  if (!s->ok) return bok_buf_append(&s->err, p, len) == 0 ? len : 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\n') {
      size_t ln = s->line.len;
      if (ln && s->line.data[ln - 1] == '\r') ln--;
      sse_line(s, s->line.data, ln);
      s->line.len = 0;
    } else if (bok_buf_append(&s->line, p + i, 1) != 0) {
      return 0;
    }
  }
  return s->stopped ? 0 : len;
}

int cli_http_events(cli_t *c, const char *path, cli_event_fn fn, void *ud, json_t **resp) {
  *resp = NULL;
  CURL *h = curl_easy_init();
  char url[2048];
  snprintf(url, sizeof url, "%s%s", c->api_url, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: text/event-stream");
  char tenant_hdr[256];
  if (c->tenant) {
    snprintf(tenant_hdr, sizeof tenant_hdr, "%s: %s", c->tenant_header, c->tenant);
    hdrs = curl_slist_append(hdrs, tenant_hdr);
  }
  if (c->api_key && *c->api_key) {
    char *auth = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", c->api_key) > 0) hdrs = curl_slist_append(hdrs, auth);
    free(auth);
  }
  sse_t s = {h, fn, ud, BOK_BUF_INIT(16u << 20), BOK_BUF_INIT(16u << 20), BOK_BUF_INIT(1u << 20), "", 0, 0, 0};
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sse_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(h);
  long status = -1;
  if (rc == CURLE_OK || s.checked) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (s.err.len) *resp = json_loadb(s.err.data, s.err.len, JSON_DECODE_ANY, NULL);
    if (rc != CURLE_OK && s.ok) status = 0; /* broke off (or stopped) mid-stream */
  }
  bok_buf_free(&s.line);
  bok_buf_free(&s.data);
  bok_buf_free(&s.err);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return (int)status;
}
