/*
 * Internals of credential.c that the unit tests reach: MakeCredential with
 * the randomness injected, so that known-answer tests can fix the seed or
 * the ephemeral key. Not installed; production code calls
 * tether_credential_make().
 */
#ifndef TETHER_CREDENTIAL_INTERNAL_H
#define TETHER_CREDENTIAL_INTERNAL_H

#include <stddef.h>

#include "tether/credential.h"

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
