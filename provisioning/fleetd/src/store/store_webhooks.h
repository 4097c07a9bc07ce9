/*
 * The store's webhook outbox.
 */
#ifndef TETHER_FLEET_STORE_WEBHOOKS_H
#define TETHER_FLEET_STORE_WEBHOOKS_H

#include "store_alerts.h"
#include "store_types.h"

/* A webhook delivery waiting in the outbox: its alert, and when the alert
 * was written (Unix milliseconds). Strings live as for a listing. */
#define TETHER_STORE_WEBHOOK_NAME_MAX 32 /* bytes of a webhook's name */
typedef struct tether_store_delivery {
    tether_store_alert_t alert;
    int64_t created_ms;
} tether_store_delivery_t;
typedef void (*tether_store_delivery_cb)(void *arg, const tether_store_delivery_t *delivery);

/* A webhook's outbox: deliveries waiting, and when the oldest's alert was
 * written (Unix milliseconds; 0 when none waits). */
typedef struct tether_store_webhook_pending {
    uint64_t count;
    int64_t oldest_ms;
} tether_store_webhook_pending_t;

/*
 * The webhook outbox (schema version 8). Every alert written, by any
 * operation or process, gets one delivery per webhook in the store, in the
 * alert's own transaction; a delivery stays until it is marked delivered.
 */

/* Makes names (count of them, each 1 to TETHER_STORE_WEBHOOK_NAME_MAX
 * bytes) the store's webhooks, in one transaction: new ones are added (they
 * get the alerts written from now on) and every other one is removed with
 * the deliveries it still had, counted in *dropped. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_sync(tether_store_t *store,
                                                            const char *const *names,
                                                            size_t count, int64_t now,
                                                            uint64_t *dropped);
/* The oldest delivery waiting for webhook (by alert id) to cb, which runs
 * with the store locked; TETHER_ERR_NOT_FOUND when none waits. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_next(tether_store_t *store,
                                                            const char *webhook,
                                                            tether_store_delivery_cb cb,
                                                            void *arg);
/* The delivery of alert_id to webhook is done: its row goes.
 * TETHER_ERR_NOT_FOUND when there was none. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_delivered(tether_store_t *store,
                                                                 const char *webhook,
                                                                 int64_t alert_id);
TETHER_MUST_CHECK tether_status_t tether_store_webhook_pending(
    tether_store_t *store, const char *webhook, tether_store_webhook_pending_t *pending);

#endif
