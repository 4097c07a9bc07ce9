/*
 * Fleet policies on SQLite (store_policies.h, "fleet policies"; table policies and
 * devices.policy, schema version 9): versions written, never changed, and
 * the device's link to a name (so a new version applies at its next
 * exchange without touching any device).
 */
#include <pthread.h>
#include <string.h>

#include "store_sqlite_internal.h"

#define POLICY_COLUMNS "name, version, created_at, document"

static tether_status_t policy_row(sqlite3_stmt *row, tether_store_policy_t *policy)
{
    tether_status_t rc;

    memset(policy, 0, sizeof(*policy));
    policy->version = sqlite3_column_int64(row, 1);
    policy->created_at = sqlite3_column_int64(row, 2);
    if ((rc = tether_sqlite_copy_text(policy->name, sizeof(policy->name),
                                      sqlite3_column_text(row, 0))) != TETHER_OK ||
        (rc = tether_sqlite_copy_text(policy->document, sizeof(policy->document),
                                      sqlite3_column_text(row, 3))) != TETHER_OK)
        memset(policy, 0, sizeof(*policy));
    return rc;
}

static tether_status_t policy_read(void *arg, sqlite3_stmt *row)
{
    return policy_row(row, arg);
}

tether_status_t tether_sqlite_policy_write(void *impl, const char *name, const char *document,
                                           bool create, int64_t now, int64_t *version)
{
    static const char current[] = "SELECT max(version) FROM policies WHERE name = ?";
    static const char insert[] =
        "INSERT INTO policies (name, version, document, created_at) VALUES (?, ?, ?, ?)";
    sqlite_store_t *s = impl;
    int64_t highest = 0;
    tether_status_t rc;

    if (version == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *version = 0;
    if (!tether_policy_name_valid(name) || document == NULL || document[0] == '\0' ||
        strlen(document) > TETHER_POLICY_DOCUMENT_MAX)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    /* max() of no row is NULL, read as 0: no version yet. */
    if ((rc = tether_sqlite_query_one(s, "read policy version", current, SQL_ARGS(SQL_TEXT(name)),
                                      tether_sqlite_read_int64, &highest)) != TETHER_OK)
        goto out;
    if (create && highest != 0)
        rc = TETHER_ERR_CONFLICT;
    else if (!create && highest == 0)
        rc = TETHER_ERR_NOT_FOUND;
    else
        rc = tether_sqlite_run(s, "write policy", insert,
                               SQL_ARGS(SQL_TEXT(name), SQL_INT(highest + 1), SQL_TEXT(document),
                                        SQL_INT(now)));
out:
    rc = tether_sqlite_finish(s, rc);
    if (rc == TETHER_OK)
        *version = highest + 1;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_policy_get(void *impl, const char *name, int64_t version,
                                         tether_store_policy_t *policy)
{
    static const char latest[] = "SELECT " POLICY_COLUMNS " FROM policies WHERE name = ?1 "
                                 "ORDER BY version DESC LIMIT 1";
    static const char exact[] =
        "SELECT " POLICY_COLUMNS " FROM policies WHERE name = ?1 AND version = ?2";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (policy == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(policy, 0, sizeof(*policy));
    if (name == NULL || version < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if (version == 0)
        rc = tether_sqlite_query_one(s, "read policy", latest, SQL_ARGS(SQL_TEXT(name)),
                                     policy_read, policy);
    else
        rc = tether_sqlite_query_one(s, "read policy", exact,
                                     SQL_ARGS(SQL_TEXT(name), SQL_INT(version)), policy_read,
                                     policy);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t policy_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_policy_t policy;
    tether_status_t rc = policy_row(row, &policy);

    if (rc == TETHER_OK)
        *stop = list->cb.policy(list->arg, &policy) != 0;
    return rc;
}

tether_status_t tether_sqlite_policy_list(void *impl, tether_store_policy_cb cb, void *arg)
{
    /* SQLite's bare-column rule: with max(), the other columns come from
     * the row holding the maximum. */
    static const char sql[] = "SELECT name, max(version), created_at, document FROM policies "
                              "GROUP BY name ORDER BY name";
    tether_sqlite_list_t list = {.read = policy_item, .cb.policy = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "list policies", sql, SQL_NO_ARGS, &list);
}

tether_status_t tether_sqlite_device_set_policy(void *impl, const char *id, const char *name,
                                                int64_t now)
{
    static const char exists[] = "SELECT 1 FROM policies WHERE name = ? LIMIT 1";
    static const char set[] = "UPDATE devices SET policy = ?2, updated_at = ?3 WHERE id = ?1";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || !tether_policy_name_valid(name))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto out;
    if ((rc = tether_sqlite_query_one(s, "find policy", exists, SQL_ARGS(SQL_TEXT(name)), NULL,
                                      NULL)) != TETHER_OK)
        goto out;
    if ((rc = tether_sqlite_run(s, "set device policy", set,
                                SQL_ARGS(SQL_TEXT(id), SQL_TEXT(name), SQL_INT(now)))) !=
        TETHER_OK)
        goto out;
    if (sqlite3_changes(s->db) == 0)
        rc = TETHER_ERR_NOT_FOUND;
out:
    rc = tether_sqlite_finish(s, rc);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_device_policy(void *impl, const char *id,
                                            tether_store_policy_t *policy)
{
    static const char sql[] =
        "SELECT p.name, p.version, p.created_at, p.document FROM devices d "
        "JOIN policies p ON p.name = d.policy WHERE d.id = ? ORDER BY p.version DESC LIMIT 1";
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (policy == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(policy, 0, sizeof(*policy));
    if (id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "read device policy", sql, SQL_ARGS(SQL_TEXT(id)),
                                 policy_read, policy);
    pthread_mutex_unlock(&s->lock);
    return rc;
}
