/* bok/metrics.h -- a small thread-safe Prometheus metrics registry.
 *
 * A registry holds metric families (counter, gauge, histogram), each with a
 * fixed list of label names, and renders them in the Prometheus text format
 * 0.0.4. A family's children (one per label-value tuple) are created on first
 * lookup and live until the registry is destroyed, so a caller resolves a
 * child ONCE (lock + lookup) and keeps the pointer: updating a child is then
 * a single atomic operation, cheap enough for per-row and per-request paths.
 *
 * Callback families are evaluated at scrape time (jobs by state from SQLite,
 * consumer lag): the callback emits samples through a sink.
 *
 * Ownership: the registry owns every family and child; pointers stay valid
 * until bok_metrics_destroy(). Names, help and label names are copied.
 * Threads: every function may be called from any thread. A callback runs on
 * the scraping thread while the registry lock is held: it must not register
 * metrics.
 *
 * bok_metrics_default() is the process-wide registry the services and the
 * gRPC glue register into (like the default registry of Prometheus client
 * libraries), so code deep in a service needs no plumbing to count things.
 */
#ifndef BOK_METRICS_H
#define BOK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bok/buf.h"

typedef struct bok_metrics bok_metrics_t;
typedef struct bok_metric_family bok_metric_family_t;
typedef struct bok_metric bok_metric_t; /* one child: a label-value tuple */
typedef struct bok_metrics_sink bok_metrics_sink_t;

typedef enum { BOK_METRIC_COUNTER = 0, BOK_METRIC_GAUGE = 1, BOK_METRIC_HISTOGRAM = 2 } bok_metric_type_t;

#define BOK_METRICS_MAX_LABELS 4
#define BOK_METRICS_MAX_BUCKETS 32

/* 0.5 ms .. 10 s, for request and call latencies (seconds). */
extern const double bok_metrics_latency_buckets[];
extern const int bok_metrics_latency_nbuckets;

bok_metrics_t *bok_metrics_new(void);
void bok_metrics_destroy(bok_metrics_t *m);

/* The process-wide registry (created on first use, never NULL). */
bok_metrics_t *bok_metrics_default(void);
/* Frees the default registry (end of main, so leak checkers stay quiet);
 * no metric of it may be used afterwards. */
void bok_metrics_default_free(void);

/* Registers a family. `labels` has `nlabels` (0..BOK_METRICS_MAX_LABELS)
 * names; `buckets` (histograms only; NULL = latency buckets) are ascending
 * upper bounds without +Inf. Registering an existing name with the same type
 * returns the existing family (so two lanes or servers in one process share
 * it). NULL on a bad name, type clash or out of memory. */
bok_metric_family_t *bok_metrics_family(bok_metrics_t *m, bok_metric_type_t type, const char *name,
                                        const char *help, int nlabels, const char *const *labels,
                                        const double *buckets, int nbuckets);

/* The child for `values` (nlabels strings; NULL when nlabels is 0), created
 * on first use. Takes a lock: call once, keep the pointer. NULL only out of
 * memory or when f is NULL. */
bok_metric_t *bok_metric_child(bok_metric_family_t *f, const char *const *values);

/* Shorthands: a family without labels and its only child. */
bok_metric_t *bok_metrics_counter(bok_metrics_t *m, const char *name, const char *help);
bok_metric_t *bok_metrics_gauge(bok_metrics_t *m, const char *name, const char *help);
bok_metric_t *bok_metrics_histogram(bok_metrics_t *m, const char *name, const char *help,
                                    const double *buckets, int nbuckets);

/* Updates: lock-free, any thread; all are no-ops on NULL. */
void bok_counter_add(bok_metric_t *c, uint64_t n);
static inline void bok_counter_inc(bok_metric_t *c) { bok_counter_add(c, 1); }
void bok_gauge_set(bok_metric_t *g, double v);
void bok_gauge_add(bok_metric_t *g, double v);
void bok_histogram_observe(bok_metric_t *h, double v);

/* Reads (tests, readiness decisions). */
uint64_t bok_counter_value(const bok_metric_t *c);
double bok_gauge_value(const bok_metric_t *g);
uint64_t bok_histogram_count(const bok_metric_t *h);

/* A family whose samples are produced at scrape time by `fn`, which calls
 * bok_metrics_sink_emit() once per sample (label values in the family's
 * label order). COUNTER or GAUGE only. `ud` must outlive the registry or
 * the callback must be removed first with bok_metrics_remove_callback(). */
typedef void (*bok_metrics_callback_fn)(void *ud, bok_metrics_sink_t *sink);
bok_metric_family_t *bok_metrics_callback(bok_metrics_t *m, bok_metric_type_t type, const char *name,
                                          const char *help, int nlabels, const char *const *labels,
                                          bok_metrics_callback_fn fn, void *ud);
/* Detaches the callback (the family then renders no samples). After it
 * returns, fn is not running and will not run again. */
void bok_metrics_remove_callback(bok_metric_family_t *f);
void bok_metrics_sink_emit(bok_metrics_sink_t *sink, const char *const *values, double v);

/* Appends the text exposition (format 0.0.4) of every family, in
 * registration order, children in creation order. 0 ok, -1 if out's cap
 * was reached (out then holds a truncated rendering). */
int bok_metrics_render(bok_metrics_t *m, bok_buf_t *out);

#endif
