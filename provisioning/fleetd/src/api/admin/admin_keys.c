/* Admin handlers for the issuer keys (issuer_keys.h): list and rotate. */
#include <string.h>

#include "admin_internal.h"
#include "issuer_keys.h"
#include "tether/log.h"

static cJSON *key_json(const tether_store_issuer_key_t *key, int64_t now)
{
    cJSON *json = cJSON_CreateObject();
    bool active = key->retired_at == 0;

    if (json == NULL || cJSON_AddStringToObject(json, "kid", key->kid) == NULL ||
        cJSON_AddStringToObject(json, "state", active ? "active" : "retired") == NULL ||
        cJSON_AddNumberToObject(json, "created_at", (double)key->created_at) == NULL ||
        (active ? cJSON_AddNullToObject(json, "retired_at")
                : cJSON_AddNumberToObject(json, "retired_at", (double)key->retired_at)) == NULL ||
        (active ? cJSON_AddNullToObject(json, "not_after")
                : cJSON_AddNumberToObject(json, "not_after", (double)key->not_after)) == NULL ||
        cJSON_AddBoolToObject(json, "published", active || now <= key->not_after) == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}

typedef struct key_list {
    cJSON *array;
    int64_t now;
} key_list_t;

static int add_key(void *arg, const tether_store_issuer_key_t *key)
{
    key_list_t *list = arg;
    cJSON *item = key_json(key, list->now);

    if (item == NULL || !cJSON_AddItemToArray(list->array, item)) {
        cJSON_Delete(item);
        return 1;
    }
    return 0;
}

void admin_keys_list(tether_route_call_t *call)
{
    cJSON *json = cJSON_CreateObject();
    key_list_t list = {cJSON_AddArrayToObject(json, "keys"), call->now};
    tether_status_t rc =
        list.array != NULL
            ? tether_store_issuer_key_list(call->router->admin->store, add_key, &list)
            : TETHER_ERR_NO_MEMORY;

    if (rc != TETHER_OK) {
        cJSON_Delete(json);
        admin_store_error(call, rc, NULL, NULL);
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

void admin_keys_rotate(tether_route_call_t *call)
{
    tether_store_issuer_key_t active, retired;
    cJSON *json, *a, *r;
    tether_status_t rc;

    if (call->router->admin->issuer_keys == NULL) {
        tether_http_respond_error(call->response, 503, "unavailable",
                                  "this fleetd serves no issuer keys");
        return;
    }
    rc = tether_issuer_keys_rotate(call->router->admin->issuer_keys, call->now, &active, &retired);
    if (rc != TETHER_OK) {
        tether_error("admin", "issuer key rotation failed: %s", tether_strerror(rc));
        tether_http_respond_error(call->response, 500, "server_error",
                                  "the issuer key could not be rotated; see the server log");
        return;
    }
    tether_warn("admin", "issuer key rotated by admin token %lld: %s signs, %s retired",
                (long long)call->caller.id, active.kid, retired.kid);
    json = cJSON_CreateObject();
    a = key_json(&active, call->now);
    r = key_json(&retired, call->now);
    if (json == NULL || a == NULL || !cJSON_AddItemToObject(json, "active", a)) {
        cJSON_Delete(a);
        cJSON_Delete(r);
        cJSON_Delete(json);
        admin_store_error(call, TETHER_ERR_NO_MEMORY, NULL, NULL);
        return;
    }
    if (r == NULL || !cJSON_AddItemToObject(json, "retired", r)) {
        cJSON_Delete(r);
        cJSON_Delete(json);
        admin_store_error(call, TETHER_ERR_NO_MEMORY, NULL, NULL);
        return;
    }
    tether_http_respond_json(call->response, 201, json);
}
