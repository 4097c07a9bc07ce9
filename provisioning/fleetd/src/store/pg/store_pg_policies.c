/*
 * Fleet policies on PostgreSQL (store_policies.h, "fleet policies"): versions
 * written, never changed, and the device's link to a name. The rules are
 * SQLite's (store_sqlite_policies.c); two replicas writing the same name at
 * once serialize on its primary key (name, version): one gets the next
 * version, the other a retry that reads it and writes the one after.
 */
#include <string.h>

#include "store_pg_internal.h"

#define POLICY_COLUMNS "name, version, created_at, document"

static tether_status_t policy_read(void *arg, const tether_pg_row_t *row)
{
    tether_store_policy_t *policy = arg;
    tether_status_t rc;

    memset(policy, 0, sizeof(*policy));
    policy->version = tether_pg_int64(row, 1);
    policy->created_at = tether_pg_int64(row, 2);
    if ((rc = tether_pg_copy_text(row, 0, policy->name, sizeof(policy->name))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 3, policy->document, sizeof(policy->document))) !=
            TETHER_OK)
        memset(policy, 0, sizeof(*policy));
    return rc;
}

typedef struct policy_write {
    const char *name;
    const char *document;
    bool create;
    int64_t now;
    int64_t highest;
} policy_write_t;

static tether_status_t policy_write_tx(tether_pg_t *db, void *arg)
{
    static const char insert[] =
        "INSERT INTO policies (name, version, document, created_at) VALUES ($1, $2, $3, $4)";
    policy_write_t *w = arg;
    tether_status_t rc;

    /* max() of no row is NULL, read as 0: no version yet. */
    w->highest = 0;
    if ((rc = tether_pg_query_one(db, "read policy version",
                                  "SELECT max(version) FROM policies WHERE name = $1",
                                  PG_ARGS(PG_TEXT(w->name)), tether_pg_read_int64,
                                  &w->highest)) != TETHER_OK)
        return rc;
    if (w->create && w->highest != 0)
        return TETHER_ERR_CONFLICT;
    if (!w->create && w->highest == 0)
        return TETHER_ERR_NOT_FOUND;
    return tether_pg_run(db, "write policy", insert,
                         PG_ARGS(PG_TEXT(w->name), PG_INT(w->highest + 1), PG_TEXT(w->document),
                                 PG_INT(w->now)),
                         NULL);
}

tether_status_t tether_pg_policy_write(void *impl, const char *name, const char *document,
                                       bool create, int64_t now, int64_t *version)
{
    policy_write_t w = {name, document, create, now, 0};
    tether_status_t rc;

    if (version == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *version = 0;
    if (!tether_policy_name_valid(name) || document == NULL || document[0] == '\0' ||
        strlen(document) > TETHER_POLICY_DOCUMENT_MAX)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_transaction(impl, "write policy", policy_write_tx, &w);
    if (rc == TETHER_OK)
        *version = w.highest + 1;
    return rc;
}

tether_status_t tether_pg_policy_get(void *impl, const char *name, int64_t version,
                                     tether_store_policy_t *policy)
{
    static const char latest[] = "SELECT " POLICY_COLUMNS " FROM policies WHERE name = $1 "
                                 "ORDER BY version DESC LIMIT 1";
    static const char exact[] =
        "SELECT " POLICY_COLUMNS " FROM policies WHERE name = $1 AND version = $2";

    if (policy == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(policy, 0, sizeof(*policy));
    if (name == NULL || version < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (version == 0)
        return tether_pg_query_once(impl, "read policy", latest, PG_ARGS(PG_TEXT(name)),
                                    policy_read, policy);
    return tether_pg_query_once(impl, "read policy", exact,
                                PG_ARGS(PG_TEXT(name), PG_INT(version)), policy_read, policy);
}

static tether_status_t policy_item(tether_pg_list_t *list, const tether_pg_row_t *row, bool *stop)
{
    tether_store_policy_t policy;
    tether_status_t rc = policy_read(&policy, row);

    if (rc == TETHER_OK)
        *stop = list->cb.policy(list->arg, &policy) != 0;
    return rc;
}

tether_status_t tether_pg_policy_list(void *impl, tether_store_policy_cb cb, void *arg)
{
    static const char sql[] = "SELECT DISTINCT ON (name) " POLICY_COLUMNS " FROM policies "
                              "ORDER BY name, version DESC";
    tether_pg_list_t list = {.read = policy_item, .cb.policy = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(impl, "list policies", sql, PG_NO_ARGS, &list);
}

typedef struct set_policy {
    const char *id;
    const char *name;
    int64_t now;
} set_policy_t;

static tether_status_t set_policy_tx(tether_pg_t *db, void *arg)
{
    static const char set[] = "UPDATE devices SET policy = $2, updated_at = $3 WHERE id = $1";
    set_policy_t *p = arg;
    uint64_t changed = 0;
    tether_status_t rc;

    if ((rc = tether_pg_query_one(db, "find policy", "SELECT 1 FROM policies WHERE name = $1",
                                  PG_ARGS(PG_TEXT(p->name)), NULL, NULL)) != TETHER_OK ||
        (rc = tether_pg_run(db, "set device policy", set,
                            PG_ARGS(PG_TEXT(p->id), PG_TEXT(p->name), PG_INT(p->now)),
                            &changed)) != TETHER_OK)
        return rc;
    return changed == 0 ? TETHER_ERR_NOT_FOUND : TETHER_OK;
}

tether_status_t tether_pg_device_set_policy(void *impl, const char *id, const char *name,
                                            int64_t now)
{
    set_policy_t p = {id, name, now};

    if (id == NULL || !tether_policy_name_valid(name))
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_transaction(impl, "set device policy", set_policy_tx, &p);
}

tether_status_t tether_pg_device_policy(void *impl, const char *id, tether_store_policy_t *policy)
{
    static const char sql[] =
        "SELECT p.name, p.version, p.created_at, p.document FROM devices d "
        "JOIN policies p ON p.name = d.policy WHERE d.id = $1 ORDER BY p.version DESC LIMIT 1";

    if (policy == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(policy, 0, sizeof(*policy));
    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_query_once(impl, "read device policy", sql, PG_ARGS(PG_TEXT(id)),
                                policy_read, policy);
}
