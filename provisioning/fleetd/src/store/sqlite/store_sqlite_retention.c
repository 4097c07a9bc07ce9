/* The retention purge in the SQLite store (store.h, "retention"; schema
 * version 15's indexes). */
#include <string.h>

#include "store_sqlite_internal.h"

/* The batch of issued tokens past their retention, oldest exp first (the
 * issued_tokens_exp index). Read once per statement below, in one
 * transaction under the store's lock: the same rows each time. */
#define TOKEN_BATCH "SELECT jti FROM issued_tokens WHERE exp < ?1 ORDER BY exp LIMIT ?2"

/* The cutoff of each statement, in tether_store_purge_t. */
typedef enum purge_cutoff { CUTOFF_TOKENS, CUTOFF_USAGE, CUTOFF_ALERTS } purge_cutoff_t;

typedef struct purge_statement {
    tether_store_purge_table_t table;
    const char *what;
    const char *sql; /* ?1 the cutoff, ?2 the batch */
    purge_cutoff_t cutoff;
} purge_statement_t;

/* In this order: device_usage refers to issued_tokens. */
static const purge_statement_t statements[] = {
    {TETHER_STORE_PURGE_DEVICE_USAGE, "purge device usage",
     "DELETE FROM device_usage WHERE jti IN (" TOKEN_BATCH ")", CUTOFF_TOKENS},
    {TETHER_STORE_PURGE_USAGE_ALERTS, "purge usage alerts",
     "DELETE FROM usage_alerts WHERE jti IN (" TOKEN_BATCH ")", CUTOFF_TOKENS},
    {TETHER_STORE_PURGE_ISSUED_TOKENS, "purge issued tokens",
     "DELETE FROM issued_tokens WHERE jti IN (" TOKEN_BATCH ")", CUTOFF_TOKENS},
    /* By jti (the index: the primary key's first column, the relying
     * party, would scan all of its rows), each relying party's row only
     * when it too is past the cutoff. */
    {TETHER_STORE_PURGE_TOKEN_USAGE, "purge token usage",
     "DELETE FROM token_usage INDEXED BY token_usage_jti WHERE jti IN (SELECT jti"
     " FROM token_usage WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2) AND last_seen < ?1",
     CUTOFF_USAGE},
    {TETHER_STORE_PURGE_ALERTS, "purge alerts",
     "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts a WHERE created_at < ?1"
     " AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.alert_id = a.id)"
     " ORDER BY created_at LIMIT ?2)", CUTOFF_ALERTS},
};

tether_status_t tether_sqlite_purge(void *impl, const tether_store_purge_t *purge,
                                    uint64_t *purged)
{
    sqlite_store_t *s = impl;
    const int64_t before[] = {
        [CUTOFF_TOKENS] = purge->tokens_before,
        [CUTOFF_USAGE] = purge->usage_before,
        [CUTOFF_ALERTS] = purge->alerts_before,
    };
    tether_status_t rc;

    pthread_mutex_lock(&s->lock);
    if ((rc = tether_sqlite_begin(s)) != TETHER_OK)
        goto unlock;
    for (size_t i = 0; rc == TETHER_OK && i < sizeof(statements) / sizeof(statements[0]); i++) {
        const purge_statement_t *p = &statements[i];

        rc = tether_sqlite_run(s, p->what, p->sql,
                               SQL_ARGS(SQL_INT(before[p->cutoff]), SQL_INT(purge->batch)));
        if (rc == TETHER_OK)
            purged[p->table] = (uint64_t)sqlite3_changes(s->db);
    }
    rc = tether_sqlite_finish(s, rc);
unlock:
    pthread_mutex_unlock(&s->lock);
    if (rc != TETHER_OK)
        memset(purged, 0, TETHER_STORE_PURGE_TABLES * sizeof(*purged));
    return rc;
}
