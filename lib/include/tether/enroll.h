/*
 * Enrolment: what a device sends to POST /v1/enroll, its JSON form, and the
 * checks the fleet makes of it that need no database (DESIGN.md,
 * "Enrolment"). Shared by tether-agent (which builds the request) and
 * tether-fleetd (which parses and checks it). Pure: no TPM, no sockets.
 */
#ifndef TETHER_ENROLL_H
#define TETHER_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tether/crypto.h"
#include "tether/error.h"

#define TETHER_ENROLL_MAX_CERT 4096
#define TETHER_ENROLL_MAX_NAME 64        /* device name, bytes */
#define TETHER_ENROLL_MAX_BOOTSTRAP 128  /* bootstrap token, bytes */
#define TETHER_ENROLL_MAX_JSON 32768     /* request body */
#define TETHER_ENROLL_SECRET_SIZE 32     /* activation secret */

/* The fleet's refusals of POST /v1/enroll/activate that tell the agent to
 * start over with POST /v1/enroll: no such enrolment in flight (unknown,
 * expired or displaced), and a proof that did not match (the enrolment was
 * dropped). */
#define TETHER_ENROLL_ERROR_INVALID_ENROLLMENT "invalid_enrollment"
#define TETHER_ENROLL_ERROR_ACTIVATION_FAILED "activation_failed"

/* Qualifying data of the device key's TPM2_Certify at enrolment. The AK is
 * proven by ActivateCredential; this certification only shows that the
 * device key lives in the same TPM as the AK. */
#define TETHER_ENROLL_CERTIFY_LABEL "tether device key certification v1"

typedef struct tether_enroll_request {
    TPM2B_PUBLIC ek_public;
    uint8_t ek_cert[TETHER_ENROLL_MAX_CERT]; /* DER */
    size_t ek_cert_len;
    TPM2B_PUBLIC ak_public;
    TPM2B_PUBLIC device_key_public;
    TPM2B_ATTEST device_key_certify;         /* TPMS_ATTEST as signed by the AK */
    TPMT_SIGNATURE device_key_signature;
    TPM2B_NV_PUBLIC counter_public;
    char name[TETHER_ENROLL_MAX_NAME + 1];   /* may be empty */
    char bootstrap_token[TETHER_ENROLL_MAX_BOOTSTRAP + 1]; /* secret; may be empty */
} tether_enroll_request_t;

/* Wipes the request (it may hold a bootstrap token). */
void tether_enroll_request_wipe(tether_enroll_request_t *req);

/* Serialises the request as a JSON object; *json is heap-allocated, freed
 * (after wiping: it may hold the bootstrap token) by the caller. */
TETHER_MUST_CHECK tether_status_t tether_enroll_request_to_json(const tether_enroll_request_t *req,
                                                                char **json);

/* Parses a request strictly: one JSON object of at most
 * TETHER_ENROLL_MAX_JSON bytes, no unknown or repeated member, every TPM
 * structure base64url-encoded and unmarshalling exactly. TETHER_ERR_PARSE
 * (with a reason in why, which holds why_size bytes) otherwise. */
TETHER_MUST_CHECK tether_status_t tether_enroll_request_from_json(const char *text, size_t len,
                                                                  tether_enroll_request_t *req,
                                                                  char *why, size_t why_size);

/*
 * The checks that need no database: the EK certificate certifies the EK sent;
 * the AK is a restricted ECDSA P-256 signing key that never leaves the TPM
 * (fixedTPM, fixedParent, sensitiveDataOrigin); the device key is an
 * unrestricted signing key of the same kind, certified by the AK (signature,
 * attestation type, certified name, the AK's qualified name under the EK, the
 * qualifying data); the counter is an owner-range NV counter of 8 bytes that
 * only its own authorisation writes. TETHER_ERR_VERIFY or
 * TETHER_ERR_EK_MISMATCH with a reason in why.
 */
TETHER_MUST_CHECK tether_status_t tether_enroll_request_check(const tether_enroll_request_t *req,
                                                              char *why, size_t why_size);

/* Verifies the EK certificate chain against the manufacturer CAs (roots and
 * intermediates, all trusted; borrowed for the call). TETHER_ERR_VERIFY with
 * the reason in why, also when cas holds no certificate. */
TETHER_MUST_CHECK tether_status_t tether_ek_cert_verify(const uint8_t *der, size_t len,
                                                        const tether_cert_set_t *cas, char *why,
                                                        size_t why_size);

/* The EK's identity for allow lists: SHA-256 of its SubjectPublicKeyInfo
 * DER, the same as `openssl x509 -pubkey -noout -in ek.crt | openssl pkey
 * -pubin -outform der | sha256sum`. */
TETHER_MUST_CHECK tether_status_t tether_ek_sha256(const TPMT_PUBLIC *ek, uint8_t out[32]);

/* The device's proof that it recovered the activation secret:
 * HMAC-SHA256(secret, "tether enroll activate v1" || enrollment_id). */
TETHER_MUST_CHECK tether_status_t tether_enroll_activation_proof(const uint8_t *secret,
                                                                 size_t secret_len,
                                                                 const char *enrollment_id,
                                                                 uint8_t proof[32]);

#endif
