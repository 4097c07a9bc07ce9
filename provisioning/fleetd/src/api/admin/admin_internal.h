/* Internal to the admin API: its handlers (routed by router.c) and shared
 * helpers. */
#ifndef TETHER_FLEET_ADMIN_INTERNAL_H
#define TETHER_FLEET_ADMIN_INTERNAL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "admin_api.h"
#include "admin_request.h"
#include "route.h"
#include "tether/http_handler.h"
#include "store.h"

/* Responds with the right error for a store status. */
void admin_store_error(tether_route_call_t *call, tether_status_t rc, const char *not_found,
                       const char *conflict);
void admin_bad_request(tether_route_call_t *call, const char *message);

/* The JSON view of a device (NULL when out of memory). */
cJSON *admin_device_json(const tether_store_device_t *device);

/* Handlers (admin_devices.c, admin_tokens.c): the route table has checked
 * the caller's role, the query parameters and the body's media type. */
void admin_devices_list(tether_route_call_t *call);
void admin_device_allow(tether_route_call_t *call);
void admin_devices_import(tether_route_call_t *call);
void admin_device_show(tether_route_call_t *call);
void admin_device_revoke(tether_route_call_t *call);
void admin_device_quarantine(tether_route_call_t *call);
void admin_device_reinstate(tether_route_call_t *call);
void admin_bootstrap_create(tether_route_call_t *call);
void admin_tokens_list(tether_route_call_t *call);
void admin_token_create(tether_route_call_t *call);
void admin_token_revoke(tether_route_call_t *call);
void admin_alerts_list(tether_route_call_t *call);
/* Fleet policies (admin_policies.c). */
void admin_policies_list(tether_route_call_t *call);
void admin_policy_create(tether_route_call_t *call);
void admin_policy_update(tether_route_call_t *call);
void admin_policy_show(tether_route_call_t *call);
void admin_device_set_policy(tether_route_call_t *call);

/* Issuer keys (admin_keys.c). */
void admin_keys_list(tether_route_call_t *call);
void admin_keys_rotate(tether_route_call_t *call);

#endif
