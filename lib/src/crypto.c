/* lib's crypto interface (crypto.h) over mbedTLS. */
#include "tether/crypto.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <mbedtls/x509_crt.h>

#include "crypto_internal.h"
#include "tether/bytes.h"
#include "tether/mbedtls_bridge.h"
#include "tether/random.h"

/* Longest PEM text read, as for any PEM file the fleet reads. */
#define PEM_INPUT_MAX (16 * 1024)


void tether_ec_key_init(tether_ec_key_t *key)
{
    if (key != NULL)
        key->impl = NULL;
}

void tether_ec_key_free(tether_ec_key_t *key)
{
    tether_ec_key_backend_t *backend;

    if (key == NULL || key->impl == NULL)
        return;
    if ((backend = atomic_load(&key->impl->backend)) != NULL)
        backend->release(backend);
    mbedtls_pk_free(&key->impl->pk); /* zeroizes the private scalar */
    tether_wipe(key->impl, sizeof(*key->impl));
    free(key->impl);
    key->impl = NULL;
}

bool tether_ec_key_is_set(const tether_ec_key_t *key)
{
    return key != NULL && key->impl != NULL;
}

mbedtls_ecp_keypair *tether_ec_key_keypair(const tether_ec_key_t *key)
{
    return tether_ec_key_is_set(key) ? mbedtls_pk_ec(key->impl->pk) : NULL;
}

bool tether_ec_key_has_private(const tether_ec_key_t *key)
{
    const mbedtls_ecp_keypair *ec = tether_ec_key_keypair(key);

    return ec != NULL && mbedtls_mpi_cmp_int(&ec->d, 0) != 0;
}

tether_status_t tether_ec_sign_begin(const tether_ec_key_t *key, const uint8_t *digest,
                                     uint8_t *sig)
{
    if (sig == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(sig, 0, TETHER_EC_SIGNATURE_SIZE);
    return digest != NULL && tether_ec_key_has_private(key) ? TETHER_OK
                                                             : TETHER_ERR_INVALID_ARGUMENT;
}

tether_status_t tether_ec_key_private_scalar(const tether_ec_key_t *key,
                                            uint8_t d[TETHER_EC_COORDINATE_SIZE])
{
    if (d == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(d, 0, TETHER_EC_COORDINATE_SIZE);
    if (!tether_ec_key_has_private(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (mbedtls_mpi_write_binary(&tether_ec_key_keypair(key)->d, d, TETHER_EC_COORDINATE_SIZE) !=
        0) {
        tether_wipe(d, TETHER_EC_COORDINATE_SIZE);
        return TETHER_ERR_CRYPTO;
    }
    return TETHER_OK;
}

const mbedtls_pk_context *tether_ec_key_pk(const tether_ec_key_t *key)
{
    return tether_ec_key_is_set(key) ? &key->impl->pk : NULL;
}

/* Gives the empty key a fresh P-256 context with its group loaded. */
static tether_status_t key_open(tether_ec_key_t *key)
{
    tether_status_t rc;

    if (key == NULL || key->impl != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((key->impl = calloc(1, sizeof(*key->impl))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    mbedtls_pk_init(&key->impl->pk);
    atomic_init(&key->impl->backend, NULL);
    if (mbedtls_pk_setup(&key->impl->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    rc = mbedtls_ecp_group_load(&tether_ec_key_keypair(key)->grp, MBEDTLS_ECP_DP_SECP256R1) == 0
             ? TETHER_OK
             : TETHER_ERR_CRYPTO;
out:
    if (rc != TETHER_OK)
        tether_ec_key_free(key);
    return rc;
}

tether_status_t tether_ec_key_parse_pem(tether_ec_key_t *key, const char *pem, size_t len)
{
    char *text = NULL;
    const mbedtls_ecp_keypair *ec;
    tether_status_t rc;

    if (key == NULL || key->impl != NULL || pem == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* mbedtls_pk_parse_key wants the PEM NUL-terminated, the NUL counted. */
    if (len > PEM_INPUT_MAX) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    if ((text = malloc(len + 1)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(text, pem, len);
    text[len] = '\0';
    if ((key->impl = calloc(1, sizeof(*key->impl))) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    mbedtls_pk_init(&key->impl->pk);
    atomic_init(&key->impl->backend, NULL);
    if (mbedtls_pk_parse_key(&key->impl->pk, (const unsigned char *)text, len + 1, NULL, 0) != 0) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if (mbedtls_pk_get_type(&key->impl->pk) != MBEDTLS_PK_ECKEY || (ec = tether_ec_key_keypair(key)) == NULL ||
        ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        rc = TETHER_ERR_UNSUPPORTED;
        goto out;
    }
    rc = TETHER_OK;
out:
    if (text != NULL) {
        tether_wipe(text, len + 1);
        free(text);
    }
    if (rc != TETHER_OK && key != NULL && key->impl != NULL)
        tether_ec_key_free(key);
    return rc;
}

tether_status_t tether_ec_key_parse_point(tether_ec_key_t *key,
                                          const uint8_t x[TETHER_EC_COORDINATE_SIZE],
                                          const uint8_t y[TETHER_EC_COORDINATE_SIZE])
{
    uint8_t point[1 + 2 * TETHER_EC_COORDINATE_SIZE];
    mbedtls_ecp_keypair *ec;
    tether_status_t rc;

    if (x == NULL || y == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = key_open(key)) != TETHER_OK)
        return rc;
    point[0] = 0x04; /* uncompressed point, SEC 1 2.3.3 */
    memcpy(point + 1, x, TETHER_EC_COORDINATE_SIZE);
    memcpy(point + 1 + TETHER_EC_COORDINATE_SIZE, y, TETHER_EC_COORDINATE_SIZE);
    ec = tether_ec_key_keypair(key);
    rc = mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point, sizeof(point)) == 0 &&
                 mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) == 0
             ? TETHER_OK
             : TETHER_ERR_PARSE;
    if (rc != TETHER_OK)
        tether_ec_key_free(key);
    return rc;
}

tether_status_t tether_ec_key_parse_private(tether_ec_key_t *key,
                                            const uint8_t d[TETHER_EC_COORDINATE_SIZE])
{
    mbedtls_ecp_keypair *ec;
    tether_status_t rc;

    if (d == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = key_open(key)) != TETHER_OK)
        return rc;
    ec = tether_ec_key_keypair(key);
    if (mbedtls_mpi_read_binary(&ec->d, d, TETHER_EC_COORDINATE_SIZE) != 0) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    if (mbedtls_ecp_check_privkey(&ec->grp, &ec->d) != 0) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    rc = mbedtls_ecp_mul(&ec->grp, &ec->Q, &ec->d, &ec->grp.G, tether_random_mbedtls, NULL) == 0
             ? TETHER_OK
             : TETHER_ERR_CRYPTO;
out:
    if (rc != TETHER_OK)
        tether_ec_key_free(key);
    return rc;
}

tether_status_t tether_ec_key_generate(tether_ec_key_t *key)
{
    tether_status_t rc;
    int ret;

    if ((rc = key_open(key)) != TETHER_OK)
        return rc;
    ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, tether_ec_key_keypair(key), tether_random_mbedtls, NULL);
    if (ret != 0) {
        tether_ec_key_free(key);
        rc = TETHER_ERR_CRYPTO;
    }
    return rc;
}

tether_status_t tether_ec_key_write_pem(const tether_ec_key_t *key, char *out, size_t out_size,
                                        size_t *out_len)
{
    int ret;

    if (out_len != NULL)
        *out_len = 0;
    if (out == NULL || out_size == 0 || !tether_ec_key_has_private(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    /* Writes the PEM and its NUL; fails without writing past out_size. */
    ret = mbedtls_pk_write_key_pem(&key->impl->pk, (unsigned char *)out, out_size);
    if (ret != 0) {
        tether_wipe(out, out_size);
        return ret == MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL ? TETHER_ERR_TOO_LARGE
                                                          : TETHER_ERR_CRYPTO;
    }
    if (out_len != NULL)
        *out_len = strlen(out);
    return TETHER_OK;
}

tether_status_t tether_ec_key_public_point(const tether_ec_key_t *key,
                                           uint8_t x[TETHER_EC_COORDINATE_SIZE],
                                           uint8_t y[TETHER_EC_COORDINATE_SIZE])
{
    const mbedtls_ecp_keypair *ec = tether_ec_key_keypair(key);

    if (x != NULL)
        memset(x, 0, TETHER_EC_COORDINATE_SIZE);
    if (y != NULL)
        memset(y, 0, TETHER_EC_COORDINATE_SIZE);
    if (ec == NULL || x == NULL || y == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (mbedtls_mpi_write_binary(&ec->Q.X, x, TETHER_EC_COORDINATE_SIZE) != 0 ||
        mbedtls_mpi_write_binary(&ec->Q.Y, y, TETHER_EC_COORDINATE_SIZE) != 0)
        return TETHER_ERR_CRYPTO;
    return TETHER_OK;
}

struct tether_cert_set_impl {
    mbedtls_x509_crt chain;
};

void tether_cert_set_init(tether_cert_set_t *set)
{
    if (set != NULL)
        set->impl = NULL;
}

void tether_cert_set_free(tether_cert_set_t *set)
{
    if (set == NULL || set->impl == NULL)
        return;
    mbedtls_x509_crt_free(&set->impl->chain);
    free(set->impl);
    set->impl = NULL;
}

mbedtls_x509_crt *tether_cert_set_chain(const tether_cert_set_t *set)
{
    /* A chain whose first entry never parsed holds no certificate. */
    return set != NULL && set->impl != NULL && set->impl->chain.raw.p != NULL ? &set->impl->chain
                                                                              : NULL;
}

/* The set's chain, created empty on first use. */
static mbedtls_x509_crt *cert_set_open(tether_cert_set_t *set)
{
    if (set->impl == NULL) {
        if ((set->impl = calloc(1, sizeof(*set->impl))) == NULL)
            return NULL;
        mbedtls_x509_crt_init(&set->impl->chain);
    }
    return &set->impl->chain;
}

tether_status_t tether_cert_set_add_der(tether_cert_set_t *set, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt *chain;

    if (set == NULL || der == NULL || len == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((chain = cert_set_open(set)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    return mbedtls_x509_crt_parse_der(chain, der, len) == 0 ? TETHER_OK : TETHER_ERR_PARSE;
}

tether_status_t tether_cert_set_add_file(tether_cert_set_t *set, const char *path)
{
    mbedtls_x509_crt *chain;

    if (set == NULL || path == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((chain = cert_set_open(set)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    /* Non-zero also when only some certificates of a PEM file parse. */
    return mbedtls_x509_crt_parse_file(chain, path) == 0 ? TETHER_OK : TETHER_ERR_PARSE;
}

tether_status_t tether_sha256(const void *data, size_t len, uint8_t out[TETHER_SHA256_SIZE])
{
    if (out == NULL || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    return mbedtls_sha256_ret(data, len, out, 0) == 0 ? TETHER_OK : TETHER_ERR_CRYPTO;
}

size_t tether_hash_size(tether_hash_alg_t alg)
{
    switch (alg) {
    case TETHER_HASH_SHA1: return 20;
    case TETHER_HASH_SHA256: return TETHER_SHA256_SIZE;
    case TETHER_HASH_SHA384: return 48;
    }
    return 0;
}

tether_status_t tether_hash(tether_hash_alg_t alg, const void *data, size_t len, uint8_t *out,
                            size_t out_size)
{
    size_t size = tether_hash_size(alg);
    int ret = -1;

    if (size == 0 || out == NULL || out_size < size || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    switch (alg) {
    case TETHER_HASH_SHA1: ret = mbedtls_sha1_ret(data, len, out); break;
    case TETHER_HASH_SHA256: ret = mbedtls_sha256_ret(data, len, out, 0); break;
    case TETHER_HASH_SHA384: ret = mbedtls_sha512_ret(data, len, out, 1); break;
    }
    return ret == 0 ? TETHER_OK : TETHER_ERR_CRYPTO;
}
