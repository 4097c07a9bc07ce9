/* JWK for EC P-256 public keys and RFC 7638 thumbprints. */
#include "tether/jose.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/sha256.h>

#include "tether/base64url.h"
#include "tether/bytes.h"

#define P256_COORDINATE_SIZE 32

/* Longest member value hashed for a thumbprint: an RSA-16384 modulus in
 * base64url is 2731 characters. */
#define THUMBPRINT_VALUE_MAX 4096

static const char *string_member(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return NULL;
    return item->valuestring;
}

static tether_status_t decode_coordinate(const char *text, uint8_t out[P256_COORDINATE_SIZE])
{
    size_t len = 0;
    tether_status_t rc;

    if (text == NULL || strlen(text) != TETHER_BASE64URL_ENCODED_LEN(P256_COORDINATE_SIZE))
        return TETHER_ERR_PARSE;
    rc = tether_base64url_decode(text, strlen(text), out, P256_COORDINATE_SIZE, &len);
    if (rc != TETHER_OK || len != P256_COORDINATE_SIZE)
        return TETHER_ERR_PARSE;
    return TETHER_OK;
}

tether_status_t tether_jwk_parse(const cJSON *jwk, mbedtls_pk_context *pk)
{
    uint8_t point[1 + 2 * P256_COORDINATE_SIZE];
    const char *kty, *crv;
    mbedtls_ecp_keypair *ec;
    tether_status_t rc;

    if (jwk == NULL || pk == NULL || mbedtls_pk_get_type(pk) != MBEDTLS_PK_NONE)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (!cJSON_IsObject(jwk) || (kty = string_member(jwk, "kty")) == NULL) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if (strcmp(kty, "EC") != 0) {
        rc = TETHER_ERR_UNSUPPORTED;
        goto out;
    }
    if ((crv = string_member(jwk, "crv")) == NULL) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if (strcmp(crv, "P-256") != 0) {
        rc = TETHER_ERR_UNSUPPORTED;
        goto out;
    }
    /* A private key where a public one is expected is a mistake that leaks
     * the key: refuse it rather than quietly drop "d". */
    if (cJSON_GetObjectItemCaseSensitive(jwk, "d") != NULL) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    point[0] = 0x04; /* uncompressed point, SEC 1 2.3.3 */
    if ((rc = decode_coordinate(string_member(jwk, "x"), point + 1)) != TETHER_OK ||
        (rc = decode_coordinate(string_member(jwk, "y"), point + 1 + P256_COORDINATE_SIZE)) !=
            TETHER_OK)
        goto out;
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    ec = mbedtls_pk_ec(*pk);
    if (mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) != 0) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    /* Off-curve points would open invalid-curve attacks on whoever uses the key. */
    if (mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point, sizeof(point)) != 0 ||
        mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK) {
        mbedtls_pk_free(pk);
        mbedtls_pk_init(pk);
    }
    return rc;
}

tether_status_t tether_jwk_write(mbedtls_pk_context *pk, cJSON **out)
{
    uint8_t point[1 + 2 * P256_COORDINATE_SIZE];
    char x[TETHER_BASE64URL_ENCODED_LEN(P256_COORDINATE_SIZE) + 1];
    char y[sizeof(x)];
    size_t point_len = 0;
    mbedtls_ecp_keypair *ec;
    cJSON *jwk = NULL;
    tether_status_t rc;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (pk == NULL || !mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA))
        return TETHER_ERR_UNSUPPORTED;
    ec = mbedtls_pk_ec(*pk);
    if (ec == NULL || ec->grp.id != MBEDTLS_ECP_DP_SECP256R1)
        return TETHER_ERR_UNSUPPORTED;
    if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &point_len,
                                       point, sizeof(point)) != 0 ||
        point_len != sizeof(point)) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    if ((rc = tether_base64url_encode(point + 1, P256_COORDINATE_SIZE, x, sizeof(x), NULL)) !=
            TETHER_OK ||
        (rc = tether_base64url_encode(point + 1 + P256_COORDINATE_SIZE, P256_COORDINATE_SIZE, y,
                                      sizeof(y), NULL)) != TETHER_OK)
        goto out;
    if ((jwk = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(jwk, "kty", "EC") == NULL ||
        cJSON_AddStringToObject(jwk, "crv", "P-256") == NULL ||
        cJSON_AddStringToObject(jwk, "x", x) == NULL || cJSON_AddStringToObject(jwk, "y", y) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    *out = jwk;
    jwk = NULL;
    rc = TETHER_OK;
out:
    cJSON_Delete(jwk);
    return rc;
}

/* The required members of each key type (RFC 7638 3.2, RFC 8037 2). */
static const char *const ec_members[] = {"kty", "crv", "x", "y"};
static const char *const rsa_members[] = {"kty", "n", "e"};
static const char *const okp_members[] = {"kty", "crv", "x"};
static const char *const oct_members[] = {"kty", "k"};

/* Values that JSON writes byte for byte, with no escaping to agree on. */
static bool is_plain_value(const char *value)
{
    size_t len = strlen(value);

    if (len == 0 || len > THUMBPRINT_VALUE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

tether_status_t tether_jwk_thumbprint(const cJSON *jwk, char *out, size_t out_size)
{
    const char *names[4], *values[4];
    const char *const *members;
    uint8_t digest[32];
    size_t count, size = 2, o = 0;
    const char *kty;
    char *canonical = NULL;
    tether_status_t rc;

    if (jwk == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (out_size < TETHER_JWK_THUMBPRINT_SIZE)
        return TETHER_ERR_TOO_LARGE;
    if (!cJSON_IsObject(jwk) || (kty = string_member(jwk, "kty")) == NULL)
        return TETHER_ERR_PARSE;
    if (strcmp(kty, "EC") == 0) {
        members = ec_members;
        count = sizeof(ec_members) / sizeof(ec_members[0]);
    } else if (strcmp(kty, "RSA") == 0) {
        members = rsa_members;
        count = sizeof(rsa_members) / sizeof(rsa_members[0]);
    } else if (strcmp(kty, "OKP") == 0) {
        members = okp_members;
        count = sizeof(okp_members) / sizeof(okp_members[0]);
    } else if (strcmp(kty, "oct") == 0) {
        members = oct_members;
        count = sizeof(oct_members) / sizeof(oct_members[0]);
    } else {
        return TETHER_ERR_UNSUPPORTED;
    }
    /* RFC 7638 3.3: members ordered lexicographically by the code points of
     * their names; for ASCII names that is strcmp order. */
    memcpy(names, members, count * sizeof(names[0]));
    qsort(names, count, sizeof(names[0]), compare_names);
    for (size_t i = 0; i < count; i++) {
        values[i] = string_member(jwk, names[i]);
        if (values[i] == NULL || !is_plain_value(values[i]))
            return TETHER_ERR_PARSE;
        size += strlen(names[i]) + strlen(values[i]) + 6; /* "name":"value", */
    }
    if ((canonical = malloc(size + 1)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    canonical[o++] = '{';
    for (size_t i = 0; i < count; i++) {
        size_t name_len = strlen(names[i]), value_len = strlen(values[i]);
        if (i > 0)
            canonical[o++] = ',';
        canonical[o++] = '"';
        memcpy(canonical + o, names[i], name_len);
        o += name_len;
        memcpy(canonical + o, "\":\"", 3);
        o += 3;
        memcpy(canonical + o, values[i], value_len);
        o += value_len;
        canonical[o++] = '"';
    }
    canonical[o++] = '}';
    if (mbedtls_sha256_ret((const unsigned char *)canonical, o, digest, 0) != 0) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    rc = tether_base64url_encode(digest, sizeof(digest), out, out_size, NULL);
out:
    free(canonical);
    return rc;
}

tether_status_t tether_jwk_thumbprint_pk(mbedtls_pk_context *pk, char *out, size_t out_size)
{
    cJSON *jwk = NULL;
    tether_status_t rc;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_jwk_write(pk, &jwk)) == TETHER_OK)
        rc = tether_jwk_thumbprint(jwk, out, out_size);
    cJSON_Delete(jwk);
    return rc;
}
