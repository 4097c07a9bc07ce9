/*
 * A TPM in software for unit tests: keys, NV counters, PCRs, quotes and
 * certifications made with mbedTLS in the formats a real TPM produces
 * (TPMS_ATTEST marshalled with tss2-mu, ECDSA signatures), so the code that
 * verifies them can be tested without a TPM. Never link it into a product.
 */
#ifndef TETHER_TPM_FAKE_H
#define TETHER_TPM_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "tether/tpm.h"

typedef struct tether_tpm_fake_config {
    /* Bit (1u << type) set: the fake holds an EK certificate for that EK
     * type, signed by the fake manufacturer CA. */
    unsigned ek_cert_types;
    /* Seeds the fake's endorsement seed and its private wrapping key. Two
     * fakes opened with the same seed derive the same EKs and can load each
     * other's key blobs: a cloned TPM state. */
    uint64_t seed;
    /* Seeds the manufacturer CA that signs the EK certificates; 0 means the
     * seed above (each fake its own CA). Fakes with one manufacturer value
     * share a CA, as the TPMs of one vendor do. */
    uint64_t manufacturer;
} tether_tpm_fake_config_t;

/* Which operation a fault is injected into (tether_tpm_fake_inject). */
typedef enum tether_tpm_fake_op {
    TETHER_FAKE_OP_ANY = 0,
    TETHER_FAKE_OP_GET_INFO,
    TETHER_FAKE_OP_NV_READ,
    TETHER_FAKE_OP_CREATE_EK,
    TETHER_FAKE_OP_CREATE_KEY,
    TETHER_FAKE_OP_LOAD_KEY,
    TETHER_FAKE_OP_CERTIFY,
    TETHER_FAKE_OP_SIGN,
    TETHER_FAKE_OP_NV_DEFINE,
    TETHER_FAKE_OP_NV_INCREMENT,
    TETHER_FAKE_OP_NV_CERTIFY,
    TETHER_FAKE_OP_QUOTE,
    TETHER_FAKE_OP_ACTIVATE,
    TETHER_FAKE_OP_PCR_EXTEND,
} tether_tpm_fake_op_t;

TETHER_MUST_CHECK tether_status_t tether_tpm_open_fake(tether_tpm_t *tpm,
                                                       const tether_tpm_fake_config_t *config);

/* The next `count` calls of `op` fail with the TSS2 response code `rc`
 * (e.g. TPM2_RC_RETRY, TPM2_RC_LOCKOUT) before doing anything. */
void tether_tpm_fake_inject(tether_tpm_t *tpm, tether_tpm_fake_op_t op, uint32_t rc, unsigned count);

/* Power lost without TPM2_Shutdown, then TPM2_Startup(CLEAR): a TPM Reset
 * (resetCount + 1, restartCount 0, PCRs back to zero), Clock back to its
 * last value in NV (a minute earlier) and clockInfo.safe NO from then on
 * (TPM2 Part 1, 36). NV indices and loaded objects are kept. */
void tether_tpm_fake_power_loss(tether_tpm_t *tpm);

/* Rewrites an ECDSA P-256 signature into its other valid spelling, s
 * replaced by n - s (written as 32 bytes), as anyone who sees a signature
 * can. TETHER_ERR_INVALID_ARGUMENT for anything but an ECDSA signature with
 * s in [1, n-1]. */
TETHER_MUST_CHECK tether_status_t tether_tpm_fake_negate_s(TPMT_SIGNATURE *sig);

/* Transient objects currently loaded (to test that callers flush). */
unsigned tether_tpm_fake_loaded_objects(const tether_tpm_t *tpm);

/* The fake manufacturer CA certificate (DER) that signed the EK certificates.
 * The pointer stays valid until tether_tpm_close(). */
TETHER_MUST_CHECK tether_status_t tether_tpm_fake_ca_cert(const tether_tpm_t *tpm,
                                                          const uint8_t **der, size_t *len);

/* Replaces the EK certificate of a type (e.g. with one for another key). */
TETHER_MUST_CHECK tether_status_t tether_tpm_fake_set_ek_cert(tether_tpm_t *tpm,
                                                              tether_ek_type_t type,
                                                              const uint8_t *der, size_t len);

#endif
