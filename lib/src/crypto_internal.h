/*
 * Inside lib's crypto interface: what crypto.c, the signing in crypto_sign.c
 * and the verification in crypto_verify.c share. tether_ec_sign_digest and
 * tether_ec_verify_digest have files of their own so that a server may link
 * other implementations of them instead (lib/openssl, tether_crypto_openssl);
 * the device keeps these.
 */
#ifndef TETHER_CRYPTO_INTERNAL_H
#define TETHER_CRYPTO_INTERNAL_H

#include <stdatomic.h>

#include <mbedtls/pk.h>

#include "tether/crypto.h"

/* A signing backend's own copy of a key pair (lib/openssl), made on its
 * first signature and released with the key: release frees it and wipes
 * its private part. */
typedef struct tether_ec_key_backend {
    void (*release)(struct tether_ec_key_backend *backend);
} tether_ec_key_backend_t;

struct tether_ec_key_impl {
    mbedtls_pk_context pk; /* always an MBEDTLS_PK_ECKEY on P-256 */
    /* NULL until a backend sets it, once, by compare-and-swap: signing
     * reads a key from several threads. */
    _Atomic(tether_ec_key_backend_t *) backend;
};

/* The key pair inside key, or NULL for an empty key. */
mbedtls_ecp_keypair *tether_ec_key_keypair(const tether_ec_key_t *key);

/* What every tether_ec_sign_digest does first: sig zeroed (when not NULL),
 * then TETHER_ERR_INVALID_ARGUMENT unless sig, digest and key's private
 * part are there. */
TETHER_MUST_CHECK tether_status_t tether_ec_sign_begin(const tether_ec_key_t *key,
                                                       const uint8_t *digest, uint8_t *sig);

/* Copies key's private scalar d (big-endian) into d, which the caller wipes.
 * TETHER_ERR_INVALID_ARGUMENT without a private part; d is zero on error. */
TETHER_MUST_CHECK tether_status_t tether_ec_key_private_scalar(
    const tether_ec_key_t *key, uint8_t d[TETHER_EC_COORDINATE_SIZE]);

#endif
