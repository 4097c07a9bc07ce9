/* ES256, JWS compact serialization and RFC 9068 access tokens. JWK is in jwk.c. */
#include "tether/jose.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tether/json_strict.h"
#include "tether/base64url.h"
#include "tether/bytes.h"

/* Characters of a base64url-encoded ES256 signature. */
#define ES256_SIGNATURE_B64_LEN TETHER_BASE64URL_ENCODED_LEN(TETHER_ES256_SIGNATURE_SIZE)

/* ---- JWS ---------------------------------------------------------------- */

/* tether_jws_sign_fn over a tether_ec_key_t, which it only reads. */
static int sign_with_key(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
    return (int)tether_ec_sign_digest((const tether_ec_key_t *)ctx, digest, sig);
}

static bool is_string_equal(const cJSON *item, const char *value)
{
    return cJSON_IsString(item) && item->valuestring != NULL && strcmp(item->valuestring, value) == 0;
}

tether_status_t tether_jws_sign_with(const cJSON *header, const uint8_t *payload,
                                     size_t payload_len, tether_jws_sign_fn sign, void *sign_ctx,
                                     char *out, size_t out_size, size_t *out_len)
{
    uint8_t digest[32], sig[TETHER_ES256_SIGNATURE_SIZE];
    char *header_text = NULL;
    size_t header_len, header_b64, payload_b64, total, n, written;
    tether_status_t rc;
    int sign_rc;

    if (out_len != NULL)
        *out_len = 0;
    if (header == NULL || (payload == NULL && payload_len > 0) || sign == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (!cJSON_IsObject(header) ||
        !is_string_equal(cJSON_GetObjectItemCaseSensitive(header, "alg"), "ES256"))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (payload_len > TETHER_JWS_MAX_LEN)
        return TETHER_ERR_TOO_LARGE;
    if ((header_text = cJSON_PrintUnformatted(header)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    header_len = strlen(header_text);
    if (header_len > TETHER_JWS_MAX_LEN) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    header_b64 = TETHER_BASE64URL_ENCODED_LEN(header_len);
    payload_b64 = TETHER_BASE64URL_ENCODED_LEN(payload_len);
    total = header_b64 + 1 + payload_b64 + 1 + ES256_SIGNATURE_B64_LEN;
    if (total > TETHER_JWS_MAX_LEN || out_size < total + 1) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    if ((rc = tether_base64url_encode((const uint8_t *)header_text, header_len, out, out_size, &n)) !=
        TETHER_OK)
        goto out;
    out[n++] = '.';
    if ((rc = tether_base64url_encode(payload, payload_len, out + n, out_size - n, &written)) !=
        TETHER_OK)
        goto out;
    n += written;
    /* The JWS Signing Input is ASCII(header "." payload) (RFC 7515 5.1). */
    if (tether_sha256(out, n, digest) != TETHER_OK) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    sign_rc = sign(sign_ctx, digest, sig);
    if (sign_rc != 0) {
        rc = (sign_rc > 0 && sign_rc < (int)TETHER_ERR__COUNT) ? (tether_status_t)sign_rc
                                                               : TETHER_ERR_CRYPTO;
        goto out;
    }
    out[n++] = '.';
    if ((rc = tether_base64url_encode(sig, sizeof(sig), out + n, out_size - n, &written)) !=
        TETHER_OK)
        goto out;
    if (out_len != NULL)
        *out_len = total;
out:
    if (rc != TETHER_OK)
        tether_wipe(out, out_size);
    tether_wipe(sig, sizeof(sig));
    tether_wipe(digest, sizeof(digest));
    if (header_text != NULL)
        cJSON_free(header_text);
    return rc;
}

tether_status_t tether_jws_sign(const cJSON *header, const uint8_t *payload, size_t payload_len,
                                const tether_ec_key_t *key, char *out, size_t out_size,
                                size_t *out_len)
{
    if (!tether_ec_key_is_set(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_jws_sign_with(header, payload, payload_len, sign_with_key, (void *)key, out,
                                out_size, out_len);
}

/* The three segments of a compact JWS, pointing into the caller's text. */
struct jws_parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *signature;
    size_t signature_len;
    size_t signing_input_len; /* header "." payload */
};

static bool is_base64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Checks the size and the shape BASE64URL "." BASE64URL "." BASE64URL. A
 * fourth segment (JWE has five) or any other character is malformed. */
static tether_status_t jws_split(const char *jws, size_t len, struct jws_parts *parts)
{
    size_t dots[2], ndots = 0;

    if (len > TETHER_JWS_MAX_LEN)
        return TETHER_ERR_TOO_LARGE;
    for (size_t i = 0; i < len; i++) {
        if (jws[i] == '.') {
            if (ndots == 2)
                return TETHER_ERR_PARSE;
            dots[ndots++] = i;
        } else if (!is_base64url_char(jws[i])) {
            return TETHER_ERR_PARSE;
        }
    }
    if (ndots != 2 || dots[0] == 0 || dots[1] + 1 == len)
        return TETHER_ERR_PARSE;
    parts->header = jws;
    parts->header_len = dots[0];
    parts->payload = jws + dots[0] + 1;
    parts->payload_len = dots[1] - dots[0] - 1;
    parts->signature = jws + dots[1] + 1;
    parts->signature_len = len - dots[1] - 1;
    parts->signing_input_len = dots[1];
    return TETHER_OK;
}

/* Decodes a segment into a new NUL-terminated buffer (freed by the caller
 * with free_segment). */
static tether_status_t decode_segment(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
    size_t size = TETHER_BASE64URL_DECODED_LEN(len) + 1;
    tether_status_t rc;

    *out = NULL;
    *out_len = 0;
    if ((*out = malloc(size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    if ((rc = tether_base64url_decode(text, len, *out, size, out_len)) != TETHER_OK) {
        free(*out);
        *out = NULL;
        return rc;
    }
    (*out)[*out_len] = 0;
    return TETHER_OK;
}

static void free_segment(uint8_t *buf, size_t len)
{
    if (buf != NULL) {
        tether_wipe(buf, len + 1);
        free(buf);
    }
}

/* Decodes and parses the protected header and applies the rules every
 * tether JWS shares: alg exactly ES256 (RFC 7515 4.1.1: case-sensitive; the
 * verifier never lets the token choose the algorithm) and no crit (RFC 7515
 * 4.1.11: we understand no extension, so we must reject any). */
static tether_status_t jws_parse_header(const struct jws_parts *parts, cJSON **header)
{
    uint8_t *text = NULL;
    size_t text_len = 0;
    const cJSON *alg;
    tether_status_t rc;

    *header = NULL;
    if ((rc = decode_segment(parts->header, parts->header_len, &text, &text_len)) != TETHER_OK)
        goto out;
    if ((rc = tether_json_parse_object((const char *)text, text_len, header)) != TETHER_OK)
        goto out;
    alg = cJSON_GetObjectItemCaseSensitive(*header, "alg");
    if (!cJSON_IsString(alg) || alg->valuestring == NULL) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if (strcmp(alg->valuestring, "ES256") != 0 ||
        cJSON_GetObjectItemCaseSensitive(*header, "crit") != NULL) {
        rc = TETHER_ERR_UNSUPPORTED;
        goto out;
    }
out:
    if (rc != TETHER_OK) {
        cJSON_Delete(*header);
        *header = NULL;
    }
    free_segment(text, text_len);
    return rc;
}

static tether_status_t jws_check_signature(const struct jws_parts *parts,
                                           const tether_ec_key_t *key)
{
    uint8_t sig[TETHER_ES256_SIGNATURE_SIZE], digest[32];
    size_t sig_len = 0;
    tether_status_t rc;

    /* Only the 64-byte R || S form exists for ES256 (RFC 7518 3.4): a DER
     * signature or any other length does not verify. */
    if (parts->signature_len != ES256_SIGNATURE_B64_LEN)
        return TETHER_ERR_VERIFY;
    if ((rc = tether_base64url_decode(parts->signature, parts->signature_len, sig, sizeof(sig),
                                      &sig_len)) != TETHER_OK)
        return rc;
    if (tether_sha256(parts->header, parts->signing_input_len, digest) != TETHER_OK) {
        rc = TETHER_ERR_CRYPTO;
        goto out;
    }
    rc = tether_ec_verify_digest(key, digest, sig);
out:
    tether_wipe(digest, sizeof(digest));
    tether_wipe(sig, sizeof(sig));
    return rc;
}

tether_status_t tether_jws_verify(const char *jws, size_t len, const tether_ec_key_t *key,
                                  cJSON **header_out, uint8_t *payload, size_t payload_size,
                                  size_t *payload_len)
{
    struct jws_parts parts;
    cJSON *header = NULL;
    tether_status_t rc;

    if (header_out != NULL)
        *header_out = NULL;
    if (payload_len != NULL)
        *payload_len = 0;
    if (jws == NULL || payload_len == NULL || (payload == NULL && payload_size > 0) ||
        !tether_ec_key_is_set(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = jws_split(jws, len, &parts)) != TETHER_OK)
        goto out;
    if ((rc = jws_parse_header(&parts, &header)) != TETHER_OK)
        goto out;
    if ((rc = jws_check_signature(&parts, key)) != TETHER_OK)
        goto out;
    if ((rc = tether_base64url_decode(parts.payload, parts.payload_len, payload, payload_size,
                                      payload_len)) != TETHER_OK)
        goto out;
    if (header_out != NULL) {
        *header_out = header;
        header = NULL;
    }
out:
    cJSON_Delete(header);
    return rc;
}

/* ---- JWT access tokens (RFC 9068) ------------------------------------------ */

tether_status_t tether_jwt_sign_with(const char *kid, const cJSON *claims, tether_jws_sign_fn sign,
                                     void *sign_ctx, char *out, size_t out_size, size_t *out_len)
{
    cJSON *header = NULL;
    char *payload = NULL;
    tether_status_t rc;

    if (out_len != NULL)
        *out_len = 0;
    if (kid == NULL || kid[0] == '\0' || !cJSON_IsObject(claims) || sign == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((header = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(header, "alg", "ES256") == NULL ||
        cJSON_AddStringToObject(header, "typ", "at+jwt") == NULL ||
        cJSON_AddStringToObject(header, "kid", kid) == NULL ||
        (payload = cJSON_PrintUnformatted(claims)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    rc = tether_jws_sign_with(header, (const uint8_t *)payload, strlen(payload), sign, sign_ctx, out,
                              out_size, out_len);
out:
    if (payload != NULL) {
        tether_wipe(payload, strlen(payload));
        cJSON_free(payload);
    }
    cJSON_Delete(header);
    return rc;
}

tether_status_t tether_jwt_sign(const char *kid, const cJSON *claims, const tether_ec_key_t *key,
                                char *out, size_t out_size, size_t *out_len)
{
    if (!tether_ec_key_is_set(key))
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_jwt_sign_with(kid, claims, sign_with_key, (void *)key, out, out_size, out_len);
}

/* RFC 9068 section 4: "at+jwt" or "application/at+jwt"; media type names
 * compare case-insensitively (RFC 7515 4.1.9). */
static bool is_access_token_type(const cJSON *typ)
{
    if (!cJSON_IsString(typ) || typ->valuestring == NULL)
        return false;
    return strcasecmp(typ->valuestring, "at+jwt") == 0 ||
           strcasecmp(typ->valuestring, "application/at+jwt") == 0;
}

static const tether_ec_key_t *find_key(const tether_jwt_keyset_t *keys, const char *kid)
{
    for (size_t i = 0; i < keys->count; i++)
        if (keys->keys[i].kid != NULL && strcmp(keys->keys[i].kid, kid) == 0)
            return keys->keys[i].key;
    return NULL;
}

/* Latest NumericDate accepted: 9999-12-31T23:59:59Z. Bounds every sum below
 * far from overflow and keeps doubles exact. */
#define NUMERIC_DATE_MAX 253402300799.0

/* A NumericDate claim (RFC 7519 2) as a whole number of seconds. tether
 * issues integers; fractions, negatives and absurd values are malformed. */
static tether_status_t numeric_date(const cJSON *claims, const char *name, bool required,
                                    bool *present, int64_t *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(claims, name);
    double d;

    *present = false;
    *value = 0;
    if (item == NULL)
        return required ? TETHER_ERR_PARSE : TETHER_OK;
    if (!cJSON_IsNumber(item))
        return TETHER_ERR_PARSE;
    d = item->valuedouble;
    if (!(d >= 0.0 && d <= NUMERIC_DATE_MAX) || (double)(int64_t)d != d)
        return TETHER_ERR_PARSE;
    *present = true;
    *value = (int64_t)d;
    return TETHER_OK;
}

static bool is_nonempty_string(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring != NULL && item->valuestring[0] != '\0';
}

const char TETHER_JWT_ANY_AUDIENCE[] = "";

static tether_status_t check_claims(const cJSON *claims, const tether_jwt_expect_t *expect)
{
    const bool any_audience = expect->audience == TETHER_JWT_ANY_AUDIENCE;
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    const cJSON *element;
    int64_t exp, iat, nbf;
    bool present, has_nbf, audience_found = false;
    tether_status_t rc;

    if ((rc = numeric_date(claims, "exp", true, &present, &exp)) != TETHER_OK ||
        (rc = numeric_date(claims, "iat", true, &present, &iat)) != TETHER_OK ||
        (rc = numeric_date(claims, "nbf", false, &has_nbf, &nbf)) != TETHER_OK)
        return rc;
    if (!is_nonempty_string(cJSON_GetObjectItemCaseSensitive(claims, "iss")) ||
        !is_nonempty_string(cJSON_GetObjectItemCaseSensitive(claims, "sub")) ||
        !is_nonempty_string(cJSON_GetObjectItemCaseSensitive(claims, "client_id")) ||
        !is_nonempty_string(cJSON_GetObjectItemCaseSensitive(claims, "jti")))
        return TETHER_ERR_PARSE;
    if (cJSON_IsString(aud)) {
        audience_found = aud->valuestring != NULL &&
                         (any_audience || strcmp(aud->valuestring, expect->audience) == 0);
    } else if (cJSON_IsArray(aud)) {
        cJSON_ArrayForEach(element, aud)
        {
            if (!cJSON_IsString(element) || element->valuestring == NULL)
                return TETHER_ERR_PARSE;
            if (any_audience || strcmp(element->valuestring, expect->audience) == 0)
                audience_found = true;
        }
    } else {
        return TETHER_ERR_PARSE;
    }

    if (!is_string_equal(cJSON_GetObjectItemCaseSensitive(claims, "iss"), expect->issuer))
        return TETHER_ERR_WRONG_ISSUER;
    if (!audience_found)
        return TETHER_ERR_WRONG_AUDIENCE;
    /* RFC 7519 4.1.4: the current time must be before exp. */
    if (expect->now >= exp + (int64_t)expect->leeway)
        return TETHER_ERR_EXPIRED;
    if (has_nbf && expect->now < nbf - (int64_t)expect->leeway)
        return TETHER_ERR_NOT_YET_VALID;
    if (expect->now < iat - (int64_t)expect->leeway)
        return TETHER_ERR_NOT_YET_VALID;
    return TETHER_OK;
}

tether_status_t tether_jwt_verify(const char *token, size_t len, const tether_jwt_keyset_t *keys,
                                  const tether_jwt_expect_t *expect, cJSON **claims_out)
{
    struct jws_parts parts;
    cJSON *header = NULL, *claims = NULL;
    const cJSON *kid;
    const tether_ec_key_t *key;
    uint8_t *payload = NULL;
    size_t payload_len = 0;
    tether_status_t rc;

    if (claims_out != NULL)
        *claims_out = NULL;
    if (token == NULL || keys == NULL || (keys->keys == NULL && keys->count > 0) || expect == NULL ||
        expect->issuer == NULL || expect->audience == NULL ||
        expect->leeway > TETHER_JWT_MAX_LEEWAY)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = jws_split(token, len, &parts)) != TETHER_OK)
        goto out;
    if ((rc = jws_parse_header(&parts, &header)) != TETHER_OK)
        goto out;
    /* Typed JWTs (RFC 8725 3.11): an ID token or a DPoP proof signed by a
     * trusted key is still not an access token. */
    if (!is_access_token_type(cJSON_GetObjectItemCaseSensitive(header, "typ"))) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    kid = cJSON_GetObjectItemCaseSensitive(header, "kid");
    if (!cJSON_IsString(kid) || kid->valuestring == NULL) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    if ((key = find_key(keys, kid->valuestring)) == NULL) {
        rc = TETHER_ERR_UNKNOWN_KEY;
        goto out;
    }
    if (!tether_ec_key_is_set(key)) {
        rc = TETHER_ERR_INVALID_ARGUMENT; /* the caller's key set holds an empty key */
        goto out;
    }
    if ((rc = jws_check_signature(&parts, key)) != TETHER_OK)
        goto out;
    /* Authenticated from here on. */
    if ((rc = decode_segment(parts.payload, parts.payload_len, &payload, &payload_len)) != TETHER_OK)
        goto out;
    if ((rc = tether_json_parse_object((const char *)payload, payload_len, &claims)) != TETHER_OK)
        goto out;
    if ((rc = check_claims(claims, expect)) != TETHER_OK)
        goto out;
    if (claims_out != NULL) {
        *claims_out = claims;
        claims = NULL;
    }
out:
    cJSON_Delete(claims);
    cJSON_Delete(header);
    free_segment(payload, payload_len);
    return rc;
}
