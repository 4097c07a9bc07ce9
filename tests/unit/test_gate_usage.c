/* tether-gate's usage reporter without the network: what it counts per
 * token, the reports it makes (read back with fleetd's own parser, so the
 * two sides agree on the format) and its bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tether/metrics.h"
#include "usage_report.h"
#include "usage_reporter.h"

#define DEV1 "dev_111111111111111111111111"
#define DEV2 "dev_222222222222222222222222"
#define JTI1 "0123456789abcdef0123456789abcdef"
#define JTI2 "fedcba9876543210fedcba9876543210"
#define NOW 1700000000

typedef struct fixture {
    tether_metrics_t registry;
    tether_gate_usage_reporter_t reporter;
    tether_usage_report_t report; /* a pending report as fleetd reads it */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    tether_metrics_init(&f->registry);
    tether_gate_usage_reporter_init(&f->reporter);
    if (tether_gate_usage_reporter_open(&f->reporter, &f->registry,
                                        "https://gate.example:8480") != TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    tether_gate_usage_reporter_stop(&f->reporter);
    tether_metrics_free(&f->registry);
    free(f);
    return 0;
}

/* The pending report i, parsed by fleetd's parser into f->report. */
static void read_pending(fixture_t *f, size_t i)
{
    char message[TETHER_USAGE_MESSAGE_SIZE] = "";
    const tether_gate_usage_batch_t *b = &f->reporter.pending[i];

    if (tether_usage_report_parse(b->body, b->len, &f->report, message, sizeof(message)) !=
        TETHER_OK)
        fail_msg("fleetd refuses the report: %s", message);
    assert_string_equal(f->report.report_id, b->report_id);
    assert_int_equal(f->report.entry_count, b->entries);
}

/* The metrics text holds line. */
static void metric_is(fixture_t *f, const char *line)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(tether_metrics_write(&f->registry, &text, &len), TETHER_OK);
    if (strstr(text, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", line, text);
    free(text);
}

static void counts_per_token(void **state)
{
    fixture_t *f = *state;
    tether_gate_usage_reporter_t *r = &f->reporter;

    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 100, 20, 2500,
                                     NOW);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 50, 5, 1000,
                                     NOW + 3);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_REFUSED, 0, 0, 0, NOW + 1);
    tether_gate_usage_reporter_count(r, DEV2, JTI2, TETHER_GATE_USAGE_FORWARDED, 1, 2, 3, NOW + 2);
    /* Not fleetd's syntax: never reported (fleetd would refuse the report). */
    tether_gate_usage_reporter_count(r, DEV1, "0123", TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    tether_gate_usage_reporter_count(r, "dev_1", JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    tether_gate_usage_reporter_count(r, DEV1, "0123456789ABCDEF0123456789abcdef",
                                     TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    metric_is(f, "tether_gate_usage_entries_pending 2\n");
    assert_int_equal(tether_gate_usage_reporter_batch(r), 1);
    assert_int_equal(r->count_n, 0);
    read_pending(f, 0);
    assert_string_equal(f->report.gateway, "https://gate.example:8480");
    assert_int_equal(f->report.entry_count, 2);
    assert_string_equal(f->report.entries[0].jti, JTI1);
    assert_string_equal(f->report.entries[0].device_id, DEV1);
    assert_int_equal(f->report.entries[0].requests, 2);
    assert_int_equal(f->report.entries[0].refused, 1);
    assert_int_equal(f->report.entries[0].prompt_tokens, 150);
    assert_int_equal(f->report.entries[0].completion_tokens, 25);
    assert_int_equal(f->report.entries[0].cost_micros, 3500);
    assert_int_equal(f->report.entries[0].first_seen, NOW);
    assert_int_equal(f->report.entries[0].last_seen, NOW + 3);
    assert_string_equal(f->report.entries[1].jti, JTI2);
    assert_int_equal(f->report.entries[1].cost_micros, 3);
    /* Nothing counted since: no report. A new one gets a new id. */
    assert_int_equal(tether_gate_usage_reporter_batch(r), 0);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW + 10);
    assert_int_equal(tether_gate_usage_reporter_batch(r), 1);
    assert_int_equal(r->pending_n, 2);
    assert_string_not_equal(r->pending[0].report_id, r->pending[1].report_id);
    read_pending(f, 1);
    assert_int_equal(f->report.entries[0].requests, 1);
    metric_is(f, "tether_gate_usage_entries_pending 3\n");
}


/* The refusals the fleet's thresholds watch: counted in refused and in
 * their own figure, sent only when not 0 (a fleetd before them reads such
 * a report), and read back by fleetd's parser. */
static void refusals_for_the_thresholds(void **state)
{
    fixture_t *f = *state;
    tether_gate_usage_reporter_t *r = &f->reporter;

    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_REFUSED_MODEL, 0, 0, 0, NOW);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_REFUSED_MODEL, 0, 0, 0, NOW);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_REFUSED_SOURCE, 0, 0, 0,
                                     NOW + 1);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_REFUSED, 0, 0, 0, NOW + 1);
    tether_gate_usage_reporter_count(r, DEV2, JTI2, TETHER_GATE_USAGE_FORWARDED, 1, 2, 3, NOW);
    assert_int_equal(tether_gate_usage_reporter_batch(r), 1);
    read_pending(f, 0);
    assert_int_equal(f->report.entries[0].requests, 0);
    assert_int_equal(f->report.entries[0].refused, 4);
    assert_int_equal(f->report.entries[0].refused_models, 2);
    assert_int_equal(f->report.entries[0].refused_sources, 1);
    assert_int_equal(f->report.entries[1].refused_models, 0);
    assert_int_equal(f->report.entries[1].refused_sources, 0);
    assert_non_null(strstr(r->pending[0].body, "\"refused_models\":2,\"refused_sources\":1"));
    /* Entry 1 refused nothing: neither member. */
    assert_null(strstr(strstr(r->pending[0].body, "\"refused_sources\":1") +
                           strlen("\"refused_sources\""),
                       "refused_"));
}
static void bounded_while_the_fleet_is_away(void **state)
{
    fixture_t *f = *state;
    tether_gate_usage_reporter_t *r = &f->reporter;
    char jti[TETHER_GATE_USAGE_JTI_SIZE];

    /* A full table: 16 reports of 256 entries. */
    for (unsigned i = 0; i < TETHER_GATE_USAGE_TOKENS_MAX; i++) {
        snprintf(jti, sizeof(jti), "%032x", i);
        tether_gate_usage_reporter_count(r, DEV1, jti, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    }
    /* One token more finds no room; a known one still counts. */
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    tether_gate_usage_reporter_count(r, DEV1, "00000000000000000000000000000000",
                                     TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    metric_is(f, "tether_gate_usage_dropped_total 1\n");
    assert_int_equal(tether_gate_usage_reporter_batch(r), TETHER_GATE_USAGE_PENDING_MAX);
    for (size_t i = 0; i < TETHER_GATE_USAGE_PENDING_MAX; i++)
        read_pending(f, i);
    assert_int_equal(f->report.entries[TETHER_GATE_USAGE_REPORT_ENTRIES - 1].requests, 1);
    read_pending(f, 0);
    assert_int_equal(f->report.entries[0].requests, 2);
    /* Every report waits: the table counts on, and is not taken. */
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    assert_int_equal(tether_gate_usage_reporter_batch(r), 0);
    assert_int_equal(r->count_n, 1);
    metric_is(f, "tether_gate_usage_entries_pending 4097\n");
}

static void an_entry_stops_at_fleetd_bounds(void **state)
{
    fixture_t *f = *state;
    tether_gate_usage_reporter_t *r = &f->reporter;

    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED,
                                     TETHER_GATE_USAGE_MAX_TOKENS, 0, TETHER_GATE_USAGE_MAX_COST,
                                     NOW);
    /* Past the bounds: not added (and said), so fleetd accepts the report. */
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 0, 0, NOW);
    tether_gate_usage_reporter_count(r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 0, 0, 1, NOW);
    metric_is(f, "tether_gate_usage_dropped_total 2\n");
    assert_int_equal(tether_gate_usage_reporter_batch(r), 1);
    read_pending(f, 0);
    assert_int_equal(f->report.entries[0].requests, 1);
    assert_int_equal(f->report.entries[0].prompt_tokens, TETHER_GATE_USAGE_MAX_TOKENS);
    assert_int_equal(f->report.entries[0].cost_micros, TETHER_GATE_USAGE_MAX_COST);
}

static void unopened_reporter(void **state)
{
    tether_gate_usage_reporter_t r;

    (void)state;
    tether_gate_usage_reporter_init(&r);
    tether_gate_usage_reporter_count(&r, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    tether_gate_usage_reporter_count(NULL, DEV1, JTI1, TETHER_GATE_USAGE_FORWARDED, 1, 1, 1, NOW);
    assert_int_equal(tether_gate_usage_reporter_batch(&r), 0);
    assert_int_equal(tether_gate_usage_reporter_start(&r, "https://fleet.example", "ca.pem",
                                                      "tthr_adm_x", 5),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_gate_usage_reporter_stop(&r);
    tether_gate_usage_reporter_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(counts_per_token, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals_for_the_thresholds, setup, teardown),
        cmocka_unit_test_setup_teardown(bounded_while_the_fleet_is_away, setup, teardown),
        cmocka_unit_test_setup_teardown(an_entry_stops_at_fleetd_bounds, setup, teardown),
        cmocka_unit_test(unopened_reporter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
