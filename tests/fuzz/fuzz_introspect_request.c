/*
 * The body of POST /v1/introspect (fleetd, from relying parties) on
 * arbitrary bytes. An accepted body gives a token without NUL of its stated
 * length (or the too-long flag and nothing); a refusal comes with a message
 * and leaves nothing of the token behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "introspect_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tether_introspect_request_t req; /* 8 KiB: not on the fuzzer's stack */
    char message[TETHER_INTROSPECT_MESSAGE_SIZE] = "";
    tether_status_t rc;

    rc = tether_introspect_request_parse((const char *)data, size, &req, message,
                                         sizeof(message));
    if (rc == TETHER_OK) {
        if (req.too_long ? (req.token_len != 0 || req.token[0] != '\0')
                         : (req.token_len == 0 || req.token_len > TETHER_JWS_MAX_LEN ||
                            strlen(req.token) != req.token_len))
            abort();
        /* A token comes from "token=" in the body. */
        if (size < 6)
            abort();
        /* Client credentials, when sent, within their bounds. */
        if (strlen(req.client.id) > TETHER_CLIENT_ID_MAX ||
            strlen(req.client.secret) != req.client.secret_len ||
            (req.has_client_secret ? req.client.secret_len == 0 : req.client.secret_len != 0) ||
            (!req.has_client_id && req.client.id[0] != '\0'))
            abort();
    } else if (rc != TETHER_ERR_PARSE || message[0] == '\0' || req.token_len != 0 ||
               req.too_long || req.token[0] != '\0' || req.client.secret_len != 0 ||
               req.client.secret[0] != '\0' || req.has_client_secret) {
        abort();
    }
    tether_introspect_request_clear(&req);
    return 0;
}
