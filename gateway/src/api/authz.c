/* The authorization-only answer (authz.h). */
#include "authz.h"

#include "tether/log.h"

void tether_gate_authz_allow(struct tether_gate_router *router,
                             const tether_gate_identity_t *identity,
                             const tether_http_request_t *request,
                             tether_http_response_t *response)
{
    cJSON *body = cJSON_CreateObject();

    (void)router;
    (void)request;
    if (body == NULL || cJSON_AddStringToObject(body, "device", identity->device) == NULL ||
        cJSON_AddStringToObject(body, "policy", identity->policy) == NULL ||
        tether_http_response_add_header(response, "X-Tether-Device", identity->device) !=
            TETHER_OK ||
        tether_http_response_add_header(response, "X-Tether-Policy", identity->policy) !=
            TETHER_OK) {
        cJSON_Delete(body);
        tether_http_respond_error(response, 500, "server_error", "out of memory");
        return;
    }
    tether_http_respond_json(response, 200, body);
}
