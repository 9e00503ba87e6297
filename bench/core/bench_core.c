/* bench_core: the data core on one thread -- split + validate + encode a
 * generated CSV (10 columns of every type, ~5% invalid cells) -- against a
 * baseline measured in the same run: reading the same bytes and counting
 * newlines. Prints one line per figure and, with --json, a JSON object.
 *
 *   bench_core [--rows N] [--no-baseline] [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "bok/rows.h"

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{"
    "\"event_id\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"integer\",\"format\":\"unix-time\"},"
    "\"amount\":{\"type\":\"number\",\"minimum\":0},"
    "\"qty\":{\"type\":\"integer\"},"
    "\"ok\":{\"type\":\"boolean\"},"
    "\"country\":{\"type\":\"string\",\"enum\":[\"US\",\"FR\",\"DE\",\"JP\"]},"
    "\"seen\":{\"type\":\"integer\",\"format\":\"unix-time\"},"
    "\"vec\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}},"
    "\"note\":{\"type\":\"string\",\"maxLength\":64},"
    "\"score\":{\"type\":\"number\"}},"
    "\"required\":[\"event_id\",\"timestamp\",\"amount\"]}";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic generator; every 20th cell-slot is made invalid (~5%). */
static char *generate(long rows, size_t *len) {
  bok_buf_t b = BOK_BUF_INIT(0);
  bok_buf_appends(&b, "event_id,timestamp,amount,qty,ok,country,seen,vec,note,score\n");
  static const char *countries[] = {"US", "FR", "DE", "JP"};
  unsigned x = 12345;
  for (long i = 1; i <= rows; i++) {
    x = x * 1103515245u + 12345u;
    int bad = (int)(x >> 16) % 20 == 0 ? (int)((x >> 8) % 10) : -1; /* which column is invalid */
    bok_buf_printf(&b, "ev%ld,%s,%s,%s,%s,%s,%ld,%s,%s,%s\n", i, bad == 1 ? "yesterday" : "1700000000",
                   bad == 2 ? "abc" : "12.5", bad == 3 ? "3.5" : "42", bad == 4 ? "maybe" : (i & 1) ? "true" : "0",
                   bad == 5 ? "CA" : countries[i & 3], 1600000000L + (i % 1000), bad == 7 ? "\"[1,x]\"" : "\"[1.5,2,3]\"",
                   bad == 8 ? "\"this note is far too long for the schema limit of sixty-four characters ok\""
                            : "\"hello, world\"",
                   bad == 9 ? "NaN" : "0.25");
  }
  return bok_buf_steal(&b, len);
}

typedef struct {
  bok_validator_t *v;
  bok_row_result_t r;
  long valid, rejected;
  size_t event_bytes;
  const bok_schema_t *s;
} run_t;

static int on_record(void *ud, int64_t row, const char *raw, size_t len, bok_csv_status_t st) {
  run_t *r = ud;
  if (row == 0) {
    char err[100];
    r->v = bok_validator_new(r->s, BOK_FMT_CSV, raw, len, ',', err, sizeof err);
    return r->v == NULL;
  }
  if (bok_validator_row(r->v, row, raw, len, st == BOK_CSV_OK ? NULL : bok_csv_status_text(st), &r->r)) {
    r->valid++;
    r->event_bytes += r->r.event.len;
  } else {
    r->rejected++;
  }
  return 0;
}

/* The baseline: reads the file at path in chunks and counts newlines;
 * its time in *secs. */
static long count_lines(const char *path, char *chunk, size_t cap, double *secs) {
  long nl = 0;
  double t0 = now_s();
  int fd = open(path, O_RDONLY);
  ssize_t n;
  while (fd >= 0 && (n = read(fd, chunk, cap)) > 0) {
    const char *p = chunk, *e = chunk + n;
    while ((p = memchr(p, '\n', (size_t)(e - p)))) {
      nl++;
      p++;
    }
  }
  if (fd >= 0) close(fd);
  *secs = now_s() - t0;
  return nl;
}

int main(int argc, char **argv) {
  long rows = 1000000;
  int baseline = 1, json = 0, gen_only = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rows") && i + 1 < argc)
      rows = atol(argv[++i]);
    else if (!strcmp(argv[i], "--no-baseline"))
      baseline = 0;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--gen-only"))
      gen_only = 1; /* for callgrind.sh: the cost of making the sample */
  }
  size_t len;
  char *data = generate(rows, &len);
  double mb = (double)len / 1e6;
  /* Both sides read the same file (from the page cache) in 1 MiB chunks. */
  char path[] = "/tmp/bench_core_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
    perror("temp file");
    return 1;
  }
  close(fd);
  free(data);
  if (gen_only) {
    unlink(path);
    return 0;
  }
  static char chunk[1 << 20];

  double base_s = 0;
  long nl = baseline ? count_lines(path, chunk, sizeof chunk, &base_s) : 0;

  bok_schema_t *s;
  char err[200];
  if (bok_schema_compile(SCHEMA, strlen(SCHEMA), &s, err, sizeof err)) {
    fprintf(stderr, "schema: %s\n", err);
    return 1;
  }
  run_t r;
  memset(&r, 0, sizeof r);
  r.s = s;
  bok_row_result_init(&r.r);
  double t0 = now_s();
  bok_csv_t *rd = bok_csv_new(',', 0, on_record, &r);
  fd = open(path, O_RDONLY);
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) bok_csv_feed(rd, chunk, (size_t)n);
  close(fd);
  bok_csv_finish(rd);
  double core_s = now_s() - t0;

  double rps = (double)rows / core_s;
  if (json) {
    printf("{\"rows\":%ld,\"mb\":%.2f,\"valid\":%ld,\"rejected\":%ld,\"core_s\":%.4f,\"core_rows_per_s\":%.0f,"
           "\"core_mb_per_s\":%.1f,\"baseline_mb_per_s\":%.1f,\"ratio_to_baseline\":%.4f}\n",
           rows, mb, r.valid, r.rejected, core_s, rps, mb / core_s, baseline ? mb / base_s : 0,
           baseline ? base_s / core_s : 0);
  } else {
    printf("core: %ld rows (%.1f MB), %ld valid, %ld rejected (%.1f%% rows)\n", rows, mb, r.valid, r.rejected,
           100.0 * (double)r.rejected / (double)rows);
    printf("core: parse+validate+encode %.3f s = %.0f rows/s, %.1f MB/s\n", core_s, rps, mb / core_s);
    if (baseline)
      printf("baseline: newline count %.3f s = %.1f MB/s (%ld lines); core/baseline speed = %.3f (core is %.1fx slower)\n",
             base_s, mb / base_s, nl, base_s / core_s, core_s / base_s);
  }
  bok_csv_destroy(rd);
  bok_validator_destroy(r.v);
  bok_row_result_free(&r.r);
  bok_schema_destroy(s);
  unlink(path);
  return 0;
}
