/*
 * tether's own measurement log (firmware/, cel.h), as a fleet will receive
 * it from a device: parsed strictly; what parses is replayed and printed as
 * JSON, and must stay inside its bounds. Seeded with logs of one and three
 * records, over one bank and three.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tether/cel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t sha256[] = {TETHER_TPM_ALG_SHA256};
    tether_cel_t log;
    tether_eventlog_failure_t failure;
    tether_eventlog_pcrs_t pcrs;
    cJSON *json = NULL;

    tether_cel_init(&log);
    if (tether_cel_parse(&log, data, size, &failure) == TETHER_OK) {
        if (log.record_count > TETHER_CEL_MAX_RECORDS ||
            tether_cel_replay(&log, log.record_count, sha256, 1, &pcrs) != TETHER_OK ||
            tether_cel_to_json(&log, &pcrs, &json) != TETHER_OK)
            abort();
        cJSON_Delete(json);
    } else if (log.records != NULL || failure.error == TETHER_FIRMWARE_OK) {
        abort(); /* a refusal leaves the log empty and names its reason */
    }
    tether_cel_free(&log);
    return 0;
}
