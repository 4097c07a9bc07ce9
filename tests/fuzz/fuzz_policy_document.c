/*
 * The fleet policy document (an admin request body, a stored row) on
 * arbitrary bytes. An accepted document is the canonical form: written
 * again it gives the same bytes back, within every bound (the measured_boot
 * section's reference values valid as the check needs them). A refusal comes
 * with a sentence and leaves the document zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/fleet_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tether_policy_document_t zero;
    static tether_policy_document_t doc;
    static char again[TETHER_POLICY_DOCUMENT_MAX + 1];
    char why[256] = "", reason[256];
    size_t len = 0;
    tether_status_t rc;

    rc = tether_policy_document_parse(data, size, &doc, why, sizeof(why));
    if (rc != TETHER_OK) {
        if (why[0] == '\0' || memcmp(&doc, &zero, sizeof(doc)) != 0)
            abort();
        return 0;
    }
    if (doc.model_count == 0 || doc.model_count > TETHER_POLICY_MAX_MODELS ||
        doc.source_count > TETHER_POLICY_MAX_SOURCES ||
        doc.lifetime_seconds < TETHER_POLICY_LIFETIME_MIN ||
        doc.lifetime_seconds > TETHER_POLICY_LIFETIME_MAX)
        abort();
    for (unsigned k = 0; k < TETHER_THRESHOLD_KIND_COUNT; k++)
        if (doc.thresholds[k].set && doc.thresholds[k].micros <= 0)
            abort();
    /* A measured_boot section holds what the check relies on: bounds,
     * ascending lists (searched by bisection), masks within pcr_mask. */
    if (doc.has_measured_boot &&
        !tether_measured_boot_reference_valid(&doc.measured_boot, reason, sizeof(reason)))
        abort();
    if (!doc.has_measured_boot &&
        memcmp(&doc.measured_boot, &zero.measured_boot, sizeof(doc.measured_boot)) != 0)
        abort();
    /* One byte form: what was read, written again, is what came. */
    if (tether_policy_document_write(&doc, again, sizeof(again), &len) != TETHER_OK ||
        len != size || memcmp(again, data, size) != 0)
        abort();
    return 0;
}
