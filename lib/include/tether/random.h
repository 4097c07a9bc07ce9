/*
 * Random bytes for nonces, secrets and key generation: an mbedTLS CTR-DRBG
 * seeded from the operating system's entropy, shared by the whole process
 * and safe to call from several threads.
 */
#ifndef TETHER_RANDOM_H
#define TETHER_RANDOM_H

#include <stddef.h>

#include "tether/error.h"

TETHER_MUST_CHECK tether_status_t tether_random_bytes(void *buf, size_t len);

/* An mbedTLS-style RNG callback (f_rng) over the same generator; p_rng is
 * ignored. For mbedtls_ecdsa_sign, mbedtls_pk_sign, TLS and the like. */
int tether_random_mbedtls(void *p_rng, unsigned char *buf, size_t len);

#endif
