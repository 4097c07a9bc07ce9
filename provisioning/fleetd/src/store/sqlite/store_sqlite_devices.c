/*
 * Devices on SQLite (store.h): read, list, import, status changes and the
 * issued tokens and revocation feed entries they revoke; bootstrap tokens,
 * alerts, issued tokens and the revocation feed.
 */
#include <pthread.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"
#include "tether/bytes.h"

/* ---- devices ---- */

/* DEVICE_COLUMNS (store_sqlite_internal.h) in the order device_row reads them. */
tether_status_t tether_sqlite_device_row(sqlite3_stmt *stmt, tether_store_device_t *device)
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
    return tether_sqlite_device_row(row, arg);
}

/* The device whose id (SELECT_DEVICE_BY_ID) or EK (SELECT_DEVICE_BY_EK) is
 * key. Called with the lock held. */
tether_status_t tether_sqlite_device_select(sqlite_store_t *s, const char *sql, const char *key,
                                            tether_store_device_t *device)
{
    return tether_sqlite_query_one(s, "read device", sql, SQL_ARGS(SQL_TEXT(key)), device_read,
                                   device);
}

tether_status_t tether_sqlite_device_get(void *impl, const char *id, tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_device_select(s, SELECT_DEVICE_BY_ID, id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

tether_status_t tether_sqlite_device_find_ek(void *impl, const char *ek_sha256,
                                             tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (ek_sha256 == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_device_select(s, SELECT_DEVICE_BY_EK, ek_sha256, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static tether_status_t device_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    tether_store_device_t device;
    tether_status_t rc = tether_sqlite_device_row(row, &device);

    if (rc == TETHER_OK)
        *stop = list->cb.device(list->arg, &device) != 0;
    return rc;
}

tether_status_t tether_sqlite_device_list(void *impl, tether_store_device_cb cb, void *arg)
{
    tether_sqlite_list_t list = {.read = device_item, .cb.device = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "list devices",
                              "SELECT " DEVICE_COLUMNS " FROM devices ORDER BY created_at, rowid",
                              SQL_NO_ARGS, &list);
}

/* One row of the count by status: its status's entry of the counts. */
static tether_status_t count_item(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    uint64_t *counts = list->arg;
    tether_device_status_t status;
    tether_status_t rc;

    *stop = false;
    rc = tether_device_status_parse((const char *)sqlite3_column_text(row, 0), &status);
    if (rc == TETHER_OK)
        counts[status] = (uint64_t)sqlite3_column_int64(row, 1);
    return rc;
}

tether_status_t tether_sqlite_device_counts(void *impl, uint64_t counts[])
{
    tether_sqlite_list_t list = {.read = count_item, .arg = counts};

    if (counts == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_sqlite_list(impl, "count devices",
                              "SELECT status, count(*) FROM devices GROUP BY status", SQL_NO_ARGS,
                              &list);
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

tether_status_t tether_sqlite_device_import(void *impl, const tether_store_allow_t *rows,
                                            size_t count, int64_t now, size_t *created,
                                            size_t *conflict_index)
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

/* Marks every unexpired token of the device revoked and appends to the feed. */
tether_status_t tether_sqlite_revoke_tokens(sqlite_store_t *s, const char *id, const char *reason,
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

    if ((rc = tether_sqlite_device_select(s, SELECT_DEVICE_BY_ID, id, &current)) != TETHER_OK ||
        (rc = tether_store_status_after(action, current.status, &next)) != TETHER_OK)
        return rc;
    rc = tether_sqlite_run(s, "change device status", update_sql,
                           SQL_ARGS(SQL_TEXT(id), SQL_TEXT(reason), SQL_INT(now),
                                    SQL_TEXT(tether_device_status_name(next)),
                                    SQL_INT(action == TETHER_DEVICE_REINSTATE ? 1 : 0)));
    if (rc == TETHER_OK && action != TETHER_DEVICE_REINSTATE)
        rc = tether_sqlite_revoke_tokens(s, id, reason, now);
    return rc;
}

tether_status_t tether_sqlite_device_change_status(void *impl, const char *id,
                                                   tether_device_action_t action,
                                                   const char *reason, int64_t now,
                                                   tether_store_device_t *device)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (id == NULL || reason == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) == TETHER_OK)
        rc = tether_sqlite_finish(s, change_status_tx(s, id, action, reason, now));
    if (rc == TETHER_OK && device != NULL)
        rc = tether_sqlite_device_select(s, SELECT_DEVICE_BY_ID, id, device);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- bootstrap tokens, alerts, issued tokens, revocation feed ---- */

tether_status_t tether_sqlite_bootstrap_token_create(void *impl,
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

tether_status_t tether_sqlite_alert_insert(sqlite_store_t *s, const char *device_id,
                                           const char *kind, const char *details_json,
                                           int64_t now)
{
    static const char sql[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES (?, ?, ?, ?)";

    return tether_sqlite_run(s, "add alert", sql,
                             SQL_ARGS(SQL_TEXT(device_id), SQL_TEXT(kind), SQL_TEXT(details_json),
                                      SQL_INT(now)));
}

tether_status_t tether_sqlite_alert_add(void *impl, const char *device_id, const char *kind,
                                        const char *details_json, int64_t now)
{
    sqlite_store_t *s = impl;
    tether_status_t rc;

    if (kind == NULL || details_json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_alert_insert(s, device_id, kind, details_json, now);
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

tether_status_t tether_sqlite_page_columns(sqlite3_stmt *row, int64_t *cursor,
                                          char device_id[TETHER_STORE_DEVICE_ID_SIZE],
                                          const char **first, const char **second,
                                          int64_t *created_at)
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
    rc = tether_sqlite_page_columns(row, &a.id, a.device_id, &a.kind, &a.details_json,
                                    &a.created_at);
    if (rc == TETHER_OK)
        *stop = list->cb.alert(list->arg, &a) != 0;
    return rc;
}

tether_status_t tether_sqlite_alert_list(void *impl, int64_t after_id, unsigned limit,
                                         tether_store_alert_cb cb, void *arg)
{
    static const char sql[] = "SELECT id, device_id, kind, details, created_at FROM alerts "
                              "WHERE id > ? ORDER BY id LIMIT ?";
    tether_sqlite_list_t list = {.read = alert_item, .cb.alert = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return list_page(impl, "list alerts", sql, after_id, limit, &list);
}

tether_status_t tether_sqlite_issued_token_add(void *impl, const char *jti, const char *device_id,
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

tether_status_t tether_sqlite_issued_token_revoked(void *impl, const char *jti, bool *revoked)
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
    rc = tether_sqlite_page_columns(row, &r.seq, r.device_id, &r.jti, &r.reason, &r.created_at);
    if (rc == TETHER_OK)
        *stop = list->cb.revocation(list->arg, &r) != 0;
    return rc;
}

tether_status_t tether_sqlite_revocation_list(void *impl, int64_t after_seq, unsigned limit,
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

tether_status_t tether_sqlite_token_state(void *impl, const char *jti,
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

tether_status_t tether_sqlite_revocation_head(void *impl, int64_t *seq)
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
