#include "tether/tpm2_public.h"

#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <tss2/tss2_mu.h>

#include "tether/bytes.h"
#include "tether/mbedtls_bridge.h"

int tether_tpm2_md_type(TPMI_ALG_HASH alg)
{
    switch (alg) {
    case TPM2_ALG_SHA1: return MBEDTLS_MD_SHA1;
    case TPM2_ALG_SHA256: return MBEDTLS_MD_SHA256;
    case TPM2_ALG_SHA384: return MBEDTLS_MD_SHA384;
    case TPM2_ALG_SHA512: return MBEDTLS_MD_SHA512;
    default: return MBEDTLS_MD_NONE;
    }
}

static tether_status_t ecc_to_pk(const TPMT_PUBLIC *pub, mbedtls_pk_context *pk)
{
    const TPMS_ECC_POINT *point = &pub->unique.ecc;
    mbedtls_ecp_group_id group;
    mbedtls_ecp_keypair *ec;

    switch (pub->parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256: group = MBEDTLS_ECP_DP_SECP256R1; break;
    case TPM2_ECC_NIST_P384: group = MBEDTLS_ECP_DP_SECP384R1; break;
    case TPM2_ECC_NIST_P521: group = MBEDTLS_ECP_DP_SECP521R1; break;
    default: return TETHER_ERR_UNSUPPORTED;
    }
    if (point->x.size > sizeof(point->x.buffer) || point->y.size > sizeof(point->y.buffer))
        return TETHER_ERR_PARSE;
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return TETHER_ERR_CRYPTO;
    ec = mbedtls_pk_ec(*pk);
    if (mbedtls_ecp_group_load(&ec->grp, group) != 0)
        return TETHER_ERR_CRYPTO;
    if (mbedtls_mpi_read_binary(&ec->Q.X, point->x.buffer, point->x.size) != 0 ||
        mbedtls_mpi_read_binary(&ec->Q.Y, point->y.buffer, point->y.size) != 0 ||
        mbedtls_mpi_lset(&ec->Q.Z, 1) != 0)
        return TETHER_ERR_NO_MEMORY;
    if (mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0)
        return TETHER_ERR_PARSE;
    return TETHER_OK;
}

static tether_status_t rsa_to_pk(const TPMT_PUBLIC *pub, mbedtls_pk_context *pk)
{
    static const uint8_t default_exponent[] = {0x01, 0x00, 0x01};
    const TPM2B_PUBLIC_KEY_RSA *modulus = &pub->unique.rsa;
    uint32_t exponent = pub->parameters.rsaDetail.exponent;
    uint8_t exponent_be[4];
    const uint8_t *e = default_exponent;
    size_t e_len = sizeof(default_exponent);

    if (modulus->size == 0 || modulus->size > sizeof(modulus->buffer))
        return TETHER_ERR_PARSE;
    if (exponent != 0) { /* zero means the default 2^16+1 (TPM2 Part 2, 12.2.3.5) */
        exponent_be[0] = (uint8_t)(exponent >> 24);
        exponent_be[1] = (uint8_t)(exponent >> 16);
        exponent_be[2] = (uint8_t)(exponent >> 8);
        exponent_be[3] = (uint8_t)exponent;
        e = exponent_be;
        e_len = sizeof(exponent_be);
    }
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0)
        return TETHER_ERR_CRYPTO;
    if (mbedtls_rsa_import_raw(mbedtls_pk_rsa(*pk), modulus->buffer, modulus->size, NULL, 0,
                               NULL, 0, NULL, 0, e, e_len) != 0 ||
        mbedtls_rsa_complete(mbedtls_pk_rsa(*pk)) != 0 ||
        mbedtls_rsa_check_pubkey(mbedtls_pk_rsa(*pk)) != 0)
        return TETHER_ERR_PARSE;
    return TETHER_OK;
}

tether_status_t tether_tpm2_public_to_pk(const TPMT_PUBLIC *pub, mbedtls_pk_context *pk)
{
    if (pub == NULL || pk == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    switch (pub->type) {
    case TPM2_ALG_ECC: return ecc_to_pk(pub, pk);
    case TPM2_ALG_RSA: return rsa_to_pk(pub, pk);
    default: return TETHER_ERR_UNSUPPORTED;
    }
}

tether_status_t tether_tpm2_public_to_ec_key(const TPMT_PUBLIC *pub, tether_ec_key_t *key)
{
    const TPMS_ECC_POINT *point;

    if (pub == NULL || key == NULL || tether_ec_key_is_set(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (pub->type != TPM2_ALG_ECC || pub->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256)
        return TETHER_ERR_UNSUPPORTED;
    point = &pub->unique.ecc;
    if (point->x.size != TETHER_EC_COORDINATE_SIZE || point->y.size != TETHER_EC_COORDINATE_SIZE)
        return TETHER_ERR_PARSE;
    return tether_ec_key_parse_point(key, point->x.buffer, point->y.buffer);
}

/* mbedtls_pk_write_pubkey_der writes at the end of the buffer. */
static int spki_der(mbedtls_pk_context *pk, uint8_t *buf, size_t size, const uint8_t **der)
{
    int len = mbedtls_pk_write_pubkey_der(pk, buf, size);
    if (len > 0)
        *der = buf + size - (size_t)len;
    return len;
}

tether_status_t tether_tpm2_public_matches_pk(const TPMT_PUBLIC *pub, mbedtls_pk_context *pk)
{
    uint8_t buf_a[1024], buf_b[1024];
    const uint8_t *der_a = NULL, *der_b = NULL;
    mbedtls_pk_context tpm_pk;
    tether_status_t rc;
    int len_a, len_b;

    if (pub == NULL || pk == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_pk_init(&tpm_pk);
    if ((rc = tether_tpm2_public_to_pk(pub, &tpm_pk)) != TETHER_OK)
        goto out;
    len_a = spki_der(&tpm_pk, buf_a, sizeof(buf_a), &der_a);
    len_b = spki_der(pk, buf_b, sizeof(buf_b), &der_b);
    if (len_a <= 0 || len_b <= 0) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    rc = (len_a == len_b && tether_ct_equal(der_a, der_b, (size_t)len_a)) ? TETHER_OK
                                                                          : TETHER_ERR_EK_MISMATCH;
out:
    mbedtls_pk_free(&tpm_pk);
    return rc;
}

tether_status_t tether_tpm2_public_matches_cert(const TPMT_PUBLIC *pub, const uint8_t *cert_der,
                                                size_t cert_len)
{
    mbedtls_x509_crt crt;
    tether_status_t rc;

    if (pub == NULL || cert_der == NULL || cert_len == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, cert_der, cert_len) != 0)
        rc = TETHER_ERR_PARSE;
    else
        rc = tether_tpm2_public_matches_pk(pub, &crt.pk);
    mbedtls_x509_crt_free(&crt);
    return rc;
}

/* One scalar of an ECDSA signature written the one way a TPM writes it:
 * 1 to order_bytes bytes, either the full width (TPM2 Part 4,
 * CryptEccSign pads r and s to the order's size, so 1 in 256 starts with
 * 0x00) or without a leading zero byte. Anything else (a 0x00 put in front,
 * a shorter value padded) is another encoding of the same number: refused,
 * so one signature has no second spelling. The range [1, n-1] is the
 * verification's check (SEC 1, 4.1.4), in mbedTLS and in libcrypto alike. */
static bool ecdsa_scalar_canonical(const TPM2B_ECC_PARAMETER *p, size_t order_bytes)
{
    return p->size >= 1 && p->size <= order_bytes && p->size <= sizeof(p->buffer) &&
           (p->size == order_bytes || p->buffer[0] != 0);
}

/* P-256 over a SHA-256 digest (every AK's NV_Certify and quote) goes through
 * lib's crypto interface (crypto.h): a server that links
 * tether_crypto_openssl verifies it with libcrypto, the device with mbedTLS.
 * ec is the checked public key, r and s are in [0, 2^256). */
static tether_status_t verify_p256(const mbedtls_ecp_keypair *ec, const uint8_t *hash,
                                   const mbedtls_mpi *r, const mbedtls_mpi *s)
{
    uint8_t x[TETHER_EC_COORDINATE_SIZE], y[TETHER_EC_COORDINATE_SIZE];
    uint8_t sig[TETHER_EC_SIGNATURE_SIZE];
    tether_ec_key_t key;
    tether_status_t rc;

    tether_ec_key_init(&key);
    if (mbedtls_mpi_write_binary(&ec->Q.X, x, sizeof(x)) != 0 ||
        mbedtls_mpi_write_binary(&ec->Q.Y, y, sizeof(y)) != 0 ||
        mbedtls_mpi_write_binary(r, sig, TETHER_EC_COORDINATE_SIZE) != 0 ||
        mbedtls_mpi_write_binary(s, sig + TETHER_EC_COORDINATE_SIZE,
                                 TETHER_EC_COORDINATE_SIZE) != 0) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    if ((rc = tether_ec_key_parse_point(&key, x, y)) != TETHER_OK)
        goto out;
    rc = tether_ec_verify_digest(&key, hash, sig);
out:
    tether_ec_key_free(&key);
    return rc;
}

static tether_status_t verify_ecdsa(const TPMT_PUBLIC *pub, const uint8_t *hash, size_t hash_len,
                                    const TPMS_SIGNATURE_ECC *ecc)
{
    mbedtls_pk_context pk;
    mbedtls_ecp_keypair *ec;
    mbedtls_mpi r, s;
    size_t order_bytes;
    tether_status_t rc;

    mbedtls_pk_init(&pk);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (pub->type != TPM2_ALG_ECC) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    if ((rc = tether_tpm2_public_to_pk(pub, &pk)) != TETHER_OK)
        goto out;
    ec = mbedtls_pk_ec(pk);
    order_bytes = (mbedtls_mpi_bitlen(&ec->grp.N) + 7) / 8;
    if (!ecdsa_scalar_canonical(&ecc->signatureR, order_bytes) ||
        !ecdsa_scalar_canonical(&ecc->signatureS, order_bytes) ||
        mbedtls_mpi_read_binary(&r, ecc->signatureR.buffer, ecc->signatureR.size) != 0 ||
        mbedtls_mpi_read_binary(&s, ecc->signatureS.buffer, ecc->signatureS.size) != 0) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    if (ec->grp.id == MBEDTLS_ECP_DP_SECP256R1 && hash_len == TETHER_SHA256_SIZE)
        rc = verify_p256(ec, hash, &r, &s);
    else
        rc = mbedtls_ecdsa_verify(&ec->grp, hash, hash_len, &ec->Q, &r, &s) == 0
                 ? TETHER_OK
                 : TETHER_ERR_VERIFY;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_pk_free(&pk);
    return rc;
}

static tether_status_t verify_rsassa(const TPMT_PUBLIC *pub, mbedtls_md_type_t md,
                                     const uint8_t *hash, size_t hash_len,
                                     const TPMS_SIGNATURE_RSA *rsa)
{
    mbedtls_pk_context pk;
    tether_status_t rc;

    mbedtls_pk_init(&pk);
    if (pub->type != TPM2_ALG_RSA) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    if ((rc = tether_tpm2_public_to_pk(pub, &pk)) != TETHER_OK)
        goto out;
    if (rsa->sig.size > sizeof(rsa->sig.buffer) || rsa->sig.size != mbedtls_pk_get_len(&pk)) {
        rc = TETHER_ERR_VERIFY;
        goto out;
    }
    rc = mbedtls_pk_verify(&pk, md, hash, hash_len, rsa->sig.buffer, rsa->sig.size) == 0
             ? TETHER_OK
             : TETHER_ERR_VERIFY;
out:
    mbedtls_pk_free(&pk);
    return rc;
}

tether_status_t tether_tpm2_verify_signature(const TPMT_PUBLIC *pub, const uint8_t *data,
                                             size_t len, const TPMT_SIGNATURE *sig)
{
    uint8_t hash[MBEDTLS_MD_MAX_SIZE];
    const mbedtls_md_info_t *md_info;
    mbedtls_md_type_t md;
    tether_status_t rc;

    if (pub == NULL || sig == NULL || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    switch (sig->sigAlg) {
    case TPM2_ALG_ECDSA:
        md = (mbedtls_md_type_t)tether_tpm2_md_type(sig->signature.ecdsa.hash);
        break;
    case TPM2_ALG_RSASSA:
        md = (mbedtls_md_type_t)tether_tpm2_md_type(sig->signature.rsassa.hash);
        break;
    default:
        return TETHER_ERR_VERIFY;
    }
    if (md == MBEDTLS_MD_NONE || md == MBEDTLS_MD_SHA1 || (md_info = mbedtls_md_info_from_type(md)) == NULL)
        return TETHER_ERR_VERIFY;
    if (mbedtls_md(md_info, data, len, hash) != 0)
        return TETHER_ERR_CRYPTO;
    if (sig->sigAlg == TPM2_ALG_ECDSA)
        rc = verify_ecdsa(pub, hash, mbedtls_md_get_size(md_info), &sig->signature.ecdsa);
    else
        rc = verify_rsassa(pub, md, hash, mbedtls_md_get_size(md_info), &sig->signature.rsassa);
    tether_wipe(hash, sizeof(hash));
    return rc;
}

tether_status_t tether_tpm2_public_name(const TPMT_PUBLIC *pub, TPM2B_NAME *name)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t offset = 0;
    const mbedtls_md_info_t *md_info;

    if (pub == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    md_info = mbedtls_md_info_from_type((mbedtls_md_type_t)tether_tpm2_md_type(pub->nameAlg));
    if (md_info == NULL)
        return TETHER_ERR_UNSUPPORTED;
    if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &offset) != TSS2_RC_SUCCESS)
        return TETHER_ERR_PARSE;
    name->name[0] = (uint8_t)(pub->nameAlg >> 8);
    name->name[1] = (uint8_t)pub->nameAlg;
    if (mbedtls_md(md_info, buf, offset, name->name + 2) != 0)
        return TETHER_ERR_CRYPTO;
    name->size = (uint16_t)(2 + mbedtls_md_get_size(md_info));
    return TETHER_OK;
}

tether_status_t tether_tpm2_qualified_name(const TPM2B_NAME *parent_qn, TPM2_HANDLE hierarchy,
                                           const TPMT_PUBLIC *pub, TPM2B_NAME *qn)
{
    const mbedtls_md_info_t *md_info;
    mbedtls_md_context_t md;
    uint8_t handle_be[4];
    TPM2B_NAME name;
    tether_status_t rc;
    int ok;

    if (pub == NULL || qn == NULL || (parent_qn != NULL && parent_qn->size > sizeof(parent_qn->name)))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_tpm2_public_name(pub, &name)) != TETHER_OK)
        return rc;
    md_info = mbedtls_md_info_from_type((mbedtls_md_type_t)tether_tpm2_md_type(pub->nameAlg));
    handle_be[0] = (uint8_t)(hierarchy >> 24);
    handle_be[1] = (uint8_t)(hierarchy >> 16);
    handle_be[2] = (uint8_t)(hierarchy >> 8);
    handle_be[3] = (uint8_t)hierarchy;
    mbedtls_md_init(&md);
    ok = mbedtls_md_setup(&md, md_info, 0) == 0 && mbedtls_md_starts(&md) == 0 &&
         (parent_qn != NULL ? mbedtls_md_update(&md, parent_qn->name, parent_qn->size)
                            : mbedtls_md_update(&md, handle_be, sizeof(handle_be))) == 0 &&
         mbedtls_md_update(&md, name.name, name.size) == 0 &&
         mbedtls_md_finish(&md, qn->name + 2) == 0;
    mbedtls_md_free(&md);
    if (!ok)
        return TETHER_ERR_CRYPTO;
    qn->name[0] = (uint8_t)(pub->nameAlg >> 8);
    qn->name[1] = (uint8_t)pub->nameAlg;
    qn->size = (uint16_t)(2 + mbedtls_md_get_size(md_info));
    return TETHER_OK;
}

bool tether_nv_index_is_owner(uint64_t index)
{
    return index >= TETHER_NV_OWNER_FIRST && index <= TETHER_NV_OWNER_LAST;
}
