/*
 * Measured boot's event logs on SQLite (store_eventlogs.h, "measured boot's event
 * logs"; table device_eventlogs, schema version 14): one row per device and
 * kind, replaced when a log with another hash is accepted.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_sqlite_internal.h"

typedef struct eventlog_read {
    tether_store_eventlog_t *log;
    bool with_bytes;
} eventlog_read_t;

/* sha256, bytes: the row's columns 0 and 1. */
static tether_status_t eventlog_row(void *arg, sqlite3_stmt *row)
{
    eventlog_read_t *r = arg;
    const void *hash = sqlite3_column_blob(row, 0);
    int hash_len = sqlite3_column_bytes(row, 0);
    const void *bytes;
    int len;

    if (hash == NULL || hash_len != (int)sizeof(r->log->sha256))
        return TETHER_ERR_STORE; /* the CHECK constraint says otherwise: a damaged database */
    memcpy(r->log->sha256, hash, sizeof(r->log->sha256));
    if (!r->with_bytes)
        return TETHER_OK;
    bytes = sqlite3_column_blob(row, 1);
    len = sqlite3_column_bytes(row, 1);
    if (len <= 0)
        return TETHER_OK;
    if ((r->log->bytes = malloc((size_t)len)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    memcpy(r->log->bytes, bytes, (size_t)len);
    r->log->len = (size_t)len;
    return TETHER_OK;
}

tether_status_t tether_sqlite_eventlog_get(void *impl, const char *device_id, int kind,
                                           bool with_bytes, tether_store_eventlog_t *log)
{
    static const char sql[] =
        "SELECT sha256, bytes FROM device_eventlogs WHERE device_id = ?1 AND log = ?2";
    /* The hash alone: the challenge asks for it and needs no blob read. */
    static const char hash_only[] =
        "SELECT sha256, NULL FROM device_eventlogs WHERE device_id = ?1 AND log = ?2";
    sqlite_store_t *s = impl;
    eventlog_read_t r = {.log = log, .with_bytes = with_bytes};
    const char *name = tether_store_eventlog_kind_name(kind);
    tether_status_t rc;

    if (log == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(log, 0, sizeof(*log));
    if (device_id == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_query_one(s, "read event log", with_bytes ? sql : hash_only,
                                 SQL_ARGS(SQL_TEXT(device_id), SQL_TEXT(name)), eventlog_row,
                                 &r);
    pthread_mutex_unlock(&s->lock);
    if (rc != TETHER_OK)
        tether_store_eventlog_free(log);
    return rc;
}

tether_status_t tether_sqlite_eventlog_put(void *impl, const char *device_id, int kind,
                                           const uint8_t *sha256, const uint8_t *bytes,
                                           size_t len, int64_t now)
{
    static const char sql[] =
        "INSERT INTO device_eventlogs (device_id, log, sha256, bytes, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (device_id, log) DO UPDATE SET "
        "sha256 = excluded.sha256, bytes = excluded.bytes, updated_at = excluded.updated_at";
    /* An empty log is a zero-length blob, never NULL (the column is NOT
     * NULL, and SQLite binds a NULL pointer as NULL). */
    static const uint8_t empty[1] = {0};
    sqlite_store_t *s = impl;
    const char *name = tether_store_eventlog_kind_name(kind);
    tether_status_t rc;

    if (device_id == NULL || name == NULL || sha256 == NULL || (bytes == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    rc = tether_sqlite_run(s, "keep event log", sql,
                           SQL_ARGS(SQL_TEXT(device_id), SQL_TEXT(name), SQL_BLOB(sha256, 32),
                                    SQL_BLOB(len > 0 ? bytes : empty, len), SQL_INT(now)));
    pthread_mutex_unlock(&s->lock);
    return rc;
}
