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

/* The refusal codes (tether_measured_boot_refusal_t.code): "tether_error"
 * codes of the exchange, which provisioning/common's vocabulary names
 * TETHER_FLEET_EXCHANGE_* for fleetd and tetherctl.
 * - a log that does not parse, or whose SHA-256 digests are missing: */
#define TETHER_MEASURED_BOOT_EVENTLOG_MALFORMED "eventlog_malformed"
/* - the logs' replay is not what the quote proves, or the quote does not
 *   cover the reference's PCRs: */
#define TETHER_MEASURED_BOOT_REPLAY_MISMATCH "eventlog_replay_mismatch"
/* - an event whose digest no allow list holds (a boot application, an IPL
 *   event, a file of tether's), or a platform event in tether's PCR: */
#define TETHER_MEASURED_BOOT_MEASUREMENT_NOT_ALLOWED "measurement_not_allowed"
/* - a file the reference lists that tether's log does not measure: */
#define TETHER_MEASURED_BOOT_MEASUREMENT_MISSING "measurement_missing"
/* - SecureBoot not measured enabled when the reference requires it: */
#define TETHER_MEASURED_BOOT_SECURE_BOOT_DISABLED "secure_boot_disabled"
/* - PK, KEK, db or dbx measured with another digest, or not measured: */
#define TETHER_MEASURED_BOOT_VARIABLE_NOT_ALLOWED "variable_not_allowed"
/* - a PCR the reference pins replays to another value: */
#define TETHER_MEASURED_BOOT_PCR_VALUE_NOT_ALLOWED "pcr_value_not_allowed"

/* SHA-256: the bank a reference speaks of. */
#define TETHER_MEASURED_BOOT_DIGEST_SIZE 32u

/* Bounds of a reference. Boot applications and drivers (shim, grub,
 * systemd-boot, option ROM drivers): a handful a boot; 64 leaves room for
 * several versions during rollouts. IPL events: grub logs one per command
 * and per file it reads (real logs: 1 to 73 distinct digests), so 256 holds
 * two or three boot configurations. Files: tether-agent measure's bound
 * (16), each with up to 8 versions allowed at once. */
#define TETHER_MEASURED_BOOT_MAX_APPLICATIONS 64u
#define TETHER_MEASURED_BOOT_MAX_IPL 256u
#define TETHER_MEASURED_BOOT_MAX_FILES 16u
#define TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS 8u
#define TETHER_MEASURED_BOOT_FILE_NAME_MAX 64u /* TETHER_CEL_NAME_MAX */
#define TETHER_MEASURED_BOOT_PCR_COUNT 24u    /* TETHER_EVENTLOG_PCR_COUNT */

/* The Secure Boot key databases whose EV_EFI_VARIABLE_DRIVER_CONFIG event
 * (PCR 7, PFP section 3.3.4.8) a reference may pin, in document order. */
typedef enum tether_measured_boot_variable {
    TETHER_MEASURED_BOOT_PK = 0,  /* EFI_GLOBAL_VARIABLE "PK" */
    TETHER_MEASURED_BOOT_KEK,     /* EFI_GLOBAL_VARIABLE "KEK" */
    TETHER_MEASURED_BOOT_DB,      /* EFI_IMAGE_SECURITY_DATABASE "db" */
    TETHER_MEASURED_BOOT_DBX,     /* EFI_IMAGE_SECURITY_DATABASE "dbx" */
    TETHER_MEASURED_BOOT_VARIABLE_COUNT
} tether_measured_boot_variable_t;

/* A file tether measures (its name in tether-agent measure's config) and
 * the SHA-256 digests of its bytes allowed, strictly ascending. */
typedef struct tether_measured_boot_file {
    char name[TETHER_MEASURED_BOOT_FILE_NAME_MAX + 1];
    size_t digest_count; /* 1 to TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS */
    uint8_t digests[TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS][TETHER_MEASURED_BOOT_DIGEST_SIZE];
} tether_measured_boot_file_t;

/* Reference values: what a policy's "measured_boot" section says. Filled by
 * the policy document's reader (provisioning/common fleet_policy.h) and by
 * tether_measured_boot_reference_add_logs (tetherctl policy create
 * --from-eventlog). Every digest is SHA-256; every list is strictly
 * ascending (bytewise), which the check relies on to search it. Only events
 * in PCRs of pcr_mask are checked: the quote proves no other. */
typedef struct tether_measured_boot_reference {
    /* PCRs the quote must cover and the logs must replay to exactly: bit i
     * is PCR i of the SHA-256 bank. Never 0 in a valid reference. */
    uint32_t pcr_mask;
    /* PCRs that must hold exactly exact[i] (a subset of pcr_mask). */
    uint32_t exact_mask;
    uint8_t exact[TETHER_MEASURED_BOOT_PCR_COUNT][TETHER_MEASURED_BOOT_DIGEST_SIZE];
    /* SecureBoot measured enabled in PCR 7 (needs PCR 7 in pcr_mask). */
    bool require_secure_boot;
    /* Bit v: variables[v] is the digest the event of variable v must have
     * (needs PCR 7 in pcr_mask). */
    uint32_t variable_mask;
    uint8_t variables[TETHER_MEASURED_BOOT_VARIABLE_COUNT][TETHER_MEASURED_BOOT_DIGEST_SIZE];
    /* Digests allowed for EV_EFI_BOOT_SERVICES_APPLICATION,
     * EV_EFI_BOOT_SERVICES_DRIVER and EV_EFI_RUNTIME_SERVICES_DRIVER
     * events: the PE images' Authenticode digests. */
    size_t application_count;
    uint8_t applications[TETHER_MEASURED_BOOT_MAX_APPLICATIONS][TETHER_MEASURED_BOOT_DIGEST_SIZE];
    /* Digests allowed for EV_IPL and EV_EVENT_TAG events: what boot loaders
     * measure of the kernel, the initrd, the command line and their own
     * commands (grub: PCRs 8 and 9; systemd-boot and -stub: 9 and 12; shim's
     * MOK lists: 14). */
    size_t ipl_count;
    uint8_t ipl[TETHER_MEASURED_BOOT_MAX_IPL][TETHER_MEASURED_BOOT_DIGEST_SIZE];
    /* tether's files (needs PCR 13 in pcr_mask), ascending by name; each
     * must be measured, with one of its digests. */
    size_t file_count;
    tether_measured_boot_file_t files[TETHER_MEASURED_BOOT_MAX_FILES];
} tether_measured_boot_reference_t;

/* "PK", "KEK", "db", "dbx"; NULL outside the enum. */
const char *tether_measured_boot_variable_name(tether_measured_boot_variable_t variable);

/* Whether ref keeps the rules above (bounds, ascending lists, masks within
 * pcr_mask, names CEL admits); why (why_size bytes, may be 0) says what
 * breaks them. */
TETHER_MUST_CHECK bool tether_measured_boot_reference_valid(
    const tether_measured_boot_reference_t *ref, char *why, size_t why_size);

/* Adds digest to the strictly ascending list of *count digests (capacity
 * max) where it belongs; nothing when it is there already.
 * TETHER_ERR_TOO_LARGE when the list is full. */
TETHER_MUST_CHECK tether_status_t tether_measured_boot_digest_add(
    uint8_t (*list)[TETHER_MEASURED_BOOT_DIGEST_SIZE], size_t *count, size_t max,
    const uint8_t digest[TETHER_MEASURED_BOOT_DIGEST_SIZE]);

/* Adds to ref what a golden device's logs say (tetherctl policy create and
 * update --from-eventlog): every PCR they extend to pcr_mask, the digests
 * of its boot applications and IPL events to the allow lists, each file
 * of tether's log with its digest, SecureBoot required when the platform
 * log measures it enabled, and the digests of PK, KEK, db and dbx as the
 * log measures them (replacing ref's: a key database has one value). Either
 * log may be empty (len 0). ref is left unchanged on error:
 * TETHER_ERR_PARSE (a log that does not parse, lacks SHA-256 digests or
 * extends PCR 13 from the platform), TETHER_ERR_TOO_LARGE (a list over its
 * bound), with a sentence in why. */
TETHER_MUST_CHECK tether_status_t tether_measured_boot_reference_add_logs(
    tether_measured_boot_reference_t *ref, const uint8_t *platform_log, size_t platform_len,
    const uint8_t *tether_log, size_t tether_len, char *why, size_t why_size);

/* What the quote proves about PCRs, as fleetd verified it. */
typedef struct tether_measured_boot_quote {
    uint32_t pcr_mask;     /* the quote's selection in the SHA-256 bank */
    uint8_t pcr_digest[32]; /* its pcrDigest: SHA-256 over those PCRs in ascending order */
} tether_measured_boot_quote_t;

#define TETHER_MEASURED_BOOT_TEXT_MAX 192

/* Why a device's logs were refused. code is a tether_error code of the
 * exchange (provisioning/common's vocabulary): "eventlog_malformed",
 * "eventlog_replay_mismatch", "measurement_not_allowed", ... An event is
 * named (has_event) when one is at fault; a refusal about what is missing
 * (a file, SecureBoot, a variable) or a pinned PCR's value names its log
 * and PCR only. */
typedef struct tether_measured_boot_refusal {
    const char *code;       /* static; NULL when accepted */
    bool has_event;         /* the fields below name an event */
    const char *log;        /* "platform" or "tether" (static); NULL when no log is named */
    uint32_t pcr;
    size_t event;           /* its number in its log (0 is the first) */
    uint32_t type;          /* EV_* of a platform event; 0 for tether's log */
    char digest_hex[65];    /* its SHA-256 digest, lowercase hex (of a file of
                               tether's: the file's; of a pinned PCR: its
                               replayed value); "" if none */
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

/* The pcrDigest a TPM that went through both logs would quote over
 * pcr_mask (SHA-256 bank; PCR 13 from tether's log, every other PCR from
 * the platform's, as the check replays them) into digest: what a golden
 * device's or a test's quote is to hold. TETHER_ERR_PARSE, with the reason
 * in why, for logs the check would refuse as eventlog_malformed. */
TETHER_MUST_CHECK tether_status_t tether_measured_boot_quote_digest(
    const uint8_t *platform_log, size_t platform_len, const uint8_t *tether_log,
    size_t tether_len, uint32_t pcr_mask, uint8_t digest[TETHER_MEASURED_BOOT_DIGEST_SIZE],
    char *why, size_t why_size);

/* After a refusal eventlog_replay_mismatch: the quote proves one digest over
 * all its PCRs, so the replay alone cannot say which event is wrong. Given
 * the logs the fleet accepted last for the device (held_*; empty when it
 * holds none), names in *refusal (has_event, log, pcr, event, type,
 * digest) the first event of the logs sent that differs from the held
 * ones in PCR, type or SHA-256 digest, and adds it to refusal->text: the
 * likely culprit. false, *refusal unchanged, when a log does not parse or
 * none differs in the events both hold. */
bool tether_measured_boot_name_change(const uint8_t *held_platform, size_t held_platform_len,
                                      const uint8_t *held_tether, size_t held_tether_len,
                                      const uint8_t *platform_log, size_t platform_len,
                                      const uint8_t *tether_log, size_t tether_len,
                                      tether_measured_boot_refusal_t *refusal);

#endif
