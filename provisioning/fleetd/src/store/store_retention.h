/*
 * Retention: what would grow without bound with the exchanges, purged in
 * bounded batches (README "Retention").
 */
#ifndef TETHER_FLEET_STORE_RETENTION_H
#define TETHER_FLEET_STORE_RETENTION_H

#include "store_types.h"

/* ---- retention: what would grow without bound (store_sqlite_retention.c,
 * store_pg_retention.c; schema version 15; README "Retention") ---- */

/* The tables a purge deletes from, for its counts (and /metrics' labels). */
typedef enum tether_store_purge_table {
    TETHER_STORE_PURGE_ISSUED_TOKENS = 0,
    TETHER_STORE_PURGE_DEVICE_USAGE,
    TETHER_STORE_PURGE_USAGE_ALERTS,
    TETHER_STORE_PURGE_TOKEN_USAGE,
    TETHER_STORE_PURGE_ALERTS,
    TETHER_STORE_PURGE_TABLES,
} tether_store_purge_table_t;

/* The table's name ("issued_tokens", ...); NULL for a value out of range. */
const char *tether_store_purge_table_name(tether_store_purge_table_t table);

/* One batch of a purge: what has gone past its retention. */
typedef struct tether_store_purge {
    /* Issued tokens whose exp is before this go, with their device_usage
     * and usage_alerts rows. */
    int64_t tokens_before;
    /* token_usage rows (per relying party and jti) last seen before this
     * go: retention.h chooses it so that their token went before them. */
    int64_t usage_before;
    /* Alerts created before this go, except one a webhook's outbox still
     * holds (its delivery reads it). */
    int64_t alerts_before;
    /* At most this many issued tokens (oldest exp first), alerts (oldest
     * first) and tokens' token_usage rows (oldest first: every relying
     * party's row of such a token that is past the cutoff) per call; at
     * least 1. */
    unsigned batch;
} tether_store_purge_t;

/* Deletes one batch in one transaction; purged[TETHER_STORE_PURGE_TABLES]
 * gets the rows deleted from each table (zeroed on entry). A table whose
 * count is below purge->batch has nothing more past the cutoff. Never
 * touches the rows the clone rule reads (devices), the revocation feed,
 * nor anything the other operations purge themselves. */
TETHER_MUST_CHECK tether_status_t tether_store_purge(tether_store_t *store,
                                                     const tether_store_purge_t *purge,
                                                     uint64_t purged[TETHER_STORE_PURGE_TABLES]);

#endif
