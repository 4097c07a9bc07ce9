/*
 * Admin tokens on SQLite (store_admin_tokens.h): create, find by hash, the recovery
 * token and its audit alert, revocation under the last-token rule, list.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"

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

tether_status_t tether_sqlite_admin_token_create(void *impl,
                                                 const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                 unsigned roles, const char *name, int64_t now,
                                                 int64_t *id)
{
    sqlite_store_t *s = impl;
    char role_text[64];
    int64_t new_id = 0;
    tether_status_t rc;

    if ((rc = tether_store_admin_token_roles(hash, roles, name, role_text)) != TETHER_OK)
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
tether_status_t tether_sqlite_admin_token_recover(void *impl,
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
    if ((rc = tether_store_admin_token_roles(hash, roles, name, role_text)) != TETHER_OK)
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

static tether_status_t admin_token_match(void *arg, sqlite3_stmt *row)
{
    token_lookup_t *lookup = arg;

    if (!tether_sqlite_hash_matches(row, 5, lookup->hash))
        return TETHER_ERR_NOT_FOUND;
    return admin_token_row(row, lookup->token);
}

tether_status_t tether_sqlite_admin_token_find(void *impl,
                                               const uint8_t hash[TETHER_STORE_HASH_SIZE],
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
tether_status_t tether_sqlite_admin_token_revoke(void *impl, int64_t id, int64_t now,
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

tether_status_t tether_sqlite_admin_token_list(void *impl, tether_store_admin_token_cb cb,
                                               void *arg)
{
    static const char sql[] =
        "SELECT id, roles, name, created_at, revoked_at FROM admin_tokens ORDER BY id";
    tether_sqlite_list_t list = {.read = admin_token_item, .cb.admin_token = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "list admin tokens", sql, SQL_NO_ARGS, &list);
}
