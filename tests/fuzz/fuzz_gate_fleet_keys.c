/*
 * tether-gate's view of the fleet's keys: the RFC 8414 metadata (issuer,
 * jwks_uri, tether_revocation_feed_endpoint) and the JWKS, as the fleet
 * answers them (fleet_keys.c). Each input is read both ways, since a
 * fleet (or whoever answers in its place) chooses what it sends for
 * either. Paths read from the metadata lie under the fleet's URL; a JWKS
 * accepted holds between 1 and TETHER_GATE_MAX_KEYS keys with a kid, and
 * one that is refused leaves the keys held before.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fleet_keys.h"
#include "tether/json_strict.h"

#define FLEET_URL "https://127.0.0.1:18543" /* as in the seeds, from a real fleetd */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_metadata(const tether_gate_fleet_keys_t *keys, const cJSON *document)
{
    const char *jwks_path = "", *feed_path = "";

    if (tether_gate_fleet_keys_read_metadata(keys, document, &jwks_path, &feed_path) !=
        TETHER_OK) {
        if (jwks_path != NULL || feed_path != NULL)
            abort();
        return;
    }
    if (jwks_path == NULL || feed_path == NULL || jwks_path[0] != '/' || feed_path[0] != '/' ||
        strlen(feed_path) >= sizeof(keys->feed_path))
        abort();
}

static void set_keys(tether_gate_fleet_keys_t *keys, const cJSON *document)
{
    size_t before = tether_gate_fleet_keys_count(keys);

    if (tether_gate_fleet_keys_set(keys, document) != TETHER_OK) {
        if (tether_gate_fleet_keys_count(keys) != before)
            abort();
        return;
    }
    if (keys->count == 0 || keys->count > TETHER_GATE_MAX_KEYS)
        abort();
    for (size_t i = 0; i < keys->count; i++)
        if (keys->keys[i].kid == NULL || keys->keys[i].kid[0] == '\0' ||
            strlen(keys->keys[i].kid) > TETHER_GATE_KID_MAX || keys->keys[i].key != &keys->ec[i])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_gate_fleet_keys_t keys;
    cJSON *document = NULL;

    if (size > TETHER_GATE_FLEET_MAX_BODY)
        return 0;
    tether_gate_fleet_keys_init(&keys);
    /* The client's base URL, as tether_gate_fleet_keys_connect sets it,
     * without reading a CA file: nothing here goes to the network. */
    if (tether_gate_fleet_keys_open(&keys, FLEET_URL) != TETHER_OK)
        abort();
    snprintf(keys.client.base, sizeof(keys.client.base), "%s", FLEET_URL);
    if (tether_json_parse_object((const char *)data, size, &document) != TETHER_OK)
        goto out;
    read_metadata(&keys, document);
    set_keys(&keys, document);
    set_keys(&keys, document); /* a second JWKS replaces the first */
out:
    cJSON_Delete(document);
    tether_gate_fleet_keys_free(&keys);
    return 0;
}
