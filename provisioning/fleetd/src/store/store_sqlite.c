/*
 * The store on SQLite: one connection guarded by a mutex (fleetd's requests
 * are short), WAL journal with synchronous FULL so that a committed change
 * survives a power cut, BEGIN IMMEDIATE for every change so that two writers
 * never interleave, and a busy timeout for other processes (a second fleetd,
 * the sqlite3 shell).
 */
#include "store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_schema.h"
#include "store_sqlite_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"

#define BUSY_TIMEOUT_MS 5000

static tether_status_t db_fail(sqlite_store_t *s, const char *what)
{
    tether_error("store", "%s: %s", what, sqlite3_errmsg(s->db));
    return TETHER_ERR_STORE;
}

static tether_status_t db_exec(sqlite_store_t *s, const char *sql)
{
    char *message = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        tether_error("store", "%s", message != NULL ? message : sqlite3_errmsg(s->db));
        sqlite3_free(message);
        return TETHER_ERR_STORE;
    }
    return TETHER_OK;
}

static tether_status_t db_prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    return TETHER_OK;
}

/* Steps a statement that returns no row. A constraint (a duplicate) is a
 * conflict, not a database failure. */
static tether_status_t db_step_done(sqlite_store_t *s, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_CONSTRAINT)
        return TETHER_ERR_CONFLICT;
    if (rc != SQLITE_DONE)
        return db_fail(s, what);
    return TETHER_OK;
}

static tether_status_t db_begin(sqlite_store_t *s)
{
    return db_exec(s, "BEGIN IMMEDIATE");
}

static tether_status_t db_finish(sqlite_store_t *s, tether_status_t rc)
{
    if (rc == TETHER_OK)
        rc = db_exec(s, "COMMIT");
    if (rc != TETHER_OK && !sqlite3_get_autocommit(s->db))
        (void)db_exec(s, "ROLLBACK");
    return rc;
}

static tether_status_t copy_text(char *out, size_t out_size, const unsigned char *text)
{
    size_t len = text != NULL ? strlen((const char *)text) : 0;

    if (len >= out_size)
        return TETHER_ERR_TOO_LARGE;
    if (len > 0)
        memcpy(out, text, len);
    out[len] = '\0';
    return TETHER_OK;
}

/* ---- schema ---- */

static tether_status_t read_version(sqlite_store_t *s, int *version)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    *version = 0;
    if ((rc = db_prepare(s, "SELECT version FROM schema_version", &stmt)) != TETHER_OK)
        return rc;
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *version = sqlite3_column_int(stmt, 0);
    else if (step != SQLITE_DONE)
        rc = db_fail(s, "read schema version");
    sqlite3_finalize(stmt);
    return rc;
}

static tether_status_t write_version(sqlite_store_t *s, int version)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if ((rc = db_exec(s, "DELETE FROM schema_version")) != TETHER_OK)
        return rc;
    if ((rc = db_prepare(s, "INSERT INTO schema_version (version) VALUES (?)", &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_int(stmt, 1, version);
    rc = db_step_done(s, stmt, "write schema version");
    sqlite3_finalize(stmt);
    return rc;
}

/* Applies every pending migration in one transaction: a database is either
 * at its old version or at the newest, never in between. */
static tether_status_t migrate(sqlite_store_t *s)
{
    tether_status_t rc;
    int version = 0;
    int latest = tether_store_latest_version();

    if ((rc = db_begin(s)) != TETHER_OK)
        return rc;
    rc = db_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    if (rc == TETHER_OK)
        rc = read_version(s, &version);
    if (rc == TETHER_OK && version > latest) {
        tether_error("store", "database schema version %d is newer than this build knows (%d): "
                              "upgrade tether-fleetd", version, latest);
        rc = TETHER_ERR_UNSUPPORTED;
    }
    for (int v = version; rc == TETHER_OK && v < latest; v++) {
        rc = db_exec(s, tether_store_migrations[v]);
        if (rc == TETHER_OK)
            rc = write_version(s, v + 1);
        if (rc == TETHER_OK)
            tether_info("store", "applied schema migration %d", v + 1);
    }
    return db_finish(s, rc);
}

int tether_store_latest_version(void)
{
    return (int)tether_store_migration_count;
}

static tether_status_t op_schema_version(void *impl, int *version)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (version == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = read_version(s, version);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- admin tokens ---- */

static tether_status_t op_admin_token_create(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                             unsigned roles, const char *name, int64_t now,
                                             int64_t *id)
{
    static const char sql[] =
        "INSERT INTO admin_tokens (hash, roles, name, created_at) VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    char role_text[64];
    tether_status_t rc;

    if (hash == NULL || name == NULL || (roles & ~TETHER_ROLE_KNOWN) != 0 || roles == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_roles_format(roles, role_text, sizeof(role_text))) != TETHER_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_blob(stmt, 1, hash, TETHER_STORE_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, role_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now);
    if ((rc = db_step_done(s, stmt, "create admin token")) == TETHER_OK && id != NULL)
        *id = sqlite3_last_insert_rowid(s->db);
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t admin_token_row(sqlite3_stmt *stmt, tether_store_admin_token_t *token)
{
    tether_status_t rc;

    memset(token, 0, sizeof(*token));
    token->id = sqlite3_column_int64(stmt, 0);
    rc = tether_roles_parse((const char *)sqlite3_column_text(stmt, 1), &token->roles);
    if (rc == TETHER_OK)
        rc = copy_text(token->name, sizeof(token->name), sqlite3_column_text(stmt, 2));
    if (rc != TETHER_OK)
        return rc;
    token->created_at = sqlite3_column_int64(stmt, 3);
    token->revoked_at = sqlite3_column_int64(stmt, 4);
    return TETHER_OK;
}

static tether_status_t op_admin_token_find(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                           tether_store_admin_token_t *token)
{
    static const char sql[] = "SELECT id, roles, name, created_at, revoked_at, hash "
                              "FROM admin_tokens WHERE hash = ?";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    if (hash == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(token, 0, sizeof(*token));
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_blob(stmt, 1, hash, TETHER_STORE_HASH_SIZE, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = TETHER_ERR_NOT_FOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(s, "find admin token");
        goto out;
    }
    /* The index lookup is not constant-time; the final comparison is. */
    if (sqlite3_column_bytes(stmt, 5) != TETHER_STORE_HASH_SIZE ||
        !tether_ct_equal(sqlite3_column_blob(stmt, 5), hash, TETHER_STORE_HASH_SIZE)) {
        rc = TETHER_ERR_NOT_FOUND;
        goto out;
    }
    if ((rc = admin_token_row(stmt, token)) == TETHER_OK && token->revoked_at != 0)
        rc = TETHER_ERR_NOT_FOUND;
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t row_exists(sqlite_store_t *s, const char *sql, int64_t id, bool *exists)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    step = sqlite3_step(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_fail(s, "lookup");
    *exists = step == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return rc;
}

static tether_status_t op_admin_token_revoke(void *impl, int64_t id, int64_t now)
{
    static const char sql[] =
        "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    bool exists = false;

    pthread_mutex_lock(&s->lock);
    if ((rc = db_begin(s)) != TETHER_OK)
        goto out;
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_int64(stmt, 1, now);
    sqlite3_bind_int64(stmt, 2, id);
    if ((rc = db_step_done(s, stmt, "revoke admin token")) != TETHER_OK)
        goto out;
    if (sqlite3_changes(s->db) == 0) {
        rc = row_exists(s, "SELECT 1 FROM admin_tokens WHERE id = ?", id, &exists);
        if (rc == TETHER_OK)
            rc = exists ? TETHER_ERR_CONFLICT : TETHER_ERR_NOT_FOUND;
    }
out:
    sqlite3_finalize(stmt);
    rc = db_finish(s, rc);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_admin_token_list(void *impl, tether_store_admin_token_cb cb, void *arg)
{
    static const char sql[] =
        "SELECT id, roles, name, created_at, revoked_at FROM admin_tokens ORDER BY id";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_store_admin_token_t token;
    tether_status_t rc;
    int step;

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((rc = admin_token_row(stmt, &token)) != TETHER_OK || cb(arg, &token) != 0)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = db_fail(s, "list admin tokens");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- devices ---- */

/* DEVICE_COLUMNS (store_sqlite_internal.h) in the order device_row reads them. */
static tether_status_t device_row(sqlite3_stmt *stmt, tether_store_device_t *device)
{
    tether_status_t rc;

    memset(device, 0, sizeof(*device));
    rc = copy_text(device->id, sizeof(device->id), sqlite3_column_text(stmt, 0));
    if (rc == TETHER_OK)
        rc = copy_text(device->name, sizeof(device->name), sqlite3_column_text(stmt, 1));
    if (rc == TETHER_OK)
        rc = copy_text(device->ek_sha256, sizeof(device->ek_sha256), sqlite3_column_text(stmt, 2));
    if (rc == TETHER_OK)
        rc = tether_device_status_parse((const char *)sqlite3_column_text(stmt, 3),
                                        &device->status);
    if (rc == TETHER_OK)
        rc = copy_text(device->status_reason, sizeof(device->status_reason),
                       sqlite3_column_text(stmt, 4));
    if (rc != TETHER_OK)
        return rc;
    device->allow_reenroll = sqlite3_column_int(stmt, 5) != 0;
    device->enrolled = sqlite3_column_int(stmt, 6) != 0;
    device->has_counter = sqlite3_column_type(stmt, 7) != SQLITE_NULL;
    device->highest_counter = (uint64_t)sqlite3_column_int64(stmt, 7);
    device->created_at = sqlite3_column_int64(stmt, 8);
    device->updated_at = sqlite3_column_int64(stmt, 9);
    if (sqlite3_column_type(stmt, 10) != SQLITE_NULL) {
        const void *name = sqlite3_column_blob(stmt, 10);
        int len = sqlite3_column_bytes(stmt, 10);
        if (len < 0 || (size_t)len > TETHER_STORE_AK_NAME_MAX)
            return TETHER_ERR_TOO_LARGE;
        rc = tether_hex_encode(name, (size_t)len, device->ak_name, sizeof(device->ak_name));
        if (rc != TETHER_OK)
            return rc;
    }
    if (sqlite3_column_type(stmt, 11) != SQLITE_NULL) {
        sqlite3_int64 index = sqlite3_column_int64(stmt, 11);
        if (index < 0 || index > (sqlite3_int64)UINT32_MAX)
            return TETHER_ERR_PARSE;
        device->has_counter_index = true;
        device->counter_index = (uint32_t)index;
    }
    return TETHER_OK;
}

/* Called with the lock held. */
static tether_status_t device_select(sqlite_store_t *s, const char *sql, const char *key,
                                     tether_store_device_t *device)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = device_row(stmt, device);
    else if (step == SQLITE_DONE)
        rc = TETHER_ERR_NOT_FOUND;
    else
        rc = db_fail(s, "read device");
    sqlite3_finalize(stmt);
    return rc;
}

static tether_status_t op_device_get(void *impl, const char *id, tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = device_select(s, "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = ?", id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_device_find_ek(void *impl, const char *ek_sha256,
                                         tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (ek_sha256 == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = device_select(s, "SELECT " DEVICE_COLUMNS " FROM devices WHERE ek_sha256 = ?", ek_sha256,
                       device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_device_list(void *impl, tether_store_device_cb cb, void *arg)
{
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_store_device_t device;
    tether_status_t rc;
    int step;

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, "SELECT " DEVICE_COLUMNS " FROM devices ORDER BY created_at, rowid",
                         &stmt)) != TETHER_OK)
        goto out;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((rc = device_row(stmt, &device)) != TETHER_OK || cb(arg, &device) != 0)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = db_fail(s, "list devices");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* One import row inside the open transaction: *created is set when new. */
static tether_status_t import_row(sqlite_store_t *s, sqlite3_stmt *find, sqlite3_stmt *insert,
                                  const tether_store_allow_t *row, int64_t now, bool *created)
{
    tether_status_t rc = TETHER_OK;
    int step;

    *created = false;
    sqlite3_reset(find);
    sqlite3_bind_text(find, 1, row->ek_sha256, -1, SQLITE_STATIC);
    step = sqlite3_step(find);
    if (step == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(find, 0);
        return name != NULL && strcmp(name, row->name) == 0 ? TETHER_OK : TETHER_ERR_CONFLICT;
    }
    if (step != SQLITE_DONE)
        return db_fail(s, "find device");
    sqlite3_reset(insert);
    sqlite3_bind_text(insert, 1, row->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 2, row->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 3, row->ek_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(insert, 4, now);
    if ((rc = db_step_done(s, insert, "allow device")) == TETHER_OK)
        *created = true;
    return rc;
}

static tether_status_t op_device_import(void *impl, const tether_store_allow_t *rows, size_t count,
                                        int64_t now, size_t *created, size_t *conflict_index)
{
    static const char find_sql[] = "SELECT name FROM devices WHERE ek_sha256 = ?";
    static const char insert_sql[] =
        "INSERT INTO devices (id, name, ek_sha256, status, created_at, updated_at) "
        "VALUES (?, ?, ?, 'allowed', ?4, ?4)";
    sqlite_store_t *s = impl;
    sqlite3_stmt *find = NULL;
    sqlite3_stmt *insert = NULL;
    tether_status_t rc;
    size_t new_rows = 0;

    if (rows == NULL && count > 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_begin(s)) != TETHER_OK)
        goto out;
    if ((rc = db_prepare(s, find_sql, &find)) != TETHER_OK ||
        (rc = db_prepare(s, insert_sql, &insert)) != TETHER_OK)
        goto out;
    for (size_t i = 0; i < count; i++) {
        bool is_new = false;
        if ((rc = import_row(s, find, insert, &rows[i], now, &is_new)) != TETHER_OK) {
            if (conflict_index != NULL)
                *conflict_index = i;
            goto out;
        }
        new_rows += is_new ? 1 : 0;
    }
out:
    sqlite3_finalize(find);
    sqlite3_finalize(insert);
    rc = db_finish(s, rc);
    pthread_mutex_unlock(&s->lock);
    if (created != NULL)
        *created = rc == TETHER_OK ? new_rows : 0;
    return rc;
}

/* Which status an action leads to, or TETHER_ERR_CONFLICT from this one. */
static tether_status_t status_after(tether_device_action_t action, tether_device_status_t from,
                                    tether_device_status_t *to)
{
    switch (action) {
    case TETHER_DEVICE_REVOKE:
        *to = TETHER_DEVICE_REVOKED;
        return from == TETHER_DEVICE_REVOKED ? TETHER_ERR_CONFLICT : TETHER_OK;
    case TETHER_DEVICE_QUARANTINE:
        *to = TETHER_DEVICE_QUARANTINED;
        return from == TETHER_DEVICE_REVOKED || from == TETHER_DEVICE_QUARANTINED
                   ? TETHER_ERR_CONFLICT
                   : TETHER_OK;
    case TETHER_DEVICE_REINSTATE:
        *to = TETHER_DEVICE_ALLOWED;
        return from == TETHER_DEVICE_REVOKED || from == TETHER_DEVICE_QUARANTINED
                   ? TETHER_OK
                   : TETHER_ERR_CONFLICT;
    }
    return TETHER_ERR_INVALID_ARGUMENT;
}

static tether_status_t run_bound(sqlite_store_t *s, const char *sql, const char *what,
                                 const char *id, const char *text, int64_t number)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, number);
    rc = db_step_done(s, stmt, what);
    sqlite3_finalize(stmt);
    return rc;
}

/* Marks every unexpired token of the device revoked and appends to the feed. */
static tether_status_t revoke_tokens(sqlite_store_t *s, const char *id, const char *reason,
                                     int64_t now)
{
    static const char tokens_sql[] = "UPDATE issued_tokens SET revoked = 1 "
                                     "WHERE device_id = ?1 AND revoked = 0 AND exp > ?3";
    static const char feed_sql[] = "INSERT INTO revocations (device_id, jti, reason, created_at) "
                                   "VALUES (?1, NULL, ?2, ?3)";
    tether_status_t rc = run_bound(s, tokens_sql, "revoke issued tokens", id, reason, now);

    if (rc == TETHER_OK)
        rc = run_bound(s, feed_sql, "append revocation", id, reason, now);
    return rc;
}

static tether_status_t change_status_tx(sqlite_store_t *s, const char *id,
                                        tether_device_action_t action, const char *reason,
                                        int64_t now)
{
    static const char update_sql[] =
        "UPDATE devices SET status = ?4, status_reason = ?2, allow_reenroll = ?5, "
        "updated_at = ?3 WHERE id = ?1";
    tether_store_device_t current;
    tether_device_status_t next;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    rc = device_select(s, "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = ?", id, &current);
    if (rc != TETHER_OK)
        return rc;
    if ((rc = status_after(action, current.status, &next)) != TETHER_OK)
        return rc;
    if ((rc = db_prepare(s, update_sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now);
    sqlite3_bind_text(stmt, 4, tether_device_status_name(next), -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 5, action == TETHER_DEVICE_REINSTATE ? 1 : 0);
    rc = db_step_done(s, stmt, "change device status");
    sqlite3_finalize(stmt);
    if (rc == TETHER_OK && action != TETHER_DEVICE_REINSTATE)
        rc = revoke_tokens(s, id, reason, now);
    return rc;
}

static tether_status_t op_device_change_status(void *impl, const char *id,
                                               tether_device_action_t action, const char *reason,
                                               int64_t now, tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || reason == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_begin(s)) == TETHER_OK)
        rc = db_finish(s, change_status_tx(s, id, action, reason, now));
    if (rc == TETHER_OK && device != NULL)
        rc = device_select(s, "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = ?", id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- bootstrap tokens, alerts, issued tokens, revocation feed ---- */

static tether_status_t op_bootstrap_token_create(void *impl,
                                                 const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                 int64_t expires_at, unsigned uses, int64_t now)
{
    static const char sql[] = "INSERT INTO bootstrap_tokens (hash, expires_at, uses_left, "
                              "created_at) VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if (hash == NULL || uses == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) == TETHER_OK) {
        sqlite3_bind_blob(stmt, 1, hash, TETHER_STORE_HASH_SIZE, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, expires_at);
        sqlite3_bind_int64(stmt, 3, (sqlite3_int64)uses);
        sqlite3_bind_int64(stmt, 4, now);
        rc = db_step_done(s, stmt, "create bootstrap token");
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_alert_add(void *impl, const char *device_id, const char *kind,
                                    const char *details_json, int64_t now)
{
    static const char sql[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if (kind == NULL || details_json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) == TETHER_OK) {
        sqlite3_bind_text(stmt, 1, device_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, details_json, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, now);
        rc = db_step_done(s, stmt, "add alert");
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_alert_list(void *impl, int64_t after_id, unsigned limit,
                                     tether_store_alert_cb cb, void *arg)
{
    static const char sql[] = "SELECT id, device_id, kind, details, created_at FROM alerts "
                              "WHERE id > ? ORDER BY id LIMIT ?";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_store_alert_t alert;
    tether_status_t rc;
    int step;

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_int64(stmt, 1, after_id);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)limit);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        memset(&alert, 0, sizeof(alert));
        alert.id = sqlite3_column_int64(stmt, 0);
        if ((rc = copy_text(alert.device_id, sizeof(alert.device_id),
                            sqlite3_column_text(stmt, 1))) != TETHER_OK)
            goto out;
        alert.kind = (const char *)sqlite3_column_text(stmt, 2);
        alert.details_json = (const char *)sqlite3_column_text(stmt, 3);
        alert.created_at = sqlite3_column_int64(stmt, 4);
        if (cb(arg, &alert) != 0)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = db_fail(s, "list alerts");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_issued_token_add(void *impl, const char *jti, const char *device_id,
                                           int64_t exp, int64_t now)
{
    static const char sql[] = "INSERT INTO issued_tokens (jti, device_id, exp, issued_at) "
                              "VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if (jti == NULL || device_id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) == TETHER_OK) {
        sqlite3_bind_text(stmt, 1, jti, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, device_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, exp);
        sqlite3_bind_int64(stmt, 4, now);
        rc = db_step_done(s, stmt, "record issued token");
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_issued_token_revoked(void *impl, const char *jti, bool *revoked)
{
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    if (jti == NULL || revoked == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, "SELECT revoked FROM issued_tokens WHERE jti = ?", &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, jti, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *revoked = sqlite3_column_int(stmt, 0) != 0;
    else
        rc = step == SQLITE_DONE ? TETHER_ERR_NOT_FOUND : db_fail(s, "read issued token");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_revocation_list(void *impl, int64_t after_seq, unsigned limit,
                                          tether_store_revocation_cb cb, void *arg)
{
    static const char sql[] = "SELECT seq, device_id, jti, reason, created_at FROM revocations "
                              "WHERE seq > ? ORDER BY seq LIMIT ?";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_store_revocation_t rev;
    tether_status_t rc;
    int step;

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_int64(stmt, 1, after_seq);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)limit);
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        memset(&rev, 0, sizeof(rev));
        rev.seq = sqlite3_column_int64(stmt, 0);
        if ((rc = copy_text(rev.device_id, sizeof(rev.device_id), sqlite3_column_text(stmt, 1))) !=
            TETHER_OK)
            goto out;
        rev.jti = (const char *)sqlite3_column_text(stmt, 2);
        rev.reason = (const char *)sqlite3_column_text(stmt, 3);
        rev.created_at = sqlite3_column_int64(stmt, 4);
        if (cb(arg, &rev) != 0)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = db_fail(s, "list revocations");
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_token_state(void *impl, const char *jti,
                                      tether_store_token_state_t *state)
{
    static const char sql[] = "SELECT t.device_id, t.exp, t.revoked, d.status "
                              "FROM issued_tokens t JOIN devices d ON d.id = t.device_id "
                              "WHERE t.jti = ?";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    if (jti == NULL || state == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(state, 0, sizeof(*state));
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, jti, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = TETHER_ERR_NOT_FOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(s, "read issued token");
        goto out;
    }
    rc = copy_text(state->device_id, sizeof(state->device_id), sqlite3_column_text(stmt, 0));
    if (rc == TETHER_OK)
        rc = tether_device_status_parse((const char *)sqlite3_column_text(stmt, 3),
                                        &state->device_status);
    state->exp = sqlite3_column_int64(stmt, 1);
    state->revoked = sqlite3_column_int(stmt, 2) != 0;
out:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_revocation_head(void *impl, int64_t *seq)
{
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if (seq == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *seq = 0;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_prepare(s, "SELECT coalesce(max(seq), 0) FROM revocations", &stmt)) ==
        TETHER_OK) {
        if (sqlite3_step(stmt) == SQLITE_ROW)
            *seq = sqlite3_column_int64(stmt, 0);
        else
            rc = db_fail(s, "read revocation feed head");
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- enrolment ---- */

static void bind_blob(sqlite3_stmt *stmt, int index, const tether_store_blob_t *blob)
{
    sqlite3_bind_blob(stmt, index, blob->data, (int)blob->len, SQLITE_STATIC);
}

static bool blob_ok(const tether_store_blob_t *blob)
{
    return blob->data != NULL && blob->len > 0 && blob->len <= 65536;
}

/* The bootstrap token with this hash: *found false when unknown. Called
 * with the lock held. */
static tether_status_t bootstrap_select(sqlite_store_t *s, const uint8_t *hash,
                                        tether_store_bootstrap_t *token, bool *found)
{
    static const char sql[] =
        "SELECT id, expires_at, uses_left, hash FROM bootstrap_tokens WHERE hash = ?";
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    *found = false;
    memset(token, 0, sizeof(*token));
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_blob(stmt, 1, hash, TETHER_STORE_HASH_SIZE, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        /* The index lookup is not constant-time; the final comparison is. */
        if (sqlite3_column_bytes(stmt, 3) == TETHER_STORE_HASH_SIZE &&
            tether_ct_equal(sqlite3_column_blob(stmt, 3), hash, TETHER_STORE_HASH_SIZE)) {
            token->id = sqlite3_column_int64(stmt, 0);
            token->expires_at = sqlite3_column_int64(stmt, 1);
            token->uses_left = sqlite3_column_int64(stmt, 2);
            *found = true;
        }
    } else if (step != SQLITE_DONE) {
        rc = db_fail(s, "find bootstrap token");
    }
    sqlite3_finalize(stmt);
    return rc;
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

    rc = device_select(s, "SELECT " DEVICE_COLUMNS " FROM devices WHERE ek_sha256 = ?",
                       ek_sha256, device);
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

static tether_status_t op_enroll_authorize(void *impl, const char *ek_sha256,
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

static tether_status_t op_enrollment_add(void *impl, const tether_store_enrollment_t *e,
                                         int64_t now)
{
    static const char sweep_sql[] =
        "DELETE FROM enrolment_sessions WHERE expires_at <= ? OR ek_sha256 = ?";
    static const char insert_sql[] =
        "INSERT INTO enrolment_sessions (id, ek_sha256, ek_public, ek_cert, ak_public, ak_name, "
        "device_key_public, device_key_certify_attest, device_key_certify_signature, "
        "counter_nv_index, counter_nv_public, name, bootstrap_hash, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if (e == NULL || !blob_ok(&e->ek_public) || !blob_ok(&e->ek_cert) ||
        !blob_ok(&e->ak_public) || !blob_ok(&e->ak_name) || !blob_ok(&e->device_key_public) ||
        !blob_ok(&e->certify_attest) || !blob_ok(&e->certify_signature) ||
        !blob_ok(&e->counter_public))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = db_begin(s)) != TETHER_OK)
        goto out;
    if ((rc = db_prepare(s, sweep_sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_int64(stmt, 1, now);
    sqlite3_bind_text(stmt, 2, e->ek_sha256, -1, SQLITE_STATIC);
    if ((rc = db_step_done(s, stmt, "remove old enrolments")) != TETHER_OK)
        goto out;
    sqlite3_finalize(stmt);
    if ((rc = db_prepare(s, insert_sql, &stmt)) != TETHER_OK)
        goto out;
    sqlite3_bind_text(stmt, 1, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, e->ek_sha256, -1, SQLITE_STATIC);
    bind_blob(stmt, 3, &e->ek_public);
    bind_blob(stmt, 4, &e->ek_cert);
    bind_blob(stmt, 5, &e->ak_public);
    bind_blob(stmt, 6, &e->ak_name);
    bind_blob(stmt, 7, &e->device_key_public);
    bind_blob(stmt, 8, &e->certify_attest);
    bind_blob(stmt, 9, &e->certify_signature);
    sqlite3_bind_int64(stmt, 10, (sqlite3_int64)e->counter_index);
    bind_blob(stmt, 11, &e->counter_public);
    if (e->name[0] != '\0')
        sqlite3_bind_text(stmt, 12, e->name, -1, SQLITE_STATIC);
    if (e->has_bootstrap)
        sqlite3_bind_blob(stmt, 13, e->bootstrap_hash, TETHER_STORE_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 14, e->created_at);
    sqlite3_bind_int64(stmt, 15, e->expires_at);
    rc = db_step_done(s, stmt, "record enrolment");
out:
    sqlite3_finalize(stmt);
    rc = db_finish(s, rc);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t run_id(sqlite_store_t *s, const char *sql, const char *what,
                              const char *id)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    rc = db_step_done(s, stmt, what);
    sqlite3_finalize(stmt);
    return rc;
}

/* Reads a session (all but the blobs); an expired one is deleted and
 * TETHER_ERR_EXPIRED. Called with the lock held. */
static tether_status_t session_select(sqlite_store_t *s, const char *id, int64_t now,
                                      tether_store_enrollment_t *e)
{
    static const char sql[] =
        "SELECT ek_sha256, counter_nv_index, name, bootstrap_hash, created_at, expires_at "
        "FROM enrolment_sessions WHERE id = ?";
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;
    int step;

    memset(e, 0, sizeof(*e));
    if ((rc = db_prepare(s, sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = TETHER_ERR_NOT_FOUND;
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(s, "read enrolment");
        goto out;
    }
    if ((rc = copy_text(e->id, sizeof(e->id), (const unsigned char *)id)) != TETHER_OK ||
        (rc = copy_text(e->ek_sha256, sizeof(e->ek_sha256), sqlite3_column_text(stmt, 0))) !=
            TETHER_OK ||
        (rc = copy_text(e->name, sizeof(e->name), sqlite3_column_text(stmt, 2))) != TETHER_OK)
        goto out;
    e->counter_index = (uint32_t)sqlite3_column_int64(stmt, 1);
    if (sqlite3_column_type(stmt, 3) != SQLITE_NULL) {
        if (sqlite3_column_bytes(stmt, 3) != TETHER_STORE_HASH_SIZE) {
            rc = TETHER_ERR_PARSE;
            goto out;
        }
        memcpy(e->bootstrap_hash, sqlite3_column_blob(stmt, 3), TETHER_STORE_HASH_SIZE);
        e->has_bootstrap = true;
    }
    e->created_at = sqlite3_column_int64(stmt, 4);
    e->expires_at = sqlite3_column_int64(stmt, 5);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (now >= e->expires_at) {
        rc = run_id(s, "DELETE FROM enrolment_sessions WHERE id = ?", "delete enrolment", id);
        if (rc == TETHER_OK)
            rc = TETHER_ERR_EXPIRED;
    }
out:
    sqlite3_finalize(stmt);
    if (rc != TETHER_OK)
        tether_wipe(e, sizeof(*e));
    return rc;
}

static tether_status_t op_enrollment_find(void *impl, const char *id, int64_t now,
                                          tether_store_enrollment_t *e)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || e == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    /* A transaction, because an expired session is deleted on the way. */
    if ((rc = db_begin(s)) == TETHER_OK) {
        rc = session_select(s, id, now, e);
        if (rc == TETHER_ERR_EXPIRED)
            rc = db_finish(s, TETHER_OK) == TETHER_OK ? TETHER_ERR_EXPIRED : TETHER_ERR_STORE;
        else
            rc = db_finish(s, rc);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_enrollment_delete(void *impl, const char *id)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = run_id(s, "DELETE FROM enrolment_sessions WHERE id = ?", "delete enrolment", id);
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
    "last_address = NULL, last_seen_at = NULL, updated_at = ?3"

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
    sqlite3_stmt *stmt = NULL;
    const char *device_id = device->id[0] != '\0' ? device->id : new_device_id;
    tether_status_t rc;

    if (decision == TETHER_ENROLL_GRANT_BOOTSTRAP) {
        if ((rc = db_prepare(s, consume_sql, &stmt)) != TETHER_OK)
            return rc;
        sqlite3_bind_int64(stmt, 1, token->id);
        rc = db_step_done(s, stmt, "use bootstrap token");
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (rc == TETHER_OK && sqlite3_changes(s->db) != 1)
            rc = TETHER_ERR_CONFLICT;
        if (rc != TETHER_OK)
            return rc;
    }
    /* A new device is inserted as allowed, then enrolled like a known one,
     * so both paths set the same columns. */
    if (device->id[0] == '\0') {
        if ((rc = db_prepare(s, insert_sql, &stmt)) != TETHER_OK)
            return rc;
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, new_device_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, now);
        rc = db_step_done(s, stmt, "create device");
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (rc == TETHER_OK && sqlite3_changes(s->db) != 1)
            rc = TETHER_ERR_NOT_FOUND;
        if (rc != TETHER_OK)
            return rc;
    }
    if ((rc = db_prepare(s, update_sql, &stmt)) != TETHER_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now);
    rc = db_step_done(s, stmt, "enrol device");
    sqlite3_finalize(stmt);
    if (rc == TETHER_OK && sqlite3_changes(s->db) != 1)
        rc = TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_OK)
        rc = run_id(s, "DELETE FROM enrolment_sessions WHERE id = ?", "delete enrolment", id);
    return rc;
}

static tether_status_t op_enrollment_activate(void *impl, const char *id,
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
    if ((rc = db_begin(s)) != TETHER_OK)
        goto out;
    rc = session_select(s, id, now, &session);
    if (rc == TETHER_ERR_EXPIRED) {
        /* Keep the deletion of the expired session. */
        if (db_finish(s, TETHER_OK) != TETHER_OK)
            rc = TETHER_ERR_STORE;
        goto out;
    }
    if (rc == TETHER_OK)
        rc = authorize(s, session.ek_sha256, session.has_bootstrap ? session.bootstrap_hash : NULL,
                       now, decision, &row, &token);
    if (rc == TETHER_OK && !tether_enroll_decision_granted(*decision)) {
        /* Refused: nothing may change. */
        (void)db_finish(s, TETHER_ERR_STATE);
        goto out;
    }
    if (rc == TETHER_OK)
        rc = activate_tx(s, id, new_device_id, now, *decision, &row, &token);
    rc = db_finish(s, rc);
    if (rc == TETHER_OK && device != NULL)
        rc = device_select(s, "SELECT " DEVICE_COLUMNS " FROM devices WHERE ek_sha256 = ?",
                           session.ek_sha256, device);
out:
    pthread_mutex_unlock(&s->lock);
    tether_wipe(&session, sizeof(session));
    return rc;
}

/* ---- shared with store_sqlite_exchange.c (store_sqlite_internal.h) ---- */

tether_status_t tether_sqlite_fail(sqlite_store_t *s, const char *what)
{
    return db_fail(s, what);
}

tether_status_t tether_sqlite_prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **stmt)
{
    return db_prepare(s, sql, stmt);
}

tether_status_t tether_sqlite_step_done(sqlite_store_t *s, sqlite3_stmt *stmt, const char *what)
{
    return db_step_done(s, stmt, what);
}

tether_status_t tether_sqlite_begin(sqlite_store_t *s)
{
    return db_begin(s);
}

tether_status_t tether_sqlite_finish(sqlite_store_t *s, tether_status_t rc)
{
    return db_finish(s, rc);
}

tether_status_t tether_sqlite_copy_text(char *out, size_t out_size, const unsigned char *text)
{
    return copy_text(out, out_size, text);
}

tether_status_t tether_sqlite_device_row(sqlite3_stmt *stmt, tether_store_device_t *device)
{
    return device_row(stmt, device);
}

tether_status_t tether_sqlite_revoke_tokens(sqlite_store_t *s, const char *id, const char *reason,
                                            int64_t now)
{
    return revoke_tokens(s, id, reason, now);
}

/* ---- life cycle ---- */

static void op_close(void *impl)
{
    sqlite_store_t *s = impl;

    if (s == NULL)
        return;
    if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
        tether_warn("store", "closing the database: %s", sqlite3_errmsg(s->db));
    pthread_mutex_destroy(&s->lock);
    tether_wipe(s, sizeof(*s));
    free(s);
}

static const tether_store_ops_t sqlite_ops = {
    .close = op_close,
    .schema_version = op_schema_version,
    .admin_token_create = op_admin_token_create,
    .admin_token_find = op_admin_token_find,
    .admin_token_revoke = op_admin_token_revoke,
    .admin_token_list = op_admin_token_list,
    .device_import = op_device_import,
    .device_get = op_device_get,
    .device_find_ek = op_device_find_ek,
    .device_list = op_device_list,
    .device_change_status = op_device_change_status,
    .bootstrap_token_create = op_bootstrap_token_create,
    .enroll_authorize = op_enroll_authorize,
    .enrollment_add = op_enrollment_add,
    .enrollment_find = op_enrollment_find,
    .enrollment_delete = op_enrollment_delete,
    .enrollment_activate = op_enrollment_activate,
    .alert_add = op_alert_add,
    .alert_list = op_alert_list,
    .issued_token_add = op_issued_token_add,
    .issued_token_revoked = op_issued_token_revoked,
    .revocation_list = op_revocation_list,
    .token_state = op_token_state,
    .revocation_head = op_revocation_head,
    .exchange_device_get = tether_sqlite_exchange_device_get,
    .exchange_record = tether_sqlite_exchange_record,
    .issued_token_get = tether_sqlite_issued_token_get,
    .issuer_key_list = tether_sqlite_issuer_key_list,
    .issuer_key_add_first = tether_sqlite_issuer_key_add_first,
    .issuer_key_rotate = tether_sqlite_issuer_key_rotate,
};

/* journal_mode answers with a row naming the mode it got. */
static tether_status_t set_wal(sqlite_store_t *s)
{
    sqlite3_stmt *stmt = NULL;
    tether_status_t rc;

    if ((rc = db_prepare(s, "PRAGMA journal_mode = WAL", &stmt)) != TETHER_OK)
        return rc;
    if (sqlite3_step(stmt) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") != 0)
        rc = db_fail(s, "switching the database to WAL");
    sqlite3_finalize(stmt);
    return rc;
}

tether_status_t tether_store_open_sqlite(tether_store_t *store, const char *path)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
                      SQLITE_OPEN_NOFOLLOW;
    sqlite_store_t *s = NULL;
    tether_status_t rc;

    if (store == NULL || path == NULL || store->ops != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    pthread_mutex_init(&s->lock, NULL);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        tether_error("store", "cannot open database %s: %s", path,
                     s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        rc = TETHER_ERR_STORE;
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 0);
    if (sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = db_fail(s, "busy timeout");
        goto out;
    }
    if ((rc = set_wal(s)) != TETHER_OK ||
        (rc = db_exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")) != TETHER_OK ||
        (rc = migrate(s)) != TETHER_OK)
        goto out;
    store->ops = &sqlite_ops;
    store->impl = s;
    s = NULL;
out:
    op_close(s);
    return rc;
}
