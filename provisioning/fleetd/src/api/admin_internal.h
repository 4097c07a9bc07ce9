/* Internal to the admin API: what a handler gets, and shared helpers. */
#ifndef TETHER_FLEET_ADMIN_INTERNAL_H
#define TETHER_FLEET_ADMIN_INTERNAL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "admin_api.h"
#include "admin_request.h"
#include "tether/http_handler.h"
#include "store.h"

#define ADMIN_PARAM_MAX 64

typedef struct admin_call {
    tether_admin_api_t *api;
    const tether_http_request_t *request;
    tether_http_response_t *response;
    tether_store_admin_token_t caller; /* the authenticated admin token */
    char param[ADMIN_PARAM_MAX];       /* the path segment matched by '*' */
    int64_t now;
} admin_call_t;

typedef void (*admin_handler_fn)(admin_call_t *call);

/* Responds with the right error for a store status. */
void admin_store_error(admin_call_t *call, tether_status_t rc, const char *not_found,
                       const char *conflict);
void admin_bad_request(admin_call_t *call, const char *message);

/* The JSON view of a device (NULL when out of memory). */
cJSON *admin_device_json(const tether_store_device_t *device);

/* Handlers (admin_devices.c, admin_tokens.c). */
void admin_devices_list(admin_call_t *call);
void admin_device_allow(admin_call_t *call);
void admin_devices_import(admin_call_t *call);
void admin_device_show(admin_call_t *call);
void admin_device_revoke(admin_call_t *call);
void admin_device_quarantine(admin_call_t *call);
void admin_device_reinstate(admin_call_t *call);
void admin_bootstrap_create(admin_call_t *call);
void admin_tokens_list(admin_call_t *call);
void admin_token_create(admin_call_t *call);
void admin_token_revoke(admin_call_t *call);
void admin_alerts_list(admin_call_t *call);
/* Issuer keys (admin_keys.c). */
void admin_keys_list(admin_call_t *call);
void admin_keys_rotate(admin_call_t *call);

#endif
