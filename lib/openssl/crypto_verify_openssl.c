/*
 * ECDSA P-256 verification (tether_ec_verify_digest, crypto.h) with OpenSSL's
 * libcrypto, for servers: about twenty times faster than mbedTLS 2.28 on
 * x86-64 (its P-256 is constant-time assembly; bench/bench_dpop.c gives the
 * figures). A server selects it at link time by linking the object library
 * tether_crypto_openssl, whose definition then replaces crypto_verify.c's
 * (never linked beside it); everything else of lib's crypto stays mbedTLS,
 * and the device never links it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "crypto_openssl.h"

#define POINT_SIZE TETHER_OPENSSL_POINT_SIZE
#define KEY_CACHE_SLOTS 16

EVP_PKEY *tether_openssl_ec_key(const uint8_t point[POINT_SIZE], const uint8_t *d)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *priv = NULL;

    /* A secure BIGNUM puts d in the parameters' secure block, which
     * OSSL_PARAM_free wipes (OPENSSL_secure_clear_free). */
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, POINT_SIZE) ||
        (d != NULL && ((priv = BN_secure_new()) == NULL ||
                       BN_bin2bn(d, TETHER_EC_COORDINATE_SIZE, priv) == NULL ||
                       !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv))) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, d != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    return pkey;
}

/* The keys this thread built last. Building an OpenSSL key from a point
 * costs about a quarter of a verification (OpenSSL 3 fetches the key
 * manager and decodes parameters each time), and a DPoP client signs every
 * proof with the same key. A slot is used only when its whole point is
 * equal (public data: no constant-time need). Per thread, so no lock;
 * freed when the thread exits. */
typedef struct key_cache {
    uint8_t points[KEY_CACHE_SLOTS][POINT_SIZE];
    EVP_PKEY *keys[KEY_CACHE_SLOTS];
    unsigned next; /* the slot replaced next, round robin */
} key_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_usable; /* pthread_key_create succeeded */

static void cache_free(void *arg)
{
    key_cache_t *cache = arg;

    for (unsigned i = 0; i < KEY_CACHE_SLOTS; i++)
        EVP_PKEY_free(cache->keys[i]);
    free(cache);
}

static void cache_create(void)
{
    cache_usable = pthread_key_create(&cache_key, cache_free) == 0;
}

/* This thread's cache, made on first use; NULL when none can be had (keys
 * are then built every time). */
static key_cache_t *thread_cache(void)
{
    key_cache_t *cache;

    if (pthread_once(&cache_once, cache_create) != 0 || !cache_usable)
        return NULL;
    if ((cache = pthread_getspecific(cache_key)) == NULL &&
        (cache = calloc(1, sizeof(*cache))) != NULL &&
        pthread_setspecific(cache_key, cache) != 0) {
        free(cache);
        cache = NULL;
    }
    return cache;
}

/* key as an OpenSSL key, with a reference of the caller's own (freed with
 * EVP_PKEY_free), from this thread's cache or built now. */
static EVP_PKEY *public_key(const tether_ec_key_t *key)
{
    uint8_t point[POINT_SIZE];
    key_cache_t *cache = thread_cache();
    EVP_PKEY *pkey;
    unsigned slot;

    point[0] = 0x04;
    if (tether_ec_key_public_point(key, point + 1, point + 1 + TETHER_EC_COORDINATE_SIZE) !=
        TETHER_OK)
        return NULL;
    for (unsigned i = 0; cache != NULL && i < KEY_CACHE_SLOTS; i++)
        if (cache->keys[i] != NULL && memcmp(cache->points[i], point, POINT_SIZE) == 0)
            return EVP_PKEY_up_ref(cache->keys[i]) == 1 ? cache->keys[i] : NULL;
    if ((pkey = tether_openssl_ec_key(point, NULL)) == NULL || cache == NULL)
        return pkey;
    if (EVP_PKEY_up_ref(pkey) != 1)
        return pkey; /* not cached: the caller's reference is the only one */
    slot = cache->next;
    cache->next = (slot + 1) % KEY_CACHE_SLOTS;
    EVP_PKEY_free(cache->keys[slot]);
    cache->keys[slot] = pkey;
    memcpy(cache->points[slot], point, POINT_SIZE);
    return pkey;
}

/* The DER ECDSA-Sig-Value of R || S. *der is freed with OPENSSL_free. */
static int der_signature(const uint8_t sig[TETHER_EC_SIGNATURE_SIZE], unsigned char **der)
{
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, TETHER_EC_COORDINATE_SIZE, NULL);
    BIGNUM *s = BN_bin2bn(sig + TETHER_EC_COORDINATE_SIZE, TETHER_EC_COORDINATE_SIZE, NULL);
    int len = -1;

    *der = NULL;
    if (ecdsa != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(ecdsa, r, s) == 1) {
        r = s = NULL; /* owned by ecdsa now */
        len = i2d_ECDSA_SIG(ecdsa, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return len;
}

tether_status_t tether_ec_verify_digest(const tether_ec_key_t *key,
                                        const uint8_t digest[TETHER_SHA256_SIZE],
                                        const uint8_t sig[TETHER_EC_SIGNATURE_SIZE])
{
    unsigned char *der = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    tether_status_t rc;
    int der_len;

    if (!tether_ec_key_is_set(key) || digest == NULL || sig == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((pkey = public_key(key)) == NULL || (der_len = der_signature(sig, &der)) <= 0 ||
        (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
        EVP_PKEY_verify_init(ctx) != 1) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    /* OpenSSL rejects r or s outside [1, n-1] (SEC 1, 4.1.4) as mbedTLS does. */
    rc = EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, TETHER_SHA256_SIZE) == 1
             ? TETHER_OK
             : TETHER_ERR_VERIFY;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    OPENSSL_free(der);
    return rc;
}
