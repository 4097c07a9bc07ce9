/*
 * Enrolment sessions on PostgreSQL (store_enrollment.h): the rules of
 * store_sqlite_enrollment.c. A bootstrap token's use is consumed inside
 * the activation's transaction by an UPDATE that only succeeds while a use
 * is left, so two replicas activating with a one-use token at the same
 * moment cannot both consume it: the second's transaction is retried and
 * decided again (token used), or its UPDATE changes no row (a conflict).
 */
#include <stdlib.h>
#include <string.h>

#include "store_pg_internal.h"
#include "tether/bytes.h"

#define DELETE_SESSION "DELETE FROM enrolment_sessions WHERE id = $1"

static tether_pg_value_t blob_value(const tether_store_blob_t *blob)
{
    return PG_BLOB(blob->data, blob->len);
}

static bool blob_ok(const tether_store_blob_t *blob)
{
    return blob->data != NULL && blob->len > 0 && blob->len <= 65536;
}

typedef struct bootstrap_lookup {
    const uint8_t *hash;
    tether_store_bootstrap_t *token;
} bootstrap_lookup_t;

static tether_status_t bootstrap_match(void *arg, const tether_pg_row_t *row)
{
    bootstrap_lookup_t *lookup = arg;

    if (!tether_pg_hash_matches(row, 3, lookup->hash))
        return TETHER_ERR_NOT_FOUND;
    lookup->token->id = tether_pg_int64(row, 0);
    lookup->token->expires_at = tether_pg_int64(row, 1);
    lookup->token->uses_left = tether_pg_int64(row, 2);
    return TETHER_OK;
}

/* The bootstrap token with this hash: *found false when unknown. */
static tether_status_t bootstrap_select(tether_pg_t *db, const uint8_t *hash,
                                        tether_store_bootstrap_t *token, bool *found)
{
    static const char sql[] =
        "SELECT id, expires_at, uses_left, hash FROM bootstrap_tokens WHERE hash = $1";
    bootstrap_lookup_t lookup = {hash, token};
    tether_status_t rc;

    *found = false;
    memset(token, 0, sizeof(*token));
    rc = tether_pg_query_one(db, "find bootstrap token", sql,
                             PG_ARGS(PG_BLOB(hash, TETHER_STORE_HASH_SIZE)), bootstrap_match,
                             &lookup);
    *found = rc == TETHER_OK;
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

/* Reads the rows the decision rests on and decides; device gets the row
 * or an empty id. */
static tether_status_t authorize(tether_pg_t *db, const char *ek_sha256,
                                 const uint8_t *bootstrap_hash, int64_t now,
                                 tether_enroll_decision_t *decision, tether_store_device_t *device,
                                 tether_store_bootstrap_t *token)
{
    bool found = false;
    tether_status_t rc;

    rc = tether_pg_device_select(db, PG_SELECT_DEVICE_BY_EK, ek_sha256, device);
    if (rc == TETHER_ERR_NOT_FOUND)
        memset(device, 0, sizeof(*device));
    else if (rc != TETHER_OK)
        return rc;
    if (bootstrap_hash != NULL &&
        (rc = bootstrap_select(db, bootstrap_hash, token, &found)) != TETHER_OK)
        return rc;
    *decision = tether_enroll_decide(device->id[0] != '\0' ? device : NULL, bootstrap_hash != NULL,
                                     found ? token : NULL, now);
    return TETHER_OK;
}

tether_status_t tether_pg_enroll_authorize(void *impl, const char *ek_sha256,
                                           const uint8_t *bootstrap_hash, int64_t now,
                                           tether_enroll_decision_t *decision,
                                           tether_store_device_t *device)
{
    tether_store_device_t row;
    tether_store_bootstrap_t token;
    tether_pg_t db;
    tether_status_t rc;

    if (ek_sha256 == NULL || decision == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(&token, 0, sizeof(token));
    if ((rc = tether_pg_acquire(impl, &db)) != TETHER_OK)
        return rc;
    rc = authorize(&db, ek_sha256, bootstrap_hash, now, decision, &row, &token);
    tether_pg_release(&db);
    if (rc == TETHER_OK && device != NULL)
        *device = row;
    return rc;
}

typedef struct ek_sessions {
    int64_t count;
    int64_t oldest;
} ek_sessions_t;

static tether_status_t ek_sessions_read(void *arg, const tether_pg_row_t *row)
{
    ek_sessions_t *sessions = arg;

    sessions->count = tether_pg_int64(row, 0);
    sessions->oldest = tether_pg_int64(row, 1);
    return TETHER_OK;
}

/* source NULL: from any source. */
static tether_status_t ek_sessions_select(tether_pg_t *db, const char *ek_sha256,
                                          const char *source, ek_sessions_t *sessions)
{
    static const char sql[] = "SELECT count(*), coalesce(min(created_at), 0) "
                              "FROM enrolment_sessions WHERE ek_sha256 = $1 "
                              "AND ($2::text IS NULL OR source = $2)";

    memset(sessions, 0, sizeof(*sessions));
    /* An aggregate: always one row. */
    return tether_pg_query_one(db, "count enrolments of an EK", sql,
                               PG_ARGS(PG_TEXT(ek_sha256), PG_TEXT(source)), ek_sessions_read,
                               sessions);
}

/* Makes room for one more enrolment of the EK under max, as on SQLite. */
static tether_status_t ek_sessions_make_room(tether_pg_t *db, const char *ek_sha256,
                                             const char *source, unsigned max, int64_t now,
                                             int64_t protect_seconds, int64_t *retry_after)
{
    static const char evict_sql[] =
        "DELETE FROM enrolment_sessions WHERE id IN (SELECT id FROM enrolment_sessions "
        "WHERE ek_sha256 = $1 AND ($2::text IS NULL OR source = $2) AND created_at <= $3 "
        "ORDER BY created_at, row_order LIMIT $4)";
    ek_sessions_t sessions;
    tether_status_t rc;

    if ((rc = ek_sessions_select(db, ek_sha256, source, &sessions)) != TETHER_OK ||
        sessions.count < (int64_t)max)
        return rc;
    rc = tether_pg_run(db, "drop stale enrolments of an EK", evict_sql,
                       PG_ARGS(PG_TEXT(ek_sha256), PG_TEXT(source), PG_INT(now - protect_seconds),
                               PG_INT(sessions.count - (int64_t)max + 1)),
                       NULL);
    if (rc != TETHER_OK ||
        (rc = ek_sessions_select(db, ek_sha256, source, &sessions)) != TETHER_OK ||
        sessions.count < (int64_t)max)
        return rc;
    *retry_after = sessions.oldest + protect_seconds - now;
    if (*retry_after < 1)
        *retry_after = 1;
    return TETHER_ERR_TOO_LARGE;
}

typedef struct enrollment_add {
    const tether_store_enrollment_t *e;
    int64_t now;
    const tether_store_enrollment_bounds_t *bounds;
    int64_t wait;
} enrollment_add_t;

static tether_status_t enrollment_add_tx(tether_pg_t *db, void *arg)
{
    static const char insert_sql[] =
        "INSERT INTO enrolment_sessions (id, ek_sha256, ek_public, ek_cert, ak_public, ak_name, "
        "device_key_public, device_key_certify_attest, device_key_certify_signature, "
        "counter_nv_index, counter_nv_public, name, bootstrap_hash, created_at, expires_at, "
        "source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
    enrollment_add_t *a = arg;
    const tether_store_enrollment_t *e = a->e;
    tether_status_t rc;

    a->wait = 0;
    rc = tether_pg_run(db, "remove expired enrolments",
                       "DELETE FROM enrolment_sessions WHERE expires_at <= $1",
                       PG_ARGS(PG_INT(a->now)), NULL);
    if (rc == TETHER_OK)
        rc = ek_sessions_make_room(db, e->ek_sha256, e->source, a->bounds->max_per_source, a->now,
                                   a->bounds->protect_seconds, &a->wait);
    if (rc == TETHER_OK)
        rc = ek_sessions_make_room(db, e->ek_sha256, NULL, a->bounds->max_per_ek, a->now,
                                   a->bounds->protect_seconds, &a->wait);
    if (rc == TETHER_OK)
        rc = tether_pg_run(
            db, "record enrolment", insert_sql,
            PG_ARGS(PG_TEXT(e->id), PG_TEXT(e->ek_sha256), blob_value(&e->ek_public),
                    blob_value(&e->ek_cert), blob_value(&e->ak_public), blob_value(&e->ak_name),
                    blob_value(&e->device_key_public), blob_value(&e->certify_attest),
                    blob_value(&e->certify_signature), PG_INT(e->counter_index),
                    blob_value(&e->counter_public), e->name[0] != '\0' ? PG_TEXT(e->name) : PG_NULL,
                    e->has_bootstrap ? PG_BLOB(e->bootstrap_hash, TETHER_STORE_HASH_SIZE)
                                     : PG_NULL,
                    PG_INT(e->created_at), PG_INT(e->expires_at), PG_TEXT(e->source)),
            NULL);
    return rc;
}

tether_status_t tether_pg_enrollment_add(void *impl, const tether_store_enrollment_t *e,
                                         int64_t now,
                                         const tether_store_enrollment_bounds_t *bounds,
                                         int64_t *retry_after)
{
    enrollment_add_t a = {e, now, bounds, 0};
    tether_status_t rc;

    if (retry_after != NULL)
        *retry_after = 0;
    if (e == NULL || bounds == NULL || bounds->max_per_ek == 0 || bounds->max_per_source == 0 ||
        bounds->protect_seconds < 0 || !blob_ok(&e->ek_public) || !blob_ok(&e->ek_cert) ||
        !blob_ok(&e->ak_public) || !blob_ok(&e->ak_name) || !blob_ok(&e->device_key_public) ||
        !blob_ok(&e->certify_attest) || !blob_ok(&e->certify_signature) ||
        !blob_ok(&e->counter_public))
        return TETHER_ERR_INVALID_ARGUMENT;
    /* Refused at a bound: rolled back, so a refusal changes nothing. */
    rc = tether_pg_transaction_serial(impl, "record enrolment", TETHER_PG_ENROLMENT_LOCK,
                                      enrollment_add_tx, &a);
    if (rc == TETHER_ERR_TOO_LARGE && retry_after != NULL)
        *retry_after = a.wait;
    return rc;
}

/* A session's row (all but the blobs); the id is the caller's. */
static tether_status_t session_read(void *arg, const tether_pg_row_t *row)
{
    tether_store_enrollment_t *e = arg;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = tether_pg_copy_text(row, 0, e->ek_sha256, sizeof(e->ek_sha256))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 2, e->name, sizeof(e->name))) != TETHER_OK ||
        (rc = tether_pg_blob(row, 3, e->bootstrap_hash, sizeof(e->bootstrap_hash), &len)) !=
            TETHER_OK)
        return rc;
    if (!tether_pg_is_null(row, 3)) {
        if (len != TETHER_STORE_HASH_SIZE)
            return TETHER_ERR_PARSE;
        e->has_bootstrap = true;
    }
    e->counter_index = (uint32_t)tether_pg_int64(row, 1);
    e->created_at = tether_pg_int64(row, 4);
    e->expires_at = tether_pg_int64(row, 5);
    return TETHER_OK;
}

/* Reads a session (all but the blobs); an expired one is deleted and
 * *expired set (the deletion is committed, TETHER_OK returned). */
static tether_status_t session_select(tether_pg_t *db, const char *id, int64_t now,
                                      tether_store_enrollment_t *e, bool *expired)
{
    static const char sql[] =
        "SELECT ek_sha256, counter_nv_index, name, bootstrap_hash, created_at, expires_at "
        "FROM enrolment_sessions WHERE id = $1";
    tether_status_t rc;

    *expired = false;
    memset(e, 0, sizeof(*e));
    if (strlen(id) >= sizeof(e->id))
        return TETHER_ERR_TOO_LARGE;
    memcpy(e->id, id, strlen(id) + 1);
    rc = tether_pg_query_one(db, "read enrolment", sql, PG_ARGS(PG_TEXT(id)), session_read, e);
    if (rc == TETHER_OK && now >= e->expires_at) {
        rc = tether_pg_run(db, "delete enrolment", DELETE_SESSION, PG_ARGS(PG_TEXT(id)), NULL);
        *expired = rc == TETHER_OK;
    }
    if (rc != TETHER_OK || *expired)
        tether_wipe(e, sizeof(*e));
    return rc;
}

typedef struct session_call {
    const char *id;
    const char *new_device_id;
    int64_t now;
    bool expired;
    tether_store_enrollment_t session;
    tether_enroll_decision_t decision;
    tether_store_device_t *device; /* NULL: not wanted */
} session_call_t;

static tether_status_t find_tx(tether_pg_t *db, void *arg)
{
    session_call_t *c = arg;

    return session_select(db, c->id, c->now, &c->session, &c->expired);
}

tether_status_t tether_pg_enrollment_find(void *impl, const char *id, int64_t now,
                                          tether_store_enrollment_t *e)
{
    session_call_t *c = NULL;
    tether_status_t rc;

    if (id == NULL || e == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    c->id = id;
    c->now = now;
    /* A transaction, because an expired session is deleted on the way. */
    rc = tether_pg_transaction_serial(impl, "read enrolment", TETHER_PG_ENROLMENT_LOCK, find_tx,
                                      c);
    if (rc == TETHER_OK && c->expired)
        rc = TETHER_ERR_EXPIRED;
    if (rc == TETHER_OK)
        *e = c->session;
    tether_wipe(c, sizeof(*c));
    free(c);
    return rc;
}

tether_status_t tether_pg_enrollment_delete(void *impl, const char *id)
{
    uint64_t changed = 0;
    tether_status_t rc;

    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_run_once(impl, "delete enrolment", DELETE_SESSION, PG_ARGS(PG_TEXT(id)),
                            &changed);
    return rc == TETHER_OK && changed == 0 ? TETHER_ERR_NOT_FOUND : rc;
}

/* The device row after activation (store_sqlite_enrollment.c). */
#define ENROLLED_FROM_SESSION                                                                 \
    "(ek_public, ek_cert, ak_public, ak_name, device_key_public, device_key_certify_attest, " \
    "device_key_certify_signature, counter_nv_index, counter_nv_public) = "                  \
    "(SELECT ek_public, ek_cert, ak_public, ak_name, device_key_public, "                   \
    "device_key_certify_attest, device_key_certify_signature, counter_nv_index, "            \
    "counter_nv_public FROM enrolment_sessions WHERE id = $1), "                              \
    "status = 'active', status_reason = '', allow_reenroll = 0, highest_counter = 0, "       \
    "last_clock = NULL, last_reset_count = NULL, last_restart_count = NULL, "                \
    "last_clock_safe = NULL, pcr_digest = NULL, last_fingerprint = NULL, "                    \
    "last_address = NULL, last_seen_at = NULL, last_nonce_expires_at = NULL, "                \
    "enrollment_id = $1, updated_at = $3"

/* Runs a statement that must change exactly one row; otherwise missing. */
static tether_status_t run_one(tether_pg_t *db, const char *what, const char *sql,
                               const tether_pg_value_t *args, size_t count,
                               tether_status_t missing)
{
    uint64_t changed = 0;
    tether_status_t rc = tether_pg_run(db, what, sql, args, count, &changed);

    return rc == TETHER_OK && changed != 1 ? missing : rc;
}

static tether_status_t activate_tx(tether_pg_t *db, void *arg)
{
    static const char consume_sql[] = "UPDATE bootstrap_tokens SET uses_left = uses_left - 1 "
                                      "WHERE id = $1 AND uses_left > 0";
    static const char update_sql[] =
        "UPDATE devices SET " ENROLLED_FROM_SESSION " WHERE id = $2";
    static const char insert_sql[] =
        "INSERT INTO devices (id, name, ek_sha256, status, created_at, updated_at) "
        "SELECT $2, coalesce(name, $2), ek_sha256, 'allowed', $3, $3 "
        "FROM enrolment_sessions WHERE id = $1";
    static const char delete_sql[] =
        "DELETE FROM enrolment_sessions WHERE ek_sha256 = (SELECT ek_sha256 FROM devices "
        "WHERE id = $1)";
    session_call_t *c = arg;
    tether_store_device_t row;
    tether_store_bootstrap_t token;
    const char *device_id;
    tether_status_t rc;

    c->decision = TETHER_ENROLL_NOT_ALLOWED;
    memset(&token, 0, sizeof(token));
    if ((rc = session_select(db, c->id, c->now, &c->session, &c->expired)) != TETHER_OK ||
        c->expired)
        return rc; /* an expired session's deletion is kept */
    rc = authorize(db, c->session.ek_sha256,
                   c->session.has_bootstrap ? c->session.bootstrap_hash : NULL, c->now,
                   &c->decision, &row, &token);
    /* Refused: nothing was changed. */
    if (rc != TETHER_OK || !tether_enroll_decision_granted(c->decision))
        return rc;
    device_id = row.id[0] != '\0' ? row.id : c->new_device_id;
    if (c->decision == TETHER_ENROLL_GRANT_BOOTSTRAP)
        rc = run_one(db, "use bootstrap token", consume_sql, PG_ARGS(PG_INT(token.id)),
                     TETHER_ERR_CONFLICT);
    /* A new device is inserted as allowed, then enrolled like a known one. */
    if (rc == TETHER_OK && row.id[0] == '\0')
        rc = run_one(db, "create device", insert_sql,
                     PG_ARGS(PG_TEXT(c->id), PG_TEXT(c->new_device_id), PG_INT(c->now)),
                     TETHER_ERR_NOT_FOUND);
    if (rc == TETHER_OK)
        rc = run_one(db, "enrol device", update_sql,
                     PG_ARGS(PG_TEXT(c->id), PG_TEXT(device_id), PG_INT(c->now)),
                     TETHER_ERR_NOT_FOUND);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "delete enrolments of the EK", delete_sql,
                           PG_ARGS(PG_TEXT(device_id)), NULL);
    if (rc == TETHER_OK && c->device != NULL)
        rc = tether_pg_device_select(db, PG_SELECT_DEVICE_BY_EK, c->session.ek_sha256, c->device);
    return rc;
}

tether_status_t tether_pg_enrollment_activate(void *impl, const char *id,
                                              const char *new_device_id, int64_t now,
                                              tether_enroll_decision_t *decision,
                                              tether_store_device_t *device)
{
    session_call_t *c = NULL;
    tether_status_t rc;

    if (id == NULL || new_device_id == NULL || decision == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *decision = TETHER_ENROLL_NOT_ALLOWED;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    c->id = id;
    c->new_device_id = new_device_id;
    c->now = now;
    c->device = device;
    rc = tether_pg_transaction_serial(impl, "activate enrolment", TETHER_PG_ENROLMENT_LOCK,
                                      activate_tx, c);
    if (rc == TETHER_OK && c->expired)
        rc = TETHER_ERR_EXPIRED;
    if (rc == TETHER_OK || rc == TETHER_ERR_CONFLICT)
        *decision = c->decision;
    tether_wipe(c, sizeof(*c));
    free(c);
    return rc;
}

tether_status_t tether_pg_enrollment_completed(void *impl, const char *id,
                                               tether_store_device_t *device)
{
    static const char sql[] = "SELECT " PG_DEVICE_COLUMNS
                              " FROM devices WHERE enrollment_id = $1 AND status = 'active'";
    tether_pg_t db;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_pg_acquire(impl, &db)) != TETHER_OK)
        return rc;
    rc = tether_pg_device_select(&db, sql, id, device);
    tether_pg_release(&db);
    return rc;
}
