/* The metrics registry and its Prometheus text (lib/include/tether/metrics.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tether/metrics.h"

static int setup(void **state)
{
    tether_metrics_t *metrics = malloc(sizeof(*metrics));

    if (metrics == NULL)
        return -1;
    tether_metrics_init(metrics);
    *state = metrics;
    return 0;
}

static int teardown(void **state)
{
    tether_metrics_free(*state);
    free(*state);
    return 0;
}

static tether_metric_t *add(tether_metrics_t *metrics, tether_metric_def_t def)
{
    tether_metric_t *metric = (tether_metric_t *)1;

    assert_int_equal(tether_metrics_add(metrics, &def, &metric), TETHER_OK);
    assert_non_null(metric);
    return metric;
}

/* The whole text; the caller frees it. */
static char *write_text(tether_metrics_t *metrics)
{
    char *text = (char *)1;
    size_t len = 99;

    assert_int_equal(tether_metrics_write(metrics, &text, &len), TETHER_OK);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static void counter_and_gauge(void **state)
{
    tether_metrics_t *metrics = *state;
    tether_metric_t *requests =
        add(metrics, (tether_metric_def_t){"t_requests_total", "Requests.", TETHER_METRIC_COUNTER,
                                           {"route", "code"}, NULL, 0, 8});
    tether_metric_t *open = add(metrics, (tether_metric_def_t){"t_open", "Open connections.",
                                                               TETHER_METRIC_GAUGE, {NULL},
                                                               NULL, 0, 1});
    char *text;

    tether_metric_add(tether_metric_series(requests, "/a", "2xx"), 2);
    tether_metric_add(tether_metric_series(requests, "/b", "4xx"), 1);
    tether_metric_add(tether_metric_series(requests, "/a", "2xx"), 1);
    tether_metric_gauge_add(tether_metric_series(open, NULL, NULL), 3);
    tether_metric_gauge_add(tether_metric_series(open, NULL, NULL), -5);
    text = write_text(metrics);
    assert_string_equal(text, "# HELP t_requests_total Requests.\n"
                              "# TYPE t_requests_total counter\n"
                              "t_requests_total{route=\"/a\",code=\"2xx\"} 3\n"
                              "t_requests_total{route=\"/b\",code=\"4xx\"} 1\n"
                              "# HELP t_open Open connections.\n"
                              "# TYPE t_open gauge\n"
                              "t_open -2\n");
    free(text);
    tether_metric_gauge_set(tether_metric_series(open, NULL, NULL), 1700000000);
    text = write_text(metrics);
    assert_non_null(strstr(text, "\nt_open 1700000000\n"));
    free(text);
}

/* Label values escape \, " and newline; HELP text escapes \ and newline
 * (and leaves " alone), as the 0.0.4 text format says. */
static void escaping(void **state)
{
    tether_metrics_t *metrics = *state;
    tether_metric_t *m = add(metrics, (tether_metric_def_t){"t_escaped_total",
                                                            "A \"quoted\" back\\slash\nand a line",
                                                            TETHER_METRIC_COUNTER, {"v"}, NULL,
                                                            0, 4});
    char *text;

    tether_metric_add(tether_metric_series(m, "a\"b\\c\nd", NULL), 1);
    text = write_text(metrics);
    assert_string_equal(text, "# HELP t_escaped_total A \"quoted\" back\\\\slash\\nand a line\n"
                              "# TYPE t_escaped_total counter\n"
                              "t_escaped_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
    free(text);
}

/* Buckets are cumulative, end with +Inf, and _count equals the +Inf
 * bucket; a value on a bound counts in that bound's bucket (le). */
static void histogram(void **state)
{
    tether_metrics_t *metrics = *state;
    static const double bounds[] = {0.125, 0.5, 1, 10};
    tether_metric_t *m = add(metrics, (tether_metric_def_t){"t_seconds", "Durations.",
                                                            TETHER_METRIC_HISTOGRAM, {"route"},
                                                            bounds, 4, 4});
    tether_metric_series_t *s = tether_metric_series(m, "/x", NULL);
    char *text;

    /* Binary fractions, so that the sum is exact. */
    tether_metric_observe(s, 0.0625);
    tether_metric_observe(s, 0.125);
    tether_metric_observe(s, 0.25);
    tether_metric_observe(s, 7.5);
    tether_metric_observe(s, 12);
    text = write_text(metrics);
    assert_string_equal(text, "# HELP t_seconds Durations.\n"
                              "# TYPE t_seconds histogram\n"
                              "t_seconds_bucket{route=\"/x\",le=\"0.125\"} 2\n"
                              "t_seconds_bucket{route=\"/x\",le=\"0.5\"} 3\n"
                              "t_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
                              "t_seconds_bucket{route=\"/x\",le=\"10\"} 4\n"
                              "t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
                              "t_seconds_sum{route=\"/x\"} 19.9375\n"
                              "t_seconds_count{route=\"/x\"} 5\n");
    free(text);
}

/* Past max_series, new label sets share one series labelled "other", and
 * so does a value too long to keep: memory stays bounded. */
static void label_sets_bounded(void **state)
{
    tether_metrics_t *metrics = *state;
    tether_metric_t *m = add(metrics, (tether_metric_def_t){"t_codes_total", "Codes.",
                                                            TETHER_METRIC_COUNTER, {"code"}, NULL,
                                                            0, 3});
    char long_value[TETHER_METRICS_VALUE_SIZE + 1];
    char *text;

    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    tether_metric_add(tether_metric_series(m, "a", NULL), 1);
    tether_metric_add(tether_metric_series(m, "b", NULL), 1);
    tether_metric_add(tether_metric_series(m, "c", NULL), 1);
    tether_metric_add(tether_metric_series(m, "d", NULL), 1);
    tether_metric_add(tether_metric_series(m, long_value, NULL), 1);
    tether_metric_add(tether_metric_series(m, "a", NULL), 1);
    text = write_text(metrics);
    assert_string_equal(text, "# HELP t_codes_total Codes.\n"
                              "# TYPE t_codes_total counter\n"
                              "t_codes_total{code=\"a\"} 2\n"
                              "t_codes_total{code=\"b\"} 1\n"
                              "t_codes_total{code=\"other\"} 3\n");
    free(text);
}

static void definitions_checked(void **state)
{
    tether_metrics_t *metrics = *state;
    static const double unordered[] = {1, 0.5};
    static const double one[] = {1};
    const tether_metric_def_t bad[] = {
        {"t_no_suffix", "h", TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1},
        {"t_gauge_total", "h", TETHER_METRIC_GAUGE, {NULL}, NULL, 0, 1},
        {"9starts_with_digit_total", "h", TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1},
        {"t_bad-char_total", "h", TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1},
        {"t_label_total", "h", TETHER_METRIC_COUNTER, {"__reserved"}, NULL, 0, 2},
        {"t_label_total", "h", TETHER_METRIC_COUNTER, {"a", "a"}, NULL, 0, 2},
        {"t_label_total", "h", TETHER_METRIC_COUNTER, {"a"}, NULL, 0, 1},
        {"t_plain_total", "h", TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 2},
        {"t_h", "h", TETHER_METRIC_HISTOGRAM, {"le"}, one, 1, 2},
        {"t_h", "h", TETHER_METRIC_HISTOGRAM, {NULL}, unordered, 2, 1},
        {"t_h", "h", TETHER_METRIC_HISTOGRAM, {NULL}, NULL, 0, 1},
        {"t_h", NULL, TETHER_METRIC_HISTOGRAM, {NULL}, one, 1, 1},
    };
    tether_metric_def_t good = {"t_ok_total", "h", TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1};
    tether_metric_t *metric = (tether_metric_t *)1;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tether_metrics_add(metrics, &bad[i], &metric),
                         TETHER_ERR_INVALID_ARGUMENT);
        assert_null(metric);
    }
    assert_int_equal(tether_metrics_add(metrics, &good, &metric), TETHER_OK);
    assert_int_equal(tether_metrics_add(metrics, &good, &metric), TETHER_ERR_CONFLICT);
    assert_null(metric);
    /* An unregistered metric counts nothing and does not crash. */
    assert_null(tether_metric_series(NULL, "a", NULL));
    tether_metric_add(NULL, 1);
    tether_metric_observe(NULL, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(counter_and_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(label_sets_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(definitions_checked, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
