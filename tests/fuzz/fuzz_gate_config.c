/*
 * tether-gate's configuration parser on arbitrary text. Beyond memory
 * errors (the sanitizers), it checks that whatever parses formats to a text
 * that parses back to the same configuration.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tether_gate_config_t config, again;
    tether_gate_config_error_t error;
    char *text = NULL;

    tether_gate_config_init(&config);
    if (tether_gate_config_parse((const char *)data, size, &config, &error) != TETHER_OK)
        return 0;
    if (tether_gate_config_format(&config, &text) != TETHER_OK)
        abort();
    tether_gate_config_init(&again);
    if (tether_gate_config_parse(text, strlen(text), &again, &error) != TETHER_OK ||
        memcmp(&config, &again, sizeof(config)) != 0)
        abort();
    free(text);
    return 0;
}
