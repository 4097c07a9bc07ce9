/*
 * lib/src/tpm2_public.c and lib/src/attest.c: TPM public areas to mbedTLS
 * keys, key/certificate comparison, TPM signature verification, names and
 * qualified names, TPMS_ATTEST parsing. Signed data comes from the fake TPM
 * (real TPM formats) and from mbedTLS keys made here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <tss2/tss2_mu.h>

#include "tether/attest.h"
#include "tether/mbedtls_bridge.h"
#include "tether/random.h"
#include "tether/tpm.h"
#include "tether/tpm2_public.h"
#include "tether/tpm_fake.h"

/* What the tests share, made once: a P-256 fake with EK, AK, device key and
 * a quote; a P-384 EK; an RSA EK with its certificate; a software RSA key. */
typedef struct world {
    tether_tpm_t tpm;
    tether_ek_t ek;
    tether_tpm_key_blob_t ak_blob, dk_blob;
    tether_tpm_attestation_t quote, certify, nv;
    TPM2B_PUBLIC p384_ek, rsa_ek;
    uint8_t rsa_cert[TETHER_TPM_MAX_NV_READ];
    size_t rsa_cert_len;
    mbedtls_pk_context rsa_key; /* 1024-bit software key for RSASSA */
    TPMT_PUBLIC rsa_public;
} world_t;

static const TPMT_PUBLIC *ak_pub(const world_t *w)
{
    return &w->ak_blob.public_area.publicArea;
}

static void sha(mbedtls_md_type_t type, const void *data, size_t len, uint8_t *out)
{
    assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(type), data, len, out), 0);
}

static int world_setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    tether_tpm_fake_config_t config = {
        .ek_cert_types = (1u << TETHER_EK_ECC_P256) | (1u << TETHER_EK_RSA2048), .seed = 77};
    tether_tpm_handle_t ak = 0, dk = 0, h = 0;
    TPML_PCR_SELECTION sel = {.count = 1};
    const uint8_t nonce[32] = {0x42};
    mbedtls_rsa_context *rsa;

    assert_non_null(w);
    tether_tpm_init(&w->tpm);
    w->tpm.retry_delay_ms = 0;
    assert_int_equal(tether_tpm_open_fake(&w->tpm, &config), TETHER_OK);
    assert_int_equal(tether_ek_open(&w->tpm, TETHER_EK_ECC_P256, &w->ek), TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&w->tpm, w->ek.handle, TETHER_KEY_AK, &w->ak_blob),
                     TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&w->tpm, w->ek.handle, TETHER_KEY_DEVICE, &w->dk_blob),
                     TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&w->tpm, w->ek.handle, &w->ak_blob, &ak), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&w->tpm, w->ek.handle, &w->dk_blob, &dk), TETHER_OK);
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[0] = 0x81;
    assert_int_equal(tether_tpm_quote(&w->tpm, ak, &sel, nonce, sizeof(nonce), &w->quote),
                     TETHER_OK);
    assert_int_equal(tether_tpm_certify(&w->tpm, ak, dk, nonce, sizeof(nonce), &w->certify),
                     TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&w->tpm, 0x01000001), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&w->tpm, 0x01000001), TETHER_OK);
    assert_int_equal(tether_tpm_nv_certify(&w->tpm, ak, 0x01000001, nonce, 4, &w->nv), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&w->tpm, ak), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&w->tpm, dk), TETHER_OK);

    assert_int_equal(tether_tpm_create_ek(&w->tpm, TETHER_EK_ECC_P384, &h, &w->p384_ek), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&w->tpm, h), TETHER_OK);
    assert_int_equal(tether_tpm_create_ek(&w->tpm, TETHER_EK_RSA2048, &h, &w->rsa_ek), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&w->tpm, h), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read(&w->tpm, tether_ek_cert_nv_index(TETHER_EK_RSA2048),
                                        w->rsa_cert, sizeof(w->rsa_cert), &w->rsa_cert_len),
                     TETHER_OK);

    mbedtls_pk_init(&w->rsa_key);
    assert_int_equal(mbedtls_pk_setup(&w->rsa_key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
    rsa = mbedtls_pk_rsa(w->rsa_key);
    assert_int_equal(mbedtls_rsa_gen_key(rsa, tether_random_mbedtls, NULL, 1024, 65537), 0);
    w->rsa_public.type = TPM2_ALG_RSA;
    w->rsa_public.nameAlg = TPM2_ALG_SHA256;
    w->rsa_public.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT;
    w->rsa_public.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
    w->rsa_public.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    w->rsa_public.parameters.rsaDetail.keyBits = 1024;
    w->rsa_public.parameters.rsaDetail.exponent = 65537;
    w->rsa_public.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    w->rsa_public.unique.rsa.size = 128;
    assert_int_equal(mbedtls_rsa_export_raw(rsa, w->rsa_public.unique.rsa.buffer, 128, NULL, 0,
                                            NULL, 0, NULL, 0, NULL, 0),
                     0);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    world_t *w = *state;

    tether_ek_free(&w->tpm, &w->ek);
    assert_int_equal(tether_tpm_fake_loaded_objects(&w->tpm), 0);
    tether_tpm_close(&w->tpm);
    mbedtls_pk_free(&w->rsa_key);
    free(w);
    return 0;
}

/* --- public areas to keys ---------------------------------------------------- */

static mbedtls_ecp_group_id curve_of(const mbedtls_pk_context *pk)
{
    const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);

    assert_non_null(ec);
    return ec != NULL ? ec->grp.id : MBEDTLS_ECP_DP_NONE;
}

static void to_pk_ecc(void **state)
{
    world_t *w = *state;
    mbedtls_pk_context pk;

    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&w->ek.public_area.publicArea, &pk), TETHER_OK);
    assert_int_equal(mbedtls_pk_get_type(&pk), MBEDTLS_PK_ECKEY);
    assert_int_equal(curve_of(&pk), MBEDTLS_ECP_DP_SECP256R1);
    mbedtls_pk_free(&pk);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&w->p384_ek.publicArea, &pk), TETHER_OK);
    assert_int_equal(curve_of(&pk), MBEDTLS_ECP_DP_SECP384R1);
    assert_int_equal(mbedtls_pk_get_bitlen(&pk), 384);
    mbedtls_pk_free(&pk);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(ak_pub(w), &pk), TETHER_OK);
    mbedtls_pk_free(&pk);
}

/* lib's P-256 keys from public areas: the AK verifies what it signed; other
 * curves and types, short or long coordinates and off-curve points are
 * refused and leave the key empty. */
static void to_ec_key(void **state)
{
    world_t *w = *state;
    uint8_t digest[32], sig[64], x[32], y[32];
    tether_ec_key_t key;
    TPMT_PUBLIC pub;

    tether_ec_key_init(&key);
    assert_int_equal(tether_tpm2_public_to_ec_key(ak_pub(w), &key), TETHER_OK);
    assert_int_equal(tether_ec_key_public_point(&key, x, y), TETHER_OK);
    assert_memory_equal(x, ak_pub(w)->unique.ecc.x.buffer, 32);
    assert_memory_equal(y, ak_pub(w)->unique.ecc.y.buffer, 32);
    /* R || S of the TPM's ECDSA signature over the quote verifies */
    sha(MBEDTLS_MD_SHA256, w->quote.attest.attestationData, w->quote.attest.size, digest);
    memcpy(sig, w->quote.signature.signature.ecdsa.signatureR.buffer, 32);
    memcpy(sig + 32, w->quote.signature.signature.ecdsa.signatureS.buffer, 32);
    assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_OK);
    /* the key must come empty */
    assert_int_equal(tether_tpm2_public_to_ec_key(ak_pub(w), &key), TETHER_ERR_INVALID_ARGUMENT);
    tether_ec_key_free(&key);

    assert_int_equal(tether_tpm2_public_to_ec_key(&w->p384_ek.publicArea, &key),
                     TETHER_ERR_UNSUPPORTED);
    assert_int_equal(tether_tpm2_public_to_ec_key(&w->rsa_ek.publicArea, &key),
                     TETHER_ERR_UNSUPPORTED);
    pub = *ak_pub(w);
    pub.unique.ecc.x.size = 31;
    assert_int_equal(tether_tpm2_public_to_ec_key(&pub, &key), TETHER_ERR_PARSE);
    pub = *ak_pub(w);
    pub.unique.ecc.y.size = 33;
    assert_int_equal(tether_tpm2_public_to_ec_key(&pub, &key), TETHER_ERR_PARSE);
    pub = *ak_pub(w);
    pub.unique.ecc.y.buffer[31] ^= 0x01;
    assert_int_equal(tether_tpm2_public_to_ec_key(&pub, &key), TETHER_ERR_PARSE);
    assert_false(tether_ec_key_is_set(&key));
    assert_int_equal(tether_tpm2_public_to_ec_key(NULL, &key), TETHER_ERR_INVALID_ARGUMENT);
}

/* P-521, which no tether template uses but a verifier may meet. */
static void to_pk_p521(void **state)
{
    mbedtls_ecp_keypair key;
    mbedtls_pk_context pk;
    TPMT_PUBLIC pub;

    (void)state;
    mbedtls_ecp_keypair_init(&key);
    assert_int_equal(
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP521R1, &key, tether_random_mbedtls, NULL), 0);
    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA512;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P521;
    pub.unique.ecc.x.size = 66;
    pub.unique.ecc.y.size = 66;
    assert_int_equal(mbedtls_mpi_write_binary(&key.Q.X, pub.unique.ecc.x.buffer, 66), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&key.Q.Y, pub.unique.ecc.y.buffer, 66), 0);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_OK);
    assert_int_equal(curve_of(&pk), MBEDTLS_ECP_DP_SECP521R1);
    mbedtls_pk_free(&pk);
    mbedtls_ecp_keypair_free(&key);
}

static void to_pk_rsa(void **state)
{
    world_t *w = *state;
    TPMT_PUBLIC pub;
    mbedtls_pk_context pk;

    /* The EK template's exponent 0 means 65537. */
    assert_int_equal(w->rsa_ek.publicArea.parameters.rsaDetail.exponent, 0);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&w->rsa_ek.publicArea, &pk), TETHER_OK);
    assert_int_equal(mbedtls_pk_get_type(&pk), MBEDTLS_PK_RSA);
    assert_int_equal(mbedtls_pk_get_bitlen(&pk), 2048);
    assert_int_equal(mbedtls_mpi_cmp_int(&mbedtls_pk_rsa(pk)->E, 65537), 0);
    mbedtls_pk_free(&pk);
    /* An explicit exponent. */
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&w->rsa_public, &pk), TETHER_OK);
    assert_int_equal(mbedtls_pk_get_bitlen(&pk), 1024);
    mbedtls_pk_free(&pk);

    pub = w->rsa_public;
    pub.unique.rsa.size = 0;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_PARSE);
    mbedtls_pk_free(&pk);
    pub.unique.rsa.size = sizeof(pub.unique.rsa.buffer) + 1;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_PARSE);
    mbedtls_pk_free(&pk);
    pub = w->rsa_public;
    pub.parameters.rsaDetail.exponent = 4; /* even: no RSA key */
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_PARSE);
    mbedtls_pk_free(&pk);
}

static void to_pk_rejects(void **state)
{
    world_t *w = *state;
    TPMT_PUBLIC pub = *ak_pub(w);
    mbedtls_pk_context pk;

    /* A point that is not on the curve (an invalid-curve attack). */
    pub.unique.ecc.y.buffer[31] ^= 0x01;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_PARSE);
    mbedtls_pk_free(&pk);
    pub = *ak_pub(w);
    pub.unique.ecc.x.size = sizeof(pub.unique.ecc.x.buffer) + 1;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_PARSE);
    mbedtls_pk_free(&pk);
    pub = *ak_pub(w);
    pub.unique.ecc.x.size = 0;
    pub.unique.ecc.y.size = 0;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_PARSE);
    mbedtls_pk_free(&pk);
    pub = *ak_pub(w);
    pub.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_UNSUPPORTED);
    mbedtls_pk_free(&pk);
    pub = *ak_pub(w);
    pub.type = TPM2_ALG_KEYEDHASH;
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, &pk), TETHER_ERR_UNSUPPORTED);
    assert_int_equal(tether_tpm2_public_to_pk(NULL, &pk), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_public_to_pk(&pub, NULL), TETHER_ERR_INVALID_ARGUMENT);
    mbedtls_pk_free(&pk);
}

/* --- keys against certificates ------------------------------------------------ */

static void matches_cert(void **state)
{
    world_t *w = *state;
    tether_tpm_t other;
    tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P256, .seed = 78};
    uint8_t other_cert[TETHER_TPM_MAX_NV_READ];
    size_t other_len = 0;
    const uint8_t *ca = NULL;
    size_t ca_len = 0;
    mbedtls_x509_crt crt;

    assert_int_equal(tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, w->ek.cert_der,
                                                     w->ek.cert_len),
                     TETHER_OK);
    assert_int_equal(
        tether_tpm2_public_matches_cert(&w->rsa_ek.publicArea, w->rsa_cert, w->rsa_cert_len),
        TETHER_OK);
    /* Other keys: another type, another device's EK, the AK. */
    assert_int_equal(
        tether_tpm2_public_matches_cert(&w->rsa_ek.publicArea, w->ek.cert_der, w->ek.cert_len),
        TETHER_ERR_EK_MISMATCH);
    assert_int_equal(
        tether_tpm2_public_matches_cert(&w->p384_ek.publicArea, w->ek.cert_der, w->ek.cert_len),
        TETHER_ERR_EK_MISMATCH);
    assert_int_equal(tether_tpm2_public_matches_cert(ak_pub(w), w->ek.cert_der, w->ek.cert_len),
                     TETHER_ERR_EK_MISMATCH);
    tether_tpm_init(&other);
    assert_int_equal(tether_tpm_open_fake(&other, &config), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read(&other, tether_ek_cert_nv_index(TETHER_EK_ECC_P256),
                                        other_cert, sizeof(other_cert), &other_len),
                     TETHER_OK);
    assert_int_equal(
        tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, other_cert, other_len),
        TETHER_ERR_EK_MISMATCH);
    /* The CA certificate is a certificate, but of the CA's key. */
    assert_int_equal(tether_tpm_fake_ca_cert(&other, &ca, &ca_len), TETHER_OK);
    assert_int_equal(tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, ca, ca_len),
                     TETHER_ERR_EK_MISMATCH);
    tether_tpm_close(&other);

    /* Not a certificate. */
    assert_int_equal(tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, w->ek.cert_der,
                                                     w->ek.cert_len - 1),
                     TETHER_ERR_PARSE);
    assert_int_equal(
        tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, (const uint8_t *)"hello", 5),
        TETHER_ERR_PARSE);
    assert_int_equal(
        tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, w->ek.cert_der, 0),
        TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_public_matches_cert(&w->ek.public_area.publicArea, NULL, 5),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_public_matches_cert(NULL, w->ek.cert_der, w->ek.cert_len),
                     TETHER_ERR_INVALID_ARGUMENT);

    mbedtls_x509_crt_init(&crt);
    assert_int_equal(mbedtls_x509_crt_parse_der(&crt, w->ek.cert_der, w->ek.cert_len), 0);
    assert_int_equal(tether_tpm2_public_matches_pk(&w->ek.public_area.publicArea, &crt.pk),
                     TETHER_OK);
    assert_int_equal(tether_tpm2_public_matches_pk(&w->rsa_public, &w->rsa_key),
                     TETHER_OK); /* a private key's public half */
    assert_int_equal(tether_tpm2_public_matches_pk(&w->rsa_public, &crt.pk),
                     TETHER_ERR_EK_MISMATCH);
    assert_int_equal(tether_tpm2_public_matches_pk(NULL, &crt.pk), TETHER_ERR_INVALID_ARGUMENT);
    {
        TPMT_PUBLIC keyedhash = w->ek.public_area.publicArea;

        keyedhash.type = TPM2_ALG_KEYEDHASH;
        assert_int_equal(tether_tpm2_public_matches_pk(&keyedhash, &crt.pk),
                         TETHER_ERR_UNSUPPORTED);
    }
    assert_int_equal(tether_tpm2_public_matches_pk(&w->rsa_public, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    mbedtls_x509_crt_free(&crt);
}

/* --- signatures ----------------------------------------------------------------- */

static tether_status_t verify(const TPMT_PUBLIC *pub, const tether_tpm_attestation_t *a,
                              const TPMT_SIGNATURE *sig)
{
    return tether_tpm2_verify_signature(pub, a->attest.attestationData, a->attest.size, sig);
}

static void verify_tpm_signatures(void **state)
{
    world_t *w = *state;

    assert_int_equal(verify(ak_pub(w), &w->quote, &w->quote.signature), TETHER_OK);
    assert_int_equal(verify(ak_pub(w), &w->certify, &w->certify.signature), TETHER_OK);
    assert_int_equal(verify(ak_pub(w), &w->nv, &w->nv.signature), TETHER_OK);
    /* Another attestation's signature. */
    assert_int_equal(verify(ak_pub(w), &w->quote, &w->certify.signature), TETHER_ERR_VERIFY);
}

static void verify_tampered_data(void **state)
{
    world_t *w = *state;
    tether_tpm_attestation_t a;

    for (size_t i = 0; i < w->quote.attest.size; i++) {
        a = w->quote;
        a.attest.attestationData[i] ^= 0x20;
        if (verify(ak_pub(w), &a, &a.signature) != TETHER_ERR_VERIFY)
            fail_msg("a change at byte %zu went unnoticed", i);
    }
    a = w->quote;
    a.attest.size--;
    assert_int_equal(verify(ak_pub(w), &a, &a.signature), TETHER_ERR_VERIFY);
    a = w->quote;
    a.attest.attestationData[a.attest.size++] = 0;
    assert_int_equal(verify(ak_pub(w), &a, &a.signature), TETHER_ERR_VERIFY);
}

static void verify_tampered_signature(void **state)
{
    world_t *w = *state;
    TPMT_SIGNATURE sig;
    TPMS_SIGNATURE_ECC *ecc = &sig.signature.ecdsa;

    sig = w->quote.signature;
    ecc->signatureR.buffer[0] ^= 0x01;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig = w->quote.signature;
    ecc->signatureS.buffer[31] ^= 0x01;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    /* r and s swapped. */
    sig = w->quote.signature;
    ecc->signatureR = w->quote.signature.signature.ecdsa.signatureS;
    ecc->signatureS = w->quote.signature.signature.ecdsa.signatureR;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    /* Zero and out-of-range sizes. */
    sig = w->quote.signature;
    ecc->signatureR.size = 0;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig = w->quote.signature;
    memset(ecc->signatureS.buffer, 0, 32);
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig = w->quote.signature;
    ecc->signatureS.size = sizeof(ecc->signatureS.buffer) + 1;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    /* A leading zero put in front is the same integer spelt another way:
     * refused, so a signature has one encoding (the fingerprint of evidence
     * must not be all that tells two spellings apart). */
    sig = w->quote.signature;
    memmove(ecc->signatureR.buffer + 1, ecc->signatureR.buffer, 32);
    ecc->signatureR.buffer[0] = 0;
    ecc->signatureR.size = 33;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig = w->quote.signature;
    memmove(ecc->signatureS.buffer + 1, ecc->signatureS.buffer, 32);
    ecc->signatureS.buffer[0] = 0;
    ecc->signatureS.size = 33;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
}

/* Signs the quote's attestation with the software key of the same AK
 * template until r is in [2^240, 2^248) (exactly one zero byte in front in
 * the 32-byte form a TPM writes), returning the signature in that form. */
static void sign_small_r(world_t *w, mbedtls_ecp_keypair *key, TPMT_SIGNATURE *sig)
{
    uint8_t hash[32];
    mbedtls_mpi r, s;

    assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                w->quote.attest.attestationData, w->quote.attest.size, hash),
                     0);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    do {
        assert_int_equal(mbedtls_ecdsa_sign(&key->grp, &r, &s, &key->d, hash, sizeof(hash),
                                            tether_random_mbedtls, NULL),
                         0);
    } while (mbedtls_mpi_bitlen(&r) > 248 || mbedtls_mpi_bitlen(&r) <= 240);
    *sig = w->quote.signature;
    sig->signature.ecdsa.signatureR.size = 32;
    sig->signature.ecdsa.signatureS.size = 32;
    assert_int_equal(mbedtls_mpi_write_binary(&r, sig->signature.ecdsa.signatureR.buffer, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&s, sig->signature.ecdsa.signatureS.buffer, 32), 0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
}

/* The encodings a TPM writes verify: r and s padded to the order's 32 bytes
 * (TPM2 Part 4, CryptEccSign; 1 signature in 128 has a leading zero byte
 * there), or minimal; a high s (n - s) too, since TPMs produce it. What no
 * TPM writes does not: a zero byte in front of those, 0, n. */
static void verify_signature_encodings(void **state)
{
    world_t *w = *state;
    mbedtls_ecp_keypair key;
    TPMT_PUBLIC pub = *ak_pub(w);
    TPMT_SIGNATURE sig, other;
    TPMS_SIGNATURE_ECC *ecc = &other.signature.ecdsa;

    mbedtls_ecp_keypair_init(&key);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &key, tether_random_mbedtls,
                                         NULL),
                     0);
    assert_int_equal(mbedtls_mpi_write_binary(&key.Q.X, pub.unique.ecc.x.buffer, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&key.Q.Y, pub.unique.ecc.y.buffer, 32), 0);
    sign_small_r(w, &key, &sig);
    assert_int_equal(sig.signature.ecdsa.signatureR.buffer[0], 0);
    assert_int_equal(verify(&pub, &w->quote, &sig), TETHER_OK);
    /* The minimal form of the same r. */
    other = sig;
    memmove(ecc->signatureR.buffer, ecc->signatureR.buffer + 1, 31);
    ecc->signatureR.size = 31;
    assert_int_equal(verify(&pub, &w->quote, &other), TETHER_OK);
    /* A zero byte in front of the 32-byte form: no TPM's encoding. */
    other = sig;
    memmove(ecc->signatureR.buffer + 1, ecc->signatureR.buffer, 32);
    ecc->signatureR.size = 33;
    assert_int_equal(verify(&pub, &w->quote, &other), TETHER_ERR_VERIFY);
    /* s replaced by n - s: the same signature, high or low; accepted. */
    other = sig;
    assert_int_equal(tether_tpm_fake_negate_s(&other), TETHER_OK);
    assert_memory_not_equal(ecc->signatureS.buffer, sig.signature.ecdsa.signatureS.buffer, 32);
    assert_int_equal(verify(&pub, &w->quote, &other), TETHER_OK);
    /* r = n (as 32 bytes), s = 0 (one zero byte): out of range. */
    other = sig;
    assert_int_equal(mbedtls_mpi_write_binary(&key.grp.N, ecc->signatureR.buffer, 32), 0);
    assert_int_equal(verify(&pub, &w->quote, &other), TETHER_ERR_VERIFY);
    other = sig;
    ecc->signatureS.size = 1;
    ecc->signatureS.buffer[0] = 0;
    assert_int_equal(verify(&pub, &w->quote, &other), TETHER_ERR_VERIFY);
    mbedtls_ecp_keypair_free(&key);
}

static void verify_wrong_key_or_algorithm(void **state)
{
    world_t *w = *state;
    TPMT_SIGNATURE sig;
    TPMT_PUBLIC keyedhash = *ak_pub(w);

    /* Right format, wrong key. */
    assert_int_equal(verify(&w->dk_blob.public_area.publicArea, &w->quote, &w->quote.signature),
                     TETHER_ERR_VERIFY);
    assert_int_equal(verify(&w->ek.public_area.publicArea, &w->quote, &w->quote.signature),
                     TETHER_ERR_VERIFY);
    assert_int_equal(verify(&w->p384_ek.publicArea, &w->quote, &w->quote.signature),
                     TETHER_ERR_VERIFY);
    /* An ECDSA signature against an RSA key. */
    assert_int_equal(verify(&w->rsa_ek.publicArea, &w->quote, &w->quote.signature),
                     TETHER_ERR_VERIFY);
    keyedhash.type = TPM2_ALG_KEYEDHASH;
    assert_int_equal(verify(&keyedhash, &w->quote, &w->quote.signature), TETHER_ERR_VERIFY);
    /* A public area that is no key at all is reported as such. */
    keyedhash = *ak_pub(w);
    keyedhash.unique.ecc.y.buffer[0] ^= 0x01;
    assert_int_equal(verify(&keyedhash, &w->quote, &w->quote.signature), TETHER_ERR_PARSE);
    keyedhash = *ak_pub(w);
    keyedhash.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    assert_int_equal(verify(&keyedhash, &w->quote, &w->quote.signature), TETHER_ERR_UNSUPPORTED);
    /* SHA-1 is refused even when it would verify; other hashes do not match. */
    sig = w->quote.signature;
    sig.signature.ecdsa.hash = TPM2_ALG_SHA1;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig.signature.ecdsa.hash = TPM2_ALG_SHA384;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig.signature.ecdsa.hash = TPM2_ALG_NULL;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    /* Schemes that are not verified here. */
    sig = w->quote.signature;
    sig.sigAlg = TPM2_ALG_ECSCHNORR;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig.sigAlg = TPM2_ALG_RSAPSS;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    sig.sigAlg = TPM2_ALG_NULL;
    assert_int_equal(verify(ak_pub(w), &w->quote, &sig), TETHER_ERR_VERIFY);
    /* Arguments. */
    assert_int_equal(tether_tpm2_verify_signature(NULL, w->quote.attest.attestationData,
                                                  w->quote.attest.size, &w->quote.signature),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_verify_signature(ak_pub(w), NULL, 3, &w->quote.signature),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_verify_signature(ak_pub(w), w->quote.attest.attestationData,
                                                  w->quote.attest.size, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_verify_signature(ak_pub(w), NULL, 0, &w->quote.signature),
                     TETHER_ERR_VERIFY);
}

static void rsassa_sign(world_t *w, mbedtls_md_type_t md, TPMI_ALG_HASH alg, const uint8_t *data,
                        size_t len, TPMT_SIGNATURE *sig)
{
    uint8_t hash[MBEDTLS_MD_MAX_SIZE];
    size_t sig_len = 0;

    sha(md, data, len, hash);
    memset(sig, 0, sizeof(*sig));
    sig->sigAlg = TPM2_ALG_RSASSA;
    sig->signature.rsassa.hash = alg;
    assert_int_equal(mbedtls_pk_sign(&w->rsa_key, md, hash, 0, sig->signature.rsassa.sig.buffer,
                                     &sig_len, tether_random_mbedtls, NULL),
                     0);
    sig->signature.rsassa.sig.size = (uint16_t)sig_len;
}

static void verify_rsassa(void **state)
{
    world_t *w = *state;
    static const uint8_t data[] = "what a TPM signed";
    TPMT_SIGNATURE sig, changed;

    rsassa_sign(w, MBEDTLS_MD_SHA256, TPM2_ALG_SHA256, data, sizeof(data), &sig);
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &sig),
                     TETHER_OK);
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data) - 1, &sig),
                     TETHER_ERR_VERIFY);
    changed = sig;
    changed.signature.rsassa.sig.buffer[10] ^= 1;
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &changed),
                     TETHER_ERR_VERIFY);
    changed = sig;
    changed.signature.rsassa.sig.size--;
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &changed),
                     TETHER_ERR_VERIFY);
    changed.signature.rsassa.sig.size = sizeof(changed.signature.rsassa.sig.buffer) + 1;
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &changed),
                     TETHER_ERR_VERIFY);
    /* The hash named in the signature is the one used. */
    changed = sig;
    changed.signature.rsassa.hash = TPM2_ALG_SHA384;
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &changed),
                     TETHER_ERR_VERIFY);
    /* Against another RSA key and against an ECC key. */
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_ek.publicArea, data, sizeof(data), &sig),
                     TETHER_ERR_VERIFY);
    assert_int_equal(tether_tpm2_verify_signature(ak_pub(w), data, sizeof(data), &sig),
                     TETHER_ERR_VERIFY);

    rsassa_sign(w, MBEDTLS_MD_SHA512, TPM2_ALG_SHA512, data, sizeof(data), &sig);
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &sig),
                     TETHER_OK);
    /* SHA-1 is refused although the signature is valid. */
    rsassa_sign(w, MBEDTLS_MD_SHA1, TPM2_ALG_SHA1, data, sizeof(data), &sig);
    assert_int_equal(tether_tpm2_verify_signature(&w->rsa_public, data, sizeof(data), &sig),
                     TETHER_ERR_VERIFY);
}

/* ECDSA with SHA-384 on P-256 (the hash is truncated to the curve). */
static void verify_ecdsa_sha384(void **state)
{
    static const uint8_t data[] = "quote";
    mbedtls_ecp_keypair key;
    mbedtls_mpi r, s;
    TPMT_PUBLIC pub;
    TPMT_SIGNATURE sig;
    uint8_t hash[48];

    (void)state;
    mbedtls_ecp_keypair_init(&key);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &key, tether_random_mbedtls, NULL), 0);
    memset(&pub, 0, sizeof(pub));
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.unique.ecc.x.size = 32;
    pub.unique.ecc.y.size = 32;
    assert_int_equal(mbedtls_mpi_write_binary(&key.Q.X, pub.unique.ecc.x.buffer, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&key.Q.Y, pub.unique.ecc.y.buffer, 32), 0);
    sha(MBEDTLS_MD_SHA384, data, sizeof(data), hash);
    assert_int_equal(mbedtls_ecdsa_sign(&key.grp, &r, &s, &key.d, hash, sizeof(hash),
                                        tether_random_mbedtls, NULL),
                     0);
    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = TPM2_ALG_ECDSA;
    sig.signature.ecdsa.hash = TPM2_ALG_SHA384;
    sig.signature.ecdsa.signatureR.size = 32;
    sig.signature.ecdsa.signatureS.size = 32;
    assert_int_equal(mbedtls_mpi_write_binary(&r, sig.signature.ecdsa.signatureR.buffer, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&s, sig.signature.ecdsa.signatureS.buffer, 32), 0);
    assert_int_equal(tether_tpm2_verify_signature(&pub, data, sizeof(data), &sig), TETHER_OK);
    sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
    assert_int_equal(tether_tpm2_verify_signature(&pub, data, sizeof(data), &sig),
                     TETHER_ERR_VERIFY);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_keypair_free(&key);
}

/* --- names ------------------------------------------------------------------------ */

static void expected_name(const TPMT_PUBLIC *pub, mbedtls_md_type_t md, TPM2B_NAME *name)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t offset = 0;

    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &offset), TSS2_RC_SUCCESS);
    name->name[0] = (uint8_t)(pub->nameAlg >> 8);
    name->name[1] = (uint8_t)pub->nameAlg;
    sha(md, buf, offset, name->name + 2);
    name->size = (uint16_t)(2 + mbedtls_md_get_size(mbedtls_md_info_from_type(md)));
}

static void names(void **state)
{
    world_t *w = *state;
    TPM2B_NAME name, want;
    TPMT_PUBLIC pub;

    assert_int_equal(tether_tpm2_public_name(ak_pub(w), &name), TETHER_OK);
    expected_name(ak_pub(w), MBEDTLS_MD_SHA256, &want);
    assert_int_equal(name.size, 34);
    assert_memory_equal(name.name, want.name, 34);
    assert_int_equal(name.name[1], 0x0b);

    assert_int_equal(tether_tpm2_public_name(&w->p384_ek.publicArea, &name), TETHER_OK);
    expected_name(&w->p384_ek.publicArea, MBEDTLS_MD_SHA384, &want);
    assert_int_equal(name.size, 50);
    assert_memory_equal(name.name, want.name, 50);

    pub = *ak_pub(w);
    pub.nameAlg = TPM2_ALG_SHA1;
    assert_int_equal(tether_tpm2_public_name(&pub, &name), TETHER_OK);
    assert_int_equal(name.size, 22);
    pub.nameAlg = TPM2_ALG_NULL;
    assert_int_equal(tether_tpm2_public_name(&pub, &name), TETHER_ERR_UNSUPPORTED);
    pub.nameAlg = TPM2_ALG_SM3_256;
    assert_int_equal(tether_tpm2_public_name(&pub, &name), TETHER_ERR_UNSUPPORTED);
    assert_int_equal(tether_tpm2_public_name(NULL, &name), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_public_name(ak_pub(w), NULL), TETHER_ERR_INVALID_ARGUMENT);
}

/* TPM2 Part 1, 16: QN(primary) = H(hierarchy handle || name); QN(child) =
 * H(QN(parent) || name); the fake signs with exactly that. */
static void qualified_names(void **state)
{
    world_t *w = *state;
    uint8_t buf[4 + sizeof(TPMU_NAME) * 2];
    TPM2B_NAME ek_name, ak_name, ek_qn, ak_qn, owner_qn, bad;
    TPMS_ATTEST attest;

    assert_int_equal(tether_tpm2_public_name(&w->ek.public_area.publicArea, &ek_name), TETHER_OK);
    assert_int_equal(tether_tpm2_public_name(ak_pub(w), &ak_name), TETHER_OK);
    assert_int_equal(tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT,
                                                &w->ek.public_area.publicArea, &ek_qn),
                     TETHER_OK);
    memcpy(buf, "\x40\x00\x00\x0b", 4);
    memcpy(buf + 4, ek_name.name, ek_name.size);
    assert_int_equal(ek_qn.size, 34);
    assert_memory_equal(ek_qn.name, "\x00\x0b", 2);
    {
        uint8_t digest[32];
        sha(MBEDTLS_MD_SHA256, buf, 4u + ek_name.size, digest);
        assert_memory_equal(ek_qn.name + 2, digest, 32);
    }
    assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, ak_pub(w), &ak_qn), TETHER_OK);
    memcpy(buf, ek_qn.name, ek_qn.size);
    memcpy(buf + ek_qn.size, ak_name.name, ak_name.size);
    {
        uint8_t digest[32];
        sha(MBEDTLS_MD_SHA256, buf, (size_t)ek_qn.size + ak_name.size, digest);
        assert_memory_equal(ak_qn.name + 2, digest, 32);
    }
    /* What a verifier rebuilds from the enrolled EK and AK publics is what
     * the TPM signed. */
    assert_int_equal(tether_attest_parse(w->quote.attest.attestationData, w->quote.attest.size,
                                         TPM2_ST_ATTEST_QUOTE, &attest),
                     TETHER_OK);
    assert_int_equal(attest.qualifiedSigner.size, ak_qn.size);
    assert_memory_equal(attest.qualifiedSigner.name, ak_qn.name, ak_qn.size);

    /* The hierarchy matters. */
    assert_int_equal(
        tether_tpm2_qualified_name(NULL, TPM2_RH_OWNER, &w->ek.public_area.publicArea, &owner_qn),
        TETHER_OK);
    assert_memory_not_equal(owner_qn.name, ek_qn.name, 34);
    /* A SHA-384 object under a SHA-256 parent: the child's nameAlg is used. */
    assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, &w->p384_ek.publicArea, &owner_qn),
                     TETHER_OK);
    assert_int_equal(owner_qn.size, 50);

    {
        TPMT_PUBLIC sm3 = *ak_pub(w);

        sm3.nameAlg = TPM2_ALG_SM3_256;
        assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, &sm3, &ak_qn),
                         TETHER_ERR_UNSUPPORTED);
    }
    bad = ek_qn;
    bad.size = sizeof(bad.name) + 1;
    assert_int_equal(tether_tpm2_qualified_name(&bad, 0, ak_pub(w), &ak_qn),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, NULL, &ak_qn),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, ak_pub(w), NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
}

static void md_types(void **state)
{
    (void)state;
    assert_int_equal(tether_tpm2_md_type(TPM2_ALG_SHA1), MBEDTLS_MD_SHA1);
    assert_int_equal(tether_tpm2_md_type(TPM2_ALG_SHA256), MBEDTLS_MD_SHA256);
    assert_int_equal(tether_tpm2_md_type(TPM2_ALG_SHA384), MBEDTLS_MD_SHA384);
    assert_int_equal(tether_tpm2_md_type(TPM2_ALG_SHA512), MBEDTLS_MD_SHA512);
    assert_int_equal(tether_tpm2_md_type(TPM2_ALG_SM3_256), MBEDTLS_MD_NONE);
    assert_int_equal(tether_tpm2_md_type(TPM2_ALG_NULL), MBEDTLS_MD_NONE);
}

/* --- TPMS_ATTEST parsing -------------------------------------------------------- */

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

static void attest_parse_valid(void **state)
{
    world_t *w = *state;
    TPMS_ATTEST attest;

    assert_int_equal(tether_attest_parse(w->quote.attest.attestationData, w->quote.attest.size,
                                         TPM2_ST_ATTEST_QUOTE, &attest),
                     TETHER_OK);
    assert_int_equal(attest.type, TPM2_ST_ATTEST_QUOTE);
    assert_int_equal(attest.extraData.size, 32);
    assert_int_equal(attest.extraData.buffer[0], 0x42);
    assert_int_equal(attest.attested.quote.pcrSelect.count, 1);
    assert_int_equal(
        tether_attest_parse(w->quote.attest.attestationData, w->quote.attest.size, 0, &attest),
        TETHER_OK);
    assert_int_equal(tether_attest_parse(w->certify.attest.attestationData, w->certify.attest.size,
                                         TPM2_ST_ATTEST_CERTIFY, &attest),
                     TETHER_OK);
    assert_int_equal(tether_attest_parse(w->nv.attest.attestationData, w->nv.attest.size,
                                         TPM2_ST_ATTEST_NV, &attest),
                     TETHER_OK);
    assert_int_equal(attest.extraData.size, 4);
    assert_int_equal(attest.attested.nv.nvContents.size, 8);
    assert_int_equal(attest.attested.nv.nvContents.buffer[7], 1);
}

static void attest_parse_rejects(void **state)
{
    world_t *w = *state;
    uint8_t buf[sizeof(w->quote.attest.attestationData) + 1];
    size_t len = w->quote.attest.size;
    TPMS_ATTEST attest;

    memcpy(buf, w->quote.attest.attestationData, len);
    /* A quote offered as a certification or an NV certification. */
    memset(&attest, 0x5a, sizeof(attest));
    assert_int_equal(tether_attest_parse(buf, len, TPM2_ST_ATTEST_CERTIFY, &attest),
                     TETHER_ERR_PARSE);
    assert_true(all_zero(&attest, sizeof(attest)));
    assert_int_equal(tether_attest_parse(buf, len, TPM2_ST_ATTEST_NV, &attest), TETHER_ERR_PARSE);
    /* Not made by a TPM: the magic differs. */
    for (unsigned i = 0; i < 4; i++) {
        buf[i] ^= 0x01;
        assert_int_equal(tether_attest_parse(buf, len, 0, &attest), TETHER_ERR_PARSE);
        buf[i] ^= 0x01;
    }
    /* An unknown attestation type. */
    buf[4] = 0x12;
    buf[5] = 0x34;
    assert_int_equal(tether_attest_parse(buf, len, 0, &attest), TETHER_ERR_PARSE);
    memcpy(buf, w->quote.attest.attestationData, len);
    assert_int_equal(tether_attest_parse(buf, len, 0, &attest), TETHER_OK);
    /* Trailing bytes. */
    buf[len] = 0;
    assert_int_equal(tether_attest_parse(buf, len + 1, 0, &attest), TETHER_ERR_PARSE);
    /* Every truncation. */
    for (size_t cut = 0; cut < len; cut++) {
        if (tether_attest_parse(buf, cut, 0, &attest) != TETHER_ERR_PARSE)
            fail_msg("attestation cut to %zu of %zu bytes was accepted", cut, len);
    }
    /* A length above what TPM2B_ATTEST can hold. */
    assert_int_equal(tether_attest_parse(buf, sizeof(buf), 0, &attest), TETHER_ERR_PARSE);
    assert_int_equal(tether_attest_parse(NULL, len, 0, &attest), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_attest_parse(buf, len, 0, NULL), TETHER_ERR_INVALID_ARGUMENT);
}

/* The owner NV range of the TCG handle registry, from its own numbers: the
 * first and last owner index, and their neighbours (platform, EK certificate
 * and wider-than-32-bit values from text). */
static void nv_owner_range(void **state)
{
    (void)state;
    assert_true(tether_nv_index_is_owner(0x01000000u));
    assert_true(tether_nv_index_is_owner(0x01000100u));
    assert_true(tether_nv_index_is_owner(0x013fffffu));
    assert_false(tether_nv_index_is_owner(0x00ffffffu));
    assert_false(tether_nv_index_is_owner(0x01400000u));
    assert_false(tether_nv_index_is_owner(0x01c0000au)); /* the ECC EK certificate */
    assert_false(tether_nv_index_is_owner(0x0000000101000000ull));
    assert_int_equal(TETHER_NV_OWNER_FIRST, 0x01000000u);
    assert_int_equal(TETHER_NV_OWNER_LAST, 0x013fffffu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(to_pk_ecc),
        cmocka_unit_test(to_pk_p521),
        cmocka_unit_test(to_pk_rsa),
        cmocka_unit_test(to_pk_rejects),
        cmocka_unit_test(matches_cert),
        cmocka_unit_test(verify_tpm_signatures),
        cmocka_unit_test(verify_tampered_data),
        cmocka_unit_test(verify_tampered_signature),
        cmocka_unit_test(verify_signature_encodings),
        cmocka_unit_test(verify_wrong_key_or_algorithm),
        cmocka_unit_test(verify_rsassa),
        cmocka_unit_test(verify_ecdsa_sha384),
        cmocka_unit_test(names),
        cmocka_unit_test(qualified_names),
        cmocka_unit_test(md_types),
        cmocka_unit_test(attest_parse_valid),
        cmocka_unit_test(attest_parse_rejects),
        cmocka_unit_test(nv_owner_range),
        cmocka_unit_test(to_ec_key),
    };
    return cmocka_run_group_tests_name("tpm2_public", tests, world_setup, world_teardown);
}
