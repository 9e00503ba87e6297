/* cli_http.c -- batchcli's REST calls over libcurl: tenant header, API key
 * (BATCH_API_KEY), JSON answers, multipart uploads. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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

int cli_http_upload(cli_t *c, const char *model_id, const char *file_path, const char *const *fields,
                    size_t nfields, json_t **resp) {
  *resp = NULL;
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
  if (curl_mime_filedata(part, file_path) != CURLE_OK) {
    fprintf(c->err, "batchcli: cannot read %s\n", file_path);
    curl_mime_free(mime);
    curl_easy_cleanup(h);
    return -1;
  }
  size_t l = strlen(file_path);
  int nd = (l > 7 && strcmp(file_path + l - 7, ".ndjson") == 0) || (l > 6 && strcmp(file_path + l - 6, ".jsonl") == 0);
  curl_mime_type(part, nd ? "application/x-ndjson" : "text/csv");
  curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
  int st = perform(c, h, NULL, resp);
  curl_mime_free(mime);
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
