/* Requests on the agent's local socket, from any local process that may
 * connect to it. */
#include <stddef.h>
#include <stdint.h>

#include "local_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_local_route_t route;

    (void)tether_local_request_parse((const char *)data, size, &route);
    return 0;
}
