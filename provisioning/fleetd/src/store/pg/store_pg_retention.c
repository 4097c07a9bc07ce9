/*
 * The retention purge on PostgreSQL (store.h, "retention"): the rules of
 * store_sqlite_retention.c in one statement (one round trip), whose parts
 * all read the snapshot it started with. device_usage's foreign key to
 * issued_tokens is checked at the statement's end, when both are gone.
 */
#include <string.h>

#include "store_pg_internal.h"

typedef struct purge_tx {
    const tether_store_purge_t *purge;
    uint64_t *purged;
} purge_tx_t;

static tether_status_t purge_counts(void *arg, const tether_pg_row_t *row)
{
    uint64_t *purged = arg;

    for (int i = 0; i < TETHER_STORE_PURGE_TABLES; i++)
        purged[i] = (uint64_t)tether_pg_int64(row, i);
    return TETHER_OK;
}

static tether_status_t purge_body(tether_pg_t *db, void *arg)
{
    /* The columns in tether_store_purge_table_t's order. */
    static const char sql[] =
        "WITH batch AS (SELECT jti FROM issued_tokens WHERE exp < $1 ORDER BY exp LIMIT $2),"
        " du AS (DELETE FROM device_usage WHERE jti IN (SELECT jti FROM batch) RETURNING 1),"
        " ua AS (DELETE FROM usage_alerts WHERE jti IN (SELECT jti FROM batch) RETURNING 1),"
        " it AS (DELETE FROM issued_tokens WHERE jti IN (SELECT jti FROM batch) RETURNING 1),"
        " tu AS (DELETE FROM token_usage WHERE jti IN (SELECT jti FROM token_usage"
        "  WHERE last_seen < $4 ORDER BY last_seen LIMIT $2) AND last_seen < $4 RETURNING 1),"
        " al AS (DELETE FROM alerts WHERE id IN (SELECT id FROM alerts a WHERE created_at < $3"
        "  AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.alert_id = a.id)"
        "  ORDER BY created_at LIMIT $2) RETURNING 1)"
        " SELECT (SELECT count(*) FROM it), (SELECT count(*) FROM du),"
        " (SELECT count(*) FROM ua), (SELECT count(*) FROM tu), (SELECT count(*) FROM al)";
    purge_tx_t *tx = arg;

    memset(tx->purged, 0, TETHER_STORE_PURGE_TABLES * sizeof(*tx->purged));
    return tether_pg_query_one(db, "purge", sql,
                               PG_ARGS(PG_INT(tx->purge->tokens_before),
                                       PG_INT(tx->purge->batch),
                                       PG_INT(tx->purge->alerts_before),
                                       PG_INT(tx->purge->usage_before)),
                               purge_counts, tx->purged);
}

tether_status_t tether_pg_purge(void *impl, const tether_store_purge_t *purge, uint64_t *purged)
{
    purge_tx_t tx = {.purge = purge, .purged = purged};
    tether_status_t rc;

    rc = tether_pg_transaction(impl, "purge", purge_body, &tx);
    if (rc != TETHER_OK)
        memset(purged, 0, TETHER_STORE_PURGE_TABLES * sizeof(*purged));
    return rc;
}
