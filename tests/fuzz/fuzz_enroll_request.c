/*
 * The body of POST /v1/enroll, from any network peer: parsed strictly, then
 * checked as fleetd checks it. What parses must serialise and parse back to
 * the same request.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/enroll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tether_enroll_request_t req, again;
    char why[256];
    char *json = NULL;

    if (tether_enroll_request_from_json((const char *)data, size, &req, why, sizeof(why)) !=
        TETHER_OK)
        return 0;
    (void)tether_enroll_request_check(&req, why, sizeof(why));
    if (tether_enroll_request_to_json(&req, &json) != TETHER_OK ||
        tether_enroll_request_from_json(json, strlen(json), &again, why, sizeof(why)) !=
            TETHER_OK ||
        memcmp(&req, &again, sizeof(req)) != 0)
        __builtin_trap();
    free(json);
    return 0;
}
