/* DPoP proofs, RFC 9449 (dpop.h). */
#include "tether/dpop.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/json_strict.h"

/* A header holds typ, alg and one P-256 JWK: far below this. */
#define HEADER_MAX 1024
#define PAYLOAD_MAX TETHER_DPOP_MAX_LEN
#define ATH_SIZE TETHER_JWK_THUMBPRINT_SIZE /* 43 characters of a SHA-256, and a NUL */
#define IAT_MAX 253402300799.0              /* 9999-12-31T23:59:59Z */

static const char *const failure_names[TETHER_DPOP_FAILURE__COUNT] = {
    [TETHER_DPOP_OK] = "ok",
    [TETHER_DPOP_MALFORMED] = "dpop_malformed",
    [TETHER_DPOP_WRONG_TYPE] = "dpop_wrong_type",
    [TETHER_DPOP_WRONG_ALG] = "dpop_wrong_alg",
    [TETHER_DPOP_BAD_KEY] = "dpop_bad_key",
    [TETHER_DPOP_BAD_SIGNATURE] = "dpop_bad_signature",
    [TETHER_DPOP_WRONG_KEY] = "dpop_wrong_key",
    [TETHER_DPOP_BAD_CLAIMS] = "dpop_bad_claims",
    [TETHER_DPOP_WRONG_HTM] = "dpop_wrong_htm",
    [TETHER_DPOP_WRONG_HTU] = "dpop_wrong_htu",
    [TETHER_DPOP_STALE] = "dpop_stale",
    [TETHER_DPOP_FUTURE] = "dpop_future",
    [TETHER_DPOP_WRONG_ATH] = "dpop_wrong_ath",
};

const char *tether_dpop_failure_name(tether_dpop_failure_t failure)
{
    if ((unsigned)failure >= TETHER_DPOP_FAILURE__COUNT)
        return "dpop_unknown";
    return failure_names[failure];
}

/* ---- htu -------------------------------------------------------------- */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* Whether text starts with prefix (lower case) in any case. */
static bool has_prefix_any_case(const char *text, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(text[i]) != prefix[i])
            return false;
    return true;
}

/* The value of digits[0..count), count <= 5 decimal digits. */
static unsigned long decimal_value(const char *digits, size_t count)
{
    unsigned long value = 0;

    for (size_t i = 0; i < count; i++)
        value = value * 10 + (unsigned long)(digits[i] - '0');
    return value;
}

/* Appends c to out[*o], keeping room for the NUL. */
static bool put(char *out, size_t out_size, size_t *o, char c)
{
    if (*o + 1 >= out_size)
        return false;
    out[(*o)++] = c;
    return true;
}

static tether_status_t normalize(const char *url, size_t len, char *out, size_t out_size)
{
    const char *default_port;
    size_t i, o = 0, host_start, port_start, end;

    for (i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return TETHER_ERR_PARSE;
    if (has_prefix_any_case(url, len, "http://")) {
        i = 7;
        default_port = "80";
    } else if (has_prefix_any_case(url, len, "https://")) {
        i = 8;
        default_port = "443";
    } else {
        return TETHER_ERR_PARSE;
    }
    for (size_t k = 0; k < i; k++)
        if (!put(out, out_size, &o, lower(url[k])))
            return TETHER_ERR_TOO_LARGE;
    /* Authority: host [":" port], up to the path, query or fragment. */
    host_start = i;
    end = i;
    while (end < len && url[end] != '/' && url[end] != '?' && url[end] != '#')
        end++;
    if (end == host_start || memchr(url + host_start, '@', end - host_start) != NULL)
        return TETHER_ERR_PARSE;
    port_start = end;
    if (url[host_start] == '[') {
        const char *close = memchr(url + host_start, ']', end - host_start);
        if (close == NULL)
            return TETHER_ERR_PARSE;
        port_start = (size_t)(close - url) + 1;
        if (port_start < end && url[port_start] != ':')
            return TETHER_ERR_PARSE;
    } else {
        const char *colon = memchr(url + host_start, ':', end - host_start);
        if (colon != NULL)
            port_start = (size_t)(colon - url);
    }
    if (port_start == host_start)
        return TETHER_ERR_PARSE;
    for (size_t k = host_start; k < port_start; k++)
        if (!put(out, out_size, &o, lower(url[k])))
            return TETHER_ERR_TOO_LARGE;
    if (port_start < end) {
        size_t digits = end - port_start - 1;
        const char *port = url + port_start + 1;
        if (digits == 0 || digits > 5)
            return TETHER_ERR_PARSE;
        for (size_t k = 0; k < digits; k++)
            if (port[k] < '0' || port[k] > '9')
                return TETHER_ERR_PARSE;
        while (digits > 1 && port[0] == '0') {
            port++;
            digits--;
        }
        if (decimal_value(port, digits) == 0 || decimal_value(port, digits) > 65535)
            return TETHER_ERR_PARSE;
        if (!(digits == strlen(default_port) && memcmp(port, default_port, digits) == 0)) {
            if (!put(out, out_size, &o, ':'))
                return TETHER_ERR_TOO_LARGE;
            for (size_t k = 0; k < digits; k++)
                if (!put(out, out_size, &o, port[k]))
                    return TETHER_ERR_TOO_LARGE;
        }
    }
    /* Path, without query and fragment; "" is "/" (RFC 3986 6.2.3). */
    i = end;
    if (i >= len || url[i] != '/') {
        if (!put(out, out_size, &o, '/'))
            return TETHER_ERR_TOO_LARGE;
    }
    for (; i < len && url[i] != '?' && url[i] != '#'; i++) {
        if (url[i] == '%') {
            if (i + 2 >= len || tether_hex_digit(url[i + 1]) < 0 ||
                tether_hex_digit(url[i + 2]) < 0)
                return TETHER_ERR_PARSE;
            if (!put(out, out_size, &o, '%') || !put(out, out_size, &o, upper(url[i + 1])) ||
                !put(out, out_size, &o, upper(url[i + 2])))
                return TETHER_ERR_TOO_LARGE;
            i += 2;
        } else if (!put(out, out_size, &o, url[i])) {
            return TETHER_ERR_TOO_LARGE;
        }
    }
    out[o] = '\0';
    return TETHER_OK;
}

tether_status_t tether_dpop_htu_normalize(const char *url, size_t len, char *out, size_t out_size)
{
    tether_status_t rc;

    if (url == NULL || out == NULL || out_size == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    out[0] = '\0';
    if ((rc = normalize(url, len, out, out_size)) != TETHER_OK)
        out[0] = '\0';
    return rc;
}

tether_status_t tether_dpop_ath(const char *token, size_t len, char *out, size_t out_size)
{
    uint8_t digest[TETHER_SHA256_SIZE];
    tether_status_t rc;

    if (token == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_sha256(token, len, digest)) != TETHER_OK)
        return rc;
    return tether_base64url_encode(digest, sizeof(digest), out, out_size, NULL);
}

/* ---- verify ----------------------------------------------------------- */

static tether_status_t refuse(tether_dpop_failure_t why_code, tether_dpop_failure_t *failure,
                              char *why, size_t why_size, const char *message)
{
    *failure = why_code;
    return tether_explain(TETHER_ERR_VERIFY, why, why_size, "%s", message);
}

static const char *string_member(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

    return cJSON_IsString(item) && item->valuestring != NULL ? item->valuestring : NULL;
}

/* Decodes and parses the protected header (the text before the first '.'). */
static tether_status_t parse_header(const char *proof, size_t len, cJSON **header)
{
    uint8_t text[HEADER_MAX];
    const char *dot = memchr(proof, '.', len);
    size_t text_len = 0;
    tether_status_t rc;

    *header = NULL;
    if (dot == NULL)
        return TETHER_ERR_PARSE;
    if ((rc = tether_base64url_decode(proof, (size_t)(dot - proof), text, sizeof(text),
                                      &text_len)) != TETHER_OK)
        return rc;
    return tether_json_parse_object((const char *)text, text_len, header);
}

/* The printable ASCII (no space) string member name, 1 to max characters. */
static const char *bounded_string(const cJSON *claims, const char *name, size_t max)
{
    const char *value = string_member(claims, name);
    size_t n;

    if (value == NULL || (n = strlen(value)) == 0 || n > max)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f)
            return NULL;
    return value;
}

static bool integer_iat(const cJSON *claims, int64_t *iat)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(claims, "iat");
    double d;

    *iat = 0;
    if (!cJSON_IsNumber(item))
        return false;
    d = item->valuedouble;
    if (!(d >= 0.0 && d <= IAT_MAX) || (double)(int64_t)d != d)
        return false;
    *iat = (int64_t)d;
    return true;
}

/* Checks the claims of a proof whose signature and key already verified. */
static tether_status_t check_claims(const cJSON *claims, const tether_dpop_expect_t *expect,
                                    tether_dpop_result_t *result, tether_dpop_failure_t *failure,
                                    char *why, size_t why_size)
{
    char htu[TETHER_DPOP_HTU_MAX + 1], ath[ATH_SIZE];
    const char *jti, *htm, *htu_claim, *ath_claim, *nonce = NULL;
    const cJSON *nonce_item = cJSON_GetObjectItemCaseSensitive(claims, "nonce");
    tether_status_t rc;
    int64_t iat;

    jti = bounded_string(claims, "jti", TETHER_DPOP_JTI_MAX);
    htm = bounded_string(claims, "htm", TETHER_DPOP_HTM_MAX);
    htu_claim = bounded_string(claims, "htu", TETHER_DPOP_HTU_MAX);
    if (nonce_item != NULL && (nonce = bounded_string(claims, "nonce", TETHER_DPOP_NONCE_MAX)) == NULL)
        return refuse(TETHER_DPOP_BAD_CLAIMS, failure, why, why_size,
                      "the proof's nonce is not a string of 1-256 printable characters");
    if (jti == NULL || htm == NULL || htu_claim == NULL || !integer_iat(claims, &iat))
        return refuse(TETHER_DPOP_BAD_CLAIMS, failure, why, why_size,
                      "the proof needs jti (1-64 printable characters), htm, htu and an integer iat");
    if (strcmp(htm, expect->htm) != 0)
        return refuse(TETHER_DPOP_WRONG_HTM, failure, why, why_size,
                      "the proof's htm is not this request's method");
    if (tether_dpop_htu_normalize(htu_claim, strlen(htu_claim), htu, sizeof(htu)) != TETHER_OK ||
        strcmp(htu, expect->htu) != 0)
        return refuse(TETHER_DPOP_WRONG_HTU, failure, why, why_size,
                      "the proof's htu is not this request's URL");
    if (iat < expect->now - (int64_t)expect->max_age)
        return refuse(TETHER_DPOP_STALE, failure, why, why_size,
                      "the proof's iat is too old: make a fresh proof for each request");
    if (iat > expect->now + (int64_t)expect->leeway)
        return refuse(TETHER_DPOP_FUTURE, failure, why, why_size,
                      "the proof's iat lies in the future: check the device's clock");
    ath_claim = string_member(claims, "ath");
    if (expect->access_token == NULL) {
        if (cJSON_GetObjectItemCaseSensitive(claims, "ath") != NULL)
            return refuse(TETHER_DPOP_WRONG_ATH, failure, why, why_size,
                          "the proof carries ath but no access token was presented");
    } else {
        rc = expect->access_token_sha256 != NULL
                 ? tether_base64url_encode(expect->access_token_sha256, TETHER_SHA256_SIZE, ath,
                                           sizeof(ath), NULL)
                 : tether_dpop_ath(expect->access_token, expect->access_token_len, ath,
                                   sizeof(ath));
        if (rc != TETHER_OK)
            return rc;
        if (ath_claim == NULL || strlen(ath_claim) != ATH_SIZE - 1 ||
            !tether_ct_equal(ath_claim, ath, ATH_SIZE - 1))
            return refuse(TETHER_DPOP_WRONG_ATH, failure, why, why_size,
                          "the proof's ath is not the hash of the access token presented");
    }
    memcpy(result->jti, jti, strlen(jti) + 1);
    result->iat = iat;
    if (nonce != NULL)
        memcpy(result->nonce, nonce, strlen(nonce) + 1);
    return TETHER_OK;
}

/* Checks the protected header and sets key from its jwk. */
static tether_status_t check_header(const cJSON *header, tether_ec_key_t *key,
                                    tether_dpop_failure_t *failure, char *why, size_t why_size)
{
    const char *typ = string_member(header, "typ"), *alg = string_member(header, "alg");
    const cJSON *jwk = cJSON_GetObjectItemCaseSensitive(header, "jwk");

    if (typ == NULL || strcmp(typ, "dpop+jwt") != 0)
        return refuse(TETHER_DPOP_WRONG_TYPE, failure, why, why_size,
                      "the proof's typ is not dpop+jwt");
    if (alg == NULL || strcmp(alg, "ES256") != 0 ||
        cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL)
        return refuse(TETHER_DPOP_WRONG_ALG, failure, why, why_size,
                      "the proof must be signed with ES256, without crit");
    if (!cJSON_IsObject(jwk) || tether_jwk_parse(jwk, key) != TETHER_OK)
        return refuse(TETHER_DPOP_BAD_KEY, failure, why, why_size,
                      "the proof's jwk is not a public EC P-256 key");
    return TETHER_OK;
}

tether_status_t tether_dpop_verify(const char *proof, size_t len, const tether_dpop_expect_t *expect,
                                   tether_dpop_result_t *result, tether_dpop_failure_t *failure,
                                   char *why, size_t why_size)
{
    uint8_t payload[PAYLOAD_MAX];
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
    cJSON *header = NULL, *claims = NULL;
    tether_ec_key_t key;
    size_t payload_len = 0;
    tether_status_t rc;

    tether_ec_key_init(&key);
    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (failure != NULL)
        *failure = TETHER_DPOP_OK;
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (proof == NULL || expect == NULL || expect->htm == NULL || expect->htu == NULL ||
        expect->jkt == NULL || result == NULL || failure == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len == 0 || len > TETHER_DPOP_MAX_LEN || parse_header(proof, len, &header) != TETHER_OK) {
        rc = refuse(TETHER_DPOP_MALFORMED, failure, why, why_size,
                    "the DPoP header is not a compact JWS with a JSON header");
        goto out;
    }
    if ((rc = check_header(header, &key, failure, why, why_size)) != TETHER_OK)
        goto out;
    rc = tether_jws_verify(proof, len, &key, NULL, payload, sizeof(payload), &payload_len);
    if (rc == TETHER_ERR_VERIFY) {
        rc = refuse(TETHER_DPOP_BAD_SIGNATURE, failure, why, why_size,
                    "the proof's signature does not verify with its jwk");
        goto out;
    }
    if (rc != TETHER_OK) {
        rc = refuse(TETHER_DPOP_MALFORMED, failure, why, why_size,
                    "the DPoP header is not a well-formed compact JWS");
        goto out;
    }
    if ((rc = tether_jwk_thumbprint_key(&key, jkt, sizeof(jkt))) != TETHER_OK)
        goto out;
    if (strlen(expect->jkt) != strlen(jkt) || !tether_ct_equal(jkt, expect->jkt, strlen(jkt))) {
        rc = refuse(TETHER_DPOP_WRONG_KEY, failure, why, why_size,
                    "the proof is signed by another key than the one the token is bound to");
        goto out;
    }
    if (tether_json_parse_object((const char *)payload, payload_len, &claims) != TETHER_OK) {
        rc = refuse(TETHER_DPOP_MALFORMED, failure, why, why_size,
                    "the proof's claims are not a JSON object");
        goto out;
    }
    rc = check_claims(claims, expect, result, failure, why, why_size);
out:
    if (rc != TETHER_OK && result != NULL)
        memset(result, 0, sizeof(*result));
    cJSON_Delete(header);
    cJSON_Delete(claims);
    tether_ec_key_free(&key);
    return rc;
}

/* ---- sign ------------------------------------------------------------- */

static cJSON *proof_claims(const tether_dpop_claims_t *c)
{
    char ath[ATH_SIZE];
    cJSON *claims = cJSON_CreateObject();

    if (claims == NULL || cJSON_AddStringToObject(claims, "jti", c->jti) == NULL ||
        cJSON_AddStringToObject(claims, "htm", c->htm) == NULL ||
        cJSON_AddStringToObject(claims, "htu", c->htu) == NULL ||
        cJSON_AddNumberToObject(claims, "iat", (double)c->iat) == NULL)
        goto fail;
    if (c->access_token != NULL &&
        (tether_dpop_ath(c->access_token, c->access_token_len, ath, sizeof(ath)) != TETHER_OK ||
         cJSON_AddStringToObject(claims, "ath", ath) == NULL))
        goto fail;
    if (c->nonce != NULL && cJSON_AddStringToObject(claims, "nonce", c->nonce) == NULL)
        goto fail;
    return claims;
fail:
    cJSON_Delete(claims);
    return NULL;
}

tether_status_t tether_dpop_sign_with(const tether_dpop_claims_t *claims,
                                      const tether_ec_key_t *public_key, tether_jws_sign_fn sign,
                                      void *sign_ctx, char *out, size_t out_size, size_t *out_len)
{
    cJSON *header = NULL, *jwk = NULL, *body = NULL;
    char *payload = NULL;
    tether_status_t rc;

    if (out_len != NULL)
        *out_len = 0;
    if (claims == NULL || claims->htm == NULL || claims->htu == NULL || claims->jti == NULL ||
        claims->jti[0] == '\0' || strlen(claims->jti) > TETHER_DPOP_JTI_MAX ||
        public_key == NULL || sign == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_jwk_write(public_key, &jwk)) != TETHER_OK)
        goto out;
    if ((header = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(header, "typ", "dpop+jwt") == NULL ||
        cJSON_AddStringToObject(header, "alg", "ES256") == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    if (!cJSON_AddItemToObject(header, "jwk", jwk)) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    jwk = NULL;
    if ((body = proof_claims(claims)) == NULL || (payload = cJSON_PrintUnformatted(body)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    rc = tether_jws_sign_with(header, (const uint8_t *)payload, strlen(payload), sign, sign_ctx,
                              out, out_size, out_len);
out:
    cJSON_Delete(jwk);
    cJSON_Delete(header);
    cJSON_Delete(body);
    free(payload);
    return rc;
}

/* tether_jws_sign_fn over a key pair in memory, which it only reads. */
static int sign_with_key(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
    return (int)tether_ec_sign_digest((const tether_ec_key_t *)ctx, digest, sig);
}

tether_status_t tether_dpop_sign(const tether_dpop_claims_t *claims, const tether_ec_key_t *key,
                                 char *out, size_t out_size, size_t *out_len)
{
    return tether_dpop_sign_with(claims, key, sign_with_key, (void *)(uintptr_t)key, out, out_size,
                                 out_len);
}
