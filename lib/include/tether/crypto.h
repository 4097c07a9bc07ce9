/*
 * lib's crypto interface: EC P-256 keys, ECDSA over a SHA-256 digest with the
 * signature as raw R || S (RFC 7518 section 3.4), and SHA-256.
 *
 * Callers never see the library underneath (mbedTLS; servers that link
 * tether_crypto_openssl sign and verify with OpenSSL's libcrypto), so no
 * caller changes with it. A key is a caller-owned context with a three-step
 * life: tether_ec_key_init (cannot fail), one of the _parse/_generate
 * functions (can fail; the key must be empty), tether_ec_key_free (accepts
 * NULL and empty keys, wipes the private part).
 */
#ifndef TETHER_CRYPTO_H
#define TETHER_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_SHA256_SIZE 32
#define TETHER_EC_COORDINATE_SIZE 32 /* P-256 x, y and private scalar, big-endian */
#define TETHER_EC_SIGNATURE_SIZE 64  /* R || S, each 32 bytes big-endian */

/* Longest PEM text tether_ec_key_write_pem writes, with its NUL. */
#define TETHER_EC_KEY_PEM_MAX 512

struct tether_ec_key_impl;

/* An EC P-256 public key, or a key pair. impl is owned by the context and is
 * NULL while the key is empty; only lib looks inside it. */
typedef struct tether_ec_key {
    struct tether_ec_key_impl *impl;
} tether_ec_key_t;

/* Makes key empty. */
void tether_ec_key_init(tether_ec_key_t *key);

/* Releases and wipes everything key holds and leaves it empty. Accepts NULL. */
void tether_ec_key_free(tether_ec_key_t *key);

/* Whether key holds a key (public or pair). */
bool tether_ec_key_is_set(const tether_ec_key_t *key);

/* Whether key holds a private part (tether_ec_sign_digest can use it). */
bool tether_ec_key_has_private(const tether_ec_key_t *key);

/* Reads a P-256 private key from PEM text pem[0..len) (SEC 1 "EC PRIVATE
 * KEY" or PKCS #8; need not be NUL-terminated). TETHER_ERR_PARSE when it is
 * not one, TETHER_ERR_UNSUPPORTED for another curve or key type,
 * TETHER_ERR_INVALID_ARGUMENT when key is not empty. On error key stays
 * empty. The caller wipes pem. */
TETHER_MUST_CHECK tether_status_t tether_ec_key_parse_pem(tether_ec_key_t *key, const char *pem,
                                                          size_t len);

/* Sets key to the public point (x, y). TETHER_ERR_PARSE unless the point is
 * on the curve (an off-curve point opens invalid-curve attacks), and
 * TETHER_ERR_INVALID_ARGUMENT when key is not empty. On error key stays
 * empty. */
TETHER_MUST_CHECK tether_status_t tether_ec_key_parse_point(
    tether_ec_key_t *key, const uint8_t x[TETHER_EC_COORDINATE_SIZE],
    const uint8_t y[TETHER_EC_COORDINATE_SIZE]);

/* Sets the empty key to the key pair whose private scalar is d (32 bytes,
 * big-endian), deriving the public point: a known key (a test vector, an
 * imported key). TETHER_ERR_PARSE unless 1 <= d < n. On error key stays
 * empty. The caller wipes d. */
TETHER_MUST_CHECK tether_status_t tether_ec_key_parse_private(
    tether_ec_key_t *key, const uint8_t d[TETHER_EC_COORDINATE_SIZE]);

/* Generates a fresh key pair into the empty key, from the CTR-DRBG of
 * tether_random_mbedtls. */
TETHER_MUST_CHECK tether_status_t tether_ec_key_generate(tether_ec_key_t *key);

/* Writes the private key as SEC 1 "EC PRIVATE KEY" PEM, NUL-terminated, into
 * out (out_size bytes, TETHER_EC_KEY_PEM_MAX is enough); *out_len (may be
 * NULL) gets its length without the NUL. The text is secret: the caller wipes
 * it. TETHER_ERR_INVALID_ARGUMENT without a private part, TETHER_ERR_TOO_LARGE
 * when out is too small; out is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_ec_key_write_pem(const tether_ec_key_t *key, char *out,
                                                          size_t out_size, size_t *out_len);

/* Copies the public point of key (x and y, 32 bytes each). */
TETHER_MUST_CHECK tether_status_t tether_ec_key_public_point(const tether_ec_key_t *key,
                                                             uint8_t x[TETHER_EC_COORDINATE_SIZE],
                                                             uint8_t y[TETHER_EC_COORDINATE_SIZE]);

/* Signs a SHA-256 digest with key's private part; sig gets R || S. mbedTLS
 * signs deterministically (RFC 6979, with blinding); tether_crypto_openssl's
 * libcrypto with a hedged nonce, so the same digest signed twice gives two
 * valid signatures. TETHER_ERR_INVALID_ARGUMENT without a private part;
 * sig is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_ec_sign_digest(const tether_ec_key_t *key,
                                                        const uint8_t digest[TETHER_SHA256_SIZE],
                                                        uint8_t sig[TETHER_EC_SIGNATURE_SIZE]);

/* TETHER_OK when sig (R || S) is a valid signature of digest by key (public,
 * or a pair); TETHER_ERR_VERIFY when not, including R or S outside [1, n-1];
 * TETHER_ERR_INVALID_ARGUMENT for an empty key. */
TETHER_MUST_CHECK tether_status_t tether_ec_verify_digest(const tether_ec_key_t *key,
                                                          const uint8_t digest[TETHER_SHA256_SIZE],
                                                          const uint8_t sig[TETHER_EC_SIGNATURE_SIZE]);

/* ---- X.509 trust anchors ---------------------------------------------- */

struct tether_cert_set_impl;

/* Certificates trusted as anchors, roots and intermediates alike (the TPM
 * manufacturers' CAs). Same life as a key: tether_cert_set_init (cannot
 * fail), _add_der/_add_file (can; each adds to the set), tether_cert_set_free
 * (accepts NULL). impl is owned by the set and NULL while it is empty. */
typedef struct tether_cert_set {
    struct tether_cert_set_impl *impl;
} tether_cert_set_t;

void tether_cert_set_init(tether_cert_set_t *set);
void tether_cert_set_free(tether_cert_set_t *set);

/* Adds one DER certificate. TETHER_ERR_PARSE when it is not one; the set
 * keeps what it held. */
TETHER_MUST_CHECK tether_status_t tether_cert_set_add_der(tether_cert_set_t *set,
                                                          const uint8_t *der, size_t len);

/* Adds every certificate of a PEM or DER file. TETHER_ERR_PARSE when the file
 * cannot be read or any certificate in it does not parse. */
TETHER_MUST_CHECK tether_status_t tether_cert_set_add_file(tether_cert_set_t *set,
                                                           const char *path);

/* out = SHA-256(data[0..len)). */
TETHER_MUST_CHECK tether_status_t tether_sha256(const void *data, size_t len,
                                                uint8_t out[TETHER_SHA256_SIZE]);

/* The hashes of a TPM's PCR banks that lib computes (the firmware event
 * log's replay). */
typedef enum tether_hash_alg {
    TETHER_HASH_SHA1,
    TETHER_HASH_SHA256,
    TETHER_HASH_SHA384,
} tether_hash_alg_t;

#define TETHER_HASH_MAX_SIZE 48 /* SHA-384 */

/* The digest size of alg in bytes; 0 for a value outside the enum. */
size_t tether_hash_size(tether_hash_alg_t alg);

/* out = alg(data[0..len)), tether_hash_size(alg) bytes into out (out_size
 * bytes). TETHER_ERR_INVALID_ARGUMENT for an unknown alg or an out too
 * small. */
TETHER_MUST_CHECK tether_status_t tether_hash(tether_hash_alg_t alg, const void *data, size_t len,
                                              uint8_t *out, size_t out_size);

#endif
