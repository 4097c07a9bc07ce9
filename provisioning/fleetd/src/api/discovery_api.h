/*
 * What relying parties fetch to trust this fleet's tokens, without any
 * credential:
 *
 *   GET /.well-known/jwks.json                 the published issuer keys
 *                                              (issuer_keys.h), RFC 7517
 *   GET /.well-known/oauth-authorization-server  RFC 8414 metadata: issuer,
 *                                              endpoints, grant types
 */
#ifndef TETHER_FLEET_DISCOVERY_API_H
#define TETHER_FLEET_DISCOVERY_API_H

#include <stdint.h>

#include "route.h"
#include "tether/fleet_vocabulary.h"
#include "tether/http_handler.h"
#include "issuer_keys.h"
#include "token_issuer.h"

typedef struct tether_discovery_api {
    tether_issuer_keys_t *keys;          /* borrowed, opened */
    const tether_token_policy_t *policy; /* borrowed */
    int64_t (*clock)(void); /* Unix seconds; NULL: the system clock */
} tether_discovery_api_t;

void tether_discovery_api_init(tether_discovery_api_t *api, tether_issuer_keys_t *keys,
                               const tether_token_policy_t *policy);

/* The RFC 8414 metadata object (the caller deletes it), NULL when out of
 * memory. */
cJSON *tether_discovery_metadata(const tether_token_policy_t *policy);

/* GET /.well-known/jwks.json and /.well-known/oauth-authorization-server,
 * routed by router.c (no query, no body); the API is
 * call->router->discovery. */
void tether_discovery_api_jwks(tether_route_call_t *call);
void tether_discovery_api_metadata(tether_route_call_t *call);

#endif
