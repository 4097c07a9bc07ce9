/* The admin API's state and the answers its handlers share. */
#include "admin_api.h"

#include "admin_internal.h"

void tether_admin_api_init(tether_admin_api_t *api, tether_store_t *store,
                           unsigned bootstrap_max_ttl_seconds)
{
    if (api == NULL)
        return;
    api->store = store;
    api->bootstrap_max_ttl_seconds = bootstrap_max_ttl_seconds;
    api->issuer_keys = NULL;
}

void admin_bad_request(tether_route_call_t *call, const char *message)
{
    tether_http_respond_error(call->response, 400, "invalid_request", message);
}

void admin_store_error(tether_route_call_t *call, tether_status_t rc, const char *not_found,
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
