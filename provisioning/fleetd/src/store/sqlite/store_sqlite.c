/*
 * The store on SQLite: one connection guarded by a mutex (fleetd's requests
 * are short), WAL journal with synchronous FULL so that a committed change
 * survives a power cut, BEGIN IMMEDIATE for every change so that two writers
 * never interleave, and a busy timeout for other processes (a second fleetd,
 * the sqlite3 shell). Statements go through store_sqlite_db.c.
 *
 * This file is the schema and the life cycle (open, WAL, the table of
 * operations, close); the operations are in a file per subject:
 * store_sqlite_admin_tokens.c, store_sqlite_devices.c,
 * store_sqlite_enrollment.c, store_sqlite_exchange.c, store_sqlite_usage.c
 * and store_sqlite_webhooks.c.
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

/* ---- life cycle ---- */

static void op_close(void *impl)
{
    sqlite_store_t *s = impl;

    if (s == NULL)
        return;
    tether_sqlite_statements_free(s);
    if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
        tether_warn("store", "closing the database: %s", sqlite3_errmsg(s->db));
    pthread_mutex_destroy(&s->lock);
    tether_wipe(s, sizeof(*s));
    free(s);
}

static const tether_store_ops_t sqlite_ops = {
    .close = op_close,
    .schema_version = op_schema_version,
    .admin_token_create = tether_sqlite_admin_token_create,
    .admin_token_find = tether_sqlite_admin_token_find,
    .admin_token_recover = tether_sqlite_admin_token_recover,
    .admin_token_revoke = tether_sqlite_admin_token_revoke,
    .admin_token_list = tether_sqlite_admin_token_list,
    .device_import = tether_sqlite_device_import,
    .device_get = tether_sqlite_device_get,
    .device_find_ek = tether_sqlite_device_find_ek,
    .device_list = tether_sqlite_device_list,
    .device_counts = tether_sqlite_device_counts,
    .device_change_status = tether_sqlite_device_change_status,
    .bootstrap_token_create = tether_sqlite_bootstrap_token_create,
    .enroll_authorize = tether_sqlite_enroll_authorize,
    .enrollment_add = tether_sqlite_enrollment_add,
    .enrollment_find = tether_sqlite_enrollment_find,
    .enrollment_delete = tether_sqlite_enrollment_delete,
    .enrollment_activate = tether_sqlite_enrollment_activate,
    .enrollment_completed = tether_sqlite_enrollment_completed,
    .alert_add = tether_sqlite_alert_add,
    .alert_list = tether_sqlite_alert_list,
    .webhook_sync = tether_sqlite_webhook_sync,
    .webhook_claim = tether_sqlite_webhook_claim,
    .webhook_retry_at = tether_sqlite_webhook_retry_at,
    .webhook_delivered = tether_sqlite_webhook_delivered,
    .webhook_pending = tether_sqlite_webhook_pending,
    .set_alert_hook = tether_sqlite_set_alert_hook,
    .issued_token_add = tether_sqlite_issued_token_add,
    .issued_token_revoked = tether_sqlite_issued_token_revoked,
    .revocation_list = tether_sqlite_revocation_list,
    .token_state = tether_sqlite_token_state,
    .revocation_head = tether_sqlite_revocation_head,
    .exchange_device_get = tether_sqlite_exchange_device_get,
    .exchange_batch = tether_sqlite_exchange_batch,
    .issued_token_get = tether_sqlite_issued_token_get,
    .issuer_key_list = tether_sqlite_issuer_key_list,
    .issuer_key_add_first = tether_sqlite_issuer_key_add_first,
    .issuer_key_rotate = tether_sqlite_issuer_key_rotate,
    .usage_report_record = tether_sqlite_usage_report_record,
    .usage_unreported_check = tether_sqlite_usage_unreported_check,
    .usage_list = tether_sqlite_usage_list,
    .policy_write = tether_sqlite_policy_write,
    .policy_get = tether_sqlite_policy_get,
    .policy_list = tether_sqlite_policy_list,
    .device_set_policy = tether_sqlite_device_set_policy,
    .device_policy = tether_sqlite_device_policy,
    .eventlog_get = tether_sqlite_eventlog_get,
    .eventlog_put = tether_sqlite_eventlog_put,
    .purge = tether_sqlite_purge,
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
