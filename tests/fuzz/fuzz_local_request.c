/* Requests on the agent's local socket, from any local process that may
 * connect to it: the head, and the body of POST /v1/dpop. */
#include <stddef.h>
#include <stdint.h>

#include "local_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_local_route_t route;
    tether_local_dpop_request_t req;
    const char *body;
    size_t body_len;
    char why[128];

    if (tether_local_request_parse_body((const char *)data, size, &route, &body, &body_len) ==
            TETHER_OK &&
        route == TETHER_LOCAL_DPOP)
        (void)tether_local_dpop_request_parse(body, body_len, &req, why, sizeof(why));
    /* The body parser alone, on bytes no head framed. */
    (void)tether_local_dpop_request_parse((const char *)data, size, &req, why, sizeof(why));
    return 0;
}
