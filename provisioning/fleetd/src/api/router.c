/* fleetd's route table and the checks every request goes through before
 * its handler (route.h). */
#include "route.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin_internal.h"
#include "discovery_api.h"
#include "enroll_api.h"
#include "enroll_request.h"
#include "exchange_api.h"
#include "fleet_metrics.h"
#include "introspect_request.h"
#include "relying_party_api.h"
#include "tether/bytes.h"
#include "tether/enroll.h"
#include "tether/fleet_vocabulary.h"
#include "tether/secret_token.h"
#include "token_form.h"
#include "usage_api.h"
#include "usage_report.h"
#include "validate.h"

#define BEARER_CHALLENGE "Bearer realm=\"tether-fleetd\""
#define BEARER_INVALID "Bearer realm=\"tether-fleetd\", error=\"invalid_token\""
#define BASIC_CHALLENGE "Basic realm=\"tether-fleetd\""
#define CHALLENGE_MAX_BODY 1024 /* {"device_id": "..."} */
#define FEED_ROLES (TETHER_ROLE_RELYING_PARTY | TETHER_ROLE_SECURITY | TETHER_ROLE_READ)

/* The API a route belongs to: a router without it does not serve it. */
typedef enum route_api {
    API_NONE, /* the router itself */
    API_ADMIN,
    API_ENROLL,
    API_EXCHANGE,
    API_DISCOVERY,
    API_RELYING_PARTY,
    API_METRICS,
} route_api_t;

typedef struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment */
    const char *allow;   /* every method of this pattern, for 405 */
    tether_route_access_t access;
    unsigned roles;         /* TETHER_ROUTE_ADMIN: any one of these */
    const char *media_type; /* of the body; NULL: the request takes no body */
    size_t max_body;        /* bytes; 0: the server's limit */
    const char *query;      /* the query parameters allowed, space-separated, each once */
    bool tether_error;      /* refusals carry "tether_error" too (the agent reads it) */
    route_api_t api;
    tether_route_handler_fn handle;
} route_t;

#define JSON "application/json"
#define FORM "application/x-www-form-urlencoded"
#define CSV "text/csv"
#define PUBLIC TETHER_ROUTE_PUBLIC, 0
#define DEVICE TETHER_ROUTE_DEVICE, 0
#define ADMIN(roles) TETHER_ROUTE_ADMIN, (roles)
#define CLIENT(roles) TETHER_ROUTE_CLIENT, (roles)
#define DEVICES TETHER_FLEET_PATH_DEVICES

static void health(tether_route_call_t *call);

static const route_t routes[] = {
    {"GET", TETHER_FLEET_PATH_HEALTH, "GET", PUBLIC, NULL, 0, NULL, false, API_NONE, health},
    /* Devices (DESIGN.md, "Enrolment" and "Attested token exchange"). */
    {"POST", TETHER_FLEET_PATH_ENROLL, "POST", DEVICE, JSON, TETHER_ENROLL_MAX_JSON, NULL, false,
     API_ENROLL, tether_enroll_api_enroll},
    {"POST", TETHER_FLEET_PATH_ACTIVATE, "POST", DEVICE, JSON, TETHER_ENROLL_ACTIVATE_MAX_JSON,
     NULL, false, API_ENROLL, tether_enroll_api_activate},
    {"POST", TETHER_FLEET_PATH_CHALLENGE, "POST", DEVICE, JSON, CHALLENGE_MAX_BODY, NULL, true,
     API_EXCHANGE, tether_exchange_api_challenge},
    /* RFC 6749 section 3.2: credentials in a body, never in the URL. */
    {"POST", TETHER_FLEET_PATH_TOKEN, "POST", DEVICE, FORM, TETHER_TOKEN_FORM_MAX_BODY, NULL,
     true, API_EXCHANGE, tether_exchange_api_token},
    /* Relying parties. */
    {"GET", TETHER_FLEET_PATH_JWKS, "GET", PUBLIC, NULL, 0, NULL, false, API_DISCOVERY,
     tether_discovery_api_jwks},
    {"GET", TETHER_FLEET_PATH_METADATA, "GET", PUBLIC, NULL, 0, NULL, false, API_DISCOVERY,
     tether_discovery_api_metadata},
    {"POST", TETHER_FLEET_PATH_INTROSPECT, "POST", CLIENT(TETHER_ROLE_RELYING_PARTY), FORM, 0,
     NULL, false, API_RELYING_PARTY, tether_rp_api_introspect},
    {"GET", TETHER_FLEET_PATH_REVOCATIONS, "GET", ADMIN(FEED_ROLES), NULL, 0, "after wait",
     false, API_RELYING_PARTY, tether_rp_api_feed},
    {"POST", TETHER_FLEET_PATH_USAGE_REPORTS, "POST", ADMIN(TETHER_ROLE_RELYING_PARTY), JSON,
     TETHER_USAGE_REPORT_MAX_BODY, NULL, false, API_RELYING_PARTY, tether_usage_api_report},
    /* Monitoring: what fleetd counts tells about its fleet (exchange rates
     * and refusals, clone alerts), so never public. */
    {"GET", TETHER_FLEET_PATH_METRICS, "GET", ADMIN(TETHER_ROLE_READ), NULL, 0, NULL, false,
     API_METRICS, tether_fleet_metrics_handle},
    /* Operators. */
    {"GET", DEVICES, "GET, POST", ADMIN(TETHER_ROLE_READ), NULL, 0, NULL, false, API_ADMIN,
     admin_devices_list},
    {"POST", DEVICES, "GET, POST", ADMIN(TETHER_ROLE_FLEET), JSON, 0, NULL, false, API_ADMIN,
     admin_device_allow},
    {"POST", TETHER_FLEET_PATH_DEVICES_IMPORT, "POST", ADMIN(TETHER_ROLE_FLEET), CSV, 0, NULL,
     false, API_ADMIN, admin_devices_import},
    {"GET", DEVICES "/*", "GET", ADMIN(TETHER_ROLE_READ), NULL, 0, NULL, false, API_ADMIN,
     admin_device_show},
    {"POST", DEVICES "/*/revoke", "POST", ADMIN(TETHER_ROLE_SECURITY), JSON, 0, NULL, false,
     API_ADMIN, admin_device_revoke},
    {"POST", DEVICES "/*/quarantine", "POST", ADMIN(TETHER_ROLE_SECURITY), JSON, 0, NULL, false,
     API_ADMIN, admin_device_quarantine},
    {"POST", DEVICES "/*/reinstate", "POST", ADMIN(TETHER_ROLE_SECURITY), JSON, 0, NULL, false,
     API_ADMIN, admin_device_reinstate},
    /* Policies: the fleet role writes (each write a new version), read-only
     * reads; the body is the policy document itself (fleet_policy.h). */
    {"POST", DEVICES "/*/policy", "POST", ADMIN(TETHER_ROLE_FLEET), JSON, 0, NULL, false,
     API_ADMIN, admin_device_set_policy},
    {"GET", TETHER_FLEET_PATH_POLICIES, "GET", ADMIN(TETHER_ROLE_READ), NULL, 0, NULL, false,
     API_ADMIN, admin_policies_list},
    {"GET", TETHER_FLEET_PATH_POLICIES "/*", "GET, POST", ADMIN(TETHER_ROLE_READ), NULL, 0,
     "version", false, API_ADMIN, admin_policy_show},
    {"POST", TETHER_FLEET_PATH_POLICIES "/*", "GET, POST", ADMIN(TETHER_ROLE_FLEET), JSON,
     TETHER_POLICY_DOCUMENT_MAX, NULL, false, API_ADMIN, admin_policy_create},
    {"POST", TETHER_FLEET_PATH_POLICIES "/*/versions", "POST", ADMIN(TETHER_ROLE_FLEET), JSON,
     TETHER_POLICY_DOCUMENT_MAX, NULL, false, API_ADMIN, admin_policy_update},
    {"POST", TETHER_FLEET_PATH_BOOTSTRAP_TOKENS, "POST", ADMIN(TETHER_ROLE_FLEET), JSON, 0, NULL,
     false, API_ADMIN, admin_bootstrap_create},
    {"GET", TETHER_FLEET_PATH_ADMIN_TOKENS, "GET, POST", ADMIN(TETHER_ROLE_SECURITY), NULL, 0,
     NULL, false, API_ADMIN, admin_tokens_list},
    {"POST", TETHER_FLEET_PATH_ADMIN_TOKENS, "GET, POST", ADMIN(TETHER_ROLE_SECURITY), JSON, 0,
     NULL, false, API_ADMIN, admin_token_create},
    {"DELETE", TETHER_FLEET_PATH_ADMIN_TOKENS "/*", "DELETE", ADMIN(TETHER_ROLE_SECURITY), NULL,
     0, NULL, false, API_ADMIN, admin_token_revoke},
    /* A long poll with wait (tetherctl alerts --follow). */
    {"GET", TETHER_FLEET_PATH_ALERTS, "GET", ADMIN(TETHER_ROLE_SECURITY), NULL, 0, "after wait",
     false, API_ADMIN, admin_alerts_list},
    {"GET", TETHER_FLEET_PATH_KEYS, "GET", ADMIN(TETHER_ROLE_READ), NULL, 0, NULL, false,
     API_ADMIN, admin_keys_list},
    {"GET", TETHER_FLEET_PATH_USAGE, "GET", ADMIN(TETHER_ROLE_READ), NULL, 0, "device since",
     false, API_ADMIN, tether_usage_api_list},
    {"POST", TETHER_FLEET_PATH_KEYS_ROTATE, "POST", ADMIN(TETHER_ROLE_SECURITY), NULL, 0, NULL,
     false, API_ADMIN, admin_keys_rotate},
};

static void health(tether_route_call_t *call)
{
    cJSON *json = cJSON_CreateObject();

    if (json == NULL || cJSON_AddStringToObject(json, "status", "ok") == NULL) {
        cJSON_Delete(json);
        tether_http_respond_error(call->response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                                  "out of memory");
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

/* {"error", "error_description"}, and "tether_error" (the same code) on the
 * routes whose client reads it. route may be NULL (no route matched). */
static void refuse(tether_route_call_t *call, const route_t *route, unsigned status,
                   const char *error, const char *description)
{
    cJSON *json;

    if (route == NULL || !route->tether_error) {
        tether_http_respond_error(call->response, status, error, description);
        return;
    }
    json = cJSON_CreateObject();
    if (json == NULL || cJSON_AddStringToObject(json, "error", error) == NULL ||
        cJSON_AddStringToObject(json, "error_description", description) == NULL ||
        cJSON_AddStringToObject(json, "tether_error", error) == NULL) {
        cJSON_Delete(json);
        tether_http_respond_error(call->response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                                  "out of memory");
        return;
    }
    tether_http_respond_json(call->response, status, json);
}

static bool served(const tether_router_t *router, const route_t *route)
{
    switch (route->api) {
    case API_NONE:
        return true;
    case API_ADMIN:
        return router->admin != NULL;
    case API_ENROLL:
        return router->enroll != NULL;
    case API_EXCHANGE:
        return router->exchange != NULL;
    case API_DISCOVERY:
        return router->discovery != NULL;
    case API_RELYING_PARTY:
        return router->relying_party != NULL;
    case API_METRICS:
        return router->metrics != NULL;
    }
    return false;
}

/* Matches path against pattern; the '*' segment is copied to param. A
 * segment too long for param is no valid id: it matches with param empty,
 * so that the handler answers "no device with this id" (404), not "no such
 * endpoint". */
static bool path_matches(const char *pattern, const char *path, char *param, size_t param_size)
{
    while (*pattern != '\0' && *path != '\0') {
        if (*pattern == '*') {
            size_t len = strcspn(path, "/");
            if (len == 0)
                return false;
            if (len < param_size)
                memcpy(param, path, len);
            param[len < param_size ? len : 0] = '\0';
            path += len;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* The served route for the request, or NULL with *path_known set when the
 * path is served with other methods (405 rather than 404). */
static const route_t *find_route(tether_route_call_t *call, const route_t **path_known)
{
    *path_known = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!served(call->router, &routes[i]) ||
            !path_matches(routes[i].pattern, call->request->path, call->param,
                          sizeof(call->param)))
            continue;
        *path_known = &routes[i];
        if (strcmp(routes[i].method, call->request->method) == 0)
            return &routes[i];
    }
    call->param[0] = '\0';
    return NULL;
}

/* The admin token token[0..len) into call->caller: TETHER_ERR_NOT_FOUND
 * for a malformed, unknown or revoked one. The hash is compared in
 * constant time (store_admin_tokens.h); the token itself is never logged or kept. */
static tether_status_t find_caller(tether_route_call_t *call, const char *token, size_t len)
{
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    tether_status_t rc = tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN);

    if (rc == TETHER_OK)
        rc = tether_secret_token_hash(token, len, hash);
    if (rc == TETHER_OK)
        rc = tether_store_admin_token_find(call->router->store, hash, &call->caller);
    tether_wipe(hash, sizeof(hash));
    return rc == TETHER_OK || rc == TETHER_ERR_STORE ? rc : TETHER_ERR_NOT_FOUND;
}

static void store_failed(tether_route_call_t *call)
{
    tether_http_respond_error(call->response, 500, TETHER_FLEET_ERROR_SERVER_ERROR,
                              "the fleet database failed; see the server log");
}

/* Who is calling: 401 unless a valid, unrevoked admin token is presented. */
static bool authenticate(tether_route_call_t *call)
{
    const char *header = call->request->authorization;
    tether_status_t rc;

    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0) {
        call->response->www_authenticate = BEARER_CHALLENGE;
        tether_http_respond_error(call->response, 401, TETHER_FLEET_ERROR_UNAUTHORIZED,
                                  "send an admin token: Authorization: Bearer tthr_adm_...");
        return false;
    }
    rc = find_caller(call, header + 7, strlen(header + 7));
    if (rc == TETHER_OK)
        return true;
    if (rc == TETHER_ERR_STORE) {
        store_failed(call);
        return false;
    }
    call->response->www_authenticate = BEARER_INVALID;
    tether_http_respond_error(call->response, 401, TETHER_FLEET_ERROR_INVALID_TOKEN,
                              "the admin token is malformed, unknown or revoked");
    return false;
}

/* 403 unless the caller holds one of the route's roles. */
static bool authorize(tether_route_call_t *call, const route_t *route)
{
    const char *names[TETHER_ROLE_COUNT];
    char message[160];
    size_t count = 0, used;

    if ((call->caller.roles & route->roles) != 0)
        return true;
    for (unsigned i = 0; i < TETHER_ROLE_COUNT; i++) {
        if ((route->roles & (1u << i)) != 0)
            names[count++] = tether_role_name(1u << i);
    }
    /* "... with the read role", "... with the read, security or relying-party role" */
    used = (size_t)snprintf(message, sizeof(message), "this request needs an admin token with the");
    for (size_t i = 0; i < count && used < sizeof(message); i++)
        used += (size_t)snprintf(message + used, sizeof(message) - used, "%s%s",
                                 i == 0 ? " " : i + 1 == count ? " or " : ", ", names[i]);
    if (used < sizeof(message))
        snprintf(message + used, sizeof(message) - used, " role");
    tether_http_respond_error(call->response, 403, TETHER_FLEET_ERROR_INSUFFICIENT_SCOPE, message);
    return false;
}

/* Whether key is one of the space-separated names of list. */
static bool listed(const char *list, const char *key)
{
    size_t key_len = strlen(key);

    while (list != NULL && *list != '\0') {
        size_t len = strcspn(list, " ");
        if (len == key_len && memcmp(list, key, len) == 0)
            return true;
        list += len;
        list += strspn(list, " ");
    }
    return false;
}

/* The route's query parameters only, each at most once: its handler reads
 * the values. */
static bool query_ok(tether_route_call_t *call, const route_t *route)
{
    const tether_http_request_t *request = call->request;
    char message[96];

    if (route->query == NULL && (request->query_count > 0 || request->query_overflow)) {
        refuse(call, route, 400, TETHER_FLEET_ERROR_INVALID_REQUEST,
               "this endpoint takes no query parameters");
        return false;
    }
    if (request->query_overflow) {
        refuse(call, route, 400, TETHER_FLEET_ERROR_INVALID_REQUEST, "too many query parameters");
        return false;
    }
    for (size_t i = 0; i < request->query_count; i++) {
        bool repeated = false;

        for (size_t j = 0; j < i; j++)
            repeated = repeated || strcmp(request->query[j].key, request->query[i].key) == 0;
        if (repeated || !listed(route->query, request->query[i].key)) {
            snprintf(message, sizeof(message), "unknown or repeated query parameter (%s)",
                     route->query);
            refuse(call, route, 400, TETHER_FLEET_ERROR_INVALID_REQUEST, message);
            return false;
        }
    }
    return true;
}

/* The media type of a Content-Type header, ignoring parameters and case. */
static bool media_type_is(const char *content_type, const char *expected)
{
    size_t len = strlen(expected);

    if (content_type == NULL || strncasecmp(content_type, expected, len) != 0)
        return false;
    return content_type[len] == '\0' || content_type[len] == ';' || content_type[len] == ' ';
}

static bool body_ok(tether_route_call_t *call, const route_t *route)
{
    const tether_http_request_t *request = call->request;
    char message[96];

    if (route->media_type == NULL) {
        if (request->body_len == 0)
            return true;
        refuse(call, route, 400, TETHER_FLEET_ERROR_INVALID_REQUEST, "this request takes no body");
        return false;
    }
    if (!media_type_is(request->content_type, route->media_type)) {
        snprintf(message, sizeof(message), "send Content-Type: %s", route->media_type);
        refuse(call, route, 415, TETHER_FLEET_ERROR_UNSUPPORTED_MEDIA_TYPE, message);
        return false;
    }
    if (route->max_body != 0 && request->body_len > route->max_body) {
        snprintf(message, sizeof(message),
                 "the body is larger than this endpoint takes (%zu bytes)", route->max_body);
        refuse(call, route, 413, TETHER_FLEET_ERROR_PAYLOAD_TOO_LARGE, message);
        return false;
    }
    return true;
}

/* Under the admin prefix, a caller without a valid token learns nothing,
 * not even which paths exist: authentication comes before 404 and 405. */
static bool under_admin(const char *path)
{
    return strncmp(path, TETHER_FLEET_PATH_ADMIN, sizeof(TETHER_FLEET_PATH_ADMIN) - 1) == 0;
}

/* RFC 6749 section 2.3.1, on client routes: 401 invalid_client (RFC 6749
 * section 5.2) with a Basic challenge. */
static void refuse_client(tether_route_call_t *call, const char *message)
{
    call->response->www_authenticate = BASIC_CHALLENGE;
    tether_http_respond_error(call->response, 401, TETHER_FLEET_ERROR_INVALID_CLIENT, message);
}

/* Who is calling a client route: a bearer admin token as on admin routes,
 * or OAuth client credentials, in an "Authorization: Basic" header or as
 * client_id and client_secret in the body (the introspection form, the one
 * body of a client route). The client id is the admin token's id and the
 * secret the token; one method per request (RFC 6749 section 2.3.1). */
static bool authenticate_client(tether_route_call_t *call)
{
    const tether_http_request_t *request = call->request;
    const char *header = request->authorization;
    bool basic = header != NULL && strncasecmp(header, "Basic ", 6) == 0;
    bool in_body = false, ok = false;
    char message[TETHER_CLIENT_MESSAGE_SIZE];
    tether_client_credentials_t creds;
    uint64_t id = 0;
    tether_status_t rc;

    memset(&creds, 0, sizeof(creds));
    if (media_type_is(request->content_type, FORM))
        in_body = tether_introspect_request_client((const char *)request->body,
                                                   request->body_len, &creds) == TETHER_OK;
    if (in_body && header != NULL) {
        tether_http_respond_error(call->response, 400, TETHER_FLEET_ERROR_INVALID_REQUEST,
                                  "use one way of authenticating: the Authorization header or "
                                  "client_secret in the body, not both");
        goto out;
    }
    if (!basic && !in_body) {
        ok = authenticate(call);
        goto out;
    }
    if (basic && tether_client_auth_parse_basic(header + 6, &creds, message, sizeof(message)) !=
                     TETHER_OK) {
        refuse_client(call, message);
        goto out;
    }
    rc = find_caller(call, creds.secret, creds.secret_len);
    /* The id names the token the secret is; it is no secret itself. */
    if (rc == TETHER_OK && (!tether_fleet_decimal_parse(creds.id, 1ULL << 53, &id) ||
                            (uint64_t)call->caller.id != id)) {
        tether_wipe(&call->caller, sizeof(call->caller));
        rc = TETHER_ERR_NOT_FOUND;
    }
    if (rc == TETHER_ERR_STORE)
        store_failed(call);
    else if (rc != TETHER_OK)
        refuse_client(call, "the client id and secret are not an active admin token's id and "
                            "the token itself");
    ok = rc == TETHER_OK;
out:
    tether_client_credentials_clear(&creds);
    return ok;
}

static void dispatch(tether_route_call_t *call)
{
    const route_t *known = NULL;
    const route_t *route = find_route(call, &known);
    bool authenticated = false;
    char message[64];

    /* The metrics name the endpoint by its pattern, never by the raw path. */
    call->response->route = route != NULL ? route->pattern : known != NULL ? known->pattern : NULL;
    if (under_admin(call->request->path)) {
        if (!authenticate(call))
            return;
        authenticated = true;
    }
    if (route == NULL && known == NULL) {
        tether_http_respond_error(call->response, 404, TETHER_FLEET_ERROR_NOT_FOUND,
                                  authenticated ? "no such admin endpoint" : "no such endpoint");
        return;
    }
    if (route == NULL) {
        call->response->allow = known->allow;
        snprintf(message, sizeof(message), "this endpoint takes %s only", known->allow);
        refuse(call, known, 405, TETHER_FLEET_ERROR_METHOD_NOT_ALLOWED, message);
        return;
    }
    if (route->access == TETHER_ROUTE_CLIENT && !authenticate_client(call))
        return;
    if (route->access == TETHER_ROUTE_ADMIN && !authenticated && !authenticate(call))
        return;
    if ((route->access == TETHER_ROUTE_ADMIN || route->access == TETHER_ROUTE_CLIENT) &&
        !authorize(call, route))
        return;
    if (query_ok(call, route) && body_ok(call, route))
        route->handle(call);
}

void tether_router_handle(void *arg, const tether_http_request_t *request,
                          tether_http_response_t *response)
{
    tether_route_call_t call;

    memset(&call, 0, sizeof(call));
    call.router = arg;
    call.request = request;
    call.response = response;
    call.now = (int64_t)time(NULL);
    dispatch(&call);
    tether_wipe(&call, sizeof(call));
}
