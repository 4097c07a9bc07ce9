/*
 * lib's ECDSA against second implementations: signatures made by OpenSSL's
 * libcrypto verified by tether_ec_verify_digest, and signatures made by
 * tether_ec_sign_digest verified by libcrypto and by mbedTLS, each called
 * directly. Built twice (tests/unit/CMakeLists.txt): with lib's mbedTLS
 * signing and verification and with tether_crypto_openssl's, so both
 * backends are held to the same answers, the high-s and out-of-range edge
 * cases included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <mbedtls/ecdsa.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "tether/crypto.h"
#include "tether/error.h"

#define ROUNDS 32

/* P-256 group order n (SEC 2, 2.4.2). */
static const uint8_t P256_N[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* A fresh libcrypto P-256 key, and the same public key as a tether key. */
static EVP_PKEY *openssl_key(tether_ec_key_t *pub)
{
    uint8_t point[65];
    size_t len = 0;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");

    assert_non_null(pkey);
    assert_int_equal(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                     sizeof(point), &len),
                     1);
    assert_int_equal(len, sizeof(point));
    assert_int_equal(point[0], 0x04);
    tether_ec_key_init(pub);
    assert_int_equal(tether_ec_key_parse_point(pub, point + 1, point + 33), TETHER_OK);
    return pkey;
}

/* libcrypto's signature of digest as R || S. */
static void openssl_sign(EVP_PKEY *pkey, const uint8_t digest[32], uint8_t sig[64])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    unsigned char der[80];
    const unsigned char *p = der;
    size_t der_len = sizeof(der);
    const BIGNUM *r, *s;
    ECDSA_SIG *ecdsa;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, digest, 32), 1);
    assert_non_null(ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)der_len));
    ECDSA_SIG_get0(ecdsa, &r, &s);
    assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
    assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
    ECDSA_SIG_free(ecdsa);
    EVP_PKEY_CTX_free(ctx);
}

/* Whether libcrypto accepts sig (R || S) over digest by key's public point. */
static int openssl_verifies(const tether_ec_key_t *key, const uint8_t digest[32],
                            const uint8_t sig[64])
{
    uint8_t point[65] = {0x04};
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *vctx;
    EVP_PKEY *pkey = NULL;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    unsigned char *der = NULL;
    int der_len, ok;

    assert_int_equal(tether_ec_key_public_point(key, point + 1, point + 33), TETHER_OK);
    assert_non_null(ctx);
    assert_non_null(ecdsa);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_int_equal(ECDSA_SIG_set0(ecdsa, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)),
                     1);
    assert_true((der_len = i2d_ECDSA_SIG(ecdsa, &der)) > 0);
    assert_non_null(vctx = EVP_PKEY_CTX_new(pkey, NULL));
    assert_int_equal(EVP_PKEY_verify_init(vctx), 1);
    ok = EVP_PKEY_verify(vctx, der, (size_t)der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(vctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(ecdsa);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Whether mbedTLS accepts sig (R || S) over digest by key's public point. */
static int mbedtls_verifies(const tether_ec_key_t *key, const uint8_t digest[32],
                            const uint8_t sig[64])
{
    uint8_t point[65] = {0x04};
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    int ok;

    assert_int_equal(tether_ec_key_public_point(key, point + 1, point + 33), TETHER_OK);
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1), 0);
    assert_int_equal(mbedtls_ecp_point_read_binary(&grp, &q, point, sizeof(point)), 0);
    assert_int_equal(mbedtls_mpi_read_binary(&r, sig, 32), 0);
    assert_int_equal(mbedtls_mpi_read_binary(&s, sig + 32, 32), 0);
    ok = mbedtls_ecdsa_verify(&grp, digest, 32, &q, &r, &s) == 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return ok;
}

/* s replaced by n - s: the other valid signature of the same message. */
static void negate_s(uint8_t sig[64])
{
    BIGNUM *n = BN_bin2bn(P256_N, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);

    assert_non_null(n);
    assert_non_null(s);
    assert_int_equal(BN_sub(s, n, s), 1);
    assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
    BN_free(n);
    BN_free(s);
}

static void openssl_signs_tether_verifies(void **state)
{
    (void)state;
    for (int i = 0; i < ROUNDS; i++) {
        uint8_t digest[32], sig[64];
        tether_ec_key_t pub;
        EVP_PKEY *pkey = openssl_key(&pub);

        assert_int_equal(tether_sha256(&i, sizeof(i), digest), TETHER_OK);
        openssl_sign(pkey, digest, sig);
        assert_int_equal(tether_ec_verify_digest(&pub, digest, sig), TETHER_OK);
        /* High s verifies too (ECDSA has no low-s rule; TPMs write both). */
        negate_s(sig);
        assert_int_equal(tether_ec_verify_digest(&pub, digest, sig), TETHER_OK);
        digest[i % 32] ^= 0x01;
        assert_int_equal(tether_ec_verify_digest(&pub, digest, sig), TETHER_ERR_VERIFY);
        tether_ec_key_free(&pub);
        EVP_PKEY_free(pkey);
    }
}

static void tether_signs_openssl_verifies(void **state)
{
    (void)state;
    for (int i = 0; i < ROUNDS; i++) {
        uint8_t digest[32], sig[64];
        tether_ec_key_t key;

        tether_ec_key_init(&key);
        assert_int_equal(tether_ec_key_generate(&key), TETHER_OK);
        assert_int_equal(tether_sha256(&i, sizeof(i), digest), TETHER_OK);
        assert_int_equal(tether_ec_sign_digest(&key, digest, sig), TETHER_OK);
        assert_true(openssl_verifies(&key, digest, sig));
        assert_true(mbedtls_verifies(&key, digest, sig));
        assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_OK);
        sig[63] ^= 0x01;
        assert_false(openssl_verifies(&key, digest, sig));
        assert_false(mbedtls_verifies(&key, digest, sig));
        assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_ERR_VERIFY);
        tether_ec_key_free(&key);
    }
}

/* A signature by one key is refused under another by every verifier, and
 * a key signs with its own pair however many keys signed before it (the
 * libcrypto backend keeps each key's OpenSSL copy with the key). */
static void tether_signature_wrong_key_refused(void **state)
{
    tether_ec_key_t keys[4];
    uint8_t digest[32], sig[64];

    (void)state;
    assert_int_equal(tether_sha256("wrong key", 9, digest), TETHER_OK);
    for (size_t k = 0; k < 4; k++) {
        tether_ec_key_init(&keys[k]);
        assert_int_equal(tether_ec_key_generate(&keys[k]), TETHER_OK);
    }
    for (int round = 0; round < 2; round++) {
        for (size_t k = 0; k < 4; k++) {
            const tether_ec_key_t *other = &keys[(k + 1) % 4];

            assert_int_equal(tether_ec_sign_digest(&keys[k], digest, sig), TETHER_OK);
            assert_int_equal(tether_ec_verify_digest(&keys[k], digest, sig), TETHER_OK);
            assert_int_equal(tether_ec_verify_digest(other, digest, sig), TETHER_ERR_VERIFY);
            assert_false(openssl_verifies(other, digest, sig));
            assert_false(mbedtls_verifies(other, digest, sig));
        }
    }
    for (size_t k = 0; k < 4; k++)
        tether_ec_key_free(&keys[k]);
}

/* r or s of 0, n, n + 1 or 2^256 - 1 (SEC 1, 4.1.4: both in [1, n-1]) is
 * refused whatever the other half is, by this build's verification as by
 * libcrypto itself. */
static void out_of_range_refused_alike(void **state)
{
    uint8_t digest[32] = {7}, good[64], sig[64], bad[4][32];
    tether_ec_key_t key;

    (void)state;
    memset(bad[0], 0, 32);
    memcpy(bad[1], P256_N, 32);
    memcpy(bad[2], P256_N, 32);
    bad[2][31]++;
    memset(bad[3], 0xff, 32);
    tether_ec_key_init(&key);
    assert_int_equal(tether_ec_key_generate(&key), TETHER_OK);
    assert_int_equal(tether_ec_sign_digest(&key, digest, good), TETHER_OK);
    for (size_t b = 0; b < 4; b++) {
        for (size_t half = 0; half < 2; half++) {
            memcpy(sig, good, sizeof(sig));
            memcpy(sig + 32 * half, bad[b], 32);
            assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_ERR_VERIFY);
            assert_false(openssl_verifies(&key, digest, sig));
        }
    }
    tether_ec_key_free(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openssl_signs_tether_verifies),
        cmocka_unit_test(tether_signs_openssl_verifies),
        cmocka_unit_test(tether_signature_wrong_key_refused),
        cmocka_unit_test(out_of_range_refused_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
