/* ECDSA P-256 verification (crypto.h) over mbedTLS: the device's and the
 * default. A server may link tether_crypto_openssl instead (crypto_internal.h). */
#include <mbedtls/ecdsa.h>

#include "crypto_internal.h"

tether_status_t tether_ec_verify_digest(const tether_ec_key_t *key,
                                        const uint8_t digest[TETHER_SHA256_SIZE],
                                        const uint8_t sig[TETHER_EC_SIGNATURE_SIZE])
{
    mbedtls_ecp_keypair *ec = tether_ec_key_keypair(key);
    mbedtls_mpi r, s;
    tether_status_t rc;

    if (ec == NULL || digest == NULL || sig == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_mpi_read_binary(&r, sig, TETHER_EC_COORDINATE_SIZE) != 0 ||
        mbedtls_mpi_read_binary(&s, sig + TETHER_EC_COORDINATE_SIZE, TETHER_EC_COORDINATE_SIZE) !=
            0) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    /* mbedtls_ecdsa_verify rejects r or s outside [1, n-1] (SEC 1, 4.1.4). */
    rc = mbedtls_ecdsa_verify(&ec->grp, digest, TETHER_SHA256_SIZE, &ec->Q, &r, &s) == 0
             ? TETHER_OK
             : TETHER_ERR_VERIFY;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}
