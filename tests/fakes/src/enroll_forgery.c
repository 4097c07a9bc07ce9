/* A forged enrolment request (tether/enroll_forgery.h). */
#include "tether/enroll_forgery.h"

#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <tss2/tss2_mu.h>

#include "tether/bytes.h"
#include "tether/random.h"
#include "tether/tpm2_public.h"

#define P256_BYTES 32

tether_status_t tether_enroll_forge(tether_enroll_request_t *req,
                                    const tether_enroll_request_t *victim)
{
    TPMT_PUBLIC *ak_public = &req->ak_public.publicArea;
    TPM2B_ATTEST *certify = &req->device_key_certify;
    TPMS_SIGNATURE_ECDSA *sig = &req->device_key_signature.signature.ecdsa;
    mbedtls_ecp_keypair ak;
    mbedtls_mpi r, s;
    TPMS_ATTEST attest;
    TPM2B_NAME ek_qn;
    uint8_t hash[P256_BYTES];
    size_t offset = 0;
    tether_status_t rc = TETHER_ERR_CRYPTO;

    mbedtls_ecp_keypair_init(&ak);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    memset(&attest, 0, sizeof(attest));
    if (req == NULL || victim == NULL || ak_public->type != TPM2_ALG_ECC ||
        ak_public->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
        req->device_key_signature.sigAlg != TPM2_ALG_ECDSA ||
        victim->ek_cert_len > sizeof(req->ek_cert)) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    req->ek_public = victim->ek_public;
    memcpy(req->ek_cert, victim->ek_cert, victim->ek_cert_len);
    req->ek_cert_len = victim->ek_cert_len;
    if (mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &ak, tether_random_mbedtls, NULL) != 0 ||
        mbedtls_mpi_write_binary(&ak.Q.X, ak_public->unique.ecc.x.buffer, P256_BYTES) != 0 ||
        mbedtls_mpi_write_binary(&ak.Q.Y, ak_public->unique.ecc.y.buffer, P256_BYTES) != 0)
        goto out;
    ak_public->unique.ecc.x.size = P256_BYTES;
    ak_public->unique.ecc.y.size = P256_BYTES;
    if (Tss2_MU_TPMS_ATTEST_Unmarshal(certify->attestationData, certify->size, &offset,
                                      &attest) != TSS2_RC_SUCCESS) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    /* The claim a TPM would only sign for a key under this EK. */
    if ((rc = tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT, &req->ek_public.publicArea,
                                         &ek_qn)) != TETHER_OK ||
        (rc = tether_tpm2_qualified_name(&ek_qn, 0, ak_public, &attest.qualifiedSigner)) !=
            TETHER_OK)
        goto out;
    rc = TETHER_ERR_CRYPTO;
    offset = 0;
    if (Tss2_MU_TPMS_ATTEST_Marshal(&attest, certify->attestationData,
                                    sizeof(certify->attestationData), &offset) != TSS2_RC_SUCCESS)
        goto out;
    certify->size = (uint16_t)offset;
    if (mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), certify->attestationData,
                   certify->size, hash) != 0 ||
        mbedtls_ecdsa_sign(&ak.grp, &r, &s, &ak.d, hash, sizeof(hash), tether_random_mbedtls,
                           NULL) != 0 ||
        mbedtls_mpi_write_binary(&r, sig->signatureR.buffer, P256_BYTES) != 0 ||
        mbedtls_mpi_write_binary(&s, sig->signatureS.buffer, P256_BYTES) != 0)
        goto out;
    sig->signatureR.size = P256_BYTES;
    sig->signatureS.size = P256_BYTES;
    rc = TETHER_OK;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_keypair_free(&ak);
    tether_wipe(&attest, sizeof(attest));
    return rc;
}
