/*
 * JSON pieces shared by the firmware log's JSON and tether's CEL log's
 * (eventlog_json.c, cel.c), so both print digests and replays one way.
 */
#ifndef TETHER_FIRMWARE_EVENTLOG_JSON_H
#define TETHER_FIRMWARE_EVENTLOG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/eventlog.h"

/* name: the hex of b[0..n) in obj; false when out of memory. */
bool tether_eventlog_json_add_hex(cJSON *obj, const char *name, const uint8_t *b, size_t n);

/* A new {"algorithm": name} at the end of array (the TPM_ALG_ID in hex for
 * an algorithm without a name), or NULL when out of memory. */
cJSON *tether_eventlog_json_append_algorithm(cJSON *array, uint16_t algorithm);

/* "replay": {bank: {"complete", "events_without_digest", "pcrs": {"N": hex}}}
 * in root; false when out of memory. */
bool tether_eventlog_json_add_replay(cJSON *root, const tether_eventlog_pcrs_t *pcrs);

/* Adds the replay (when pcrs is not NULL) to root and hands root to *out;
 * on failure deletes root. The last step of both logs' JSON. */
tether_status_t tether_eventlog_json_finish(cJSON *root, const tether_eventlog_pcrs_t *pcrs,
                                            cJSON **out);

#endif
