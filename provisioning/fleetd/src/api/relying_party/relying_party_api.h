/*
 * What relying parties (AI gateways) ask the fleet about tokens, with an
 * admin token (Authorization: Bearer tthr_adm_...):
 *
 *   POST /v1/introspect      relying-party          RFC 7662 (introspect.h)
 *   GET  /v1/revocations     relying-party, security or read
 *        ?after=SEQ&wait=S   the revocation feed (revocation_feed.h); with
 *                            wait, a long poll of up to 30 s
 *
 * Who may call each is in the route table (router.c). Bodies and answers:
 * provisioning/fleetd/README.md. Errors as the admin API's.
 */
#ifndef TETHER_FLEET_RELYING_PARTY_API_H
#define TETHER_FLEET_RELYING_PARTY_API_H

#include "route.h"
#include "tether/http_handler.h"
#include "introspect.h"
#include "revocation_feed.h"
#include "store.h"

typedef struct tether_rp_api {
    tether_store_t *store; /* borrowed */
    tether_introspect_keys_t keys;
    tether_revocation_feed_t feed;
} tether_rp_api_t;

/* store must outlive the API. Without keys (see tether_rp_api_set_keys)
 * every token is inactive. */
void tether_rp_api_init(tether_rp_api_t *api, tether_store_t *store);

/* Where introspection gets the fleet's verification keys and issuer (the
 * issuer key module in fleetd). Set before serving. */
void tether_rp_api_set_keys(tether_rp_api_t *api, const tether_introspect_keys_t *keys);

void tether_rp_api_free(tether_rp_api_t *api);

/* POST /v1/introspect and GET /v1/revocations, routed by router.c (which
 * has authenticated the caller, checked its role, the query's names and
 * the body's media type); the API is call->router->relying_party. A feed
 * request with wait may park (http_handler.h): the server polls it. */
void tether_rp_api_introspect(tether_route_call_t *call);
void tether_rp_api_feed(tether_route_call_t *call);

/* A revocation was committed by this process (the store's hook): the next
 * poll of waiting feed requests reads the store. Wake the server after. */
void tether_rp_api_revoked(tether_rp_api_t *api);

#endif
