/*
 * A registry of counters, gauges and histograms and its text in the
 * Prometheus exposition format, version 0.0.4 (HELP and TYPE lines,
 * `_total` counters, histograms as cumulative `_bucket{le}` with `+Inf`,
 * `_sum` and `_count`). Used by every server (tether-fleetd, its HTTP
 * layer, tether-gate).
 *
 * Cheap on hot paths: a series (one label set of a metric) is found by a
 * lock-free scan of the label sets seen so far, and updated with relaxed
 * atomics; only a label set seen for the first time takes the registry's
 * lock. Label sets are bounded per metric (max_series): past the bound,
 * updates land in one series whose label values are all "other", so a
 * label fed from outside cannot grow memory. Nothing here parses
 * untrusted input: names are the program's own, checked at registration.
 */
#ifndef TETHER_METRICS_H
#define TETHER_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_METRICS_MAX_LABELS 2       /* label names per metric */
#define TETHER_METRICS_MAX_BUCKETS 16     /* histogram upper bounds, +Inf excluded */
#define TETHER_METRICS_VALUE_SIZE 64      /* a label value and its NUL */
#define TETHER_METRICS_MAX_SERIES 512     /* the largest max_series a metric may ask */
#define TETHER_METRICS_OVERFLOW "other"   /* label values of the overflow series */

typedef enum tether_metric_type {
    TETHER_METRIC_COUNTER,   /* goes up only; its name ends in _total */
    TETHER_METRIC_GAUGE,     /* goes up and down */
    TETHER_METRIC_HISTOGRAM, /* observations counted in buckets, with their sum */
} tether_metric_type_t;

typedef struct tether_metric tether_metric_t;

/* One label set of a metric, and its value. Lives as long as its registry. */
typedef struct tether_metric_series {
    const tether_metric_t *metric;
    char values[TETHER_METRICS_MAX_LABELS][TETHER_METRICS_VALUE_SIZE];
    atomic_uint_least64_t count;  /* counter value */
    atomic_int_least64_t gauge;   /* gauge value */
    /* Histogram: observations per bucket (not cumulative; the last one is
     * +Inf) and their sum, a double's bits. */
    atomic_uint_least64_t buckets[TETHER_METRICS_MAX_BUCKETS + 1];
    atomic_uint_least64_t sum_bits;
} tether_metric_series_t;

/* What a metric is; every pointer is copied or must be a static string. */
typedef struct tether_metric_def {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total */
    const char *help; /* one line for people; \ and newlines are escaped */
    tether_metric_type_t type;
    const char *labels[TETHER_METRICS_MAX_LABELS]; /* names, NULL-terminated; none reserved (le) */
    const double *buckets; /* histograms: strictly increasing finite upper bounds */
    size_t bucket_count;   /* 1..TETHER_METRICS_MAX_BUCKETS */
    size_t max_series;     /* label sets kept, the overflow series included; 1 without labels */
} tether_metric_def_t;

/* A registry: init / (add ...) / write / free. Adding takes a lock; every
 * other call may come from any thread at any time. */
typedef struct tether_metrics {
    pthread_mutex_t lock; /* guards the list and the creation of series */
    tether_metric_t *first;
    tether_metric_t *last;
} tether_metrics_t;

/* Seconds, for durations of requests and transactions (1 ms to 10 s). */
extern const double tether_metrics_duration_buckets[];
extern const size_t tether_metrics_duration_bucket_count;

/* Cannot fail. */
void tether_metrics_init(tether_metrics_t *metrics);

/* Registers a metric. *metric (set to NULL on entry) belongs to the
 * registry and lives until tether_metrics_free. TETHER_ERR_INVALID_ARGUMENT
 * for a bad name, label or bucket list, TETHER_ERR_CONFLICT for a name
 * registered already. */
TETHER_MUST_CHECK tether_status_t tether_metrics_add(tether_metrics_t *metrics,
                                                     const tether_metric_def_t *def,
                                                     tether_metric_t **metric);

/* The series of metric for these label values (as many as the metric has
 * labels; NULL for none), made at the first use. Values longer than
 * TETHER_METRICS_VALUE_SIZE - 1 bytes, and label sets past max_series, give
 * the overflow series. Every series is allocated with its metric, so this
 * never fails: NULL only when metric is NULL (an unregistered metric
 * counts nothing). */
tether_metric_series_t *tether_metric_series(tether_metric_t *metric, const char *value0,
                                             const char *value1);

/* Updates; each accepts a NULL series and then does nothing. */
void tether_metric_add(tether_metric_series_t *series, uint64_t n);       /* counter */
void tether_metric_gauge_add(tether_metric_series_t *series, int64_t n);  /* gauge */
void tether_metric_gauge_set(tether_metric_series_t *series, int64_t value);
void tether_metric_observe(tether_metric_series_t *series, double value); /* histogram */

/* The exposition text of every metric, in registration order, series in
 * first-use order: *text (set to NULL on entry) is malloc'd and
 * NUL-terminated, *len its length; the caller frees it. */
TETHER_MUST_CHECK tether_status_t tether_metrics_write(tether_metrics_t *metrics, char **text,
                                                       size_t *len);

/* Frees every metric; accepts NULL. */
void tether_metrics_free(tether_metrics_t *metrics);

#endif
