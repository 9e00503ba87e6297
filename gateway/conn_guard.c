/* conn_guard.c -- slow-client limits in front of h2o's HTTP/1 connections:
 * a header read timeout and a per-IP connection cap (issue 12).
 *
 * h2o 2.2's http1.req_timeout bounds a whole request (head + body) and the
 * keep-alive idle time with one value (request_timeout_ms, 10 minutes for
 * uploads), so a client sending half a request line would hold a connection
 * that long. Every accepted socket gets a gw_conn_t (socket->on_close, which
 * h2o's server side leaves unused) with its own timer: armed at accept and
 * after each answered request, disarmed when h2o hands a complete request to
 * the handler. When it fires and the socket's input holds no complete request
 * head, the socket is shut down; h2o then sees EOF and closes the connection
 * itself (never freed under h2o's feet). A head that is complete (a body
 * still arriving) is left to request_timeout_ms. Two cases get the timer
 * again instead:
 * - an idle connection (not one byte since accept or since the last answer),
 *   up to keepalive_timeout_ms in all: browsers keep unused connections open
 *   for 10 s and reused ones for minutes, and a close at the moment a
 *   request is sent fails that request (seen under load: Chrome's upload got
 *   "connection closed" once its pre-opened connection was 10 s old);
 * - unread bytes in the kernel (FIONREAD), once per head: the loop is late
 *   (a loaded machine ran the timer before reading them), not the client.
 * A dribbled head is still cut after header_timeout_ms (at most twice that
 * from its first byte after an idle period).
 *
 * Threads: the per-IP table is server-wide (SO_REUSEPORT spreads one client's
 * connections over the loops) and guarded by ip_mu; a gw_conn_t belongs to
 * the loop thread of its socket. Nothing here logs per connection (a flood
 * must not become a log flood); the counters are on /metrics. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_guard.h"
#include "gw_obs.h"
#include "route.h"

#define IP_BUCKETS 1024

struct gw_ip_count {
  struct gw_ip_count *next;
  unsigned char addr[16];
  unsigned char len;
  int n;
};

struct gw_conn {
  gw_thread_t *th;
  h2o_socket_t *sock;          /* NULL once h2o closed it */
  h2o_timeout_entry_t timer;   /* linked while waiting for a request head */
  int refs;                    /* the socket + the request in progress */
  int idle_rounds;             /* header timeouts passed with nothing received */
  int late;                    /* 1: extended once for unread kernel bytes */
  unsigned char addr[16];
  unsigned char len;           /* 0: not counted (no peer address) */
};

/* ---- per-IP counts (any loop thread, under ip_mu) ----------------------------- */

static size_t ip_hash(const unsigned char *a, size_t len) {
  size_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ a[i]) * 16777619u;
  return h % IP_BUCKETS;
}

/* +1 for the address; 0 if it stays within the cap, -1 (nothing counted)
 * if the cap is reached or memory is short. */
static int ip_acquire(gw_server_t *s, const unsigned char *a, size_t len) {
  int rc = -1;
  pthread_mutex_lock(&s->ip_mu);
  struct gw_ip_count **slot = &s->ip_counts[ip_hash(a, len)], *c = *slot;
  while (c && !(c->len == len && memcmp(c->addr, a, len) == 0)) c = c->next;
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c) goto out;
    memcpy(c->addr, a, len);
    c->len = (unsigned char)len;
    c->next = *slot;
    *slot = c;
  }
  if (s->max_conns_per_ip > 0 && c->n >= s->max_conns_per_ip) goto out;
  c->n++;
  rc = 0;
out:
  pthread_mutex_unlock(&s->ip_mu);
  return rc;
}

static void ip_release(gw_server_t *s, const unsigned char *a, size_t len) {
  pthread_mutex_lock(&s->ip_mu);
  struct gw_ip_count **p = &s->ip_counts[ip_hash(a, len)];
  while (*p && !((*p)->len == len && memcmp((*p)->addr, a, len) == 0)) p = &(*p)->next;
  if (*p && --(*p)->n == 0) {
    struct gw_ip_count *dead = *p;
    *p = dead->next;
    free(dead);
  }
  pthread_mutex_unlock(&s->ip_mu);
}

int gw_conn_guard_init(gw_server_t *s) {
  s->ip_counts = calloc(IP_BUCKETS, sizeof *s->ip_counts);
  if (!s->ip_counts) return -1;
  pthread_mutex_init(&s->ip_mu, NULL);
  s->ip_mu_inited = 1;
  return 0;
}

void gw_conn_guard_destroy(gw_server_t *s) {
  for (size_t i = 0; s->ip_counts && i < IP_BUCKETS; i++) {
    while (s->ip_counts[i]) {
      struct gw_ip_count *c = s->ip_counts[i];
      s->ip_counts[i] = c->next;
      free(c);
    }
  }
  free(s->ip_counts);
  s->ip_counts = NULL;
  if (s->ip_mu_inited) pthread_mutex_destroy(&s->ip_mu);
  s->ip_mu_inited = 0;
}

/* ---- one connection (its loop thread) --------------------------------------------- */

static void conn_release(gw_conn_t *c) {
  if (--c->refs == 0) free(c);
}

static void conn_arm(gw_conn_t *c) {
  if (c->sock && !h2o_timeout_is_linked(&c->timer)) h2o_timeout_link(c->th->ctx.loop, &c->th->hdr_timeout, &c->timer);
}

static void conn_disarm(gw_conn_t *c) {
  if (h2o_timeout_is_linked(&c->timer)) h2o_timeout_unlink(&c->timer);
}

/* Accepted, or a request answered: the next head is due. */
static void conn_wait_head(gw_conn_t *c) {
  c->idle_rounds = 0;
  c->late = 0;
  conn_arm(c);
}

/* h2o disposed the socket (the connection is gone). */
static void conn_on_close(void *data) {
  gw_conn_t *c = data;
  conn_disarm(c);
  if (c->len) ip_release(c->th->srv, c->addr, c->len);
  c->sock = NULL;
  conn_release(c);
}

static void conn_on_timeout(h2o_timeout_entry_t *entry) {
  gw_conn_t *c = H2O_STRUCT_FROM_MEMBER(gw_conn_t, timer, entry);
  if (!c->sock) return;
  h2o_buffer_t *in = c->sock->input;
  size_t have = in ? in->size : 0;
  if (have && gw_http_head_complete(in->bytes, have)) return; /* a body is arriving */
  int unread = 0;
  if (ioctl(h2o_socket_get_fd(c->sock), FIONREAD, &unread) != 0) unread = 0;
  if (have == 0 && unread == 0 && ++c->idle_rounds < c->th->srv->idle_rounds) {
    conn_arm(c); /* idle keep-alive: not a slow client */
    return;
  }
  if (unread > 0 && !c->late) {
    c->late = 1;
    conn_arm(c);
    return;
  }
  gw_obs_header_timeout(c->th->srv->obs);
  /* h2o reads EOF next and closes the connection itself */
  shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
}

/* The answer to a connection over the cap: best effort, the socket is
 * non-blocking and about to be closed. */
static void send_refusal(h2o_socket_t *sock) {
  static const char BODY[] = "{\"error\":\"too many connections from this address\",\"code\":\"RESOURCE_EXHAUSTED\"}";
  char msg[300];
  int n = snprintf(msg, sizeof msg,
                   "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                   "Retry-After: 1\r\nContent-Length: %zu\r\n\r\n%s",
                   sizeof BODY - 1, BODY);
  ssize_t w = send(h2o_socket_get_fd(sock), msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)w;
}

/* The peer address as bytes (IPv4: 4, IPv6: 16); 0 when unknown. */
static size_t peer_addr(h2o_socket_t *sock, unsigned char out[16]) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (h2o_socket_getpeername(sock, (struct sockaddr *)&ss) == 0) return 0;
  if (ss.ss_family == AF_INET) {
    memcpy(out, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    return 4;
  }
  if (ss.ss_family == AF_INET6) {
    memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    return 16;
  }
  return 0;
}

int gw_conn_admit(gw_thread_t *th, h2o_socket_t *sock) {
  gw_server_t *s = th->srv;
  unsigned char addr[16];
  size_t len = peer_addr(sock, addr);
  if (len && ip_acquire(s, addr, len) != 0) {
    gw_obs_conn_refused(s->obs);
    send_refusal(sock);
    h2o_socket_close(sock);
    return -1;
  }
  gw_conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    if (len) ip_release(s, addr, len);
    h2o_socket_close(sock);
    return -1;
  }
  c->th = th;
  c->sock = sock;
  c->refs = 1;
  memcpy(c->addr, addr, len);
  c->len = (unsigned char)len;
  c->timer.cb = conn_on_timeout;
  sock->on_close.cb = conn_on_close;
  sock->on_close.data = c;
  conn_wait_head(c);
  return 0;
}

/* The request's pool is being cleared: the answer is sent (or the client is
 * gone); a keep-alive connection now waits for its next request head. */
static void on_request_dispose(void *slot) {
  gw_conn_t *c = *(gw_conn_t **)slot;
  conn_wait_head(c);
  conn_release(c);
}

void gw_conn_request_begin(h2o_req_t *req) {
  if (!req->conn->callbacks->get_socket) return;
  h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
  if (!sock || sock->on_close.cb != conn_on_close) return;
  gw_conn_t *c = sock->on_close.data;
  conn_disarm(c);
  c->refs++;
  gw_conn_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_request_dispose);
  *slot = c;
}
