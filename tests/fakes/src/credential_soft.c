/*
 * TPM2_ActivateCredential in software (tether/credential_soft.h): the TPM's
 * CryptSecretDecrypt and CredentialToSecret (TPM2 Part 1, 24; Part 3, 12.5),
 * with the EK checks, KDFs, AES-CFB and outer HMAC of lib's MakeCredential,
 * so that both sides follow one reading of the specification.
 */
#include "tether/credential_soft.h"

#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/rsa.h>
#include <tss2/tss2_mu.h>

#include "credential_internal.h"
#include "tether/bytes.h"
#include "tether/random.h"

/* A big-endian UINT16, the size field of a TPM2B. */
static size_t load_be16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

/* The TPM's CryptSecretDecrypt for RSA: OAEP with nameAlg, a seed of at
 * most the digest size. The caller's key is copied, never modified. */
static tether_status_t seed_decrypt_rsa(const tether_credential_ek_params_t *params,
                                        const mbedtls_pk_context *ek_private,
                                        const TPM2B_ENCRYPTED_SECRET *encrypted_secret,
                                        uint8_t *seed, size_t *seed_len)
{
    static const char label[] = TETHER_CREDENTIAL_LABEL_IDENTITY;
    int md_type = (int)mbedtls_md_get_type(params->md);
    mbedtls_rsa_context rsa;
    tether_status_t rc = TETHER_OK;
    int ret;

    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V21, md_type);
    if ((ret = mbedtls_rsa_copy(&rsa, mbedtls_pk_rsa(*ek_private))) != 0) {
        rc = tether_credential_crypto_fail("mbedtls_rsa_copy", ret);
        goto out;
    }
    mbedtls_rsa_set_padding(&rsa, MBEDTLS_RSA_PKCS_V21, md_type);
    if (encrypted_secret->size != mbedtls_rsa_get_len(&rsa)) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    /* Any failure here means the ciphertext is not for this key and label. */
    if (mbedtls_rsa_rsaes_oaep_decrypt(&rsa, tether_random_mbedtls, NULL, MBEDTLS_RSA_PRIVATE,
                                       (const unsigned char *)label, sizeof(label), seed_len,
                                       encrypted_secret->secret, seed, params->digest_len) != 0)
        rc = TETHER_ERR_VERIFY;
out:
    mbedtls_rsa_free(&rsa); /* zeroizes the copied private key */
    return rc;
}

/* The TPM's CryptSecretDecrypt for ECC: Z = x of d_ek * Q_e; the ephemeral
 * x is hashed exactly as it appears in the encrypted secret. */
static tether_status_t seed_decrypt_ecc(const tether_credential_ek_params_t *params,
                                        const TPMT_PUBLIC *pub,
                                        const mbedtls_pk_context *ek_private,
                                        const TPM2B_ENCRYPTED_SECRET *encrypted_secret,
                                        uint8_t *seed, size_t *seed_len)
{
    uint8_t z_bytes[MBEDTLS_ECP_MAX_BYTES];
    const mbedtls_ecp_keypair *ek = mbedtls_pk_ec(*ek_private);
    mbedtls_ecp_group group;
    mbedtls_ecp_point ephemeral;
    mbedtls_mpi z;
    TPMS_ECC_POINT point;
    size_t offset = 0;
    tether_status_t rc;
    int ret;

    mbedtls_ecp_group_init(&group);
    mbedtls_ecp_point_init(&ephemeral);
    mbedtls_mpi_init(&z);
    if (ek == NULL) {
        rc = TETHER_ERR_EK_MISMATCH;
        goto out;
    }
    if (encrypted_secret->size > sizeof(encrypted_secret->secret) ||
        Tss2_MU_TPMS_ECC_POINT_Unmarshal(encrypted_secret->secret, encrypted_secret->size, &offset,
                                         &point) != TSS2_RC_SUCCESS ||
        offset != encrypted_secret->size) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    /* A local group: mbedTLS wants a mutable one and the key is only read. */
    if ((ret = mbedtls_ecp_group_load(&group, params->group)) != 0 ||
        (ret = mbedtls_mpi_read_binary(&ephemeral.X, point.x.buffer, point.x.size)) != 0 ||
        (ret = mbedtls_mpi_read_binary(&ephemeral.Y, point.y.buffer, point.y.size)) != 0 ||
        (ret = mbedtls_mpi_lset(&ephemeral.Z, 1)) != 0) {
        rc = tether_credential_crypto_fail("loading the ephemeral point", ret);
        goto out;
    }
    /* The TPM answers TPM_RC_ECC_POINT; a changed byte lands here. */
    if (mbedtls_ecp_check_pubkey(&group, &ephemeral) != 0) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    if ((ret = mbedtls_ecdh_compute_shared(&group, &z, &ephemeral, &ek->d, tether_random_mbedtls,
                                           NULL)) != 0 ||
        (ret = mbedtls_mpi_write_binary(&z, z_bytes, params->coordinate_len)) != 0) {
        rc = tether_credential_crypto_fail("ECDH with the ephemeral key", ret);
        goto out;
    }
    rc = tether_credential_kdfe(params->name_alg, z_bytes, params->coordinate_len,
                                TETHER_CREDENTIAL_LABEL_IDENTITY, point.x.buffer, point.x.size,
                                pub->unique.ecc.x.buffer, pub->unique.ecc.x.size,
                                (uint32_t)(params->digest_len * 8), seed, params->digest_len);
    if (rc == TETHER_OK)
        *seed_len = params->digest_len;
out:
    mbedtls_mpi_free(&z);
    mbedtls_ecp_point_free(&ephemeral);
    mbedtls_ecp_group_free(&group);
    tether_wipe(z_bytes, sizeof(z_bytes));
    return rc;
}

tether_status_t tether_credential_activate_soft(const mbedtls_pk_context *ek_private,
                                                const TPM2B_PUBLIC *ek_public,
                                                const TPM2B_NAME *object_name,
                                                const TPM2B_ID_OBJECT *credential_blob,
                                                const TPM2B_ENCRYPTED_SECRET *encrypted_secret,
                                                uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t seed[MBEDTLS_MD_MAX_SIZE], expected[MBEDTLS_MD_MAX_SIZE];
    uint8_t plain[sizeof(TPMS_ID_OBJECT)]; /* the size of TPM2B_ID_OBJECT.credential */
    const uint8_t *enc_identity;
    mbedtls_pk_context ek_pk;
    tether_credential_ek_params_t params;
    size_t seed_len = 0, integrity_len, enc_len, secret_len;
    tether_status_t rc;

    if (out_len == NULL || (out == NULL && out_size > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    mbedtls_pk_init(&ek_pk);
    if (ek_private == NULL || credential_blob == NULL || encrypted_secret == NULL) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((rc = tether_credential_check_ek(ek_public, &params)) != TETHER_OK ||
        (rc = tether_credential_check_name(object_name)) != TETHER_OK ||
        (rc = tether_credential_load_ek(&ek_public->publicArea, &ek_pk)) != TETHER_OK)
        goto out;
    if (mbedtls_pk_get_type(ek_private) !=
            (ek_public->publicArea.type == TPM2_ALG_RSA ? MBEDTLS_PK_RSA : MBEDTLS_PK_ECKEY) ||
        mbedtls_pk_check_pair(&ek_pk, ek_private) != 0) {
        rc = TETHER_ERR_EK_MISMATCH;
        goto out;
    }

    if (ek_public->publicArea.type == TPM2_ALG_RSA)
        rc = seed_decrypt_rsa(&params, ek_private, encrypted_secret, seed, &seed_len);
    else
        rc = seed_decrypt_ecc(&params, &ek_public->publicArea, ek_private, encrypted_secret, seed,
                              &seed_len);
    if (rc != TETHER_OK)
        goto out;

    /* The TPM's CredentialToSecret: outer HMAC first, then decryption, then
     * the TPM2B_DIGEST inside, which must use up encIdentity exactly. */
    if (credential_blob->size > sizeof(credential_blob->credential) || credential_blob->size < 2) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    integrity_len = load_be16(credential_blob->credential);
    if (integrity_len > credential_blob->size - 2u) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    enc_identity = credential_blob->credential + 2 + integrity_len;
    enc_len = credential_blob->size - 2u - integrity_len;
    if ((rc = tether_credential_hmac(&params, seed, seed_len, enc_identity, enc_len, object_name,
                                     expected)) != TETHER_OK)
        goto out;
    if (integrity_len != params.digest_len ||
        !tether_ct_equal(expected, credential_blob->credential + 2, params.digest_len)) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    if ((rc = tether_credential_cfb(&params, seed, seed_len, object_name, MBEDTLS_AES_DECRYPT,
                                    enc_identity, plain, enc_len)) != TETHER_OK)
        goto out;
    if (enc_len < 2 || (secret_len = load_be16(plain)) != enc_len - 2 ||
        secret_len > sizeof(TPMU_HA)) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if (secret_len > out_size) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    if (secret_len > 0)
        memcpy(out, plain + 2, secret_len);
    *out_len = secret_len;
out:
    tether_wipe(seed, sizeof(seed));
    tether_wipe(expected, sizeof(expected));
    tether_wipe(plain, sizeof(plain));
    mbedtls_pk_free(&ek_pk);
    if (rc != TETHER_OK)
        tether_wipe(out, out_size);
    return rc;
}
