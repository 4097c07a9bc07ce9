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
 * A sender claims a delivery before it sends it (schema version 16): every
 * fleetd on the store (replicas) may send, one at a time per webhook.
 */

/* Makes names (count of them, each 1 to TETHER_STORE_WEBHOOK_NAME_MAX
 * bytes) the store's webhooks, in one transaction: new ones are added (they
 * get the alerts written from now on) and every other one is removed with
 * the deliveries it still had, counted in *dropped. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_sync(tether_store_t *store,
                                                            const char *const *names,
                                                            size_t count, int64_t now,
                                                            uint64_t *dropped);
/* Claims the oldest delivery waiting for webhook (by alert id) until
 * now_ms + lease_ms (Unix milliseconds; lease_ms >= 0) and passes it to cb,
 * which runs with the store locked. Only the oldest is ever claimed, so a
 * webhook's alerts go out in order and one at a time, whichever process
 * sends them; a claim is taken in one statement, so two processes never
 * hold the same one. TETHER_ERR_NOT_FOUND when none waits,
 * TETHER_ERR_CONFLICT when the oldest is claimed past now_ms (another
 * process is sending it, or a failed attempt's backoff runs). A claim not
 * followed by webhook_delivered or webhook_retry_at (its process died)
 * ends with its lease. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_claim(tether_store_t *store,
                                                             const char *webhook,
                                                             int64_t now_ms, int64_t lease_ms,
                                                             tether_store_delivery_cb cb,
                                                             void *arg);
/* An attempt at alert_id failed: its claim holds until until_ms (Unix
 * milliseconds, the sender's backoff), then any process may claim it.
 * TETHER_ERR_NOT_FOUND when the row is gone. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_retry_at(tether_store_t *store,
                                                                const char *webhook,
                                                                int64_t alert_id,
                                                                int64_t until_ms);
/* The delivery of alert_id to webhook is done: its row goes.
 * TETHER_ERR_NOT_FOUND when there was none. */
TETHER_MUST_CHECK tether_status_t tether_store_webhook_delivered(tether_store_t *store,
                                                                 const char *webhook,
                                                                 int64_t alert_id);
TETHER_MUST_CHECK tether_status_t tether_store_webhook_pending(
    tether_store_t *store, const char *webhook, tether_store_webhook_pending_t *pending);

#endif
