/*
 * A firmware event log from a device (firmware/, eventlog.h): parsed
 * strictly; what parses is replayed and printed as JSON, and must stay
 * inside its bounds. Seeded with the real logs of firmware/tests/data.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tether/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_eventlog_t log;
    tether_eventlog_failure_t failure;
    tether_eventlog_pcrs_t pcrs;
    cJSON *json = NULL;

    tether_eventlog_init(&log);
    if (tether_eventlog_parse(&log, data, size, &failure) == TETHER_OK) {
        if (log.event_count == 0 || log.event_count > TETHER_EVENTLOG_MAX_EVENTS ||
            tether_eventlog_replay(&log, &pcrs) != TETHER_OK ||
            tether_eventlog_to_json(&log, &pcrs, &json) != TETHER_OK)
            abort();
        cJSON_Delete(json);
    } else if (log.events != NULL || failure.error == TETHER_FIRMWARE_OK) {
        abort(); /* a refusal leaves the log empty and names its reason */
    }
    tether_eventlog_free(&log);
    return 0;
}
