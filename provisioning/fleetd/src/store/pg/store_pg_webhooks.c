/*
 * The PostgreSQL store's webhook outbox (schema version 8): the configured
 * webhooks, and one row per alert and webhook until it is delivered, made
 * by the alerts table's trigger in the transaction that writes the alert.
 * The rules are SQLite's (store_sqlite_webhooks.c).
 *
 * Replicas share the outbox: a sender claims the oldest row of its webhook
 * before sending it (schema version 16), in one UPDATE: PostgreSQL locks
 * the row, and a replica whose UPDATE waited on another's claim finds the
 * row claimed when it reads it again (READ COMMITTED), so it claims
 * nothing. A claim ends when the row is delivered (it goes), at the
 * failed attempt's backoff, or at its lease (its replica died: another one
 * sends it again, with the same delivery id, README "Webhooks").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"

typedef struct webhook_sync {
    const char *json;
    int64_t now;
    uint64_t dropped;
} webhook_sync_t;

static tether_status_t webhook_sync_tx(tether_pg_t *db, void *arg)
{
    static const char drop_deliveries[] =
        "DELETE FROM webhook_outbox WHERE webhook NOT IN "
        "(SELECT json_array_elements_text($1::json))";
    static const char drop_webhooks[] = "DELETE FROM webhooks WHERE name NOT IN "
                                        "(SELECT json_array_elements_text($1::json))";
    static const char add_webhooks[] =
        "INSERT INTO webhooks (name, created_at) SELECT json_array_elements_text($2::json), $1 "
        "ON CONFLICT (name) DO NOTHING";
    webhook_sync_t *w = arg;
    tether_status_t rc;

    w->dropped = 0;
    rc = tether_pg_run(db, "drop deliveries of removed webhooks", drop_deliveries,
                       PG_ARGS(PG_TEXT(w->json)), &w->dropped);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "drop removed webhooks", drop_webhooks, PG_ARGS(PG_TEXT(w->json)),
                           NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "add webhooks", add_webhooks,
                           PG_ARGS(PG_INT(w->now), PG_TEXT(w->json)), NULL);
    return rc;
}

tether_status_t tether_pg_webhook_sync(void *impl, const char *const *names, size_t count,
                                       int64_t now, uint64_t *dropped)
{
    webhook_sync_t w = {NULL, now, 0};
    char *json = NULL;
    tether_status_t rc;

    if (dropped != NULL)
        *dropped = 0;
    if (dropped == NULL || (names == NULL && count > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_store_webhook_names_json(names, count, &json)) != TETHER_OK)
        return rc;
    w.json = json;
    rc = tether_pg_transaction(impl, "sync webhooks", webhook_sync_tx, &w);
    if (rc == TETHER_OK)
        *dropped = w.dropped;
    free(json);
    return rc;
}

typedef struct next_call {
    tether_store_delivery_cb cb;
    void *arg;
} next_call_t;

static tether_status_t next_row(void *arg, const tether_pg_row_t *row)
{
    next_call_t *call = arg;
    tether_store_delivery_t d;
    tether_status_t rc;

    memset(&d, 0, sizeof(d));
    rc = tether_pg_page_columns(row, &d.alert.id, d.alert.device_id, &d.alert.kind,
                                &d.alert.details_json, &d.alert.created_at);
    d.created_ms = tether_pg_int64(row, 5);
    if (rc == TETHER_OK)
        call->cb(call->arg, &d);
    return rc;
}

tether_status_t tether_pg_webhook_claim(void *impl, const char *webhook, int64_t now_ms,
                                        int64_t lease_ms, tether_store_delivery_cb cb, void *arg)
{
    /* In alert order: a receiver sees a webhook's alerts as they were
     * written, so only the oldest row is claimed, and only once its last
     * claim has ended. Outside a transaction: the statement is READ
     * COMMITTED, which re-checks claimed_until on a row another replica
     * claimed while this one waited for its lock. */
    static const char sql[] =
        "UPDATE webhook_outbox o SET claimed_until = $3 FROM alerts a"
        " WHERE o.webhook = $1 AND o.claimed_until <= $2 AND a.id = o.alert_id"
        " AND o.alert_id = (SELECT min(alert_id) FROM webhook_outbox WHERE webhook = $1)"
        " RETURNING a.id, a.device_id, a.kind, a.details, a.created_at, o.created_ms";
    next_call_t call = {cb, arg};

    if (webhook == NULL || cb == NULL || lease_ms < 0 || now_ms > INT64_MAX - lease_ms)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_query_once(impl, "claim a webhook delivery", sql,
                                PG_ARGS(PG_TEXT(webhook), PG_INT(now_ms), PG_INT(now_ms + lease_ms)),
                                next_row, &call);
}

tether_status_t tether_pg_webhook_retry_at(void *impl, const char *webhook, int64_t alert_id,
                                           int64_t until_ms)
{
    static const char sql[] =
        "UPDATE webhook_outbox SET claimed_until = $1 WHERE webhook = $2 AND alert_id = $3";
    uint64_t changed = 0;
    tether_status_t rc;

    if (webhook == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_run_once(impl, "hold a failed webhook delivery", sql,
                            PG_ARGS(PG_INT(until_ms), PG_TEXT(webhook), PG_INT(alert_id)),
                            &changed);
    return rc == TETHER_OK && changed == 0 ? TETHER_ERR_NOT_FOUND : rc;
}

tether_status_t tether_pg_webhook_delivered(void *impl, const char *webhook, int64_t alert_id)
{
    static const char sql[] = "DELETE FROM webhook_outbox WHERE webhook = $1 AND alert_id = $2";
    uint64_t changed = 0;
    tether_status_t rc;

    if (webhook == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_run_once(impl, "mark a webhook delivery done", sql,
                            PG_ARGS(PG_TEXT(webhook), PG_INT(alert_id)), &changed);
    return rc == TETHER_OK && changed == 0 ? TETHER_ERR_NOT_FOUND : rc;
}

static tether_status_t pending_row(void *arg, const tether_pg_row_t *row)
{
    tether_store_webhook_pending_t *pending = arg;

    pending->count = (uint64_t)tether_pg_int64(row, 0);
    pending->oldest_ms = tether_pg_int64(row, 1);
    return TETHER_OK;
}

tether_status_t tether_pg_webhook_pending(void *impl, const char *webhook,
                                          tether_store_webhook_pending_t *pending)
{
    static const char sql[] = "SELECT count(*), coalesce(min(created_ms), 0)"
                              " FROM webhook_outbox WHERE webhook = $1";

    if (pending != NULL)
        memset(pending, 0, sizeof(*pending));
    if (webhook == NULL || pending == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_query_once(impl, "count the webhook outbox", sql, PG_ARGS(PG_TEXT(webhook)),
                                pending_row, pending);
}
