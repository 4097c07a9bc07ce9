/*
 * tether-gate's inspection of a client's request body, for each endpoint.
 * What it accepts has a model, bounds within their limits, and a body to
 * forward that inspects again to the same model, stream flag and
 * completion bound (the rewrite is stable).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/gate/openai_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_gate_request_t first, again;
    char why[200];

    for (int e = TETHER_GATE_CHAT_COMPLETIONS; e <= TETHER_GATE_EMBEDDINGS; e++) {
        tether_gate_endpoint_t endpoint = (tether_gate_endpoint_t)e;

        if (tether_gate_request_inspect(endpoint, data, size, 64, &first, why, sizeof(why)) !=
            TETHER_OK) {
            if (first.body != NULL)
                abort();
            continue;
        }
        if (first.model[0] == '\0' || first.body == NULL || first.prompt_bound != size ||
            first.completion_bound > (uint64_t)TETHER_GATE_MAX_COMPLETION_TOKENS *
                                         TETHER_GATE_MAX_CHOICES * TETHER_GATE_MAX_CHOICES ||
            (endpoint == TETHER_GATE_EMBEDDINGS) != (first.completion_bound == 0))
            abort();
        if (tether_gate_request_inspect(endpoint, (const uint8_t *)first.body, first.body_len,
                                        64, &again, why, sizeof(why)) != TETHER_OK ||
            strcmp(again.model, first.model) != 0 || again.stream != first.stream ||
            again.completion_bound != first.completion_bound ||
            again.body_len != first.body_len || memcmp(again.body, first.body, first.body_len) != 0)
            abort();
        tether_gate_request_free(&again);
        tether_gate_request_free(&first);
    }
    return 0;
}
