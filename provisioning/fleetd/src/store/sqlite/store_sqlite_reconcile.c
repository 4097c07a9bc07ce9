/*
 * Usage reconciliation on SQLite (store_usage.h, "usage reconciliation"; schema
 * version 7): the device's counts per token from its exchanges, compared
 * with what gateways reported, inside the transaction of the exchange or
 * of the usage report that brought the newer figure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"

/* What one comparison read: the device's row and the gateways' sum. */
typedef struct comparison_row {
    tether_store_usage_comparison_t cmp;
    bool alerted;
} comparison_row_t;

static tether_status_t read_comparison(void *arg, sqlite3_stmt *row)
{
    comparison_row_t *r = arg;
    int64_t proofs = sqlite3_column_int64(row, 1), requests = sqlite3_column_int64(row, 2);

    r->cmp.device_made = proofs > requests ? proofs : requests;
    r->cmp.bearer = sqlite3_column_int64(row, 3);
    r->cmp.final = sqlite3_column_int(row, 4) != 0;
    r->cmp.gateway_accepted = sqlite3_column_int64(row, 5);
    r->alerted = sqlite3_column_int(row, 6) != 0;
    return tether_sqlite_copy_text(r->cmp.device_id, sizeof(r->cmp.device_id),
                                   sqlite3_column_text(row, 0));
}

/* One alert of kind about a token: the token marked (each is alerted once
 * per kind) and the alert added. */
static tether_status_t alert_token_tx(sqlite_store_t *s, const char *jti, const char *kind,
                                      const char *device_id, const char *details, int64_t now)
{
    tether_status_t rc;

    rc = tether_sqlite_run(s, "mark usage alerted",
                           "INSERT INTO usage_alerts (jti, kind, created_at) VALUES (?, ?, ?)",
                           SQL_ARGS(SQL_TEXT(jti), SQL_TEXT(kind), SQL_INT(now)));
    return rc == TETHER_OK ? tether_sqlite_alert_insert(s, device_id, kind, details, now) : rc;
}

tether_status_t tether_sqlite_quarantine_tx(sqlite_store_t *s, const char *device_id,
                                            const char *reason, int64_t now, bool *quarantined)
{
    static const char status_sql[] = "UPDATE devices SET status = 'quarantined', "
                                     "status_reason = ?2, updated_at = ?3 "
                                     "WHERE id = ?1 AND status = 'active'";
    tether_status_t rc;

    *quarantined = false;
    rc = tether_sqlite_run(s, "quarantine device", status_sql,
                           SQL_ARGS(SQL_TEXT(device_id), SQL_TEXT(reason), SQL_INT(now)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) == 1) {
        *quarantined = true;
        rc = tether_sqlite_revoke_tokens(s, device_id, reason, now);
    }
    return rc;
}

/* The alert, the token marked alerted, and with action quarantine the
 * containment of the clone path. */
static tether_status_t mismatch_tx(sqlite_store_t *s, const tether_store_usage_comparison_t *c,
                                   tether_store_usage_action_t action, int64_t now,
                                   bool *quarantined)
{
    char reason[TETHER_STORE_REASON_MAX + 1], details[TETHER_STORE_DETAILS_MAX];
    tether_status_t rc;

    *quarantined = false;
    tether_store_usage_mismatch_text(c, action, reason, details);
    rc = alert_token_tx(s, c->jti, TETHER_FLEET_ALERT_USAGE_MISMATCH, c->device_id, details,
                        now);
    if (rc != TETHER_OK || action != TETHER_STORE_USAGE_QUARANTINE)
        return rc;
    return tether_sqlite_quarantine_tx(s, c->device_id, reason, now, quarantined);
}

/* Compares one token that its device reported. *found: a mismatch not
 * alerted before, now alerted (and acted on), described in *cmp. */
static tether_status_t compare_tx(sqlite_store_t *s, const char *jti,
                                  tether_store_usage_action_t action, int64_t now,
                                  tether_store_usage_comparison_t *cmp, bool *found,
                                  bool *quarantined)
{
    /* The requests gateways reported before the nonce of the device's
     * last report (token_usage_received, by second: a token reported
     * again after the nonce keeps its earlier requests compared): they
     * were signed before the device counted. Once the count is final,
     * every report. */
    static const char sql[] =
        "SELECT d.device_id, d.proofs, d.requests, d.bearer, d.final,"
        " (SELECT coalesce(sum(u.requests), 0) FROM token_usage_received u"
        "  WHERE u.jti = d.jti AND (d.final = 1 OR u.received_at < d.nonce_issued_at)),"
        " EXISTS (SELECT 1 FROM usage_alerts a WHERE a.jti = d.jti"
        "  AND a.kind = '" TETHER_FLEET_ALERT_USAGE_MISMATCH "')"
        " FROM device_usage d WHERE d.jti = ?";
    comparison_row_t row;
    tether_status_t rc;

    memset(cmp, 0, sizeof(*cmp));
    *found = false;
    *quarantined = false;
    memset(&row, 0, sizeof(row));
    rc = tether_sqlite_query_one(s, "compare usage", sql, SQL_ARGS(SQL_TEXT(jti)),
                                 read_comparison, &row);
    if (rc == TETHER_ERR_NOT_FOUND) /* the device has not reported it */
        return TETHER_OK;
    if (rc != TETHER_OK || row.alerted || row.cmp.gateway_accepted <= row.cmp.device_made)
        return rc;
    snprintf(row.cmp.jti, sizeof(row.cmp.jti), "%s", jti);
    *cmp = row.cmp;
    *found = true;
    return mismatch_tx(s, cmp, action, now, quarantined);
}

/* Keeps one token's counts; tokens the fleet did not issue to the device
 * are left out (*kept false). Counts only grow. */
static tether_status_t record_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                 const tether_store_device_usage_t *u, int64_t now, bool *kept)
{
    static const char upsert[] =
        "INSERT INTO device_usage (jti, device_id, proofs, requests, bearer, nonce_issued_at,"
        " final, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (jti) DO UPDATE SET"
        " proofs = max(proofs, excluded.proofs), requests = max(requests, excluded.requests),"
        " bearer = max(bearer, excluded.bearer),"
        " nonce_issued_at = max(nonce_issued_at, excluded.nonce_issued_at),"
        " final = max(final, excluded.final), reported_at = excluded.reported_at";
    int64_t exp = 0;
    tether_status_t rc;

    *kept = false;
    rc = tether_sqlite_query_one(s, "read issued token",
                                 "SELECT exp FROM issued_tokens WHERE jti = ? AND device_id = ?",
                                 SQL_ARGS(SQL_TEXT(u->jti), SQL_TEXT(ex->device_id)),
                                 tether_sqlite_read_int64, &exp);
    if (rc == TETHER_ERR_NOT_FOUND)
        return TETHER_OK;
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(
            s, "record device usage", upsert,
            SQL_ARGS(SQL_TEXT(u->jti), SQL_TEXT(ex->device_id), SQL_INT(u->proofs),
                     SQL_INT(u->requests), SQL_INT(u->bearer), SQL_INT(ex->nonce_issued_at),
                     SQL_INT(ex->nonce_issued_at > exp + TETHER_STORE_USAGE_LEEWAY),
                     SQL_INT(now)));
    *kept = rc == TETHER_OK;
    return rc;
}

tether_status_t tether_sqlite_usage_exchange_tx(sqlite_store_t *s,
                                                const tether_store_exchange_t *ex, int64_t now,
                                                tether_store_exchange_result_t *result,
                                                bool *quarantined)
{
    tether_status_t rc = TETHER_OK;

    *quarantined = false;
    for (size_t i = 0; rc == TETHER_OK && i < ex->usage_count; i++) {
        tether_store_usage_comparison_t cmp;
        bool kept = false, found = false, now_quarantined = false;

        rc = record_tx(s, ex, &ex->usage[i], now, &kept);
        if (rc != TETHER_OK || !kept)
            continue;
        rc = compare_tx(s, ex->usage[i].jti, ex->usage_action, now, &cmp, &found,
                        &now_quarantined);
        if (found && result->usage_mismatches == 0)
            result->mismatch = cmp;
        result->usage_mismatches += found ? 1 : 0;
        *quarantined = *quarantined || now_quarantined;
    }
    return rc;
}

tether_status_t tether_sqlite_usage_report_tx(sqlite_store_t *s, const char *jti,
                                              tether_store_usage_action_t action, int64_t now,
                                              tether_store_usage_result_t *result)
{
    tether_store_usage_comparison_t cmp;
    bool found = false, quarantined = false;
    tether_status_t rc;

    rc = compare_tx(s, jti, action, now, &cmp, &found, &quarantined);
    result->mismatches += found ? 1 : 0;
    result->quarantined = result->quarantined || quarantined;
    return rc;
}

/* ---- the usage_unreported check ---- */

/* Tokens of active devices whose exp (plus leeway and grace) passed in
 * [from, to) and whose device's last exchange came before that expiry:
 * their final count never came. Driven by issued_tokens_exp over the
 * window, each token's usage by token_usage_jti: the check's cost
 * follows the tokens expired since the last one, not the tables. */
const char tether_sqlite_unreported_sql[] =
    "SELECT jti, device_id, exp, last_seen, accepted FROM ("
    " SELECT t.jti, t.device_id, t.exp, coalesce(d.last_seen_at, 0) AS last_seen,"
    "  (SELECT coalesce(sum(u.requests), 0) FROM token_usage u WHERE u.jti = t.jti)"
    "  AS accepted"
    " FROM issued_tokens t CROSS JOIN devices d"
    " WHERE t.exp >= ?1 AND t.exp < ?2 AND d.id = t.device_id AND d.status = 'active'"
    " AND coalesce(d.last_seen_at, 0) <= t.exp + ?3"
    " AND NOT EXISTS (SELECT 1 FROM usage_alerts a WHERE a.jti = t.jti"
    "  AND a.kind = '" TETHER_FLEET_ALERT_USAGE_UNREPORTED "'))"
    " WHERE accepted > 0 ORDER BY exp LIMIT ?4";

static tether_status_t unreported_find(sqlite_store_t *s, int64_t from, int64_t to,
                                       tether_store_unreported_t *found, size_t *count)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    *count = 0;
    if ((rc = tether_sqlite_prepare(s, tether_sqlite_unreported_sql, &stmt)) != TETHER_OK ||
        (rc = tether_sqlite_bind(s, stmt,
                                 SQL_ARGS(SQL_INT(from), SQL_INT(to),
                                          SQL_INT(TETHER_STORE_USAGE_LEEWAY),
                                          SQL_INT(TETHER_STORE_UNREPORTED_BATCH)))) !=
            TETHER_OK)
        goto out;
    while (rc == TETHER_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        tether_store_unreported_t *u = &found[*count];

        if ((rc = tether_sqlite_copy_text(u->jti, sizeof(u->jti),
                                          sqlite3_column_text(stmt, 0))) != TETHER_OK ||
            (rc = tether_sqlite_copy_text(u->device_id, sizeof(u->device_id),
                                          sqlite3_column_text(stmt, 1))) != TETHER_OK)
            break;
        u->exp = sqlite3_column_int64(stmt, 2);
        u->last_exchange = sqlite3_column_int64(stmt, 3);
        u->gateway_accepted = sqlite3_column_int64(stmt, 4);
        (*count)++;
    }
    if (rc == TETHER_OK && step != SQLITE_DONE)
        rc = tether_sqlite_fail(s, "find unreported usage");
out:
    sqlite3_finalize(stmt);
    return rc;
}

tether_status_t tether_sqlite_usage_unreported_check(void *impl, int64_t now, int64_t grace,
                                                     size_t *alerted)
{
    sqlite_store_t *s = impl;
    tether_store_unreported_t found[TETHER_STORE_UNREPORTED_BATCH];
    size_t count = 0;
    int64_t from = 0, to = 0;
    tether_status_t rc;

    if (alerted == NULL || grace < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    *alerted = 0;
    pthread_mutex_lock(&s->lock);
    tether_store_unreported_window(&s->unreported, now, grace, &from, &to);
    if (from >= to) {
        rc = TETHER_OK;
        goto unlock;
    }
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto unlock;
    rc = unreported_find(s, from, to, found, &count);
    for (size_t i = 0; rc == TETHER_OK && i < count; i++) {
        char details[TETHER_STORE_DETAILS_MAX];

        tether_store_unreported_details(&found[i], details);
        rc = alert_token_tx(s, found[i].jti, TETHER_FLEET_ALERT_USAGE_UNREPORTED,
                            found[i].device_id, details, now);
    }
    rc = tether_sqlite_finish(s, rc);
    if (rc == TETHER_OK) {
        *alerted = count;
        tether_store_unreported_advance(&s->unreported, to, count,
                                        count > 0 ? found[count - 1].exp : to);
    }
unlock:
    pthread_mutex_unlock(&s->lock);
    return rc;
}
