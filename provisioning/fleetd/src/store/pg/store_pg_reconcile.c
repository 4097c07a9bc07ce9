/*
 * Usage reconciliation on PostgreSQL (schema version 7): the rules of
 * store_sqlite_reconcile.c, inside the transaction of the exchange or of
 * the usage report that brought the newer figure, and the periodic
 * usage_unreported check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"

typedef struct comparison_row {
    tether_store_usage_comparison_t cmp;
    bool alerted;
} comparison_row_t;

static tether_status_t read_comparison(void *arg, const tether_pg_row_t *row)
{
    comparison_row_t *r = arg;
    int64_t proofs = tether_pg_int64(row, 1), requests = tether_pg_int64(row, 2);

    r->cmp.device_made = proofs > requests ? proofs : requests;
    r->cmp.bearer = tether_pg_int64(row, 3);
    r->cmp.final = tether_pg_int64(row, 4) != 0;
    r->cmp.gateway_accepted = tether_pg_int64(row, 5);
    r->alerted = tether_pg_int64(row, 6) != 0;
    return tether_pg_copy_text(row, 0, r->cmp.device_id, sizeof(r->cmp.device_id));
}

/* One alert of kind about a token, which is marked (alerted once per kind). */
static tether_status_t alert_token_tx(tether_pg_t *db, const char *jti, const char *kind,
                                      const char *device_id, const char *details, int64_t now)
{
    tether_status_t rc;

    rc = tether_pg_run(db, "mark usage alerted",
                       "INSERT INTO usage_alerts (jti, kind, created_at) VALUES ($1, $2, $3)",
                       PG_ARGS(PG_TEXT(jti), PG_TEXT(kind), PG_INT(now)), NULL);
    return rc == TETHER_OK ? tether_pg_alert_insert(db, device_id, kind, details, now) : rc;
}

tether_status_t tether_pg_quarantine_tx(tether_pg_t *db, const char *device_id,
                                        const char *reason, int64_t now, bool *quarantined)
{
    static const char status_sql[] = "UPDATE devices SET status = 'quarantined', "
                                     "status_reason = $2, updated_at = $3 "
                                     "WHERE id = $1 AND status = 'active'";
    uint64_t changed = 0;
    tether_status_t rc;

    *quarantined = false;
    rc = tether_pg_run(db, "quarantine device", status_sql,
                       PG_ARGS(PG_TEXT(device_id), PG_TEXT(reason), PG_INT(now)), &changed);
    if (rc == TETHER_OK && changed == 1) {
        *quarantined = true;
        rc = tether_pg_revoke_tokens(db, device_id, reason, now);
    }
    return rc;
}

static tether_status_t compare_tx(tether_pg_t *db, const char *jti,
                                  tether_store_usage_action_t action, int64_t now,
                                  tether_store_usage_comparison_t *cmp, bool *found,
                                  bool *quarantined)
{
    /* As on SQLite: gateway rows received before the nonce of the device's
     * last report; once the count is final, every row. */
    static const char sql[] =
        "SELECT d.device_id, d.proofs, d.requests, d.bearer, d.final,"
        " (SELECT coalesce(sum(u.requests), 0) FROM token_usage u WHERE u.jti = d.jti"
        "  AND (d.final = 1 OR coalesce(u.received_at, 0) < d.nonce_issued_at)),"
        " (EXISTS (SELECT 1 FROM usage_alerts a WHERE a.jti = d.jti"
        "  AND a.kind = '" TETHER_FLEET_ALERT_USAGE_MISMATCH "'))::int"
        " FROM device_usage d WHERE d.jti = $1";
    char reason[TETHER_STORE_REASON_MAX + 1], details[TETHER_STORE_DETAILS_MAX];
    comparison_row_t row;
    tether_status_t rc;

    memset(cmp, 0, sizeof(*cmp));
    *found = false;
    *quarantined = false;
    memset(&row, 0, sizeof(row));
    rc = tether_pg_query_one(db, "compare usage", sql, PG_ARGS(PG_TEXT(jti)), read_comparison,
                             &row);
    if (rc == TETHER_ERR_NOT_FOUND) /* the device has not reported it */
        return TETHER_OK;
    if (rc != TETHER_OK || row.alerted || row.cmp.gateway_accepted <= row.cmp.device_made)
        return rc;
    snprintf(row.cmp.jti, sizeof(row.cmp.jti), "%s", jti);
    *cmp = row.cmp;
    *found = true;
    tether_store_usage_mismatch_text(cmp, action, reason, details);
    rc = alert_token_tx(db, cmp->jti, TETHER_FLEET_ALERT_USAGE_MISMATCH, cmp->device_id, details,
                        now);
    if (rc == TETHER_OK && action == TETHER_STORE_USAGE_QUARANTINE)
        rc = tether_pg_quarantine_tx(db, cmp->device_id, reason, now, quarantined);
    return rc;
}

/* Keeps one token's counts if the fleet issued it to the device; counts
 * only grow. */
static tether_status_t record_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                 const tether_store_device_usage_t *u, int64_t now, bool *kept)
{
    static const char upsert[] =
        "INSERT INTO device_usage (jti, device_id, proofs, requests, bearer, nonce_issued_at,"
        " final, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (jti) DO UPDATE"
        " SET proofs = greatest(device_usage.proofs, excluded.proofs),"
        " requests = greatest(device_usage.requests, excluded.requests),"
        " bearer = greatest(device_usage.bearer, excluded.bearer),"
        " nonce_issued_at = greatest(device_usage.nonce_issued_at, excluded.nonce_issued_at),"
        " final = greatest(device_usage.final, excluded.final),"
        " reported_at = excluded.reported_at";
    int64_t exp = 0;
    tether_status_t rc;

    *kept = false;
    rc = tether_pg_query_one(db, "read issued token",
                             "SELECT exp FROM issued_tokens WHERE jti = $1 AND device_id = $2",
                             PG_ARGS(PG_TEXT(u->jti), PG_TEXT(ex->device_id)),
                             tether_pg_read_int64, &exp);
    if (rc == TETHER_ERR_NOT_FOUND)
        return TETHER_OK;
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "record device usage", upsert,
                           PG_ARGS(PG_TEXT(u->jti), PG_TEXT(ex->device_id), PG_INT(u->proofs),
                                   PG_INT(u->requests), PG_INT(u->bearer),
                                   PG_INT(ex->nonce_issued_at),
                                   PG_INT(ex->nonce_issued_at > exp + TETHER_STORE_USAGE_LEEWAY),
                                   PG_INT(now)),
                           NULL);
    *kept = rc == TETHER_OK;
    return rc;
}

tether_status_t tether_pg_usage_exchange_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                            int64_t now, tether_store_exchange_result_t *result,
                                            bool *quarantined)
{
    tether_status_t rc = TETHER_OK;

    *quarantined = false;
    for (size_t i = 0; rc == TETHER_OK && i < ex->usage_count; i++) {
        tether_store_usage_comparison_t cmp;
        bool kept = false, found = false, now_quarantined = false;

        rc = record_tx(db, ex, &ex->usage[i], now, &kept);
        if (rc != TETHER_OK || !kept)
            continue;
        rc = compare_tx(db, ex->usage[i].jti, ex->usage_action, now, &cmp, &found,
                        &now_quarantined);
        if (found && result->usage_mismatches == 0)
            result->mismatch = cmp;
        result->usage_mismatches += found ? 1 : 0;
        *quarantined = *quarantined || now_quarantined;
    }
    return rc;
}

tether_status_t tether_pg_usage_report_tx(tether_pg_t *db, const char *jti,
                                          tether_store_usage_action_t action, int64_t now,
                                          tether_store_usage_result_t *result)
{
    tether_store_usage_comparison_t cmp;
    bool found = false, quarantined = false;
    tether_status_t rc;

    rc = compare_tx(db, jti, action, now, &cmp, &found, &quarantined);
    result->mismatches += found ? 1 : 0;
    result->quarantined = result->quarantined || quarantined;
    return rc;
}

/* ---- the usage_unreported check ---- */

typedef struct unreported_check {
    int64_t now;
    int64_t grace;
    tether_store_unreported_t found[TETHER_STORE_UNREPORTED_BATCH];
    size_t count;
} unreported_check_t;

static tether_status_t unreported_item(tether_pg_list_t *list, const tether_pg_row_t *row,
                                       bool *stop)
{
    unreported_check_t *check = list->arg;
    tether_store_unreported_t *u = &check->found[check->count];
    tether_status_t rc;

    /* The query's LIMIT is the array's size; this is the array's bound. */
    *stop = check->count + 1 >= TETHER_STORE_UNREPORTED_BATCH;
    if ((rc = tether_pg_copy_text(row, 0, u->jti, sizeof(u->jti))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 1, u->device_id, sizeof(u->device_id))) != TETHER_OK)
        return rc;
    u->exp = tether_pg_int64(row, 2);
    u->last_exchange = tether_pg_int64(row, 3);
    u->gateway_accepted = tether_pg_int64(row, 4);
    check->count++;
    return TETHER_OK;
}

static tether_status_t unreported_tx(tether_pg_t *db, void *arg)
{
    /* As on SQLite: tokens expired (plus leeway and grace) of active
     * devices whose last exchange came before that expiry, within the
     * usage reports' retention. */
    static const char sql[] =
        "SELECT t.jti, t.device_id, t.exp, coalesce(d.last_seen_at, 0), sum(u.requests)"
        " FROM issued_tokens t JOIN token_usage u ON u.jti = t.jti"
        " JOIN devices d ON d.id = t.device_id"
        " WHERE d.status = 'active' AND t.exp < $1::bigint - $2::bigint - $3::bigint"
        " AND t.exp >= $1::bigint - $5::bigint"
        " AND coalesce(d.last_seen_at, 0) <= t.exp + $3"
        " AND NOT EXISTS (SELECT 1 FROM usage_alerts a WHERE a.jti = t.jti"
        "  AND a.kind = '" TETHER_FLEET_ALERT_USAGE_UNREPORTED "')"
        " GROUP BY t.jti, t.device_id, t.exp, d.last_seen_at HAVING sum(u.requests) > 0"
        " ORDER BY t.exp LIMIT $4";
    unreported_check_t *check = arg;
    tether_pg_list_t list = {.read = unreported_item, .arg = check};
    tether_status_t rc;

    check->count = 0;
    rc = tether_pg_list_in(db, "find unreported usage", sql,
                           PG_ARGS(PG_INT(check->now), PG_INT(check->grace),
                                   PG_INT(TETHER_STORE_USAGE_LEEWAY),
                                   PG_INT(TETHER_STORE_UNREPORTED_BATCH),
                                   PG_INT(TETHER_STORE_USAGE_REPORT_RETENTION)),
                           &list);
    for (size_t i = 0; rc == TETHER_OK && i < check->count; i++) {
        char details[TETHER_STORE_DETAILS_MAX];

        tether_store_unreported_details(&check->found[i], details);
        rc = alert_token_tx(db, check->found[i].jti, TETHER_FLEET_ALERT_USAGE_UNREPORTED,
                            check->found[i].device_id, details, check->now);
    }
    return rc;
}

tether_status_t tether_pg_usage_unreported_check(void *impl, int64_t now, int64_t grace,
                                                 size_t *alerted)
{
    unreported_check_t *check = NULL;
    tether_status_t rc;

    if (alerted == NULL || grace < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    *alerted = 0;
    if ((check = calloc(1, sizeof(*check))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    check->now = now;
    check->grace = grace;
    rc = tether_pg_transaction(impl, "check unreported usage", unreported_tx, check);
    if (rc == TETHER_OK)
        *alerted = check->count;
    free(check);
    return rc;
}
