/*
 * tether-gate's revocation feed: a page of GET /v1/revocations read as the
 * follower reads it (the strict JSON parser, then
 * tether_gate_revocations_apply into small lists, so the lists fill and the
 * overflow path runs). Each input is applied twice, as a feed answering the
 * same page again would: the second time must change nothing, and a page
 * applied never lets a listed device or token pass.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "revocations.h"
#include "tether/json_strict.h"

#define NOW 1700000000
#define MONO 1000
#define ENTRIES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every entry of an applied page: its device or token is refused. */
static void check_listed(tether_gate_revocations_t *revocations, const cJSON *page)
{
    const cJSON *entry;

    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(page, "revocations"))
    {
        const char *device =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "device_id"));
        const char *jti = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "jti"));
        int64_t created_at =
            (int64_t)cJSON_GetObjectItemCaseSensitive(entry, "created_at")->valuedouble;
        tether_gate_revocation_state_t state = tether_gate_revocations_check(
            revocations, device, jti != NULL ? jti : "", created_at, NOW, MONO);

        if (state == TETHER_GATE_NOT_REVOKED || state == TETHER_GATE_FEED_STALE)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_gate_revocations_t revocations;
    cJSON *page = NULL;
    uint64_t seq;

    if (size > TETHER_GATE_FLEET_MAX_BODY)
        return 0;
    tether_gate_revocations_init(&revocations);
    if (tether_gate_revocations_open(&revocations, ENTRIES, 30) != TETHER_OK)
        abort();
    if (tether_json_parse_object((const char *)data, size, &page) != TETHER_OK)
        goto out;
    if (tether_gate_revocations_apply(&revocations, page, NOW, MONO) != TETHER_OK) {
        /* Nothing applied: no contact, no position. */
        if (tether_gate_revocations_age(&revocations, MONO) != -1 ||
            tether_gate_revocations_last_seq(&revocations) != 0)
            abort();
        goto out;
    }
    seq = tether_gate_revocations_last_seq(&revocations);
    if (tether_gate_revocations_age(&revocations, MONO) != 0)
        abort();
    check_listed(&revocations, page);
    if (tether_gate_revocations_apply(&revocations, page, NOW, MONO) != TETHER_OK ||
        tether_gate_revocations_last_seq(&revocations) != seq)
        abort();
    check_listed(&revocations, page);
out:
    cJSON_Delete(page);
    tether_gate_revocations_free(&revocations);
    return 0;
}
