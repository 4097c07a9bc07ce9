#include "tpm_templates.h"

#include <string.h>

/* TCG EK Credential Profile 2.x, B.3.2: PolicyA, PolicySecret(TPM_RH_ENDORSEMENT). */
static const uint8_t policy_a_sha256[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

/* B.4: PolicyB for the SHA-384 high-range templates. */
static const uint8_t policy_b_sha384[48] = {
    0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a,
    0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4, 0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca,
    0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12};

#define EK_LOW_ATTRIBUTES                                                              \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
     TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

void tether_ek_template(tether_ek_type_t type, TPM2B_PUBLIC *tmpl)
{
    TPMT_PUBLIC *p = &tmpl->publicArea;

    memset(tmpl, 0, sizeof(*tmpl));
    switch (type) {
    case TETHER_EK_RSA2048: /* L-1 */
        p->type = TPM2_ALG_RSA;
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = EK_LOW_ATTRIBUTES;
        p->authPolicy.size = sizeof(policy_a_sha256);
        memcpy(p->authPolicy.buffer, policy_a_sha256, sizeof(policy_a_sha256));
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
        p->unique.rsa.size = 256; /* 256 zero bytes */
        break;
    case TETHER_EK_ECC_P256: /* L-2 */
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = EK_LOW_ATTRIBUTES;
        p->authPolicy.size = sizeof(policy_a_sha256);
        memcpy(p->authPolicy.buffer, policy_a_sha256, sizeof(policy_a_sha256));
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 128;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 32; /* 32 zero bytes each */
        p->unique.ecc.y.size = 32;
        break;
    case TETHER_EK_ECC_P384: /* H-3: userWithAuth set, empty unique */
    default:
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA384;
        p->objectAttributes = EK_LOW_ATTRIBUTES | TPMA_OBJECT_USERWITHAUTH;
        p->authPolicy.size = sizeof(policy_b_sha384);
        memcpy(p->authPolicy.buffer, policy_b_sha384, sizeof(policy_b_sha384));
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 256;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        break;
    }
}

void tether_key_template(tether_key_kind_t kind, TPM2B_PUBLIC *tmpl)
{
    TPMT_PUBLIC *p = &tmpl->publicArea;

    memset(tmpl, 0, sizeof(*tmpl));
    p->type = TPM2_ALG_ECC;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                          TPMA_OBJECT_SIGN_ENCRYPT;
    /* Restricted: the AK signs only what the TPM itself produced (quotes,
     * certifications), never an outside digest that mimics TPMS_ATTEST. */
    if (kind == TETHER_KEY_AK)
        p->objectAttributes |= TPMA_OBJECT_RESTRICTED;
    p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

void tether_counter_template(TPM2_HANDLE nv_index, TPM2B_NV_PUBLIC *tmpl)
{
    memset(tmpl, 0, sizeof(*tmpl));
    tmpl->nvPublic.nvIndex = nv_index;
    tmpl->nvPublic.nameAlg = TPM2_ALG_SHA256;
    tmpl->nvPublic.attributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHWRITE |
                                TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;
    tmpl->nvPublic.dataSize = 8;
}
