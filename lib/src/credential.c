#include "tether/credential.h"

#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>
#include <tss2/tss2_mu.h>

#include "credential_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/random.h"
#include "tether/mbedtls_bridge.h"
#include "tether/tpm2_public.h"

#define LOG_COMPONENT "credential"

/* Labels of TPM2 Part 1, 24.4 and 24.5 (IDENTITY, shared with the
 * activation side, is in credential_internal.h). The KDFs add the
 * terminating NUL. */
#define LABEL_STORAGE "STORAGE"
#define LABEL_INTEGRITY "INTEGRITY"

/* The AES-CFB IV of the credential wrap is all zero (Part 1, 24.4): each
 * symKey is used once, derived from a fresh seed. */
#define CFB_IV_SIZE 16

static void put_u16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t get_u16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

static const mbedtls_md_info_t *md_for(TPMI_ALG_HASH alg)
{
    int md = tether_tpm2_md_type(alg);

    return md == MBEDTLS_MD_NONE ? NULL : mbedtls_md_info_from_type((mbedtls_md_type_t)md);
}

/* Logs an mbedTLS failure decoded and gives TETHER_ERR_CRYPTO. */
tether_status_t tether_credential_crypto_fail(const char *what, int ret)
{
    char text[128];

    mbedtls_strerror(ret, text, sizeof(text));
    tether_error(LOG_COMPONENT, "%s failed: -0x%04x %s", what, (unsigned int)-ret, text);
    return TETHER_ERR_CRYPTO;
}

/* Skips empty inputs: some mbedTLS versions reject a NULL pointer even with
 * a zero length. */
static int md_update(mbedtls_md_context_t *ctx, const uint8_t *data, size_t len)
{
    return len == 0 ? 0 : mbedtls_md_update(ctx, data, len);
}

static int hmac_update(mbedtls_md_context_t *ctx, const uint8_t *data, size_t len)
{
    return len == 0 ? 0 : mbedtls_md_hmac_update(ctx, data, len);
}

typedef enum kdf_kind { KDF_A, KDF_E } kdf_kind_t;

/* KDFa and KDFe (TPM2 Part 1, 11.4.10.2 and 11.4.10.3) share their framing:
 * a 32-bit big-endian block counter from 1, the label with its NUL, two
 * context values, output truncated to bits with the spare high bits of the
 * first byte cleared. KDFa keys an HMAC with the secret and appends the bit
 * count; KDFe hashes the secret (Z) after the counter. */
static tether_status_t kdf(kdf_kind_t kind, TPMI_ALG_HASH hash_alg, const uint8_t *secret,
                           size_t secret_len, const char *label, const uint8_t *context_u,
                           size_t context_u_len, const uint8_t *context_v, size_t context_v_len,
                           uint32_t bits, uint8_t *out, size_t out_size)
{
    uint8_t block[MBEDTLS_MD_MAX_SIZE];
    uint8_t counter_be[4], bits_be[4];
    const mbedtls_md_info_t *md;
    mbedtls_md_context_t ctx;
    size_t out_len, digest_len, done = 0;
    uint32_t counter = 0;
    tether_status_t rc = TETHER_OK;
    int ret;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_md_init(&ctx);
    if (label == NULL || bits == 0 || (secret == NULL && secret_len > 0) ||
        (context_u == NULL && context_u_len > 0) || (context_v == NULL && context_v_len > 0)) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((md = md_for(hash_alg)) == NULL) {
        rc = TETHER_ERR_UNSUPPORTED;
        goto out;
    }
    out_len = bits / 8 + (bits % 8 != 0);
    if (out_len > out_size) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    digest_len = mbedtls_md_get_size(md);
    if ((ret = mbedtls_md_setup(&ctx, md, kind == KDF_A)) != 0) {
        rc = tether_credential_crypto_fail("mbedtls_md_setup", ret);
        goto out;
    }
    put_u32(bits_be, bits);
    while (done < out_len) {
        size_t n = out_len - done < digest_len ? out_len - done : digest_len;

        put_u32(counter_be, ++counter);
        if (kind == KDF_A) {
            ret = mbedtls_md_hmac_starts(&ctx, secret, secret_len);
            ret = ret ? ret : hmac_update(&ctx, counter_be, sizeof(counter_be));
            ret = ret ? ret : hmac_update(&ctx, (const uint8_t *)label, strlen(label) + 1);
            ret = ret ? ret : hmac_update(&ctx, context_u, context_u_len);
            ret = ret ? ret : hmac_update(&ctx, context_v, context_v_len);
            ret = ret ? ret : hmac_update(&ctx, bits_be, sizeof(bits_be));
            ret = ret ? ret : mbedtls_md_hmac_finish(&ctx, block);
        } else {
            ret = mbedtls_md_starts(&ctx);
            ret = ret ? ret : md_update(&ctx, counter_be, sizeof(counter_be));
            ret = ret ? ret : md_update(&ctx, secret, secret_len);
            ret = ret ? ret : md_update(&ctx, (const uint8_t *)label, strlen(label) + 1);
            ret = ret ? ret : md_update(&ctx, context_u, context_u_len);
            ret = ret ? ret : md_update(&ctx, context_v, context_v_len);
            ret = ret ? ret : mbedtls_md_finish(&ctx, block);
        }
        if (ret != 0) {
            rc = tether_credential_crypto_fail(kind == KDF_A ? "KDFa HMAC" : "KDFe hash", ret);
            goto out;
        }
        memcpy(out + done, block, n);
        done += n;
    }
    if (bits % 8 != 0)
        out[0] = (uint8_t)(out[0] & ((1u << (bits % 8)) - 1u));
out:
    mbedtls_md_free(&ctx);
    tether_wipe(block, sizeof(block));
    if (rc != TETHER_OK)
        tether_wipe(out, out_size);
    return rc;
}

tether_status_t tether_credential_kdfa(TPMI_ALG_HASH hash_alg, const uint8_t *key, size_t key_len,
                                       const char *label, const uint8_t *context_u,
                                       size_t context_u_len, const uint8_t *context_v,
                                       size_t context_v_len, uint32_t bits, uint8_t *out,
                                       size_t out_size)
{
    return kdf(KDF_A, hash_alg, key, key_len, label, context_u, context_u_len, context_v,
               context_v_len, bits, out, out_size);
}

tether_status_t tether_credential_kdfe(TPMI_ALG_HASH hash_alg, const uint8_t *z, size_t z_len,
                                       const char *label, const uint8_t *party_u,
                                       size_t party_u_len, const uint8_t *party_v,
                                       size_t party_v_len, uint32_t bits, uint8_t *out,
                                       size_t out_size)
{
    return kdf(KDF_E, hash_alg, z, z_len, label, party_u, party_u_len, party_v, party_v_len, bits,
               out, out_size);
}

/* Checks that the EK can receive a credential the way a TPM would process
 * it, and that tether supports its algorithms. */
tether_status_t tether_credential_check_ek(const TPM2B_PUBLIC *ek_public,
                                           tether_credential_ek_params_t *params)
{
    const TPMT_PUBLIC *pub;
    const TPMT_SYM_DEF_OBJECT *sym;
    TPMA_OBJECT attributes;

    memset(params, 0, sizeof(*params));
    if (ek_public == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    pub = &ek_public->publicArea;
    if (pub->type != TPM2_ALG_RSA && pub->type != TPM2_ALG_ECC) {
        tether_debug(LOG_COMPONENT, "EK type 0x%04x is not supported (RSA or ECC)", pub->type);
        return TETHER_ERR_UNSUPPORTED;
    }
    if (pub->nameAlg != TPM2_ALG_SHA256 && pub->nameAlg != TPM2_ALG_SHA384) {
        tether_debug(LOG_COMPONENT, "EK nameAlg 0x%04x is not supported (SHA-256 or SHA-384)",
                     pub->nameAlg);
        return TETHER_ERR_UNSUPPORTED;
    }
    if ((params->md = md_for(pub->nameAlg)) == NULL)
        return TETHER_ERR_UNSUPPORTED;
    params->name_alg = pub->nameAlg;
    params->digest_len = mbedtls_md_get_size(params->md);

    /* TPM2_ActivateCredential needs a storage key: restricted, decrypt, not
     * sign (TPM2 Part 3, 12.5). Anything else is not an EK. */
    attributes = pub->objectAttributes;
    if ((attributes & TPMA_OBJECT_RESTRICTED) == 0 || (attributes & TPMA_OBJECT_DECRYPT) == 0 ||
        (attributes & TPMA_OBJECT_SIGN_ENCRYPT) != 0) {
        tether_debug(LOG_COMPONENT,
                     "EK objectAttributes 0x%08x are not those of a restricted decryption key",
                     attributes);
        return TETHER_ERR_INVALID_ARGUMENT;
    }

    sym = pub->type == TPM2_ALG_RSA ? &pub->parameters.rsaDetail.symmetric
                                    : &pub->parameters.eccDetail.symmetric;
    if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
        (sym->keyBits.aes != 128 && sym->keyBits.aes != 192 && sym->keyBits.aes != 256)) {
        tether_debug(LOG_COMPONENT, "EK symmetric 0x%04x/%u/0x%04x is not supported (AES-CFB)",
                     sym->algorithm, sym->keyBits.sym, sym->mode.sym);
        return TETHER_ERR_UNSUPPORTED;
    }
    params->aes_bits = sym->keyBits.aes;

    if (pub->type == TPM2_ALG_RSA) {
        const TPMS_RSA_PARMS *rsa = &pub->parameters.rsaDetail;

        /* A restricted decryption key has no scheme of its own (Part 2, 12.2.3.5). */
        if (rsa->scheme.scheme != TPM2_ALG_NULL)
            return TETHER_ERR_INVALID_ARGUMENT;
        if (rsa->keyBits != 2048 || (rsa->exponent != 0 && rsa->exponent != 65537)) {
            tether_debug(LOG_COMPONENT, "EK RSA %u bits, exponent %u is not supported",
                         rsa->keyBits, rsa->exponent);
            return TETHER_ERR_UNSUPPORTED;
        }
        if (pub->unique.rsa.size != 2048 / 8)
            return TETHER_ERR_INVALID_ARGUMENT;
        return TETHER_OK;
    }

    if (pub->parameters.eccDetail.scheme.scheme != TPM2_ALG_NULL ||
        pub->parameters.eccDetail.kdf.scheme != TPM2_ALG_NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    switch (pub->parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256:
        params->group = MBEDTLS_ECP_DP_SECP256R1;
        params->coordinate_len = 32;
        break;
    case TPM2_ECC_NIST_P384:
        params->group = MBEDTLS_ECP_DP_SECP384R1;
        params->coordinate_len = 48;
        break;
    default:
        tether_debug(LOG_COMPONENT, "EK curve 0x%04x is not supported (P-256 or P-384)",
                     pub->parameters.eccDetail.curveID);
        return TETHER_ERR_UNSUPPORTED;
    }
    if (pub->unique.ecc.x.size == 0 || pub->unique.ecc.x.size > params->coordinate_len ||
        pub->unique.ecc.y.size == 0 || pub->unique.ecc.y.size > params->coordinate_len)
        return TETHER_ERR_INVALID_ARGUMENT;
    return TETHER_OK;
}

/* An object name is nameAlg || H(public area) (TPM2 Part 1, 16). Its bytes
 * go into the KDF and the HMAC as they are; the size must fit the alg. */
tether_status_t tether_credential_check_name(const TPM2B_NAME *name)
{
    const mbedtls_md_info_t *md;
    TPMI_ALG_HASH alg;

    if (name == NULL || name->size < 2 || name->size > sizeof(name->name))
        return TETHER_ERR_INVALID_ARGUMENT;
    alg = (TPMI_ALG_HASH)get_u16(name->name);
    /* SHA-1 names are refused: an AK named by a SHA-1 digest is not one
     * tether issues credentials to. */
    if ((alg != TPM2_ALG_SHA256 && alg != TPM2_ALG_SHA384 && alg != TPM2_ALG_SHA512) ||
        (md = md_for(alg)) == NULL) {
        tether_debug(LOG_COMPONENT, "object name algorithm 0x%04x is not supported", alg);
        return TETHER_ERR_UNSUPPORTED;
    }
    if (name->size != 2 + mbedtls_md_get_size(md))
        return TETHER_ERR_INVALID_ARGUMENT;
    return TETHER_OK;
}

/* The EK public area as an mbedTLS key; a modulus or point that is not a
 * valid key is the caller's input error. */
tether_status_t tether_credential_load_ek(const TPMT_PUBLIC *pub, mbedtls_pk_context *pk)
{
    tether_status_t rc = tether_tpm2_public_to_pk(pub, pk);

    return rc == TETHER_ERR_PARSE ? TETHER_ERR_INVALID_ARGUMENT : rc;
}

/* RSA secret sharing (TPM2 Part 1, Annex B, "Secret Sharing"; the TPM's
 * CryptSecretEncrypt): OAEP with the EK nameAlg for hash and MGF1 and the
 * label "IDENTITY\0". */
static tether_status_t seed_encrypt_rsa(const tether_credential_ek_params_t *params,
                                        mbedtls_pk_context *pk,
                                        int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
                                        const uint8_t *seed,
                                        TPM2B_ENCRYPTED_SECRET *encrypted_secret)
{
    static const char label[] = TETHER_CREDENTIAL_LABEL_IDENTITY;
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*pk);
    size_t len;
    int ret;

    if (rsa == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = mbedtls_rsa_get_len(rsa);
    if (len > sizeof(encrypted_secret->secret))
        return TETHER_ERR_UNSUPPORTED;
    mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, (int)mbedtls_md_get_type(params->md));
    ret = mbedtls_rsa_rsaes_oaep_encrypt(rsa, f_rng, p_rng, MBEDTLS_RSA_PUBLIC,
                                         (const unsigned char *)label, sizeof(label),
                                         params->digest_len, seed, encrypted_secret->secret);
    if (ret != 0)
        return tether_credential_crypto_fail("RSA-OAEP encryption of the seed", ret);
    encrypted_secret->size = (uint16_t)len;
    return TETHER_OK;
}

/* The ephemeral private key: curve-size big-endian draws from f_rng until
 * one is in [1, n-1] (rejection sampling, as mbedTLS does, but with the
 * draws spelled out so that tests can fix them). For P-256 and P-384 n is
 * within 2^-32 of 2^bits, so a redraw is rare. */
static tether_status_t ephemeral_scalar(const mbedtls_ecp_group *group, size_t len,
                                        int (*f_rng)(void *, unsigned char *, size_t),
                                        void *p_rng, mbedtls_mpi *d)
{
    uint8_t buf[MBEDTLS_ECP_MAX_BYTES];
    tether_status_t rc = TETHER_ERR_CRYPTO;
    int ret;

    for (int attempt = 0; attempt < 32; attempt++) {
        if ((ret = f_rng(p_rng, buf, len)) != 0) {
            rc = tether_credential_crypto_fail("random generator", ret);
            break;
        }
        if ((ret = mbedtls_mpi_read_binary(d, buf, len)) != 0) {
            rc = tether_credential_crypto_fail("mbedtls_mpi_read_binary", ret);
            break;
        }
        if (mbedtls_ecp_check_privkey(group, d) == 0) {
            rc = TETHER_OK;
            break;
        }
    }
    tether_wipe(buf, sizeof(buf));
    return rc;
}

/* ECC secret sharing (TPM2 Part 1, Annex C, "Secret Sharing"; the TPM's
 * CryptSecretEncrypt):
 * Z = x of d_e * Q_ek, padded to the field size; seed = KDFe(nameAlg, Z,
 * "IDENTITY", x of Q_e, x of Q_ek). The ephemeral coordinates are padded to
 * the field size as the TPM pads them; the EK's x is used exactly as it
 * appears in its public area, because that is the buffer the TPM hashes. */
static tether_status_t seed_encrypt_ecc(const tether_credential_ek_params_t *params,
                                        const TPMT_PUBLIC *pub, mbedtls_pk_context *pk,
                                        int (*f_rng)(void *, unsigned char *, size_t), void *p_rng,
                                        uint8_t *seed, TPM2B_ENCRYPTED_SECRET *encrypted_secret)
{
    uint8_t z_bytes[MBEDTLS_ECP_MAX_BYTES];
    mbedtls_ecp_keypair *ek = mbedtls_pk_ec(*pk);
    mbedtls_ecp_point ephemeral;
    mbedtls_mpi d, z;
    TPMS_ECC_POINT point;
    size_t len = params->coordinate_len, offset = 0;
    tether_status_t rc;
    int ret;

    mbedtls_ecp_point_init(&ephemeral);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&z);
    memset(&point, 0, sizeof(point));
    if (ek == NULL) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((rc = ephemeral_scalar(&ek->grp, len, f_rng, p_rng, &d)) != TETHER_OK)
        goto out;
    if ((ret = mbedtls_ecp_mul(&ek->grp, &ephemeral, &d, &ek->grp.G, f_rng, p_rng)) != 0 ||
        (ret = mbedtls_ecdh_compute_shared(&ek->grp, &z, &ek->Q, &d, f_rng, p_rng)) != 0) {
        rc = tether_credential_crypto_fail("ECDH with the EK", ret);
        goto out;
    }
    point.x.size = (uint16_t)len;
    point.y.size = (uint16_t)len;
    if ((ret = mbedtls_mpi_write_binary(&ephemeral.X, point.x.buffer, len)) != 0 ||
        (ret = mbedtls_mpi_write_binary(&ephemeral.Y, point.y.buffer, len)) != 0 ||
        (ret = mbedtls_mpi_write_binary(&z, z_bytes, len)) != 0) {
        rc = tether_credential_crypto_fail("mbedtls_mpi_write_binary", ret);
        goto out;
    }
    if (Tss2_MU_TPMS_ECC_POINT_Marshal(&point, encrypted_secret->secret,
                                       sizeof(encrypted_secret->secret),
                                       &offset) != TSS2_RC_SUCCESS) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    encrypted_secret->size = (uint16_t)offset;
    rc = tether_credential_kdfe(params->name_alg, z_bytes, len, TETHER_CREDENTIAL_LABEL_IDENTITY,
                                point.x.buffer, point.x.size, pub->unique.ecc.x.buffer,
                                pub->unique.ecc.x.size, (uint32_t)(params->digest_len * 8), seed,
                                params->digest_len);
out:
    mbedtls_mpi_free(&d); /* mbedtls_mpi_free zeroizes */
    mbedtls_mpi_free(&z);
    mbedtls_ecp_point_free(&ephemeral);
    tether_wipe(z_bytes, sizeof(z_bytes));
    return rc;
}

/* symKey = KDFa(nameAlg, seed, "STORAGE", name, -, keyBits); AES-CFB with a
 * zero IV over len bytes (Part 1, 24.4). mode is MBEDTLS_AES_ENCRYPT or
 * MBEDTLS_AES_DECRYPT. */
tether_status_t tether_credential_cfb(const tether_credential_ek_params_t *params,
                                      const uint8_t *seed, size_t seed_len, const TPM2B_NAME *name,
                                      int mode, const uint8_t *in, uint8_t *out, size_t len)
{
    uint8_t key[32], iv[CFB_IV_SIZE];
    mbedtls_aes_context aes;
    size_t iv_offset = 0;
    tether_status_t rc;
    int ret;

    mbedtls_aes_init(&aes);
    memset(iv, 0, sizeof(iv));
    rc = tether_credential_kdfa(params->name_alg, seed, seed_len, LABEL_STORAGE, name->name,
                                name->size, NULL, 0, params->aes_bits, key, sizeof(key));
    if (rc != TETHER_OK)
        goto out;
    /* CFB runs the block cipher forward in both directions. */
    if ((ret = mbedtls_aes_setkey_enc(&aes, key, params->aes_bits)) != 0 ||
        (ret = mbedtls_aes_crypt_cfb128(&aes, mode, len, &iv_offset, iv, in, out)) != 0)
        rc = tether_credential_crypto_fail("AES-CFB", ret);
out:
    mbedtls_aes_free(&aes);
    tether_wipe(key, sizeof(key));
    tether_wipe(iv, sizeof(iv));
    return rc;
}

/* HMACkey = KDFa(nameAlg, seed, "INTEGRITY", -, -, digest bits);
 * outerHMAC = HMAC(HMACkey, encIdentity || name) (Part 1, 24.5). */
tether_status_t tether_credential_hmac(const tether_credential_ek_params_t *params,
                                       const uint8_t *seed, size_t seed_len,
                                       const uint8_t *enc_identity, size_t enc_len,
                                       const TPM2B_NAME *name, uint8_t *mac)
{
    uint8_t key[MBEDTLS_MD_MAX_SIZE];
    mbedtls_md_context_t ctx;
    tether_status_t rc;
    int ret;

    mbedtls_md_init(&ctx);
    rc = tether_credential_kdfa(params->name_alg, seed, seed_len, LABEL_INTEGRITY, NULL, 0, NULL,
                                0, (uint32_t)(params->digest_len * 8), key, sizeof(key));
    if (rc != TETHER_OK)
        goto out;
    ret = mbedtls_md_setup(&ctx, params->md, 1);
    ret = ret ? ret : mbedtls_md_hmac_starts(&ctx, key, params->digest_len);
    ret = ret ? ret : hmac_update(&ctx, enc_identity, enc_len);
    ret = ret ? ret : hmac_update(&ctx, name->name, name->size);
    ret = ret ? ret : mbedtls_md_hmac_finish(&ctx, mac);
    if (ret != 0)
        rc = tether_credential_crypto_fail("credential HMAC", ret);
out:
    mbedtls_md_free(&ctx);
    tether_wipe(key, sizeof(key));
    return rc;
}

/* TPM2B_ID_OBJECT = TPM2B_DIGEST(outerHMAC) || encIdentity, where
 * encIdentity is the marshalled TPM2B_DIGEST of the secret under AES-CFB
 * (the TPM's SecretToCredential). */
static tether_status_t wrap_credential(const tether_credential_ek_params_t *params,
                                       const uint8_t *seed, const TPM2B_NAME *name,
                                       const uint8_t *secret, size_t secret_len,
                                       TPM2B_ID_OBJECT *blob)
{
    uint8_t plain[2 + sizeof(TPMU_HA)];
    uint8_t *integrity = blob->credential;
    uint8_t *enc_identity = blob->credential + 2 + params->digest_len;
    size_t enc_len = 2 + secret_len;
    tether_status_t rc;

    _Static_assert(sizeof(blob->credential) >= 2 * (2 + sizeof(TPMU_HA)),
                   "TPM2B_ID_OBJECT holds two digest-sized TPM2B");
    put_u16(plain, secret_len);
    memcpy(plain + 2, secret, secret_len);
    rc = tether_credential_cfb(params, seed, params->digest_len, name, MBEDTLS_AES_ENCRYPT, plain,
                               enc_identity, enc_len);
    if (rc == TETHER_OK)
        rc = tether_credential_hmac(params, seed, params->digest_len, enc_identity, enc_len, name,
                                    integrity + 2);
    if (rc == TETHER_OK) {
        put_u16(integrity, params->digest_len);
        blob->size = (uint16_t)(2 + params->digest_len + enc_len);
    }
    tether_wipe(plain, sizeof(plain));
    return rc;
}

tether_status_t tether_credential_make_rng(const TPM2B_PUBLIC *ek_public,
                                           const TPM2B_NAME *object_name, const uint8_t *secret,
                                           size_t secret_len, TPM2B_ID_OBJECT *credential_blob,
                                           TPM2B_ENCRYPTED_SECRET *encrypted_secret,
                                           int (*f_rng)(void *, unsigned char *, size_t),
                                           void *p_rng)
{
    uint8_t seed[MBEDTLS_MD_MAX_SIZE];
    mbedtls_pk_context pk;
    tether_credential_ek_params_t params;
    tether_status_t rc;
    int ret;

    if (credential_blob == NULL || encrypted_secret == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(credential_blob, 0, sizeof(*credential_blob));
    memset(encrypted_secret, 0, sizeof(*encrypted_secret));
    mbedtls_pk_init(&pk);
    if (f_rng == NULL) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((rc = tether_credential_check_ek(ek_public, &params)) != TETHER_OK ||
        (rc = tether_credential_check_name(object_name)) != TETHER_OK)
        goto out;
    /* The TPM refuses a credential larger than the EK nameAlg digest
     * (TPM2 Part 3, 12.6: TPM_RC_SIZE). */
    if (secret == NULL || secret_len == 0 || secret_len > params.digest_len) {
        tether_debug(LOG_COMPONENT, "credential secret of %zu bytes (1 to %zu allowed)",
                     secret_len, params.digest_len);
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((rc = tether_credential_load_ek(&ek_public->publicArea, &pk)) != TETHER_OK)
        goto out;

    if (ek_public->publicArea.type == TPM2_ALG_RSA) {
        if ((ret = f_rng(p_rng, seed, params.digest_len)) != 0) {
            rc = tether_credential_crypto_fail("random generator", ret);
            goto out;
        }
        rc = seed_encrypt_rsa(&params, &pk, f_rng, p_rng, seed, encrypted_secret);
    } else {
        rc = seed_encrypt_ecc(&params, &ek_public->publicArea, &pk, f_rng, p_rng, seed,
                              encrypted_secret);
    }
    if (rc != TETHER_OK)
        goto out;
    rc = wrap_credential(&params, seed, object_name, secret, secret_len, credential_blob);
out:
    tether_wipe(seed, sizeof(seed));
    mbedtls_pk_free(&pk);
    if (rc != TETHER_OK) {
        tether_wipe(credential_blob, sizeof(*credential_blob));
        tether_wipe(encrypted_secret, sizeof(*encrypted_secret));
    }
    return rc;
}

tether_status_t tether_credential_make(const TPM2B_PUBLIC *ek_public, const TPM2B_NAME *object_name,
                                       const uint8_t *secret, size_t secret_len,
                                       TPM2B_ID_OBJECT *credential_blob,
                                       TPM2B_ENCRYPTED_SECRET *encrypted_secret)
{
    return tether_credential_make_rng(ek_public, object_name, secret, secret_len, credential_blob,
                                      encrypted_secret, tether_random_mbedtls, NULL);
}
