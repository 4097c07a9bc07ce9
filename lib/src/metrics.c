/* Counters, gauges and histograms, and their Prometheus text (metrics.h). */
#include "tether/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUMBER_SIZE 32 /* "%.17g" of any double, or "+Inf" */

struct tether_metric {
    tether_metric_def_t def; /* its strings are the caller's static ones */
    size_t label_count;
    double buckets[TETHER_METRICS_MAX_BUCKETS];
    tether_metrics_t *registry;
    tether_metric_series_t *series; /* max_series slots; the last is the overflow */
    atomic_size_t used;             /* slots filled (before the overflow), published */
    atomic_bool overflow_used;
    tether_metric_t *next;
};

const double tether_metrics_duration_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   5,
                                                  10};
const size_t tether_metrics_duration_bucket_count =
    sizeof(tether_metrics_duration_buckets) / sizeof(tether_metrics_duration_buckets[0]);

void tether_metrics_init(tether_metrics_t *metrics)
{
    if (metrics == NULL)
        return;
    memset(metrics, 0, sizeof(*metrics));
    pthread_mutex_init(&metrics->lock, NULL);
}

/* The exposition format's names: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label
 * [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__" (reserved). */
static bool name_ok(const char *name, bool colon)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return false;
    }
    return colon || strncmp(name, "__", 2) != 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t len = strlen(s), suffix_len = strlen(suffix);

    return len >= suffix_len && strcmp(s + len - suffix_len, suffix) == 0;
}

static bool def_ok(const tether_metric_def_t *def, size_t *label_count)
{
    size_t n = 0;

    *label_count = 0;
    if (!name_ok(def->name, true) || def->help == NULL ||
        (def->type == TETHER_METRIC_COUNTER) != ends_with(def->name, "_total"))
        return false;
    while (n < TETHER_METRICS_MAX_LABELS && def->labels[n] != NULL) {
        if (!name_ok(def->labels[n], false) ||
            (def->type == TETHER_METRIC_HISTOGRAM && strcmp(def->labels[n], "le") == 0) ||
            (n == 1 && strcmp(def->labels[0], def->labels[1]) == 0))
            return false;
        n++;
    }
    /* Without labels there is one series; with them, room for the overflow. */
    if ((n == 0 && def->max_series != 1) || (n > 0 && def->max_series < 2) ||
        def->max_series > TETHER_METRICS_MAX_SERIES)
        return false;
    if (def->type == TETHER_METRIC_HISTOGRAM) {
        if (def->buckets == NULL || def->bucket_count == 0 ||
            def->bucket_count > TETHER_METRICS_MAX_BUCKETS)
            return false;
        for (size_t i = 0; i < def->bucket_count; i++)
            if (!isfinite(def->buckets[i]) || (i > 0 && def->buckets[i] <= def->buckets[i - 1]))
                return false;
    } else if (def->buckets != NULL || def->bucket_count != 0) {
        return false;
    }
    *label_count = n;
    return true;
}

tether_status_t tether_metrics_add(tether_metrics_t *metrics, const tether_metric_def_t *def,
                                   tether_metric_t **metric)
{
    tether_metric_t *m = NULL;
    size_t label_count;
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (metric != NULL)
        *metric = NULL;
    if (metrics == NULL || def == NULL || metric == NULL || !def_ok(def, &label_count))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&metrics->lock);
    for (const tether_metric_t *p = metrics->first; p != NULL; p = p->next)
        if (strcmp(p->def.name, def->name) == 0) {
            rc = TETHER_ERR_CONFLICT;
            goto out;
        }
    rc = TETHER_ERR_NO_MEMORY;
    if ((m = calloc(1, sizeof(*m))) == NULL ||
        (m->series = calloc(def->max_series, sizeof(*m->series))) == NULL)
        goto out;
    m->def = *def;
    m->def.buckets = NULL; /* copied below */
    m->label_count = label_count;
    if (def->type == TETHER_METRIC_HISTOGRAM)
        memcpy(m->buckets, def->buckets, def->bucket_count * sizeof(m->buckets[0]));
    m->registry = metrics;
    for (size_t i = 0; i < def->max_series; i++)
        m->series[i].metric = m;
    for (size_t i = 0; i < label_count; i++)
        snprintf(m->series[def->max_series - 1].values[i], TETHER_METRICS_VALUE_SIZE, "%s",
                 TETHER_METRICS_OVERFLOW);
    atomic_init(&m->used, label_count == 0 ? 1u : 0u);
    atomic_init(&m->overflow_used, false);
    if (metrics->last != NULL)
        metrics->last->next = m;
    else
        metrics->first = m;
    metrics->last = m;
    *metric = m;
    m = NULL;
    rc = TETHER_OK;
out:
    pthread_mutex_unlock(&metrics->lock);
    if (m != NULL)
        free(m->series);
    free(m);
    return rc;
}

static bool series_is(const tether_metric_series_t *s, const char *const *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(s->values[i], values[i]) != 0)
            return false;
    return true;
}

static tether_metric_series_t *find(tether_metric_t *m, const char *const *values, size_t used)
{
    for (size_t i = 0; i < used; i++)
        if (series_is(&m->series[i], values, m->label_count))
            return &m->series[i];
    return NULL;
}

tether_metric_series_t *tether_metric_series(tether_metric_t *metric, const char *value0,
                                             const char *value1)
{
    const char *values[TETHER_METRICS_MAX_LABELS] = {value0 != NULL ? value0 : "",
                                                     value1 != NULL ? value1 : ""};
    tether_metric_series_t *found;
    size_t used, overflow;

    if (metric == NULL)
        return NULL;
    used = atomic_load_explicit(&metric->used, memory_order_acquire);
    if (metric->label_count == 0)
        return &metric->series[0];
    overflow = metric->def.max_series - 1;
    for (size_t i = 0; i < metric->label_count; i++)
        if (strlen(values[i]) >= TETHER_METRICS_VALUE_SIZE) {
            /* Too long to keep: never a label set of its own. */
            atomic_store_explicit(&metric->overflow_used, true, memory_order_relaxed);
            return &metric->series[overflow];
        }
    if ((found = find(metric, values, used)) != NULL)
        return found;
    pthread_mutex_lock(&metric->registry->lock);
    used = atomic_load_explicit(&metric->used, memory_order_relaxed);
    found = find(metric, values, used);
    if (found == NULL && used < overflow) {
        found = &metric->series[used];
        for (size_t i = 0; i < metric->label_count; i++)
            snprintf(found->values[i], TETHER_METRICS_VALUE_SIZE, "%s", values[i]);
        atomic_store_explicit(&metric->used, used + 1, memory_order_release);
    } else if (found == NULL) {
        atomic_store_explicit(&metric->overflow_used, true, memory_order_relaxed);
        found = &metric->series[overflow];
    }
    pthread_mutex_unlock(&metric->registry->lock);
    return found;
}

void tether_metric_add(tether_metric_series_t *series, uint64_t n)
{
    if (series != NULL)
        atomic_fetch_add_explicit(&series->count, n, memory_order_relaxed);
}

void tether_metric_gauge_add(tether_metric_series_t *series, int64_t n)
{
    if (series != NULL)
        atomic_fetch_add_explicit(&series->gauge, n, memory_order_relaxed);
}

void tether_metric_gauge_set(tether_metric_series_t *series, int64_t value)
{
    if (series != NULL)
        atomic_store_explicit(&series->gauge, value, memory_order_relaxed);
}

static uint64_t double_bits(double d)
{
    uint64_t bits;

    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

static double bits_double(uint64_t bits)
{
    double d;

    memcpy(&d, &bits, sizeof(d));
    return d;
}

void tether_metric_observe(tether_metric_series_t *series, double value)
{
    const tether_metric_t *m;
    size_t i = 0;
    uint64_t old;

    if (series == NULL || series->metric->def.type != TETHER_METRIC_HISTOGRAM || isnan(value))
        return;
    m = series->metric;
    while (i < m->def.bucket_count && value > m->buckets[i])
        i++;
    atomic_fetch_add_explicit(&series->buckets[i], 1, memory_order_relaxed);
    old = atomic_load_explicit(&series->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&series->sum_bits, &old,
                                                  double_bits(bits_double(old) + value),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- the text ---- */

typedef struct text {
    char *data;
    size_t len;
    size_t capacity;
    bool failed; /* out of memory: everything after is dropped */
} text_t;

static void put(text_t *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (n >= t->capacity - t->len) {
        size_t capacity = t->capacity * 2 > t->len + n + 1 ? t->capacity * 2 : t->len + n + 1;
        char *grown = realloc(t->data, capacity);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->data = grown;
        t->capacity = capacity;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void puts_text(text_t *t, const char *s)
{
    put(t, s, strlen(s));
}

/* HELP text escapes \ and newline; label values also ". */
static void put_escaped(text_t *t, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            puts_text(t, "\\\\");
        else if (*s == '\n')
            puts_text(t, "\\n");
        else if (quote && *s == '"')
            puts_text(t, "\\\"");
        else
            put(t, s, 1);
    }
}

/* The shortest decimal that reads back as d; +Inf, -Inf, NaN as the
 * format spells them. */
static void format_number(char out[NUMBER_SIZE], double d)
{
    if (isnan(d)) {
        snprintf(out, NUMBER_SIZE, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, NUMBER_SIZE, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15) { /* "10", not "1e+01" */
        snprintf(out, NUMBER_SIZE, "%.0f", d);
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(out, NUMBER_SIZE, "%.*g", precision, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* name{label="value",...,extra="extra_value"} */
static void put_sample_name(text_t *t, const tether_metric_t *m, const char *suffix,
                            const tether_metric_series_t *s, const char *extra,
                            const char *extra_value)
{
    bool first = true;

    puts_text(t, m->def.name);
    puts_text(t, suffix);
    if (m->label_count == 0 && extra == NULL)
        return;
    puts_text(t, "{");
    for (size_t i = 0; i < m->label_count; i++, first = false) {
        puts_text(t, first ? "" : ",");
        puts_text(t, m->def.labels[i]);
        puts_text(t, "=\"");
        put_escaped(t, s->values[i], true);
        puts_text(t, "\"");
    }
    if (extra != NULL) {
        puts_text(t, first ? "" : ",");
        puts_text(t, extra);
        puts_text(t, "=\"");
        puts_text(t, extra_value);
        puts_text(t, "\"");
    }
    puts_text(t, "}");
}

static void put_line_end(text_t *t, const char *value)
{
    puts_text(t, " ");
    puts_text(t, value);
    puts_text(t, "\n");
}

static void write_series(text_t *t, const tether_metric_t *m, const tether_metric_series_t *s)
{
    char number[NUMBER_SIZE], le[NUMBER_SIZE];
    uint64_t cumulative = 0;

    switch (m->def.type) {
    case TETHER_METRIC_COUNTER:
        snprintf(number, sizeof(number), "%llu",
                 (unsigned long long)atomic_load_explicit(&s->count, memory_order_relaxed));
        put_sample_name(t, m, "", s, NULL, NULL);
        put_line_end(t, number);
        break;
    case TETHER_METRIC_GAUGE:
        snprintf(number, sizeof(number), "%lld",
                 (long long)atomic_load_explicit(&s->gauge, memory_order_relaxed));
        put_sample_name(t, m, "", s, NULL, NULL);
        put_line_end(t, number);
        break;
    case TETHER_METRIC_HISTOGRAM:
        /* Cumulative, and _count is the +Inf bucket's value: both are
         * computed from one reading of the buckets, so they agree even
         * while observations arrive. */
        for (size_t i = 0; i <= m->def.bucket_count; i++) {
            cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            format_number(le, i < m->def.bucket_count ? m->buckets[i] : INFINITY);
            snprintf(number, sizeof(number), "%llu", (unsigned long long)cumulative);
            put_sample_name(t, m, "_bucket", s, "le", le);
            put_line_end(t, number);
        }
        format_number(number,
                      bits_double(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
        put_sample_name(t, m, "_sum", s, NULL, NULL);
        put_line_end(t, number);
        snprintf(number, sizeof(number), "%llu", (unsigned long long)cumulative);
        put_sample_name(t, m, "_count", s, NULL, NULL);
        put_line_end(t, number);
        break;
    }
}

static const char *type_name(tether_metric_type_t type)
{
    switch (type) {
    case TETHER_METRIC_COUNTER:
        return "counter";
    case TETHER_METRIC_GAUGE:
        return "gauge";
    case TETHER_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

tether_status_t tether_metrics_write(tether_metrics_t *metrics, char **text, size_t *len)
{
    text_t t = {NULL, 0, 0, false};

    if (text != NULL)
        *text = NULL;
    if (len != NULL)
        *len = 0;
    if (metrics == NULL || text == NULL || len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* Held throughout: a scrape is rare and short, and only the first use
     * of a label set waits for it. */
    pthread_mutex_lock(&metrics->lock);
    put(&t, "", 0); /* an empty registry is an empty text, not NULL */
    for (const tether_metric_t *m = metrics->first; m != NULL; m = m->next) {
        size_t used = atomic_load_explicit(&m->used, memory_order_acquire);

        puts_text(&t, "# HELP ");
        puts_text(&t, m->def.name);
        puts_text(&t, " ");
        put_escaped(&t, m->def.help, false);
        puts_text(&t, "\n# TYPE ");
        puts_text(&t, m->def.name);
        puts_text(&t, " ");
        puts_text(&t, type_name(m->def.type));
        puts_text(&t, "\n");
        for (size_t i = 0; i < used; i++)
            write_series(&t, m, &m->series[i]);
        if (atomic_load_explicit(&m->overflow_used, memory_order_relaxed))
            write_series(&t, m, &m->series[m->def.max_series - 1]);
    }
    pthread_mutex_unlock(&metrics->lock);
    if (t.failed) {
        free(t.data);
        return TETHER_ERR_NO_MEMORY;
    }
    *text = t.data;
    *len = t.len;
    return TETHER_OK;
}

void tether_metrics_free(tether_metrics_t *metrics)
{
    tether_metric_t *next;

    if (metrics == NULL)
        return;
    for (tether_metric_t *m = metrics->first; m != NULL; m = next) {
        next = m->next;
        free(m->series);
        free(m);
    }
    pthread_mutex_destroy(&metrics->lock);
    memset(metrics, 0, sizeof(*metrics));
}
