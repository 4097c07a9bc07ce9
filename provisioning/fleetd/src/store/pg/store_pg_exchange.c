/*
 * The attested token exchange and the issuer keys on PostgreSQL (store_exchange.h, store_keys.h,
 * schema versions 3 and 5). The rules are SQLite's
 * (store_sqlite_exchange.c); what changes is how two replicas are kept
 * apart. The decision is made inside one SERIALIZABLE transaction from the
 * device row and the nonce read there, and the accepted counter is written
 * as a compare-and-set (highest_counter below the new one): when the same
 * device (or its clone) exchanges on two replicas at the same instant, one
 * commits and the other's transaction fails (serialization failure, or the
 * compare-and-set changing no row) and is decided again from the row the
 * first wrote, so it is refused as a retry, a clone or a used nonce.
 * The group commit's batch (exchange_batch) is one such transaction, each
 * exchange in a savepoint; a lost attempt decides the whole batch again.
 */
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"
#include "tether/bytes.h"

#define EXCHANGE_COLUMNS                                                                      \
    PG_DEVICE_COLUMNS ", ek_public, ak_public, device_key_public, counter_nv_public, "        \
                      "pcr_digest, last_fingerprint, last_clock, last_reset_count, "          \
                      "last_restart_count, last_clock_safe, last_address, last_seen_at, "     \
                      "last_nonce_expires_at"
#define COL_BLOBS 12 /* the first column after PG_DEVICE_COLUMNS */

#define TOKEN_COLUMNS                                                                             \
    "jti, device_id, counter, issued_at, exp, revoked, kid, scope, audience, policy, "           \
    "policy_version"

/* ---- reading rows ---- */

static tether_status_t exchange_read(void *arg, const tether_pg_row_t *row)
{
    tether_store_exchange_device_t *d = arg;
    size_t fingerprint_len = 0;
    tether_status_t rc;
    int c = COL_BLOBS;

    memset(d, 0, sizeof(*d));
    if ((rc = tether_pg_device_row(row, &d->device)) != TETHER_OK ||
        (rc = tether_pg_blob(row, c, d->ek_public, sizeof(d->ek_public), &d->ek_public_len)) !=
            TETHER_OK ||
        (rc = tether_pg_blob(row, c + 1, d->ak_public, sizeof(d->ak_public),
                             &d->ak_public_len)) != TETHER_OK ||
        (rc = tether_pg_blob(row, c + 2, d->device_key_public, sizeof(d->device_key_public),
                             &d->device_key_public_len)) != TETHER_OK ||
        (rc = tether_pg_blob(row, c + 3, d->counter_public, sizeof(d->counter_public),
                             &d->counter_public_len)) != TETHER_OK ||
        (rc = tether_pg_blob(row, c + 4, d->pcr_digest, sizeof(d->pcr_digest),
                             &d->pcr_digest_len)) != TETHER_OK ||
        (rc = tether_pg_blob(row, c + 5, d->last_fingerprint, sizeof(d->last_fingerprint),
                             &fingerprint_len)) != TETHER_OK)
        return rc;
    /* The fingerprint is written by accepted exchanges only, with the rest
     * of the sighting. */
    if (fingerprint_len == sizeof(d->last_fingerprint) && d->device.has_counter) {
        d->has_last = true;
        d->last.counter = d->device.highest_counter;
        d->last.clock.clock = (uint64_t)tether_pg_int64(row, c + 6);
        d->last.clock.reset_count = (uint32_t)tether_pg_int64(row, c + 7);
        d->last.clock.restart_count = (uint32_t)tether_pg_int64(row, c + 8);
        d->last.clock.safe = tether_pg_int64(row, c + 9) != 0;
        rc = tether_pg_copy_text(row, c + 10, d->last.address, sizeof(d->last.address));
        d->last.at = tether_pg_int64(row, c + 11);
        d->last_nonce_expires_at = tether_pg_int64(row, c + 12);
    } else if (fingerprint_len != 0) {
        rc = TETHER_ERR_PARSE;
    }
    return rc;
}

static tether_status_t exchange_select(tether_pg_t *db, const char *id,
                                       tether_store_exchange_device_t *device)
{
    return tether_pg_query_one(db, "read device for exchange",
                               "SELECT " EXCHANGE_COLUMNS " FROM devices WHERE id = $1",
                               PG_ARGS(PG_TEXT(id)), exchange_read, device);
}

tether_status_t tether_pg_exchange_device_get(void *impl, const char *id,
                                              tether_store_exchange_device_t *device)
{
    tether_pg_t db;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_pg_acquire(impl, &db)) != TETHER_OK)
        return rc;
    rc = exchange_select(&db, id, device);
    tether_pg_release(&db);
    return rc;
}

static tether_status_t token_read(void *arg, const tether_pg_row_t *row)
{
    tether_store_issued_token_t *t = arg;
    tether_status_t rc;

    memset(t, 0, sizeof(*t));
    if ((rc = tether_pg_copy_text(row, 0, t->jti, sizeof(t->jti))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 1, t->device_id, sizeof(t->device_id))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 6, t->kid, sizeof(t->kid))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 7, t->scope, sizeof(t->scope))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 8, t->audience, sizeof(t->audience))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 9, t->policy, sizeof(t->policy))) != TETHER_OK)
        return rc;
    t->policy_version = tether_pg_int64(row, 10); /* NULL reads as 0 */
    t->has_counter = !tether_pg_is_null(row, 2);
    t->counter = (uint64_t)tether_pg_int64(row, 2);
    t->issued_at = tether_pg_int64(row, 3);
    t->exp = tether_pg_int64(row, 4);
    t->revoked = tether_pg_int64(row, 5) != 0;
    return TETHER_OK;
}

tether_status_t tether_pg_issued_token_get(void *impl, const char *jti,
                                           tether_store_issued_token_t *token)
{
    if (jti == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(token, 0, sizeof(*token));
    return tether_pg_query_once(impl, "read issued token",
                                "SELECT " TOKEN_COLUMNS " FROM issued_tokens WHERE jti = $1",
                                PG_ARGS(PG_TEXT(jti)), token_read, token);
}

/* ---- the exchange's transaction ---- */

/* Whether an accepted exchange (on any replica) used this nonce: sent
 * ahead of the device row's read, its count read with it. */
static tether_status_t nonce_used_send(tether_pg_t *db, const tether_store_exchange_t *ex,
                                       tether_pg_sent_t *sent)
{
    return tether_pg_send(db, "look up nonce", "SELECT count(*) FROM used_nonces WHERE hash = $1",
                          PG_ARGS(PG_BLOB(ex->nonce_hash, TETHER_STORE_NONCE_HASH_SIZE)), sent);
}

/* The nonce used up: sent, read at the member's end. Expired ones are
 * purged after the batch (purge_nonces). */
static tether_status_t use_nonce_send(tether_pg_t *db, const tether_store_exchange_t *ex)
{
    return tether_pg_send(db, "use nonce",
                          "INSERT INTO used_nonces (hash, expires_at) VALUES ($1, $2)",
                          PG_ARGS(PG_BLOB(ex->nonce_hash, TETHER_STORE_NONCE_HASH_SIZE),
                                  PG_INT(ex->nonce_expires_at)),
                          NULL);
}

/* The nonces expired by the latest accepted exchange of a committed batch
 * deleted, in a statement of its own at READ COMMITTED. Inside the
 * SERIALIZABLE transaction every replica's batch deleted the same expired
 * rows and read the same index range, and so aborted the others' batches
 * (the exchanges then failed past their 8 attempts, with two replicas under
 * load); here a row another replica deleted first is skipped. No decision
 * reads an expired nonce: an expired challenge is refused before the
 * store. A purge that fails is logged and left to the next batch. */
static void purge_nonces(pg_store_t *s, const tether_store_exchange_item_t *items, size_t count)
{
    int64_t at = 0;
    bool accepted = false;

    for (size_t i = 0; i < count; i++) {
        if (items[i].status != TETHER_OK ||
            items[i].result->decision != TETHER_STORE_EXCHANGE_ACCEPT)
            continue;
        accepted = true;
        if (items[i].exchange->sighting.at > at)
            at = items[i].exchange->sighting.at;
    }
    if (accepted)
        (void)tether_pg_run_once(s, "purge expired nonces",
                                 "DELETE FROM used_nonces WHERE expires_at <= $1",
                                 PG_ARGS(PG_INT(at)), NULL);
}

static tether_status_t accept_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                 const tether_store_exchange_device_t *row)
{
    /* The compare-and-set: only a counter above the stored one is written. */
    static const char update_sql[] =
        "UPDATE devices SET highest_counter = $2, last_clock = $3, last_reset_count = $4, "
        "last_restart_count = $5, last_clock_safe = $6, pcr_digest = coalesce(pcr_digest, $7), "
        "last_fingerprint = $8, last_address = $9, last_seen_at = $10, "
        "last_nonce_expires_at = $11 WHERE id = $1 AND status = 'active' "
        "AND (highest_counter IS NULL OR highest_counter < $2)";
    static const char token_sql[] =
        "INSERT INTO issued_tokens (jti, device_id, counter, issued_at, exp, kid, scope, "
        "audience, policy, policy_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    const tether_store_sighting_t *now = &ex->sighting;
    bool first_digest =
        row->pcr_digest_len == 0 && ex->pcr_digest != NULL && ex->pcr_digest_len > 0;
    uint64_t changed = 0;
    tether_status_t rc;

    rc = tether_pg_run(
        db, "record exchange", update_sql,
        PG_ARGS(PG_TEXT(ex->device_id), PG_INT(now->counter), PG_INT(now->clock.clock),
                PG_INT(now->clock.reset_count), PG_INT(now->clock.restart_count),
                PG_INT(now->clock.safe ? 1 : 0),
                first_digest ? PG_BLOB(ex->pcr_digest, ex->pcr_digest_len) : PG_NULL,
                PG_BLOB(ex->fingerprint, TETHER_STORE_FINGERPRINT_SIZE),
                PG_TEXT(now->address[0] != '\0' ? now->address : "-"), PG_INT(now->at),
                PG_INT(ex->nonce_expires_at)),
        &changed);
    if (rc == TETHER_OK && changed != 1) {
        /* Another replica moved the row since it was read: decide again. */
        db->retry = true;
        return TETHER_ERR_STORE;
    }
    /* What is left decides nothing: sent, and read with the member's end
     * (member_tx). */
    if (rc == TETHER_OK)
        rc = tether_pg_send(db, "record issued token", token_sql,
                            PG_ARGS(PG_TEXT(ex->jti), PG_TEXT(ex->device_id),
                                    PG_INT(now->counter), PG_INT(now->at), PG_INT(ex->exp),
                                    PG_TEXT(ex->kid), PG_TEXT(ex->scope), PG_TEXT(ex->audience),
                                    PG_TEXT(ex->policy), PG_INT(ex->policy_version)),
                            NULL);
    if (rc == TETHER_OK)
        rc = use_nonce_send(db, ex);
    return rc;
}

static tether_status_t retry_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                tether_store_issued_token_t *token)
{
    static const char sql[] = "SELECT " TOKEN_COLUMNS " FROM issued_tokens WHERE device_id = $1 "
                              "AND counter = $2 ORDER BY issued_at DESC, row_order DESC LIMIT 1";

    return tether_pg_query_one(db, "read issued token", sql,
                               PG_ARGS(PG_TEXT(ex->device_id), PG_INT(ex->sighting.counter)),
                               token_read, token);
}

/* The containment of DESIGN.md, "Clone detection", in the caller's
 * transaction. */
static tether_status_t quarantine_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                     const tether_store_exchange_device_t *row,
                                     tether_store_exchange_decision_t decision, int64_t now)
{
    static const char status_sql[] = "UPDATE devices SET status = 'quarantined', "
                                     "status_reason = $2, updated_at = $3 WHERE id = $1";
    char reason[TETHER_STORE_REASON_MAX + 1];
    char *details = NULL;
    tether_status_t rc;

    rc = tether_store_clone_reason(ex, row, decision, reason, &details);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "quarantine device", status_sql,
                           PG_ARGS(PG_TEXT(ex->device_id), PG_TEXT(reason), PG_INT(now)), NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_revoke_tokens(db, ex->device_id, reason, now);
    if (rc == TETHER_OK)
        rc = tether_pg_alert_insert(db, ex->device_id, tether_store_clone_alert_kind(decision),
                                    details, now);
    free(details);
    return rc;
}

/* One exchange's checks and writes, inside the batch's transaction; row is
 * scratch space for the device row. */
static tether_status_t exchange_tx(tether_pg_t *db, const tether_store_exchange_t *ex,
                                   int64_t now, tether_store_exchange_device_t *row,
                                   tether_store_exchange_result_t *result)
{
    int64_t nonce_uses = 0;
    tether_pg_sent_t nonce = {tether_pg_read_int64, &nonce_uses, TETHER_OK};
    bool quarantined = false;
    tether_status_t rc;

    /* One round trip: the nonce's uses and the device row. */
    if ((rc = nonce_used_send(db, ex, &nonce)) != TETHER_OK ||
        (rc = exchange_select(db, ex->device_id, row)) != TETHER_OK)
        return rc;
    result->decision = tether_store_exchange_decide(row, ex, nonce_uses > 0);
    result->status = row->device.status;
    result->has_last = row->has_last;
    result->last = row->last;
    switch (result->decision) {
    case TETHER_STORE_EXCHANGE_ACCEPT:
        /* As on SQLite: the source first, then the usage document; either
         * may quarantine the device instead of issuing a token. */
        if (ex->source_threshold != NULL)
            rc = tether_pg_source_tx(db, ex, now, result, &quarantined);
        if (rc == TETHER_OK && quarantined) {
            result->decision = TETHER_STORE_EXCHANGE_SOURCE_REFUSED;
            result->status = TETHER_DEVICE_QUARANTINED;
            break;
        }
        if (rc == TETHER_OK)
            rc = tether_pg_usage_exchange_tx(db, ex, now, result, &quarantined);
        if (rc == TETHER_OK && quarantined) {
            result->decision = TETHER_STORE_EXCHANGE_USAGE_MISMATCH;
            result->status = TETHER_DEVICE_QUARANTINED;
        } else if (rc == TETHER_OK) {
            rc = accept_tx(db, ex, row);
        }
        break;
    case TETHER_STORE_EXCHANGE_USAGE_MISMATCH: /* decided above, never by the rule */
    case TETHER_STORE_EXCHANGE_SOURCE_REFUSED:
    case TETHER_STORE_EXCHANGE_RETRY:
        rc = retry_tx(db, ex, &result->token);
        break;
    case TETHER_STORE_EXCHANGE_CLONE:
    case TETHER_STORE_EXCHANGE_CLOCK_REGRESSION:
        rc = quarantine_tx(db, ex, row, result->decision, now);
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
 * when it fails. *batch_rc is set when the batch's transaction is lost: the
 * savepoint cannot be taken or undone, or the member lost its attempt to a
 * concurrent transaction (db->retry: a serialization failure, a deadlock or
 * the counter's compare-and-set changing no row), which rolling back to the
 * savepoint would not mend, since the batch's reads are part of the
 * conflict too. The savepoint goes in the member's first round trip, and
 * its release in the next member's or the commit's: a release that fails
 * makes the next savepoint (or the commit) fail, and so the batch. */
static tether_status_t member_tx(tether_pg_t *db, tether_store_exchange_item_t *item,
                                 tether_store_exchange_device_t *row, tether_status_t *batch_rc)
{
    tether_pg_sent_t savepoint = {NULL, NULL, TETHER_OK};
    tether_status_t rc, sent;

    memset(item->result, 0, sizeof(*item->result));
    if (!tether_store_exchange_valid(item->exchange))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((*batch_rc = tether_pg_send(db, "open exchange savepoint", "SAVEPOINT exchange",
                                    PG_NO_ARGS, &savepoint)) != TETHER_OK)
        return *batch_rc;
    rc = exchange_tx(db, item->exchange, item->now, row, item->result);
    /* The member's writes still in flight are part of its outcome. */
    sent = tether_pg_flush(db);
    rc = rc == TETHER_OK ? sent : rc;
    if (savepoint.status != TETHER_OK)
        *batch_rc = rc != TETHER_OK ? rc : savepoint.status;
    else if (rc != TETHER_OK && db->retry)
        *batch_rc = rc;
    else if (rc != TETHER_OK)
        *batch_rc = tether_pg_run(db, "undo exchange", "ROLLBACK TO SAVEPOINT exchange",
                                  PG_NO_ARGS, NULL);
    if (*batch_rc == TETHER_OK)
        *batch_rc = tether_pg_send(db, "release exchange savepoint",
                                   "RELEASE SAVEPOINT exchange", PG_NO_ARGS, NULL);
    return *batch_rc == TETHER_OK ? rc : *batch_rc;
}

typedef struct batch_call {
    tether_store_exchange_item_t *items;
    size_t count;
    tether_store_exchange_device_t *row;
} batch_call_t;

/* Every member, in order. A retried attempt runs them all again from the
 * start and sets every status and result afresh, so what the caller reads
 * is the attempt that committed: an item decided ACCEPT in a lost attempt
 * may be a CLONE or RETRY in the next, decided from what the other
 * replica committed meanwhile. */
static tether_status_t batch_tx(tether_pg_t *db, void *arg)
{
    batch_call_t *call = arg;
    tether_status_t rc = TETHER_OK;

    for (size_t i = 0; i < call->count && rc == TETHER_OK; i++)
        call->items[i].status = member_tx(db, &call->items[i], call->row, &rc);
    return rc;
}

void tether_pg_exchange_batch(void *impl, tether_store_exchange_item_t *items, size_t count)
{
    batch_call_t call = {items, count, malloc(sizeof(*call.row))};
    tether_status_t rc = call.row != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;

    if (rc == TETHER_OK)
        rc = tether_pg_transaction(impl, "record exchanges", batch_tx, &call);
    if (rc == TETHER_OK)
        purge_nonces(impl, items, count);
    for (size_t i = 0; i < count; i++) {
        /* Nothing was recorded when the transaction failed. */
        if (rc != TETHER_OK)
            items[i].status = rc;
        if (items[i].status != TETHER_OK && items[i].result != NULL)
            tether_wipe(items[i].result, sizeof(*items[i].result));
    }
    if (call.row != NULL) {
        tether_wipe(call.row, sizeof(*call.row));
        free(call.row);
    }
}

/* ---- issuer keys ---- */

#define KEY_COLUMNS "kid, file, created_at, retired_at, not_after"

static tether_status_t key_read(void *arg, const tether_pg_row_t *row)
{
    tether_store_issuer_key_t *key = arg;
    tether_status_t rc;

    memset(key, 0, sizeof(*key));
    if ((rc = tether_pg_copy_text(row, 0, key->kid, sizeof(key->kid))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 1, key->file, sizeof(key->file))) != TETHER_OK)
        return rc;
    key->created_at = tether_pg_int64(row, 2);
    key->retired_at = tether_pg_int64(row, 3);
    key->not_after = tether_pg_int64(row, 4);
    return TETHER_OK;
}

static tether_status_t key_item(tether_pg_list_t *list, const tether_pg_row_t *row, bool *stop)
{
    tether_store_issuer_key_t key;
    tether_status_t rc = key_read(&key, row);

    if (rc == TETHER_OK)
        *stop = list->cb.issuer_key(list->arg, &key) != 0;
    return rc;
}

tether_status_t tether_pg_issuer_key_list(void *impl, tether_store_issuer_key_cb cb, void *arg)
{
    tether_pg_list_t list = {.read = key_item, .cb.issuer_key = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(impl, "list issuer keys",
                          "SELECT " KEY_COLUMNS " FROM issuer_keys ORDER BY created_at, row_order",
                          PG_NO_ARGS, &list);
}

static tether_status_t insert_key(tether_pg_t *db, const tether_store_issuer_key_t *key)
{
    return tether_pg_run(db, "record issuer key",
                         "INSERT INTO issuer_keys (kid, file, created_at) VALUES ($1, $2, $3)",
                         PG_ARGS(PG_TEXT(key->kid), PG_TEXT(key->file), PG_INT(key->created_at)),
                         NULL);
}

static tether_status_t add_first_tx(tether_pg_t *db, void *arg)
{
    int64_t count = 0;
    tether_status_t rc;

    /* An aggregate: always one row. */
    rc = tether_pg_query_one(db, "count issuer keys", "SELECT count(*) FROM issuer_keys",
                             PG_NO_ARGS, tether_pg_read_int64, &count);
    if (rc == TETHER_OK && count != 0)
        rc = TETHER_ERR_CONFLICT;
    return rc == TETHER_OK ? insert_key(db, arg) : rc;
}

tether_status_t tether_pg_issuer_key_add_first(void *impl, const tether_store_issuer_key_t *key)
{
    if (!tether_store_issuer_key_valid(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_transaction(impl, "record issuer key", add_first_tx, (void *)key);
}

typedef struct rotation {
    const tether_store_issuer_key_t *key;
    int64_t now;
    tether_store_issuer_key_t retired;
} rotation_t;

static tether_status_t rotate_tx(tether_pg_t *db, void *arg)
{
    static const char active_sql[] =
        "SELECT " KEY_COLUMNS " FROM issuer_keys WHERE retired_at IS NULL";
    /* Published until the last token it signed has expired. */
    static const char retire_sql[] =
        "UPDATE issuer_keys SET retired_at = $2, not_after = greatest($2, coalesce("
        "(SELECT max(exp) FROM issued_tokens WHERE kid = $1), $2)) WHERE kid = $1 "
        "RETURNING " KEY_COLUMNS;
    rotation_t *r = arg;
    char kid[sizeof(r->retired.kid)];
    tether_status_t rc;

    rc = tether_pg_query_one(db, "active key", active_sql, PG_NO_ARGS, key_read, &r->retired);
    if (rc != TETHER_OK)
        return rc;
    /* A copy: reading the row back rewrites r->retired. */
    memcpy(kid, r->retired.kid, sizeof(kid));
    rc = tether_pg_query_one(db, "retire issuer key", retire_sql,
                             PG_ARGS(PG_TEXT(kid), PG_INT(r->now)), key_read, &r->retired);
    return rc == TETHER_OK ? insert_key(db, r->key) : rc;
}

tether_status_t tether_pg_issuer_key_rotate(void *impl, const tether_store_issuer_key_t *key,
                                            int64_t now, tether_store_issuer_key_t *retired)
{
    rotation_t r = {.key = key, .now = now};
    tether_status_t rc;

    if (!tether_store_issuer_key_valid(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_transaction(impl, "rotate issuer key", rotate_tx, &r);
    if (rc == TETHER_OK && retired != NULL)
        *retired = r.retired;
    return rc;
}
