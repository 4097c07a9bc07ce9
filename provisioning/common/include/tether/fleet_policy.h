/*
 * A fleet policy document: what a device on the policy may do and what its
 * use may not cross. fleetd stores it (one row per name and version) and
 * reads it back; tetherctl, which shares this library, is to write it from
 * its options. Untrusted (an admin request body, a database row), so it is
 * read strictly: only the one canonical byte form is accepted, so a policy
 * version has one meaning and one hash.
 *
 *   {"version":1,
 *    "tokens":{"models":["M",...],"cost_ceiling":C,"lifetime_seconds":L},
 *    "thresholds":[{"kind":"K","value":V,"action":"alert"|"quarantine"},...],
 *    "sources":["CIDR",...],
 *    "measured_boot":{"pcrs":[N,...],"exact":[{"pcr":N,"value":"D"},...],
 *                     "secure_boot":true|false,
 *                     "variables":{"PK":"D","KEK":"D","db":"D","dbx":"D"},
 *                     "applications":["D",...],"ipl":["D",...],
 *                     "files":[{"name":"F","digests":["D",...]},...]}}
 *
 * (one line, no whitespace). Sections come in this order, each once;
 * measured_boot is optional (a device on a policy without it sends no event
 * log), and a document naming a section this reader does not know is
 * refused, so an older fleetd never enforces half a policy.
 * - models: 1 to TETHER_POLICY_MAX_MODELS model names or globs of
 *   printable ASCII but space " \ and comma (the config file's models
 *   key), at most TETHER_POLICY_MODEL_MAX bytes each, in strictly
 *   ascending byte order (so each once).
 * - cost_ceiling and threshold values: decimals (1 to 12 digits, an
 *   optional fraction of 1 to 6 digits not ending in 0, no leading zero);
 *   0 as cost_ceiling means none. Count kinds (requests, tokens, refused
 *   models, source networks) take whole numbers of at least 1.
 * - lifetime_seconds: TETHER_POLICY_LIFETIME_MIN to _MAX.
 * - thresholds: each kind at most once, in the order of
 *   tether_policy_threshold_kind_t.
 * - sources: 0 to TETHER_POLICY_MAX_SOURCES IPv4 or IPv6 networks in their
 *   canonical text (inet_ntop's), host bits zero, strictly ascending by
 *   family then address then prefix. Empty: any source. A source_networks
 *   threshold needs at least one.
 * - measured_boot: the reference values of tether_measured_boot_check
 *   (firmware measured_boot.h, which says what each means). D is a SHA-256
 *   digest in 64 lowercase hex digits. pcrs: 1 to 24 PCRs of 0 to 23,
 *   strictly ascending; exact: PCRs of pcrs, strictly ascending; variables:
 *   each member optional, in that order; applications (at most
 *   TETHER_MEASURED_BOOT_MAX_APPLICATIONS), ipl (_MAX_IPL) and each file's
 *   digests (1 to _MAX_FILE_DIGESTS): strictly ascending, so each once;
 *   files: at most _MAX_FILES, names as tether's log has them
 *   ([A-Za-z0-9._-]{1,64}), strictly ascending. secure_boot and variables
 *   need PCR 7 in pcrs, files PCR 13.
 */
#ifndef TETHER_FLEET_POLICY_H
#define TETHER_FLEET_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/cidr.h"
#include "tether/error.h"
#include "tether/measured_boot.h"

/* Bytes. The largest document every bound admits is 40,142 bytes, some 34
 * KiB of them a measured_boot section at its bounds (test_fleet_policy
 * writes it). */
#define TETHER_POLICY_DOCUMENT_MAX 49152
#define TETHER_POLICY_MAX_MODELS 32
#define TETHER_POLICY_MODEL_MAX 128
#define TETHER_POLICY_MAX_SOURCES 32
#define TETHER_POLICY_DECIMAL_MAX 20 /* 12 digits, '.', 6 digits, NUL */
#define TETHER_POLICY_LIFETIME_MIN 30
#define TETHER_POLICY_LIFETIME_MAX 3600
/* The name a device has until an operator gives it another. */
#define TETHER_POLICY_DEFAULT_NAME "default"
#define TETHER_POLICY_NAME_MAX 64 /* bytes */

/* In the order a document lists them. */
typedef enum tether_policy_threshold_kind {
    TETHER_THRESHOLD_REQUESTS_PER_MINUTE = 0,
    TETHER_THRESHOLD_TOKENS_PER_MINUTE,
    TETHER_THRESHOLD_SPEND_PER_HOUR,
    TETHER_THRESHOLD_SPEND_PER_DAY,
    TETHER_THRESHOLD_REFUSED_MODELS,
    TETHER_THRESHOLD_SOURCE_NETWORKS,
    TETHER_THRESHOLD_KIND_COUNT,
} tether_policy_threshold_kind_t;

typedef enum tether_policy_action {
    TETHER_POLICY_ACTION_ALERT = 0,
    TETHER_POLICY_ACTION_QUARANTINE,
} tether_policy_action_t;

typedef struct tether_policy_threshold {
    bool set;
    char value[TETHER_POLICY_DECIMAL_MAX]; /* as written */
    int64_t micros;                        /* value in millionths */
    tether_policy_action_t action;
} tether_policy_threshold_t;

typedef tether_cidr_t tether_policy_cidr_t; /* lib's canonical networks (cidr.h) */

typedef struct tether_policy_document {
    char models[TETHER_POLICY_MAX_MODELS][TETHER_POLICY_MODEL_MAX + 1];
    size_t model_count;
    char cost_ceiling[TETHER_POLICY_DECIMAL_MAX];
    unsigned lifetime_seconds;
    tether_policy_threshold_t thresholds[TETHER_THRESHOLD_KIND_COUNT]; /* by kind */
    tether_policy_cidr_t sources[TETHER_POLICY_MAX_SOURCES];
    size_t source_count;
    bool has_measured_boot; /* the optional "measured_boot" section */
    tether_measured_boot_reference_t measured_boot;
} tether_policy_document_t;

/* "requests_per_minute", ...; NULL for a value outside the enum. */
const char *tether_policy_threshold_kind_name(tether_policy_threshold_kind_t kind);
/* The kind named by the len bytes at name: TETHER_ERR_NOT_FOUND if none. */
TETHER_MUST_CHECK tether_status_t tether_policy_threshold_kind_parse(
    const char *name, size_t len, tether_policy_threshold_kind_t *kind);
/* Whether name is a policy name: 1 to TETHER_POLICY_NAME_MAX bytes of
 * a-z 0-9 . _ -, starting with a letter or digit (it appears in tokens,
 * URLs and command lines unquoted). */
bool tether_policy_name_valid(const char *name);

/* "alert" or "quarantine". */
const char *tether_policy_action_name(tether_policy_action_t action);

/* Parses data[0..len) into *doc, zeroed on entry. TETHER_ERR_PARSE
 * (TETHER_ERR_TOO_LARGE beyond a bound) with a sentence in why naming the
 * byte offset; *doc is zeroed again on any refusal. */
TETHER_MUST_CHECK tether_status_t tether_policy_document_parse(const uint8_t *data, size_t len,
                                                               tether_policy_document_t *doc,
                                                               char *why, size_t why_size);

/* Writes doc's canonical form into out (NUL-terminated), *len its length
 * without the NUL (0 on entry). TETHER_ERR_TOO_LARGE when out is short.
 * Does not check doc: write what parse produced or a caller built within
 * the same rules. */
TETHER_MUST_CHECK tether_status_t tether_policy_document_write(const tether_policy_document_t *doc,
                                                               char *out, size_t size,
                                                               size_t *len);

/* Whether the text address (IPv4 or IPv6, inet_pton's forms) lies in one
 * of doc's sources; any address when it lists none. An address that does
 * not parse, or NULL (unknown), lies in none. */
bool tether_policy_source_allowed(const tether_policy_document_t *doc, const char *address);

#endif
