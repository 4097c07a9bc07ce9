/*
 * The TCG PC Client firmware event log (the binary format of
 * /sys/kernel/security/tpm0/binary_bios_measurements): a strict, bounded
 * parser, the decoded fields a boot policy looks at, and the replay of the
 * log into PCR values per bank.
 *
 * Two formats (TCG PC Client Platform Firmware Profile, "PFP", section 10):
 * - crypto-agile: a first TCG_PCR_EVENT (SHA-1 layout) of type EV_NO_ACTION
 *   holding the Spec ID event "Spec ID Event03" (TCG_EfiSpecIDEvent), which
 *   declares every digest algorithm and its size; then TCG_PCR_EVENT2
 *   events, each with a TPML_DIGEST_VALUES of declared algorithms;
 * - SHA-1 only (TCG 1.2 era): TCG_PCR_EVENT events throughout.
 *
 * The log is untrusted input (it comes from the device and is only as good
 * as the quote its replay is checked against): every length is checked
 * before use and every count is bounded by the constants below.
 *
 * Life of a log: tether_eventlog_init (cannot fail), tether_eventlog_parse
 * (can; the log must be empty), tether_eventlog_free (accepts NULL). The
 * log owns a copy of the bytes it parsed; every pointer in its events points
 * into that copy or into the log's own text, and lives until
 * tether_eventlog_free.
 */
#ifndef TETHER_EVENTLOG_H
#define TETHER_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/crypto.h"
#include "tether/error.h"

/* Largest log parsed. PFP asks firmware for a log area of at least 64 KiB;
 * real logs run from a few KiB to some hundred KiB (grub measuring each
 * command). 1 MiB leaves room for those and bounds what one device can make
 * the fleet hold per request. */
#define TETHER_EVENTLOG_MAX_SIZE (1024u * 1024u)

/* Most events in one log: real logs hold tens to a few thousand events; the
 * bound caps the event table (about 300 bytes an event). */
#define TETHER_EVENTLOG_MAX_EVENTS 8192u

/* Largest event data: the biggest real events are UEFI variables (dbx is
 * some 15 to 30 KiB today, db and KEK with certificates a few KiB); 256 KiB
 * leaves a tenfold margin. */
#define TETHER_EVENTLOG_MAX_EVENT_DATA (256u * 1024u)

/* Most digest algorithms a Spec ID may declare and an event may carry: the
 * TPM's hash algorithms (SHA-1, SHA-256, SHA-384, SHA-512, SM3-256, SHA3-256,
 * SHA3-384, SHA3-512) are eight. */
#define TETHER_EVENTLOG_MAX_ALGORITHMS 8u

/* Largest digest size a Spec ID may declare (SHA-512, SHA3-512). */
#define TETHER_EVENTLOG_MAX_DIGEST_SIZE 64u

/* PCRs of a PC Client TPM (PC Client Platform TPM Profile). */
#define TETHER_EVENTLOG_PCR_COUNT 24u

/* Longest UEFI variable name, in UTF-16 code units: real names (SecureBoot,
 * Boot0001, MokListTrusted, dbx) are a few dozen at most. */
#define TETHER_EVENTLOG_VARIABLE_NAME_MAX 256u

/* TPM_ALG_ID values (TPM2 Part 2, section 6.3) of the digest algorithms. */
#define TETHER_TPM_ALG_SHA1 0x0004u
#define TETHER_TPM_ALG_SHA256 0x000Bu
#define TETHER_TPM_ALG_SHA384 0x000Cu
#define TETHER_TPM_ALG_SHA512 0x000Du
#define TETHER_TPM_ALG_SM3_256 0x0012u
#define TETHER_TPM_ALG_SHA3_256 0x0027u
#define TETHER_TPM_ALG_SHA3_384 0x0028u
#define TETHER_TPM_ALG_SHA3_512 0x0029u

/* Event types (PFP section 10.4.1) that the parser decodes or names. */
#define TETHER_EV_PREBOOT_CERT 0x00000000u
#define TETHER_EV_POST_CODE 0x00000001u
#define TETHER_EV_UNUSED 0x00000002u
#define TETHER_EV_NO_ACTION 0x00000003u
#define TETHER_EV_SEPARATOR 0x00000004u
#define TETHER_EV_ACTION 0x00000005u
#define TETHER_EV_EVENT_TAG 0x00000006u
#define TETHER_EV_S_CRTM_CONTENTS 0x00000007u
#define TETHER_EV_S_CRTM_VERSION 0x00000008u
#define TETHER_EV_CPU_MICROCODE 0x00000009u
#define TETHER_EV_PLATFORM_CONFIG_FLAGS 0x0000000Au
#define TETHER_EV_TABLE_OF_DEVICES 0x0000000Bu
#define TETHER_EV_COMPACT_HASH 0x0000000Cu
#define TETHER_EV_IPL 0x0000000Du
#define TETHER_EV_IPL_PARTITION_DATA 0x0000000Eu
#define TETHER_EV_NONHOST_CODE 0x0000000Fu
#define TETHER_EV_NONHOST_CONFIG 0x00000010u
#define TETHER_EV_NONHOST_INFO 0x00000011u
#define TETHER_EV_OMIT_BOOT_DEVICE_EVENTS 0x00000012u
#define TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u
#define TETHER_EV_EFI_VARIABLE_BOOT 0x80000002u
#define TETHER_EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u
#define TETHER_EV_EFI_BOOT_SERVICES_DRIVER 0x80000004u
#define TETHER_EV_EFI_RUNTIME_SERVICES_DRIVER 0x80000005u
#define TETHER_EV_EFI_GPT_EVENT 0x80000006u
#define TETHER_EV_EFI_ACTION 0x80000007u
#define TETHER_EV_EFI_PLATFORM_FIRMWARE_BLOB 0x80000008u
#define TETHER_EV_EFI_HANDOFF_TABLES 0x80000009u
#define TETHER_EV_EFI_PLATFORM_FIRMWARE_BLOB2 0x8000000Au
#define TETHER_EV_EFI_HANDOFF_TABLES2 0x8000000Bu
#define TETHER_EV_EFI_VARIABLE_BOOT2 0x8000000Cu
#define TETHER_EV_EFI_HCRTM_EVENT 0x80000010u
#define TETHER_EV_EFI_VARIABLE_AUTHORITY 0x800000E0u
#define TETHER_EV_EFI_SPDM_FIRMWARE_BLOB 0x800000E1u
#define TETHER_EV_EFI_SPDM_FIRMWARE_CONFIG 0x800000E2u

/* The separator values (PFP section 10.4.1, EV_SEPARATOR): 0 ends the
 * pre-OS measurements of a PCR normally; 1 says firmware met an error
 * (0xFFFFFFFF in the TCG 1.2 BIOS specification). */
#define TETHER_EVENTLOG_SEPARATOR_NORMAL 0x00000000u
#define TETHER_EVENTLOG_SEPARATOR_ERROR 0x00000001u
#define TETHER_EVENTLOG_SEPARATOR_ERROR_TCG12 0xFFFFFFFFu

/*
 * Why a log was refused. The names (tether_firmware_error_name) are part of
 * the API: fleet refusals and scripts match on them, so they never change
 * meaning; new codes are only appended.
 */
typedef enum tether_firmware_error {
    TETHER_FIRMWARE_OK = 0,            /* "ok" */
    TETHER_FIRMWARE_TRUNCATED,         /* "truncated": a field runs past the end */
    TETHER_FIRMWARE_LOG_TOO_LARGE,     /* "log_too_large": over TETHER_EVENTLOG_MAX_SIZE */
    TETHER_FIRMWARE_TOO_MANY_EVENTS,   /* "too_many_events": over TETHER_EVENTLOG_MAX_EVENTS */
    TETHER_FIRMWARE_EVENT_TOO_LARGE,   /* "event_too_large": over ..._MAX_EVENT_DATA */
    TETHER_FIRMWARE_BAD_SPEC_ID,       /* "bad_spec_id": malformed or misplaced Spec ID event */
    TETHER_FIRMWARE_BAD_ALGORITHM,     /* "bad_algorithm": undeclared, repeated, or with a
                                          size other than the algorithm's */
    TETHER_FIRMWARE_BAD_DIGEST_COUNT,  /* "bad_digest_count": none, or more than declared */
    TETHER_FIRMWARE_BAD_PCR,           /* "bad_pcr": index of no PC Client PCR */
    TETHER_FIRMWARE_BAD_EVENT_DATA,    /* "bad_event_data": a decoded type's data does not parse */
    TETHER_FIRMWARE_BAD_LOCALITY,      /* "bad_startup_locality": repeated, late, or not 0, 3, 4 */
    TETHER_FIRMWARE_EMPTY,             /* "empty_log": no event at all */
    TETHER_FIRMWARE_BAD_RECORD,        /* "bad_record": a CEL record's field missing, out of
                                          order, of the wrong size, or numbered out of turn */
    TETHER_FIRMWARE_DIGEST_MISMATCH,   /* "digest_mismatch": a CEL record's digest is not the
                                          hash of its content */
    TETHER_FIRMWARE_ERROR_COUNT
} tether_firmware_error_t;

/* The stable name of an error ("truncated", ...); "internal_error" for a
 * value out of range. Never NULL. */
const char *tether_firmware_error_name(tether_firmware_error_t error);

/* Where and why parsing stopped. text is a sentence for people. */
typedef struct tether_eventlog_failure {
    tether_firmware_error_t error;
    size_t offset;        /* byte offset in the log of the offending event */
    size_t event;         /* its number (0 is the first event) */
    char text[192];
} tether_eventlog_failure_t;

typedef enum tether_eventlog_format {
    TETHER_EVENTLOG_FORMAT_SHA1,         /* TCG_PCR_EVENT only */
    TETHER_EVENTLOG_FORMAT_CRYPTO_AGILE, /* Spec ID event, then TCG_PCR_EVENT2 */
} tether_eventlog_format_t;

typedef struct tether_eventlog_algorithm {
    uint16_t id;   /* TPM_ALG_ID */
    uint16_t size; /* digest size in bytes */
} tether_eventlog_algorithm_t;

typedef struct tether_eventlog_digest {
    uint16_t algorithm;   /* TPM_ALG_ID */
    uint16_t size;
    const uint8_t *value; /* size bytes, in the log's copy */
} tether_eventlog_digest_t;

/* What the parser decoded of an event's data. */
typedef enum tether_eventlog_decoded {
    TETHER_EVENTLOG_DECODED_NONE,             /* raw data only */
    TETHER_EVENTLOG_DECODED_SPEC_ID,          /* the log's Spec ID (see the log) */
    TETHER_EVENTLOG_DECODED_STARTUP_LOCALITY, /* EV_NO_ACTION "StartupLocality" */
    TETHER_EVENTLOG_DECODED_TEXT,             /* ASCII or UTF-16 text, as UTF-8 */
    TETHER_EVENTLOG_DECODED_FIRMWARE_BLOB,    /* UEFI_PLATFORM_FIRMWARE_BLOB */
    TETHER_EVENTLOG_DECODED_VARIABLE,         /* UEFI_VARIABLE_DATA */
    TETHER_EVENTLOG_DECODED_IMAGE,            /* UEFI_IMAGE_LOAD_EVENT */
    TETHER_EVENTLOG_DECODED_GPT,              /* UEFI_GPT_DATA */
    TETHER_EVENTLOG_DECODED_SEPARATOR,        /* EV_SEPARATOR's value */
} tether_eventlog_decoded_t;

/* SecureBoot's value in an EFI_GLOBAL_VARIABLE "SecureBoot" event. */
typedef enum tether_eventlog_secure_boot {
    TETHER_EVENTLOG_SECURE_BOOT_NOT_THIS, /* the event is another variable */
    TETHER_EVENTLOG_SECURE_BOOT_ABSENT,   /* measured empty: the variable is not set */
    TETHER_EVENTLOG_SECURE_BOOT_DISABLED, /* value 0 */
    TETHER_EVENTLOG_SECURE_BOOT_ENABLED,  /* value 1 */
} tether_eventlog_secure_boot_t;

typedef struct tether_eventlog_event {
    size_t number;  /* 0 for the first event (the Spec ID event, if any) */
    size_t offset;  /* of the event's first byte in the log */
    uint32_t pcr;
    uint32_t type;
    uint32_t digest_count;
    tether_eventlog_digest_t digests[TETHER_EVENTLOG_MAX_ALGORITHMS];
    const uint8_t *data; /* data_size bytes, in the log's copy */
    uint32_t data_size;
    tether_eventlog_decoded_t decoded;
    union {
        uint8_t startup_locality;
        const char *text; /* NUL-terminated UTF-8, in the log's text */
        struct {
            uint64_t base, length;
        } firmware_blob;
        struct {
            const uint8_t *guid;  /* 16 bytes, EFI_GUID as stored (mixed-endian) */
            const char *name;     /* NUL-terminated UTF-8, in the log's text */
            const uint8_t *value; /* value_size bytes, in the log's copy */
            uint64_t value_size;
            tether_eventlog_secure_boot_t secure_boot;
        } variable;
        struct {
            uint64_t location, length, link_time_address;
            const uint8_t *device_path; /* raw EFI_DEVICE_PATH, in the log's copy */
            uint64_t device_path_size;
        } image;
        struct {
            const uint8_t *disk_guid; /* 16 bytes */
            uint64_t partitions;
            uint32_t entry_size;
        } gpt;
        struct {
            uint32_t value;
            bool is_error;
        } separator;
    } fields;
} tether_eventlog_event_t;

typedef struct tether_eventlog {
    uint8_t *bytes; /* the log's copy, owned */
    size_t size;
    char *text;     /* decoded names and texts, owned */
    tether_eventlog_format_t format;
    /* The Spec ID event's fields (crypto-agile); for the SHA-1 format, one
     * algorithm (SHA-1, 20) and zeros. */
    uint32_t platform_class;
    uint8_t spec_version_major, spec_version_minor, spec_errata, uintn_size;
    uint32_t algorithm_count;
    tether_eventlog_algorithm_t algorithms[TETHER_EVENTLOG_MAX_ALGORITHMS];
    tether_eventlog_event_t *events; /* event_count events, owned */
    size_t event_count;
} tether_eventlog_t;

/* Makes log empty. */
void tether_eventlog_init(tether_eventlog_t *log);

/* Releases everything log holds and leaves it empty. Accepts NULL. */
void tether_eventlog_free(tether_eventlog_t *log);

/* Parses data[0..len) (copied; the caller keeps its buffer) into the empty
 * log. TETHER_ERR_TOO_LARGE over a bound, TETHER_ERR_PARSE for a malformed
 * log, TETHER_ERR_INVALID_ARGUMENT when log is not empty; failure (may be
 * NULL) then says which event and why. On error log stays empty. */
TETHER_MUST_CHECK tether_status_t tether_eventlog_parse(tether_eventlog_t *log, const uint8_t *data,
                                                        size_t len,
                                                        tether_eventlog_failure_t *failure);

/* Reads a log file of at most TETHER_EVENTLOG_MAX_SIZE bytes into a heap
 * buffer the caller frees (tether_file_read_to_end: to the end rather than
 * to the size the file reports, which securityfs gives as 0).
 * TETHER_ERR_NOT_FOUND, TETHER_ERR_TOO_LARGE, TETHER_ERR_IO. */
TETHER_MUST_CHECK tether_status_t tether_eventlog_read_file(const char *path, uint8_t **data,
                                                            size_t *len);

/* Names for people and JSON: "EV_SEPARATOR" (NULL for a type no
 * specification names), "sha256" (NULL for an algorithm the parser does not
 * know). */
const char *tether_eventlog_type_name(uint32_t type);
const char *tether_eventlog_algorithm_name(uint16_t algorithm);

/* ---- replay ---------------------------------------------------------- */

/* Banks replayed: the declared algorithms lib hashes (SHA-1, SHA-256,
 * SHA-384). */
#define TETHER_EVENTLOG_MAX_BANKS 3u

typedef struct tether_eventlog_bank {
    uint16_t algorithm; /* TPM_ALG_ID */
    tether_hash_alg_t hash;
    size_t size;
    uint32_t extended;  /* bit i set: PCR i was extended at least once */
    /* Extending events that carried no digest of this bank: when not 0,
     * the bank's values are not what the TPM holds and must not be
     * compared with a quote. */
    size_t events_without_digest;
    uint8_t pcrs[TETHER_EVENTLOG_PCR_COUNT][TETHER_HASH_MAX_SIZE];
} tether_eventlog_bank_t;

typedef struct tether_eventlog_pcrs {
    size_t bank_count;
    tether_eventlog_bank_t banks[TETHER_EVENTLOG_MAX_BANKS];
    uint8_t startup_locality; /* PCR 0's starting locality (0 without the event) */
} tether_eventlog_pcrs_t;

/* Replays log, as tether_eventlog_parse filled it (the PCR indexes and
 * digest sizes are the ones it checked), into *pcrs (zeroed first): every
 * PCR starts as the TPM sets it at TPM2_Startup (zeros; PCRs 17 to 22 all
 * ones; PCR 0's last byte the StartupLocality), then each event but
 * EV_NO_ACTION extends its PCR in every bank with its digest:
 * PCR = H(PCR || digest). */
TETHER_MUST_CHECK tether_status_t tether_eventlog_replay(const tether_eventlog_t *log,
                                                         tether_eventlog_pcrs_t *pcrs);

/* ---- JSON ------------------------------------------------------------ */

/* The log, its events with their decoded fields, and (when pcrs is not
 * NULL) the replayed PCRs, as a new cJSON object the caller deletes:
 * {"format", "spec_id", "events": [...], "replay": {"sha256":
 * {"complete": true, "pcrs": {"0": "hex", ...}}, ...}}. */
TETHER_MUST_CHECK tether_status_t tether_eventlog_to_json(const tether_eventlog_t *log,
                                                          const tether_eventlog_pcrs_t *pcrs,
                                                          cJSON **out);

#endif
