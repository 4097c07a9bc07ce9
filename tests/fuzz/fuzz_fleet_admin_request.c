/*
 * fleetd's admin request bodies (untrusted JSON) on arbitrary bytes. The
 * first byte picks the parser. Accepted values must satisfy the same checks
 * the handlers rely on; refusals must come with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin_request.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(tether_status_t rc, const char *message)
{
    if (rc != TETHER_OK && (rc != TETHER_ERR_PARSE || message[0] == '\0'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char message[TETHER_ADMIN_MESSAGE_SIZE] = "";
    const char *body = (const char *)data + 1;
    tether_status_t rc;

    if (size < 1)
        return 0;
    size--;
    switch (data[0] % 4) {
    case 0: {
        tether_admin_allow_request_t req;
        rc = tether_admin_parse_allow(body, size, &req, message, sizeof(message));
        check(rc, message);
        if (rc == TETHER_OK && (strlen(req.ek_sha256) != 64 ||
                                !tether_fleet_name_valid(req.name, strlen(req.name))))
            abort();
        break;
    }
    case 1: {
        tether_admin_reason_request_t req;
        rc = tether_admin_parse_reason(body, size, &req, message, sizeof(message));
        check(rc, message);
        if (rc == TETHER_OK && !tether_fleet_reason_valid(req.reason, strlen(req.reason)))
            abort();
        break;
    }
    case 2: {
        tether_admin_bootstrap_request_t req;
        rc = tether_admin_parse_bootstrap(body, size, 86400, &req, message, sizeof(message));
        check(rc, message);
        if (rc == TETHER_OK && (req.ttl_seconds < TETHER_ADMIN_MIN_TTL || req.ttl_seconds > 86400 ||
                                req.uses < 1 || req.uses > TETHER_FLEET_BOOTSTRAP_MAX_USES))
            abort();
        break;
    }
    default: {
        tether_admin_token_request_t req;
        rc = tether_admin_parse_token(body, size, &req, message, sizeof(message));
        check(rc, message);
        if (rc == TETHER_OK && (req.roles == 0 || (req.roles & ~TETHER_ROLE_KNOWN) != 0 ||
                                !tether_fleet_name_valid(req.name, strlen(req.name))))
            abort();
        break;
    }
    }
    return 0;
}
