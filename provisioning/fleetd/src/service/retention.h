/*
 * Retention (README, "Retention"): when what fleetd keeps per token and per
 * alert may go. Pure: the purge itself runs on the usage check's thread
 * (usage_check.h), one store batch (tether_store_purge) at a time.
 *
 * A token's rows are read until its usage window closed: introspection
 * answers a token past exp inactive before it reads the store, revocation
 * marks only unexpired tokens, gateways accept it until exp +
 * TETHER_STORE_USAGE_LEEWAY, and the usage_unreported check alerts one
 * grace (one token lifetime) after that. Late usage reports are compared
 * with the device's final count as long as the rows are kept; a report
 * about a purged token is counted as one about a token the fleet does not
 * know (flagged).
 */
#ifndef TETHER_FLEET_RETENTION_H
#define TETHER_FLEET_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct tether_retention {
    int64_t token_seconds; /* kept after the token's usage window closed */
    int64_t alert_seconds; /* kept after the alert was written */
    unsigned batch;        /* rows per table per transaction, at least 1 */
    unsigned pause_ms;     /* between two transactions of one pass */
} tether_retention_t;

/* The batch to purge at now, grace being the usage_unreported check's:
 * tokens whose exp is before now - TETHER_STORE_USAGE_LEEWAY - grace -
 * token_seconds, token_usage rows last seen a longest token life (and
 * two leeways) before that, alerts written before now - alert_seconds. */
void tether_retention_batch(const tether_retention_t *retention, int64_t now, int64_t grace,
                            tether_store_purge_t *purge);

/* Whether a batch that deleted purged[] may have left rows past the
 * cutoffs: some table gave a full batch. */
bool tether_retention_more(const tether_retention_t *retention,
                           const uint64_t purged[TETHER_STORE_PURGE_TABLES]);

#endif
