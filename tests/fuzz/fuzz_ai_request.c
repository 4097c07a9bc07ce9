/* Request heads an app on the device sends to the agent's AI endpoint, and
 * the response header lines of the gateway it forwards to. */
#include <stddef.h>
#include <stdint.h>

#include "ai_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_ai_request_t req;
    tether_ai_challenge_t challenge = {.use_dpop_nonce = false, .nonce = ""};
    char retry_after[TETHER_AI_RETRY_AFTER_MAX + 1] = "";

    (void)tether_ai_request_parse((const char *)data, size, &req);
    tether_ai_challenge_header(&challenge, (const char *)data, size);
    (void)tether_ai_challenge_retry(401, &challenge);
    (void)tether_ai_retry_after_header((const char *)data, size, retry_after);
    return 0;
}
