/*
 * TPM structures that arrive from outside: TPMS_ATTEST (quotes and
 * certifications sent to fleetd), key blobs read back from the state
 * directory, public areas and signatures checked in software.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mbedtls/pk.h>
#include <tss2/tss2_mu.h>

#include "tether/attest.h"
#include "tether/mbedtls_bridge.h"
#include "tether/tpm.h"
#include "tether/tpm2_public.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TPMS_ATTEST attest;
    tether_tpm_key_blob_t blob;
    TPM2B_PUBLIC pub;
    TPMT_SIGNATURE sig;
    TPM2B_NAME name, qn;
    size_t offset = 0;

    (void)tether_attest_parse(data, size, 0, &attest);
    (void)tether_attest_parse(data, size, TPM2_ST_ATTEST_QUOTE, &attest);
    if (tether_tpm_key_blob_unmarshal(data, size, &blob) == TETHER_OK) {
        uint8_t out[sizeof(blob) + 16];
        size_t len = 0;
        /* What parses must marshal back to the same bytes. */
        if (tether_tpm_key_blob_marshal(&blob, out, sizeof(out), &len) != TETHER_OK ||
            len != size || memcmp(out, data, size) != 0)
            __builtin_trap();
    }

    memset(&pub, 0, sizeof(pub));
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, size, &offset, &pub) != TSS2_RC_SUCCESS)
        return 0;
    {
        mbedtls_pk_context pk;
        tether_ec_key_t key;

        mbedtls_pk_init(&pk);
        (void)tether_tpm2_public_to_pk(&pub.publicArea, &pk);
        mbedtls_pk_free(&pk);
        tether_ec_key_init(&key);
        (void)tether_tpm2_public_to_ec_key(&pub.publicArea, &key);
        tether_ec_key_free(&key);
    }
    (void)tether_tpm2_public_name(&pub.publicArea, &name);
    (void)tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT, &pub.publicArea, &qn);
    memset(&sig, 0, sizeof(sig));
    if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(data, size, &offset, &sig) == TSS2_RC_SUCCESS)
        (void)tether_tpm2_verify_signature(&pub.publicArea, data + offset, size - offset, &sig);
    return 0;
}
