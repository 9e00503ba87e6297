/* The admin HTTP port (bok/admin_http.h): one thread, poll() on the listening
 * socket and a wake pipe; each connection is read (bounded in size and time),
 * answered and closed. */
#include "bok/admin_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bok/buf.h"
#include "bok/util.h"

#define MAX_REQUEST 8192
#define REQUEST_TIMEOUT_MS 5000
#define WRITE_TIMEOUT_MS 5000

struct bok_admin_http {
  bok_admin_http_opts_t o;
  int fd;
  int port;
  int wake[2];
  pthread_t th;
};

static int split_addr(const char *addr, char *host, size_t hl, char *port, size_t pl) {
  const char *colon = strrchr(addr, ':');
  if (!colon || !colon[1]) return -1;
  const char *h = addr;
  size_t n = (size_t)(colon - addr);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { /* [::1]:9101 */
    h++;
    n -= 2;
  }
  if (n >= hl || strlen(colon + 1) >= pl) return -1;
  memcpy(host, h, n);
  host[n] = '\0';
  snprintf(port, pl, "%s", colon + 1);
  for (const char *p = port; *p; p++)
    if (*p < '0' || *p > '9') return -1;
  return 0;
}

/* Writes all of it, waiting up to WRITE_TIMEOUT_MS for a slow reader. */
static void write_all(int fd, const char *p, size_t n) {
  int64_t deadline = bok_mono_ms() + WRITE_TIMEOUT_MS;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - bok_mono_ms();
      if (left <= 0) return;
      struct pollfd pf = {fd, POLLOUT, 0};
      poll(&pf, 1, (int)left);
      continue;
    }
    return;
  }
}

static void respond(int fd, int status, const char *reason, const char *ctype, const char *body, size_t blen,
                    int head_only) {
  bok_buf_t o = BOK_BUF_INIT(0);
  bok_buf_printf(&o,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                 "Connection: close\r\n\r\n",
                 status, reason, ctype, blen);
  if (!head_only && blen) bok_buf_append(&o, body, blen);
  if (o.data) write_all(fd, o.data, o.len);
  bok_buf_free(&o);
}

static void json_reason(bok_buf_t *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') bok_buf_printf(b, "\\%c", c);
    else if (c < 0x20) bok_buf_printf(b, "\\u%04x", c);
    else bok_buf_appendc(b, (char)c);
  }
}

/* Reads the request head (up to the blank line). 1 ok, 0 too large, -1 gone. */
static int read_head(int fd, char *buf, size_t cap, size_t *len) {
  int64_t deadline = bok_mono_ms() + REQUEST_TIMEOUT_MS;
  *len = 0;
  for (;;) {
    int64_t left = deadline - bok_mono_ms();
    if (left <= 0) return -1;
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return -1;
    if (*len == cap) return 0;
    ssize_t r = recv(fd, buf + *len, cap - *len, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return -1;
    *len += (size_t)r;
    buf[*len] = '\0';
    if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) return 1;
    if (*len == cap) return 0;
  }
}

static void serve(bok_admin_http_t *a, int fd) {
  char buf[MAX_REQUEST + 1];
  size_t len;
  int r = read_head(fd, buf, MAX_REQUEST, &len);
  if (r < 0) return;
  static const char *plain = "text/plain; charset=utf-8";
  static const char *json = "application/json";
  if (r == 0) {
    static const char msg[] = "request too large\n";
    respond(fd, 431, "Request Header Fields Too Large", plain, msg, sizeof msg - 1, 0);
    return;
  }
  /* "METHOD SP TARGET SP VERSION" */
  char method[16], target[1024];
  if (sscanf(buf, "%15s %1023s", method, target) != 2) {
    static const char msg[] = "bad request\n";
    respond(fd, 400, "Bad Request", plain, msg, sizeof msg - 1, 0);
    return;
  }
  char *q = strchr(target, '?');
  if (q) *q = '\0';
  int head = strcmp(method, "HEAD") == 0;
  int known = strcmp(target, "/metrics") == 0 || strcmp(target, "/healthz") == 0 || strcmp(target, "/readyz") == 0;
  if (!known) {
    static const char msg[] = "{\"error\":\"not found\"}";
    respond(fd, 404, "Not Found", json, msg, sizeof msg - 1, head);
    return;
  }
  if (strcmp(method, "GET") != 0 && !head) {
    static const char msg[] = "{\"error\":\"method not allowed\"}";
    respond(fd, 405, "Method Not Allowed", json, msg, sizeof msg - 1, 0);
    return;
  }
  if (strcmp(target, "/healthz") == 0) {
    static const char msg[] = "{\"status\":\"ok\"}";
    respond(fd, 200, "OK", json, msg, sizeof msg - 1, head);
  } else if (strcmp(target, "/readyz") == 0) {
    char reason[400] = "";
    int ready = a->o.ready ? a->o.ready(a->o.ready_ud, reason, sizeof reason) : 1;
    bok_buf_t b = BOK_BUF_INIT(0);
    if (ready && reason[0]) { /* ready, but something it depends on is degraded */
      bok_buf_appends(&b, "{\"status\":\"ready\",\"degraded\":\"");
      json_reason(&b, reason);
      bok_buf_appends(&b, "\"}");
    } else if (ready) {
      bok_buf_appends(&b, "{\"status\":\"ready\"}");
    } else {
      bok_buf_appends(&b, "{\"status\":\"not ready\",\"reason\":\"");
      json_reason(&b, reason[0] ? reason : "not ready");
      bok_buf_appends(&b, "\"}");
    }
    if (ready) respond(fd, 200, "OK", json, b.data, b.len, head);
    else respond(fd, 503, "Service Unavailable", json, b.data, b.len, head);
    bok_buf_free(&b);
  } else {
    bok_buf_t b = BOK_BUF_INIT(64u << 20);
    if (a->o.metrics) bok_metrics_render(a->o.metrics, &b);
    respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len, head);
    bok_buf_free(&b);
  }
}

static void *thread_main(void *arg) {
  bok_admin_http_t *a = arg;
  for (;;) {
    struct pollfd pf[2] = {{a->fd, POLLIN, 0}, {a->wake[0], POLLIN, 0}};
    int pr = poll(pf, 2, -1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0 || pf[1].revents) break;
    if (!(pf[0].revents & POLLIN)) continue;
    int c = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) continue;
    serve(a, c);
    shutdown(c, SHUT_WR);
    close(c);
  }
  return NULL;
}

bok_admin_http_t *bok_admin_http_start(const bok_admin_http_opts_t *opts, char *err, size_t errlen) {
  if (errlen) err[0] = '\0';
  if (!opts->addr || !opts->addr[0]) return NULL;
  char host[256], port[16];
  if (split_addr(opts->addr, host, sizeof host, port, sizeof port) != 0) {
    snprintf(err, errlen, "metrics_listen: bad address \"%s\" (want HOST:PORT)", opts->addr);
    return NULL;
  }
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int gr = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (gr != 0) {
    snprintf(err, errlen, "metrics_listen %s: %s", opts->addr, gai_strerror(gr));
    return NULL;
  }
  bok_admin_http_t *a = calloc(1, sizeof *a);
  if (!a) {
    freeaddrinfo(ai);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  a->o = *opts;
  a->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (a->fd >= 0) setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a->fd < 0 || bind(a->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(a->fd, 64) != 0) {
    snprintf(err, errlen, "metrics_listen %s: %s", opts->addr, strerror(errno));
    freeaddrinfo(ai);
    if (a->fd >= 0) close(a->fd);
    free(a);
    return NULL;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(a->fd, (struct sockaddr *)&ss, &sl);
  char shown[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    a->port = ntohs(s6->sin6_port);
    inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof shown);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    a->port = ntohs(s4->sin_port);
    inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof shown);
  }
  if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0 || pthread_create(&a->th, NULL, thread_main, a) != 0) {
    snprintf(err, errlen, "cannot start the metrics thread");
    close(a->fd);
    free(a);
    return NULL;
  }
  bok_logf(a->o.log, a->o.log_opaque, BOK_LOG_INFO, "metrics listening on %s%s%s:%d",
           ss.ss_family == AF_INET6 ? "[" : "", shown, ss.ss_family == AF_INET6 ? "]" : "", a->port);
  return a;
}

int bok_admin_http_port(const bok_admin_http_t *a) { return a ? a->port : 0; }

void bok_admin_http_stop(bok_admin_http_t *a) {
  if (!a) return;
  char c = 1;
  ssize_t w = write(a->wake[1], &c, 1);
  (void)w;
  pthread_join(a->th, NULL);
  close(a->wake[0]);
  close(a->wake[1]);
  close(a->fd);
  free(a);
}

/* ---- cached readiness ------------------------------------------------------ */

struct bok_ready_cache {
  bok_ready_fn probe;
  void *ud;
  int interval_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  int ready;
  char reason[400];
  pthread_t th;
};

static void *cache_main(void *arg) {
  bok_ready_cache_t *c = arg;
  pthread_mutex_lock(&c->mu);
  while (!c->stop) {
    pthread_mutex_unlock(&c->mu);
    char why[400] = "";
    int ok = c->probe(c->ud, why, sizeof why);
    pthread_mutex_lock(&c->mu);
    c->ready = ok;
    /* A ready probe may leave a note (e.g. "Kafka degraded: ...") */
    snprintf(c->reason, sizeof c->reason, "%s", ok ? why : (why[0] ? why : "not ready"));
    /* c->cv is a default (CLOCK_REALTIME) condvar. */
    struct timespec ts = bok_time_deadline(CLOCK_REALTIME, c->interval_ms);
    while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0) {
    }
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

bok_ready_cache_t *bok_ready_cache_start(bok_ready_fn probe, void *ud, int interval_ms) {
  bok_ready_cache_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->probe = probe;
  c->ud = ud;
  c->interval_ms = interval_ms > 0 ? interval_ms : 2000;
  snprintf(c->reason, sizeof c->reason, "starting");
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (pthread_create(&c->th, NULL, cache_main, c) != 0) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return NULL;
  }
  return c;
}

int bok_ready_cache_get(void *cache, char *reason, size_t reason_len) {
  bok_ready_cache_t *c = cache;
  if (!c) return 1;
  pthread_mutex_lock(&c->mu);
  int ok = c->ready;
  if (reason_len) snprintf(reason, reason_len, "%s", c->reason);
  pthread_mutex_unlock(&c->mu);
  return ok;
}

void bok_ready_cache_stop(bok_ready_cache_t *c) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->th, NULL);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
}
