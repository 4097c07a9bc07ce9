/*
 * Internals of credential.c that code outside lib's product reaches:
 * MakeCredential with the randomness injected, so that known-answer tests
 * can fix the seed or the ephemeral key, and the checks and primitives of
 * TPM2_MakeCredential that the software TPM2_ActivateCredential of the test
 * fakes (tests/fakes) shares, so both sides check and derive alike. Not
 * installed; production code calls tether_credential_make().
 */
#ifndef TETHER_CREDENTIAL_INTERNAL_H
#define TETHER_CREDENTIAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <tss2/tss2_tpm2_types.h>

#include "tether/credential.h"
#include "tether/error.h"

/* The label of the seed (TPM2 Part 1, 24.4): KDFe's label for an ECC EK;
 * for an RSA EK the OAEP label is sizeof() of it, NUL included, as on a
 * TPM. */
#define TETHER_CREDENTIAL_LABEL_IDENTITY "IDENTITY"

/* What an EK's public area selects, once checked. */
typedef struct tether_credential_ek_params {
    TPMI_ALG_HASH name_alg;
    const mbedtls_md_info_t *md;
    size_t digest_len;
    unsigned int aes_bits;
    mbedtls_ecp_group_id group; /* ECC only */
    size_t coordinate_len;      /* ECC only: bytes of a field element */
} tether_credential_ek_params_t;

/* Logs an mbedTLS failure (what, and ret decoded) and gives
 * TETHER_ERR_CRYPTO. */
tether_status_t tether_credential_crypto_fail(const char *what, int ret);

/*
 * Checks that the EK can receive a credential the way a TPM would process it
 * and that tether supports its algorithms (the EK rules of
 * tether_credential_make), and fills *params, which is zeroed on entry.
 * TETHER_ERR_INVALID_ARGUMENT or TETHER_ERR_UNSUPPORTED as documented there.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_check_ek(
    const TPM2B_PUBLIC *ek_public, tether_credential_ek_params_t *params);

/* Checks an object name: nameAlg SHA-256, SHA-384 or SHA-512 and a digest of
 * that size. */
TETHER_MUST_CHECK tether_status_t tether_credential_check_name(const TPM2B_NAME *name);

/* The EK public area (checked by tether_credential_check_ek) as an mbedTLS
 * key in pk, which the caller has initialised and frees. A modulus or point
 * that is not a valid key gives TETHER_ERR_INVALID_ARGUMENT. */
TETHER_MUST_CHECK tether_status_t tether_credential_load_ek(const TPMT_PUBLIC *pub,
                                                            mbedtls_pk_context *pk);

/*
 * symKey = KDFa(nameAlg, seed, "STORAGE", name, -, keyBits), then AES-CFB
 * with a zero IV over len bytes from in to out (TPM2 Part 1, 24.4). mode is
 * MBEDTLS_AES_ENCRYPT or MBEDTLS_AES_DECRYPT. The key is wiped.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_cfb(
    const tether_credential_ek_params_t *params, const uint8_t *seed, size_t seed_len,
    const TPM2B_NAME *name, int mode, const uint8_t *in, uint8_t *out, size_t len);

/*
 * HMACkey = KDFa(nameAlg, seed, "INTEGRITY", -, -, digest bits); writes
 * HMAC(HMACkey, enc_identity || name), params->digest_len bytes, to mac
 * (TPM2 Part 1, 24.5). The key is wiped.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_hmac(
    const tether_credential_ek_params_t *params, const uint8_t *seed, size_t seed_len,
    const uint8_t *enc_identity, size_t enc_len, const TPM2B_NAME *name, uint8_t *mac);

/*
 * tether_credential_make() drawing its randomness from f_rng(p_rng, ...).
 * The draws, in this order (a contract the known-answer tests rely on):
 *   RSA EK: the seed (digest size of the EK nameAlg), then OAEP's own seed
 *     (the same size, one draw inside mbedtls_rsa_rsaes_oaep_encrypt).
 *   ECC EK: the ephemeral private key d, big-endian, curve-size bytes per
 *     draw, drawn again until 1 <= d < n; then draws of any size for the
 *     blinding of the scalar multiplications, which never change the result.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_make_rng(
    const TPM2B_PUBLIC *ek_public, const TPM2B_NAME *object_name, const uint8_t *secret,
    size_t secret_len, TPM2B_ID_OBJECT *credential_blob, TPM2B_ENCRYPTED_SECRET *encrypted_secret,
    int (*f_rng)(void *, unsigned char *, size_t), void *p_rng);

#endif
