/*
 * Measured boot's event logs on PostgreSQL (store_eventlogs.h, "measured boot's event
 * logs"; table device_eventlogs, schema version 14): the rules of
 * store_sqlite_eventlogs.c. One statement each, atomic by itself: a put on
 * two replicas at once leaves one of the two logs, each accepted.
 */
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_pg_internal.h"

typedef struct eventlog_read {
    tether_store_eventlog_t *log;
    bool with_bytes;
} eventlog_read_t;

/* sha256, bytes, octet_length(bytes): the row's columns 0 to 2. */
static tether_status_t eventlog_row(void *arg, const tether_pg_row_t *row)
{
    eventlog_read_t *r = arg;
    int64_t size = tether_pg_int64(row, 2);
    size_t len = 0;
    tether_status_t rc;

    rc = tether_pg_blob(row, 0, r->log->sha256, sizeof(r->log->sha256), &len);
    if (rc != TETHER_OK || len != sizeof(r->log->sha256))
        return TETHER_ERR_STORE; /* the CHECK constraint says otherwise: a damaged database */
    if (!r->with_bytes || size <= 0)
        return TETHER_OK;
    if ((r->log->bytes = malloc((size_t)size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    rc = tether_pg_blob(row, 1, r->log->bytes, (size_t)size, &r->log->len);
    return rc == TETHER_OK && r->log->len == (size_t)size ? TETHER_OK : TETHER_ERR_STORE;
}

tether_status_t tether_pg_eventlog_get(void *impl, const char *device_id, int kind,
                                       bool with_bytes, tether_store_eventlog_t *log)
{
    static const char sql[] = "SELECT sha256, bytes, octet_length(bytes) FROM device_eventlogs"
                              " WHERE device_id = $1 AND log = $2";
    /* The hash alone: the challenge asks for it and needs no log sent. */
    static const char hash_only[] = "SELECT sha256, NULL, 0 FROM device_eventlogs"
                                    " WHERE device_id = $1 AND log = $2";
    eventlog_read_t r = {.log = log, .with_bytes = with_bytes};
    const char *name = tether_store_eventlog_kind_name(kind);
    tether_status_t rc;

    if (log == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(log, 0, sizeof(*log));
    if (device_id == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_pg_query_once(impl, "read event log", with_bytes ? sql : hash_only,
                              PG_ARGS(PG_TEXT(device_id), PG_TEXT(name)), eventlog_row, &r);
    if (rc != TETHER_OK)
        tether_store_eventlog_free(log);
    return rc;
}

tether_status_t tether_pg_eventlog_put(void *impl, const char *device_id, int kind,
                                       const uint8_t *sha256, const uint8_t *bytes, size_t len,
                                       int64_t now)
{
    static const char sql[] =
        "INSERT INTO device_eventlogs (device_id, log, sha256, bytes, updated_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id, log) DO UPDATE SET "
        "sha256 = excluded.sha256, bytes = excluded.bytes, updated_at = excluded.updated_at";
    /* An empty log is a zero-length bytea, never NULL (the column is NOT
     * NULL). */
    static const uint8_t empty[1] = {0};
    const char *name = tether_store_eventlog_kind_name(kind);

    if (device_id == NULL || name == NULL || sha256 == NULL || (bytes == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_pg_run_once(impl, "keep event log", sql,
                              PG_ARGS(PG_TEXT(device_id), PG_TEXT(name), PG_BLOB(sha256, 32),
                                      PG_BLOB(len > 0 ? bytes : empty, len), PG_INT(now)),
                              NULL);
}
