/*
 * lib's crypto interface (lib/src/crypto*.c; built a second time with
 * tether_crypto_openssl's signing and verification): P-256 keys, ECDSA over
 * a SHA-256 digest as R || S, SHA-256. Known answers from RFC 6979 and FIPS
 * 180-2; a key's life (init, parse, free); what each function refuses.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

#include "tether/bytes.h"
#include "tether/crypto.h"
#include "tether/error.h"
#include "tether/random.h"

/* RFC 6979 appendix A.2.5: P-256 key, and the deterministic signatures of
 * "sample" and "test" with SHA-256. */
#define RFC6979_D "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"
#define RFC6979_UX "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
#define RFC6979_UY "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
#define RFC6979_SAMPLE_R "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
#define RFC6979_SAMPLE_S "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
#define RFC6979_TEST_R "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367"
#define RFC6979_TEST_S "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"

/* P-256 group order n (SEC 2, 2.4.2), for out-of-range signatures. */
#define P256_N "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"

/* FIPS 180-2 appendix B.1: SHA-256("abc"). */
#define SHA256_ABC "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"

static void hex_to_bytes(const char *hex, uint8_t *out, size_t size)
{
    size_t len = 0;
    assert_int_equal(tether_hex_decode(hex, strlen(hex), out, size, &len), TETHER_OK);
    assert_int_equal(len, size);
}

static void new_key(tether_ec_key_t *key)
{
    tether_ec_key_init(key);
    assert_int_equal(tether_ec_key_generate(key), TETHER_OK);
}

/* A public-only copy of key (what a verifier holds). */
static void public_copy(const tether_ec_key_t *key, tether_ec_key_t *pub)
{
    uint8_t x[32], y[32];

    tether_ec_key_init(pub);
    assert_int_equal(tether_ec_key_public_point(key, x, y), TETHER_OK);
    assert_int_equal(tether_ec_key_parse_point(pub, x, y), TETHER_OK);
}

#ifdef TETHER_TEST_HEDGED_SIGNATURES
/* The servers' signer (tether_crypto_openssl) draws a hedged k, not RFC
 * 6979's: its signature of message verifies and differs from the vector's
 * and from its own next one, and the vector's R || S verifies too. */
static void assert_vector_signature(const tether_ec_key_t *key, const char *message,
                                    const char *r_hex, const char *s_hex)
{
    uint8_t digest[32], sig[64], again[64], expected[64];

    assert_int_equal(tether_sha256(message, strlen(message), digest), TETHER_OK);
    assert_int_equal(tether_ec_sign_digest(key, digest, sig), TETHER_OK);
    assert_int_equal(tether_ec_sign_digest(key, digest, again), TETHER_OK);
    hex_to_bytes(r_hex, expected, 32);
    hex_to_bytes(s_hex, expected + 32, 32);
    assert_memory_not_equal(sig, expected, 64);
    assert_memory_not_equal(sig, again, 64);
    assert_int_equal(tether_ec_verify_digest(key, digest, sig), TETHER_OK);
    assert_int_equal(tether_ec_verify_digest(key, digest, again), TETHER_OK);
    assert_int_equal(tether_ec_verify_digest(key, digest, expected), TETHER_OK);
}
#else
/* key's signature of SHA-256(message) is exactly R || S, and verifies. */
static void assert_vector_signature(const tether_ec_key_t *key, const char *message,
                                    const char *r_hex, const char *s_hex)
{
    uint8_t digest[32], sig[64], expected[64];

    assert_int_equal(tether_sha256(message, strlen(message), digest), TETHER_OK);
    assert_int_equal(tether_ec_sign_digest(key, digest, sig), TETHER_OK);
    hex_to_bytes(r_hex, expected, 32);
    hex_to_bytes(s_hex, expected + 32, 32);
    assert_memory_equal(sig, expected, 64);
    assert_int_equal(tether_ec_verify_digest(key, digest, sig), TETHER_OK);
}
#endif

static void es256_rfc6979_vectors(void **state)
{
    uint8_t d[32], ux[32], uy[32], expected[64], digest[32];
    uint8_t x[32], y[32];
    tether_ec_key_t key;

    (void)state;
    hex_to_bytes(RFC6979_D, d, sizeof(d));
    hex_to_bytes(RFC6979_UX, ux, sizeof(ux));
    hex_to_bytes(RFC6979_UY, uy, sizeof(uy));
    tether_ec_key_init(&key);
    assert_int_equal(tether_ec_key_parse_private(&key, d), TETHER_OK);
    assert_int_equal(tether_ec_key_public_point(&key, x, y), TETHER_OK);
    assert_memory_equal(x, ux, 32);
    assert_memory_equal(y, uy, 32);

    /* R || S, in that order, each 32 bytes big-endian (RFC 7518 3.4) */
    assert_vector_signature(&key, "sample", RFC6979_SAMPLE_R, RFC6979_SAMPLE_S);
    /* "test": S has a leading zero byte, which must stay in its 32 bytes */
    assert_vector_signature(&key, "test", RFC6979_TEST_R, RFC6979_TEST_S);
    assert_int_equal(tether_sha256("test", 4, digest), TETHER_OK);

    /* the "sample" signature does not verify over "test" */
    hex_to_bytes(RFC6979_SAMPLE_R, expected, 32);
    hex_to_bytes(RFC6979_SAMPLE_S, expected + 32, 32);
    assert_int_equal(tether_ec_verify_digest(&key, digest, expected), TETHER_ERR_VERIFY);
    tether_ec_key_free(&key);
}

static void es256_rejects_out_of_range_signatures(void **state)
{
    uint8_t digest[32] = {1}, sig[64];
    tether_ec_key_t key;

    (void)state;
    new_key(&key);
    assert_int_equal(tether_ec_sign_digest(&key, digest, sig), TETHER_OK);
    assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_OK);
    /* r = 0 or s = 0 (the "psychic signature" of CVE-2022-21449) */
    memset(sig, 0, sizeof(sig));
    assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_ERR_VERIFY);
    /* r = s = n */
    hex_to_bytes(P256_N, sig, 32);
    hex_to_bytes(P256_N, sig + 32, 32);
    assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_ERR_VERIFY);
    memset(sig, 0xff, sizeof(sig));
    assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_ERR_VERIFY);
    tether_ec_key_free(&key);
}

static void es256_key_checks(void **state)
{
    uint8_t digest[32] = {0}, sig[64];
    tether_ec_key_t empty, pub, key;
    mbedtls_pk_context p384;
    unsigned char pem[1024];

    (void)state;
    tether_ec_key_init(&empty);
    assert_int_equal(tether_ec_sign_digest(&empty, digest, sig), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_ec_verify_digest(&empty, digest, sig), TETHER_ERR_INVALID_ARGUMENT);
    new_key(&key);
    public_copy(&key, &pub);
    /* a public key cannot sign */
    assert_int_equal(tether_ec_sign_digest(&pub, digest, sig), TETHER_ERR_INVALID_ARGUMENT);
    /* P-384 is not ES256 */
    mbedtls_pk_init(&p384);
    assert_int_equal(mbedtls_pk_setup(&p384, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP384R1, mbedtls_pk_ec(p384),
                                         tether_random_mbedtls, NULL),
                     0);
    assert_int_equal(mbedtls_pk_write_key_pem(&p384, pem, sizeof(pem)), 0);
    assert_int_equal(tether_ec_key_parse_pem(&empty, (const char *)pem, strlen((char *)pem)),
                     TETHER_ERR_UNSUPPORTED);
    assert_false(tether_ec_key_is_set(&empty));
    tether_wipe(pem, sizeof(pem));
    mbedtls_pk_free(&p384);
    tether_ec_key_free(&pub);
    tether_ec_key_free(&key);
}

static void sha256_known_answer(void **state)
{
    uint8_t expected[32], digest[32];

    (void)state;
    hex_to_bytes(SHA256_ABC, expected, sizeof(expected));
    assert_int_equal(tether_sha256("abc", 3, digest), TETHER_OK);
    assert_memory_equal(digest, expected, sizeof(digest));
    assert_int_equal(tether_sha256(NULL, 0, digest), TETHER_OK); /* the empty message */
    assert_int_equal(tether_sha256(NULL, 1, digest), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_sha256("abc", 3, NULL), TETHER_ERR_INVALID_ARGUMENT);
}

/* FIPS 180-2's "abc" vectors for the PCR banks' hashes. */
static void hash_known_answers(void **state)
{
    static const struct {
        tether_hash_alg_t alg;
        const char *hex;
    } vectors[] = {
        {TETHER_HASH_SHA1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {TETHER_HASH_SHA256, SHA256_ABC},
        {TETHER_HASH_SHA384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                             "8086072ba1e7cc2358baeca134c825a7"},
    };
    uint8_t expected[TETHER_HASH_MAX_SIZE], digest[TETHER_HASH_MAX_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        size_t size = tether_hash_size(vectors[i].alg);
        assert_int_equal(size * 2, strlen(vectors[i].hex));
        hex_to_bytes(vectors[i].hex, expected, size);
        assert_int_equal(tether_hash(vectors[i].alg, "abc", 3, digest, sizeof(digest)), TETHER_OK);
        assert_memory_equal(digest, expected, size);
        assert_int_equal(tether_hash(vectors[i].alg, "abc", 3, digest, size - 1),
                         TETHER_ERR_INVALID_ARGUMENT);
    }
    assert_int_equal(tether_hash_size((tether_hash_alg_t)99), 0);
    assert_int_equal(tether_hash((tether_hash_alg_t)99, "abc", 3, digest, sizeof(digest)),
                     TETHER_ERR_INVALID_ARGUMENT);
}

static void sign_verify_round_trip(void **state)
{
    uint8_t digest[32], sig[64];
    tether_ec_key_t key, pub, other;

    (void)state;
    new_key(&key);
    public_copy(&key, &pub);
    new_key(&other);
    assert_true(tether_ec_key_has_private(&key));
    assert_false(tether_ec_key_has_private(&pub));
    for (int i = 0; i < 8; i++) {
        assert_int_equal(tether_random_bytes(digest, sizeof(digest)), TETHER_OK);
        assert_int_equal(tether_ec_sign_digest(&key, digest, sig), TETHER_OK);
        /* the pair and its public half verify; another key does not */
        assert_int_equal(tether_ec_verify_digest(&key, digest, sig), TETHER_OK);
        assert_int_equal(tether_ec_verify_digest(&pub, digest, sig), TETHER_OK);
        assert_int_equal(tether_ec_verify_digest(&other, digest, sig), TETHER_ERR_VERIFY);
        /* any flipped bit of digest, R or S */
        digest[i] ^= 0x01;
        assert_int_equal(tether_ec_verify_digest(&pub, digest, sig), TETHER_ERR_VERIFY);
        digest[i] ^= 0x01;
        sig[i * 8] ^= 0x80;
        assert_int_equal(tether_ec_verify_digest(&pub, digest, sig), TETHER_ERR_VERIFY);
    }
    tether_ec_key_free(&other);
    tether_ec_key_free(&pub);
    tether_ec_key_free(&key);
}

/* More keys than a verifier keeps built (OpenSSL's per-thread cache holds
 * 16): each signature verifies with its own key only, the keys cycled
 * twice so that slots are replaced, and from another thread too (its cache
 * is freed when it exits). */
#define MANY_KEYS 40

typedef struct many_keys {
    tether_ec_key_t keys[MANY_KEYS];
    uint8_t digest[32];
    uint8_t sigs[MANY_KEYS][64];
} many_keys_t;

static void verify_each_with_its_own_key_only(const many_keys_t *m)
{
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < MANY_KEYS; i++) {
            const tether_ec_key_t *next = &m->keys[(i + 1) % MANY_KEYS];
            assert_int_equal(tether_ec_verify_digest(&m->keys[i], m->digest, m->sigs[i]),
                             TETHER_OK);
            assert_int_equal(tether_ec_verify_digest(next, m->digest, m->sigs[i]),
                             TETHER_ERR_VERIFY);
        }
    }
}

static void *verify_in_a_thread(void *arg)
{
    verify_each_with_its_own_key_only(arg);
    return NULL;
}

static void many_keys_never_mixed(void **state)
{
    many_keys_t *m = calloc(1, sizeof(*m));
    pthread_t thread;

    (void)state;
    assert_non_null(m);
    assert_int_equal(tether_random_bytes(m->digest, sizeof(m->digest)), TETHER_OK);
    for (int i = 0; i < MANY_KEYS; i++) {
        new_key(&m->keys[i]);
        assert_int_equal(tether_ec_sign_digest(&m->keys[i], m->digest, m->sigs[i]), TETHER_OK);
    }
    verify_each_with_its_own_key_only(m);
    assert_int_equal(pthread_create(&thread, NULL, verify_in_a_thread, m), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    for (int i = 0; i < MANY_KEYS; i++)
        tether_ec_key_free(&m->keys[i]);
    free(m);
}

/* Threads signing with one key at once, the key's first signatures among
 * them (the libcrypto backend builds its copy of the key then, and one
 * thread's copy wins): every signature verifies. */
#define SIGNING_THREADS 4

typedef struct signing_thread {
    const tether_ec_key_t *key;
    uint8_t digest[32];
    uint8_t sig[64];
    tether_status_t rc;
} signing_thread_t;

static void *sign_in_a_thread(void *arg)
{
    signing_thread_t *t = arg;

    t->rc = tether_ec_sign_digest(t->key, t->digest, t->sig);
    return NULL;
}

static void one_key_signs_in_many_threads(void **state)
{
    signing_thread_t threads[SIGNING_THREADS];
    pthread_t ids[SIGNING_THREADS];
    tether_ec_key_t key, pub;

    (void)state;
    new_key(&key);
    public_copy(&key, &pub);
    for (int i = 0; i < SIGNING_THREADS; i++) {
        threads[i].key = &key;
        threads[i].rc = TETHER_ERR_STATE; /* until the thread has signed */
        assert_int_equal(tether_random_bytes(threads[i].digest, 32), TETHER_OK);
        assert_int_equal(pthread_create(&ids[i], NULL, sign_in_a_thread, &threads[i]), 0);
    }
    for (int i = 0; i < SIGNING_THREADS; i++) {
        assert_int_equal(pthread_join(ids[i], NULL), 0);
        assert_int_equal(threads[i].rc, TETHER_OK);
        assert_int_equal(tether_ec_verify_digest(&pub, threads[i].digest, threads[i].sig),
                         TETHER_OK);
    }
    tether_ec_key_free(&pub);
    tether_ec_key_free(&key);
}

static void pem_round_trip(void **state)
{
    char pem[TETHER_EC_KEY_PEM_MAX];
    uint8_t x[32], y[32], x2[32], y2[32];
    size_t len = 99;
    tether_ec_key_t key, copy, pub;

    (void)state;
    new_key(&key);
    assert_int_equal(tether_ec_key_write_pem(&key, pem, sizeof(pem), &len), TETHER_OK);
    assert_int_equal(len, strlen(pem));
    assert_non_null(strstr(pem, "-----BEGIN EC PRIVATE KEY-----"));
    tether_ec_key_init(&copy);
    /* need not be NUL-terminated: the length is what counts */
    assert_int_equal(tether_ec_key_parse_pem(&copy, pem, len), TETHER_OK);
    assert_true(tether_ec_key_has_private(&copy));
    assert_int_equal(tether_ec_key_public_point(&key, x, y), TETHER_OK);
    assert_int_equal(tether_ec_key_public_point(&copy, x2, y2), TETHER_OK);
    assert_memory_equal(x, x2, sizeof(x));
    assert_memory_equal(y, y2, sizeof(y));
    /* a key that is already set is not overwritten */
    assert_int_equal(tether_ec_key_parse_pem(&copy, pem, len), TETHER_ERR_INVALID_ARGUMENT);
    assert_true(tether_ec_key_is_set(&copy));

    /* too small a buffer: refused and wiped; a public key has no PEM here */
    memset(pem, 'Z', sizeof(pem));
    assert_int_equal(tether_ec_key_write_pem(&key, pem, 64, &len), TETHER_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(pem[i], 0);
    public_copy(&key, &pub);
    assert_int_equal(tether_ec_key_write_pem(&pub, pem, sizeof(pem), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_ec_key_free(&pub);
    tether_ec_key_free(&copy);
    tether_ec_key_free(&key);
}

static void pem_rejects(void **state)
{
    char pem[TETHER_EC_KEY_PEM_MAX];
    size_t len = 0;
    tether_ec_key_t key, parsed;

    (void)state;
    new_key(&key);
    assert_int_equal(tether_ec_key_write_pem(&key, pem, sizeof(pem), &len), TETHER_OK);
    tether_ec_key_init(&parsed);
    /* truncated, not PEM at all, empty */
    assert_int_equal(tether_ec_key_parse_pem(&parsed, pem, len / 2), TETHER_ERR_PARSE);
    assert_false(tether_ec_key_is_set(&parsed));
    assert_int_equal(tether_ec_key_parse_pem(&parsed, "hello", 5), TETHER_ERR_PARSE);
    assert_int_equal(tether_ec_key_parse_pem(&parsed, "", 0), TETHER_ERR_PARSE);
    assert_int_equal(tether_ec_key_parse_pem(&parsed, NULL, 0), TETHER_ERR_INVALID_ARGUMENT);
    assert_false(tether_ec_key_is_set(&parsed));
    tether_wipe(pem, sizeof(pem));
    tether_ec_key_free(&key);
}

static void point_and_scalar_checks(void **state)
{
    uint8_t d[32], x[32], y[32];
    tether_ec_key_t key;

    (void)state;
    hex_to_bytes(RFC6979_UX, x, sizeof(x));
    hex_to_bytes(RFC6979_UY, y, sizeof(y));
    tether_ec_key_init(&key);
    assert_int_equal(tether_ec_key_parse_point(&key, x, y), TETHER_OK);
    assert_true(tether_ec_key_is_set(&key));
    tether_ec_key_free(&key);
    assert_false(tether_ec_key_is_set(&key));
    /* off the curve (invalid-curve attacks) */
    y[31] ^= 0x01;
    assert_int_equal(tether_ec_key_parse_point(&key, x, y), TETHER_ERR_PARSE);
    assert_false(tether_ec_key_is_set(&key));
    /* the scalar must lie in [1, n-1] */
    memset(d, 0, sizeof(d));
    assert_int_equal(tether_ec_key_parse_private(&key, d), TETHER_ERR_PARSE);
    hex_to_bytes(P256_N, d, sizeof(d));
    assert_int_equal(tether_ec_key_parse_private(&key, d), TETHER_ERR_PARSE);
    assert_false(tether_ec_key_is_set(&key));
    /* an empty key has no point */
    memset(x, 0xaa, sizeof(x));
    assert_int_equal(tether_ec_key_public_point(&key, x, y), TETHER_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < sizeof(x); i++)
        assert_int_equal(x[i], 0);
    /* free accepts NULL and an empty key, twice */
    tether_ec_key_free(NULL);
    tether_ec_key_free(&key);
    tether_ec_key_free(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(es256_rfc6979_vectors),
        cmocka_unit_test(es256_rejects_out_of_range_signatures),
        cmocka_unit_test(es256_key_checks),
        cmocka_unit_test(sha256_known_answer),
        cmocka_unit_test(hash_known_answers),
        cmocka_unit_test(sign_verify_round_trip),
        cmocka_unit_test(many_keys_never_mixed),
        cmocka_unit_test(one_key_signs_in_many_threads),
        cmocka_unit_test(pem_round_trip),
        cmocka_unit_test(pem_rejects),
        cmocka_unit_test(point_and_scalar_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
