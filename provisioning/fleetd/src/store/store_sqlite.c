/*
 * The store on SQLite: one connection guarded by a mutex (fleetd's requests
 * are short), WAL journal with synchronous FULL so that a committed change
 * survives a power cut, BEGIN IMMEDIATE for every change so that two writers
 * never interleave, and a busy timeout for other processes (a second fleetd,
 * the sqlite3 shell). Statements go through store_sqlite_db.c.
 */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_schema.h"
#include "store_sqlite_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"

#define BUSY_TIMEOUT_MS 5000
#define SELECT_DEVICE_BY_ID "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = ?"
#define SELECT_DEVICE_BY_EK "SELECT " DEVICE_COLUMNS " FROM devices WHERE ek_sha256 = ?"
#define DELETE_SESSION "DELETE FROM enrolment_sessions WHERE id = ?"

/* ---- schema ---- */

static tether_status_t version_row(void *arg, sqlite3_stmt *row)
{
    *(int *)arg = sqlite3_column_int(row, 0);
    return TETHER_OK;
}

static tether_status_t read_version(sqlite_store_t *s, int *version)
{
    tether_status_t rc;

    *version = 0;
    rc = tether_sqlite_query_one(s, "read schema version", "SELECT version FROM schema_version",
                                 SQL_NO_ARGS, version_row, version);
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

static tether_status_t write_version(sqlite_store_t *s, int version)
{
    tether_status_t rc;

    if ((rc = tether_sqlite_exec(s, "DELETE FROM schema_version")) != TETHER_OK)
        return rc;
    return tether_sqlite_run(s, "write schema version",
                             "INSERT INTO schema_version (version) VALUES (?)",
                             SQL_ARGS(SQL_INT(version)));
}

/* Applies every pending migration in one transaction: a database is either
 * at its old version or at the newest, never in between. */
static tether_status_t migrate(sqlite_store_t *s)
{
    tether_status_t rc;
    int version = 0;
    int latest = tether_store_latest_version();

    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        return rc;
    rc = tether_sqlite_exec(s,
                            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    if (rc == TETHER_OK)
        rc = read_version(s, &version);
    if (rc == TETHER_OK && version > latest) {
        tether_error("store", "database schema version %d is newer than this build knows (%d): "
                              "upgrade tether-fleetd", version, latest);
        rc = TETHER_ERR_UNSUPPORTED;
    }
    for (int v = version; rc == TETHER_OK && v < latest; v++) {
        rc = tether_sqlite_exec(s, tether_store_migrations[v]);
        if (rc == TETHER_OK)
            rc = write_version(s, v + 1);
        if (rc == TETHER_OK)
            tether_info("store", "applied schema migration %d", v + 1);
    }
    return tether_sqlite_finish(s, rc);
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

/* With s->lock held; *id gets the new row's id. */
static tether_status_t insert_admin_token(sqlite_store_t *s,
                                          const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                          const char *role_text, const char *name, int64_t now,
                                          int64_t *id)
{
    static const char sql[] =
        "INSERT INTO admin_tokens (hash, roles, name, created_at) VALUES (?, ?, ?, ?)";
    tether_status_t rc = tether_sqlite_run(s, "create admin token", sql,
                                           SQL_ARGS(SQL_BLOB(hash, TETHER_STORE_HASH_SIZE),
                                                    SQL_TEXT(role_text), SQL_TEXT(name),
                                                    SQL_INT(now)));

    *id = rc == TETHER_OK ? sqlite3_last_insert_rowid(s->db) : 0;
    return rc;
}

/* The roles column's text for a valid, non-empty set of known roles. */
static tether_status_t admin_token_roles(const uint8_t *hash, unsigned roles, const char *name,
                                         char role_text[64])
{
    if (hash == NULL || name == NULL || (roles & ~TETHER_ROLE_KNOWN) != 0 || roles == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_roles_format(roles, role_text, 64);
}

static tether_status_t op_admin_token_create(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                             unsigned roles, const char *name, int64_t now,
                                             int64_t *id)
{
    sqlite_store_t *s = impl;
    char role_text[64];
    int64_t new_id = 0;
    tether_status_t rc;

    if ((rc = admin_token_roles(hash, roles, name, role_text)) != TETHER_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    rc = insert_admin_token(s, hash, role_text, name, now, &new_id);
    if (id != NULL)
        *id = new_id;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The token and its audit alert in one transaction: a token minted
 * outside the API is never there without the record of it. */
static tether_status_t op_admin_token_recover(void *impl,
                                              const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                              unsigned roles, const char *name, int64_t uid,
                                              int64_t now, int64_t *id)
{
    static const char audit[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (NULL, ?, "
        "json_object('reason', 'admin token minted on the fleet host, outside the API', "
        "'token_id', ?, 'name', ?, 'roles', ?, 'uid', ?), ?)";
    sqlite_store_t *s = impl;
    char role_text[64];
    int64_t new_id = 0;
    tether_status_t rc;

    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *id = 0;
    if ((rc = admin_token_roles(hash, roles, name, role_text)) != TETHER_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    rc = insert_admin_token(s, hash, role_text, name, now, &new_id);
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "audit admin token", audit,
                               SQL_ARGS(SQL_TEXT(TETHER_STORE_ALERT_ADMIN_TOKEN_MINTED),
                                        SQL_INT(new_id), SQL_TEXT(name), SQL_TEXT(role_text),
                                        SQL_INT(uid), SQL_INT(now)));
out:
    rc = tether_sqlite_finish(s, rc);
    if (rc == TETHER_OK)
        *id = new_id;
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
        rc = tether_sqlite_copy_text(token->name, sizeof(token->name),
                                     sqlite3_column_text(stmt, 2));
    if (rc != TETHER_OK)
        return rc;
    token->created_at = sqlite3_column_int64(stmt, 3);
    token->revoked_at = sqlite3_column_int64(stmt, 4);
    return TETHER_OK;
}

/* What admin_token_find looks for and gets. */
typedef struct token_lookup {
    const uint8_t *hash;
    tether_store_admin_token_t *token;
} token_lookup_t;

/* Whether the hash in column is hash. The index lookup that found the row
 * is not constant-time; this final comparison is. */
static bool hash_matches(sqlite3_stmt *row, int column, const uint8_t *hash)
{
    return sqlite3_column_bytes(row, column) == TETHER_STORE_HASH_SIZE &&
           tether_ct_equal(sqlite3_column_blob(row, column), hash, TETHER_STORE_HASH_SIZE);
}

static tether_status_t admin_token_match(void *arg, sqlite3_stmt *row)
{
    token_lookup_t *lookup = arg;

    if (!hash_matches(row, 5, lookup->hash))
        return TETHER_ERR_NOT_FOUND;
    return admin_token_row(row, lookup->token);
}

static tether_status_t op_admin_token_find(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                           tether_store_admin_token_t *token)
{
    static const char sql[] = "SELECT id, roles, name, created_at, revoked_at, hash "
                              "FROM admin_tokens WHERE hash = ?";
    sqlite_store_t *s = impl;
    token_lookup_t lookup = {hash, token};
    tether_status_t rc;

    if (hash == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(token, 0, sizeof(*token));
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "find admin token", sql,
                                 SQL_ARGS(SQL_BLOB(hash, TETHER_STORE_HASH_SIZE)),
                                 admin_token_match, &lookup);
    if (rc == TETHER_OK && token->revoked_at != 0)
        rc = TETHER_ERR_NOT_FOUND;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Whether an unrevoked admin token holds role (one bit): the roles column
 * is tether_roles_format's canonical "read,fleet,security". */
static tether_status_t role_still_held(sqlite_store_t *s, unsigned role, bool *held)
{
    static const char sql[] = "SELECT 1 FROM admin_tokens WHERE revoked_at IS NULL "
                              "AND instr(',' || roles || ',', ?) > 0 LIMIT 1";
    char needle[32]; /* ",relying-party," and its NUL fit */
    tether_status_t rc;

    *held = false;
    snprintf(needle, sizeof(needle), ",%s,", tether_role_name(role));
    rc = tether_sqlite_query_one(s, "find an admin token with a role", sql,
                                 SQL_ARGS(SQL_TEXT(needle)), NULL, NULL);
    *held = rc == TETHER_OK;
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

static tether_status_t read_roles(void *arg, sqlite3_stmt *row)
{
    return tether_roles_parse((const char *)sqlite3_column_text(row, 0), arg);
}

/* The revocation and the last-token rule in one transaction: no other
 * writer can revoke the other holder of a role between the check and the
 * commit. */
static tether_status_t op_admin_token_revoke(void *impl, int64_t id, int64_t now,
                                             unsigned *last_roles)
{
    static const char sql[] =
        "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
    static const unsigned kept[] = {TETHER_ROLE_SECURITY, TETHER_ROLE_FLEET};
    sqlite_store_t *s = impl;
    unsigned roles = 0;
    bool held = false;
    tether_status_t rc;

    if (last_roles == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *last_roles = 0;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    rc = tether_sqlite_query_one(s, "read admin token",
                                 "SELECT roles FROM admin_tokens WHERE id = ? AND revoked_at IS NULL",
                                 SQL_ARGS(SQL_INT(id)), read_roles, &roles);
    if (rc == TETHER_ERR_NOT_FOUND) {
        /* Revoked already, or never made. */
        rc = tether_sqlite_query_one(s, "lookup", "SELECT 1 FROM admin_tokens WHERE id = ?",
                                     SQL_ARGS(SQL_INT(id)), NULL, NULL);
        if (rc == TETHER_OK)
            rc = TETHER_ERR_CONFLICT;
        goto out;
    }
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "revoke admin token", sql, SQL_ARGS(SQL_INT(now), SQL_INT(id)));
    for (size_t i = 0; rc == TETHER_OK && i < sizeof(kept) / sizeof(kept[0]); i++) {
        if ((roles & kept[i]) == 0)
            continue;
        rc = role_still_held(s, kept[i], &held);
        if (rc == TETHER_OK && !held)
            *last_roles |= kept[i];
    }
    if (rc == TETHER_OK && *last_roles != 0)
        rc = TETHER_ERR_STATE;
out:
    rc = tether_sqlite_finish(s, rc);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t admin_token_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_admin_token_t token;
    tether_status_t rc = admin_token_row(row, &token);

    if (rc == TETHER_OK)
        *stop = list->cb.admin_token(list->arg, &token) != 0;
    return rc;
}

static tether_status_t op_admin_token_list(void *impl, tether_store_admin_token_cb cb, void *arg)
{
    static const char sql[] =
        "SELECT id, roles, name, created_at, revoked_at FROM admin_tokens ORDER BY id";
    tether_sqlite_list_t list = {.read = admin_token_item, .cb.admin_token = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "list admin tokens", sql, SQL_NO_ARGS, &list);
}

/* ---- devices ---- */

/* DEVICE_COLUMNS (store_sqlite_internal.h) in the order device_row reads them. */
static tether_status_t device_row(sqlite3_stmt *stmt, tether_store_device_t *device)
{
    tether_status_t rc;

    memset(device, 0, sizeof(*device));
    rc = tether_sqlite_copy_text(device->id, sizeof(device->id), sqlite3_column_text(stmt, 0));
    if (rc == TETHER_OK)
        rc = tether_sqlite_copy_text(device->name, sizeof(device->name),
                                     sqlite3_column_text(stmt, 1));
    if (rc == TETHER_OK)
        rc = tether_sqlite_copy_text(device->ek_sha256, sizeof(device->ek_sha256),
                                     sqlite3_column_text(stmt, 2));
    if (rc == TETHER_OK)
        rc = tether_device_status_parse((const char *)sqlite3_column_text(stmt, 3),
                                        &device->status);
    if (rc == TETHER_OK)
        rc = tether_sqlite_copy_text(device->status_reason, sizeof(device->status_reason),
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

static tether_status_t device_read(void *arg, sqlite3_stmt *row)
{
    return device_row(row, arg);
}

/* The device whose id (SELECT_DEVICE_BY_ID) or EK (SELECT_DEVICE_BY_EK) is
 * key. Called with the lock held. */
static tether_status_t device_select(sqlite_store_t *s, const char *sql, const char *key,
                                     tether_store_device_t *device)
{
    return tether_sqlite_query_one(s, "read device", sql, SQL_ARGS(SQL_TEXT(key)), device_read,
                                   device);
}

static tether_status_t op_device_get(void *impl, const char *id, tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = device_select(s, SELECT_DEVICE_BY_ID, id, device);
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
    rc = device_select(s, SELECT_DEVICE_BY_EK, ek_sha256, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t device_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_device_t device;
    tether_status_t rc = device_row(row, &device);

    if (rc == TETHER_OK)
        *stop = list->cb.device(list->arg, &device) != 0;
    return rc;
}

static tether_status_t op_device_list(void *impl, tether_store_device_cb cb, void *arg)
{
    tether_sqlite_list_t list = {.read = device_item, .cb.device = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "list devices",
                              "SELECT " DEVICE_COLUMNS " FROM devices ORDER BY created_at, rowid",
                              SQL_NO_ARGS, &list);
}

/* One import row inside the open transaction, with the import's two
 * statements prepared once: *created is set when new. */
static tether_status_t import_row(sqlite_store_t *s, sqlite3_stmt *find, sqlite3_stmt *insert,
                                  const tether_store_allow_t *row, int64_t now, bool *created)
{
    tether_status_t rc;
    int step;

    *created = false;
    sqlite3_reset(find);
    if ((rc = tether_sqlite_bind(s, find, SQL_ARGS(SQL_TEXT(row->ek_sha256)))) != TETHER_OK)
        return rc;
    step = sqlite3_step(find);
    if (step == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(find, 0);
        return name != NULL && strcmp(name, row->name) == 0 ? TETHER_OK : TETHER_ERR_CONFLICT;
    }
    if (step != SQLITE_DONE)
        return tether_sqlite_fail(s, "find device");
    sqlite3_reset(insert);
    if ((rc = tether_sqlite_bind(s, insert,
                                 SQL_ARGS(SQL_TEXT(row->id), SQL_TEXT(row->name),
                                          SQL_TEXT(row->ek_sha256), SQL_INT(now)))) != TETHER_OK)
        return rc;
    step = sqlite3_step(insert);
    if (step == SQLITE_CONSTRAINT)
        return TETHER_ERR_CONFLICT;
    if (step != SQLITE_DONE)
        return tether_sqlite_fail(s, "allow device");
    *created = true;
    return TETHER_OK;
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
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    if ((rc = tether_sqlite_prepare(s, find_sql, &find)) != TETHER_OK ||
        (rc = tether_sqlite_prepare(s, insert_sql, &insert)) != TETHER_OK)
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
    rc = tether_sqlite_finish(s, rc);
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

/* Marks every unexpired token of the device revoked and appends to the feed. */
static tether_status_t revoke_tokens(sqlite_store_t *s, const char *id, const char *reason,
                                     int64_t now)
{
    static const char tokens_sql[] = "UPDATE issued_tokens SET revoked = 1 "
                                     "WHERE device_id = ?1 AND revoked = 0 AND exp > ?3";
    static const char feed_sql[] = "INSERT INTO revocations (device_id, jti, reason, created_at) "
                                   "VALUES (?1, NULL, ?2, ?3)";
    tether_status_t rc;

    rc = tether_sqlite_run(s, "revoke issued tokens", tokens_sql,
                           SQL_ARGS(SQL_TEXT(id), SQL_TEXT(reason), SQL_INT(now)));
    if (rc == TETHER_OK)
        rc = tether_sqlite_run(s, "append revocation", feed_sql,
                               SQL_ARGS(SQL_TEXT(id), SQL_TEXT(reason), SQL_INT(now)));
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
    tether_status_t rc;

    if ((rc = device_select(s, SELECT_DEVICE_BY_ID, id, &current)) != TETHER_OK ||
        (rc = status_after(action, current.status, &next)) != TETHER_OK)
        return rc;
    rc = tether_sqlite_run(s, "change device status", update_sql,
                           SQL_ARGS(SQL_TEXT(id), SQL_TEXT(reason), SQL_INT(now),
                                    SQL_TEXT(tether_device_status_name(next)),
                                    SQL_INT(action == TETHER_DEVICE_REINSTATE ? 1 : 0)));
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
    if ((rc = tether_sqlite_begin(s)) == TETHER_OK)
        rc = tether_sqlite_finish(s, change_status_tx(s, id, action, reason, now));
    if (rc == TETHER_OK && device != NULL)
        rc = device_select(s, SELECT_DEVICE_BY_ID, id, device);
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
    tether_status_t rc;

    if (hash == NULL || uses == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "create bootstrap token", sql,
                           SQL_ARGS(SQL_BLOB(hash, TETHER_STORE_HASH_SIZE), SQL_INT(expires_at),
                                    SQL_INT(uses), SQL_INT(now)));
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_alert_add(void *impl, const char *device_id, const char *kind,
                                    const char *details_json, int64_t now)
{
    static const char sql[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (kind == NULL || details_json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "add alert", sql,
                           SQL_ARGS(SQL_TEXT(device_id), SQL_TEXT(kind), SQL_TEXT(details_json),
                                    SQL_INT(now)));
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Alerts and the revocation feed are read a page at a time: the rows after
 * a cursor (an id, a seq), at most limit of them. */
static tether_status_t list_page(sqlite_store_t *s, const char *what, const char *sql,
                                 int64_t after, unsigned limit, tether_sqlite_list_t *list)
{
    return tether_sqlite_list(s, what, sql, SQL_ARGS(SQL_INT(after), SQL_INT(limit)), list);
}

/* The columns alerts and feed entries share: cursor, device id, two texts
 * (living until the next step) and the time. */
static tether_status_t page_columns(sqlite3_stmt *row, int64_t *cursor,
                                    char device_id[TETHER_STORE_DEVICE_ID_SIZE],
                                    const char **first, const char **second, int64_t *created_at)
{
    *cursor = sqlite3_column_int64(row, 0);
    *first = (const char *)sqlite3_column_text(row, 2);
    *second = (const char *)sqlite3_column_text(row, 3);
    *created_at = sqlite3_column_int64(row, 4);
    return tether_sqlite_copy_text(device_id, TETHER_STORE_DEVICE_ID_SIZE,
                                   sqlite3_column_text(row, 1));
}

static tether_status_t alert_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_alert_t a;
    tether_status_t rc;

    memset(&a, 0, sizeof(a));
    rc = page_columns(row, &a.id, a.device_id, &a.kind, &a.details_json, &a.created_at);
    if (rc == TETHER_OK)
        *stop = list->cb.alert(list->arg, &a) != 0;
    return rc;
}

static tether_status_t op_alert_list(void *impl, int64_t after_id, unsigned limit,
                                     tether_store_alert_cb cb, void *arg)
{
    static const char sql[] = "SELECT id, device_id, kind, details, created_at FROM alerts "
                              "WHERE id > ? ORDER BY id LIMIT ?";
    tether_sqlite_list_t list = {.read = alert_item, .cb.alert = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return list_page(impl, "list alerts", sql, after_id, limit, &list);
}

static tether_status_t op_issued_token_add(void *impl, const char *jti, const char *device_id,
                                           int64_t exp, int64_t now)
{
    static const char sql[] = "INSERT INTO issued_tokens (jti, device_id, exp, issued_at) "
                              "VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (jti == NULL || device_id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "record issued token", sql,
                           SQL_ARGS(SQL_TEXT(jti), SQL_TEXT(device_id), SQL_INT(exp),
                                    SQL_INT(now)));
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t revoked_read(void *arg, sqlite3_stmt *row)
{
    *(bool *)arg = sqlite3_column_int(row, 0) != 0;
    return TETHER_OK;
}

static tether_status_t op_issued_token_revoked(void *impl, const char *jti, bool *revoked)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (jti == NULL || revoked == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "read issued token",
                                 "SELECT revoked FROM issued_tokens WHERE jti = ?",
                                 SQL_ARGS(SQL_TEXT(jti)), revoked_read, revoked);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t revocation_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_revocation_t r;
    tether_status_t rc;

    memset(&r, 0, sizeof(r));
    rc = page_columns(row, &r.seq, r.device_id, &r.jti, &r.reason, &r.created_at);
    if (rc == TETHER_OK)
        *stop = list->cb.revocation(list->arg, &r) != 0;
    return rc;
}

static tether_status_t op_revocation_list(void *impl, int64_t after_seq, unsigned limit,
                                          tether_store_revocation_cb cb, void *arg)
{
    static const char sql[] = "SELECT seq, device_id, jti, reason, created_at FROM revocations "
                              "WHERE seq > ? ORDER BY seq LIMIT ?";
    tether_sqlite_list_t list = {.read = revocation_item, .cb.revocation = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return list_page(impl, "list revocations", sql, after_seq, limit, &list);
}

static tether_status_t token_state_read(void *arg, sqlite3_stmt *row)
{
    tether_store_token_state_t *state = arg;
    tether_status_t rc;

    rc = tether_sqlite_copy_text(state->device_id, sizeof(state->device_id),
                                 sqlite3_column_text(row, 0));
    if (rc == TETHER_OK)
        rc = tether_device_status_parse((const char *)sqlite3_column_text(row, 3),
                                        &state->device_status);
    state->exp = sqlite3_column_int64(row, 1);
    state->revoked = sqlite3_column_int(row, 2) != 0;
    return rc;
}

static tether_status_t op_token_state(void *impl, const char *jti,
                                      tether_store_token_state_t *state)
{
    static const char sql[] = "SELECT t.device_id, t.exp, t.revoked, d.status "
                              "FROM issued_tokens t JOIN devices d ON d.id = t.device_id "
                              "WHERE t.jti = ?";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (jti == NULL || state == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(state, 0, sizeof(*state));
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "read issued token", sql, SQL_ARGS(SQL_TEXT(jti)),
                                 token_state_read, state);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t op_revocation_head(void *impl, int64_t *seq)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (seq == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *seq = 0;
    pthread_mutex_lock(&s->lock);
    /* An aggregate: always one row. */
    rc = tether_sqlite_query_one(s, "read revocation feed head",
                                 "SELECT coalesce(max(seq), 0) FROM revocations", SQL_NO_ARGS,
                                 tether_sqlite_read_int64, seq);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- enrolment ---- */

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

    if (!hash_matches(row, 3, lookup->hash))
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

    rc = device_select(s, SELECT_DEVICE_BY_EK, ek_sha256, device);
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
 * under max (store.h): drops its oldest ones that are at least
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

static tether_status_t op_enrollment_add(void *impl, const tether_store_enrollment_t *e,
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

static tether_status_t op_enrollment_find(void *impl, const char *id, int64_t now,
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

static tether_status_t op_enrollment_delete(void *impl, const char *id)
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
        rc = device_select(s, SELECT_DEVICE_BY_EK, session.ek_sha256, device);
out:
    pthread_mutex_unlock(&s->lock);
    tether_wipe(&session, sizeof(session));
    return rc;
}

static tether_status_t op_enrollment_completed(void *impl, const char *id,
                                               tether_store_device_t *device)
{
    static const char sql[] =
        "SELECT " DEVICE_COLUMNS " FROM devices WHERE enrollment_id = ? AND status = 'active'";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = device_select(s, sql, id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- shared with store_sqlite_exchange.c (store_sqlite_internal.h) ---- */

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
    .admin_token_recover = op_admin_token_recover,
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
    .enrollment_completed = op_enrollment_completed,
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

static tether_status_t wal_read(void *arg, sqlite3_stmt *row)
{
    const unsigned char *mode = sqlite3_column_text(row, 0);

    (void)arg;
    return mode != NULL && strcmp((const char *)mode, "wal") == 0 ? TETHER_OK
                                                                  : TETHER_ERR_UNSUPPORTED;
}

/* journal_mode answers with a row naming the mode it got. */
static tether_status_t set_wal(sqlite_store_t *s)
{
    tether_status_t rc = tether_sqlite_query_one(s, "switching the database to WAL",
                                                 "PRAGMA journal_mode = WAL", SQL_NO_ARGS,
                                                 wal_read, NULL);

    /* Another mode, or no answer: say so (a failed step said so already). */
    return rc == TETHER_OK || rc == TETHER_ERR_STORE
               ? rc
               : tether_sqlite_fail(s, "switching the database to WAL");
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
        rc = tether_sqlite_fail(s, "busy timeout");
        goto out;
    }
    if ((rc = set_wal(s)) != TETHER_OK ||
        (rc = tether_sqlite_exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")) !=
            TETHER_OK ||
        (rc = migrate(s)) != TETHER_OK)
        goto out;
    store->ops = &sqlite_ops;
    store->impl = s;
    s = NULL;
out:
    op_close(s);
    return rc;
}
