/*
 * The admin API (JSON over HTTPS, for tetherctl and fleet scripts). Every
 * /v1/admin/ request carries "Authorization: Bearer tthr_adm_..."; the token
 * is looked up by its SHA-256 hash and its roles decide what it may do:
 *
 *   read      list and show devices
 *   fleet     allow and import devices, create bootstrap tokens
 *   security  revoke, quarantine, reinstate; alerts; admin tokens
 *   relying-party  no admin endpoint: POST /v1/introspect and
 *             GET /v1/revocations (relying_party_api.h)
 *
 * The route table (router.c) says which role each endpoint needs. Paths
 * and bodies: provisioning/fleetd/README.md.
 */
#ifndef TETHER_FLEET_ADMIN_API_H
#define TETHER_FLEET_ADMIN_API_H

#include <cjson/cJSON.h>

#include "store.h"

struct tether_issuer_keys;

typedef struct tether_admin_api {
    tether_store_t *store; /* borrowed: must outlive every request */
    unsigned bootstrap_max_ttl_seconds;
    /* Borrowed, set after init (issuer_keys.h); NULL: the key endpoints
     * answer 503. */
    struct tether_issuer_keys *issuer_keys;
} tether_admin_api_t;

void tether_admin_api_init(tether_admin_api_t *api, tether_store_t *store,
                           unsigned bootstrap_max_ttl_seconds);

/* An alert as the API and the webhooks show it: {"id", "device_id" (null
 * without a device), "kind", "details" (the JSON as stored), "created_at"}.
 * The caller deletes it; NULL when out of memory. */
cJSON *tether_admin_alert_json(const tether_store_alert_t *alert);

#endif
