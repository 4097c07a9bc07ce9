/*
 * tether's own measurement log, in the TCG Canonical Event Log format
 * (CEL, TLV encoding): the writer of one record, a strict, bounded parser,
 * and the replay onto the PCR values per bank.
 *
 * A CEL-TLV is a type (one byte), a length (four bytes, big-endian) and the
 * value. A record is four TLVs in this order (TCG CEL, TPMS_CEL_EVENT):
 *   recnum  (type 0): UINT64, big-endian; 0 for the first record, then +1;
 *   pcr     (type 1): UINT32, big-endian; TETHER_CEL_PCR;
 *   digests (type 3): one TLV per bank, its type the TPM_ALG_ID, its value
 *                     the digest extended into the bank;
 *   content (type TETHER_CEL_CONTENT_TETHER): tether's record, three TLVs:
 *       name (0): the file's name in the config, [A-Za-z0-9._-]{1,64};
 *       path (1): its absolute path, printable ASCII, at most 4095 bytes;
 *       file digests (2): one TLV per bank as in digests, the hash of the
 *                     file's bytes.
 * The digest extended into each bank is the hash, with that bank's
 * algorithm, of the whole content TLV (type, length and value), as CEL's
 * IMA-TLV content does: the PCR then covers the name and path as well as
 * the file's digest, so a log cannot rename what was measured.
 *
 * Every record carries the same banks (the TPM's allocated ones, each of
 * SHA-1, SHA-256 or SHA-384); the parser refuses anything else, checks
 * every record's digests against its content, and refuses a byte after the
 * last record.
 *
 * Life of a log: tether_cel_init (cannot fail), tether_cel_parse (can; the
 * log must be empty), tether_cel_free (accepts NULL). The log owns a copy of
 * the bytes and of the names and paths; its pointers live until
 * tether_cel_free.
 */
#ifndef TETHER_CEL_H
#define TETHER_CEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/crypto.h"
#include "tether/error.h"
#include "tether/eventlog.h"

/* The PCR tether extends (firmware/README.md says why this one). */
#define TETHER_CEL_PCR 13u

/* tether's content type. TCG CEL assigns 4 (CEL management) to 9; tether's
 * own record takes a value far from those. */
#define TETHER_CEL_CONTENT_TETHER 0x80u

/* CEL top-level TLV types (TCG CEL, CEL-TLV encoding). */
#define TETHER_CEL_TYPE_RECNUM 0u
#define TETHER_CEL_TYPE_PCR 1u
#define TETHER_CEL_TYPE_DIGESTS 3u

/* tether's content TLV types. */
#define TETHER_CEL_FIELD_NAME 0u
#define TETHER_CEL_FIELD_PATH 1u
#define TETHER_CEL_FIELD_FILE_DIGESTS 2u

/* Most records in one log: a device measures a handful of files a boot. */
#define TETHER_CEL_MAX_RECORDS 64u
/* Longest name (bytes) and path (bytes, PATH_MAX less its NUL). */
#define TETHER_CEL_NAME_MAX 64u
#define TETHER_CEL_PATH_MAX 4095u
/* Banks a record carries: the ones lib hashes (SHA-1, SHA-256, SHA-384). */
#define TETHER_CEL_MAX_BANKS 3u
/* Largest record: four TLV headers and their fixed values, the content with
 * the longest name and path, and two digest lists of three banks. */
#define TETHER_CEL_TLV_HEADER 5u
#define TETHER_CEL_RECORD_MAX                                                           \
    (4u * TETHER_CEL_TLV_HEADER + 8u + 4u +                                           \
     2u * TETHER_CEL_MAX_BANKS * (TETHER_CEL_TLV_HEADER + TETHER_HASH_MAX_SIZE) +     \
     4u * TETHER_CEL_TLV_HEADER + TETHER_CEL_NAME_MAX + TETHER_CEL_PATH_MAX)
/* Largest log: every record at its largest (about 290 KiB). */
#define TETHER_CEL_MAX_SIZE (TETHER_CEL_MAX_RECORDS * TETHER_CEL_RECORD_MAX)

typedef struct tether_cel_record {
    uint64_t recnum;
    size_t offset;     /* of the record's first byte in the log */
    size_t end;        /* of the byte after the record */
    uint32_t pcr;
    uint32_t bank_count;
    uint16_t algorithms[TETHER_CEL_MAX_BANKS];                 /* TPM_ALG_ID, in order */
    const uint8_t *digests[TETHER_CEL_MAX_BANKS];              /* extended; in the log's copy */
    const uint8_t *file_digests[TETHER_CEL_MAX_BANKS];         /* of the file; in the copy */
    const char *name;  /* NUL-terminated, in the log's text */
    const char *path;  /* NUL-terminated, in the log's text */
} tether_cel_record_t;

typedef struct tether_cel {
    uint8_t *bytes; /* the log's copy, owned */
    size_t size;
    char *text;     /* the names and paths, owned */
    tether_cel_record_t *records; /* record_count records, owned */
    size_t record_count;
} tether_cel_t;

/* What one record says: a file's name, path and digest per bank. */
typedef struct tether_cel_measurement {
    const char *name; /* borrowed for the call */
    const char *path; /* borrowed for the call */
    uint32_t bank_count;
    uint16_t algorithms[TETHER_CEL_MAX_BANKS];
    uint8_t file_digests[TETHER_CEL_MAX_BANKS][TETHER_HASH_MAX_SIZE];
} tether_cel_measurement_t;

/* The lib hash of a TPM algorithm; false for one lib does not compute. */
bool tether_cel_hash_of(uint16_t algorithm, tether_hash_alg_t *hash);

/* Whether a name and a path are ones a record may hold (the rules above). */
TETHER_MUST_CHECK bool tether_cel_name_valid(const char *name);
TETHER_MUST_CHECK bool tether_cel_path_valid(const char *path);

/* Encodes record recnum of m into out (out_size bytes; TETHER_CEL_RECORD_MAX
 * is always enough), its length in *len, and the digest each bank is to be
 * extended with in event_digests[i] (m->algorithms[i]'s size).
 * TETHER_ERR_INVALID_ARGUMENT for a name, path or bank a record may not
 * hold. */
TETHER_MUST_CHECK tether_status_t tether_cel_encode(uint64_t recnum,
                                                    const tether_cel_measurement_t *m,
                                                    uint8_t *out, size_t out_size, size_t *len,
                                                    uint8_t event_digests[][TETHER_HASH_MAX_SIZE]);

void tether_cel_init(tether_cel_t *log);
void tether_cel_free(tether_cel_t *log);

/* Parses data[0..len) (copied) into the empty log. An empty input is a log
 * of no record. TETHER_ERR_TOO_LARGE over a bound, TETHER_ERR_PARSE for a
 * malformed log (failure, which may be NULL, then names the record, its
 * offset and the reason; a record cut short is TETHER_FIRMWARE_TRUNCATED at
 * that record's offset), TETHER_ERR_INVALID_ARGUMENT when log is not empty.
 * On error log stays empty. */
TETHER_MUST_CHECK tether_status_t tether_cel_parse(tether_cel_t *log, const uint8_t *data,
                                                   size_t len, tether_eventlog_failure_t *failure);

/* Whether data starts as tether's CEL does (a recnum TLV of 8 bytes then a
 * PCR TLV of 4): how a reader tells it from a firmware event log. */
bool tether_cel_recognise(const uint8_t *data, size_t len);

/* Replays the first count records of log (count <= record_count) into
 * *pcrs (zeroed first): one bank per algorithm the records carry, every PCR
 * starting at zeros, each record extending its PCR: PCR = H(PCR || digest).
 * With no record, the banks are those of algorithms (bank_count of them),
 * so an empty log still says what a fresh PCR holds. */
TETHER_MUST_CHECK tether_status_t tether_cel_replay(const tether_cel_t *log, size_t count,
                                                    const uint16_t *algorithms,
                                                    size_t bank_count,
                                                    tether_eventlog_pcrs_t *pcrs);

/* Where the log stands against the TPM's PCR, record by record. tether
 * writes a record (and syncs it) before it extends the PCR, so a run that
 * stops between the two leaves exactly one record the PCR lacks; the PCR
 * itself is the mark that a record is done, since a mark written after the
 * extend could be lost the same way. */
typedef enum tether_cel_standing {
    TETHER_CEL_IN_STEP,       /* the whole log replays to the PCR */
    TETHER_CEL_LAST_PENDING,  /* all but the last record do: it was written, never extended */
    TETHER_CEL_EARLIER_BOOT,  /* two records or more and the PCR at zeros: the PCR was reset
                                 (a reboot) since the log was written */
    TETHER_CEL_OUT_OF_STEP,   /* no interrupted run explains it: something else extended
                                 the PCR, or the log is not this boot's */
} tether_cel_standing_t;

/* Compares the replay of log with tpm, the TPM's values of TETHER_CEL_PCR
 * in the same banks, in the same order (bank_count and algorithm of each,
 * as tether_cel_replay fills them). *covered gets the records the PCR
 * holds (record_count, record_count - 1, or 0 for the last two
 * standings). TETHER_ERR_INVALID_ARGUMENT when tpm's banks are not the
 * log's. */
TETHER_MUST_CHECK tether_status_t tether_cel_assess(const tether_cel_t *log,
                                                    const tether_eventlog_pcrs_t *tpm,
                                                    tether_cel_standing_t *standing,
                                                    size_t *covered);

/* "in_step", "last_pending", "earlier_boot", "out_of_step". */
const char *tether_cel_standing_name(tether_cel_standing_t standing);

/* The log and (pcrs not NULL) its replay as a new cJSON object the caller
 * deletes: {"format": "tcg_cel_tlv", "records": [{"recnum", "pcr",
 * "content_type": "tether", "name", "path", "digests": [...],
 * "file_digests": [...]}], "replay": as tether_eventlog_to_json's}. */
TETHER_MUST_CHECK tether_status_t tether_cel_to_json(const tether_cel_t *log,
                                                     const tether_eventlog_pcrs_t *pcrs,
                                                     cJSON **out);

#endif
