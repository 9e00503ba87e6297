/* Prometheus metrics registry (bok/metrics.h).
 *
 * One mutex guards the structure (family list, children lists, callbacks);
 * values are C11 atomics, so updates never take it. Gauges and histogram
 * sums are doubles stored as their bit patterns (CAS loop to add). */
#include "bok/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double bok_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const int bok_metrics_latency_nbuckets = (int)(sizeof bok_metrics_latency_buckets / sizeof(double));

struct bok_metric {
  struct bok_metric *next;
  bok_metric_family_t *f;
  char *values[BOK_METRICS_MAX_LABELS];
  _Atomic uint64_t u;       /* counter value, or gauge bits */
  _Atomic uint64_t sum;     /* histogram: bits of the sum */
  _Atomic uint64_t *counts; /* histogram: nbuckets + 1 (last = +Inf), not cumulative */
};

struct bok_metric_family {
  struct bok_metric_family *next;
  bok_metrics_t *m;
  bok_metric_type_t type;
  char *name;
  char *help;
  int nlabels;
  char *labels[BOK_METRICS_MAX_LABELS];
  double buckets[BOK_METRICS_MAX_BUCKETS];
  int nbuckets;
  bok_metric_t *children, **tail;
  bok_metrics_callback_fn cb; /* callback family when set (or after removal: is_cb) */
  void *cb_ud;
  int is_cb;
};

struct bok_metrics {
  pthread_mutex_t mu;
  bok_metric_family_t *families, **tail;
};

struct bok_metrics_sink {
  bok_metric_family_t *f;
  bok_buf_t *out;
  int rc;
};

static uint64_t dbits(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}
static double bitsd(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

bok_metrics_t *bok_metrics_new(void) {
  bok_metrics_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  pthread_mutex_init(&m->mu, NULL);
  m->tail = &m->families;
  return m;
}

static void child_free(bok_metric_t *c) {
  for (int i = 0; i < BOK_METRICS_MAX_LABELS; i++) free(c->values[i]);
  free((void *)c->counts);
  free(c);
}

void bok_metrics_destroy(bok_metrics_t *m) {
  if (!m) return;
  for (bok_metric_family_t *f = m->families, *fn; f; f = fn) {
    fn = f->next;
    for (bok_metric_t *c = f->children, *cn; c; c = cn) {
      cn = c->next;
      child_free(c);
    }
    for (int i = 0; i < f->nlabels; i++) free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
  }
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static pthread_mutex_t g_default_mu = PTHREAD_MUTEX_INITIALIZER;
static bok_metrics_t *g_default;

bok_metrics_t *bok_metrics_default(void) {
  pthread_mutex_lock(&g_default_mu);
  if (!g_default) g_default = bok_metrics_new();
  bok_metrics_t *m = g_default;
  pthread_mutex_unlock(&g_default_mu);
  if (!m) abort(); /* out of memory at start-up */
  return m;
}

void bok_metrics_default_free(void) {
  pthread_mutex_lock(&g_default_mu);
  bok_metrics_destroy(g_default);
  g_default = NULL;
  pthread_mutex_unlock(&g_default_mu);
}

static int valid_name(const char *s, int allow_colon) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':') ||
             (p != s && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

static bok_metric_family_t *family_locked(bok_metrics_t *m, bok_metric_type_t type, const char *name,
                                          const char *help, int nlabels, const char *const *labels,
                                          const double *buckets, int nbuckets, int is_cb) {
  if (!valid_name(name, 1) || nlabels < 0 || nlabels > BOK_METRICS_MAX_LABELS) return NULL;
  for (int i = 0; i < nlabels; i++)
    if (!valid_name(labels[i], 0) || strcmp(labels[i], "le") == 0) return NULL;
  for (bok_metric_family_t *f = m->families; f; f = f->next)
    if (strcmp(f->name, name) == 0) return f->type == type && f->nlabels == nlabels && f->is_cb == is_cb ? f : NULL;
  if (type == BOK_METRIC_HISTOGRAM && !buckets) {
    buckets = bok_metrics_latency_buckets;
    nbuckets = bok_metrics_latency_nbuckets;
  }
  if (nbuckets < 0 || nbuckets > BOK_METRICS_MAX_BUCKETS) return NULL;
  for (int i = 1; i < nbuckets; i++)
    if (!(buckets[i] > buckets[i - 1])) return NULL;
  bok_metric_family_t *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->m = m;
  f->type = type;
  f->name = strdup(name);
  f->help = strdup(help ? help : "");
  f->nlabels = nlabels;
  int bad = !f->name || !f->help;
  for (int i = 0; i < nlabels; i++) bad |= !(f->labels[i] = strdup(labels[i]));
  if (type == BOK_METRIC_HISTOGRAM) {
    memcpy(f->buckets, buckets, (size_t)nbuckets * sizeof(double));
    f->nbuckets = nbuckets;
  }
  f->tail = &f->children;
  f->is_cb = is_cb;
  if (bad) {
    for (int i = 0; i < nlabels; i++) free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
    return NULL;
  }
  *m->tail = f;
  m->tail = &f->next;
  return f;
}

bok_metric_family_t *bok_metrics_family(bok_metrics_t *m, bok_metric_type_t type, const char *name,
                                        const char *help, int nlabels, const char *const *labels,
                                        const double *buckets, int nbuckets) {
  if (!m) return NULL;
  pthread_mutex_lock(&m->mu);
  bok_metric_family_t *f = family_locked(m, type, name, help, nlabels, labels, buckets, nbuckets, 0);
  pthread_mutex_unlock(&m->mu);
  return f;
}

bok_metric_t *bok_metric_child(bok_metric_family_t *f, const char *const *values) {
  if (!f || f->is_cb) return NULL;
  pthread_mutex_lock(&f->m->mu);
  bok_metric_t *c;
  for (c = f->children; c; c = c->next) {
    int same = 1;
    for (int i = 0; i < f->nlabels && same; i++) same = strcmp(c->values[i], values[i] ? values[i] : "") == 0;
    if (same) goto out;
  }
  c = calloc(1, sizeof *c);
  if (!c) goto out;
  c->f = f;
  int bad = 0;
  for (int i = 0; i < f->nlabels; i++) bad |= !(c->values[i] = strdup(values[i] ? values[i] : ""));
  if (f->type == BOK_METRIC_HISTOGRAM) {
    c->counts = calloc((size_t)f->nbuckets + 1, sizeof *c->counts);
    bad |= !c->counts;
  }
  if (bad) {
    child_free(c);
    c = NULL;
    goto out;
  }
  *f->tail = c;
  f->tail = &c->next;
out:
  pthread_mutex_unlock(&f->m->mu);
  return c;
}

bok_metric_t *bok_metrics_counter(bok_metrics_t *m, const char *name, const char *help) {
  return bok_metric_child(bok_metrics_family(m, BOK_METRIC_COUNTER, name, help, 0, NULL, NULL, 0), NULL);
}
bok_metric_t *bok_metrics_gauge(bok_metrics_t *m, const char *name, const char *help) {
  return bok_metric_child(bok_metrics_family(m, BOK_METRIC_GAUGE, name, help, 0, NULL, NULL, 0), NULL);
}
bok_metric_t *bok_metrics_histogram(bok_metrics_t *m, const char *name, const char *help,
                                    const double *buckets, int nbuckets) {
  return bok_metric_child(bok_metrics_family(m, BOK_METRIC_HISTOGRAM, name, help, 0, NULL, buckets, nbuckets),
                          NULL);
}

void bok_counter_add(bok_metric_t *c, uint64_t n) {
  if (c) atomic_fetch_add_explicit(&c->u, n, memory_order_relaxed);
}

void bok_gauge_set(bok_metric_t *g, double v) {
  if (g) atomic_store_explicit(&g->u, dbits(v), memory_order_relaxed);
}

static void add_double(_Atomic uint64_t *a, double v) {
  uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v), memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

void bok_gauge_add(bok_metric_t *g, double v) {
  if (g) add_double(&g->u, v);
}

void bok_histogram_observe(bok_metric_t *h, double v) {
  if (!h || !h->counts) return;
  const bok_metric_family_t *f = h->f;
  int i = 0;
  while (i < f->nbuckets && v > f->buckets[i]) i++; /* le: v <= bound */
  atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
  add_double(&h->sum, v);
}

uint64_t bok_counter_value(const bok_metric_t *c) {
  return c ? atomic_load_explicit(&((bok_metric_t *)c)->u, memory_order_relaxed) : 0;
}
double bok_gauge_value(const bok_metric_t *g) {
  return g ? bitsd(atomic_load_explicit(&((bok_metric_t *)g)->u, memory_order_relaxed)) : 0;
}
uint64_t bok_histogram_count(const bok_metric_t *h) {
  if (!h || !h->counts) return 0;
  uint64_t n = 0;
  for (int i = 0; i <= h->f->nbuckets; i++) n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
  return n;
}

bok_metric_family_t *bok_metrics_callback(bok_metrics_t *m, bok_metric_type_t type, const char *name,
                                          const char *help, int nlabels, const char *const *labels,
                                          bok_metrics_callback_fn fn, void *ud) {
  if (!m || !fn || type == BOK_METRIC_HISTOGRAM) return NULL;
  pthread_mutex_lock(&m->mu);
  bok_metric_family_t *f = family_locked(m, type, name, help, nlabels, labels, NULL, 0, 1);
  if (f) {
    f->cb = fn;
    f->cb_ud = ud;
  }
  pthread_mutex_unlock(&m->mu);
  return f;
}

void bok_metrics_remove_callback(bok_metric_family_t *f) {
  if (!f) return;
  pthread_mutex_lock(&f->m->mu);
  f->cb = NULL;
  f->cb_ud = NULL;
  pthread_mutex_unlock(&f->m->mu);
}

/* ---- rendering ------------------------------------------------------------ */

/* Shortest text that reads back as the same double. */
static int put_double(bok_buf_t *o, double v) {
  if (isnan(v)) return bok_buf_appends(o, "NaN");
  if (isinf(v)) return bok_buf_appends(o, v > 0 ? "+Inf" : "-Inf");
  if (v == floor(v) && fabs(v) < 1e15) return bok_buf_append_i64(o, (int64_t)v);
  char s[40];
  snprintf(s, sizeof s, "%.15g", v);
  if (strtod(s, NULL) != v) snprintf(s, sizeof s, "%.17g", v);
  return bok_buf_appends(o, s);
}

/* HELP escapes \ and newline; label values also escape ". */
static int put_escaped(bok_buf_t *o, const char *s, int quote) {
  int rc = 0;
  for (; *s; s++) {
    if (*s == '\\') rc |= bok_buf_appends(o, "\\\\");
    else if (*s == '\n') rc |= bok_buf_appends(o, "\\n");
    else if (*s == '"' && quote) rc |= bok_buf_appends(o, "\\\"");
    else rc |= bok_buf_appendc(o, *s);
  }
  return rc;
}

/* name{a="x",b="y",le="0.5"} -- `le` NULL for no extra label. */
static int put_series(bok_buf_t *o, const bok_metric_family_t *f, const char *suffix, const char *const *values,
                      const char *le) {
  int rc = bok_buf_appends(o, f->name);
  if (suffix) rc |= bok_buf_appends(o, suffix);
  if (f->nlabels || le) {
    rc |= bok_buf_appendc(o, '{');
    for (int i = 0; i < f->nlabels; i++) {
      if (i) rc |= bok_buf_appendc(o, ',');
      rc |= bok_buf_appends(o, f->labels[i]);
      rc |= bok_buf_appends(o, "=\"");
      rc |= put_escaped(o, values[i] ? values[i] : "", 1);
      rc |= bok_buf_appendc(o, '"');
    }
    if (le) {
      if (f->nlabels) rc |= bok_buf_appendc(o, ',');
      rc |= bok_buf_appends(o, "le=\"");
      rc |= bok_buf_appends(o, le);
      rc |= bok_buf_appendc(o, '"');
    }
    rc |= bok_buf_appendc(o, '}');
  }
  return rc | bok_buf_appendc(o, ' ');
}

void bok_metrics_sink_emit(bok_metrics_sink_t *sink, const char *const *values, double v) {
  if (!sink) return;
  sink->rc |= put_series(sink->out, sink->f, NULL, values, NULL);
  sink->rc |= put_double(sink->out, v);
  sink->rc |= bok_buf_appendc(sink->out, '\n');
}

static int render_child(bok_buf_t *o, const bok_metric_family_t *f, bok_metric_t *c) {
  const char *const *vals = (const char *const *)c->values;
  int rc = 0;
  if (f->type == BOK_METRIC_COUNTER) {
    rc |= put_series(o, f, NULL, vals, NULL);
    rc |= bok_buf_printf(o, "%llu\n", (unsigned long long)atomic_load(&c->u));
  } else if (f->type == BOK_METRIC_GAUGE) {
    rc |= put_series(o, f, NULL, vals, NULL);
    rc |= put_double(o, bitsd(atomic_load(&c->u)));
    rc |= bok_buf_appendc(o, '\n');
  } else {
    uint64_t cum = 0;
    char le[40];
    for (int i = 0; i <= f->nbuckets; i++) {
      cum += atomic_load(&c->counts[i]);
      if (i < f->nbuckets) {
        bok_buf_t t = BOK_BUF_INIT(0);
        put_double(&t, f->buckets[i]);
        snprintf(le, sizeof le, "%s", t.data ? t.data : "0");
        bok_buf_free(&t);
      } else {
        snprintf(le, sizeof le, "+Inf");
      }
      rc |= put_series(o, f, "_bucket", vals, le);
      rc |= bok_buf_printf(o, "%llu\n", (unsigned long long)cum);
    }
    rc |= put_series(o, f, "_sum", vals, NULL);
    rc |= put_double(o, bitsd(atomic_load(&c->sum)));
    rc |= bok_buf_appendc(o, '\n');
    rc |= put_series(o, f, "_count", vals, NULL);
    rc |= bok_buf_printf(o, "%llu\n", (unsigned long long)cum); /* = +Inf bucket, consistent */
  }
  return rc;
}

int bok_metrics_render(bok_metrics_t *m, bok_buf_t *out) {
  static const char *types[] = {"counter", "gauge", "histogram"};
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  for (bok_metric_family_t *f = m->families; f && rc == 0; f = f->next) {
    rc |= bok_buf_printf(out, "# HELP %s ", f->name);
    rc |= put_escaped(out, f->help, 0);
    rc |= bok_buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
    if (f->is_cb) {
      if (f->cb) {
        bok_metrics_sink_t sink = {f, out, 0};
        f->cb(f->cb_ud, &sink);
        rc |= sink.rc;
      }
      continue;
    }
    for (bok_metric_t *c = f->children; c && rc == 0; c = c->next) rc |= render_child(out, f, c);
  }
  pthread_mutex_unlock(&m->mu);
  return rc ? -1 : 0;
}
