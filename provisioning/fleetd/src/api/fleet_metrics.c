/* tether-fleetd's metrics (fleet_metrics.h). */
#include "fleet_metrics.h"

#include <string.h>
#include <time.h>

#include "tether/fleet_vocabulary.h"
#include "tether/log.h"

#ifndef TETHER_VERSION
#error "TETHER_VERSION is defined by the build"
#endif

/* The exposition format's media type (Prometheus text format 0.0.4). */
#define METRICS_MEDIA_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Label sets: tether_error codes of the exchange are a fixed list (about
 * 25); enrolment codes likewise. The bound only guards against a mistake. */
#define OUTCOMES_MAX 48
/* Webhooks: at most fleetd.conf's TETHER_CONFIG_MAX_WEBHOOKS. */
#define WEBHOOKS_MAX 8
/* The PostgreSQL store's transactions by name (about 20). */
#define STORE_TRANSACTIONS_MAX 32

void tether_fleet_metrics_init(tether_fleet_metrics_t *metrics)
{
    if (metrics == NULL)
        return;
    memset(metrics, 0, sizeof(*metrics));
    tether_metrics_init(&metrics->registry);
    metrics->devices_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
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

tether_status_t tether_fleet_metrics_open(tether_fleet_metrics_t *metrics, int64_t start_time)
{
    const tether_metric_def_t exchanges = {
        "tether_fleetd_exchanges_total",
        "Token exchanges (POST /v1/token) by outcome: issued, retry, or the tether_error of "
        "the refusal.",
        TETHER_METRIC_COUNTER, {"outcome", NULL}, NULL, 0, OUTCOMES_MAX};
    const tether_metric_def_t challenges = {
        "tether_fleetd_challenges_total",
        "Challenges (POST /v1/challenge) by outcome: issued, or the tether_error of the "
        "refusal.",
        TETHER_METRIC_COUNTER, {"outcome", NULL}, NULL, 0, OUTCOMES_MAX};
    const tether_metric_def_t enrolments = {
        "tether_fleetd_enrolments_total",
        "Enrolment requests by step (enroll, activate) and outcome: ok, or the error code of "
        "the refusal.",
        TETHER_METRIC_COUNTER, {"step", "outcome"}, NULL, 0, OUTCOMES_MAX};
    const tether_metric_def_t tokens = {"tether_fleetd_tokens_issued_total",
                                        "New access tokens signed (retries not included).",
                                        TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1};
    const tether_metric_def_t clones = {
        "tether_fleetd_clone_alerts_total",
        "Clone alerts raised by the exchange (the device quarantined), by signal.",
        TETHER_METRIC_COUNTER, {"signal", NULL}, NULL, 0, 3};
    const tether_metric_def_t revocations = {
        "tether_fleetd_revocations_total",
        "Revocation feed entries committed by this fleetd (revoke, quarantine, clone).",
        TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1};
    const tether_metric_def_t store = {
        "tether_fleetd_store_transaction_duration_seconds",
        "Duration of the store's write transactions, commit included, by operation.",
        TETHER_METRIC_HISTOGRAM, {"operation", NULL}, tether_metrics_duration_buckets,
        tether_metrics_duration_bucket_count, 8};
    const tether_metric_def_t deliveries = {
        "tether_fleetd_webhook_deliveries_total",
        "Alert delivery attempts to webhooks, by webhook and outcome: delivered (2xx), "
        "refused (another status), failed (no answer: network, TLS, timeout).",
        TETHER_METRIC_COUNTER, {"webhook", "outcome"}, NULL, 0, 3 * WEBHOOKS_MAX};
    const tether_metric_def_t outbox = {
        "tether_fleetd_webhook_outbox_deliveries",
        "Alert deliveries waiting in the outbox, by webhook: it grows while a webhook is down.",
        TETHER_METRIC_GAUGE, {"webhook", NULL}, NULL, 0, WEBHOOKS_MAX};
    const tether_metric_def_t latency = {
        "tether_fleetd_webhook_delivery_latency_seconds",
        "From an alert's write to its webhook's 2xx answer, by webhook.",
        TETHER_METRIC_HISTOGRAM, {"webhook", NULL}, tether_metrics_duration_buckets,
        tether_metrics_duration_bucket_count, WEBHOOKS_MAX};
    const tether_metric_def_t devices = {
        "tether_fleetd_devices",
        "Devices by status, as counted in the store at most once a minute (at a scrape).",
        TETHER_METRIC_GAUGE, {"status", NULL}, NULL, 0,
        TETHER_STORE_DEVICE_STATUSES + 1 /* the overflow series */};
    const tether_metric_def_t purged = {
        "tether_fleetd_purged_rows_total",
        "Rows the retention purge deleted, by table (README, \"Retention\").",
        TETHER_METRIC_COUNTER, {"table", NULL}, NULL, 0, TETHER_STORE_PURGE_TABLES + 1};
    const tether_metric_def_t start = {"process_start_time_seconds",
                                       "Start time of the process since the Unix epoch, in "
                                       "seconds.",
                                       TETHER_METRIC_GAUGE, {NULL}, NULL, 0, 1};
    const tether_metric_def_t build = {"tether_fleetd_build_info",
                                       "The running tether-fleetd's version; always 1.",
                                       TETHER_METRIC_GAUGE, {"version", NULL}, NULL, 0, 2};
    tether_metric_t *build_metric = NULL;
    tether_metric_series_t *series = NULL;
    tether_status_t rc;

    if (metrics == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_metrics_add(&metrics->registry, &exchanges, &metrics->exchanges)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &challenges, &metrics->challenges)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &enrolments, &metrics->enrolments)) !=
            TETHER_OK ||
        (rc = add_series(&metrics->registry, &tokens, &metrics->tokens_issued)) != TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &clones, &metrics->clone_alerts)) !=
            TETHER_OK ||
        (rc = add_series(&metrics->registry, &revocations, &metrics->revocations)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &store,
                                 &metrics->store_transaction_seconds)) != TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &deliveries,
                                 &metrics->webhook_deliveries)) != TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &outbox, &metrics->webhook_outbox)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &latency, &metrics->webhook_latency)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &devices, &metrics->devices)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &purged, &metrics->purged_rows)) !=
            TETHER_OK ||
        (rc = add_series(&metrics->registry, &start, &series)) != TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &build, &build_metric)) != TETHER_OK)
        return rc;
    tether_metric_gauge_set(series, start_time);
    tether_metric_gauge_set(tether_metric_series(build_metric, TETHER_VERSION, NULL), 1);
    /* Series appear at their first use; these from the start, so that
     * rates and alerts see zeros rather than nothing. */
    (void)tether_metric_series(metrics->exchanges, "issued", NULL);
    (void)tether_metric_series(metrics->clone_alerts, "counter_not_increasing", NULL);
    (void)tether_metric_series(metrics->clone_alerts, "clock_regression", NULL);
    for (int t = 0; t < TETHER_STORE_PURGE_TABLES; t++)
        (void)tether_metric_series(metrics->purged_rows,
                                   tether_store_purge_table_name((tether_store_purge_table_t)t),
                                   NULL);
    return TETHER_OK;
}

tether_status_t tether_fleet_metrics_store_pool(tether_fleet_metrics_t *metrics,
                                                tether_store_pool_metrics_t *pool)
{
    const tether_metric_def_t connections = {
        "tether_fleetd_store_connections",
        "PostgreSQL store: the pool's connections by state, in_use (running an operation) or "
        "idle.",
        TETHER_METRIC_GAUGE, {"state", NULL}, NULL, 0, 2 + 1 /* the overflow series */};
    const tether_metric_def_t pool_size = {
        "tether_fleetd_store_pool_size",
        "PostgreSQL store: connections the pool opened (server threads + background work).",
        TETHER_METRIC_GAUGE, {NULL}, NULL, 0, 1};
    const tether_metric_def_t waits = {
        "tether_fleetd_store_connection_waits_total",
        "PostgreSQL store: operations that found every connection in use and waited for one.",
        TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1};
    const tether_metric_def_t retries = {
        "tether_fleetd_store_retries_total",
        "PostgreSQL store: transaction attempts lost to a serialization failure or a deadlock "
        "(a concurrent transaction, on this replica or another) and tried again, by "
        "transaction.",
        TETHER_METRIC_COUNTER, {"operation", NULL}, NULL, 0, STORE_TRANSACTIONS_MAX};
    tether_metric_t *connections_metric = NULL, *size_metric = NULL, *waits_metric = NULL,
                    *retries_metric = NULL;
    tether_status_t rc;

    memset(pool, 0, sizeof(*pool));
    if (metrics == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_metrics_add(&metrics->registry, &connections, &connections_metric)) !=
            TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &pool_size, &size_metric)) != TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &waits, &waits_metric)) != TETHER_OK ||
        (rc = tether_metrics_add(&metrics->registry, &retries, &retries_metric)) != TETHER_OK)
        return rc;
    pool->in_use = tether_metric_series(connections_metric, "in_use", NULL);
    pool->idle = tether_metric_series(connections_metric, "idle", NULL);
    pool->size = tether_metric_series(size_metric, NULL, NULL);
    pool->waits = tether_metric_series(waits_metric, NULL, NULL);
    pool->retries = retries_metric;
    /* From the start, so that a rate sees zeros rather than nothing. */
    (void)tether_metric_series(retries_metric, "record exchanges", NULL);
    return TETHER_OK;
}

void tether_fleet_metrics_free(tether_fleet_metrics_t *metrics)
{
    if (metrics == NULL)
        return;
    tether_metrics_free(&metrics->registry);
    pthread_mutex_destroy(&metrics->devices_lock);
    memset(metrics, 0, sizeof(*metrics));
}

void tether_fleet_metrics_count(tether_metric_t *metric, const char *value0, const char *value1)
{
    tether_metric_add(tether_metric_series(metric, value0, value1), 1);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* tether_fleetd_devices, counted again when the last count is older than
 * TETHER_FLEET_DEVICE_COUNT_SECONDS: a count reads every device, which a
 * scrape every few seconds on a large fleet must not repeat. A failed
 * count keeps the last values (logged); the scrape still answers. */
static void devices_refresh(tether_fleet_metrics_t *metrics, tether_store_t *store)
{
    uint64_t counts[TETHER_STORE_DEVICE_STATUSES];
    int64_t now = monotonic_ms();
    tether_status_t rc;

    pthread_mutex_lock(&metrics->devices_lock);
    if (metrics->devices_counted_ms != 0 &&
        now - metrics->devices_counted_ms < TETHER_FLEET_DEVICE_COUNT_SECONDS * 1000)
        goto out;
    if ((rc = tether_store_device_counts(store, counts)) != TETHER_OK) {
        tether_error("metrics", "counting the devices by status failed: %s",
                     tether_strerror(rc));
        goto out;
    }
    for (int status = 0; status < TETHER_STORE_DEVICE_STATUSES; status++)
        tether_metric_gauge_set(
            tether_metric_series(metrics->devices,
                                 tether_device_status_name((tether_device_status_t)status), NULL),
            (int64_t)counts[status]);
    metrics->devices_counted_ms = now;
out:
    pthread_mutex_unlock(&metrics->devices_lock);
}

void tether_fleet_metrics_handle(tether_route_call_t *call)
{
    char *text = NULL;
    size_t len = 0;

    devices_refresh(call->router->metrics, call->router->store);
    if (tether_metrics_write(&call->router->metrics->registry, &text, &len) != TETHER_OK) {
        tether_http_respond_error(call->response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                                  "out of memory");
        return;
    }
    call->response->status = 200;
    call->response->body = text;
    call->response->content_type = METRICS_MEDIA_TYPE;
}
