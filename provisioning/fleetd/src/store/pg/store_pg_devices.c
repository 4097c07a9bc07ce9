/*
 * Devices on PostgreSQL (store.h): read, list, import, status changes and
 * the issued tokens and revocation feed entries they revoke; bootstrap
 * tokens, alerts, issued tokens and the revocation feed. The rules are
 * SQLite's (store_sqlite_devices.c); the feed's seq comes from a sequence
 * every replica shares, so every replica serves the same ordered feed.
 */
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"
#include "tether/bytes.h"

/* ---- devices ---- */

tether_status_t tether_pg_device_row(const tether_pg_row_t *row, tether_store_device_t *device)
{
    uint8_t ak_name[TETHER_STORE_AK_NAME_MAX];
    size_t ak_name_len = 0;
    tether_status_t rc;

    memset(device, 0, sizeof(*device));
    if ((rc = tether_pg_copy_text(row, 0, device->id, sizeof(device->id))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 1, device->name, sizeof(device->name))) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 2, device->ek_sha256, sizeof(device->ek_sha256))) !=
            TETHER_OK ||
        (rc = tether_device_status_parse(tether_pg_text(row, 3), &device->status)) != TETHER_OK ||
        (rc = tether_pg_copy_text(row, 4, device->status_reason,
                                  sizeof(device->status_reason))) != TETHER_OK)
        return rc;
    device->allow_reenroll = tether_pg_int64(row, 5) != 0;
    device->enrolled = tether_pg_int64(row, 6) != 0;
    device->has_counter = !tether_pg_is_null(row, 7);
    device->highest_counter = (uint64_t)tether_pg_int64(row, 7);
    device->created_at = tether_pg_int64(row, 8);
    device->updated_at = tether_pg_int64(row, 9);
    if (!tether_pg_is_null(row, 10)) {
        if ((rc = tether_pg_blob(row, 10, ak_name, sizeof(ak_name), &ak_name_len)) != TETHER_OK ||
            (rc = tether_hex_encode(ak_name, ak_name_len, device->ak_name,
                                    sizeof(device->ak_name))) != TETHER_OK)
            return rc;
    }
    if (!tether_pg_is_null(row, 11)) {
        int64_t index = tether_pg_int64(row, 11);
        if (index < 0 || index > (int64_t)UINT32_MAX)
            return TETHER_ERR_PARSE;
        device->has_counter_index = true;
        device->counter_index = (uint32_t)index;
    }
    return TETHER_OK;
}

static tether_status_t device_read(void *arg, const tether_pg_row_t *row)
{
    return tether_pg_device_row(row, arg);
}

tether_status_t tether_pg_device_select(tether_pg_t *db, const char *sql, const char *key,
                                        tether_store_device_t *device)
{
    return tether_pg_query_one(db, "read device", sql, PG_ARGS(PG_TEXT(key)), device_read,
                               device);
}

static tether_status_t device_once(pg_store_t *s, const char *sql, const char *key,
                                   tether_store_device_t *device)
{
    if (key == NULL || device == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_query_once(s, "read device", sql, PG_ARGS(PG_TEXT(key)), device_read,
                                device);
}

tether_status_t tether_pg_device_get(void *impl, const char *id, tether_store_device_t *device)
{
    return device_once(impl, PG_SELECT_DEVICE_BY_ID, id, device);
}

tether_status_t tether_pg_device_find_ek(void *impl, const char *ek_sha256,
                                         tether_store_device_t *device)
{
    return device_once(impl, PG_SELECT_DEVICE_BY_EK, ek_sha256, device);
}

static tether_status_t device_item(tether_pg_list_t *list, const tether_pg_row_t *row, bool *stop)
{
    tether_store_device_t device;
    tether_status_t rc = tether_pg_device_row(row, &device);

    if (rc == TETHER_OK)
        *stop = list->cb.device(list->arg, &device) != 0;
    return rc;
}

tether_status_t tether_pg_device_list(void *impl, tether_store_device_cb cb, void *arg)
{
    tether_pg_list_t list = {.read = device_item, .cb.device = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(
        impl, "list devices",
        "SELECT " PG_DEVICE_COLUMNS " FROM devices ORDER BY created_at, row_order", PG_NO_ARGS,
        &list);
}

/* One row of the count by status: its status's entry of the counts. */
static tether_status_t count_item(tether_pg_list_t *list, const tether_pg_row_t *row, bool *stop)
{
    uint64_t *counts = list->arg;
    tether_device_status_t status;
    tether_status_t rc;

    *stop = false;
    rc = tether_device_status_parse(tether_pg_text(row, 0), &status);
    if (rc == TETHER_OK)
        counts[status] = (uint64_t)tether_pg_int64(row, 1);
    return rc;
}

tether_status_t tether_pg_device_counts(void *impl, uint64_t counts[])
{
    tether_pg_list_t list = {.read = count_item, .arg = counts};

    if (counts == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(impl, "count devices",
                          "SELECT status, count(*) FROM devices GROUP BY status", PG_NO_ARGS,
                          &list);
}

typedef struct import {
    const tether_store_allow_t *rows;
    size_t count;
    int64_t now;
    size_t created;
    size_t conflict_index;
} import_t;

static tether_status_t read_name_matches(void *arg, const tether_pg_row_t *row)
{
    const char *name = tether_pg_text(row, 0);

    return name != NULL && strcmp(name, arg) == 0 ? TETHER_OK : TETHER_ERR_CONFLICT;
}

static tether_status_t import_tx(tether_pg_t *db, void *arg)
{
    static const char insert_sql[] =
        "INSERT INTO devices (id, name, ek_sha256, status, created_at, updated_at) "
        "VALUES ($1, $2, $3, 'allowed', $4, $4)";
    import_t *im = arg;
    tether_status_t rc = TETHER_OK;

    im->created = 0;
    for (size_t i = 0; rc == TETHER_OK && i < im->count; i++) {
        const tether_store_allow_t *row = &im->rows[i];

        im->conflict_index = i;
        rc = tether_pg_query_one(db, "find device", "SELECT name FROM devices WHERE ek_sha256 = $1",
                                 PG_ARGS(PG_TEXT(row->ek_sha256)), read_name_matches,
                                 (void *)row->name);
        if (rc != TETHER_ERR_NOT_FOUND)
            continue;
        rc = tether_pg_run(db, "allow device", insert_sql,
                           PG_ARGS(PG_TEXT(row->id), PG_TEXT(row->name), PG_TEXT(row->ek_sha256),
                                   PG_INT(im->now)),
                           NULL);
        im->created += rc == TETHER_OK ? 1 : 0;
    }
    return rc;
}

tether_status_t tether_pg_device_import(void *impl, const tether_store_allow_t *rows, size_t count,
                                        int64_t now, size_t *created, size_t *conflict_index)
{
    import_t im = {.rows = rows, .count = count, .now = now};
    tether_status_t rc;

    if (created != NULL)
        *created = 0;
    if (rows == NULL && count > 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_transaction(impl, "import devices", import_tx, &im);
    if (rc == TETHER_OK && created != NULL)
        *created = im.created;
    if (rc == TETHER_ERR_CONFLICT && conflict_index != NULL)
        *conflict_index = im.conflict_index;
    return rc;
}

/* A seq is drawn when a transaction inserts and seen when it commits: two
 * replicas appending at once could show seq 8 before seq 7, and a reader
 * whose cursor passed 8 would never see 7. Appends take the feed's lock
 * (held to the commit) before drawing their seq, so seqs commit in order;
 * revocations are rare, the wait is short. */
tether_status_t tether_pg_revoke_tokens(tether_pg_t *db, const char *id, const char *reason,
                                        int64_t now)
{
    static const char tokens_sql[] = "UPDATE issued_tokens SET revoked = 1 "
                                     "WHERE device_id = $1 AND revoked = 0 AND exp > $2";
    static const char feed_sql[] = "INSERT INTO revocations (device_id, jti, reason, created_at) "
                                   "VALUES ($1, NULL, $2, $3)";
    tether_status_t rc;

    rc = tether_pg_run(db, "revoke issued tokens", tokens_sql, PG_ARGS(PG_TEXT(id), PG_INT(now)),
                       NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "lock the revocation feed", "SELECT pg_advisory_xact_lock($1)",
                           PG_ARGS(PG_INT(TETHER_PG_FEED_LOCK)), NULL);
    if (rc == TETHER_OK)
        rc = tether_pg_run(db, "append revocation", feed_sql,
                           PG_ARGS(PG_TEXT(id), PG_TEXT(reason), PG_INT(now)), NULL);
    return rc;
}

typedef struct status_change {
    const char *id;
    tether_device_action_t action;
    const char *reason;
    int64_t now;
    tether_store_device_t *device; /* NULL: not wanted */
} status_change_t;

static tether_status_t change_status_tx(tether_pg_t *db, void *arg)
{
    static const char update_sql[] =
        "UPDATE devices SET status = $4, status_reason = $2, allow_reenroll = $5, "
        "updated_at = $3 WHERE id = $1";
    status_change_t *c = arg;
    tether_store_device_t current;
    tether_device_status_t next;
    tether_status_t rc;

    if ((rc = tether_pg_device_select(db, PG_SELECT_DEVICE_BY_ID, c->id, &current)) !=
            TETHER_OK ||
        (rc = tether_store_status_after(c->action, current.status, &next)) != TETHER_OK)
        return rc;
    rc = tether_pg_run(db, "change device status", update_sql,
                       PG_ARGS(PG_TEXT(c->id), PG_TEXT(c->reason), PG_INT(c->now),
                               PG_TEXT(tether_device_status_name(next)),
                               PG_INT(c->action == TETHER_DEVICE_REINSTATE ? 1 : 0)),
                       NULL);
    if (rc == TETHER_OK && c->action != TETHER_DEVICE_REINSTATE)
        rc = tether_pg_revoke_tokens(db, c->id, c->reason, c->now);
    if (rc == TETHER_OK && c->device != NULL)
        rc = tether_pg_device_select(db, PG_SELECT_DEVICE_BY_ID, c->id, c->device);
    return rc;
}

tether_status_t tether_pg_device_change_status(void *impl, const char *id,
                                               tether_device_action_t action, const char *reason,
                                               int64_t now, tether_store_device_t *device)
{
    status_change_t c = {id, action, reason, now, device};

    if (id == NULL || reason == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_transaction(impl, "change device status", change_status_tx, &c);
}

/* ---- bootstrap tokens, alerts, issued tokens, revocation feed ---- */

tether_status_t tether_pg_bootstrap_token_create(void *impl,
                                                 const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                 int64_t expires_at, unsigned uses, int64_t now)
{
    static const char sql[] = "INSERT INTO bootstrap_tokens (hash, expires_at, uses_left, "
                              "created_at) VALUES ($1, $2, $3, $4)";

    if (hash == NULL || uses == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_run_once(impl, "create bootstrap token", sql,
                              PG_ARGS(PG_BLOB(hash, TETHER_STORE_HASH_SIZE), PG_INT(expires_at),
                                      PG_INT(uses), PG_INT(now)),
                              NULL);
}

tether_status_t tether_pg_alert_insert(tether_pg_t *db, const char *device_id, const char *kind,
                                       const char *details_json, int64_t now)
{
    static const char sql[] =
        "INSERT INTO alerts (device_id, kind, details, created_at) VALUES ($1, $2, $3, $4)";
    tether_status_t rc = tether_pg_run(db, "add alert", sql,
                                       PG_ARGS(PG_TEXT(device_id), PG_TEXT(kind),
                                               PG_TEXT(details_json), PG_INT(now)),
                                       NULL);

    db->alerted |= rc == TETHER_OK;
    return rc;
}

typedef struct alert_add {
    const char *device_id;
    const char *kind;
    const char *details_json;
    int64_t now;
} alert_add_t;

static tether_status_t alert_add_tx(tether_pg_t *db, void *arg)
{
    alert_add_t *a = arg;

    return tether_pg_alert_insert(db, a->device_id, a->kind, a->details_json, a->now);
}

tether_status_t tether_pg_alert_add(void *impl, const char *device_id, const char *kind,
                                    const char *details_json, int64_t now)
{
    alert_add_t a = {device_id, kind, details_json, now};

    if (kind == NULL || details_json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* A transaction, for the alert hook after the commit. */
    return tether_pg_transaction(impl, "add alert", alert_add_tx, &a);
}

tether_status_t tether_pg_page_columns(const tether_pg_row_t *row, int64_t *cursor,
                                      char device_id[TETHER_STORE_DEVICE_ID_SIZE],
                                      const char **first, const char **second,
                                      int64_t *created_at)
{
    *cursor = tether_pg_int64(row, 0);
    *first = tether_pg_text(row, 2);
    *second = tether_pg_text(row, 3);
    *created_at = tether_pg_int64(row, 4);
    return tether_pg_copy_text(row, 1, device_id, TETHER_STORE_DEVICE_ID_SIZE);
}

static tether_status_t alert_item(tether_pg_list_t *list, const tether_pg_row_t *row, bool *stop)
{
    tether_store_alert_t a;
    tether_status_t rc;

    memset(&a, 0, sizeof(a));
    rc = tether_pg_page_columns(row, &a.id, a.device_id, &a.kind, &a.details_json, &a.created_at);
    if (rc == TETHER_OK)
        *stop = list->cb.alert(list->arg, &a) != 0;
    return rc;
}

tether_status_t tether_pg_alert_list(void *impl, int64_t after_id, unsigned limit,
                                     tether_store_alert_cb cb, void *arg)
{
    static const char sql[] = "SELECT id, device_id, kind, details, created_at FROM alerts "
                              "WHERE id > $1 ORDER BY id LIMIT $2";
    tether_pg_list_t list = {.read = alert_item, .cb.alert = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(impl, "list alerts", sql, PG_ARGS(PG_INT(after_id), PG_INT(limit)),
                          &list);
}

tether_status_t tether_pg_issued_token_add(void *impl, const char *jti, const char *device_id,
                                           int64_t exp, int64_t now)
{
    static const char sql[] = "INSERT INTO issued_tokens (jti, device_id, exp, issued_at) "
                              "VALUES ($1, $2, $3, $4)";

    if (jti == NULL || device_id == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_run_once(impl, "record issued token", sql,
                              PG_ARGS(PG_TEXT(jti), PG_TEXT(device_id), PG_INT(exp),
                                      PG_INT(now)),
                              NULL);
}

static tether_status_t revoked_read(void *arg, const tether_pg_row_t *row)
{
    *(bool *)arg = tether_pg_int64(row, 0) != 0;
    return TETHER_OK;
}

tether_status_t tether_pg_issued_token_revoked(void *impl, const char *jti, bool *revoked)
{
    if (jti == NULL || revoked == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_query_once(impl, "read issued token",
                                "SELECT revoked FROM issued_tokens WHERE jti = $1",
                                PG_ARGS(PG_TEXT(jti)), revoked_read, revoked);
}

static tether_status_t revocation_item(tether_pg_list_t *list, const tether_pg_row_t *row,
                                       bool *stop)
{
    tether_store_revocation_t r;
    tether_status_t rc;

    memset(&r, 0, sizeof(r));
    rc = tether_pg_page_columns(row, &r.seq, r.device_id, &r.jti, &r.reason, &r.created_at);
    if (rc == TETHER_OK)
        *stop = list->cb.revocation(list->arg, &r) != 0;
    return rc;
}

/* Every replica serves the same feed: seqs commit in order (see
 * tether_pg_revoke_tokens), so a cursor never passes an entry yet to come. */
tether_status_t tether_pg_revocation_list(void *impl, int64_t after_seq, unsigned limit,
                                          tether_store_revocation_cb cb, void *arg)
{
    static const char sql[] =
        "SELECT seq, device_id, jti, reason, created_at FROM revocations "
        "WHERE seq > $1 ORDER BY seq LIMIT $2";
    tether_pg_list_t list = {.read = revocation_item, .cb.revocation = cb, .arg = arg};

    if (cb == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_list(impl, "list revocations", sql,
                          PG_ARGS(PG_INT(after_seq), PG_INT(limit)), &list);
}

static tether_status_t token_state_read(void *arg, const tether_pg_row_t *row)
{
    tether_store_token_state_t *state = arg;
    tether_status_t rc = tether_pg_copy_text(row, 0, state->device_id, sizeof(state->device_id));

    if (rc == TETHER_OK)
        rc = tether_device_status_parse(tether_pg_text(row, 3), &state->device_status);
    state->exp = tether_pg_int64(row, 1);
    state->revoked = tether_pg_int64(row, 2) != 0;
    return rc;
}

tether_status_t tether_pg_token_state(void *impl, const char *jti,
                                      tether_store_token_state_t *state)
{
    static const char sql[] = "SELECT t.device_id, t.exp, t.revoked, d.status "
                              "FROM issued_tokens t JOIN devices d ON d.id = t.device_id "
                              "WHERE t.jti = $1";

    if (jti == NULL || state == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(state, 0, sizeof(*state));
    return tether_pg_query_once(impl, "read issued token", sql, PG_ARGS(PG_TEXT(jti)),
                                token_state_read, state);
}

tether_status_t tether_pg_revocation_head(void *impl, int64_t *seq)
{
    if (seq == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *seq = 0;
    /* An aggregate: always one row. */
    return tether_pg_query_once(impl, "read revocation feed head",
                                "SELECT coalesce(max(seq), 0) FROM revocations", PG_NO_ARGS,
                                tether_pg_read_int64, seq);
}
