/*
 * Enrolment sessions on SQLite (store_enrollment.h): the enrolment decision from the
 * device and bootstrap token rows, sessions in flight per EK, and the
 * activation that turns a session into an enrolled device in one
 * transaction.
 */
#include <pthread.h>
#include <string.h>

#include "store_sqlite_internal.h"
#include "tether/bytes.h"

#define DELETE_SESSION "DELETE FROM enrolment_sessions WHERE id = ?"

static tether_sqlite_value_t blob_value(const tether_store_blob_t *blob)
{
    return SQL_BLOB(blob->data, blob->len);
}

static bool blob_ok(const tether_store_blob_t *blob)
{
    return blob->data != NULL && blob->len > 0 && blob->len <= 65536;
}

/* What bootstrap_select looks for and gets. */
typedef struct bootstrap_lookup {
    const uint8_t *hash;
    tether_store_bootstrap_t *token;
} bootstrap_lookup_t;

static tether_status_t bootstrap_match(void *arg, sqlite3_stmt *row)
{
    bootstrap_lookup_t *lookup = arg;

    if (!tether_sqlite_hash_matches(row, 3, lookup->hash))
        return TETHER_ERR_NOT_FOUND;
    lookup->token->id = sqlite3_column_int64(row, 0);
    lookup->token->expires_at = sqlite3_column_int64(row, 1);
    lookup->token->uses_left = sqlite3_column_int64(row, 2);
    return TETHER_OK;
}

/* The bootstrap token with this hash: *found false when unknown. Called
 * with the lock held. */
static tether_status_t bootstrap_select(sqlite_store_t *s, const uint8_t *hash,
                                        tether_store_bootstrap_t *token, bool *found)
{
    static const char sql[] =
        "SELECT id, expires_at, uses_left, hash FROM bootstrap_tokens WHERE hash = ?";
    bootstrap_lookup_t lookup = {hash, token};
    tether_status_t rc;

    *found = false;
    memset(token, 0, sizeof(*token));
    rc = tether_sqlite_query_one(s, "find bootstrap token", sql,
                                 SQL_ARGS(SQL_BLOB(hash, TETHER_STORE_HASH_SIZE)),
                                 bootstrap_match, &lookup);
    *found = rc == TETHER_OK;
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

/* Reads the rows the decision rests on and decides. device gets the row or
 * an empty id. Called with the lock held (inside a transaction when the
 * decision leads to a change). */
static tether_status_t authorize(sqlite_store_t *s, const char *ek_sha256,
                                 const uint8_t *bootstrap_hash, int64_t now,
                                 tether_enroll_decision_t *decision, tether_store_device_t *device,
                                 tether_store_bootstrap_t *token)
{
    bool found = false;
    tether_status_t rc;

    rc = tether_sqlite_device_select(s, SELECT_DEVICE_BY_EK, ek_sha256, device);
    if (rc == TETHER_ERR_NOT_FOUND)
        memset(device, 0, sizeof(*device));
    else if (rc != TETHER_OK)
        return rc;
    if (bootstrap_hash != NULL && (rc = bootstrap_select(s, bootstrap_hash, token, &found)) !=
                                      TETHER_OK)
        return rc;
    *decision = tether_enroll_decide(device->id[0] != '\0' ? device : NULL, bootstrap_hash != NULL,
                                     found ? token : NULL, now);
    return TETHER_OK;
}

tether_status_t tether_sqlite_enroll_authorize(void *impl, const char *ek_sha256,
                                               const uint8_t *bootstrap_hash, int64_t now,
                                               tether_enroll_decision_t *decision,
                                               tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_store_device_t row;
    tether_store_bootstrap_t token;
    tether_status_t rc;

    if (ek_sha256 == NULL || decision == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(&token, 0, sizeof(token));
    pthread_mutex_lock(&s->lock);
    rc = authorize(s, ek_sha256, bootstrap_hash, now, decision, &row, &token);
    pthread_mutex_unlock(&s->lock);
    if (rc == TETHER_OK && device != NULL)
        *device = row;
    return rc;
}

/* How many enrolments of one EK (from one source, or any) are in flight,
 * and since when the oldest. */
typedef struct ek_sessions {
    int64_t count;
    int64_t oldest;
} ek_sessions_t;

static tether_status_t ek_sessions_read(void *arg, sqlite3_stmt *row)
{
    ek_sessions_t *sessions = arg;

    sessions->count = sqlite3_column_int64(row, 0);
    sessions->oldest = sqlite3_column_int64(row, 1);
    return TETHER_OK;
}

/* source NULL: from any source. */
static tether_status_t ek_sessions_select(sqlite_store_t *s, const char *ek_sha256,
                                          const char *source, ek_sessions_t *sessions)
{
    static const char sql[] = "SELECT count(*), coalesce(min(created_at), 0) "
                              "FROM enrolment_sessions WHERE ek_sha256 = ?1 "
                              "AND (?2 IS NULL OR source = ?2)";

    memset(sessions, 0, sizeof(*sessions));
    /* An aggregate: always one row. */
    return tether_sqlite_query_one(s, "count enrolments of an EK", sql,
                                   SQL_ARGS(SQL_TEXT(ek_sha256), SQL_TEXT(source)),
                                   ek_sessions_read, sessions);
}

/* Makes room for one more enrolment of the EK (from source; NULL: from any)
 * under max (store_enrollment.h): drops its oldest ones that are at least
 * protect_seconds old, as many as the bound needs; TETHER_ERR_TOO_LARGE
 * with *retry_after when that is not enough. Inside the caller's
 * transaction. */
static tether_status_t ek_sessions_make_room(sqlite_store_t *s, const char *ek_sha256,
                                             const char *source, unsigned max, int64_t now,
                                             int64_t protect_seconds, int64_t *retry_after)
{
    static const char evict_sql[] =
        "DELETE FROM enrolment_sessions WHERE id IN (SELECT id FROM enrolment_sessions "
        "WHERE ek_sha256 = ?1 AND (?2 IS NULL OR source = ?2) AND created_at <= ?3 "
        "ORDER BY created_at, rowid LIMIT ?4)";
    ek_sessions_t sessions;
    tether_status_t rc;

    if ((rc = ek_sessions_select(s, ek_sha256, source, &sessions)) != TETHER_OK ||
        sessions.count < (int64_t)max)
        return rc;
    rc = tether_sqlite_run(s, "drop stale enrolments of an EK", evict_sql,
                           SQL_ARGS(SQL_TEXT(ek_sha256), SQL_TEXT(source),
                                    SQL_INT(now - protect_seconds),
                                    SQL_INT(sessions.count - (int64_t)max + 1)));
    if (rc != TETHER_OK ||
        (rc = ek_sessions_select(s, ek_sha256, source, &sessions)) != TETHER_OK ||
        sessions.count < (int64_t)max)
        return rc;
    *retry_after = sessions.oldest + protect_seconds - now;
    if (*retry_after < 1)
        *retry_after = 1;
    return TETHER_ERR_TOO_LARGE;
}

tether_status_t tether_sqlite_enrollment_add(void *impl, const tether_store_enrollment_t *e,
                                             int64_t now,
                                             const tether_store_enrollment_bounds_t *bounds,
                                             int64_t *retry_after)
{
    static const char sweep_sql[] = "DELETE FROM enrolment_sessions WHERE expires_at <= ?";
    static const char insert_sql[] =
        "INSERT INTO enrolment_sessions (id, ek_sha256, ek_public, ek_cert, ak_public, ak_name, "
        "device_key_public, device_key_certify_attest, device_key_certify_signature, "
        "counter_nv_index, counter_nv_public, name, bootstrap_hash, created_at, expires_at, "
        "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    int64_t wait = 0;
    tether_status_t rc;

    if (retry_after != NULL)
        *retry_after = 0;
    if (e == NULL || bounds == NULL || bounds->max_per_ek == 0 || bounds->max_per_source == 0 ||
        bounds->protect_seconds < 0 || !blob_ok(&e->ek_public) || !blob_ok(&e->ek_cert) ||
        !blob_ok(&e->ak_public) || !blob_ok(&e->ak_name) || !blob_ok(&e->device_key_public) ||
        !blob_ok(&e->certify_attest) || !blob_ok(&e->certify_signature) ||
        !blob_ok(&e->counter_public))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    rc = tether_sqlite_run(s, "remove expired enrolments", sweep_sql, SQL_ARGS(SQL_INT(now)));
    if (rc == TETHER_OK)
        rc = ek_sessions_make_room(s, e->ek_sha256, e->source, bounds->max_per_source, now,
                                   bounds->protect_seconds, &wait);
    if (rc == TETHER_OK)
        rc = ek_sessions_make_room(s, e->ek_sha256, NULL, bounds->max_per_ek, now,
                                   bounds->protect_seconds, &wait);
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(
            s, "record enrolment", insert_sql,
            SQL_ARGS(SQL_TEXT(e->id), SQL_TEXT(e->ek_sha256), blob_value(&e->ek_public),
                     blob_value(&e->ek_cert), blob_value(&e->ak_public), blob_value(&e->ak_name),
                     blob_value(&e->device_key_public), blob_value(&e->certify_attest),
                     blob_value(&e->certify_signature), SQL_INT(e->counter_index),
                     blob_value(&e->counter_public),
                     e->name[0] != '\0' ? SQL_TEXT(e->name) : SQL_NULL,
                     e->has_bootstrap ? SQL_BLOB(e->bootstrap_hash, TETHER_STORE_HASH_SIZE)
                                      : SQL_NULL,
                     SQL_INT(e->created_at), SQL_INT(e->expires_at), SQL_TEXT(e->source)));
out:
    /* Refused at a bound: rolled back, so a refusal changes nothing. */
    rc = tether_sqlite_finish(s, rc);
    if (rc == TETHER_ERR_TOO_LARGE && retry_after != NULL)
        *retry_after = wait;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* A session's row (all but the blobs); the id is the caller's. */
static tether_status_t session_read(void *arg, sqlite3_stmt *row)
{
    tether_store_enrollment_t *e = arg;
    tether_status_t rc;

    if ((rc = tether_sqlite_copy_text(e->ek_sha256, sizeof(e->ek_sha256),
                                      sqlite3_column_text(row, 0))) != TETHER_OK ||
        (rc = tether_sqlite_copy_text(e->name, sizeof(e->name), sqlite3_column_text(row, 2))) !=
            TETHER_OK)
        return rc;
    e->counter_index = (uint32_t)sqlite3_column_int64(row, 1);
    if (sqlite3_column_type(row, 3) != SQLITE_NULL) {
        if (sqlite3_column_bytes(row, 3) != TETHER_STORE_HASH_SIZE)
            return TETHER_ERR_PARSE;
        memcpy(e->bootstrap_hash, sqlite3_column_blob(row, 3), TETHER_STORE_HASH_SIZE);
        e->has_bootstrap = true;
    }
    e->created_at = sqlite3_column_int64(row, 4);
    e->expires_at = sqlite3_column_int64(row, 5);
    return TETHER_OK;
}

/* Reads a session (all but the blobs); an expired one is deleted and
 * TETHER_ERR_EXPIRED. Called with the lock held. */
static tether_status_t session_select(sqlite_store_t *s, const char *id, int64_t now,
                                      tether_store_enrollment_t *e)
{
    static const char sql[] =
        "SELECT ek_sha256, counter_nv_index, name, bootstrap_hash, created_at, expires_at "
        "FROM enrolment_sessions WHERE id = ?";
    tether_status_t rc;

    memset(e, 0, sizeof(*e));
    if ((rc = tether_sqlite_copy_text(e->id, sizeof(e->id), (const unsigned char *)id)) ==
        TETHER_OK)
        rc = tether_sqlite_query_one(s, "read enrolment", sql, SQL_ARGS(SQL_TEXT(id)),
                                     session_read, e);
    if (rc == TETHER_OK && now >= e->expires_at) {
        rc = tether_sqlite_run(s, "delete enrolment", DELETE_SESSION, SQL_ARGS(SQL_TEXT(id)));
        if (rc == TETHER_OK)
            rc = TETHER_ERR_EXPIRED;
    }
    if (rc != TETHER_OK)
        tether_wipe(e, sizeof(*e));
    return rc;
}

tether_status_t tether_sqlite_enrollment_find(void *impl, const char *id, int64_t now,
                                              tether_store_enrollment_t *e)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || e == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    /* A transaction, because an expired session is deleted on the way. */
    if ((rc = tether_sqlite_begin(s)) == TETHER_OK) {
        rc = session_select(s, id, now, e);
        if (rc == TETHER_ERR_EXPIRED)
            rc = tether_sqlite_finish(s, TETHER_OK) == TETHER_OK ? TETHER_ERR_EXPIRED
                                                                 : TETHER_ERR_STORE;
        else
            rc = tether_sqlite_finish(s, rc);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_enrollment_delete(void *impl, const char *id)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "delete enrolment", DELETE_SESSION, SQL_ARGS(SQL_TEXT(id)));
    if (rc == TETHER_OK && sqlite3_changes(s->db) == 0)
        rc = TETHER_ERR_NOT_FOUND;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The device row after activation: the session's blobs, status active, the
 * clone-detection state of a new device. */
#define ENROLLED_FROM_SESSION                                                                 \
    "(ek_public, ek_cert, ak_public, ak_name, device_key_public, device_key_certify_attest, " \
    "device_key_certify_signature, counter_nv_index, counter_nv_public) = "                  \
    "(SELECT ek_public, ek_cert, ak_public, ak_name, device_key_public, "                   \
    "device_key_certify_attest, device_key_certify_signature, counter_nv_index, "            \
    "counter_nv_public FROM enrolment_sessions WHERE id = ?1), "                              \
    "status = 'active', status_reason = '', allow_reenroll = 0, highest_counter = 0, "       \
    "last_clock = NULL, last_reset_count = NULL, last_restart_count = NULL, "                \
    "last_clock_safe = NULL, pcr_digest = NULL, last_fingerprint = NULL, "                    \
    "last_address = NULL, last_seen_at = NULL, last_nonce_expires_at = NULL, "                \
    "enrollment_id = ?1, updated_at = ?3"

/* Runs a statement that must change exactly one row; otherwise missing. */
static tether_status_t run_one(sqlite_store_t *s, const char *what, const char *sql,
                               const tether_sqlite_value_t *args, size_t count,
                               tether_status_t missing)
{
    tether_status_t rc = tether_sqlite_run(s, what, sql, args, count);

    return rc == TETHER_OK && sqlite3_changes(s->db) != 1 ? missing : rc;
}

/* Inside the activation's transaction, after a grant. */
static tether_status_t activate_tx(sqlite_store_t *s, const char *id, const char *new_device_id,
                                   int64_t now, tether_enroll_decision_t decision,
                                   const tether_store_device_t *device,
                                   const tether_store_bootstrap_t *token)
{
    static const char consume_sql[] =
        "UPDATE bootstrap_tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0";
    static const char update_sql[] = "UPDATE devices SET " ENROLLED_FROM_SESSION " WHERE id = ?2";
    static const char insert_sql[] =
        "INSERT INTO devices (id, name, ek_sha256, status, created_at, updated_at) "
        "SELECT ?2, coalesce(name, ?2), ek_sha256, 'allowed', ?3, ?3 "
        "FROM enrolment_sessions WHERE id = ?1";
    static const char delete_sql[] =
        "DELETE FROM enrolment_sessions WHERE ek_sha256 = (SELECT ek_sha256 FROM devices "
        "WHERE id = ?)";
    const char *device_id = device->id[0] != '\0' ? device->id : new_device_id;
    tether_status_t rc = TETHER_OK;

    if (decision == TETHER_ENROLL_GRANT_BOOTSTRAP)
        rc = run_one(s, "use bootstrap token", consume_sql, SQL_ARGS(SQL_INT(token->id)),
                     TETHER_ERR_CONFLICT);
    /* A new device is inserted as allowed, then enrolled like a known one,
     * so both paths set the same columns. */
    if (rc == TETHER_OK && device->id[0] == '\0')
        rc = run_one(s, "create device", insert_sql,
                     SQL_ARGS(SQL_TEXT(id), SQL_TEXT(new_device_id), SQL_INT(now)),
                     TETHER_ERR_NOT_FOUND);
    if (rc == TETHER_OK)
        rc = run_one(s, "enrol device", update_sql,
                     SQL_ARGS(SQL_TEXT(id), SQL_TEXT(device_id), SQL_INT(now)),
                     TETHER_ERR_NOT_FOUND);
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "delete enrolments of the EK", delete_sql,
                               SQL_ARGS(SQL_TEXT(device_id)));
    return rc;
}

tether_status_t tether_sqlite_enrollment_activate(void *impl, const char *id,
                                                  const char *new_device_id, int64_t now,
                                                  tether_enroll_decision_t *decision,
                                                  tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_store_enrollment_t session;
    tether_store_device_t row;
    tether_store_bootstrap_t token;
    tether_status_t rc;

    if (id == NULL || new_device_id == NULL || decision == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *decision = TETHER_ENROLL_NOT_ALLOWED;
    memset(&session, 0, sizeof(session));
    memset(&token, 0, sizeof(token));
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    rc = session_select(s, id, now, &session);
    if (rc == TETHER_ERR_EXPIRED) {
        /* Keep the deletion of the expired session. */
        if (tether_sqlite_finish(s, TETHER_OK) != TETHER_OK)
            rc = TETHER_ERR_STORE;
        goto out;
    }
    if (rc == TETHER_OK)
        rc = authorize(s, session.ek_sha256, session.has_bootstrap ? session.bootstrap_hash : NULL,
                       now, decision, &row, &token);
    if (rc == TETHER_OK && !tether_enroll_decision_granted(*decision)) {
        /* Refused: nothing may change. */
        (void)tether_sqlite_finish(s, TETHER_ERR_STATE);
        goto out;
    }
    if (rc == TETHER_OK)
        rc = activate_tx(s, id, new_device_id, now, *decision, &row, &token);
    rc = tether_sqlite_finish(s, rc);
    if (rc == TETHER_OK && device != NULL)
        rc = tether_sqlite_device_select(s, SELECT_DEVICE_BY_EK, session.ek_sha256, device);
out:
    pthread_mutex_unlock(&s->lock);
    tether_wipe(&session, sizeof(session));
    return rc;
}

tether_status_t tether_sqlite_enrollment_completed(void *impl, const char *id,
                                                   tether_store_device_t *device)
{
    static const char sql[] =
        "SELECT " DEVICE_COLUMNS " FROM devices WHERE enrollment_id = ? AND status = 'active'";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_device_select(s, sql, id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}
