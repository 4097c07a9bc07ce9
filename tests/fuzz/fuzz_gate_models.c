/*
 * tether-gate's GET /v1/models: the upstream's model list, filtered by the
 * policy's and the token's model globs (tether_gate_models_filter). An
 * upstream may answer anything; what passes keeps only entries with an id
 * both lists allow, and the rest of the answer as it came.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/gate/policy.h"
#include "tether/gate/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const policy_models[] = {"gpt-4o*", "llama-3.?-*", "text-embedding-3-small"};
static const char *const token_models[] = {"gpt-*", "llama-*", "text-embedding-*"};

static tether_gate_policy_t *policy(void)
{
    static tether_gate_policy_t opened;
    static bool ready;
    tether_gate_policy_options_t opts;
    char why[192];

    if (ready)
        return &opened;
    memset(&opts, 0, sizeof(opts));
    opts.models = policy_models;
    opts.model_count = sizeof(policy_models) / sizeof(policy_models[0]);
    opts.default_max_tokens = 256;
    opts.max_devices = 4;
    tether_gate_policy_init(&opened);
    if (tether_gate_policy_open(&opened, &opts, why, sizeof(why)) != TETHER_OK)
        abort();
    ready = true;
    return &opened;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t token_model_count = sizeof(token_models) / sizeof(token_models[0]);
    const cJSON *entry;
    static cJSON sentinel; /* *out is set on entry: NULL on a refusal */
    cJSON *filtered = &sentinel;

    if (size > 1024 * 1024)
        return 0;
    if (tether_gate_models_filter(policy(), token_models, token_model_count, (const char *)data,
                                  size, &filtered) != TETHER_OK) {
        if (filtered != NULL)
            abort();
        return 0;
    }
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(filtered, "data"))
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "id"));
        if (id == NULL ||
            !tether_gate_policy_model_allowed(policy(), id, token_models, token_model_count))
            abort();
    }
    cJSON_Delete(filtered);
    return 0;
}
