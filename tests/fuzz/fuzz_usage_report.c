/*
 * The body of POST /v1/usage/reports (fleetd, from relying parties) on
 * arbitrary bytes. An accepted report holds what the store may count: ids
 * in their syntax, 1 to 256 entries with distinct jtis, every count within
 * its bound, first_seen <= last_seen, the optional refusal counts part of
 * refused. A refusal comes with a message and leaves the report zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usage_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int entry_ok(const tether_store_usage_entry_t *e)
{
    return strlen(e->jti) == TETHER_STORE_JTI_SIZE - 1 &&
           strspn(e->jti, "0123456789abcdef") == TETHER_STORE_JTI_SIZE - 1 &&
           strlen(e->device_id) == TETHER_STORE_DEVICE_ID_SIZE - 1 &&
           strncmp(e->device_id, "dev_", 4) == 0 && e->requests >= 0 &&
           e->requests <= TETHER_USAGE_MAX_REQUESTS && e->refused >= 0 &&
           e->refused <= TETHER_USAGE_MAX_REQUESTS && e->prompt_tokens >= 0 &&
           e->prompt_tokens <= TETHER_USAGE_MAX_TOKENS && e->completion_tokens >= 0 &&
           e->completion_tokens <= TETHER_USAGE_MAX_TOKENS && e->cost_micros >= 0 &&
           e->cost_micros <= TETHER_USAGE_MAX_COST && e->first_seen >= 0 &&
           e->first_seen <= e->last_seen && e->last_seen <= TETHER_USAGE_MAX_TIME &&
           e->refused_models >= 0 && e->refused_sources >= 0 &&
           e->refused_models + e->refused_sources <= e->refused;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tether_usage_report_t report; /* about 30 KiB: not on the fuzzer's stack */
    char message[TETHER_USAGE_MESSAGE_SIZE] = "";
    tether_status_t rc;

    rc = tether_usage_report_parse((const char *)data, size, &report, message, sizeof(message));
    if (rc == TETHER_OK) {
        size_t id_len = strlen(report.report_id);

        if (report.entry_count < 1 || report.entry_count > TETHER_USAGE_REPORT_MAX_ENTRIES ||
            id_len < TETHER_USAGE_REPORT_ID_MIN || id_len >= TETHER_USAGE_REPORT_ID_SIZE ||
            report.gateway[0] == '\0' || size > TETHER_USAGE_REPORT_MAX_BODY)
            abort();
        for (size_t i = 0; i < report.entry_count; i++) {
            if (!entry_ok(&report.entries[i]))
                abort();
            for (size_t j = 0; j < i; j++) {
                if (strcmp(report.entries[i].jti, report.entries[j].jti) == 0)
                    abort();
            }
        }
    } else if (rc != TETHER_ERR_PARSE || message[0] == '\0' || report.entry_count != 0 ||
               report.report_id[0] != '\0' || report.gateway[0] != '\0') {
        abort();
    }
    return 0;
}
