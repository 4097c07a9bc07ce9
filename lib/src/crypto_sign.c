/* ECDSA P-256 signing (crypto.h) over mbedTLS: deterministic (RFC 6979),
 * the device's and the default. A server may link tether_crypto_openssl
 * instead (crypto_internal.h). */
#include <mbedtls/ecdsa.h>

#include "crypto_internal.h"
#include "tether/bytes.h"
#include "tether/random.h"

tether_status_t tether_ec_sign_digest(const tether_ec_key_t *key,
                                      const uint8_t digest[TETHER_SHA256_SIZE],
                                      uint8_t sig[TETHER_EC_SIGNATURE_SIZE])
{
    mbedtls_ecp_keypair *ec = tether_ec_key_keypair(key);
    mbedtls_mpi r, s;
    tether_status_t rc;

    if ((rc = tether_ec_sign_begin(key, digest, sig)) != TETHER_OK)
        return rc;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, digest, TETHER_SHA256_SIZE,
                                   MBEDTLS_MD_SHA256, tether_random_mbedtls, NULL) != 0 ||
        mbedtls_mpi_write_binary(&r, sig, TETHER_EC_COORDINATE_SIZE) != 0 ||
        mbedtls_mpi_write_binary(&s, sig + TETHER_EC_COORDINATE_SIZE, TETHER_EC_COORDINATE_SIZE) !=
            0) {
        tether_wipe(sig, TETHER_EC_SIGNATURE_SIZE);
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    rc = TETHER_OK;
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc;
}
