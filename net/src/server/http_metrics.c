/* The metrics every server on this layer exports (http_server.h). */
#include <string.h>

#include "tether/http_server.h"

#define ROUTES_MAX 64 /* endpoints of one server, "unmatched" and the overflow */
#define STATUS_CLASSES 6 /* none, 1xx-5xx */

tether_status_t tether_http_server_metrics_add(tether_metrics_t *registry,
                                               tether_http_server_metrics_t *out)
{
    const tether_metric_def_t requests = {
        "tether_http_requests_total", "HTTP requests answered, by route and status class.",
        TETHER_METRIC_COUNTER, {"route", "status_class"}, NULL, 0, ROUTES_MAX * STATUS_CLASSES};
    const tether_metric_def_t duration = {
        "tether_http_request_duration_seconds",
        "Time from a request's first line to its answer sent, by route.",
        TETHER_METRIC_HISTOGRAM, {"route", NULL}, tether_metrics_duration_buckets,
        tether_metrics_duration_bucket_count, ROUTES_MAX};
    const tether_metric_def_t open = {"tether_http_connections_open", "Open connections.",
                                      TETHER_METRIC_GAUGE, {NULL}, NULL, 0, 1};
    const tether_metric_def_t refused = {
        "tether_http_connections_refused_total",
        "Connections closed by the server's limits: per_source (over "
        "max_connections_per_source), head_deadline (no complete request head in time).",
        TETHER_METRIC_COUNTER, {"reason", NULL}, NULL, 0, 3};
    const tether_metric_def_t parked = {"tether_http_long_polls_waiting",
                                        "Long polls waiting for their answer.",
                                        TETHER_METRIC_GAUGE, {NULL}, NULL, 0, 1};
    const tether_metric_def_t sessions = {
        "tether_http_tls_sessions_total",
        "TLS connections that carried a request, by handshake: full, or resumed from a "
        "session ticket.",
        TETHER_METRIC_COUNTER, {"handshake", NULL}, NULL, 0, 3};
    tether_metric_t *open_metric = NULL, *refused_metric = NULL, *parked_metric = NULL;
    tether_metric_t *sessions_metric = NULL;
    tether_status_t rc;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (registry == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_metrics_add(registry, &requests, &out->requests)) != TETHER_OK ||
        (rc = tether_metrics_add(registry, &duration, &out->duration)) != TETHER_OK ||
        (rc = tether_metrics_add(registry, &open, &open_metric)) != TETHER_OK ||
        (rc = tether_metrics_add(registry, &refused, &refused_metric)) != TETHER_OK ||
        (rc = tether_metrics_add(registry, &parked, &parked_metric)) != TETHER_OK ||
        (rc = tether_metrics_add(registry, &sessions, &sessions_metric)) != TETHER_OK)
        goto out;
    out->connections_open = tether_metric_series(open_metric, NULL, NULL);
    out->long_polls_waiting = tether_metric_series(parked_metric, NULL, NULL);
    /* Both reasons from the start, so that a dashboard sees zeros. */
    out->refused_per_source = tether_metric_series(refused_metric, "per_source", NULL);
    out->closed_head_deadline = tether_metric_series(refused_metric, "head_deadline", NULL);
    out->tls_full = tether_metric_series(sessions_metric, "full", NULL);
    out->tls_resumed = tether_metric_series(sessions_metric, "resumed", NULL);
out:
    if (rc != TETHER_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
