/*
 * Fleet policies through the admin API (store_policies.h, "fleet policies"): each
 * write is a new version, checked by the one strict reader of policy
 * documents (fleet_policy.h) before the store sees it.
 */
#include <stdio.h>
#include <string.h>

#include "admin_internal.h"
#include "tether/fleet_policy.h"
#include "token_issuer.h"
#include "validate.h"

#define NO_POLICY "no policy with this name (tetherctl policy list shows them)"

/* {"name", "version", "created_at", "policy": the document}; NULL when out
 * of memory. */
static cJSON *policy_json(const tether_store_policy_t *policy)
{
    cJSON *json = cJSON_CreateObject();

    if (json == NULL || cJSON_AddStringToObject(json, "name", policy->name) == NULL ||
        cJSON_AddNumberToObject(json, "version", (double)policy->version) == NULL ||
        cJSON_AddNumberToObject(json, "created_at", (double)policy->created_at) == NULL ||
        cJSON_AddRawToObject(json, "policy", policy->document) == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}

static void respond_policy(tether_route_call_t *call, unsigned status,
                           const tether_store_policy_t *policy)
{
    cJSON *json = policy_json(policy);

    if (json == NULL)
        admin_store_error(call, TETHER_ERR_NO_MEMORY, NULL, NULL);
    else
        tether_http_respond_json(call->response, status, json);
}

static int add_policy(void *arg, const tether_store_policy_t *policy)
{
    cJSON *item = policy_json(policy);

    if (item == NULL || !cJSON_AddItemToArray(arg, item)) {
        cJSON_Delete(item);
        return 1;
    }
    return 0;
}

void admin_policies_list(tether_route_call_t *call)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *policies = cJSON_AddArrayToObject(json, "policies");
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    if (policies != NULL)
        rc = tether_store_policy_list(call->router->admin->store, add_policy, policies);
    if (rc != TETHER_OK) {
        cJSON_Delete(json);
        admin_store_error(call, rc, NULL, NULL);
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

/* A new version of the policy named by the path, version 1 when create. */
static void write_policy(tether_route_call_t *call, bool create)
{
    char message[320], why[256];
    tether_policy_document_t doc;
    tether_store_policy_t policy;
    int64_t version = 0;
    tether_status_t rc;

    if (!tether_policy_name_valid(call->param)) {
        snprintf(message, sizeof(message),
                 "a policy name is 1-%d of a-z 0-9 . _ -, starting with a letter or digit",
                 TETHER_POLICY_NAME_MAX);
        admin_bad_request(call, message);
        return;
    }
    if (tether_policy_document_parse(call->request->body, call->request->body_len, &doc, why,
                                     sizeof(why)) != TETHER_OK ||
        tether_token_policy_fits(&doc, why, sizeof(why)) != TETHER_OK) {
        admin_bad_request(call, why);
        return;
    }
    /* The reader accepted the one canonical form (within
     * TETHER_POLICY_DOCUMENT_MAX bytes): the body is that text. */
    memset(&policy, 0, sizeof(policy));
    memcpy(policy.document, call->request->body, call->request->body_len);
    policy.document[call->request->body_len] = '\0';
    rc = tether_store_policy_write(call->router->admin->store, call->param, policy.document,
                                   create, call->now, &version);
    if (rc == TETHER_OK)
        rc = tether_store_policy_get(call->router->admin->store, call->param, version, &policy);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, NO_POLICY,
                          "a policy with this name exists: update it (a new version)");
        return;
    }
    respond_policy(call, 201, &policy);
}

void admin_policy_create(tether_route_call_t *call)
{
    write_policy(call, true);
}

void admin_policy_update(tether_route_call_t *call)
{
    write_policy(call, false);
}

void admin_policy_show(tether_route_call_t *call)
{
    const tether_http_request_t *request = call->request;
    tether_store_policy_t policy;
    uint64_t version = 0;
    tether_status_t rc = TETHER_ERR_NOT_FOUND;

    if (request->query_count == 1 &&
        (!tether_fleet_decimal_parse(request->query[0].value, 1ULL << 53, &version) ||
         version == 0)) {
        admin_bad_request(call, "version must be a policy version (an integer from 1)");
        return;
    }
    if (tether_policy_name_valid(call->param))
        rc = tether_store_policy_get(call->router->admin->store, call->param, (int64_t)version,
                                     &policy);
    if (rc != TETHER_OK)
        admin_store_error(call, rc, version == 0 ? NO_POLICY : "no such version of this policy",
                          NULL);
    else
        respond_policy(call, 200, &policy);
}

void admin_device_set_policy(tether_route_call_t *call)
{
    tether_admin_policy_request_t req;
    tether_store_policy_t policy;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    cJSON *json;
    tether_status_t rc;

    rc = tether_admin_parse_policy((const char *)call->request->body, call->request->body_len,
                                   &req, message, sizeof(message));
    if (rc != TETHER_OK) {
        admin_bad_request(call, message);
        return;
    }
    rc = TETHER_ERR_NOT_FOUND;
    if (tether_fleet_device_id_valid(call->param, strlen(call->param)))
        rc = tether_store_device_set_policy(call->router->admin->store, call->param, req.policy,
                                            call->now);
    if (rc == TETHER_OK)
        rc = tether_store_device_policy(call->router->admin->store, call->param, &policy);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, "no device with this id, or no policy with this name", NULL);
        return;
    }
    json = cJSON_CreateObject();
    if (json == NULL || cJSON_AddStringToObject(json, "device_id", call->param) == NULL ||
        cJSON_AddStringToObject(json, "policy", policy.name) == NULL ||
        cJSON_AddNumberToObject(json, "version", (double)policy.version) == NULL) {
        cJSON_Delete(json);
        admin_store_error(call, TETHER_ERR_NO_MEMORY, NULL, NULL);
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}
