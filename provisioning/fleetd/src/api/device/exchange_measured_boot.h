/*
 * Measured boot in the token exchange, fleetd's side (DESIGN.md, "Measured
 * boot"; the wire: firmware/include/tether/eventlog_wire.h). For a device
 * whose policy has a measured_boot section:
 *   - POST /v1/challenge asks for a quote over the fleet's pcr_selection and
 *     the policy's pcr_mask, and says which logs fleetd holds (by hash);
 *   - POST /v1/token takes each log's hash, and its bytes when they
 *     changed; a hash alone names the log fleetd kept from the device's
 *     last accepted exchange; tether_measured_boot_check() then replays
 *     them against the verified quote and the reference values;
 *   - an accepted exchange keeps the logs whose bytes came.
 * Devices whose policy has no measured_boot section exchange as before.
 */
#ifndef TETHER_FLEET_EXCHANGE_MEASURED_BOOT_H
#define TETHER_FLEET_EXCHANGE_MEASURED_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <tss2/tss2_tpm2_types.h>

#include "store.h"
#include "tether/error.h"
#include "tether/fleet_policy.h"
#include "tether/measured_boot.h"
#include "token_form.h"
#include "token_issuer.h"

/* The PCRs of sel's SHA-256 bank as a mask (bit i: PCR i). */
uint32_t tether_exchange_pcr_mask(const TPML_PCR_SELECTION *sel);

/* The SHA-256 selection of the PCRs of mask, as the agent quotes it. */
void tether_exchange_pcr_selection(uint32_t mask, TPML_PCR_SELECTION *sel);

/* "sha256:0,1,..." (the challenge's pcr_selection) for mask, into out
 * (out_size bytes: 8 + 3 * 24 suffice). */
TETHER_MUST_CHECK tether_status_t tether_exchange_pcr_selection_text(uint32_t mask, char *out,
                                                                     size_t out_size);

/* Adds the challenge's "pcr_selection" to answer: the fleet's configured
 * text as it is, or with doc's measured boot the union of the fleet's
 * selection with the policy's pcr_mask, and then the "measured_boot"
 * member with the hashes of the logs the store holds for device_id (""
 * for none). TETHER_ERR_STORE, TETHER_ERR_NO_MEMORY: the fleet's fault. */
TETHER_MUST_CHECK tether_status_t tether_exchange_measured_boot_challenge(
    tether_store_t *store, const char *device_id, const tether_policy_document_t *doc,
    const tether_token_policy_t *fleet, cJSON *answer);

/* The two logs of one exchange, resolved from the form and the store. */
typedef struct tether_exchange_eventlog {
    uint8_t sha256[32];
    uint8_t *bytes; /* heap; NULL for the empty log */
    size_t len;
    bool sent;      /* its bytes came in this request (kept once accepted) */
} tether_exchange_eventlog_t;

typedef struct tether_exchange_eventlogs {
    tether_exchange_eventlog_t platform;
    tether_exchange_eventlog_t tether;
} tether_exchange_eventlogs_t;

/* Why resolving failed: the device's (a request to answer 400) or the
 * fleet's (500). */
typedef enum tether_exchange_eventlogs_fault {
    TETHER_EXCHANGE_EVENTLOGS_OK = 0,
    TETHER_EXCHANGE_EVENTLOGS_MALFORMED, /* bytes that do not decode or hash to their hash */
    TETHER_EXCHANGE_EVENTLOGS_UNKNOWN,   /* no hash sent, or one the store does not hold */
    TETHER_EXCHANGE_EVENTLOGS_SERVER,    /* the store or memory failed: rc says which */
} tether_exchange_eventlogs_fault_t;

/* Resolves the form's logs for device_id into *logs (zeroed first; free it
 * with tether_exchange_eventlogs_free, also on error): bytes sent are
 * decoded and must hash to their hash; a hash alone must be the empty
 * log's or the one the store holds. *fault says whose fault a failure is,
 * why (a sentence naming no value) what it was. */
tether_status_t tether_exchange_eventlogs_resolve(tether_store_t *store, const char *device_id,
                                                  const tether_token_form_t *form,
                                                  tether_exchange_eventlogs_t *logs,
                                                  tether_exchange_eventlogs_fault_t *fault,
                                                  char *why, size_t why_size);

/* Keeps the logs whose bytes came (after the exchange was accepted). */
TETHER_MUST_CHECK tether_status_t tether_exchange_eventlogs_keep(
    tether_store_t *store, const char *device_id, const tether_exchange_eventlogs_t *logs,
    int64_t now);

void tether_exchange_eventlogs_free(tether_exchange_eventlogs_t *logs);

/* After a refusal eventlog_replay_mismatch of logs of which at least one
 * came as bytes: names in *refusal the first event that differs from the
 * logs the store holds for the device (tether_measured_boot_name_change).
 * Does nothing when none came as bytes (the held logs are the ones
 * replayed), the store holds none, or none differs. */
void tether_exchange_measured_boot_name_change(tether_store_t *store, const char *device_id,
                                               const tether_exchange_eventlogs_t *logs,
                                               tether_measured_boot_refusal_t *refusal);

/* The details of a measured_boot_refused alert: {"code", "text", "policy",
 * "policy_version", and when named "log", "pcr", and for an event "event",
 * "type", "digest"}. Heap (cJSON_free), NULL without memory. */
char *tether_exchange_measured_boot_alert(const tether_measured_boot_refusal_t *refusal,
                                          const char *policy, int64_t policy_version);

#endif
