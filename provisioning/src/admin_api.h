/*
 * The admin API (JSON over HTTPS, for tetherctl and fleet scripts). Every
 * /v1/admin/ request carries "Authorization: Bearer tthr_adm_..."; the token
 * is looked up by its SHA-256 hash and its roles decide what it may do:
 *
 *   read      list and show devices
 *   fleet     allow and import devices, create bootstrap tokens
 *   security  revoke, quarantine, reinstate; alerts; admin tokens
 *
 * Paths and bodies: provisioning/README.md.
 */
#ifndef TETHER_FLEET_ADMIN_API_H
#define TETHER_FLEET_ADMIN_API_H

#include "http.h"
#include "store.h"

typedef struct tether_admin_api {
    tether_store_t *store; /* borrowed: must outlive every request */
    unsigned bootstrap_max_ttl_seconds;
} tether_admin_api_t;

void tether_admin_api_init(tether_admin_api_t *api, tether_store_t *store,
                           unsigned bootstrap_max_ttl_seconds);

/* A tether_http_handler_fn; arg is the tether_admin_api_t. */
void tether_admin_api_handle(void *arg, const tether_http_request_t *request,
                             tether_http_response_t *response);

#endif
