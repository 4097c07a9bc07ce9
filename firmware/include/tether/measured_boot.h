/*
 * Measured boot at the fleet: a device's two event logs (the platform's TCG
 * PC Client log and tether's own CEL) checked against the PCR values its
 * quote proves, then event by event against its policy's reference values.
 * Pure: no TPM, no sockets, no store (fleetd and tetherctl link it).
 *
 * fleetd, per exchange of a device whose policy has a measured_boot section:
 *   1. the challenge asks for a quote over at least reference.pcr_mask
 *      (SHA-256 bank), and the agent sends both logs (or their hashes, when
 *      fleetd already holds them);
 *   2. tether_measured_boot_check(): parses both logs, replays them in the
 *      SHA-256 bank, requires the digest of the quoted PCRs (ascending
 *      order, as TPM2_Quote computes pcrDigest) to equal the quote's, then
 *      checks each event against the reference values;
 *   3. a refusal names its code and the first offending event, changes no
 *      device state, and is written as an alert.
 */
#ifndef TETHER_MEASURED_BOOT_H
#define TETHER_MEASURED_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

/* Reference values: what a policy's "measured_boot" section says. Filled by
 * the policy document's reader (provisioning/common fleet_policy.h) and by
 * tether_measured_boot_reference_from_logs (tetherctl policy create
 * --from-eventlog). The lists and their bounds are the firmware part's to
 * define below pcr_mask. */
typedef struct tether_measured_boot_reference {
    /* PCRs the quote must cover and the logs must replay to exactly: bit i
     * is PCR i of the SHA-256 bank. Never 0 in a valid reference. */
    uint32_t pcr_mask;
} tether_measured_boot_reference_t;

/* What the quote proves about PCRs, as fleetd verified it. */
typedef struct tether_measured_boot_quote {
    uint32_t pcr_mask;     /* the quote's selection in the SHA-256 bank */
    uint8_t pcr_digest[32]; /* its pcrDigest: SHA-256 over those PCRs in ascending order */
} tether_measured_boot_quote_t;

#define TETHER_MEASURED_BOOT_TEXT_MAX 192

/* Why a device's logs were refused. code is a tether_error code of the
 * exchange (provisioning/common's vocabulary): "eventlog_malformed",
 * "eventlog_replay_mismatch", "measurement_not_allowed", ... */
typedef struct tether_measured_boot_refusal {
    const char *code;       /* static; NULL when accepted */
    bool has_event;         /* the fields below name an event */
    const char *log;        /* "platform" or "tether" (static) */
    uint32_t pcr;
    size_t event;           /* its number in its log (0 is the first) */
    uint32_t type;          /* EV_* of a platform event; 0 for tether's log */
    char digest_hex[65];    /* its SHA-256 digest, lowercase hex; "" if none */
    char text[TETHER_MEASURED_BOOT_TEXT_MAX]; /* a sentence for people and the alert */
} tether_measured_boot_refusal_t;

/* Checks the logs (platform_log may be empty when the reference asks for
 * none of its PCRs; tether_log may be empty when no file is measured)
 * against quote and ref. TETHER_OK with refusal->code NULL: accepted.
 * TETHER_ERR_VERIFY with *refusal filled: refused. TETHER_ERR_NO_MEMORY,
 * TETHER_ERR_INVALID_ARGUMENT: not the device's fault. */
TETHER_MUST_CHECK tether_status_t tether_measured_boot_check(
    const tether_measured_boot_reference_t *ref, const uint8_t *platform_log,
    size_t platform_len, const uint8_t *tether_log, size_t tether_len,
    const tether_measured_boot_quote_t *quote, tether_measured_boot_refusal_t *refusal);

#endif
