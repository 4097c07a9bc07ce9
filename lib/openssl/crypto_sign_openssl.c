/*
 * ECDSA P-256 signing (tether_ec_sign_digest, crypto.h) with OpenSSL's
 * libcrypto, for servers: fleetd signs every access token, and libcrypto's
 * constant-time P-256 signs in a tenth of mbedTLS 2.28's time. Linked with
 * the verification (crypto_verify_openssl.c) as tether_crypto_openssl, whose
 * definitions replace lib's crypto_sign.c and crypto_verify.c.
 *
 * The nonce is not RFC 6979's: OpenSSL 3.0 has no deterministic ECDSA (3.2
 * adds it). Its k is hedged (BN_generate_dsa_nonce): a SHA-512 over the
 * private key, fresh bytes of its private DRBG and the digest, so k stays
 * secret and distinct for distinct messages even if the DRBG's output
 * repeated, and a fault in one signature does not give a second signature
 * of the same message with the same k. Signatures are therefore not
 * reproducible: the same digest signed twice gives two valid signatures.
 * s is left as computed, high or low, as mbedTLS leaves it; lib's two
 * verifiers and JOSE libraries accept both.
 *
 * The key pair is built as an OpenSSL key once, on its first signature, and
 * kept with the key (crypto_internal.h's backend) until tether_ec_key_free:
 * building it costs about as much as a signature.
 */
#include <stdlib.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "../src/crypto_internal.h"
#include "crypto_openssl.h"
#include "tether/bytes.h"

/* ECDSA-Sig-Value of two 32-byte integers: SEQUENCE, two INTEGERs each with
 * a possible leading zero (SEC 1, C.5). */
#define DER_SIGNATURE_MAX (2 + 2 * (2 + TETHER_EC_COORDINATE_SIZE + 1))

typedef struct openssl_signer {
    tether_ec_key_backend_t backend; /* first: the key holds a pointer to it */
    EVP_PKEY *pkey;
} openssl_signer_t;

static void signer_release(tether_ec_key_backend_t *backend)
{
    openssl_signer_t *signer = (openssl_signer_t *)backend;

    EVP_PKEY_free(signer->pkey); /* clears the private scalar (EC_KEY_free) */
    free(signer);
}

/* key's pair as an OpenSSL key, built on first use and kept with key (the
 * key keeps the only reference). NULL when it cannot be built. */
static EVP_PKEY *signing_key(const tether_ec_key_t *key)
{
    uint8_t point[TETHER_OPENSSL_POINT_SIZE];
    uint8_t d[TETHER_EC_COORDINATE_SIZE];
    tether_ec_key_backend_t *held = atomic_load(&key->impl->backend);
    openssl_signer_t *signer = NULL;
    EVP_PKEY *pkey = NULL;

    if (held != NULL)
        return ((openssl_signer_t *)held)->pkey;
    point[0] = 0x04; /* uncompressed point, SEC 1 2.3.3 */
    if (tether_ec_key_public_point(key, point + 1, point + 1 + TETHER_EC_COORDINATE_SIZE) !=
            TETHER_OK ||
        tether_ec_key_private_scalar(key, d) != TETHER_OK ||
        (signer = calloc(1, sizeof(*signer))) == NULL ||
        (signer->pkey = tether_openssl_ec_key(point, d)) == NULL)
        goto out;
    signer->backend.release = signer_release;
    /* Two threads may build it at once: the first to publish wins, and the
     * other releases its own and uses the winner's. */
    if (atomic_compare_exchange_strong(&key->impl->backend, &held, &signer->backend)) {
        pkey = signer->pkey;
        signer = NULL;
    } else {
        pkey = ((openssl_signer_t *)held)->pkey;
    }
out:
    tether_wipe(d, sizeof(d));
    if (signer != NULL)
        signer_release(&signer->backend);
    return pkey;
}

tether_status_t tether_ec_sign_digest(const tether_ec_key_t *key,
                                      const uint8_t digest[TETHER_SHA256_SIZE],
                                      uint8_t sig[TETHER_EC_SIGNATURE_SIZE])
{
    unsigned char der[DER_SIGNATURE_MAX];
    const unsigned char *p = der;
    size_t der_len = sizeof(der);
    ECDSA_SIG *ecdsa = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    const BIGNUM *r, *s;
    EVP_PKEY *pkey;
    tether_status_t rc;

    if ((rc = tether_ec_sign_begin(key, digest, sig)) != TETHER_OK)
        return rc;
    /* Without a digest set on the context, EVP_PKEY_sign signs these 32
     * bytes as the digest. */
    if ((pkey = signing_key(key)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
        EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_sign(ctx, der, &der_len, digest, TETHER_SHA256_SIZE) != 1 ||
        (ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    ECDSA_SIG_get0(ecdsa, &r, &s);
    rc = BN_bn2binpad(r, sig, TETHER_EC_COORDINATE_SIZE) == TETHER_EC_COORDINATE_SIZE &&
                 BN_bn2binpad(s, sig + TETHER_EC_COORDINATE_SIZE, TETHER_EC_COORDINATE_SIZE) ==
                     TETHER_EC_COORDINATE_SIZE
             ? TETHER_OK
             : TETHER_ERR_CRYPTO;
out:
    if (rc != TETHER_OK)
        tether_wipe(sig, TETHER_EC_SIGNATURE_SIZE);
    ECDSA_SIG_free(ecdsa);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}
