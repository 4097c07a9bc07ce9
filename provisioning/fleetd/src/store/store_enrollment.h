/*
 * The store's enrolments: bootstrap tokens, sessions, activation.
 */
#ifndef TETHER_FLEET_STORE_ENROLLMENT_H
#define TETHER_FLEET_STORE_ENROLLMENT_H

#include "store_devices.h"
#include "store_types.h"

/* A started enrolment (table enrolment_sessions; encodings in
 * store_schema.c). The blobs are only read by enrollment_add; find leaves
 * them empty. */
typedef struct tether_store_enrollment {
    char id[TETHER_STORE_ENROLLMENT_ID_SIZE];
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    tether_store_blob_t ek_public;         /* TPM2B_PUBLIC, marshalled */
    tether_store_blob_t ek_cert;           /* DER */
    tether_store_blob_t ak_public;         /* TPM2B_PUBLIC, marshalled */
    tether_store_blob_t ak_name;           /* nameAlg || digest */
    tether_store_blob_t device_key_public; /* TPM2B_PUBLIC, marshalled */
    tether_store_blob_t certify_attest;    /* TPM2B_ATTEST, marshalled */
    tether_store_blob_t certify_signature; /* TPMT_SIGNATURE, marshalled */
    tether_store_blob_t counter_public;    /* TPM2B_NV_PUBLIC, marshalled */
    uint32_t counter_index;
    char name[TETHER_STORE_NAME_MAX + 1]; /* "" when the device sent none */
    char source[TETHER_STORE_SOURCE_SIZE]; /* who sent it (IPv4 address or IPv6 /64) */
    bool has_bootstrap;
    uint8_t bootstrap_hash[TETHER_STORE_HASH_SIZE];
    int64_t created_at;
    int64_t expires_at;
} tether_store_enrollment_t;

/* The bounds on enrolments in flight (tether_store_enrollment_add). */
typedef struct tether_store_enrollment_bounds {
    unsigned max_per_ek;        /* of one EK, from any source; at least 1 */
    unsigned max_per_source;    /* of one EK from one source; at least 1 */
    int64_t protect_seconds;    /* one younger than this is never displaced */
} tether_store_enrollment_bounds_t;

/* A bootstrap token's state, for the enrolment decision. */
typedef struct tether_store_bootstrap {
    int64_t id;
    int64_t expires_at;
    int64_t uses_left;
} tether_store_bootstrap_t;

/* Whether an EK may enrol (DESIGN.md, "Enrolment"), decided the same way
 * when the enrolment starts and again, inside the activation's transaction,
 * when it completes. */
typedef enum tether_enroll_decision {
    TETHER_ENROLL_GRANT_ALLOW_LIST = 0, /* its device row is allowed (allow list or reinstate) */
    TETHER_ENROLL_GRANT_BOOTSTRAP,      /* no device row; a valid bootstrap token */
    TETHER_ENROLL_ALREADY_ENROLLED,     /* active, quarantined, or revoked and not reinstated */
    TETHER_ENROLL_NOT_ALLOWED,          /* no device row and no bootstrap token */
    TETHER_ENROLL_TOKEN_UNKNOWN,        /* the bootstrap token was never issued */
    TETHER_ENROLL_TOKEN_EXPIRED,
    TETHER_ENROLL_TOKEN_USED,           /* no use left */
} tether_enroll_decision_t;

TETHER_MUST_CHECK tether_status_t tether_store_bootstrap_token_create(
    tether_store_t *store, const uint8_t hash[TETHER_STORE_HASH_SIZE], int64_t expires_at,
    unsigned uses, int64_t now);

/* ---- enrolment ---- */

/* The enrolment rule, pure: device is the row with the EK's hash (NULL when
 * there is none); token_presented says whether the device sent a bootstrap
 * token and token is its row (NULL when unknown). A device row decides
 * alone (a token neither helps a device that is already enrolled nor is used
 * up by one that is allowed); a token must be unexpired with a use left. */
tether_enroll_decision_t tether_enroll_decide(const tether_store_device_t *device,
                                              bool token_presented,
                                              const tether_store_bootstrap_t *token, int64_t now);
bool tether_enroll_decision_granted(tether_enroll_decision_t decision);

/* Reads what tether_enroll_decide needs for ek_sha256 and the SHA-256 of a
 * bootstrap token (NULL when none was sent; compared in constant time after
 * the index lookup) and decides. Changes nothing. device (may be NULL) gets
 * the device row, or an empty id when there is none. */
TETHER_MUST_CHECK tether_status_t tether_store_enroll_authorize(
    tether_store_t *store, const char *ek_sha256, const uint8_t *bootstrap_hash, int64_t now,
    tether_enroll_decision_t *decision, tether_store_device_t *device);

/*
 * Records a started enrolment, in one transaction with the removal of every
 * expired one. Nothing is proven before activation (anyone may send a
 * victim's public EK and certificate with an AK of their own), so a new
 * enrolment never replaces one in flight: an EK holds several side by side,
 * each keyed by its own id, and the first to prove its secret wins. Two
 * bounds, checked in this order: max_per_source of the EK from the
 * enrolment's source (one forger's address cannot take every place), then
 * max_per_ek. At a bound, the oldest enrolment within it is dropped if it is
 * at least protect_seconds old (a genuine device answers in seconds; one
 * that old is abandoned or a forger's); otherwise the new one is refused
 * with TETHER_ERR_TOO_LARGE, nothing changes but the sweep, and
 * *retry_after (may be NULL) gets the seconds until the oldest may be
 * dropped (at least 1).
 */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_add(
    tether_store_t *store, const tether_store_enrollment_t *enrollment, int64_t now,
    const tether_store_enrollment_bounds_t *bounds, int64_t *retry_after);

/* TETHER_ERR_NOT_FOUND for an unknown id; TETHER_ERR_EXPIRED for one past
 * its expires_at, which is deleted. Fills all but the blobs. */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_find(
    tether_store_t *store, const char *id, int64_t now, tether_store_enrollment_t *enrollment);

/* TETHER_ERR_NOT_FOUND when already gone. */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_delete(tether_store_t *store,
                                                                 const char *id);

/*
 * Completes an enrolment whose proof the caller checked, in one transaction
 * (BEGIN IMMEDIATE): the session is read again (TETHER_ERR_NOT_FOUND, or
 * TETHER_ERR_EXPIRED after deleting it), the decision is made again from the
 * current rows, and only if it grants:
 * - a bootstrap grant consumes one use of the token;
 * - the device row is created (id new_device_id, the session's name or else
 *   the id) or updated (keeps its id and name) to status active, with the
 *   session's EK, AK, device key, certification and counter, allow_reenroll
 *   cleared, highest_counter 0 and the clockInfo fields reset, and the
 *   enrolment's id recorded (tether_store_enrollment_completed);
 * - every enrolment in flight for the EK is deleted (the others can only be
 *   a forger's or abandoned: the device is active now).
 * A refusal is TETHER_OK with *decision saying why, and changes nothing.
 * device (may be NULL) gets the device row after a grant.
 */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_activate(
    tether_store_t *store, const char *id, const char *new_device_id, int64_t now,
    tether_enroll_decision_t *decision, tether_store_device_t *device);

/* The active device whose last completed enrolment is id, for an activation
 * repeated after its answer was lost; TETHER_ERR_NOT_FOUND when there is
 * none (unknown id, or the device was revoked, quarantined or enrolled
 * again since). Changes nothing. */
TETHER_MUST_CHECK tether_status_t tether_store_enrollment_completed(
    tether_store_t *store, const char *id, tether_store_device_t *device);

#endif
