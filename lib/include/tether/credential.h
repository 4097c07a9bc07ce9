/*
 * TPM2_MakeCredential computed in software, for the fleet side (which never
 * touches a TPM), and the key derivation functions it is built on.
 *
 * The fleet encrypts a secret to a device's EK, bound to the name of the
 * device's AK; only a TPM that holds that EK and has that AK loaded can get
 * the secret back with TPM2_ActivateCredential (TPM2 Part 1, 24 "Credential
 * Protection"; Part 3, 12.6 TPM2_MakeCredential). Pure: no TPM is involved.
 */
#ifndef TETHER_CREDENTIAL_H
#define TETHER_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tether/error.h"

/*
 * KDFa (TPM2 Part 1, 11.4.10.2): SP 800-108 KDF in counter mode with HMAC,
 * each block HMAC(key, [i]32 || label || 0x00 || context_u || context_v ||
 * [bits]32). label is a C string; its terminating NUL is part of the input,
 * as on a TPM. Either context may be NULL when its length is 0, and so may
 * key.
 *
 * Writes (bits + 7) / 8 bytes to out (out_size must hold them, else
 * TETHER_ERR_TOO_LARGE). When bits is not a multiple of 8 the unused high
 * bits of out[0] are cleared, as the TPM does. hash_alg is TPM2_ALG_SHA1,
 * SHA256, SHA384 or SHA512 (TETHER_ERR_UNSUPPORTED otherwise). out is wiped
 * on error.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_kdfa(TPMI_ALG_HASH hash_alg, const uint8_t *key,
                                                         size_t key_len, const char *label,
                                                         const uint8_t *context_u,
                                                         size_t context_u_len,
                                                         const uint8_t *context_v,
                                                         size_t context_v_len, uint32_t bits,
                                                         uint8_t *out, size_t out_size);

/*
 * KDFe (TPM2 Part 1, 11.4.10.3): the SP 800-56A concatenation KDF, each block
 * H([i]32 || z || label || 0x00 || party_u || party_v). Same conventions as
 * tether_credential_kdfa (label with its NUL, NULL allowed for empty inputs,
 * (bits + 7) / 8 bytes out, high bits of out[0] cleared).
 */
TETHER_MUST_CHECK tether_status_t tether_credential_kdfe(TPMI_ALG_HASH hash_alg, const uint8_t *z,
                                                         size_t z_len, const char *label,
                                                         const uint8_t *party_u,
                                                         size_t party_u_len,
                                                         const uint8_t *party_v,
                                                         size_t party_v_len, uint32_t bits,
                                                         uint8_t *out, size_t out_size);

/*
 * Computes TPM2_MakeCredential(ek_public, object_name, secret) exactly as a
 * TPM would, with a fresh seed from tether_random_mbedtls():
 *   RSA EK: seed = nameAlg-digest-size random bytes, RSA-OAEP encrypted
 *     (hash and MGF1 = EK nameAlg, label "IDENTITY\0") into encrypted_secret.
 *   ECC EK: an ephemeral key on the EK's curve; Z = x of the ECDH point;
 *     seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral x, EK x, digest bits);
 *     encrypted_secret = the marshalled TPMS_ECC_POINT of the ephemeral key.
 *   symKey  = KDFa(nameAlg, seed, "STORAGE", object name, -, EK sym keyBits)
 *   encIdentity = AES-CFB(symKey, IV 0, marshalled TPM2B_DIGEST(secret))
 *   HMACkey = KDFa(nameAlg, seed, "INTEGRITY", -, -, digest bits)
 *   credential_blob = TPM2B_DIGEST(HMAC(HMACkey, encIdentity || name)) ||
 *                     encIdentity
 *
 * Supported EKs: RSA 2048 (exponent 0 or 65537), ECC NIST P-256 and P-384;
 * nameAlg SHA-256 or SHA-384; symmetric AES-128/192/256 in CFB mode (the TCG
 * EK templates L-1, L-2 and H-3 among them). The EK must be a restricted
 * decryption key (restricted and decrypt set, sign clear) with scheme NULL.
 * ek_public->size is not used; the public area is checked field by field.
 *
 * object_name is the AK's name: nameAlg (SHA-256, SHA-384 or SHA-512) followed
 * by the digest. secret is 1 to digest-size-of-EK-nameAlg bytes.
 *
 * TETHER_ERR_INVALID_ARGUMENT for malformed or inconsistent input (NULL,
 * sizes, attributes, a point not on the curve), TETHER_ERR_UNSUPPORTED for a
 * valid but unsupported algorithm, TETHER_ERR_CRYPTO when a primitive fails.
 * The outputs belong to the caller; they are zeroed on error. Nothing is kept.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_make(const TPM2B_PUBLIC *ek_public,
                                                         const TPM2B_NAME *object_name,
                                                         const uint8_t *secret, size_t secret_len,
                                                         TPM2B_ID_OBJECT *credential_blob,
                                                         TPM2B_ENCRYPTED_SECRET *encrypted_secret);

/* The TPM side, TPM2_ActivateCredential in software, is in
 * tether/mbedtls_bridge.h (it takes an mbedTLS private key). */

#endif
