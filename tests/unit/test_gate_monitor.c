/* tether-gate's usage lines and metrics (gateway/src/api/monitor.h) and the
 * loopback-only /metrics route of its pipeline (router.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "monitor.h"
#include "router.h"

typedef struct fixture {
    tether_gate_revocations_t revocations; /* never opened: the feed never reached */
    tether_gate_monitor_t monitor;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    tether_gate_revocations_init(&f->revocations);
    tether_gate_monitor_init(&f->monitor);
    if (tether_gate_monitor_open(&f->monitor, &f->revocations) != TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    tether_gate_monitor_free(&f->monitor);
    free(f);
    return 0;
}

/* The exposition text (malloc'd). */
static char *scrape(fixture_t *f)
{
    tether_http_response_t response;
    char *text;

    memset(&response, 0, sizeof(response));
    tether_gate_monitor_handle(&f->monitor, &response);
    assert_int_equal(response.status, 200);
    assert_string_equal(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
    text = response.body;
    response.body = NULL;
    tether_http_response_clear(&response);
    return text;
}

static void assert_sample(const char *text, const char *sample)
{
    char line[256];

    snprintf(line, sizeof(line), "\n%s\n", sample);
    if (strstr(text, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", sample, text);
}

/* Runs fn with standard output going to a file; returns what it wrote
 * (malloc'd). */
static char *capture_stdout(void (*fn)(fixture_t *), fixture_t *f)
{
    FILE *file = tmpfile();
    int saved;
    long size;
    char *text;

    assert_non_null(file);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(file), STDOUT_FILENO) >= 0);
    fn(f);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    size = lseek(fileno(file), 0, SEEK_END);
    assert_true(size >= 0);
    text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fileno(file), text, (size_t)size, 0), size);
    fclose(file);
    return text;
}

static void report_requests(fixture_t *f)
{
    tether_gate_outcome_t answered = {
        .device = "dev_a", .jti = "jti-1", .model = "gpt-4o-mini", .path = "/v1/chat/completions",
        .status = 200, .settled = true, .usage_reported = true, .prompt_tokens = 11,
        .completion_tokens = 7, .cost = 5850, .seconds = 0.25};
    tether_gate_outcome_t spend = {
        .device = "dev_a", .jti = "jti-1", .model = "gpt-4o-mini", .path = "/v1/chat/completions",
        .status = 429, .code = "spend_limit_reached", .seconds = 0.001};
    tether_gate_outcome_t failed = {
        .device = "dev_a", .jti = "jti-1", .model = "gpt-4o-mini", .path = "/v1/chat/completions",
        .status = 502, .code = "upstream_unavailable", .seconds = 0.5};
    tether_gate_outcome_t table_full = {
        .device = "dev_b", .jti = "jti-2", .model = "gpt-4o-mini", .path = "/v1/chat/completions",
        .status = 503, .code = "too_many_devices", .seconds = 0.001};
    tether_gate_refusal_t revoked = {.status = 401, .error = "invalid_token",
                                     .tether_error = "device_revoked"};

    tether_gate_monitor_authorized(&f->monitor, 0.0001);
    tether_gate_monitor_outcome(&f->monitor, &answered);
    tether_gate_monitor_authorized(&f->monitor, 0.0001);
    tether_gate_monitor_outcome(&f->monitor, &spend);
    tether_gate_monitor_authorized(&f->monitor, 0.0001);
    tether_gate_monitor_outcome(&f->monitor, &failed);
    tether_gate_monitor_authorized(&f->monitor, 0.0001);
    tether_gate_monitor_outcome(&f->monitor, &table_full);
    tether_gate_monitor_refused(&f->monitor, "/v1/chat/completions", &revoked, 0.0002);
}

static void test_counts_and_usage_lines(void **state)
{
    fixture_t *f = *state;
    char *lines = capture_stdout(report_requests, f);
    char *text = scrape(f);
    char *second;
    size_t count = 0;

    assert_sample(text, "tether_gate_requests_total{outcome=\"answered\",code=\"2xx\"} 1");
    assert_sample(text,
                  "tether_gate_requests_total{outcome=\"refused\",code=\"spend_limit_reached\"} 1");
    assert_sample(text,
                  "tether_gate_requests_total{outcome=\"failed\",code=\"upstream_unavailable\"} 1");
    assert_sample(text, "tether_gate_requests_total{outcome=\"refused\",code=\"device_revoked\"} 1");
    /* a 503 that is a decision, not a failure */
    assert_sample(text, "tether_gate_requests_total{outcome=\"refused\",code=\"too_many_devices\"} 1");
    assert_sample(text, "tether_gate_spend_micros_total 5850");
    assert_sample(text, "tether_gate_tokens_total{kind=\"prompt\"} 11");
    assert_sample(text, "tether_gate_tokens_total{kind=\"completion\"} 7");
    assert_sample(text, "tether_gate_authorization_duration_seconds_count 5");
    /* the answer and the upstream failure, not the ceiling's refusal */
    assert_sample(text, "tether_gate_upstream_duration_seconds_count 2");
    assert_sample(text, "tether_gate_revocation_feed_age_seconds -1");
    /* One line per request, nothing charged for a refusal. */
    for (const char *p = lines; (p = strchr(p, '\n')) != NULL; p++)
        count++;
    assert_int_equal(count, 5);
    second = strchr(lines, '\n') + 1;
    assert_non_null(strstr(lines, "\"device\":\"dev_a\",\"jti\":\"jti-1\",\"model\":\"gpt-4o-mini\","
                                  "\"path\":\"/v1/chat/completions\",\"status\":200,"
                                  "\"prompt_tokens\":11,\"completion_tokens\":7,"
                                  "\"cost_micros\":5850,\"latency_ms\":250,\"refusal\":null}"));
    assert_non_null(strstr(second, "\"status\":429,\"prompt_tokens\":0,\"completion_tokens\":0,"
                                   "\"cost_micros\":0,"));
    assert_non_null(strstr(second, "\"refusal\":\"spend_limit_reached\"}"));
    /* the last line: authorization's refusal, nothing of the token logged */
    assert_non_null(strstr(strrchr(lines, '{'), "\"device\":null,\"jti\":null,\"model\":null,"));
    assert_non_null(strstr(strrchr(lines, '{'), "\"refusal\":\"device_revoked\"}"));
    free(text);
    free(lines);
}

static const char *no_header(const tether_http_request_t *request, const char *name)
{
    (void)request;
    (void)name;
    return NULL;
}

/* /metrics needs no token but answers loopback clients only. */
static void test_metrics_route_is_loopback_only(void **state)
{
    static const struct {
        const char *remote;
        const char *method;
        unsigned status;
    } cases[] = {
        {"127.0.0.1", "GET", 200},      {"::1", "GET", 200},
        {"::ffff:127.0.0.1", "GET", 200}, {"10.0.0.1", "GET", 403},
        {"::ffff:10.0.0.1", "GET", 403}, {"2001:db8::1", "GET", 403},
        {"128.0.0.1", "GET", 403},      {NULL, "GET", 403},
        {"127.0.0.1", "POST", 405},
    };
    fixture_t *f = *state;
    tether_gate_router_t router;

    memset(&router, 0, sizeof(router));
    router.monitor = &f->monitor; /* no access checker: /metrics must not need one */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tether_http_request_t request;
        tether_http_response_t response;

        memset(&request, 0, sizeof(request));
        memset(&response, 0, sizeof(response));
        request.method = cases[i].method;
        request.path = "/metrics";
        request.remote = cases[i].remote;
        request.header = no_header;
        tether_gate_router_handle(&router, &request, &response);
        if (response.status != cases[i].status)
            fail_msg("case %zu: %u, not %u", i, response.status, cases[i].status);
        if (cases[i].status == 403)
            assert_non_null(strstr(response.body, "\"tether_error\":\"not_loopback\""));
        tether_http_response_clear(&response);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_and_usage_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_route_is_loopback_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
