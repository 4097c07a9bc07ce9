/* Retention's cutoffs (retention.h). */
#include "retention.h"

#include <string.h>

#include "tether/fleet_policy.h"

void tether_retention_batch(const tether_retention_t *retention, int64_t now, int64_t grace,
                            tether_store_purge_t *purge)
{
    memset(purge, 0, sizeof(*purge));
    purge->tokens_before = now - TETHER_STORE_USAGE_LEEWAY - grace - retention->token_seconds;
    /* A gateway counts a token's use from its iat (less the leeway) to its
     * exp (plus the leeway): a usage row last seen before this is of a
     * token that expired before tokens_before, so it never outlives it. */
    purge->usage_before =
        purge->tokens_before - TETHER_POLICY_LIFETIME_MAX - 2 * TETHER_STORE_USAGE_LEEWAY;
    purge->alerts_before = now - retention->alert_seconds;
    purge->batch = retention->batch;
}

bool tether_retention_more(const tether_retention_t *retention,
                           const uint64_t purged[TETHER_STORE_PURGE_TABLES])
{
    /* device_usage and usage_alerts go with their tokens' batch: a full
     * batch of theirs is no sign of more. */
    return purged[TETHER_STORE_PURGE_ISSUED_TOKENS] >= retention->batch ||
           purged[TETHER_STORE_PURGE_TOKEN_USAGE] >= retention->batch ||
           purged[TETHER_STORE_PURGE_ALERTS] >= retention->batch;
}
