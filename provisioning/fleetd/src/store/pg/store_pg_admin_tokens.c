/*
 * Admin tokens on PostgreSQL (store_admin_tokens.h): create, find by hash, the recovery
 * token and its audit alert, revocation under the last-token rule, list.
 * The rules are SQLite's (store_sqlite_admin_tokens.c); the revocation's
 * check and change share one SERIALIZABLE transaction, so two replicas
 * revoking the last two holders of a role at once cannot both succeed.
 */
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"

/* One new admin token; *id gets its id. */
static tether_status_t insert_admin_token(tether_pg_t *db,
                                          const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                          const char *role_text, const char *name, int64_t now,
                                          int64_t *id)
{
    static const char sql[] = "INSERT INTO admin_tokens (hash, roles, name, created_at) "
                              "VALUES ($1, $2, $3, $4) RETURNING id";

    *id = 0;
    return tether_pg_query_one(db, "create admin token", sql,
                               PG_ARGS(PG_BLOB(hash, TETHER_STORE_HASH_SIZE), PG_TEXT(role_text),
                                       PG_TEXT(name), PG_INT(now)),
                               tether_pg_read_int64, id);
}

/* A new token, and with audit its alert (the recovery). */
typedef struct new_token {
    const uint8_t *hash;
    char role_text[64];
    const char *name;
    bool audit;
    int64_t uid; /* who ran the recovery */
    int64_t now;
    int64_t id;
} new_token_t;

static tether_status_t create_tx(tether_pg_t *db, void *arg)
{
    static const char audit[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (NULL, $1, "
        "json_build_object('reason', 'admin token minted on the fleet host, outside the API', "
        "'token_id', $2::bigint, 'name', $3::text, 'roles', $4::text, 'uid', $5::bigint)::text, "
        "$6)";
    new_token_t *t = arg;
    tether_status_t rc = insert_admin_token(db, t->hash, t->role_text, t->name, t->now, &t->id);

    if (rc == TETHER_OK && t->audit) {
        rc = tether_pg_run(db, "audit admin token", audit,
                           PG_ARGS(PG_TEXT(TETHER_STORE_ALERT_ADMIN_TOKEN_MINTED), PG_INT(t->id),
                                   PG_TEXT(t->name), PG_TEXT(t->role_text), PG_INT(t->uid),
                                   PG_INT(t->now)),
                           NULL);
        db->alerted = rc == TETHER_OK;
    }
    return rc;
}

static tether_status_t create_token(pg_store_t *s, const uint8_t *hash, unsigned roles,
                                    const char *name, bool audit, int64_t uid, int64_t now,
                                    int64_t *id)
{
    new_token_t t = {.hash = hash, .name = name, .audit = audit, .uid = uid, .now = now};
    tether_status_t rc;

    if ((rc = tether_store_admin_token_roles(hash, roles, name, t.role_text)) != TETHER_OK)
        return rc;
    rc = tether_pg_transaction(s, "create admin token", create_tx, &t);
    if (rc == TETHER_OK && id != NULL)
        *id = t.id;
    return rc;
}

tether_status_t tether_pg_admin_token_create(void *impl,
                                             const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                             unsigned roles, const char *name, int64_t now,
                                             int64_t *id)
{
    if (id != NULL)
        *id = 0;
    return create_token(impl, hash, roles, name, false, 0, now, id);
}

/* The token and its audit alert in one transaction: a token minted
 * outside the API is never there without the record of it. */
tether_status_t tether_pg_admin_token_recover(void *impl,
                                              const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                              unsigned roles, const char *name, int64_t uid,
                                              int64_t now, int64_t *id)
{
    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *id = 0;
    return create_token(impl, hash, roles, name, true, uid, now, id);
}

static tether_status_t admin_token_row(const tether_pg_row_t *row,
                                       tether_store_admin_token_t *token)
{
    tether_status_t rc;

    memset(token, 0, sizeof(*token));
    token->id = tether_pg_int64(row, 0);
    rc = tether_roles_parse(tether_pg_text(row, 1), &token->roles);
    if (rc == TETHER_OK)
        rc = tether_pg_copy_text(row, 2, token->name, sizeof(token->name));
    token->created_at = tether_pg_int64(row, 3);
    token->revoked_at = tether_pg_int64(row, 4);
    return rc;
}

typedef struct token_lookup {
    const uint8_t *hash;
    tether_store_admin_token_t *token;
} token_lookup_t;

static tether_status_t admin_token_match(void *arg, const tether_pg_row_t *row)
{
    token_lookup_t *lookup = arg;

    if (!tether_pg_hash_matches(row, 5, lookup->hash))
        return TETHER_ERR_NOT_FOUND;
    return admin_token_row(row, lookup->token);
}

tether_status_t tether_pg_admin_token_find(void *impl, const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                           tether_store_admin_token_t *token)
{
    static const char sql[] = "SELECT id, roles, name, created_at, revoked_at, hash "
                              "FROM admin_tokens WHERE hash = $1";
    token_lookup_t lookup = {hash, token};
    tether_status_t rc;

    if (hash == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(token, 0, sizeof(*token));
    rc = tether_pg_query_once(impl, "find admin token", sql,
                              PG_ARGS(PG_BLOB(hash, TETHER_STORE_HASH_SIZE)), admin_token_match,
                              &lookup);
    if (rc == TETHER_OK && token->revoked_at != 0)
        rc = TETHER_ERR_NOT_FOUND;
    return rc;
}

/* Whether an unrevoked admin token holds role (one bit). */
static tether_status_t role_still_held(tether_pg_t *db, unsigned role, bool *held)
{
    static const char sql[] = "SELECT 1 FROM admin_tokens WHERE revoked_at IS NULL "
                              "AND strpos(',' || roles || ',', $1) > 0 LIMIT 1";
    char needle[32]; /* ",relying-party," and its NUL fit */
    tether_status_t rc;

    *held = false;
    snprintf(needle, sizeof(needle), ",%s,", tether_role_name(role));
    rc = tether_pg_query_one(db, "find an admin token with a role", sql,
                             PG_ARGS(PG_TEXT(needle)), NULL, NULL);
    *held = rc == TETHER_OK;
    return rc == TETHER_ERR_NOT_FOUND ? TETHER_OK : rc;
}

static tether_status_t read_roles(void *arg, const tether_pg_row_t *row)
{
    return tether_roles_parse(tether_pg_text(row, 0), arg);
}

typedef struct revocation {
    int64_t id;
    int64_t now;
    unsigned last_roles;
} revocation_t;

static tether_status_t revoke_tx(tether_pg_t *db, void *arg)
{
    static const unsigned kept[] = {TETHER_ROLE_SECURITY, TETHER_ROLE_FLEET};
    revocation_t *r = arg;
    unsigned roles = 0;
    bool held = false;
    tether_status_t rc;

    r->last_roles = 0;
    rc = tether_pg_query_one(db, "read admin token",
                             "SELECT roles FROM admin_tokens WHERE id = $1 AND revoked_at IS NULL",
                             PG_ARGS(PG_INT(r->id)), read_roles, &roles);
    if (rc == TETHER_ERR_NOT_FOUND) {
        /* Revoked already, or never made. */
        rc = tether_pg_query_one(db, "lookup", "SELECT 1 FROM admin_tokens WHERE id = $1",
                                 PG_ARGS(PG_INT(r->id)), NULL, NULL);
        return rc == TETHER_OK ? TETHER_ERR_CONFLICT : rc;
    }
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "revoke admin token",
                           "UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2",
                           PG_ARGS(PG_INT(r->now), PG_INT(r->id)), NULL);
    for (size_t i = 0; rc == TETHER_OK && i < sizeof(kept) / sizeof(kept[0]); i++) {
        if ((roles & kept[i]) == 0)
            continue;
        rc = role_still_held(db, kept[i], &held);
        if (rc == TETHER_OK && !held)
            r->last_roles |= kept[i];
    }
    return rc == TETHER_OK && r->last_roles != 0 ? TETHER_ERR_STATE : rc;
}

/* The revocation and the last-token rule in one SERIALIZABLE transaction:
 * no other replica can revoke the other holder of a role between the
 * check and the commit. */
tether_status_t tether_pg_admin_token_revoke(void *impl, int64_t id, int64_t now,
                                             unsigned *last_roles)
{
    revocation_t r = {.id = id, .now = now, .last_roles = 0};
    tether_status_t rc;

    if (last_roles == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *last_roles = 0;
    rc = tether_pg_transaction(impl, "revoke admin token", revoke_tx, &r);
    if (rc == TETHER_ERR_STATE)
        *last_roles = r.last_roles;
    return rc;
}

static tether_status_t admin_token_item(tether_pg_list_t *list, const tether_pg_row_t *row,
                                        bool *stop)
{
    tether_store_admin_token_t token;
    tether_status_t rc = admin_token_row(row, &token);

    if (rc == TETHER_OK)
        *stop = list->cb.admin_token(list->arg, &token) != 0;
    return rc;
}

tether_status_t tether_pg_admin_token_list(void *impl, tether_store_admin_token_cb cb, void *arg)
{
    static const char sql[] =
        "SELECT id, roles, name, created_at, revoked_at FROM admin_tokens ORDER BY id";
    tether_pg_list_t list = {.read = admin_token_item, .cb.admin_token = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(impl, "list admin tokens", sql, PG_NO_ARGS, &list);
}
