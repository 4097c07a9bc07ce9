/*
 * The evidence of the attested token exchange (DESIGN.md, "Attested token
 * exchange" and "Clone detection"): what tether-agent sends as the RFC 8693
 * subject_token of POST /v1/token, its wire form, and the checks fleetd makes
 * of it that need no database. Pure: no TPM, no sockets.
 *
 * Wire form: base64url (tether/base64url.h) of one strict JSON object
 * (tether/json_strict.h), at most TETHER_EVIDENCE_MAX_TOKEN characters, with
 * exactly these members:
 *   "v"               1
 *   "device_id"       the enrolled device id, 1..64 of [A-Za-z0-9._-]
 *   "nonce"           base64url of the 72-byte nonce (tether/nonce.h)
 *   "usage"           base64url of the usage report: 1..4096 opaque bytes,
 *                     a JSON text such as {"requests":N,"tokens":N}
 *   "nv_certify"      base64url of the TPMS_ATTEST of TPM2_NV_Certify, as signed
 *   "nv_signature"    base64url of its TPMT_SIGNATURE (TPM marshalling)
 *   "quote"           base64url of the TPMS_ATTEST of TPM2_Quote, as signed
 *   "quote_signature" base64url of its TPMT_SIGNATURE
 *
 * The qualifying data (extraData) of both attestations is
 * tether_evidence_qualifying(): SHA-256(nonce || SHA-256(usage report)), so
 * the TPM signs the nonce and the usage counters too. device_id is not
 * signed: it only tells the fleet which enrolled AK to verify with, and
 * evidence sent under another device's id fails that AK's signature check.
 *
 * Device side (tether-agent), per exchange:
 *   1. nonce = base64url-decoded answer of POST /v1/challenge;
 *   2. tether_evidence_qualifying(nonce, usage, usage_len, q);
 *   3. TPM2_NV_Increment of the counter, then TPM2_NV_Certify of the whole
 *      counter (offset 0, 8 bytes) and TPM2_Quote of the policy's PCRs, both
 *      by the AK over q (in this order, so the quote is the later one);
 *   4. fill a tether_evidence_t and tether_evidence_encode() it.
 *
 * Fleet side (tether-fleetd), per POST /v1/token:
 *   1. tether_evidence_parse()            refusal: TETHER_EVIDENCE_MALFORMED
 *   2. look the device up by ev.device_id (unknown: the fleet's own answer)
 *   3. tether_evidence_check_nonce()      (or tether_nonce_check itself)
 *   4. tether_evidence_verify() against what was stored at enrolment
 *   5. the checks that need the database, which this module cannot make:
 *      - the device is active (not revoked, not quarantined);
 *      - the nonce was not used by an accepted exchange yet (nonces are
 *        single-use: a used one is a replay, refused without an alarm);
 *      - result.counter is strictly greater than the highest counter value
 *        accepted for the device. Not greater with a fresh nonce, and not a
 *        retry of the last accepted exchange: two TPM states hold the same
 *        keys, a clone (DESIGN.md, "Clone detection"); refuse and
 *        quarantine. Gaps are normal (a request lost after the increment),
 *        never an alarm;
 *      - store result.counter and result.clock (the next exchange's
 *        last_clock) and the used nonce durably, with the issued token id,
 *        before answering.
 *      A retry of the last accepted exchange carries the same clock as the
 *      stored last_clock, so recognise it (compare
 *      tether_evidence_fingerprint() with the stored one) and set the
 *      policy's retry_of_last before calling tether_evidence_verify().
 */
#ifndef TETHER_EVIDENCE_H
#define TETHER_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tether/error.h"
#include "tether/nonce.h"

#define TETHER_EVIDENCE_VERSION 1
#define TETHER_EVIDENCE_MAX_TOKEN 16384   /* characters of the subject_token */
#define TETHER_EVIDENCE_MAX_USAGE 4096    /* bytes of the usage report */
#define TETHER_EVIDENCE_MAX_DEVICE_ID 64  /* bytes */
#define TETHER_EVIDENCE_QUALIFYING_SIZE 32

/* RFC 8693 subject_token_type of the evidence. */
#define TETHER_EVIDENCE_TOKEN_TYPE "urn:tether:params:oauth:token-type:tpm-evidence-v1"

typedef struct tether_evidence {
    char device_id[TETHER_EVIDENCE_MAX_DEVICE_ID + 1];
    uint8_t nonce[TETHER_NONCE_SIZE];
    uint8_t usage[TETHER_EVIDENCE_MAX_USAGE];
    size_t usage_len;
    TPM2B_ATTEST nv_certify;        /* TPMS_ATTEST bytes exactly as the TPM signed */
    TPMT_SIGNATURE nv_signature;
    TPM2B_ATTEST quote;             /* same */
    TPMT_SIGNATURE quote_signature;
} tether_evidence_t;

/*
 * Why evidence was refused, for the OAuth "error" member (or tether's own
 * error code) of the answer. The names (tether_evidence_code_name) are part
 * of the API: relying scripts and dashboards match on them, so they never
 * change meaning; new codes are only appended.
 */
typedef enum tether_evidence_code {
    TETHER_EVIDENCE_OK = 0,                 /* "ok" */
    TETHER_EVIDENCE_MALFORMED,              /* "malformed_evidence": does not parse */
    TETHER_EVIDENCE_NONCE_INVALID,          /* "nonce_invalid": wrong length or MAC */
    TETHER_EVIDENCE_NONCE_EXPIRED,          /* "nonce_expired" */
    TETHER_EVIDENCE_BAD_SIGNATURE,          /* "bad_signature": not the enrolled AK's */
    TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE, /* "wrong_attestation_type": magic, type, NV range */
    TETHER_EVIDENCE_WRONG_SIGNER,           /* "wrong_signer": not the AK under the EK */
    TETHER_EVIDENCE_EXTRA_DATA_MISMATCH,    /* "extra_data_mismatch": other nonce or usage */
    TETHER_EVIDENCE_WRONG_COUNTER,          /* "wrong_counter": not the enrolled NV counter */
    TETHER_EVIDENCE_PCR_MISMATCH,           /* "pcr_mismatch": selection or digest */
    TETHER_EVIDENCE_CLOCK_UNSAFE,           /* "clock_unsafe": clockInfo.safe is NO */
    TETHER_EVIDENCE_CLOCK_REGRESSION,       /* "clock_regression": clock went back (clone?) */
    TETHER_EVIDENCE_INCONSISTENT,           /* "inconsistent_attestations": two boots or
                                               firmware versions in one exchange */
    TETHER_EVIDENCE_INTERNAL_ERROR,         /* "internal_error": bad arguments or a crypto
                                               failure, not the device's fault */
    TETHER_EVIDENCE_CODE_COUNT
} tether_evidence_code_t;

/* The stable name of a code ("bad_signature", ...); "internal_error" for a
 * value out of range. Never NULL. */
const char *tether_evidence_code_name(tether_evidence_code_t code);

/* --- device and wire form ---------------------------------------------------- */

/* The qualifying data of both attestations:
 * SHA-256(nonce || SHA-256(usage[0..usage_len))). */
TETHER_MUST_CHECK tether_status_t tether_evidence_qualifying(
    const uint8_t nonce[TETHER_NONCE_SIZE], const uint8_t *usage, size_t usage_len,
    uint8_t out[TETHER_EVIDENCE_QUALIFYING_SIZE]);

/* Serialises ev as a subject_token. *token is a heap-allocated, NUL-terminated
 * string freed by the caller with free(). Refuses (TETHER_ERR_INVALID_ARGUMENT)
 * what tether_evidence_parse() would refuse: a bad device id, an empty or
 * oversized usage report, attestations or signatures that do not marshal;
 * TETHER_ERR_TOO_LARGE when the token would exceed TETHER_EVIDENCE_MAX_TOKEN. */
TETHER_MUST_CHECK tether_status_t tether_evidence_encode(const tether_evidence_t *ev, char **token);

/* Parses token[0..len) (need not be NUL-terminated) strictly into ev:
 * canonical base64url, one strict JSON object, no unknown, repeated or
 * missing member, every TPM structure unmarshalling exactly (no trailing
 * bytes, TPM2B sizes exact). Nothing is verified yet. TETHER_ERR_TOO_LARGE
 * for a token over TETHER_EVIDENCE_MAX_TOKEN, TETHER_ERR_PARSE otherwise,
 * both with a reason in why (why_size bytes; why may be NULL); ev is zeroed
 * on error. Refusal code: TETHER_EVIDENCE_MALFORMED. */
TETHER_MUST_CHECK tether_status_t tether_evidence_parse(const char *token, size_t len,
                                                        tether_evidence_t *ev, char *why,
                                                        size_t why_size);

/* SHA-256 over what the TPM attested and what it was asked to cover: both
 * attestations as signed, the nonce and the usage report. Not over the
 * signatures: an ECDSA signature has other spellings that verify (s and
 * n - s; tether_tpm2_verify_signature refuses other encodings of r and s),
 * so evidence is the same exchange when its attested content is. Equal for
 * a retry of one exchange, different for any two exchanges (each carries
 * its own counter value, clock and nonce). */
TETHER_MUST_CHECK tether_status_t tether_evidence_fingerprint(const tether_evidence_t *ev,
                                                              uint8_t out[32]);

/* --- fleet checks -------------------------------------------------------------- */

/* The AK's qualified name as the TPM puts it into qualifiedSigner: the AK
 * under the EK (a primary of the endorsement hierarchy), TPM2 Part 1, 16. */
TETHER_MUST_CHECK tether_status_t tether_evidence_ak_qualified_name(const TPMT_PUBLIC *ek,
                                                                    const TPMT_PUBLIC *ak,
                                                                    TPM2B_NAME *qualified_name);

/* An NV index's name: nameAlg || H_nameAlg(marshalled TPMS_NV_PUBLIC) (TPM2
 * Part 1, 16). It changes with the attributes, TPMA_NV_WRITTEN included. */
TETHER_MUST_CHECK tether_status_t tether_nv_public_name(const TPMS_NV_PUBLIC *nv, TPM2B_NAME *name);

/* The name the enrolled counter has in every NV certification: its name with
 * TPMA_NV_WRITTEN set (a TPM certifies only written indices; the enrolment
 * request's counter_public is usually written already). */
TETHER_MUST_CHECK tether_status_t tether_evidence_counter_name(const TPMS_NV_PUBLIC *counter,
                                                               TPM2B_NAME *name);

/* Nonce step of the fleet's checks: tether_nonce_check_rotating() on
 * ev->nonce (previous_key may be NULL), mapped to TETHER_EVIDENCE_OK,
 * _NONCE_INVALID, _NONCE_EXPIRED or _INTERNAL_ERROR in *code with a reason
 * in why. Call it before tether_evidence_verify(), which does not look at the
 * nonce's MAC or expiry. */
TETHER_MUST_CHECK tether_status_t tether_evidence_check_nonce(const tether_evidence_t *ev,
                                                              const uint8_t *key,
                                                              const uint8_t *previous_key,
                                                              size_t key_len, uint64_t now,
                                                              tether_evidence_code_t *code,
                                                              char *why, size_t why_size);

/* What the fleet stored at enrolment and since. Every pointer is the
 * caller's and needs to live only for the call. */
typedef struct tether_evidence_policy {
    const TPMT_PUBLIC *ak;                 /* the enrolled AK */
    const TPM2B_NAME *ak_qualified_name;   /* tether_evidence_ak_qualified_name(ek, ak) */
    const TPM2B_NAME *counter_name;        /* tether_evidence_counter_name(counter) */
    TPML_PCR_SELECTION pcr_selection;      /* what the quote must cover, in this order */
    const TPM2B_DIGEST *pcr_digests;       /* accepted quote digests ... */
    size_t pcr_digest_count;               /* ... 0: accept any and report it, for a
                                              deliberate trust on first use only */
    const TPMS_CLOCK_INFO *last_clock;     /* result.clock of the last accepted exchange;
                                              NULL on the first exchange */
    bool retry_of_last;                    /* the evidence is that last exchange sent again
                                              (same tether_evidence_fingerprint): its clock
                                              is last_clock itself, so neither clock rule
                                              applies (both held when it was accepted);
                                              ignored without last_clock */
} tether_evidence_policy_t;

typedef struct tether_evidence_result {
    uint64_t counter;          /* the exchange counter, from the NV certification */
    TPMS_CLOCK_INFO clock;     /* the later of the two clockInfos (resetCount, restartCount,
                                  clock, safe): store as last_clock */
    TPM2B_DIGEST pcr_digest;   /* the quote's PCR digest */
    uint64_t firmware_version; /* the TPM's firmwareVersion */
} tether_evidence_result_t;

/*
 * Verifies parsed evidence against the policy (DESIGN.md, exchange step 4),
 * in this order, stopping at the first refusal:
 *   bad_signature           both attestations verify with policy->ak
 *   wrong_attestation_type  magic TPM_GENERATED_VALUE; nv_certify is
 *                           TPM2_ST_ATTEST_NV over the whole 8-byte counter
 *                           (offset 0), quote is TPM2_ST_ATTEST_QUOTE
 *   wrong_signer            both qualifiedSigners are ak_qualified_name
 *   extra_data_mismatch     both extraData are the qualifying data of
 *                           ev->nonce and ev->usage
 *   wrong_counter           the certified index's name is counter_name
 *   pcr_mismatch            the quote's selection is pcr_selection (same
 *                           banks in the same order, same PCRs) and its
 *                           digest one of pcr_digests (if any)
 *   inconsistent_attestations  both have the same resetCount, restartCount
 *                           and firmwareVersion
 *   clock_regression        both clockInfos against last_clock (if any):
 *                           resetCount never goes down;
 *                           with resetCount unchanged restartCount never goes
 *                           down; with both unchanged clock goes up. A TPM
 *                           Reset sets restartCount back to 0 (TPM2 Part 2,
 *                           TPMS_CLOCK_INFO), so a higher resetCount accepts
 *                           any restartCount and clock.
 *   clock_unsafe            both clockInfo.safe are YES, or the clock is
 *                           unsafe the way a power loss leaves it: a TPM
 *                           Reset since last_clock (resetCount went up), or
 *                           the same Reset as last_clock with last_clock
 *                           unsafe too. Without last_clock an unsafe clock
 *                           is refused: nothing shows a Reset. An unsafe
 *                           clock that went back is clock_regression above.
 * (With retry_of_last, neither clock rule is applied.)
 * (Evidence that did not come from tether_evidence_parse() and whose
 * attestations do not unmarshal is refused as malformed_evidence.)
 * TETHER_OK fills *result. TETHER_ERR_VERIFY sets *code to the refusal and
 * a sentence in why; TETHER_ERR_INVALID_ARGUMENT or TETHER_ERR_CRYPTO set
 * *code to TETHER_EVIDENCE_INTERNAL_ERROR. *result is zeroed unless TETHER_OK
 * or clock_regression: that refusal comes after every other check held, so
 * *result is filled as on success and says what the TPM signed (the counter
 * and the clockInfo a clone record keeps). The caller needs no other decoding
 * of the attestations.
 * result and code must not be NULL; why may be (then why_size is ignored).
 */
TETHER_MUST_CHECK tether_status_t tether_evidence_verify(const tether_evidence_t *ev,
                                                         const tether_evidence_policy_t *policy,
                                                         tether_evidence_result_t *result,
                                                         tether_evidence_code_t *code, char *why,
                                                         size_t why_size);

#endif
