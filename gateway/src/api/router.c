/* tether-gate's request pipeline and route table (router.h). */
#include "router.h"

#include <stdio.h>
#include <string.h>

#include "authz.h"
#include "tether/http_server.h"
#include "tether/log.h"

#define AUTHZ_PATH "/authz"

/* The one route table. The proxy's routes (/v1/chat/completions, ...) join
 * it with their stages. */
static const tether_gate_route_t routes[] = {
    {AUTHZ_PATH, false, TETHER_GATE_TARGET_NGINX, tether_gate_authz_allow},
    {AUTHZ_PATH "/", true, TETHER_GATE_TARGET_ENVOY, tether_gate_authz_allow},
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
    tether_status_t rc;

    if (route == NULL) {
        refuse_request(response, 404, TETHER_GATE_NOT_FOUND, TETHER_GATE_NOT_FOUND,
                       "no such endpoint on tether-gate");
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
    if (rc == TETHER_ERR_VERIFY) {
        tether_info("access", "refused %s %s: %s", access_request.htm, htu, refusal.tether_error);
        tether_gate_respond_refusal(router->access, &refusal, now, response);
        return;
    }
    if (rc != TETHER_OK) {
        tether_error("access", "authorization failed: %s", tether_strerror(rc));
        tether_http_respond_error(response, 500, "server_error", "authorization failed");
        return;
    }
    route->stage(router->stage_ctx, &identity, request, response);
    if (router->config->dpop_nonce)
        add_nonce(router->access, now, response);
}
