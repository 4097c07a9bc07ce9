/* tether-gate's calls to tether-fleetd (fleet_client.h). */
#include "fleet_client.h"

#include <stdio.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/json_strict.h"

void tether_gate_fleet_client_init(tether_gate_fleet_client_t *client)
{
    if (client == NULL)
        return;
    memset(client, 0, sizeof(*client));
    tether_https_client_init(&client->https);
}

tether_status_t tether_gate_fleet_client_open(tether_gate_fleet_client_t *client,
                                              const char *fleet_url, const char *ca_file,
                                              unsigned io_timeout_ms)
{
    int n;

    if (client == NULL || fleet_url == NULL || ca_file == NULL || io_timeout_ms == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(client->base, sizeof(client->base), "%s", fleet_url);
    if (n < 0 || (size_t)n >= sizeof(client->base))
        return TETHER_ERR_TOO_LARGE;
    client->https.io_timeout_ms = io_timeout_ms;
    client->https.request_timeout_ms = io_timeout_ms + TETHER_HTTPS_DEFAULT_CONNECT_TIMEOUT_MS;
    client->https.limits.max_body_bytes = TETHER_GATE_FLEET_MAX_BODY;
    return tether_https_client_setup(&client->https, fleet_url, ca_file);
}

void tether_gate_fleet_client_free(tether_gate_fleet_client_t *client)
{
    if (client == NULL)
        return;
    tether_https_client_free(&client->https);
    memset(client, 0, sizeof(*client));
}

const char *tether_gate_fleet_path(const tether_gate_fleet_client_t *client, const char *url)
{
    size_t n;

    if (client == NULL || url == NULL)
        return NULL;
    n = strlen(client->base);
    if (strncmp(url, client->base, n) != 0 || url[n] != '/')
        return NULL;
    return url + n;
}

/* One request with the bearer token (when not NULL; wiped from the
 * request buffer afterwards) and an optional JSON body; *status gets the
 * answer's status, *out its body when that is a JSON object (else NULL). */
static tether_status_t request_json(tether_gate_fleet_client_t *client, const char *method,
                                    const char *path, const char *bearer, const char *body,
                                    size_t body_len, int *status, cJSON **out)
{
    char authorization[TETHER_HTTPS_MAX_HEADER_LINE];
    const char *headers[2] = {NULL, NULL};
    tether_https_response_t resp;
    tether_status_t rc;
    int n;

    *status = 0;
    *out = NULL;
    tether_https_response_init(&resp);
    authorization[0] = '\0';
    if (bearer != NULL) {
        n = snprintf(authorization, sizeof(authorization), "Authorization: Bearer %s", bearer);
        if (n < 0 || (size_t)n >= sizeof(authorization)) {
            rc = TETHER_ERR_TOO_LARGE;
            goto out;
        }
        headers[0] = authorization;
    }
    rc = tether_https_request(&client->https, method, path,
                              body != NULL ? "application/json" : NULL,
                              (const uint8_t *)body, body != NULL ? body_len : 0, headers, &resp);
    if (rc != TETHER_OK)
        goto out;
    *status = resp.status;
    if (tether_json_parse_object((const char *)resp.body, resp.body_len, out) != TETHER_OK)
        *out = NULL;
out:
    tether_wipe(authorization, sizeof(authorization));
    tether_https_response_free(&resp);
    return rc;
}

tether_status_t tether_gate_fleet_get_json(tether_gate_fleet_client_t *client, const char *path,
                                           const char *bearer, cJSON **out)
{
    tether_status_t rc;
    int status = 0;

    if (out != NULL)
        *out = NULL;
    if (client == NULL || path == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = request_json(client, "GET", path, bearer, NULL, 0, &status, out)) != TETHER_OK)
        return rc;
    if (status != 200) {
        snprintf(client->https.error, sizeof(client->https.error),
                 "the fleet answered GET %s with status %d", path, status);
        rc = TETHER_ERR_PROTOCOL;
    } else if (*out == NULL) {
        snprintf(client->https.error, sizeof(client->https.error),
                 "the fleet's answer to GET %s is not a JSON object", path);
        rc = TETHER_ERR_PROTOCOL;
    }
    if (rc != TETHER_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

tether_status_t tether_gate_fleet_post_json(tether_gate_fleet_client_t *client, const char *path,
                                            const char *bearer, const char *body,
                                            size_t body_len, int *status, cJSON **out)
{
    if (status != NULL)
        *status = 0;
    if (out != NULL)
        *out = NULL;
    if (client == NULL || path == NULL || body == NULL || status == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    return request_json(client, "POST", path, bearer, body, body_len, status, out);
}
