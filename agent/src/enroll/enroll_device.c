#include "enroll_device.h"

#include <string.h>

#include <mbedtls/sha256.h>

#include "tether/bytes.h"
#include "tether/log.h"

/* Uses an existing counter only if it is one tether would have defined: an
 * 8-byte TPM_NT_COUNTER that only its own authorisation writes. */
static tether_status_t use_existing_counter(tether_tpm_t *tpm, TPM2_HANDLE index,
                                            TPM2B_NV_PUBLIC *pub)
{
    TPM2B_NAME name;
    tether_status_t rc;
    TPMA_NV attrs;

    if ((rc = tether_tpm_nv_read_public(tpm, index, pub, &name)) != TETHER_OK)
        return rc;
    attrs = pub->nvPublic.attributes;
    if (((attrs & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT) != TPM2_NT_COUNTER ||
        pub->nvPublic.dataSize != 8 || !(attrs & TPMA_NV_AUTHWRITE) ||
        (attrs & (TPMA_NV_OWNERWRITE | TPMA_NV_PPWRITE | TPMA_NV_POLICYWRITE)))
        return tether_tpm_fail(tpm, TETHER_ERR_STATE, 0,
                               "NV index 0x%08x is in use by something else than a tether "
                               "counter; choose another with --counter-index",
                               index);
    tether_info("agent", "reusing the exchange counter at NV 0x%08x", index);
    return TETHER_OK;
}

tether_status_t tether_agent_enroll_prepare(tether_tpm_t *tpm, tether_ek_type_t want,
                                            TPM2_HANDLE counter_index,
                                            tether_enroll_request_t *req,
                                            tether_agent_state_t *state)
{
    tether_ek_t ek;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE, dev = TETHER_TPM_HANDLE_NONE;
    tether_tpm_attestation_t certify;
    uint8_t qualifying[32];
    TPM2B_NAME name;
    tether_status_t rc;

    memset(&ek, 0, sizeof(ek));
    memset(req, 0, sizeof(*req));
    memset(state, 0, sizeof(*state));
    if ((rc = tether_ek_open(tpm, want, &ek)) != TETHER_OK)
        goto out;
    if ((rc = tether_tpm_create_key(tpm, ek.handle, TETHER_KEY_AK, &state->ak)) != TETHER_OK ||
        (rc = tether_tpm_create_key(tpm, ek.handle, TETHER_KEY_DEVICE, &state->device_key)) !=
            TETHER_OK ||
        (rc = tether_tpm_load_key(tpm, ek.handle, &state->ak, &ak)) != TETHER_OK ||
        (rc = tether_tpm_load_key(tpm, ek.handle, &state->device_key, &dev)) != TETHER_OK)
        goto out;
    if (mbedtls_sha256_ret((const unsigned char *)TETHER_ENROLL_CERTIFY_LABEL,
                           strlen(TETHER_ENROLL_CERTIFY_LABEL), qualifying, 0) != 0) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    if ((rc = tether_tpm_certify(tpm, ak, dev, qualifying, sizeof(qualifying), &certify)) !=
        TETHER_OK)
        goto out;

    rc = tether_tpm_nv_define_counter(tpm, counter_index);
    if (rc == TETHER_ERR_STATE)
        rc = use_existing_counter(tpm, counter_index, &req->counter_public);
    if (rc != TETHER_OK)
        goto out;
    /* TPMA_NV_WRITTEN is part of the index's name and is set by the first
     * increment: increment before sending the public area, so the name the
     * fleet records is the one every later NV_Certify carries. */
    if ((rc = tether_tpm_nv_increment(tpm, counter_index)) != TETHER_OK ||
        (rc = tether_tpm_nv_read_public(tpm, counter_index, &req->counter_public, &name)) !=
            TETHER_OK)
        goto out;

    req->ek_public = ek.public_area;
    memcpy(req->ek_cert, ek.cert_der, ek.cert_len);
    req->ek_cert_len = ek.cert_len;
    req->ak_public = state->ak.public_area;
    req->device_key_public = state->device_key.public_area;
    req->device_key_certify = certify.attest;
    req->device_key_signature = certify.signature;
    state->ek_type = ek.type;
    state->counter_index = counter_index;
out:
    (void)tether_tpm_flush(tpm, dev);
    (void)tether_tpm_flush(tpm, ak);
    tether_ek_free(tpm, &ek);
    if (rc != TETHER_OK) {
        tether_enroll_request_wipe(req);
        tether_wipe(state, sizeof(*state));
    }
    return rc;
}

tether_status_t tether_agent_enroll_activate(tether_tpm_t *tpm, const tether_agent_state_t *state,
                                             const TPM2B_ID_OBJECT *credential_blob,
                                             const TPM2B_ENCRYPTED_SECRET *encrypted_secret,
                                             const char *enrollment_id, uint8_t proof[32])
{
    tether_ek_t ek;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    TPM2B_DIGEST secret;
    tether_status_t rc;

    memset(&ek, 0, sizeof(ek));
    memset(&secret, 0, sizeof(secret));
    if ((rc = tether_ek_open(tpm, state->ek_type, &ek)) != TETHER_OK ||
        (rc = tether_tpm_load_key(tpm, ek.handle, &state->ak, &ak)) != TETHER_OK ||
        (rc = tether_tpm_activate_credential(tpm, ak, ek.handle, credential_blob, encrypted_secret,
                                             &secret)) != TETHER_OK)
        goto out;
    rc = tether_enroll_activation_proof(secret.buffer, secret.size, enrollment_id, proof);
out:
    tether_wipe(&secret, sizeof(secret));
    (void)tether_tpm_flush(tpm, ak);
    tether_ek_free(tpm, &ek);
    return rc;
}
