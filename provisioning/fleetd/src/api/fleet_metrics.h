/*
 * tether-fleetd's metrics and GET /metrics (Prometheus text format 0.0.4).
 * One registry per running fleetd: the HTTP layer's own metrics
 * (tether/http_server.h) and the fleet's:
 *
 *   tether_fleetd_exchanges_total{outcome}     POST /v1/token answers: issued,
 *       retry (the same token again), or the refusal's tether_error
 *   tether_fleetd_challenges_total{outcome}    POST /v1/challenge: issued or
 *       the refusal's tether_error
 *   tether_fleetd_enrolments_total{step,outcome}  step enroll or activate;
 *       outcome ok or the refusal's error code
 *   tether_fleetd_tokens_issued_total          new access tokens signed
 *   tether_fleetd_clone_alerts_total{signal}   counter_not_increasing,
 *       clock_regression
 *   tether_fleetd_revocations_total            revocation feed entries
 *       committed by this fleetd (revoke, quarantine, clone)
 *   tether_fleetd_store_transaction_duration_seconds{operation}
 *   tether_fleetd_webhook_deliveries_total{webhook,outcome}  delivery attempts:
 *       delivered (2xx), refused (another status), failed (no answer)
 *   tether_fleetd_webhook_outbox_deliveries{webhook}  deliveries waiting
 *   tether_fleetd_webhook_delivery_latency_seconds{webhook}  from the
 *       alert's write to its 2xx
 *   tether_fleetd_devices{status}              devices by status (allowed,
 *       pending, active, revoked, quarantined): counted in the store at most
 *       every TETHER_FLEET_DEVICE_COUNT_SECONDS, by the scrape that finds
 *       the last count older (one pass over the devices a minute at most,
 *       none while nobody scrapes)
 *   process_start_time_seconds, tether_fleetd_build_info{version}
 *
 * Who may read them: the route table's entry (an admin token with the read
 * role), never the public.
 */
#ifndef TETHER_FLEET_METRICS_H
#define TETHER_FLEET_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "route.h"
#include "store.h"
#include "tether/error.h"
#include "tether/metrics.h"

typedef struct tether_fleet_metrics {
    tether_metrics_t registry;
    tether_metric_t *exchanges;
    tether_metric_t *challenges;
    tether_metric_t *enrolments;
    tether_metric_t *clone_alerts;
    tether_metric_series_t *tokens_issued;
    tether_metric_series_t *revocations;
    tether_metric_t *store_transaction_seconds; /* also the store's (store.h) */
    tether_metric_t *webhook_deliveries;        /* webhook.h counts into these */
    tether_metric_t *webhook_outbox;
    tether_metric_t *webhook_latency;
    tether_metric_t *devices;
    tether_metric_t *purged_rows; /* by table; the retention purge counts into it */
    pthread_mutex_t devices_lock; /* one count at a time; guards devices_counted_ms */
    int64_t devices_counted_ms;   /* CLOCK_MONOTONIC ms of the last count; 0: none yet */
} tether_fleet_metrics_t;

#define TETHER_FLEET_DEVICE_COUNT_SECONDS 60

/* Cannot fail. */
void tether_fleet_metrics_init(tether_fleet_metrics_t *metrics);

/* Registers every fleet metric; start_time is the process's (Unix
 * seconds). The HTTP layer registers its own when the server opens. */
TETHER_MUST_CHECK tether_status_t tether_fleet_metrics_open(tether_fleet_metrics_t *metrics,
                                                            int64_t start_time);

/* Registers the PostgreSQL store's pool metrics (after
 * tether_fleet_metrics_open, so that only a fleetd with a pool exports
 * them) and fills pool with them, for tether_store_set_pool_metrics. */
TETHER_MUST_CHECK tether_status_t tether_fleet_metrics_store_pool(
    tether_fleet_metrics_t *metrics, tether_store_pool_metrics_t *pool);

/* Accepts NULL. */
void tether_fleet_metrics_free(tether_fleet_metrics_t *metrics);

/* Counts one answer of metric (a NULL metrics or metric counts nothing). */
void tether_fleet_metrics_count(tether_metric_t *metric, const char *value0, const char *value1);

/* GET /metrics, routed by router.c; the registry is call->router->metrics. */
void tether_fleet_metrics_handle(tether_route_call_t *call);

#endif
