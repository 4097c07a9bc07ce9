#include "tether/attest.h"

#include <string.h>

#include <tss2/tss2_mu.h>

tether_status_t tether_attest_parse(const uint8_t *attest, size_t len,
                                    TPMI_ST_ATTEST expected_type, TPMS_ATTEST *out)
{
    size_t offset = 0;

    if (attest == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    if (len > sizeof(((TPM2B_ATTEST *)0)->attestationData) ||
        Tss2_MU_TPMS_ATTEST_Unmarshal(attest, len, &offset, out) != TSS2_RC_SUCCESS ||
        offset != len)
        goto bad;
    /* Only the TPM writes this magic into what it signs (Part 1, 36.2). */
    if (out->magic != TPM2_GENERATED_VALUE)
        goto bad;
    if (expected_type != 0 && out->type != expected_type)
        goto bad;
    return TETHER_OK;
bad:
    memset(out, 0, sizeof(*out));
    return TETHER_ERR_PARSE;
}
