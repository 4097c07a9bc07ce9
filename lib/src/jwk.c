/* JWK for EC P-256 public keys and RFC 7638 thumbprints. */
#include "tether/jose.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tether/base64url.h"
#include "tether/bytes.h"

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

static tether_status_t decode_coordinate(const char *text, uint8_t out[TETHER_EC_COORDINATE_SIZE])
{
    size_t len = 0;
    tether_status_t rc;

    if (text == NULL || strlen(text) != TETHER_BASE64URL_ENCODED_LEN(TETHER_EC_COORDINATE_SIZE))
        return TETHER_ERR_PARSE;
    rc = tether_base64url_decode(text, strlen(text), out, TETHER_EC_COORDINATE_SIZE, &len);
    if (rc != TETHER_OK || len != TETHER_EC_COORDINATE_SIZE)
        return TETHER_ERR_PARSE;
    return TETHER_OK;
}

tether_status_t tether_jwk_parse(const cJSON *jwk, tether_ec_key_t *key)
{
    uint8_t x[TETHER_EC_COORDINATE_SIZE], y[TETHER_EC_COORDINATE_SIZE];
    const char *kty, *crv;

    if (jwk == NULL || key == NULL || tether_ec_key_is_set(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (!cJSON_IsObject(jwk) || (kty = string_member(jwk, "kty")) == NULL)
        return TETHER_ERR_PARSE;
    if (strcmp(kty, "EC") != 0)
        return TETHER_ERR_UNSUPPORTED;
    if ((crv = string_member(jwk, "crv")) == NULL)
        return TETHER_ERR_PARSE;
    if (strcmp(crv, "P-256") != 0)
        return TETHER_ERR_UNSUPPORTED;
    /* A private key where a public one is expected is a mistake that leaks
     * the key: refuse it rather than quietly drop "d". */
    if (cJSON_GetObjectItemCaseSensitive(jwk, "d") != NULL)
        return TETHER_ERR_PARSE;
    if (decode_coordinate(string_member(jwk, "x"), x) != TETHER_OK ||
        decode_coordinate(string_member(jwk, "y"), y) != TETHER_OK)
        return TETHER_ERR_PARSE;
    /* Refuses off-curve points (invalid-curve attacks). */
    return tether_ec_key_parse_point(key, x, y);
}

tether_status_t tether_jwk_write(const tether_ec_key_t *key, cJSON **out)
{
    uint8_t x_raw[TETHER_EC_COORDINATE_SIZE], y_raw[TETHER_EC_COORDINATE_SIZE];
    char x[TETHER_BASE64URL_ENCODED_LEN(TETHER_EC_COORDINATE_SIZE) + 1];
    char y[sizeof(x)];
    cJSON *jwk = NULL;
    tether_status_t rc;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((rc = tether_ec_key_public_point(key, x_raw, y_raw)) != TETHER_OK)
        goto out;
    if ((rc = tether_base64url_encode(x_raw, sizeof(x_raw), x, sizeof(x), NULL)) != TETHER_OK ||
        (rc = tether_base64url_encode(y_raw, sizeof(y_raw), y, sizeof(y), NULL)) != TETHER_OK)
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
    if (tether_sha256(canonical, o, digest) != TETHER_OK) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    rc = tether_base64url_encode(digest, sizeof(digest), out, out_size, NULL);
out:
    free(canonical);
    return rc;
}

tether_status_t tether_jwk_thumbprint_key(const tether_ec_key_t *key, char *out, size_t out_size)
{
    cJSON *jwk = NULL;
    tether_status_t rc;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_jwk_write(key, &jwk)) == TETHER_OK)
        rc = tether_jwk_thumbprint(jwk, out, out_size);
    cJSON_Delete(jwk);
    return rc;
}
