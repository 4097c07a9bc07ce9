/*
 * What tether-gate tells its operators: one JSON usage line per request on
 * standard output, and the metrics served at GET /metrics (Prometheus text
 * format 0.0.4) with the HTTP server's own.
 *
 * A usage line holds the device, the token's jti, the model, the prompt and
 * completion tokens charged, the cost (micro-units of the price table's
 * currency), the status, the latency and the refusal code; never prompt
 * text, never a token or proof. Metric label values come from fixed lists
 * (outcomes, refusal codes) and are bounded per metric, never request data.
 */
#ifndef TETHER_GATE_MONITOR_H
#define TETHER_GATE_MONITOR_H

#include <stdint.h>

#include "access.h"
#include "revocations.h"
#include "tether/gate/proxy.h"
#include "tether/http_server.h"
#include "tether/metrics.h"
#include "usage_reporter.h"

typedef struct tether_gate_monitor {
    tether_metrics_t registry; /* the HTTP server adds its own metrics to it */
    tether_metric_t *requests;           /* {outcome, code} */
    tether_metric_series_t *spend;
    tether_metric_t *tokens;             /* {kind} */
    tether_metric_series_t *authorization_seconds;
    tether_metric_series_t *upstream_seconds;
    tether_metric_series_t *feed_age;
    tether_gate_revocations_t *revocations; /* borrowed: the feed's age at each scrape */
    tether_gate_usage_reporter_t *usage;    /* borrowed, may be NULL: counts each request of
                                               a token for the fleet's usage reports */
} tether_gate_monitor_t;

void tether_gate_monitor_init(tether_gate_monitor_t *monitor);

/* Registers tether-gate's metrics; the HTTP server registers its own
 * (tether_http_server_metrics_add) when it opens with this registry.
 * revocations must outlive the monitor. */
TETHER_MUST_CHECK tether_status_t tether_gate_monitor_open(tether_gate_monitor_t *monitor,
                                                           tether_gate_revocations_t *revocations);

/* Accepts NULL. */
void tether_gate_monitor_free(tether_gate_monitor_t *monitor);

/* A request that passed authorization, after seconds. */
void tether_gate_monitor_authorized(tether_gate_monitor_t *monitor, double seconds);

/* A request refused by authorization (usage line and counters). */
void tether_gate_monitor_refused(tether_gate_monitor_t *monitor, const char *path,
                                 const tether_gate_refusal_t *refusal, double seconds);

/* A request the proxy handled: tether_gate_outcome_fn over a monitor. It
 * is counted for the usage reports too (monitor->usage). */
void tether_gate_monitor_outcome(void *monitor, const tether_gate_outcome_t *outcome);

/* GET /metrics: the exposition text. */
void tether_gate_monitor_handle(tether_gate_monitor_t *monitor, tether_http_response_t *response);

#endif
