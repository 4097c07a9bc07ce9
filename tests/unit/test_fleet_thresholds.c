/* Anomaly thresholds: at usage reports, each rate kind crossing and not
 * crossing over its sliding window, one alert per crossing window, alert
 * keeping the device active, quarantine revoking its tokens and appending
 * the feed; at the exchange, the source networks (inside, outside with
 * alert served, outside with quarantine refused); over a real SQLite
 * store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_fixture.h"
#include "store.h"

#define NOW 1700000000
#define DEV1 "dev_111111111111111111111111"
#define JTI1 "0123456789abcdef0123456789abcdef"

#define POLICY(kind, value, action)                                                           \
    "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o\"],\"cost_ceiling\":0,"                  \
    "\"lifetime_seconds\":300},\"thresholds\":[{\"kind\":\"" kind "\",\"value\":" value       \
    ",\"action\":\"" action "\"}],\"sources\":[]}"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    unsigned reports;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    tether_store_allow_t row;

    if (f == NULL || fleet_fixture_open("thresholds", f->dir, f->db, &f->store) != 0)
        return -1;
    memset(&row, 0, sizeof(row));
    strcpy(row.id, DEV1);
    memset(row.ek_sha256, '1', 64);
    strcpy(row.name, "one");
    if (tether_store_device_import(&f->store, &row, 1, NOW - 1000, NULL, NULL) != TETHER_OK ||
        tether_store_issued_token_add(&f->store, JTI1, DEV1, NOW + 3600, NOW - 60) != TETHER_OK)
        return -1;
    fleet_db_exec(f->db, "UPDATE devices SET status = 'active'");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

static void follow(fixture_t *f, const char *document)
{
    int64_t version = 0;

    assert_int_equal(tether_store_policy_write(&f->store, "limits", document, true, NOW - 500,
                                               &version),
                     TETHER_OK);
    assert_int_equal(tether_store_device_set_policy(&f->store, DEV1, "limits", NOW - 500),
                     TETHER_OK);
}

/* One report of entry, for DEV1's token, received a second after its
 * last_seen. */
static void record(fixture_t *f, tether_store_usage_entry_t *entry,
                   tether_store_usage_result_t *result)
{
    char id[32];
    tether_store_usage_report_t r = {.relying_party = 1, .gateway = "gate-1", .report_id = id,
                                     .entries = entry, .entry_count = 1};

    snprintf(entry->jti, sizeof(entry->jti), "%s", JTI1);
    snprintf(entry->device_id, sizeof(entry->device_id), "%s", DEV1);
    snprintf(id, sizeof(id), "r-%016u", ++f->reports);
    memset(r.body_sha256, (int)f->reports, sizeof(r.body_sha256));
    assert_int_equal(tether_store_usage_report_record(&f->store, &r, entry->last_seen + 1, result),
                     TETHER_OK);
    assert_int_equal(result->decision, TETHER_STORE_USAGE_ACCEPTED);
}

/* One report of one entry of DEV1's token, seen over [at - 1, at]. */
static void report(fixture_t *f, int64_t at, int64_t requests, int64_t tokens, int64_t cost,
                   tether_store_usage_result_t *result)
{
    tether_store_usage_entry_t entry = {.requests = requests, .prompt_tokens = tokens / 2,
                                        .completion_tokens = tokens - tokens / 2,
                                        .cost_micros = cost, .first_seen = at - 1,
                                        .last_seen = at};

    record(f, &entry, result);
}

static long long alerts(fixture_t *f)
{
    return fleet_db_count(f->db,
                          "SELECT count(*) FROM alerts WHERE kind = 'threshold_exceeded'");
}

static void assert_status(fixture_t *f, tether_device_status_t status)
{
    tether_store_device_t device;

    assert_int_equal(tether_store_device_get(&f->store, DEV1, &device), TETHER_OK);
    assert_int_equal(device.status, status);
}

/* One kind: reports up to the value do not alert, the one past it does,
 * with the figures. */
typedef struct kind_case {
    const char *document;
    const char *kind;
    int64_t window;
    int64_t requests, tokens, cost; /* per report; two stay at the value, three cross */
    const char *observed;
} kind_case_t;

static void each_kind_crosses_past_its_value(void **state)
{
    static const kind_case_t cases[] = {
        {POLICY("requests_per_minute", "20", "alert"), "requests_per_minute", 60, 10, 0, 0,
         "30"},
        {POLICY("tokens_per_minute", "1000", "alert"), "tokens_per_minute", 60, 1, 500, 0,
         "1500"},
        {POLICY("spend_per_hour", "1.5", "alert"), "spend_per_hour", 3600, 1, 0, 750000,
         "2.25"},
        {POLICY("spend_per_day", "10", "alert"), "spend_per_day", 86400, 1, 0, 5000000, "15"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const kind_case_t *c = &cases[i];
        tether_store_usage_result_t result;
        char members[256];

        assert_int_equal(setup(state), 0);
        fixture_t *f = *state;
        follow(f, c->document);
        /* The window's start is open: usage one window back does not count. */
        report(f, NOW - c->window, c->requests, c->tokens, c->cost, &result);
        report(f, NOW - c->window / 2, c->requests, c->tokens, c->cost, &result);
        report(f, NOW, c->requests, c->tokens, c->cost, &result);
        assert_int_equal(result.thresholds, 0);
        assert_int_equal(alerts(f), 0);
        report(f, NOW + 1, c->requests, c->tokens, c->cost, &result);
        assert_int_equal(result.thresholds, 1);
        assert_false(result.quarantined);
        snprintf(members, sizeof(members),
                 "{\"kind\": \"%s\", \"observed\": %s, \"window_seconds\": %lld, "
                 "\"window_end\": %d, \"action\": \"alert\"}",
                 c->kind, c->observed, (long long)c->window, NOW + 1);
        assert_int_equal(fleet_db_alerts(f->db,
                                         "kind = 'threshold_exceeded' AND device_id = '" DEV1 "'",
                                         members),
                         1);
        assert_int_equal(teardown(state), 0);
    }
}

static void alerts_once_per_window_and_keeps_serving(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;

    follow(f, POLICY("requests_per_minute", "20", "alert"));
    report(f, NOW, 25, 0, 0, &result);
    assert_int_equal(result.thresholds, 1);
    /* Still above the value within the window that alerted: no new alert. */
    report(f, NOW + 30, 5, 0, 0, &result);
    report(f, NOW + 59, 5, 0, 0, &result);
    assert_int_equal(result.thresholds, 0);
    assert_int_equal(alerts(f), 1);
    /* Alert only: the device and its token stay as they were. */
    assert_status(f, TETHER_DEVICE_ACTIVE);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM revocations"), 0);
    assert_int_equal(fleet_db_count(f->db, "SELECT revoked FROM issued_tokens"), 0);
    /* A window after the one that alerted crosses again: a second alert. */
    report(f, NOW + 60, 30, 0, 0, &result);
    assert_int_equal(result.thresholds, 1);
    assert_int_equal(alerts(f), 2);
}

static void a_slow_pace_never_crosses(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;

    follow(f, POLICY("requests_per_minute", "20", "quarantine"));
    /* 20 requests a minute, reported every 15 s, for ten minutes. */
    for (int64_t t = 0; t < 600; t += 15) {
        report(f, NOW + t, 5, 0, 0, &result);
        assert_int_equal(result.thresholds, 0);
    }
    assert_int_equal(alerts(f), 0);
    assert_status(f, TETHER_DEVICE_ACTIVE);
}

static void quarantine_revokes_and_appends_the_feed(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;

    follow(f, POLICY("requests_per_minute", "20", "quarantine"));
    report(f, NOW, 20, 0, 0, &result);
    assert_false(result.quarantined);
    assert_status(f, TETHER_DEVICE_ACTIVE);
    report(f, NOW + 1, 20, 0, 0, &result);
    assert_int_equal(result.thresholds, 1);
    assert_true(result.quarantined);
    assert_status(f, TETHER_DEVICE_QUARANTINED);
    assert_int_equal(fleet_db_count(f->db, "SELECT revoked FROM issued_tokens WHERE jti = '" JTI1
                                           "'"),
                     1);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM revocations WHERE device_id = '"
                                           DEV1 "' AND reason LIKE 'threshold requests_per_minute%'"),
                     1);
    assert_int_equal(fleet_db_alerts(f->db, "kind = 'threshold_exceeded'",
                                     "{\"observed\": 40, \"value\": 20, "
                                     "\"action\": \"quarantine\"}"),
                     1);
}

/* An exchange of DEV1 from address, its policy's source_networks threshold
 * passed when the address is outside the sources (as exchange_api.c
 * decides with tether_policy_source_allowed). */
static tether_store_exchange_decision_t exchange(fixture_t *f, const char *address,
                                                 const tether_policy_document_t *doc,
                                                 tether_store_exchange_result_t *result)
{
    tether_store_exchange_t ex;
    char jti[TETHER_STORE_JTI_SIZE];

    snprintf(jti, sizeof(jti), "e%031u", ++f->reports);
    fleet_fixture_exchange(&ex, DEV1, f->reports, address, NOW, jti, 300);
    if (!tether_policy_source_allowed(doc, address))
        ex.source_threshold = &doc->thresholds[TETHER_THRESHOLD_SOURCE_NETWORKS];
    assert_int_equal(tether_store_exchange_record(&f->store, &ex, NOW, result), TETHER_OK);
    return result->decision;
}

#define SOURCES(action)                                                                       \
    "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o\"],\"cost_ceiling\":0,"                  \
    "\"lifetime_seconds\":300},\"thresholds\":[{\"kind\":\"source_networks\",\"value\":1,"   \
    "\"action\":\"" action "\"}],\"sources\":[\"10.1.0.0/16\",\"fd00::/8\"]}"

static void parse(const char *text, tether_policy_document_t *doc)
{
    char why[128];

    assert_int_equal(tether_policy_document_parse((const uint8_t *)text, strlen(text), doc, why,
                                                  sizeof(why)),
                     TETHER_OK);
}

static long long source_alerts(fixture_t *f)
{
    return fleet_db_alerts(f->db, "kind = 'threshold_exceeded'",
                           "{\"kind\": \"source_networks\"}");
}

static void sources_match_by_network(void **state)
{
    tether_policy_document_t doc;

    (void)state;
    parse(SOURCES("alert"), &doc);
    assert_true(tether_policy_source_allowed(&doc, "10.1.0.1"));
    assert_true(tether_policy_source_allowed(&doc, "10.1.255.255"));
    assert_true(tether_policy_source_allowed(&doc, "fd12::1"));
    assert_false(tether_policy_source_allowed(&doc, "10.2.0.1"));
    assert_false(tether_policy_source_allowed(&doc, "fe80::1"));
    assert_false(tether_policy_source_allowed(&doc, "::ffff:10.1.0.1"));
    assert_false(tether_policy_source_allowed(&doc, "-"));
    assert_false(tether_policy_source_allowed(&doc, NULL));
    /* No sources: any address. */
    parse(POLICY("requests_per_minute", "20", "alert"), &doc);
    assert_true(tether_policy_source_allowed(&doc, "192.0.2.1"));
}

static void source_alert_serves(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_policy_document_t doc;

    parse(SOURCES("alert"), &doc);
    assert_int_equal(exchange(f, "10.1.2.3", &doc, &r), TETHER_STORE_EXCHANGE_ACCEPT);
    assert_false(r.source_alerted);
    assert_int_equal(source_alerts(f), 0);
    assert_int_equal(exchange(f, "192.0.2.7", &doc, &r), TETHER_STORE_EXCHANGE_ACCEPT);
    assert_true(r.source_alerted);
    assert_int_equal(fleet_db_alerts(f->db, "TRUE",
                                     "{\"observed\": \"192.0.2.7\", \"action\": \"alert\", "
                                     "\"value\": 1}"),
                     1);
    /* Within the hour: served, not alerted again. */
    assert_int_equal(exchange(f, "192.0.2.8", &doc, &r), TETHER_STORE_EXCHANGE_ACCEPT);
    assert_false(r.source_alerted);
    assert_int_equal(source_alerts(f), 1);
    assert_status(f, TETHER_DEVICE_ACTIVE);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM revocations"), 0);
}

static void source_quarantine_refuses(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_policy_document_t doc;

    parse(SOURCES("quarantine"), &doc);
    assert_int_equal(exchange(f, "fd00::5", &doc, &r), TETHER_STORE_EXCHANGE_ACCEPT);
    assert_int_equal(exchange(f, "192.0.2.7", &doc, &r), TETHER_STORE_EXCHANGE_SOURCE_REFUSED);
    assert_true(r.source_alerted);
    assert_int_equal(r.status, TETHER_DEVICE_QUARANTINED);
    assert_status(f, TETHER_DEVICE_QUARANTINED);
    /* No token recorded for the refused exchange; the live ones revoked. */
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM issued_tokens"), 2);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM issued_tokens WHERE revoked = 0"),
                     0);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM revocations WHERE device_id = '"
                                           DEV1 "' AND reason LIKE '%192.0.2.7%'"),
                     1);
    /* Put back to active by an operator, outside again within the hour:
     * refused again, though not alerted twice. */
    fleet_db_exec(f->db, "UPDATE devices SET status = 'active'");
    assert_int_equal(exchange(f, "192.0.2.7", &doc, &r), TETHER_STORE_EXCHANGE_SOURCE_REFUSED);
    assert_false(r.source_alerted);
    assert_int_equal(source_alerts(f), 1);
}

/* One report of one entry of DEV1's token at at, with what the gateway
 * refused for a model outside the allow lists and for the client's
 * address (both counted in refused too). */
static void report_refusals(fixture_t *f, int64_t at, int64_t models, int64_t sources,
                            tether_store_usage_result_t *result)
{
    tether_store_usage_entry_t entry = {.refused = models + sources, .refused_models = models,
                                        .refused_sources = sources, .first_seen = at,
                                        .last_seen = at};

    record(f, &entry, result);
}

/* refused_models: tried value times within the hour reaches it (not
 * "past" it: "models outside the allow list tried N times"); tries an hour
 * apart do not add up; with quarantine, the clone path's containment. */
static void refused_models_reach_their_value(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;

    follow(f, POLICY("refused_models", "3", "quarantine"));
    report_refusals(f, NOW - 4000, 2, 0, &result);
    report_refusals(f, NOW - 100, 1, 0, &result);
    assert_int_equal(result.thresholds, 0);
    /* Requests without such a refusal never act, whatever the window holds. */
    report(f, NOW - 1, 5, 0, 0, &result);
    assert_int_equal(result.thresholds, 0);
    assert_status(f, TETHER_DEVICE_ACTIVE);
    report_refusals(f, NOW, 2, 0, &result);
    assert_int_equal(result.thresholds, 1);
    assert_true(result.quarantined);
    assert_status(f, TETHER_DEVICE_QUARANTINED);
    assert_int_equal(fleet_db_alerts(f->db, "kind = 'threshold_exceeded'",
                                     "{\"kind\": \"refused_models\", \"observed\": 3, "
                                     "\"value\": 3, \"window_seconds\": 3600, "
                                     "\"action\": \"quarantine\"}"),
                     1);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM revocations WHERE device_id = '"
                                           DEV1 "' AND reason LIKE 'threshold refused_models "
                                           "reached: 3 requests for a model%'"),
                     1);
    assert_int_equal(fleet_db_count(f->db, "SELECT revoked FROM issued_tokens WHERE jti = '" JTI1
                                           "'"),
                     1);
}

/* source_networks at gateways: requests refused for their address add up
 * per hour like refused_models; with alert, the device is served on. */
static void source_refusals_at_gateways_alert(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;

    tether_store_exchange_result_t r;
    tether_policy_document_t doc;

    follow(f, SOURCES("alert"));
    /* An exchange from outside alerted within the hour: the gateways'
     * sightings alert on their own all the same. */
    parse(SOURCES("alert"), &doc);
    assert_int_equal(exchange(f, "192.0.2.7", &doc, &r), TETHER_STORE_EXCHANGE_ACCEPT);
    assert_true(r.source_alerted);
    /* Refused models count for no source threshold. */
    report_refusals(f, NOW - 10, 4, 0, &result);
    assert_int_equal(result.thresholds, 0);
    report_refusals(f, NOW, 0, 2, &result);
    assert_int_equal(result.thresholds, 1);
    assert_false(result.quarantined);
    assert_int_equal(fleet_db_alerts(f->db, "TRUE",
                                     "{\"kind\": \"source_networks\", \"observed\": 2, "
                                     "\"action\": \"alert\"}"),
                     1);
    /* Within the hour that alerted: not again. */
    report_refusals(f, NOW + 60, 0, 1, &result);
    assert_int_equal(result.thresholds, 0);
    assert_int_equal(source_alerts(f), 2);
    assert_status(f, TETHER_DEVICE_ACTIVE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_kind_crosses_past_its_value),
        cmocka_unit_test_setup_teardown(alerts_once_per_window_and_keeps_serving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_slow_pace_never_crosses, setup, teardown),
        cmocka_unit_test_setup_teardown(quarantine_revokes_and_appends_the_feed, setup, teardown),
        cmocka_unit_test(sources_match_by_network),
        cmocka_unit_test_setup_teardown(source_alert_serves, setup, teardown),
        cmocka_unit_test_setup_teardown(source_quarantine_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_models_reach_their_value, setup, teardown),
        cmocka_unit_test_setup_teardown(source_refusals_at_gateways_alert, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
