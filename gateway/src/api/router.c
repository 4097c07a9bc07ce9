/* tether-gate's request pipeline and route table (router.h). */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "forward.h"
#include "tether/http_server.h"
#include "tether/log.h"

#define AUTHZ_PATH "/authz"

static void forward_stage(tether_gate_router_t *router, const tether_gate_identity_t *identity,
                          const tether_http_request_t *request, tether_http_response_t *response)
{
    tether_gate_forward_handle(router->forward, identity, request, response);
}

static void metrics_stage(tether_gate_router_t *router, const tether_gate_identity_t *identity,
                          const tether_http_request_t *request, tether_http_response_t *response)
{
    (void)identity;
    if (strcmp(request->method, "GET") != 0) {
        tether_http_respond_error(response, 405, "method_not_allowed", "use GET");
        response->allow = "GET";
        return;
    }
    tether_gate_monitor_handle(router->monitor, response);
}

/* The one route table. The proxy's endpoints check their methods
 * themselves (proxy.h). */
static const tether_gate_route_t routes[] = {
    {AUTHZ_PATH, false, TETHER_GATE_TARGET_NGINX, tether_gate_authz_allow},
    {AUTHZ_PATH "/", true, TETHER_GATE_TARGET_ENVOY, tether_gate_authz_allow},
    {"/v1/chat/completions", false, TETHER_GATE_TARGET_SELF, forward_stage},
    {"/v1/completions", false, TETHER_GATE_TARGET_SELF, forward_stage},
    {"/v1/embeddings", false, TETHER_GATE_TARGET_SELF, forward_stage},
    {"/v1/models", false, TETHER_GATE_TARGET_SELF, forward_stage},
    {"/metrics", false, TETHER_GATE_TARGET_LOCAL, metrics_stage},
};

const tether_gate_route_t *tether_gate_route_find(const char *path)
{
    if (path == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t n = strlen(routes[i].path);
        if (routes[i].prefix ? strncmp(path, routes[i].path, n) == 0
                             : strcmp(path, routes[i].path) == 0)
            return &routes[i];
    }
    return NULL;
}

/* A header value from our own sentences: no quote or backslash inside a
 * quoted-string (RFC 9110 section 5.6.4). */
static void quote_safe(char *text)
{
    for (; *text != '\0'; text++)
        if (*text == '"' || *text == '\\' || (unsigned char)*text < 0x20)
            *text = '\'';
}

static void add_header(tether_http_response_t *response, const char *name, const char *value)
{
    if (tether_http_response_add_header(response, name, value) != TETHER_OK)
        tether_warn("gate", "cannot add the %s header to a response", name);
}

static void add_nonce(tether_gate_access_t *access, int64_t now, tether_http_response_t *response)
{
    char nonce[TETHER_NONCE_TEXT_LEN + 1];

    if (tether_gate_access_nonce(access, now, nonce, sizeof(nonce)) == TETHER_OK)
        add_header(response, "DPoP-Nonce", nonce);
}

void tether_gate_respond_refusal(tether_gate_access_t *access, const tether_gate_refusal_t *refusal,
                                 int64_t now, tether_http_response_t *response)
{
    char description[sizeof(refusal->description)], challenge[sizeof(description) + 128];
    cJSON *body = cJSON_CreateObject();

    snprintf(description, sizeof(description), "%s", refusal->description);
    quote_safe(description);
    if (refusal->status == 401) {
        /* RFC 6750 section 3.1: no error code when no credential came. */
        if (strcmp(refusal->tether_error, TETHER_GATE_TOKEN_MISSING) == 0)
            snprintf(challenge, sizeof(challenge), "DPoP algs=\"ES256\"");
        else
            snprintf(challenge, sizeof(challenge),
                     "DPoP error=\"%s\", error_description=\"%s\", algs=\"ES256\"", refusal->error,
                     description);
        add_header(response, "WWW-Authenticate", challenge);
    }
    if (refusal->status == 503)
        response->retry_after = "5";
    if (refusal->nonce)
        add_nonce(access, now, response);
    if (body == NULL || cJSON_AddStringToObject(body, "error", refusal->error) == NULL ||
        cJSON_AddStringToObject(body, "error_description", refusal->description) == NULL ||
        cJSON_AddStringToObject(body, "tether_error", refusal->tether_error) == NULL) {
        cJSON_Delete(body);
        tether_http_respond_error(response, 500, "server_error", "out of memory");
        return;
    }
    tether_http_respond_json(response, refusal->status, body);
}

static void refuse_request(tether_http_response_t *response, unsigned status, const char *error,
                           const char *tether_error, const char *description)
{
    cJSON *body = cJSON_CreateObject();

    if (body == NULL || cJSON_AddStringToObject(body, "error", error) == NULL ||
        cJSON_AddStringToObject(body, "error_description", description) == NULL ||
        cJSON_AddStringToObject(body, "tether_error", tether_error) == NULL) {
        cJSON_Delete(body);
        tether_http_respond_error(response, 500, "server_error", "out of memory");
        return;
    }
    tether_http_respond_json(response, status, body);
}

/* Whether the client is on this host: the only callers of LOCAL routes
 * (the metrics say how the gateway is used; no token protects them). */
static bool remote_is_loopback(const char *remote)
{
    return remote != NULL && (strncmp(remote, "127.", 4) == 0 || strcmp(remote, "::1") == 0 ||
                              strncmp(remote, "::ffff:127.", 11) == 0);
}

/* Monotonic seconds, for the authorization's duration. */
static double mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The method and normalised URL the request's proof must name. */
static bool find_target(const tether_gate_config_t *config, const tether_gate_route_t *route,
                        const tether_http_request_t *request, const char **htm, char *htu,
                        size_t htu_size)
{
    char url[TETHER_GATE_CONFIG_URL_MAX + TETHER_HTTP_MAX_URI_BYTES];
    const char *path = request->path;
    int n;

    *htm = request->method;
    if (route->target == TETHER_GATE_TARGET_NGINX) {
        *htm = tether_http_request_header(request, "X-Original-Method");
        path = tether_http_request_header(request, "X-Original-URI");
    } else if (route->target == TETHER_GATE_TARGET_ENVOY) {
        path = request->path + strlen(route->path) - 1; /* keeps the '/' */
    }
    if (*htm == NULL || path == NULL || path[0] != '/' || strlen(*htm) > TETHER_DPOP_HTM_MAX)
        return false;
    n = snprintf(url, sizeof(url), "%s%s", config->public_url, path);
    return n > 0 && (size_t)n < sizeof(url) &&
           tether_dpop_htu_normalize(url, (size_t)n, htu, htu_size) == TETHER_OK;
}

void tether_gate_router_handle(void *arg, const tether_http_request_t *request,
                               tether_http_response_t *response)
{
    tether_gate_router_t *router = arg;
    const tether_gate_route_t *route = tether_gate_route_find(request->path);
    char htu[TETHER_DPOP_HTU_MAX + 1];
    tether_gate_access_request_t access_request;
    tether_gate_identity_t identity;
    tether_gate_refusal_t refusal;
    int64_t now = tether_gate_wall_seconds();
    double started = mono_seconds();
    tether_status_t rc;

    if (route == NULL) {
        refuse_request(response, 404, TETHER_GATE_NOT_FOUND, TETHER_GATE_NOT_FOUND,
                       "no such endpoint on tether-gate");
        return;
    }
    response->route = route->path; /* the server's metrics: the pattern, never the path */
    if (route->target == TETHER_GATE_TARGET_LOCAL) {
        if (remote_is_loopback(request->remote))
            route->stage(router, NULL, request, response);
        else
            refuse_request(response, 403, TETHER_GATE_OAUTH_INSUFFICIENT_SCOPE,
                           TETHER_GATE_NOT_LOCAL, "this endpoint answers loopback clients only");
        return;
    }
    memset(&access_request, 0, sizeof(access_request));
    if (!find_target(router->config, route, request, &access_request.htm, htu, sizeof(htu))) {
        refuse_request(response, 400, TETHER_GATE_OAUTH_INVALID_REQUEST,
                       TETHER_GATE_AUTHZ_NO_TARGET,
                       "the original request is missing or malformed (for auth_request: "
                       "X-Original-Method and X-Original-URI)");
        return;
    }
    access_request.htu = htu;
    access_request.authorization = request->authorization;
    access_request.dpop = tether_http_request_header(request, "DPoP");
    rc = tether_gate_access_check(router->access, &access_request, now,
                                  tether_gate_mono_seconds(), &identity, &refusal);
    /* After the whole check, so that only the token's holder is counted
     * (the fleet's source_networks threshold acts on it). */
    if (rc == TETHER_OK &&
        (rc = tether_gate_access_check_source(&identity, request->remote, &refusal)) ==
            TETHER_ERR_VERIFY)
        tether_gate_usage_reporter_count(router->monitor->usage, identity.device, identity.jti,
                                         TETHER_GATE_USAGE_REFUSED_SOURCE, 0, 0, 0, now);
    if (rc == TETHER_ERR_VERIFY) {
        tether_info("access", "refused %s %s: %s", access_request.htm, htu, refusal.tether_error);
        tether_gate_monitor_refused(router->monitor, route->path, &refusal,
                                    mono_seconds() - started);
        tether_gate_respond_refusal(router->access, &refusal, now, response);
        return;
    }
    if (rc != TETHER_OK) {
        tether_error("access", "authorization failed: %s", tether_strerror(rc));
        tether_http_respond_error(response, 500, "server_error", "authorization failed");
        return;
    }
    tether_gate_monitor_authorized(router->monitor, mono_seconds() - started);
    route->stage(router, &identity, request, response);
    if (router->config->dpop_nonce)
        add_nonce(router->access, now, response);
}
