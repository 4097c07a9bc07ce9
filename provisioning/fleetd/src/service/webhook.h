/*
 * Alerts delivered to webhooks (README, "Webhooks"): every alert the store
 * holds gets a delivery row per configured webhook in the transaction that
 * writes it (store_webhooks.h, the webhook outbox); one thread per webhook sends
 * them in alert order as signed JSON, retries with exponential backoff
 * and removes a row only after a 2xx answer. Each attempt is claimed in
 * the store first, so fleetd replicas on one store take turns: one
 * attempt at a time per webhook.
 *
 * The body: {"delivery_id": "WEBHOOK:ALERT_ID", "webhook", "alert": the
 * alert as GET /v1/admin/alerts shows it}. The headers:
 *   Tether-Delivery: WEBHOOK:ALERT_ID (the same on every retry)
 *   Tether-Signature: t=TIMESTAMP,v1=HEX
 * where HEX is HMAC-SHA256(the webhook's secret, TIMESTAMP "." body) in
 * lowercase hex and TIMESTAMP the Unix seconds of this attempt.
 */
#ifndef TETHER_FLEET_WEBHOOK_H
#define TETHER_FLEET_WEBHOOK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fleet_metrics.h"
#include "store.h"
#include "tether/error.h"

#define TETHER_WEBHOOK_SIGNATURE_HEADER "Tether-Signature"
#define TETHER_WEBHOOK_DELIVERY_HEADER "Tether-Delivery"
#define TETHER_WEBHOOK_SECRET_MIN 32  /* bytes of a secret file */
#define TETHER_WEBHOOK_SECRET_MAX 256
/* "t=" 20 digits ",v1=" 64 hex digits and the NUL. */
#define TETHER_WEBHOOK_SIGNATURE_SIZE 96
/* "WEBHOOK:ALERT_ID" and the NUL. */
#define TETHER_WEBHOOK_DELIVERY_ID_SIZE (TETHER_CONFIG_WEBHOOK_NAME_MAX + 22)
/* Retries: 0.5 s after the first failure, doubling, at most 5 minutes. */
#define TETHER_WEBHOOK_BACKOFF_FIRST_MS 500u
#define TETHER_WEBHOOK_BACKOFF_CAP_MS (300u * 1000u)
/* How often an idle sender looks for new rows: alerts written by this
 * process wake it at once (tether_webhook_sender_notify), those of other
 * processes (tether-fleetd admin-token) are found by this poll. */
#define TETHER_WEBHOOK_IDLE_POLL_MS 100u
/* A claim lasts one attempt (the webhook's timeout) and this much more for
 * the store's statements around it; a claim whose replica died is taken
 * over when it ends. */
#define TETHER_WEBHOOK_CLAIM_MARGIN_MS 5000u
/* While a webhook keeps failing, a warning at most this often. */
#define TETHER_WEBHOOK_DOWN_LOG_INTERVAL_MS (3600u * 1000u)

/* "t=TIMESTAMP,v1=HEX" over TIMESTAMP "." body into out (at least
 * TETHER_WEBHOOK_SIGNATURE_SIZE bytes). */
TETHER_MUST_CHECK tether_status_t tether_webhook_sign(const uint8_t *secret, size_t secret_len,
                                                      int64_t timestamp, const char *body,
                                                      size_t body_len, char *out,
                                                      size_t out_size);

/* The wait before the next attempt after failures consecutive failures
 * (at least 1): TETHER_WEBHOOK_BACKOFF_FIRST_MS doubled each time, capped
 * at TETHER_WEBHOOK_BACKOFF_CAP_MS. */
uint64_t tether_webhook_backoff_ms(unsigned failures);

/* The body of the delivery of alert to webhook, a malloc'd JSON text
 * (*body, freed by the caller), and its delivery id. */
TETHER_MUST_CHECK tether_status_t tether_webhook_body(const char *webhook,
                                                      const tether_store_alert_t *alert,
                                                      char **body,
                                                      char id[TETHER_WEBHOOK_DELIVERY_ID_SIZE]);

struct tether_webhook_worker;

/*
 * The senders of a running fleetd: init (cannot fail), start, free.
 * Everything given to start is borrowed and must outlive free.
 */
typedef struct tether_webhook_sender {
    struct tether_webhook_worker *workers; /* one per webhook */
    size_t count;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t alerts_written; /* counted by tether_webhook_sender_notify */
    bool stopping;
} tether_webhook_sender_t;

void tether_webhook_sender_init(tether_webhook_sender_t *sender);

/*
 * Checks and reads each webhook's secret file (DIR/secret: a regular file
 * of TETHER_WEBHOOK_SECRET_MIN to _MAX bytes once a final newline is
 * dropped, yours, mode 0600 or stricter) and CA file, logging what is
 * wrong; starts nothing (tether-fleetd check). metrics may be NULL.
 */
TETHER_MUST_CHECK tether_status_t tether_webhook_sender_open(tether_webhook_sender_t *sender,
                                                             const char *dir,
                                                             const tether_fleet_config_t *config,
                                                             tether_fleet_metrics_t *metrics);

/*
 * Makes the configured webhooks the store's (tether_store_webhook_sync:
 * a webhook removed from the configuration loses its waiting deliveries,
 * with a warning), opens them as tether_webhook_sender_open does and
 * starts one thread per webhook. Without webhooks it only syncs. The
 * secrets are never logged.
 */
TETHER_MUST_CHECK tether_status_t tether_webhook_sender_start(
    tether_webhook_sender_t *sender, const char *dir, const tether_fleet_config_t *config,
    tether_store_t *store, tether_fleet_metrics_t *metrics);

/* An alert was written by this process (the store's alert hook; arg is the
 * sender): idle senders look at once instead of at their next poll. */
void tether_webhook_sender_notify(void *arg);

/* Stops and joins the threads (an attempt in flight ends within its
 * timeout), wipes the secrets; accepts NULL and a sender never started. */
void tether_webhook_sender_free(tether_webhook_sender_t *sender);

#endif
