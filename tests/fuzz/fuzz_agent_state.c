/* The agent's device.json and enrolment.json: local, but a damaged or
 * planted file must be refused cleanly, never misread. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void device_file(const uint8_t *data, size_t size)
{
    tether_agent_state_t state, again;
    char why[128];
    char *json = NULL;

    if (tether_agent_state_from_json((const char *)data, size, &state, why, sizeof(why)) !=
        TETHER_OK)
        return;
    if (tether_agent_state_to_json(&state, &json) != TETHER_OK ||
        tether_agent_state_from_json(json, strlen(json), &again, why, sizeof(why)) != TETHER_OK ||
        memcmp(&state, &again, sizeof(state)) != 0)
        __builtin_trap();
    free(json);
}

static void pending_file(const uint8_t *data, size_t size)
{
    static tether_agent_pending_t pending, again;
    char why[128];
    char *json = NULL;

    if (tether_agent_pending_from_json((const char *)data, size, &pending, why, sizeof(why)) !=
        TETHER_OK)
        return;
    if (tether_agent_pending_to_json(&pending, &json) != TETHER_OK ||
        tether_agent_pending_from_json(json, strlen(json), &again, why, sizeof(why)) !=
            TETHER_OK ||
        memcmp(&pending, &again, sizeof(pending)) != 0)
        __builtin_trap();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    device_file(data, size);
    pending_file(data, size);
    return 0;
}
