/* GET /.well-known/jwks.json and /.well-known/oauth-authorization-server
 * (discovery_api.h). */
#include "discovery_api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tether/evidence.h"
#include "tether/log.h"

void tether_discovery_api_init(tether_discovery_api_t *api, tether_issuer_keys_t *keys,
                               const tether_token_policy_t *policy)
{
    if (api == NULL)
        return;
    memset(api, 0, sizeof(*api));
    api->keys = keys;
    api->policy = policy;
}

static cJSON *add_url(cJSON *json, const char *name, const char *issuer, const char *path)
{
    char url[TETHER_CONFIG_VALUE_MAX + 64];

    snprintf(url, sizeof(url), "%s%s", issuer, path);
    return cJSON_AddStringToObject(json, name, url);
}

static cJSON *add_strings(cJSON *json, const char *name, const char *list, char sep)
{
    cJSON *array = cJSON_AddArrayToObject(json, name);

    for (const char *p = list; array != NULL && p != NULL && *p != '\0';) {
        char item[TETHER_CONFIG_VALUE_MAX];
        size_t n = strcspn(p, (char[]){sep, '\0'});
        cJSON *s;

        snprintf(item, sizeof(item), "%.*s", (int)n, p);
        if ((s = cJSON_CreateString(item)) == NULL || !cJSON_AddItemToArray(array, s)) {
            cJSON_Delete(s);
            return NULL;
        }
        p += n;
        if (*p == sep)
            p++;
    }
    return array;
}

cJSON *tether_discovery_metadata(const tether_token_policy_t *policy)
{
    cJSON *json = cJSON_CreateObject();
    const char *iss = policy->issuer;

    /* RFC 8414 section 2; the tether_ members are this fleet's own. */
    if (json == NULL || cJSON_AddStringToObject(json, "issuer", iss) == NULL ||
        add_url(json, "token_endpoint", iss, TETHER_FLEET_PATH_TOKEN) == NULL ||
        add_url(json, "jwks_uri", iss, TETHER_FLEET_PATH_JWKS) == NULL ||
        add_url(json, "introspection_endpoint", iss, TETHER_FLEET_PATH_INTROSPECT) == NULL ||
        add_url(json, "tether_revocation_feed_endpoint", iss, TETHER_FLEET_PATH_REVOCATIONS) ==
            NULL ||
        add_url(json, "tether_challenge_endpoint", iss, TETHER_FLEET_PATH_CHALLENGE) == NULL ||
        add_strings(json, "grant_types_supported", TETHER_GRANT_TOKEN_EXCHANGE, ' ') == NULL ||
        add_strings(json, "token_endpoint_auth_methods_supported", "none", ' ') == NULL ||
        /* RFC 8414 section 2; a bearer admin token is accepted too. */
        add_strings(json, "introspection_endpoint_auth_methods_supported",
                    "client_secret_basic client_secret_post", ' ') == NULL ||
        add_strings(json, "response_types_supported", "", ' ') == NULL ||
        add_strings(json, "scopes_supported", policy->scopes, ' ') == NULL ||
        add_strings(json, "tether_subject_token_types_supported", TETHER_EVIDENCE_TOKEN_TYPE,
                    ' ') == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}

void tether_discovery_api_jwks(tether_route_call_t *call)
{
    tether_discovery_api_t *api = call->router->discovery;
    int64_t now = api->clock != NULL ? api->clock() : (int64_t)time(NULL);
    cJSON *json = NULL;
    tether_status_t rc;

    if ((rc = tether_issuer_keys_jwks(api->keys, now, &json)) != TETHER_OK) {
        tether_error("discovery", "publishing the issuer keys: %s", tether_strerror(rc));
        tether_http_respond_error(call->response, 500, "server_error",
                                  "the fleet cannot publish its keys; see the server log");
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}

void tether_discovery_api_metadata(tether_route_call_t *call)
{
    cJSON *json = tether_discovery_metadata(call->router->discovery->policy);

    if (json == NULL) {
        tether_http_respond_error(call->response, 500, "server_error", "out of memory");
        return;
    }
    tether_http_respond_json(call->response, 200, json);
}
