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
 * Paths and bodies: provisioning/README.md.
 */
#ifndef TETHER_FLEET_ADMIN_API_H
#define TETHER_FLEET_ADMIN_API_H

#include <stdbool.h>

#include "tether/http_handler.h"
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

/* Checks the request's "Authorization: Bearer tthr_adm_..." against the
 * store and sets *caller; otherwise fills response (401, or 500 when the
 * store fails) and returns false. For the other endpoints that take admin
 * tokens. The token is never logged or kept. */
bool tether_admin_authenticate(tether_admin_api_t *api, const tether_http_request_t *request,
                               tether_http_response_t *response,
                               tether_store_admin_token_t *caller);

/* A tether_http_handler_fn; arg is the tether_admin_api_t. */
void tether_admin_api_handle(void *arg, const tether_http_request_t *request,
                             tether_http_response_t *response);

#endif
