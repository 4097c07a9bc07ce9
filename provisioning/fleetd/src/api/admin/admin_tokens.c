/* Admin handlers for secrets (bootstrap and admin tokens) and alerts. New
 * tokens are shown once, in the response, and stored only as hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/secret_token.h"
#include "validate.h"


/* Creates a token of kind and its hash; the caller wipes both. */
static tether_status_t new_secret(tether_secret_kind_t kind, char token[TETHER_SECRET_TOKEN_SIZE],
                                  uint8_t hash[TETHER_SECRET_HASH_SIZE])
{
    tether_status_t rc = tether_secret_token_generate(kind, token, TETHER_SECRET_TOKEN_SIZE);

    if (rc == TETHER_OK)
        rc = tether_secret_token_hash(token, strlen(token), hash);
    return rc;
}

void admin_bootstrap_create(tether_route_call_t *call)
{
    tether_admin_bootstrap_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    char token[TETHER_SECRET_TOKEN_SIZE];
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    int64_t expires_at;
    tether_status_t rc;
    cJSON *json;

    if (tether_admin_parse_bootstrap((const char *)call->request->body, call->request->body_len,
                                     call->router->admin->bootstrap_max_ttl_seconds, &req, message,
                                     sizeof(message)) != TETHER_OK) {
        admin_bad_request(call, message);
        return;
    }
    expires_at = call->now + (int64_t)req.ttl_seconds;
    rc = new_secret(TETHER_SECRET_BOOTSTRAP, token, hash);
    if (rc == TETHER_OK)
        rc = tether_store_bootstrap_token_create(call->router->admin->store, hash, expires_at,
                                                 req.uses, call->now);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, NULL, NULL);
        goto out;
    }
    tether_info("admin", "bootstrap token created (%u uses, %u s) by admin token %lld", req.uses,
                req.ttl_seconds, (long long)call->caller.id);
    json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "token", token);
    cJSON_AddNumberToObject(json, "expires_at", (double)expires_at);
    cJSON_AddNumberToObject(json, "uses", (double)req.uses);
    tether_http_respond_json(call->response, 201, json);
out:
    tether_wipe(token, sizeof(token));
    tether_wipe(hash, sizeof(hash));
}

static cJSON *roles_json(unsigned roles)
{
    cJSON *array = cJSON_CreateArray();

    for (unsigned i = 0; array != NULL && i < TETHER_ROLE_COUNT; i++) {
        if (roles & (1u << i))
            cJSON_AddItemToArray(array, cJSON_CreateString(tether_role_name(1u << i)));
    }
    return array;
}

static int add_token(void *arg, const tether_store_admin_token_t *token)
{
    cJSON *item = cJSON_CreateObject();

    if (item == NULL)
        return 1;
    cJSON_AddNumberToObject(item, "id", (double)token->id);
    cJSON_AddStringToObject(item, "name", token->name);
    cJSON_AddItemToObject(item, "roles", roles_json(token->roles));
    cJSON_AddNumberToObject(item, "created_at", (double)token->created_at);
    if (token->revoked_at != 0)
        cJSON_AddNumberToObject(item, "revoked_at", (double)token->revoked_at);
    else
        cJSON_AddNullToObject(item, "revoked_at");
    cJSON_AddItemToArray(arg, item);
    return 0;
}

void admin_tokens_list(tether_route_call_t *call)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(json, "tokens");
    tether_status_t rc = tokens != NULL ? tether_store_admin_token_list(call->router->admin->store,
                                                                        add_token, tokens)
                                        : TETHER_ERR_NO_MEMORY;

    if (rc != TETHER_OK) {
        cJSON_Delete(json);
        admin_store_error(call, rc, NULL, NULL);
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

static unsigned grantable_roles(unsigned roles)
{
    return (roles & TETHER_ROLE_SECURITY) != 0 ? roles | TETHER_ROLE_RELYING_PARTY : roles;
}

void admin_token_create(tether_route_call_t *call)
{
    tether_admin_token_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    char token[TETHER_SECRET_TOKEN_SIZE];
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    int64_t id = 0;
    tether_status_t rc;
    cJSON *json;

    if (tether_admin_parse_token((const char *)call->request->body, call->request->body_len, &req,
                                 message, sizeof(message)) != TETHER_OK) {
        admin_bad_request(call, message);
        return;
    }
    /* No escalation: a token can only hand out roles it holds itself, and a
     * security token relying-party as well (a subset of what security sees:
     * whether tokens are revoked), so that fleets created before the role
     * existed can make tokens for their gateways. */
    if ((req.roles & ~grantable_roles(call->caller.roles)) != 0) {
        tether_http_respond_error(call->response, 403, "insufficient_scope",
                                  "an admin token can only grant roles it holds (and a security "
                                  "token relying-party)");
        return;
    }
    rc = new_secret(TETHER_SECRET_ADMIN, token, hash);
    if (rc == TETHER_OK)
        rc = tether_store_admin_token_create(call->router->admin->store, hash, req.roles, req.name,
                                             call->now, &id);
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, NULL, NULL);
        goto out;
    }
    tether_info("admin", "admin token %lld (%s) created by admin token %lld", (long long)id,
                req.name, (long long)call->caller.id);
    json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "id", (double)id);
    cJSON_AddStringToObject(json, "name", req.name);
    cJSON_AddItemToObject(json, "roles", roles_json(req.roles));
    cJSON_AddStringToObject(json, "token", token);
    tether_http_respond_json(call->response, 201, json);
out:
    tether_wipe(token, sizeof(token));
    tether_wipe(hash, sizeof(hash));
}

/* A decimal integer from 0 to 2^53 (what JSON numbers carry exactly),
 * spelt one way only (validate.h). */
static bool parse_id(const char *text, int64_t *id)
{
    uint64_t value = 0;
    bool ok = tether_fleet_decimal_parse(text, 1ULL << 53, &value);

    *id = (int64_t)value;
    return ok;
}

/* 409 for the last holder of the security or fleet role: without one the
 * fleet could no longer be administered (device revoke included) short of
 * the offline recovery. */
static void refuse_last_token(tether_route_call_t *call, int64_t id, unsigned last_roles)
{
    char roles[64];
    char message[384];

    if (tether_roles_format(last_roles, roles, sizeof(roles)) != TETHER_OK)
        snprintf(roles, sizeof(roles), "security or fleet");
    tether_warn("admin", "admin token %lld not revoked: the last active one with %s (asked by "
                         "admin token %lld)",
                (long long)id, roles, (long long)call->caller.id);
    snprintf(message, sizeof(message),
             "this is the last active admin token with the %s role%s: create another token "
             "with %s first (an operator on the fleet's host can also use "
             "'tether-fleetd admin-token')",
             roles, strchr(roles, ',') != NULL ? "s" : "", roles);
    tether_http_respond_error(call->response, 409, "conflict", message);
}

void admin_token_revoke(tether_route_call_t *call)
{
    int64_t id = 0;
    unsigned last_roles = 0;
    tether_status_t rc = TETHER_ERR_NOT_FOUND;
    cJSON *json;

    if (parse_id(call->param, &id))
        rc = tether_store_admin_token_revoke(call->router->admin->store, id, call->now,
                                             &last_roles);
    if (rc == TETHER_ERR_STATE) {
        refuse_last_token(call, id, last_roles);
        return;
    }
    if (rc != TETHER_OK) {
        admin_store_error(call, rc, "no admin token with this id",
                          "the admin token is already revoked");
        return;
    }
    tether_warn("admin", "admin token %lld revoked by admin token %lld", (long long)id,
                (long long)call->caller.id);
    json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "id", (double)id);
    cJSON_AddNumberToObject(json, "revoked_at", (double)call->now);
    tether_http_respond_json(call->response, 200, json);
}

cJSON *tether_admin_alert_json(const tether_store_alert_t *alert)
{
    cJSON *item = cJSON_CreateObject();
    cJSON *details = alert->details_json != NULL ? cJSON_Parse(alert->details_json) : NULL;

    if (item == NULL) {
        cJSON_Delete(details);
        return NULL;
    }
    cJSON_AddNumberToObject(item, "id", (double)alert->id);
    if (alert->device_id[0] != '\0')
        cJSON_AddStringToObject(item, "device_id", alert->device_id);
    else
        cJSON_AddNullToObject(item, "device_id");
    cJSON_AddStringToObject(item, "kind", alert->kind != NULL ? alert->kind : "");
    cJSON_AddItemToObject(item, "details", details != NULL ? details : cJSON_CreateNull());
    cJSON_AddNumberToObject(item, "created_at", (double)alert->created_at);
    return item;
}

static int add_alert(void *arg, const tether_store_alert_t *alert)
{
    cJSON *item = tether_admin_alert_json(alert);

    if (item == NULL)
        return 1;
    cJSON_AddItemToArray(arg, item);
    return 0;
}

/* Fills response with the alerts after after; *count gets how many (0 on
 * a failure, which the response reports). */
static void respond_alerts(tether_store_t *store, int64_t after, tether_http_response_t *response,
                           int *count)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *alerts = cJSON_AddArrayToObject(json, "alerts");
    tether_status_t rc = alerts != NULL ? tether_store_alert_list(store, after,
                                                                  TETHER_FLEET_ALERTS_PAGE,
                                                                  add_alert, alerts)
                                        : TETHER_ERR_NO_MEMORY;

    *count = 0;
    if (rc != TETHER_OK) {
        cJSON_Delete(json);
        tether_error("admin", "cannot list alerts: %s", tether_strerror(rc));
        tether_http_respond_error(response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                                  "the alerts could not be read; see the server log");
        return;
    }
    *count = cJSON_GetArraySize(alerts);
    tether_http_respond_json(response, 200, json);
}

/* A waiting GET /v1/admin/alerts?wait=N. Alerts have no hook (another
 * process writes some: tether-fleetd admin-token), so each poll, about once
 * a second, looks for one after the cursor. */
typedef struct alerts_wait {
    tether_store_t *store;
    int64_t after;
} alerts_wait_t;

static int found_alert(void *arg, const tether_store_alert_t *alert)
{
    (void)alert;
    *(bool *)arg = true;
    return 1;
}

static bool alerts_poll(void *arg, bool final, tether_http_response_t *response)
{
    alerts_wait_t *wait = arg;
    bool found = false;
    int count = 0;

    if (!final && tether_store_alert_list(wait->store, wait->after, 1, found_alert, &found) ==
                      TETHER_OK &&
        !found)
        return false;
    respond_alerts(wait->store, wait->after, response, &count);
    return true;
}

static void alerts_release(void *arg)
{
    free(arg);
}

void admin_alerts_list(tether_route_call_t *call)
{
    const tether_http_request_t *request = call->request;
    tether_store_t *store = call->router->admin->store;
    int64_t after = 0, wait = 0;
    alerts_wait_t *waiting;
    int count = 0;

    /* The route allows after and wait, each once. */
    for (size_t i = 0; i < request->query_count; i++) {
        const tether_http_query_t *q = &request->query[i];

        if (strcmp(q->key, "after") == 0 && !parse_id(q->value, &after)) {
            admin_bad_request(call, "after must be an alert id (a non-negative integer)");
            return;
        }
        if (strcmp(q->key, "wait") == 0 && !parse_id(q->value, &wait)) {
            admin_bad_request(call, "wait must be a number of seconds (0 to 30)");
            return;
        }
    }
    if (wait > TETHER_FLEET_ALERTS_MAX_WAIT)
        wait = TETHER_FLEET_ALERTS_MAX_WAIT;
    respond_alerts(store, after, call->response, &count);
    if (call->response->status != 200 || count > 0 || wait == 0)
        return;
    /* Nothing newer yet: wait for an alert or the end of wait. */
    tether_http_response_clear(call->response);
    if ((waiting = calloc(1, sizeof(*waiting))) == NULL) {
        tether_http_respond_error(call->response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                                  "out of memory");
        return;
    }
    waiting->store = store;
    waiting->after = after;
    call->response->park.poll = alerts_poll;
    call->response->park.release = alerts_release;
    call->response->park.arg = waiting;
    call->response->park.timeout_ms = (unsigned)wait * 1000u;
}
