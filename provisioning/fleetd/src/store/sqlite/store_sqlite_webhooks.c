/*
 * The SQLite store's webhook outbox (schema version 8): the configured
 * webhooks, and one row per alert and webhook until it is delivered. The
 * rows are made by the alerts table's trigger, in the transaction that
 * writes the alert; these operations claim (schema version 16), read and
 * remove them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"

tether_status_t tether_sqlite_webhook_sync(void *impl, const char *const *names, size_t count,
                                           int64_t now, uint64_t *dropped)
{
    static const char drop_deliveries[] =
        "DELETE FROM webhook_outbox WHERE webhook NOT IN (SELECT value FROM json_each(?))";
    static const char drop_webhooks[] =
        "DELETE FROM webhooks WHERE name NOT IN (SELECT value FROM json_each(?))";
    static const char add_webhooks[] =
        "INSERT OR IGNORE INTO webhooks (name, created_at) SELECT value, ? FROM json_each(?)";
    sqlite_store_t *s = impl;
    char *json = NULL;
    tether_status_t rc;

    if (dropped != NULL)
        *dropped = 0;
    if (dropped == NULL || (names == NULL && count > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_store_webhook_names_json(names, count, &json)) != TETHER_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    rc = tether_sqlite_run(s, "drop deliveries of removed webhooks", drop_deliveries,
                           SQL_ARGS(SQL_TEXT(json)));
    if (rc == TETHER_OK) {
        *dropped = (uint64_t)sqlite3_changes(s->db);
        rc = tether_sqlite_run(s, "drop removed webhooks", drop_webhooks,
                               SQL_ARGS(SQL_TEXT(json)));
    }
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "add webhooks", add_webhooks,
                               SQL_ARGS(SQL_INT(now), SQL_TEXT(json)));
    rc = tether_sqlite_finish(s, rc);
    if (rc != TETHER_OK)
        *dropped = 0;
out:
    pthread_mutex_unlock(&s->lock);
    free(json);
    return rc;
}

/* The caller's callback and what it answered, for next_row. */
typedef struct next_call {
    tether_store_delivery_cb cb;
    void *arg;
} next_call_t;

static tether_status_t next_row(void *arg, sqlite3_stmt *row)
{
    next_call_t *call = arg;
    tether_store_delivery_t d;
    tether_status_t rc;

    memset(&d, 0, sizeof(d));
    rc = tether_sqlite_page_columns(row, &d.alert.id, d.alert.device_id, &d.alert.kind,
                                    &d.alert.details_json, &d.alert.created_at);
    d.created_ms = sqlite3_column_int64(row, 5);
    if (rc == TETHER_OK)
        call->cb(call->arg, &d);
    return rc;
}

tether_status_t tether_sqlite_webhook_claim(void *impl, const char *webhook, int64_t now_ms,
                                            int64_t lease_ms, tether_store_delivery_cb cb,
                                            void *arg)
{
    /* In alert order: a receiver sees a webhook's alerts as they were
     * written, so only the oldest row is claimed, and only once its last
     * claim has ended. One statement: the claim is whole or not at all. */
    static const char claim[] =
        "UPDATE webhook_outbox SET claimed_until = ?3"
        " WHERE webhook = ?1 AND claimed_until <= ?2"
        " AND alert_id = (SELECT min(alert_id) FROM webhook_outbox WHERE webhook = ?1)";
    static const char read[] =
        "SELECT a.id, a.device_id, a.kind, a.details, a.created_at, o.created_ms"
        " FROM webhook_outbox o JOIN alerts a ON a.id = o.alert_id"
        " WHERE o.webhook = ? ORDER BY o.alert_id LIMIT 1";
    sqlite_store_t *s = impl;
    next_call_t call = {cb, arg};
    tether_status_t rc, durable;

    if (webhook == NULL || cb == NULL || lease_ms < 0 || now_ms > INT64_MAX - lease_ms)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    /* A claim needs no durability: one lost in a crash is taken again after
     * the restart, as a dead sender's would be. So its commit skips the
     * fsync (synchronous NORMAL: in WAL mode it becomes durable with the
     * next FULL commit), which would double a delivery's cost. */
    rc = tether_sqlite_exec(s, "PRAGMA synchronous = NORMAL");
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "claim a webhook delivery", claim,
                               SQL_ARGS(SQL_TEXT(webhook), SQL_INT(now_ms),
                                        SQL_INT(now_ms + lease_ms)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) == 0)
        rc = TETHER_ERR_NOT_FOUND;
    if ((durable = tether_sqlite_exec(s, "PRAGMA synchronous = FULL")) != TETHER_OK)
        rc = durable;
    /* The row claimed is still the oldest: this process's lock is held, and
     * other processes only add alerts. */
    if (rc == TETHER_OK)
        rc = tether_sqlite_query_one(s, "read the webhook outbox", read,
                                     SQL_ARGS(SQL_TEXT(webhook)), next_row, &call);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_webhook_retry_at(void *impl, const char *webhook, int64_t alert_id,
                                               int64_t until_ms)
{
    static const char sql[] =
        "UPDATE webhook_outbox SET claimed_until = ? WHERE webhook = ? AND alert_id = ?";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (webhook == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "hold a failed webhook delivery", sql,
                           SQL_ARGS(SQL_INT(until_ms), SQL_TEXT(webhook), SQL_INT(alert_id)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) == 0)
        rc = TETHER_ERR_NOT_FOUND;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_webhook_delivered(void *impl, const char *webhook, int64_t alert_id)
{
    static const char sql[] = "DELETE FROM webhook_outbox WHERE webhook = ? AND alert_id = ?";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (webhook == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "mark a webhook delivery done", sql,
                           SQL_ARGS(SQL_TEXT(webhook), SQL_INT(alert_id)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) == 0)
        rc = TETHER_ERR_NOT_FOUND;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t pending_row(void *arg, sqlite3_stmt *row)
{
    tether_store_webhook_pending_t *pending = arg;

    pending->count = (uint64_t)sqlite3_column_int64(row, 0);
    pending->oldest_ms = sqlite3_column_int64(row, 1);
    return TETHER_OK;
}

tether_status_t tether_sqlite_webhook_pending(void *impl, const char *webhook,
                                              tether_store_webhook_pending_t *pending)
{
    static const char sql[] = "SELECT count(*), coalesce(min(created_ms), 0)"
                              " FROM webhook_outbox WHERE webhook = ?";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (pending != NULL)
        memset(pending, 0, sizeof(*pending));
    if (webhook == NULL || pending == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "count the webhook outbox", sql, SQL_ARGS(SQL_TEXT(webhook)),
                                 pending_row, pending);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* SQLite's update hook: every row this connection inserts, updated or
 * deleted, from inside the statement. Only an alert's insertion is passed
 * on (its outbox rows come from the same statement's trigger; the outbox
 * itself is WITHOUT ROWID, which the hook does not report). */
static void update_hook(void *arg, int op, const char *database, const char *table,
                        sqlite3_int64 rowid)
{
    sqlite_store_t *s = arg;

    (void)database;
    (void)rowid;
    if (op == SQLITE_INSERT && s->alert_hook != NULL && strcmp(table, "alerts") == 0)
        s->alert_hook(s->alert_hook_arg);
}

void tether_sqlite_set_alert_hook(void *impl, void (*fn)(void *arg), void *arg)
{
    sqlite_store_t *s = impl;

    pthread_mutex_lock(&s->lock);
    s->alert_hook = fn;
    s->alert_hook_arg = arg;
    (void)sqlite3_update_hook(s->db, fn != NULL ? update_hook : NULL, s);
    pthread_mutex_unlock(&s->lock);
}
