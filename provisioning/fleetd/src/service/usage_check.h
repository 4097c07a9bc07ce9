/*
 * The usage_unreported check on a thread of fleetd's (store_usage.h,
 * tether_store_usage_unreported_check): every TETHER_USAGE_CHECK_SECONDS,
 * tokens that gateways used and whose device stopped exchanging before
 * they expired are alerted once the grace period (one token lifetime) has
 * passed. Then, on the same thread and so always after the check, the
 * retention purge (retention.h): batches until nothing is past its
 * retention, a pause between two, for at most TETHER_USAGE_CHECK_SECONDS;
 * a pass cut short with rows left is followed at once by the next check
 * and pass. Caller-owned: init / start / free.
 */
#ifndef TETHER_FLEET_USAGE_CHECK_H
#define TETHER_FLEET_USAGE_CHECK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "retention.h"
#include "store.h"
#include "tether/metrics.h"

#define TETHER_USAGE_CHECK_SECONDS 15

typedef struct tether_usage_check {
    tether_store_t *store; /* outlives the check */
    int64_t grace;         /* seconds after a token's exp (and the gateways' leeway) */
    tether_retention_t retention;
    tether_metric_t *purged_rows; /* rows purged by table; NULL: not counted */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool running; /* the thread was created and not yet joined */
    pthread_t thread;
} tether_usage_check_t;

/* Cannot fail; leaves a check that _free accepts. */
void tether_usage_check_init(tether_usage_check_t *check);

/* Starts the thread (the caller has blocked the signals it handles).
 * retention is copied; purged_rows (may be NULL) outlives the check.
 * TETHER_ERR_IO when the thread cannot be made. */
TETHER_MUST_CHECK tether_status_t tether_usage_check_start(tether_usage_check_t *check,
                                                           tether_store_t *store, int64_t grace,
                                                           const tether_retention_t *retention,
                                                           tether_metric_t *purged_rows);

/* Stops the thread (a check under way ends first) and waits for it; accepts
 * a check that was only initialised. */
void tether_usage_check_free(tether_usage_check_t *check);

#endif
