/* The agent's device.json: local, but a damaged or planted file must be
 * refused cleanly, never misread. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_agent_state_t state, again;
    char why[128];
    char *json = NULL;

    if (tether_agent_state_from_json((const char *)data, size, &state, why, sizeof(why)) !=
        TETHER_OK)
        return 0;
    if (tether_agent_state_to_json(&state, &json) != TETHER_OK ||
        tether_agent_state_from_json(json, strlen(json), &again, why, sizeof(why)) != TETHER_OK ||
        memcmp(&state, &again, sizeof(state)) != 0)
        __builtin_trap();
    free(json);
    return 0;
}
