/*
 * tether-fleetd's configuration file (fleetd.conf) on arbitrary text: it is
 * bounded, and whatever parses formats to a file that parses back to the
 * same configuration (compared through its formatted text).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tether_fleet_config_t config, again;
    tether_fleet_config_error_t error;
    char *text = NULL, *text_again = NULL;

    tether_fleet_config_init(&config);
    if (tether_fleet_config_parse((const char *)data, size, &config, &error) != TETHER_OK) {
        if (memchr(error.message, '\0', sizeof(error.message)) == NULL)
            abort();
        return 0;
    }
    if (tether_fleet_config_format(&config, &text) != TETHER_OK)
        abort();
    tether_fleet_config_init(&again);
    if (tether_fleet_config_parse(text, strlen(text), &again, &error) != TETHER_OK ||
        tether_fleet_config_format(&again, &text_again) != TETHER_OK ||
        strcmp(text, text_again) != 0)
        abort();
    free(text);
    free(text_again);
    return 0;
}
