/* Routing, authentication and the checks every admin request goes through. */
#include "admin_api.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/secret_token.h"

#define ADMIN_PREFIX "/v1/admin/"
#define BEARER_CHALLENGE "Bearer realm=\"tether-fleetd\""
#define BEARER_INVALID "Bearer realm=\"tether-fleetd\", error=\"invalid_token\""

typedef enum body_kind {
    BODY_NONE,
    BODY_JSON,
    BODY_CSV,
} body_kind_t;

typedef struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment */
    unsigned role;
    body_kind_t body;
    const char *query; /* the one query parameter allowed, or NULL */
    const char *allow; /* every method of this pattern, for 405 */
    admin_handler_fn handler;
} route_t;

static const route_t routes[] = {
    {"GET", "/v1/admin/devices", TETHER_ROLE_READ, BODY_NONE, NULL, "GET, POST",
     admin_devices_list},
    {"POST", "/v1/admin/devices", TETHER_ROLE_FLEET, BODY_JSON, NULL, "GET, POST",
     admin_device_allow},
    {"POST", "/v1/admin/devices/import", TETHER_ROLE_FLEET, BODY_CSV, NULL, "POST",
     admin_devices_import},
    {"GET", "/v1/admin/devices/*", TETHER_ROLE_READ, BODY_NONE, NULL, "GET", admin_device_show},
    {"POST", "/v1/admin/devices/*/revoke", TETHER_ROLE_SECURITY, BODY_JSON, NULL, "POST",
     admin_device_revoke},
    {"POST", "/v1/admin/devices/*/quarantine", TETHER_ROLE_SECURITY, BODY_JSON, NULL, "POST",
     admin_device_quarantine},
    {"POST", "/v1/admin/devices/*/reinstate", TETHER_ROLE_SECURITY, BODY_JSON, NULL, "POST",
     admin_device_reinstate},
    {"POST", "/v1/admin/bootstrap-tokens", TETHER_ROLE_FLEET, BODY_JSON, NULL, "POST",
     admin_bootstrap_create},
    {"GET", "/v1/admin/tokens", TETHER_ROLE_SECURITY, BODY_NONE, NULL, "GET, POST",
     admin_tokens_list},
    {"POST", "/v1/admin/tokens", TETHER_ROLE_SECURITY, BODY_JSON, NULL, "GET, POST",
     admin_token_create},
    {"DELETE", "/v1/admin/tokens/*", TETHER_ROLE_SECURITY, BODY_NONE, NULL, "DELETE",
     admin_token_revoke},
    {"GET", "/v1/admin/alerts", TETHER_ROLE_SECURITY, BODY_NONE, "after", "GET",
     admin_alerts_list},
    {"GET", "/v1/admin/keys", TETHER_ROLE_READ, BODY_NONE, NULL, "GET", admin_keys_list},
    {"POST", "/v1/admin/keys/rotate", TETHER_ROLE_SECURITY, BODY_NONE, NULL, "POST",
     admin_keys_rotate},
};

void tether_admin_api_init(tether_admin_api_t *api, tether_store_t *store,
                           unsigned bootstrap_max_ttl_seconds)
{
    if (api == NULL)
        return;
    api->store = store;
    api->bootstrap_max_ttl_seconds = bootstrap_max_ttl_seconds;
    api->issuer_keys = NULL;
}

void admin_bad_request(admin_call_t *call, const char *message)
{
    tether_http_respond_error(call->response, 400, "invalid_request", message);
}

void admin_store_error(admin_call_t *call, tether_status_t rc, const char *not_found,
                       const char *conflict)
{
    if (rc == TETHER_ERR_NOT_FOUND && not_found != NULL)
        tether_http_respond_error(call->response, 404, "not_found", not_found);
    else if (rc == TETHER_ERR_CONFLICT && conflict != NULL)
        tether_http_respond_error(call->response, 409, "conflict", conflict);
    else
        tether_http_respond_error(call->response, 500, "server_error",
                                  "the fleet database failed; see the server log");
}

/* Matches path against pattern; the '*' segment is copied to param. */
static bool path_matches(const char *pattern, const char *path, char *param, size_t param_size)
{
    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '*') {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= param_size)
                return false;
            memcpy(param, path, len);
            param[len] = '\0';
            path += len;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* The route for the request, or NULL with *path_known telling 405 from 404. */
static const route_t *find_route(const tether_http_request_t *request, char *param,
                                 size_t param_size, const route_t **path_known)
{
    *path_known = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!path_matches(routes[i].pattern, request->path, param, param_size))
            continue;
        *path_known = &routes[i];
        if (strcmp(routes[i].method, request->method) == 0)
            return &routes[i];
    }
    return NULL;
}

/* Who is calling: 401 unless a valid, unrevoked admin token is presented.
 * The token itself is never logged or kept. */
static bool authenticate(admin_call_t *call)
{
    const char *header = call->request->authorization;
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    const char *token;
    size_t len;
    tether_status_t rc;

    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0) {
        call->response->www_authenticate = BEARER_CHALLENGE;
        tether_http_respond_error(call->response, 401, "unauthorized",
                                  "send an admin token: Authorization: Bearer tthr_adm_...");
        return false;
    }
    token = header + 7;
    len = strlen(token);
    rc = tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN);
    if (rc == TETHER_OK)
        rc = tether_secret_token_hash(token, len, hash);
    if (rc == TETHER_OK)
        rc = tether_store_admin_token_find(call->api->store, hash, &call->caller);
    tether_wipe(hash, sizeof(hash));
    if (rc == TETHER_OK)
        return true;
    if (rc == TETHER_ERR_STORE) {
        admin_store_error(call, rc, NULL, NULL);
        return false;
    }
    call->response->www_authenticate = BEARER_INVALID;
    tether_http_respond_error(call->response, 401, "invalid_token",
                              "the admin token is malformed, unknown or revoked");
    return false;
}

bool tether_admin_authenticate(tether_admin_api_t *api, const tether_http_request_t *request,
                               tether_http_response_t *response,
                               tether_store_admin_token_t *caller)
{
    admin_call_t call;
    bool ok;

    memset(&call, 0, sizeof(call));
    call.api = api;
    call.request = request;
    call.response = response;
    ok = authenticate(&call);
    if (ok)
        *caller = call.caller;
    tether_wipe(&call, sizeof(call));
    return ok;
}

/* The media type of a Content-Type header, ignoring parameters and case. */
static bool media_type_is(const char *content_type, const char *expected)
{
    size_t len = strlen(expected);

    if (content_type == NULL || strncasecmp(content_type, expected, len) != 0)
        return false;
    return content_type[len] == '\0' || content_type[len] == ';' || content_type[len] == ' ';
}

static bool query_ok(admin_call_t *call, const route_t *route)
{
    const tether_http_request_t *request = call->request;

    if (request->query_overflow) {
        admin_bad_request(call, "too many query parameters");
        return false;
    }
    for (size_t i = 0; i < request->query_count; i++) {
        if (route->query == NULL || strcmp(request->query[i].key, route->query) != 0 ||
            request->query_count > 1) {
            admin_bad_request(call, "unknown query parameter");
            return false;
        }
    }
    return true;
}

static bool body_ok(admin_call_t *call, const route_t *route)
{
    const tether_http_request_t *request = call->request;

    if (route->body == BODY_NONE) {
        if (request->body_len == 0)
            return true;
        admin_bad_request(call, "this request takes no body");
        return false;
    }
    if (!media_type_is(request->content_type,
                       route->body == BODY_JSON ? "application/json" : "text/csv")) {
        tether_http_respond_error(call->response, 415, "unsupported_media_type",
                                  route->body == BODY_JSON ? "send Content-Type: application/json"
                                                           : "send Content-Type: text/csv");
        return false;
    }
    return true;
}

static void handle_admin(admin_call_t *call)
{
    const route_t *known = NULL;
    const route_t *route;

    if (!authenticate(call))
        return;
    route = find_route(call->request, call->param, sizeof(call->param), &known);
    if (route == NULL && known == NULL) {
        tether_http_respond_error(call->response, 404, "not_found", "no such admin endpoint");
        return;
    }
    if (route == NULL) {
        call->response->allow = known->allow;
        tether_http_respond_error(call->response, 405, "method_not_allowed",
                                  "this endpoint does not take that method");
        return;
    }
    if ((call->caller.roles & route->role) == 0) {
        char message[80];
        snprintf(message, sizeof(message), "this request needs an admin token with the %s role",
                 tether_role_name(route->role));
        tether_http_respond_error(call->response, 403, "insufficient_scope", message);
        return;
    }
    if (query_ok(call, route) && body_ok(call, route))
        route->handler(call);
}

void tether_admin_api_handle(void *arg, const tether_http_request_t *request,
                             tether_http_response_t *response)
{
    admin_call_t call;

    memset(&call, 0, sizeof(call));
    call.api = arg;
    call.request = request;
    call.response = response;
    call.now = (int64_t)time(NULL);
    if (strcmp(request->path, "/v1/health") == 0) {
        if (strcmp(request->method, "GET") == 0) {
            cJSON *json = cJSON_CreateObject();
            cJSON_AddStringToObject(json, "status", "ok");
            tether_http_respond_json(response, 200, json);
        } else {
            response->allow = "GET";
            tether_http_respond_error(response, 405, "method_not_allowed", "use GET");
        }
    } else if (strncmp(request->path, ADMIN_PREFIX, sizeof(ADMIN_PREFIX) - 1) == 0) {
        handle_admin(&call);
    } else {
        tether_http_respond_error(response, 404, "not_found", "no such endpoint");
    }
    tether_wipe(&call, sizeof(call));
}
