/* tether-gate's usage lines and metrics (monitor.h). */
#include "monitor.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "tether/gate/policy.h"
#include "tether/log.h"

#define METRICS_MEDIA_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Label sets of requests: every tether-gate, DPoP and ceiling code once per
 * outcome stays far below this; the bound only guards against a mistake. */
#define REQUEST_SERIES_MAX 96

void tether_gate_monitor_init(tether_gate_monitor_t *monitor)
{
    if (monitor == NULL)
        return;
    memset(monitor, 0, sizeof(*monitor));
    tether_metrics_init(&monitor->registry);
}

/* A metric without labels, and its one series. */
static tether_status_t add_series(tether_metrics_t *registry, const tether_metric_def_t *def,
                                  tether_metric_series_t **series)
{
    tether_metric_t *metric = NULL;
    tether_status_t rc = tether_metrics_add(registry, def, &metric);

    *series = tether_metric_series(metric, NULL, NULL);
    return rc;
}

tether_status_t tether_gate_monitor_open(tether_gate_monitor_t *monitor,
                                         tether_gate_revocations_t *revocations)
{
    const tether_metric_def_t requests = {
        "tether_gate_requests_total",
        "Requests by outcome (refused: by authorization or a ceiling; failed: upstream not "
        "reached; answered: upstream's answer passed on) and code (the refusal's or failure's "
        "code, or the upstream status class).",
        TETHER_METRIC_COUNTER, {"outcome", "code"}, NULL, 0, REQUEST_SERIES_MAX};
    const tether_metric_def_t spend = {
        "tether_gate_spend_micros_total",
        "Spend settled, in millionths of the price table's currency.",
        TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1};
    const tether_metric_def_t tokens = {
        "tether_gate_tokens_total", "Tokens charged, by kind (prompt, completion).",
        TETHER_METRIC_COUNTER, {"kind", NULL}, NULL, 0, 3}; /* the overflow series too */
    const tether_metric_def_t authorization = {
        "tether_gate_authorization_duration_seconds",
        "Time to authorize a request (access token, revocation, DPoP proof).",
        TETHER_METRIC_HISTOGRAM, {NULL}, tether_metrics_duration_buckets,
        tether_metrics_duration_bucket_count, 1};
    const tether_metric_def_t upstream = {
        "tether_gate_upstream_duration_seconds",
        "Time from the ceilings' check to the end of the upstream's answer, streams included.",
        TETHER_METRIC_HISTOGRAM, {NULL}, tether_metrics_duration_buckets,
        tether_metrics_duration_bucket_count, 1};
    const tether_metric_def_t feed_age = {
        "tether_gate_revocation_feed_age_seconds",
        "Seconds since the fleet's revocation feed was last reached (-1: never).",
        TETHER_METRIC_GAUGE, {NULL}, NULL, 0, 1};
    tether_status_t rc;

    if (monitor == NULL || revocations == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    monitor->revocations = revocations;
    if ((rc = tether_metrics_add(&monitor->registry, &requests, &monitor->requests)) !=
            TETHER_OK ||
        (rc = add_series(&monitor->registry, &spend, &monitor->spend)) != TETHER_OK ||
        (rc = tether_metrics_add(&monitor->registry, &tokens, &monitor->tokens)) != TETHER_OK ||
        (rc = add_series(&monitor->registry, &authorization, &monitor->authorization_seconds)) !=
            TETHER_OK ||
        (rc = add_series(&monitor->registry, &upstream, &monitor->upstream_seconds)) !=
            TETHER_OK)
        return rc;
    return add_series(&monitor->registry, &feed_age, &monitor->feed_age);
}

void tether_gate_monitor_free(tether_gate_monitor_t *monitor)
{
    if (monitor == NULL)
        return;
    tether_metrics_free(&monitor->registry);
    memset(monitor, 0, sizeof(*monitor));
}

void tether_gate_monitor_authorized(tether_gate_monitor_t *monitor, double seconds)
{
    if (monitor != NULL)
        tether_metric_observe(monitor->authorization_seconds, seconds);
}

/* The usage line: one JSON object on standard output (stdio locks the
 * stream, so lines from several threads never interleave). */
static void usage_line(const char *device, const char *jti, const char *model, const char *path,
                       unsigned status, const char *code, uint64_t prompt_tokens,
                       uint64_t completion_tokens, uint64_t cost, double seconds)
{
    char ts[32];
    struct tm tm;
    time_t now = time(NULL);
    cJSON *line = cJSON_CreateObject();
    char *text = NULL;

    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (line == NULL || cJSON_AddStringToObject(line, "ts", ts) == NULL ||
        cJSON_AddStringToObject(line, "event", "usage") == NULL ||
        (device != NULL ? cJSON_AddStringToObject(line, "device", device)
                        : cJSON_AddNullToObject(line, "device")) == NULL ||
        (jti != NULL ? cJSON_AddStringToObject(line, "jti", jti)
                     : cJSON_AddNullToObject(line, "jti")) == NULL ||
        (model != NULL ? cJSON_AddStringToObject(line, "model", model)
                       : cJSON_AddNullToObject(line, "model")) == NULL ||
        cJSON_AddStringToObject(line, "path", path) == NULL ||
        cJSON_AddNumberToObject(line, "status", status) == NULL ||
        cJSON_AddNumberToObject(line, "prompt_tokens", (double)prompt_tokens) == NULL ||
        cJSON_AddNumberToObject(line, "completion_tokens", (double)completion_tokens) == NULL ||
        cJSON_AddNumberToObject(line, "cost_micros", (double)cost) == NULL ||
        cJSON_AddNumberToObject(line, "latency_ms", seconds * 1000.0) == NULL ||
        (code != NULL ? cJSON_AddStringToObject(line, "refusal", code)
                      : cJSON_AddNullToObject(line, "refusal")) == NULL ||
        (text = cJSON_PrintUnformatted(line)) == NULL) {
        tether_warn("usage", "cannot write the usage line of a request (out of memory)");
    } else {
        flockfile(stdout);
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        funlockfile(stdout);
    }
    cJSON_free(text);
    cJSON_Delete(line);
}

void tether_gate_monitor_refused(tether_gate_monitor_t *monitor, const char *path,
                                 const tether_gate_refusal_t *refusal, double seconds)
{
    if (monitor == NULL || refusal == NULL)
        return;
    tether_metric_add(tether_metric_series(monitor->requests, "refused", refusal->tether_error),
                      1);
    tether_metric_observe(monitor->authorization_seconds, seconds);
    usage_line(NULL, NULL, NULL, path, refusal->status, refusal->tether_error, 0, 0, 0, seconds);
}

/* The upstream status class as a fixed label value. */
static const char *status_class(unsigned status)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

    return status >= 100 && status <= 599 ? classes[status / 100 - 1] : "other";
}

void tether_gate_monitor_outcome(void *arg, const tether_gate_outcome_t *outcome)
{
    tether_gate_monitor_t *monitor = arg;
    tether_gate_usage_kind_t usage;
    const char *kind;
    bool charged;

    if (monitor == NULL || outcome == NULL)
        return;
    charged = outcome->settled;
    /* failed: the gateway could not reach upstream or answer; refused: a
     * decision about the request (a ceiling, its body, its method). */
    if (outcome->code == NULL)
        kind = "answered";
    else if (strncmp(outcome->code, "upstream_", 9) == 0 ||
             strcmp(outcome->code, "server_error") == 0)
        kind = "failed";
    else
        kind = "refused";
    tether_metric_add(tether_metric_series(monitor->requests, kind,
                                           outcome->code != NULL ? outcome->code
                                                                 : status_class(outcome->status)),
                      1);
    if (charged) {
        tether_metric_add(monitor->spend, outcome->cost);
        tether_metric_add(tether_metric_series(monitor->tokens, "prompt", NULL),
                          outcome->prompt_tokens);
        tether_metric_add(tether_metric_series(monitor->tokens, "completion", NULL),
                          outcome->completion_tokens);
    }
    if (outcome->code == NULL || strncmp(outcome->code, "upstream_", 9) == 0)
        tether_metric_observe(monitor->upstream_seconds, outcome->seconds);
    /* The fleet's usage per token: passed the ceilings (answered or
     * failed) or refused by one, with what was charged; a model outside
     * the allow lists is counted on its own too. */
    if (strcmp(kind, "refused") != 0)
        usage = TETHER_GATE_USAGE_FORWARDED;
    else if (strcmp(outcome->code, TETHER_GATE_CODE_MODEL_NOT_ALLOWED) == 0)
        usage = TETHER_GATE_USAGE_REFUSED_MODEL;
    else
        usage = TETHER_GATE_USAGE_REFUSED;
    if (outcome->device != NULL && outcome->jti != NULL)
        tether_gate_usage_reporter_count(monitor->usage, outcome->device, outcome->jti, usage,
                                         charged ? outcome->prompt_tokens : 0,
                                         charged ? outcome->completion_tokens : 0,
                                         charged ? outcome->cost : 0,
                                         tether_gate_wall_seconds());
    usage_line(outcome->device, outcome->jti, outcome->model, outcome->path, outcome->status,
               outcome->code, charged ? outcome->prompt_tokens : 0,
               charged ? outcome->completion_tokens : 0, charged ? outcome->cost : 0,
               outcome->seconds);
}

void tether_gate_monitor_handle(tether_gate_monitor_t *monitor, tether_http_response_t *response)
{
    char *text = NULL;
    size_t len = 0;

    tether_metric_gauge_set(monitor->feed_age,
                            tether_gate_revocations_age(monitor->revocations,
                                                        tether_gate_mono_seconds()));
    if (tether_metrics_write(&monitor->registry, &text, &len) != TETHER_OK) {
        tether_http_respond_error(response, 500, "server_error", "out of memory");
        return;
    }
    response->status = 200;
    response->body = text;
    response->content_type = METRICS_MEDIA_TYPE;
}
