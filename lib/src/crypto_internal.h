/*
 * Inside lib's crypto interface: what crypto.c and the verification in
 * crypto_verify.c share. tether_ec_verify_digest has a file of its own so
 * that a server may link another implementation of it instead
 * (lib/openssl/crypto_verify_openssl.c, tether_crypto_openssl); the device
 * keeps this one.
 */
#ifndef TETHER_CRYPTO_INTERNAL_H
#define TETHER_CRYPTO_INTERNAL_H

#include <mbedtls/pk.h>

#include "tether/crypto.h"

struct tether_ec_key_impl {
    mbedtls_pk_context pk; /* always an MBEDTLS_PK_ECKEY on P-256 */
};

/* The key pair inside key, or NULL for an empty key. */
mbedtls_ecp_keypair *tether_ec_key_keypair(const tether_ec_key_t *key);

#endif
