/*
 * Inside tether_crypto_openssl: what its verification
 * (crypto_verify_openssl.c) and signing (crypto_sign_openssl.c) share.
 */
#ifndef TETHER_CRYPTO_OPENSSL_H
#define TETHER_CRYPTO_OPENSSL_H

#include <stdint.h>

#include <openssl/evp.h>

#include "tether/crypto.h"

#define TETHER_OPENSSL_POINT_SIZE (1 + 2 * TETHER_EC_COORDINATE_SIZE)

/* The uncompressed point 04 || x || y as an OpenSSL key on prime256v1
 * (OpenSSL checks it is on the curve), with the private scalar d (32 bytes,
 * big-endian) when d is not NULL: a key pair then. NULL on any failure.
 * Every copy of d made here is wiped before returning; the caller wipes
 * d, and EVP_PKEY_free wipes the key's own (OpenSSL 3's EC_KEY_free clears
 * the private scalar with BN_clear_free). */
EVP_PKEY *tether_openssl_ec_key(const uint8_t point[TETHER_OPENSSL_POINT_SIZE], const uint8_t *d);

#endif
