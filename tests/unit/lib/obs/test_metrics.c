/* bok_metrics (exact Prometheus text, concurrency) and bok_admin_http (a real
 * socket: /metrics, /healthz, /readyz flipping, 404, 405, oversized). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bok/admin_http.h"
#include "bok/metrics.h"

static char *render(bok_metrics_t *m) {
  bok_buf_t b = BOK_BUF_INIT(0);
  assert_int_equal(bok_metrics_render(m, &b), 0);
  char *s = strdup(b.data ? b.data : "");
  bok_buf_free(&b);
  return s;
}

static void test_counter_gauge_text(void **st) {
  (void)st;
  bok_metrics_t *m = bok_metrics_new();
  bok_metric_t *c = bok_metrics_counter(m, "bok_things_total", "Things seen.");
  bok_counter_inc(c);
  bok_counter_add(c, 41);
  bok_metric_t *g = bok_metrics_gauge(m, "bok_temp", "A gauge\\with \"quotes\"\nand newline.");
  bok_gauge_set(g, 2.5);
  bok_gauge_add(g, -1);
  char *s = render(m);
  assert_string_equal(s,
                      "# HELP bok_things_total Things seen.\n"
                      "# TYPE bok_things_total counter\n"
                      "bok_things_total 42\n"
                      "# HELP bok_temp A gauge\\\\with \"quotes\"\\nand newline.\n"
                      "# TYPE bok_temp gauge\n"
                      "bok_temp 1.5\n");
  free(s);
  assert_int_equal(bok_counter_value(c), 42);
  bok_metrics_destroy(m);
}

static void test_labels_and_escaping(void **st) {
  (void)st;
  bok_metrics_t *m = bok_metrics_new();
  const char *ln[] = {"method", "code"};
  bok_metric_family_t *f = bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_req_total", "Requests.", 2, ln, NULL, 0);
  assert_non_null(f);
  const char *v1[] = {"/a.B/C", "OK"};
  const char *v2[] = {"x\"y\\z\nw", "NOT_FOUND"};
  bok_metric_t *a = bok_metric_child(f, v1);
  bok_metric_t *b = bok_metric_child(f, v2);
  assert_ptr_equal(bok_metric_child(f, v1), a); /* resolved once, same child */
  bok_counter_add(a, 3);
  bok_counter_inc(b);
  /* same name + type returns the same family; a type clash or bad name is refused */
  assert_ptr_equal(bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_req_total", "x", 2, ln, NULL, 0), f);
  assert_null(bok_metrics_family(m, BOK_METRIC_GAUGE, "bok_req_total", "x", 2, ln, NULL, 0));
  assert_null(bok_metrics_family(m, BOK_METRIC_GAUGE, "9bad", "x", 0, NULL, NULL, 0));
  const char *badl[] = {"le"};
  assert_null(bok_metrics_family(m, BOK_METRIC_HISTOGRAM, "bok_h", "x", 1, badl, NULL, 0));
  char *s = render(m);
  assert_string_equal(s,
                      "# HELP bok_req_total Requests.\n"
                      "# TYPE bok_req_total counter\n"
                      "bok_req_total{method=\"/a.B/C\",code=\"OK\"} 3\n"
                      "bok_req_total{method=\"x\\\"y\\\\z\\nw\",code=\"NOT_FOUND\"} 1\n");
  free(s);
  bok_metrics_destroy(m);
}

static void test_histogram_text(void **st) {
  (void)st;
  bok_metrics_t *m = bok_metrics_new();
  const double bk[] = {0.1, 1, 2.5};
  const char *ln[] = {"route"};
  bok_metric_family_t *f = bok_metrics_family(m, BOK_METRIC_HISTOGRAM, "bok_lat_seconds", "Latency.", 1, ln, bk, 3);
  const char *v[] = {"/jobs/{id}"};
  bok_metric_t *h = bok_metric_child(f, v);
  bok_histogram_observe(h, 0.05);
  bok_histogram_observe(h, 0.1); /* le is inclusive */
  bok_histogram_observe(h, 2);
  bok_histogram_observe(h, 7);
  assert_int_equal(bok_histogram_count(h), 4);
  char *s = render(m);
  assert_string_equal(s,
                      "# HELP bok_lat_seconds Latency.\n"
                      "# TYPE bok_lat_seconds histogram\n"
                      "bok_lat_seconds_bucket{route=\"/jobs/{id}\",le=\"0.1\"} 2\n"
                      "bok_lat_seconds_bucket{route=\"/jobs/{id}\",le=\"1\"} 2\n"
                      "bok_lat_seconds_bucket{route=\"/jobs/{id}\",le=\"2.5\"} 3\n"
                      "bok_lat_seconds_bucket{route=\"/jobs/{id}\",le=\"+Inf\"} 4\n"
                      "bok_lat_seconds_sum{route=\"/jobs/{id}\"} 9.15\n"
                      "bok_lat_seconds_count{route=\"/jobs/{id}\"} 4\n");
  free(s);
  /* default buckets: 0.5 ms .. 10 s */
  bok_metric_t *d = bok_metrics_histogram(m, "bok_d_seconds", "D.", NULL, 0);
  bok_histogram_observe(d, 0.0003);
  s = render(m);
  assert_non_null(strstr(s, "bok_d_seconds_bucket{le=\"0.0005\"} 1\n"));
  assert_non_null(strstr(s, "bok_d_seconds_bucket{le=\"10\"} 1\n"));
  assert_non_null(strstr(s, "bok_d_seconds_sum 0.0003\n"));
  free(s);
  bok_metrics_destroy(m);
}

static void emit_states(void *ud, bok_metrics_sink_t *sink) {
  int *calls = ud;
  (*calls)++;
  const char *a[] = {"RUNNING"};
  const char *b[] = {"SUCCEEDED"};
  bok_metrics_sink_emit(sink, a, 2);
  bok_metrics_sink_emit(sink, b, *calls);
}

static void test_callback_family(void **st) {
  (void)st;
  bok_metrics_t *m = bok_metrics_new();
  int calls = 0;
  const char *ln[] = {"state"};
  bok_metric_family_t *f = bok_metrics_callback(m, BOK_METRIC_GAUGE, "bok_jobs", "Jobs by state.", 1, ln,
                                                emit_states, &calls);
  assert_non_null(f);
  char *s = render(m);
  assert_string_equal(s,
                      "# HELP bok_jobs Jobs by state.\n# TYPE bok_jobs gauge\n"
                      "bok_jobs{state=\"RUNNING\"} 2\nbok_jobs{state=\"SUCCEEDED\"} 1\n");
  free(s);
  s = render(m); /* evaluated at every scrape */
  assert_non_null(strstr(s, "bok_jobs{state=\"SUCCEEDED\"} 2\n"));
  free(s);
  bok_metrics_remove_callback(f);
  s = render(m);
  assert_string_equal(s, "# HELP bok_jobs Jobs by state.\n# TYPE bok_jobs gauge\n");
  free(s);
  assert_int_equal(calls, 2);
  bok_metrics_destroy(m);
}

typedef struct {
  bok_metric_family_t *f;
  bok_metric_t *h;
} thr_arg_t;

static void *hammer(void *p) {
  thr_arg_t *a = p;
  const char *v[] = {"shared"};
  bok_metric_t *c = bok_metric_child(a->f, v); /* concurrent first lookups */
  for (int i = 0; i < 100000; i++) {
    bok_counter_inc(c);
    bok_histogram_observe(a->h, 0.001);
  }
  return NULL;
}

static void test_concurrent_increments_exact(void **st) {
  (void)st;
  bok_metrics_t *m = bok_metrics_new();
  const char *ln[] = {"k"};
  thr_arg_t a = {bok_metrics_family(m, BOK_METRIC_COUNTER, "bok_c_total", "C.", 1, ln, NULL, 0),
                 bok_metrics_histogram(m, "bok_h_seconds", "H.", NULL, 0)};
  pthread_t th[8];
  for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, hammer, &a);
  for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
  const char *v[] = {"shared"};
  assert_int_equal(bok_counter_value(bok_metric_child(a.f, v)), 800000);
  assert_int_equal(bok_histogram_count(a.h), 800000);
  char *s = render(m);
  assert_non_null(strstr(s, "bok_c_total{k=\"shared\"} 800000\n"));
  assert_non_null(strstr(s, "bok_h_seconds_count 800000\n"));
  free(s);
  bok_metrics_destroy(m);
}

/* ---- admin http ------------------------------------------------------------ */

static int g_ready;

static int ready_cb(void *ud, char *reason, size_t n) {
  (void)ud;
  if (!g_ready) snprintf(reason, n, "kafka \"down\"");
  if (g_ready == 2) snprintf(reason, n, "Kafka degraded: broker 3 down"); /* ready, with a note */
  return g_ready != 0;
}

/* Sends `req` to port, returns the whole response (malloc'd). */
static char *http(int port, const char *req, size_t reqlen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  size_t off = 0;
  while (off < reqlen) {
    ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
    if (w <= 0) break; /* the server may close early on an oversized request */
    off += (size_t)w;
  }
  bok_buf_t b = BOK_BUF_INIT(0);
  char tmp[4096];
  ssize_t r;
  while ((r = recv(fd, tmp, sizeof tmp, 0)) > 0) bok_buf_append(&b, tmp, (size_t)r);
  close(fd);
  char *s = strdup(b.data ? b.data : "");
  bok_buf_free(&b);
  return s;
}

static char *get(int port, const char *path) {
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  return http(port, req, (size_t)n);
}

static void test_admin_http(void **st) {
  (void)st;
  bok_metrics_t *m = bok_metrics_new();
  bok_counter_add(bok_metrics_counter(m, "bok_x_total", "X."), 7);
  char err[256];
  bok_admin_http_opts_t o = {.addr = "127.0.0.1:0", .metrics = m, .ready = ready_cb};
  bok_admin_http_t *a = bok_admin_http_start(&o, err, sizeof err);
  assert_non_null(a);
  int port = bok_admin_http_port(a);
  assert_true(port > 0);

  char *r = get(port, "/metrics");
  assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(r, "\r\n\r\n# HELP bok_x_total X.\n# TYPE bok_x_total counter\nbok_x_total 7\n"));
  free(r);

  r = get(port, "/healthz");
  assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(r, "\r\n\r\n{\"status\":\"ok\"}"));
  free(r);

  g_ready = 0;
  r = get(port, "/readyz");
  assert_true(strncmp(r, "HTTP/1.1 503 ", 13) == 0);
  assert_non_null(strstr(r, "{\"status\":\"not ready\",\"reason\":\"kafka \\\"down\\\"\"}"));
  free(r);
  g_ready = 1;
  r = get(port, "/readyz?verbose=1");
  assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(r, "{\"status\":\"ready\"}"));
  free(r);
  g_ready = 2; /* ready, but a dependency is degraded: 200 naming it */
  r = get(port, "/readyz");
  assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(r, "{\"status\":\"ready\",\"degraded\":\"Kafka degraded: broker 3 down\"}"));
  free(r);
  g_ready = 1;

  r = get(port, "/nope");
  assert_true(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
  free(r);
  r = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 45);
  assert_true(strncmp(r, "HTTP/1.1 405 ", 13) == 0);
  free(r);

  size_t big = 20000;
  char *req = malloc(big);
  memset(req, 'a', big);
  memcpy(req, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
  r = http(port, req, big);
  assert_true(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
  free(r);
  free(req);

  /* still serving after all that */
  r = get(port, "/healthz");
  assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  free(r);
  bok_admin_http_stop(a);
  bok_metrics_destroy(m);
}

static void test_admin_http_bad_addr(void **st) {
  (void)st;
  char err[256];
  bok_admin_http_opts_t o = {.addr = "nonsense"};
  assert_null(bok_admin_http_start(&o, err, sizeof err));
  assert_non_null(strstr(err, "bad address"));
  o.addr = "";
  assert_null(bok_admin_http_start(&o, err, sizeof err));
  assert_string_equal(err, "");
}

static volatile int g_probe_ok;
static int probe(void *ud, char *reason, size_t n) {
  (*(volatile int *)ud)++;
  if (!g_probe_ok) snprintf(reason, n, "broker down");
  if (g_probe_ok == 2) snprintf(reason, n, "degraded");
  return g_probe_ok != 0;
}

/* Waits up to 3 s for the cache to say `want`. */
static int wait_state(bok_ready_cache_t *c, int want, char *why, size_t n) {
  for (int i = 0; i < 300; i++) {
    if (bok_ready_cache_get(c, why, n) == want) return 1;
    usleep(10000);
  }
  return 0;
}

static void test_ready_cache(void **st) {
  (void)st;
  volatile int probes = 0;
  g_probe_ok = 0;
  bok_ready_cache_t *c = bok_ready_cache_start(probe, (void *)&probes, 20);
  assert_non_null(c);
  char why[100];
  assert_true(wait_state(c, 0, why, sizeof why));
  while (probes == 0) usleep(1000);
  assert_true(wait_state(c, 0, why, sizeof why));
  g_probe_ok = 1;
  assert_true(wait_state(c, 1, why, sizeof why));
  assert_string_equal(why, ""); /* ready without a note */
  g_probe_ok = 0;
  assert_true(wait_state(c, 0, why, sizeof why));
  assert_string_equal(why, "broker down");
  g_probe_ok = 2; /* ready with a note: the cache keeps it */
  assert_true(wait_state(c, 1, why, sizeof why));
  assert_string_equal(why, "degraded");
  bok_ready_cache_stop(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_gauge_text),  cmocka_unit_test(test_labels_and_escaping),
      cmocka_unit_test(test_histogram_text),      cmocka_unit_test(test_callback_family),
      cmocka_unit_test(test_concurrent_increments_exact), cmocka_unit_test(test_admin_http),
      cmocka_unit_test(test_admin_http_bad_addr), cmocka_unit_test(test_ready_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
