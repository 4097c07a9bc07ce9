/*
 * The fleet's policies at fleetd's start: the "default" policy, which every
 * device follows until an operator names another, is written from the
 * configuration's token keys (models, cost_ceiling, token_lifetime_seconds)
 * the first time fleetd starts on a store without it, so a fleet that
 * upgrades issues the same tokens as before. After that the store holds
 * it, and `tetherctl policy update default` changes it.
 */
#ifndef TETHER_FLEET_POLICIES_H
#define TETHER_FLEET_POLICIES_H

#include <stdint.h>

#include "store.h"
#include "tether/fleet_policy.h"
#include "token_issuer.h"

/* The policy document the configuration's token keys say: models split at
 * commas, sorted and each once; cost_ceiling without trailing zeros; the
 * clamped lifetime; no thresholds, no sources. *doc is zeroed on entry.
 * TETHER_ERR_PARSE (with a sentence in why) for keys the document cannot
 * hold. */
TETHER_MUST_CHECK tether_status_t tether_fleet_policy_from_token_policy(
    const tether_token_policy_t *policy, tether_policy_document_t *doc, char *why,
    size_t why_size);

/* Writes "default" (version 1) from policy unless the store has it. */
TETHER_MUST_CHECK tether_status_t tether_fleet_policy_default_ensure(
    tether_store_t *store, const tether_token_policy_t *policy, int64_t now);

#endif
