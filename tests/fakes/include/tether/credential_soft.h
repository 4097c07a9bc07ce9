/*
 * TPM2_ActivateCredential in software, for the fake TPM and the unit tests:
 * the device side of lib's TPM2_MakeCredential (tether/credential.h). It
 * needs the EK's private key in memory, which no real TPM gives out, so it
 * is never part of a product.
 */
#ifndef TETHER_CREDENTIAL_SOFT_H
#define TETHER_CREDENTIAL_SOFT_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/pk.h>
#include <tss2/tss2_tpm2_types.h>

#include "tether/error.h"

/*
 * The TPM side, TPM2_ActivateCredential, given the EK's private key as an
 * mbedTLS key (RSA or EC, matching ek_public). Recovers the seed, checks the
 * outer HMAC in constant time, decrypts, and writes the secret to out
 * (out_size bytes), its length to *out_len.
 *
 * TETHER_ERR_VERIFY when the blob does not verify for this EK and this name
 * (wrong key, wrong name, any byte changed), TETHER_ERR_PARSE for a
 * structurally malformed blob or encrypted secret, TETHER_ERR_TOO_LARGE when
 * out is too small, TETHER_ERR_EK_MISMATCH when ek_private does not match
 * ek_public; input checks as for tether_credential_make. out is wiped on
 * error. ek_private is only read.
 */
TETHER_MUST_CHECK tether_status_t tether_credential_activate_soft(
    const mbedtls_pk_context *ek_private, const TPM2B_PUBLIC *ek_public,
    const TPM2B_NAME *object_name, const TPM2B_ID_OBJECT *credential_blob,
    const TPM2B_ENCRYPTED_SECRET *encrypted_secret, uint8_t *out, size_t out_size,
    size_t *out_len);

#endif
