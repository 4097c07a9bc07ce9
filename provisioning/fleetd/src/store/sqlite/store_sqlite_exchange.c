/*
 * The attested token exchange and the issuer keys on SQLite (store_exchange.h, store_keys.h,
 * schema versions 3 and 5). The exchange's decision is made inside one BEGIN
 * IMMEDIATE transaction from the device row read again there, so two
 * requests of one device (or of a device and its clone) are decided one
 * after the other; with synchronous FULL the commit is durable before the
 * caller answers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"

#define EXCHANGE_COLUMNS                                                                      \
    DEVICE_COLUMNS ", ek_public, ak_public, device_key_public, counter_nv_public, "           \
                   "pcr_digest, last_fingerprint, last_clock, last_reset_count, "             \
                   "last_restart_count, last_clock_safe, last_address, last_seen_at, "        \
                   "last_nonce_expires_at"
#define COL_BLOBS 12 /* the first column after DEVICE_COLUMNS */

#define TOKEN_COLUMNS                                                                             \
    "jti, device_id, counter, issued_at, exp, revoked, kid, scope, audience, policy, "           \
    "policy_version"

/* ---- reading rows ---- */

static tether_status_t copy_blob(sqlite3_stmt *stmt, int column, uint8_t *out, size_t out_size,
                                 size_t *len)
{
    int n = sqlite3_column_bytes(stmt, column);

    *len = 0;
    if (sqlite3_column_type(stmt, column) == SQLITE_NULL)
        return TETHER_OK;
    if (n < 0 || (size_t)n > out_size)
        return TETHER_ERR_TOO_LARGE;
    if (n > 0)
        memcpy(out, sqlite3_column_blob(stmt, column), (size_t)n);
    *len = (size_t)n;
    return TETHER_OK;
}

static tether_status_t exchange_row(sqlite3_stmt *stmt, tether_store_exchange_device_t *d)
{
    size_t fingerprint_len = 0;
    tether_status_t rc;
    int c = COL_BLOBS;

    memset(d, 0, sizeof(*d));
    if ((rc = tether_sqlite_device_row(stmt, &d->device)) != TETHER_OK ||
        (rc = copy_blob(stmt, c, d->ek_public, sizeof(d->ek_public), &d->ek_public_len)) !=
            TETHER_OK ||
        (rc = copy_blob(stmt, c + 1, d->ak_public, sizeof(d->ak_public), &d->ak_public_len)) !=
            TETHER_OK ||
        (rc = copy_blob(stmt, c + 2, d->device_key_public, sizeof(d->device_key_public),
                        &d->device_key_public_len)) != TETHER_OK ||
        (rc = copy_blob(stmt, c + 3, d->counter_public, sizeof(d->counter_public),
                        &d->counter_public_len)) != TETHER_OK ||
        (rc = copy_blob(stmt, c + 4, d->pcr_digest, sizeof(d->pcr_digest),
                        &d->pcr_digest_len)) != TETHER_OK ||
        (rc = copy_blob(stmt, c + 5, d->last_fingerprint, sizeof(d->last_fingerprint),
                        &fingerprint_len)) != TETHER_OK)
        return rc;
    /* The fingerprint is written by accepted exchanges only, with the rest
     * of the sighting. */
    if (fingerprint_len == sizeof(d->last_fingerprint) && d->device.has_counter) {
        d->has_last = true;
        d->last.counter = d->device.highest_counter;
        d->last.clock.clock = (uint64_t)sqlite3_column_int64(stmt, c + 6);
        d->last.clock.reset_count = (uint32_t)sqlite3_column_int64(stmt, c + 7);
        d->last.clock.restart_count = (uint32_t)sqlite3_column_int64(stmt, c + 8);
        d->last.clock.safe = sqlite3_column_int(stmt, c + 9) != 0;
        rc = tether_sqlite_copy_text(d->last.address, sizeof(d->last.address),
                                     sqlite3_column_text(stmt, c + 10));
        d->last.at = sqlite3_column_int64(stmt, c + 11);
        d->last_nonce_expires_at = sqlite3_column_int64(stmt, c + 12);
    } else if (fingerprint_len != 0) {
        rc = TETHER_ERR_PARSE;
    }
    return rc;
}

static tether_status_t exchange_read(void *arg, sqlite3_stmt *row)
{
    return exchange_row(row, arg);
}

/* Called with the lock held. */
static tether_status_t exchange_select(sqlite_store_t *s, const char *id,
                                       tether_store_exchange_device_t *device)
{
    return tether_sqlite_query_one(s, "read device for exchange",
                                   "SELECT " EXCHANGE_COLUMNS " FROM devices WHERE id = ?",
                                   SQL_ARGS(SQL_TEXT(id)), exchange_read, device);
}

tether_status_t tether_sqlite_exchange_device_get(void *impl, const char *id,
                                                  tether_store_exchange_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = exchange_select(s, id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t token_row(sqlite3_stmt *stmt, tether_store_issued_token_t *t)
{
    tether_status_t rc;

    memset(t, 0, sizeof(*t));
    if ((rc = tether_sqlite_copy_text(t->jti, sizeof(t->jti), sqlite3_column_text(stmt, 0))) !=
            TETHER_OK ||
        (rc = tether_sqlite_copy_text(t->device_id, sizeof(t->device_id),
                                      sqlite3_column_text(stmt, 1))) != TETHER_OK ||
        (rc = tether_sqlite_copy_text(t->kid, sizeof(t->kid), sqlite3_column_text(stmt, 6))) !=
            TETHER_OK ||
        (rc = tether_sqlite_copy_text(t->scope, sizeof(t->scope), sqlite3_column_text(stmt, 7))) !=
            TETHER_OK ||
        (rc = tether_sqlite_copy_text(t->audience, sizeof(t->audience),
                                      sqlite3_column_text(stmt, 8))) != TETHER_OK ||
        (rc = tether_sqlite_copy_text(t->policy, sizeof(t->policy),
                                      sqlite3_column_text(stmt, 9))) != TETHER_OK)
        return rc;
    t->policy_version = sqlite3_column_int64(stmt, 10); /* NULL reads as 0 */
    t->has_counter = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
    t->counter = (uint64_t)sqlite3_column_int64(stmt, 2);
    t->issued_at = sqlite3_column_int64(stmt, 3);
    t->exp = sqlite3_column_int64(stmt, 4);
    t->revoked = sqlite3_column_int(stmt, 5) != 0;
    return TETHER_OK;
}

static tether_status_t token_read(void *arg, sqlite3_stmt *row)
{
    return token_row(row, arg);
}

tether_status_t tether_sqlite_issued_token_get(void *impl, const char *jti,
                                               tether_store_issued_token_t *token)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (jti == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(token, 0, sizeof(*token));
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "read issued token",
                                 "SELECT " TOKEN_COLUMNS " FROM issued_tokens WHERE jti = ?",
                                 SQL_ARGS(SQL_TEXT(jti)), token_read, token);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- the exchange's transaction ---- */

/* Whether an accepted exchange used this nonce. An expired entry counts
 * until it is purged: its nonce is refused as expired before it gets here. */
static tether_status_t nonce_used_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                     bool *used)
{
    int64_t count = 0;
    tether_status_t rc;

    *used = false;
    rc = tether_sqlite_query_one(
        s, "look up nonce", "SELECT count(*) FROM used_nonces WHERE hash = ?",
        SQL_ARGS(SQL_BLOB(ex->nonce_hash, TETHER_STORE_NONCE_HASH_SIZE)),
        tether_sqlite_read_int64, &count);
    *used = rc == TETHER_OK && count > 0;
    return rc;
}

/* Uses the nonce up until it expires, and drops the entries of expired
 * nonces (there are as many live ones as exchanges in a nonce's life). */
static tether_status_t use_nonce_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                    int64_t now)
{
    tether_status_t rc;

    rc = tether_sqlite_run(s, "purge expired nonces",
                           "DELETE FROM used_nonces WHERE expires_at <= ?", SQL_ARGS(SQL_INT(now)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(
            s, "use nonce", "INSERT INTO used_nonces (hash, expires_at) VALUES (?, ?)",
            SQL_ARGS(SQL_BLOB(ex->nonce_hash, TETHER_STORE_NONCE_HASH_SIZE),
                     SQL_INT(ex->nonce_expires_at)));
    return rc;
}

static tether_status_t accept_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                 const tether_store_exchange_device_t *row)
{
    static const char update_sql[] =
        "UPDATE devices SET highest_counter = ?2, last_clock = ?3, last_reset_count = ?4, "
        "last_restart_count = ?5, last_clock_safe = ?6, pcr_digest = coalesce(pcr_digest, ?7), "
        "last_fingerprint = ?8, last_address = ?9, last_seen_at = ?10, "
        "last_nonce_expires_at = ?11 WHERE id = ?1 AND status = 'active'";
    static const char token_sql[] =
        "INSERT INTO issued_tokens (jti, device_id, counter, issued_at, exp, kid, scope, "
        "audience, policy, policy_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const tether_store_sighting_t *now = &ex->sighting;
    /* The reference digest is kept from the first exchange on. */
    bool first_digest =
        row->pcr_digest_len == 0 && ex->pcr_digest != NULL && ex->pcr_digest_len > 0;
    tether_status_t rc;

    rc = tether_sqlite_run(
        s, "record exchange", update_sql,
        SQL_ARGS(SQL_TEXT(ex->device_id), SQL_INT(now->counter), SQL_INT(now->clock.clock),
                 SQL_INT(now->clock.reset_count), SQL_INT(now->clock.restart_count),
                 SQL_INT(now->clock.safe ? 1 : 0),
                 first_digest ? SQL_BLOB(ex->pcr_digest, ex->pcr_digest_len) : SQL_NULL,
                 SQL_BLOB(ex->fingerprint, TETHER_STORE_FINGERPRINT_SIZE),
                 SQL_TEXT(now->address[0] != '\0' ? now->address : "-"), SQL_INT(now->at),
                 SQL_INT(ex->nonce_expires_at)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) != 1)
        rc = TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "record issued token", token_sql,
                               SQL_ARGS(SQL_TEXT(ex->jti), SQL_TEXT(ex->device_id),
                                        SQL_INT(now->counter), SQL_INT(now->at),
                                        SQL_INT(ex->exp), SQL_TEXT(ex->kid), SQL_TEXT(ex->scope),
                                        SQL_TEXT(ex->audience), SQL_TEXT(ex->policy),
                                        SQL_INT(ex->policy_version)));
    if (rc == TETHER_OK)
        rc = use_nonce_tx(s, ex, now->at);
    return rc;
}

static tether_status_t retry_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                tether_store_issued_token_t *token)
{
    static const char sql[] = "SELECT " TOKEN_COLUMNS " FROM issued_tokens WHERE device_id = ? "
                              "AND counter = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1";

    return tether_sqlite_query_one(s, "read issued token", sql,
                                   SQL_ARGS(SQL_TEXT(ex->device_id), SQL_INT(ex->sighting.counter)),
                                   token_read, token);
}

/* Quarantine, revocation of every live token, feed entry and alert: the
 * containment of DESIGN.md, "Clone detection", in the caller's transaction. */
static tether_status_t quarantine_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                     const tether_store_exchange_device_t *row,
                                     tether_store_exchange_decision_t decision, int64_t now)
{
    static const char status_sql[] = "UPDATE devices SET status = 'quarantined', "
                                     "status_reason = ?2, updated_at = ?3 WHERE id = ?1";
    static const char alert_sql[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (?, ?, ?, ?)";
    char reason[TETHER_STORE_REASON_MAX + 1];
    char *details = NULL;
    tether_status_t rc;

    rc = tether_store_clone_reason(ex, row, decision, reason, &details);
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "quarantine device", status_sql,
                               SQL_ARGS(SQL_TEXT(ex->device_id), SQL_TEXT(reason), SQL_INT(now)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_revoke_tokens(s, ex->device_id, reason, now);
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(
            s, "add clone alert", alert_sql,
            SQL_ARGS(SQL_TEXT(ex->device_id), SQL_TEXT(tether_store_clone_alert_kind(decision)),
                     SQL_TEXT(details), SQL_INT(now)));
    free(details);
    return rc;
}

/* One exchange's checks and writes, inside the batch's transaction; row is
 * scratch space for the device row. */
static tether_status_t exchange_tx(sqlite_store_t *s, const tether_store_exchange_t *ex,
                                   int64_t now, tether_store_exchange_device_t *row,
                                   tether_store_exchange_result_t *result)
{
    bool nonce_used = false, quarantined = false;
    tether_status_t rc;

    if ((rc = exchange_select(s, ex->device_id, row)) != TETHER_OK ||
        (rc = nonce_used_tx(s, ex, &nonce_used)) != TETHER_OK)
        return rc;
    result->decision = tether_store_exchange_decide(row, ex, nonce_used);
    result->status = row->device.status;
    result->has_last = row->has_last;
    result->last = row->last;
    switch (result->decision) {
    case TETHER_STORE_EXCHANGE_ACCEPT:
        /* The source first, then the device's usage document: an address
         * outside the policy's sources or a token of it found used by
         * someone else quarantines the device instead (action quarantine),
         * and no token is issued. */
        if (ex->source_threshold != NULL)
            rc = tether_sqlite_source_tx(s, ex, now, result, &quarantined);
        if (rc == TETHER_OK && quarantined) {
            result->decision = TETHER_STORE_EXCHANGE_SOURCE_REFUSED;
            result->status = TETHER_DEVICE_QUARANTINED;
            break;
        }
        if (rc == TETHER_OK)
            rc = tether_sqlite_usage_exchange_tx(s, ex, now, result, &quarantined);
        if (rc == TETHER_OK && quarantined) {
            result->decision = TETHER_STORE_EXCHANGE_USAGE_MISMATCH;
            result->status = TETHER_DEVICE_QUARANTINED;
        } else if (rc == TETHER_OK) {
            rc = accept_tx(s, ex, row);
        }
        break;
    case TETHER_STORE_EXCHANGE_USAGE_MISMATCH: /* decided above, never by the rule */
    case TETHER_STORE_EXCHANGE_SOURCE_REFUSED:
    case TETHER_STORE_EXCHANGE_RETRY:
        rc = retry_tx(s, ex, &result->token);
        break;
    case TETHER_STORE_EXCHANGE_CLONE:
    case TETHER_STORE_EXCHANGE_CLOCK_REGRESSION:
        rc = quarantine_tx(s, ex, row, result->decision, now);
        result->status = TETHER_DEVICE_QUARANTINED;
        break;
    case TETHER_STORE_EXCHANGE_NOT_ACTIVE:
    case TETHER_STORE_EXCHANGE_NONCE_REUSED:
    case TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED:
        break;
    }
    return rc;
}

/* One batch member in its savepoint: kept when it succeeds, undone alone
 * when it fails. TETHER_ERR_STORE from *batch_rc when the savepoint itself
 * cannot be taken or undone (the batch's transaction is then failed). */
static tether_status_t member_tx(sqlite_store_t *s, tether_store_exchange_item_t *item,
                                 tether_store_exchange_device_t *row, tether_status_t *batch_rc)
{
    tether_status_t rc;

    memset(item->result, 0, sizeof(*item->result));
    if (!tether_store_exchange_valid(item->exchange))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((*batch_rc = tether_sqlite_exec(s, "SAVEPOINT exchange")) != TETHER_OK)
        return *batch_rc;
    rc = exchange_tx(s, item->exchange, item->now, row, item->result);
    if (rc != TETHER_OK)
        *batch_rc = tether_sqlite_exec(s, "ROLLBACK TO exchange");
    if (*batch_rc == TETHER_OK)
        *batch_rc = tether_sqlite_exec(s, "RELEASE exchange");
    return *batch_rc == TETHER_OK ? rc : *batch_rc;
}

void tether_sqlite_exchange_batch(void *impl, tether_store_exchange_item_t *items, size_t count)
{
    sqlite_store_t *s = impl;
    tether_store_exchange_device_t *row = malloc(sizeof(*row));
    tether_status_t rc = row != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;

    pthread_mutex_lock(&s->lock);
    if (rc == TETHER_OK)
        rc = tether_sqlite_begin(s);
    for (size_t i = 0; i < count && rc == TETHER_OK; i++)
        items[i].status = member_tx(s, &items[i], row, &rc);
    rc = tether_sqlite_finish(s, rc);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < count; i++) {
        /* Nothing was recorded when the transaction failed. */
        if (rc != TETHER_OK)
            items[i].status = rc;
        if (items[i].status != TETHER_OK && items[i].result != NULL)
            tether_wipe(items[i].result, sizeof(*items[i].result));
    }
    if (row != NULL) {
        tether_wipe(row, sizeof(*row));
        free(row);
    }
}

/* ---- issuer keys ---- */

#define KEY_COLUMNS "kid, file, created_at, retired_at, not_after"

static tether_status_t key_row(sqlite3_stmt *stmt, tether_store_issuer_key_t *key)
{
    tether_status_t rc;

    memset(key, 0, sizeof(*key));
    if ((rc = tether_sqlite_copy_text(key->kid, sizeof(key->kid), sqlite3_column_text(stmt, 0))) !=
            TETHER_OK ||
        (rc = tether_sqlite_copy_text(key->file, sizeof(key->file),
                                      sqlite3_column_text(stmt, 1))) != TETHER_OK)
        return rc;
    key->created_at = sqlite3_column_int64(stmt, 2);
    key->retired_at = sqlite3_column_int64(stmt, 3);
    key->not_after = sqlite3_column_int64(stmt, 4);
    return TETHER_OK;
}

static tether_status_t key_read(void *arg, sqlite3_stmt *row)
{
    return key_row(row, arg);
}

static tether_status_t key_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_issuer_key_t key;
    tether_status_t rc = key_row(row, &key);

    if (rc == TETHER_OK)
        *stop = list->cb.issuer_key(list->arg, &key) != 0;
    return rc;
}

tether_status_t tether_sqlite_issuer_key_list(void *impl, tether_store_issuer_key_cb cb, void *arg)
{
    tether_sqlite_list_t list = {.read = key_item, .cb.issuer_key = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "list issuer keys",
                              "SELECT " KEY_COLUMNS " FROM issuer_keys ORDER BY created_at, rowid",
                              SQL_NO_ARGS, &list);
}

static tether_status_t insert_key(sqlite_store_t *s, const tether_store_issuer_key_t *key)
{
    static const char sql[] =
        "INSERT INTO issuer_keys (kid, file, created_at) VALUES (?, ?, ?)";

    return tether_sqlite_run(s, "record issuer key", sql,
                             SQL_ARGS(SQL_TEXT(key->kid), SQL_TEXT(key->file),
                                      SQL_INT(key->created_at)));
}

tether_status_t tether_sqlite_issuer_key_add_first(void *impl, const tether_store_issuer_key_t *key)
{
    sqlite_store_t *s = impl;
    int64_t count = 0;
    tether_status_t rc;

    if (!tether_store_issuer_key_valid(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    /* An aggregate: always one row. */
    rc = tether_sqlite_query_one(s, "count issuer keys", "SELECT count(*) FROM issuer_keys",
                                 SQL_NO_ARGS, tether_sqlite_read_int64, &count);
    if (rc == TETHER_OK && count != 0)
        rc = TETHER_ERR_CONFLICT;
    if (rc == TETHER_OK)
        rc = insert_key(s, key);
    rc = tether_sqlite_finish(s, rc);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Inside the rotation's transaction: retires the active key into *retired. */
static tether_status_t retire_active(sqlite_store_t *s, int64_t now,
                                     tether_store_issuer_key_t *retired)
{
    static const char active_sql[] =
        "SELECT " KEY_COLUMNS " FROM issuer_keys WHERE retired_at IS NULL";
    /* Published until the last token it signed has expired. */
    static const char retire_sql[] =
        "UPDATE issuer_keys SET retired_at = ?2, not_after = max(?2, coalesce("
        "(SELECT max(exp) FROM issued_tokens WHERE kid = ?1), ?2)) WHERE kid = ?1";
    char kid[sizeof(retired->kid)];
    tether_status_t rc;

    rc = tether_sqlite_query_one(s, "active key", active_sql, SQL_NO_ARGS, key_read, retired);
    if (rc != TETHER_OK)
        return rc;
    /* A copy: reading the row back rewrites *retired. */
    memcpy(kid, retired->kid, sizeof(kid));
    rc = tether_sqlite_run(s, "retire issuer key", retire_sql,
                           SQL_ARGS(SQL_TEXT(kid), SQL_INT(now)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_query_one(s, "read retired key",
                                     "SELECT " KEY_COLUMNS " FROM issuer_keys WHERE kid = ?",
                                     SQL_ARGS(SQL_TEXT(kid)), key_read, retired);
    /* The row was there a moment ago, in this transaction. */
    return rc == TETHER_ERR_NOT_FOUND ? tether_sqlite_fail(s, "read retired key") : rc;
}

tether_status_t tether_sqlite_issuer_key_rotate(void *impl, const tether_store_issuer_key_t *key,
                                                int64_t now, tether_store_issuer_key_t *retired)
{
    sqlite_store_t *s = impl;
    tether_store_issuer_key_t old;
    tether_status_t rc;

    if (!tether_store_issuer_key_valid(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(&old, 0, sizeof(old));
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) == TETHER_OK) {
        rc = retire_active(s, now, &old);
        if (rc == TETHER_OK)
            rc = insert_key(s, key);
        rc = tether_sqlite_finish(s, rc);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == TETHER_OK && retired != NULL)
        *retired = old;
    return rc;
}
