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

/* The comparisons of one statement, in the order of the tokens asked. */
typedef struct comparisons {
    comparison_row_t *rows;
    size_t count, capacity;
} comparisons_t;

static tether_status_t read_comparison(tether_pg_list_t *list, const tether_pg_row_t *row,
                                       bool *stop)
{
    comparisons_t *c = list->arg;
    comparison_row_t *r = &c->rows[c->count];
    int64_t proofs = tether_pg_int64(row, 1), requests = tether_pg_int64(row, 2);
    tether_status_t rc;

    /* One row per distinct token asked: capacity is the tokens asked. */
    *stop = c->count + 1 >= c->capacity;
    memset(r, 0, sizeof(*r));
    r->cmp.device_made = proofs > requests ? proofs : requests;
    r->cmp.bearer = tether_pg_int64(row, 3);
    r->cmp.final = tether_pg_int64(row, 4) != 0;
    r->cmp.gateway_accepted = tether_pg_int64(row, 5);
    r->alerted = tether_pg_int64(row, 6) != 0;
    if ((rc = tether_pg_copy_text(row, 0, r->cmp.device_id, sizeof(r->cmp.device_id))) !=
            TETHER_OK ||
        (rc = tether_pg_copy_text(row, 7, r->cmp.jti, sizeof(r->cmp.jti))) != TETHER_OK)
        return rc;
    c->count++;
    return TETHER_OK;
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

/* The device's and the gateways' counts of the tokens in jtis (an array
 * literal; a token listed twice is compared once), in the order listed;
 * with device_id, only the tokens the fleet issued to that device. */
static tether_status_t compare_tx(tether_pg_t *db, const char *jtis, const char *device_id,
                                  comparisons_t *c)
{
    /* As on SQLite: the requests reported before the nonce of the
     * device's last report; once the count is final, all of them. */
    static const char sql[] =
        "SELECT d.device_id, d.proofs, d.requests, d.bearer, d.final,"
        " (SELECT coalesce(sum(u.requests), 0) FROM token_usage_received u"
        "  WHERE u.jti = d.jti AND (d.final = 1 OR u.received_at < d.nonce_issued_at)),"
        " (EXISTS (SELECT 1 FROM usage_alerts a WHERE a.jti = d.jti"
        "  AND a.kind = '" TETHER_FLEET_ALERT_USAGE_MISMATCH "'))::int, d.jti"
        " FROM (SELECT k.jti, min(k.n) AS n FROM unnest($1::text[]) WITH ORDINALITY AS k(jti, n)"
        "  GROUP BY k.jti) k JOIN device_usage d ON d.jti = k.jti"
        " WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM issued_tokens t"
        "  WHERE t.jti = d.jti AND t.device_id = $2::text)"
        " ORDER BY k.n";
    tether_pg_list_t list = {.read = read_comparison, .arg = c};

    c->count = 0;
    if (c->capacity == 0)
        return TETHER_OK;
    return tether_pg_list_in(db, "compare usage", sql,
                             PG_ARGS(PG_TEXT(jtis),
                                     device_id != NULL ? PG_TEXT(device_id) : PG_NULL),
                             &list);
}

/* A comparison's consequence: gateways accepted more than the device made
 * and the token was not alerted yet: the alert, and with action
 * quarantine the device quarantined. *found says whether it was so. */
static tether_status_t mismatch_tx(tether_pg_t *db, const comparison_row_t *row,
                                   tether_store_usage_action_t action, int64_t now, bool *found,
                                   bool *quarantined)
{
    char reason[TETHER_STORE_REASON_MAX + 1], details[TETHER_STORE_DETAILS_MAX];
    tether_status_t rc;

    *found = false;
    *quarantined = false;
    if (row->alerted || row->cmp.gateway_accepted <= row->cmp.device_made)
        return TETHER_OK;
    *found = true;
    tether_store_usage_mismatch_text(&row->cmp, action, reason, details);
    rc = alert_token_tx(db, row->cmp.jti, TETHER_FLEET_ALERT_USAGE_MISMATCH, row->cmp.device_id,
                        details, now);
    if (rc == TETHER_OK && action == TETHER_STORE_USAGE_QUARANTINE)
        rc = tether_pg_quarantine_tx(db, row->cmp.device_id, reason, now, quarantined);
    return rc;
}

/* The usage document's counts as array literals: tokens, proofs, requests,
 * bearer. */
typedef struct usage_arrays {
    char *jtis, *proofs, *requests, *bearer;
} usage_arrays_t;

static void usage_arrays_free(usage_arrays_t *a)
{
    free(a->jtis);
    free(a->proofs);
    free(a->requests);
    free(a->bearer);
    memset(a, 0, sizeof(*a));
}

static tether_status_t usage_arrays(const tether_store_exchange_t *ex, usage_arrays_t *a)
{
    size_t n = ex->usage_count;
    const char **jtis = calloc(n, sizeof(*jtis));
    int64_t *numbers = calloc(3 * n, sizeof(*numbers));
    tether_status_t rc = jtis != NULL && numbers != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;

    memset(a, 0, sizeof(*a));
    for (size_t i = 0; rc == TETHER_OK && i < n; i++) {
        jtis[i] = ex->usage[i].jti;
        numbers[i] = ex->usage[i].proofs;
        numbers[n + i] = ex->usage[i].requests;
        numbers[2 * n + i] = ex->usage[i].bearer;
    }
    if (rc == TETHER_OK && (rc = tether_pg_text_array(jtis, n, &a->jtis)) == TETHER_OK &&
        (rc = tether_pg_int_array(numbers, n, &a->proofs)) == TETHER_OK &&
        (rc = tether_pg_int_array(numbers + n, n, &a->requests)) == TETHER_OK)
        rc = tether_pg_int_array(numbers + 2 * n, n, &a->bearer);
    if (rc != TETHER_OK)
        usage_arrays_free(a);
    free(jtis);
    free(numbers);
    return rc;
}

/* Keeps the counts of the tokens the fleet issued to the device, all in
 * one statement (counts only grow; a token listed twice keeps its highest
 * counts), sent ahead of the comparison that reads them. */
static tether_status_t record_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                 const usage_arrays_t *a, int64_t now)
{
    static const char upsert[] =
        "INSERT INTO device_usage (jti, device_id, proofs, requests, bearer, nonce_issued_at,"
        " final, reported_at)"
        " SELECT r.jti, $5::text, r.proofs, r.requests, r.bearer, $6::bigint,"
        "  ($6::bigint > t.exp + $7::bigint)::int, $8::bigint"
        " FROM (SELECT jti, max(proofs) AS proofs, max(requests) AS requests,"
        "  max(bearer) AS bearer, min(n) AS n"
        "  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])"
        "  WITH ORDINALITY AS u(jti, proofs, requests, bearer, n) GROUP BY jti) r"
        " JOIN issued_tokens t ON t.jti = r.jti AND t.device_id = $5::text ORDER BY r.n"
        " ON CONFLICT (jti) DO UPDATE"
        " SET proofs = greatest(device_usage.proofs, excluded.proofs),"
        " requests = greatest(device_usage.requests, excluded.requests),"
        " bearer = greatest(device_usage.bearer, excluded.bearer),"
        " nonce_issued_at = greatest(device_usage.nonce_issued_at, excluded.nonce_issued_at),"
        " final = greatest(device_usage.final, excluded.final),"
        " reported_at = excluded.reported_at";

    return tether_pg_send(db, "record device usage", upsert,
                          PG_ARGS(PG_TEXT(a->jtis), PG_TEXT(a->proofs), PG_TEXT(a->requests),
                                  PG_TEXT(a->bearer), PG_TEXT(ex->device_id),
                                  PG_INT(ex->nonce_issued_at),
                                  PG_INT(TETHER_STORE_USAGE_LEEWAY), PG_INT(now)),
                          NULL);
}

tether_status_t tether_pg_usage_exchange_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                            int64_t now, tether_store_exchange_result_t *result,
                                            bool *quarantined)
{
    comparisons_t c = {NULL, 0, ex->usage_count};
    usage_arrays_t a;
    tether_status_t rc = TETHER_OK;

    *quarantined = false;
    memset(&a, 0, sizeof(a));
    if (ex->usage_count == 0)
        return TETHER_OK;
    /* Two statements, one round trip: the counts kept, then compared. */
    if ((c.rows = calloc(c.capacity, sizeof(*c.rows))) == NULL)
        rc = TETHER_ERR_NO_MEMORY;
    if (rc == TETHER_OK && (rc = usage_arrays(ex, &a)) == TETHER_OK &&
        (rc = record_tx(db, ex, &a, now)) == TETHER_OK)
        rc = compare_tx(db, a.jtis, ex->device_id, &c);
    for (size_t i = 0; rc == TETHER_OK && i < c.count; i++) {
        bool found = false, now_quarantined = false;

        rc = mismatch_tx(db, &c.rows[i], ex->usage_action, now, &found, &now_quarantined);
        if (found && result->usage_mismatches == 0)
            result->mismatch = c.rows[i].cmp;
        result->usage_mismatches += found ? 1 : 0;
        *quarantined = *quarantined || now_quarantined;
    }
    usage_arrays_free(&a);
    free(c.rows);
    return rc;
}

tether_status_t tether_pg_usage_report_tx(tether_pg_t *db, const char *jti,
                                          tether_store_usage_action_t action, int64_t now,
                                          tether_store_usage_result_t *result)
{
    comparison_row_t row;
    comparisons_t c = {&row, 0, 1};
    bool found = false, quarantined = false;
    char *jtis = NULL;
    tether_status_t rc;

    if ((rc = tether_pg_text_array(&jti, 1, &jtis)) == TETHER_OK)
        rc = compare_tx(db, jtis, NULL, &c);
    if (rc == TETHER_OK && c.count == 1) /* none: the device has not reported it */
        rc = mismatch_tx(db, &row, action, now, &found, &quarantined);
    result->mismatches += found ? 1 : 0;
    result->quarantined = result->quarantined || quarantined;
    free(jtis);
    return rc;
}

/* ---- the usage_unreported check ---- */

typedef struct unreported_check {
    int64_t now;
    int64_t from; /* the window of exp (tether_store_unreported_window) */
    int64_t to;
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
    /* As on SQLite: tokens of active devices whose exp (plus leeway and
     * grace) passed in the window and whose device's last exchange came
     * before that expiry; by issued_tokens_exp and token_usage_jti. */
    static const char sql[] =
        "SELECT jti, device_id, exp, last_seen, accepted FROM ("
        " SELECT t.jti, t.device_id, t.exp, coalesce(d.last_seen_at, 0) AS last_seen,"
        "  (SELECT coalesce(sum(u.requests), 0) FROM token_usage u WHERE u.jti = t.jti)"
        "  AS accepted"
        " FROM issued_tokens t JOIN devices d ON d.id = t.device_id"
        " WHERE t.exp >= $1::bigint AND t.exp < $2::bigint AND d.status = 'active'"
        " AND coalesce(d.last_seen_at, 0) <= t.exp + $3::bigint"
        " AND NOT EXISTS (SELECT 1 FROM usage_alerts a WHERE a.jti = t.jti"
        "  AND a.kind = '" TETHER_FLEET_ALERT_USAGE_UNREPORTED "')) w"
        " WHERE accepted > 0 ORDER BY exp LIMIT $4";
    unreported_check_t *check = arg;
    tether_pg_list_t list = {.read = unreported_item, .arg = check};
    tether_status_t rc;

    check->count = 0;
    rc = tether_pg_list_in(db, "find unreported usage", sql,
                           PG_ARGS(PG_INT(check->from), PG_INT(check->to),
                                   PG_INT(TETHER_STORE_USAGE_LEEWAY),
                                   PG_INT(TETHER_STORE_UNREPORTED_BATCH)),
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
    pg_store_t *s = impl;
    unreported_check_t *check = NULL;
    tether_status_t rc = TETHER_OK;

    if (alerted == NULL || grace < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    *alerted = 0;
    if ((check = calloc(1, sizeof(*check))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    check->now = now;
    pthread_mutex_lock(&s->lock);
    tether_store_unreported_window(&s->unreported, now, grace, &check->from, &check->to);
    pthread_mutex_unlock(&s->lock);
    if (check->from >= check->to) /* no token's window closed since the last check */
        goto out;
    if ((rc = tether_pg_transaction(s, "check unreported usage", unreported_tx, check)) !=
        TETHER_OK)
        goto out;
    *alerted = check->count;
    pthread_mutex_lock(&s->lock);
    tether_store_unreported_advance(
        &s->unreported, check->to, check->count,
        check->count > 0 ? check->found[check->count - 1].exp : check->to);
    pthread_mutex_unlock(&s->lock);
out:
    free(check);
    return rc;
}
