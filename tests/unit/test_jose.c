#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/error.h"
#include "tether/jose.h"
#include "tether/mbedtls_bridge.h"
#include "tether/random.h"

/* ---- published vectors ---------------------------------------------------- */

/* RFC 7515 appendix A.3: ES256 JWS, its key (A.3.1) and signature (A.3.1). */
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
#define A3_JWS                                                                                     \
    "eyJhbGciOiJFUzI1NiJ9"                                                                         \
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnV" \
    "lfQ"                                                                                          \
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
/* RFC 7515 A.1.1: the payload's octets, CRLF line breaks included. */
#define A3_PAYLOAD "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"

#include "rfc9449_vectors.h"

/* RFC 7638 section 3.1: RSA JWK and its SHA-256 thumbprint. */
#define RFC7638_N                                                                                  \
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP" \
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY" \
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f" \
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC7638_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* RFC 8037 appendix A.2/A.3: Ed25519 public JWK and its thumbprint. */
#define RFC8037_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define RFC8037_THUMBPRINT "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

/* ---- the token tests' world --------------------------------------------------- */

#define ISSUER "https://fleet.example.com"
#define AUDIENCE "tether-gate"
#define NOW ((int64_t)1700000000)
#define LEEWAY 30u
#define TOKEN_SIZE (TETHER_JWS_MAX_LEN + 1)

struct world {
    tether_ec_key_t current, previous, stranger;
    tether_ec_key_t public_keys[2]; /* what keys[] point to */
    tether_jwt_key_t keys[2];
    tether_jwt_keyset_t keyset;
    tether_jwt_expect_t expect;
    char token[TOKEN_SIZE];
    size_t token_len;
};

/* ---- helpers ------------------------------------------------------------------ */

/* A P-256 private key with scalar d (32 big-endian bytes) and its public point. */
static void key_from_scalar(tether_ec_key_t *key, const uint8_t *d, size_t d_len)
{
    assert_int_equal(d_len, TETHER_EC_COORDINATE_SIZE);
    tether_ec_key_init(key);
    assert_int_equal(tether_ec_key_parse_private(key, d), TETHER_OK);
}

static void new_key(tether_ec_key_t *key)
{
    tether_ec_key_init(key);
    assert_int_equal(tether_ec_key_generate(key), TETHER_OK);
}

/* A public-only copy of key (what a relying party holds). */
static void public_copy(tether_ec_key_t *key, tether_ec_key_t *pub)
{
    cJSON *jwk = NULL;

    tether_ec_key_init(pub);
    assert_int_equal(tether_jwk_write(key, &jwk), TETHER_OK);
    assert_int_equal(tether_jwk_parse(jwk, pub), TETHER_OK);
    cJSON_Delete(jwk);
}

static cJSON *parse_json(const char *text)
{
    cJSON *json = cJSON_Parse(text);
    assert_non_null(json);
    return json;
}

/* Signs raw header and payload texts with key, whatever they hold, as a
 * forger holding the key (or a buggy issuer) could. */
static size_t sign_raw(const char *header, size_t header_len, const char *payload,
                       size_t payload_len, tether_ec_key_t *key, char *out, size_t out_size)
{
    uint8_t digest[32], sig[64];
    size_t n = 0, m = 0;

    assert_int_equal(tether_base64url_encode((const uint8_t *)header, header_len, out, out_size, &n),
                     TETHER_OK);
    out[n++] = '.';
    assert_int_equal(tether_base64url_encode((const uint8_t *)payload, payload_len, out + n,
                                             out_size - n, &m),
                     TETHER_OK);
    n += m;
    assert_int_equal(tether_sha256(out, n, digest), TETHER_OK);
    assert_int_equal(tether_ec_sign_digest(key, digest, sig), TETHER_OK);
    out[n++] = '.';
    assert_int_equal(tether_base64url_encode(sig, sizeof(sig), out + n, out_size - n, &m), TETHER_OK);
    return n + m;
}

static size_t sign_text(const char *header, const char *payload, tether_ec_key_t *key, char *out,
                        size_t out_size)
{
    return sign_raw(header, strlen(header), payload, strlen(payload), key, out, out_size);
}

/* Claims RFC 9068 requires, valid at NOW. */
static cJSON *good_claims(void)
{
    cJSON *claims = cJSON_CreateObject();
    cJSON *cnf = cJSON_CreateObject();

    assert_non_null(claims);
    assert_non_null(cnf);
    cJSON_AddStringToObject(claims, "iss", ISSUER);
    cJSON_AddStringToObject(claims, "sub", "device-0001");
    cJSON_AddStringToObject(claims, "aud", AUDIENCE);
    cJSON_AddStringToObject(claims, "client_id", "tether-agent");
    cJSON_AddNumberToObject(claims, "iat", (double)NOW);
    cJSON_AddNumberToObject(claims, "nbf", (double)NOW);
    cJSON_AddNumberToObject(claims, "exp", (double)(NOW + 300));
    cJSON_AddStringToObject(claims, "jti", "8f14e45fceea167a5a36dedd4bea2543");
    cJSON_AddStringToObject(claims, "scope", "inference");
    cJSON_AddStringToObject(cnf, "jkt", DPOP_JKT);
    cJSON_AddItemToObject(claims, "cnf", cnf);
    return claims;
}

static void set_number(cJSON *claims, const char *name, double value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(claims, name);
    assert_non_null(cJSON_AddNumberToObject(claims, name, value));
}

static void set_string(cJSON *claims, const char *name, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(claims, name);
    assert_non_null(cJSON_AddStringToObject(claims, name, value));
}

static tether_status_t verify(struct world *w, const char *token, size_t len)
{
    cJSON *claims = (cJSON *)(uintptr_t)1;
    tether_status_t rc = tether_jwt_verify(token, len, &w->keyset, &w->expect, &claims);

    if (rc != TETHER_OK)
        assert_null(claims);
    cJSON_Delete(claims);
    return rc;
}

/* Signs claims with the current key (kid "k2") and verifies the result. */
static tether_status_t sign_and_verify(struct world *w, cJSON *claims)
{
    assert_int_equal(tether_jwt_sign("k2", claims, &w->current, w->token, sizeof(w->token),
                                     &w->token_len),
                     TETHER_OK);
    cJSON_Delete(claims);
    return verify(w, w->token, w->token_len);
}

static int setup_world(void **state)
{
    struct world *w = calloc(1, sizeof(*w));

    assert_non_null(w);
    new_key(&w->current);
    new_key(&w->previous);
    new_key(&w->stranger);
    /* The verifier holds public keys only, as from the issuer's JWKS. */
    w->keys[0].kid = "k1";
    w->keys[0].key = &w->public_keys[0];
    w->keys[1].kid = "k2";
    w->keys[1].key = &w->public_keys[1];
    public_copy(&w->previous, &w->public_keys[0]);
    public_copy(&w->current, &w->public_keys[1]);
    w->keyset.keys = w->keys;
    w->keyset.count = 2;
    w->expect.issuer = ISSUER;
    w->expect.audience = AUDIENCE;
    w->expect.now = NOW;
    w->expect.leeway = LEEWAY;
    *state = w;
    return 0;
}

static int teardown_world(void **state)
{
    struct world *w = *state;

    tether_ec_key_free(&w->current);
    tether_ec_key_free(&w->previous);
    tether_ec_key_free(&w->stranger);
    for (size_t i = 0; i < 2; i++)
        tether_ec_key_free(&w->public_keys[i]);
    tether_wipe(w->token, sizeof(w->token));
    free(w);
    return 0;
}

/* ---- JWS ---------------------------------------------------------------------- */

static void jws_rfc7515_a3(void **state)
{
    cJSON *jwk = parse_json("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}");
    cJSON *header = NULL;
    uint8_t payload[256];
    size_t payload_len = 0;
    tether_ec_key_t pk;
    char jws[] = A3_JWS;

    (void)state;
    tether_ec_key_init(&pk);
    assert_int_equal(tether_jwk_parse(jwk, &pk), TETHER_OK);
    assert_int_equal(tether_jws_verify(jws, strlen(jws), &pk, &header, payload, sizeof(payload),
                                       &payload_len),
                     TETHER_OK);
    assert_int_equal(payload_len, strlen(A3_PAYLOAD));
    assert_memory_equal(payload, A3_PAYLOAD, payload_len);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(header, "alg")->valuestring, "ES256");
    cJSON_Delete(header);

    /* the example is not an access token: no typ, no kid */
    {
        tether_jwt_key_t k = {"k", &pk};
        tether_jwt_keyset_t set = {&k, 1};
        tether_jwt_expect_t expect = {"joe", "x", 1300819000, 0};
        assert_int_equal(tether_jwt_verify(jws, strlen(jws), &set, &expect, NULL), TETHER_ERR_PARSE);
    }

    /* one changed character in each part */
    jws[5] ^= 1;
    assert_int_not_equal(tether_jws_verify(jws, strlen(jws), &pk, NULL, payload, sizeof(payload),
                                           &payload_len),
                         TETHER_OK);
    jws[5] ^= 1;
    jws[30] = jws[30] == 'A' ? 'B' : 'A';
    assert_int_equal(tether_jws_verify(jws, strlen(jws), &pk, NULL, payload, sizeof(payload),
                                       &payload_len),
                     TETHER_ERR_VERIFY);
    memcpy(jws, A3_JWS, sizeof(jws));
    jws[sizeof(jws) - 3] = jws[sizeof(jws) - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(tether_jws_verify(jws, strlen(jws), &pk, NULL, payload, sizeof(payload),
                                       &payload_len),
                     TETHER_ERR_VERIFY);
    assert_int_equal(payload_len, 0);

    /* payload buffer too small: the signature is checked, the payload not written */
    memcpy(jws, A3_JWS, sizeof(jws));
    assert_int_equal(tether_jws_verify(jws, strlen(jws), &pk, NULL, payload, 10, &payload_len),
                     TETHER_ERR_TOO_LARGE);
    tether_ec_key_free(&pk);
    cJSON_Delete(jwk);
}

/* The A.3 private key (A.3.1) is the pair of its public key; ES256
 * signatures are randomized, so a new signature is checked by verifying. */
static void jws_sign_with_rfc7515_a3_key(void **state)
{
    cJSON *header = parse_json("{\"alg\":\"ES256\"}");
    cJSON *public_jwk = NULL;
    uint8_t d[32], payload[128];
    size_t d_len = 0, payload_len = 0, jws_len = 0;
    tether_ec_key_t key, pub;
    char jws[512];

    (void)state;
    assert_int_equal(tether_base64url_decode(A3_D, strlen(A3_D), d, sizeof(d), &d_len), TETHER_OK);
    key_from_scalar(&key, d, d_len);
    assert_int_equal(tether_jwk_write(&key, &public_jwk), TETHER_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(public_jwk, "x")->valuestring, A3_X);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(public_jwk, "y")->valuestring, A3_Y);
    tether_ec_key_init(&pub);
    assert_int_equal(tether_jwk_parse(public_jwk, &pub), TETHER_OK);

    assert_int_equal(tether_jws_sign(header, (const uint8_t *)A3_PAYLOAD, strlen(A3_PAYLOAD), &key,
                                     jws, sizeof(jws), &jws_len),
                     TETHER_OK);
    assert_int_equal(jws_len, strlen(jws));
    /* same header and payload segments as the RFC's */
    assert_memory_equal(jws, A3_JWS, strlen(A3_JWS) - 86);
    assert_int_equal(tether_jws_verify(jws, jws_len, &pub, NULL, payload, sizeof(payload),
                                       &payload_len),
                     TETHER_OK);
    assert_memory_equal(payload, A3_PAYLOAD, strlen(A3_PAYLOAD));

    /* empty payload (RFC 7515 allows it) */
    assert_int_equal(tether_jws_sign(header, NULL, 0, &key, jws, sizeof(jws), &jws_len), TETHER_OK);
    assert_int_equal(tether_jws_verify(jws, jws_len, &pub, NULL, NULL, 0, &payload_len), TETHER_OK);
    assert_int_equal(payload_len, 0);

    tether_ec_key_free(&pub);
    tether_ec_key_free(&key);
    cJSON_Delete(public_jwk);
    cJSON_Delete(header);
}

static void jws_sign_arguments(void **state)
{
    cJSON *no_alg = parse_json("{\"typ\":\"JWT\"}");
    cJSON *hs256 = parse_json("{\"alg\":\"HS256\"}");
    cJSON *header = parse_json("{\"alg\":\"ES256\"}");
    cJSON *array = parse_json("[\"alg\",\"ES256\"]");
    tether_ec_key_t key, pub;
    char out[256];
    size_t len = 99;

    (void)state;
    new_key(&key);
    public_copy(&key, &pub);
    assert_int_equal(tether_jws_sign(no_alg, (const uint8_t *)"x", 1, &key, out, sizeof(out), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jws_sign(hs256, (const uint8_t *)"x", 1, &key, out, sizeof(out), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jws_sign(array, (const uint8_t *)"x", 1, &key, out, sizeof(out), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jws_sign(header, (const uint8_t *)"x", 1, &pub, out, sizeof(out), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    /* "eyJhbGciOiJFUzI1NiJ9" "." "eA" "." 86 characters = 110, plus the NUL */
    memset(out, 'Z', sizeof(out));
    assert_int_equal(tether_jws_sign(header, (const uint8_t *)"x", 1, &key, out, 110, &len),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    assert_int_equal(tether_jws_sign(header, (const uint8_t *)"x", 1, &key, out, 111, &len),
                     TETHER_OK);
    assert_int_equal(len, 110);
    tether_ec_key_free(&pub);
    tether_ec_key_free(&key);
    cJSON_Delete(no_alg);
    cJSON_Delete(hs256);
    cJSON_Delete(header);
    cJSON_Delete(array);
}

/* A device signs through its TPM: a callback gets the digest. */
struct fake_tpm {
    tether_ec_key_t *key;
    int calls;
    int fail_with;
};

static int fake_tpm_sign(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
    struct fake_tpm *tpm = ctx;

    tpm->calls++;
    if (tpm->fail_with != 0)
        return tpm->fail_with;
    return (int)tether_ec_sign_digest(tpm->key, digest, sig);
}

static void jws_sign_with_callback(void **state)
{
    struct world *w = *state;
    cJSON *header = parse_json("{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"}");
    cJSON *claims = good_claims();
    struct fake_tpm tpm = {&w->current, 0, 0};
    uint8_t payload[64];
    size_t len = 0, payload_len = 0;
    char out[1024];

    assert_int_equal(tether_jws_sign_with(header, (const uint8_t *)"hello", 5, fake_tpm_sign, &tpm,
                                          out, sizeof(out), &len),
                     TETHER_OK);
    assert_int_equal(tpm.calls, 1);
    assert_int_equal(tether_jws_verify(out, len, w->keys[1].key, NULL, payload, sizeof(payload),
                                       &payload_len),
                     TETHER_OK);
    assert_memory_equal(payload, "hello", 5);

    /* an access token signed through the callback */
    assert_int_equal(tether_jwt_sign_with("k2", claims, fake_tpm_sign, &tpm, out, sizeof(out), &len),
                     TETHER_OK);
    assert_int_equal(verify(w, out, len), TETHER_OK);

    /* the TPM's own status comes back unchanged; foreign codes become CRYPTO */
    tpm.fail_with = TETHER_ERR_TPM_LOCKOUT;
    assert_int_equal(tether_jws_sign_with(header, (const uint8_t *)"x", 1, fake_tpm_sign, &tpm, out,
                                          sizeof(out), &len),
                     TETHER_ERR_TPM_LOCKOUT);
    assert_int_equal(len, 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0); /* wiped */
    tpm.fail_with = -42;
    assert_int_equal(tether_jwt_sign_with("k2", claims, fake_tpm_sign, &tpm, out, sizeof(out), &len),
                     TETHER_ERR_CRYPTO);
    tpm.fail_with = 100000;
    assert_int_equal(tether_jwt_sign_with("k2", claims, fake_tpm_sign, &tpm, out, sizeof(out), &len),
                     TETHER_ERR_CRYPTO);
    cJSON_Delete(claims);
    cJSON_Delete(header);
}

/* ---- JWK ---------------------------------------------------------------------- */

static void jwk_rfc9449_dpop_proof(void **state)
{
    struct world *w = *state;
    cJSON *jwk = parse_json(DPOP_JWK);
    cJSON *header = NULL;
    uint8_t payload[256];
    size_t payload_len = 0;
    tether_ec_key_t pk;
    char thumbprint[TETHER_JWK_THUMBPRINT_SIZE];

    tether_ec_key_init(&pk);
    assert_int_equal(tether_jwk_parse(jwk, &pk), TETHER_OK);
    assert_int_equal(tether_jws_verify(DPOP_PROOF, strlen(DPOP_PROOF), &pk, &header, payload,
                                       sizeof(payload), &payload_len),
                     TETHER_OK);
    /* the key in the proof's header is the key that verified it */
    assert_int_equal(tether_jwk_thumbprint(cJSON_GetObjectItemCaseSensitive(header, "jwk"),
                                           thumbprint, sizeof(thumbprint)),
                     TETHER_OK);
    assert_string_equal(thumbprint, DPOP_JKT);
    assert_int_equal(tether_jwk_thumbprint(jwk, thumbprint, sizeof(thumbprint)), TETHER_OK);
    assert_string_equal(thumbprint, DPOP_JKT);
    assert_int_equal(tether_jwk_thumbprint_key(&pk, thumbprint, sizeof(thumbprint)), TETHER_OK);
    assert_string_equal(thumbprint, DPOP_JKT);
    /* a valid ES256 JWS of another type is not an access token, even when
     * a trusted key signed it */
    {
        tether_jwt_key_t k = {"dpop", &pk};
        tether_jwt_keyset_t set = {&k, 1};
        assert_int_equal(tether_jwt_verify(DPOP_PROOF, strlen(DPOP_PROOF), &set, &w->expect, NULL),
                         TETHER_ERR_PARSE);
    }
    cJSON_Delete(header);
    tether_ec_key_free(&pk);
    cJSON_Delete(jwk);
}

static void jwk_thumbprint_vectors(void **state)
{
    cJSON *rsa = parse_json("{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\",\"alg\":"
                            "\"RS256\",\"kid\":\"2011-04-29\"}");
    cJSON *okp = parse_json("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X "\"}");
    /* members in another order, and extra ones, change nothing */
    cJSON *ec = parse_json("{\"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA\",\"use\":\"sig\","
                           "\"crv\":\"P-256\",\"kid\":\"x\",\"x\":"
                           "\"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\",\"kty\":\"EC\"}");
    cJSON *oct = parse_json("{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
                            "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}");
    char thumbprint[TETHER_JWK_THUMBPRINT_SIZE];

    (void)state;
    assert_int_equal(tether_jwk_thumbprint(rsa, thumbprint, sizeof(thumbprint)), TETHER_OK);
    assert_string_equal(thumbprint, RFC7638_THUMBPRINT);
    assert_int_equal(tether_jwk_thumbprint(okp, thumbprint, sizeof(thumbprint)), TETHER_OK);
    assert_string_equal(thumbprint, RFC8037_THUMBPRINT);
    assert_int_equal(tether_jwk_thumbprint(ec, thumbprint, sizeof(thumbprint)), TETHER_OK);
    assert_string_equal(thumbprint, DPOP_JKT);
    assert_int_equal(tether_jwk_thumbprint(oct, thumbprint, sizeof(thumbprint)), TETHER_OK);
    assert_int_equal(strlen(thumbprint), 43);
    assert_int_equal(tether_jwk_thumbprint(rsa, thumbprint, TETHER_JWK_THUMBPRINT_SIZE - 1),
                     TETHER_ERR_TOO_LARGE);

    /* a missing or non-string required member, an unknown kty, escapes */
    cJSON_DeleteItemFromObjectCaseSensitive(rsa, "e");
    assert_int_equal(tether_jwk_thumbprint(rsa, thumbprint, sizeof(thumbprint)), TETHER_ERR_PARSE);
    cJSON_AddNumberToObject(rsa, "e", 65537);
    assert_int_equal(tether_jwk_thumbprint(rsa, thumbprint, sizeof(thumbprint)), TETHER_ERR_PARSE);
    set_string(okp, "kty", "XYZ");
    assert_int_equal(tether_jwk_thumbprint(okp, thumbprint, sizeof(thumbprint)),
                     TETHER_ERR_UNSUPPORTED);
    set_string(ec, "crv", "P-256\"");
    assert_int_equal(tether_jwk_thumbprint(ec, thumbprint, sizeof(thumbprint)), TETHER_ERR_PARSE);
    cJSON_Delete(rsa);
    cJSON_Delete(okp);
    cJSON_Delete(ec);
    cJSON_Delete(oct);
}

static void jwk_round_trip(void **state)
{
    cJSON *jwk = NULL;
    tether_ec_key_t key, pub;
    uint8_t kx[32], ky[32], px[32], py[32];
    char a[TETHER_JWK_THUMBPRINT_SIZE], b[TETHER_JWK_THUMBPRINT_SIZE];

    (void)state;
    for (int i = 0; i < 20; i++) {
        new_key(&key);
        assert_int_equal(tether_jwk_write(&key, &jwk), TETHER_OK);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(jwk, "kty")->valuestring, "EC");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(jwk, "crv")->valuestring, "P-256");
        /* fixed-length coordinates, even with leading zero bytes (RFC 7518 6.2.1.2) */
        assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(jwk, "x")->valuestring), 43);
        assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(jwk, "y")->valuestring), 43);
        assert_null(cJSON_GetObjectItemCaseSensitive(jwk, "d"));
        tether_ec_key_init(&pub);
        assert_int_equal(tether_jwk_parse(jwk, &pub), TETHER_OK);
        assert_int_equal(tether_ec_key_public_point(&key, kx, ky), TETHER_OK);
        assert_int_equal(tether_ec_key_public_point(&pub, px, py), TETHER_OK);
        assert_memory_equal(kx, px, sizeof(kx));
        assert_memory_equal(ky, py, sizeof(ky));
        assert_int_equal(tether_jwk_thumbprint_key(&key, a, sizeof(a)), TETHER_OK);
        assert_int_equal(tether_jwk_thumbprint_key(&pub, b, sizeof(b)), TETHER_OK);
        assert_string_equal(a, b);
        tether_ec_key_free(&pub);
        tether_ec_key_free(&key);
        cJSON_Delete(jwk);
    }
}

static void assert_jwk_rejected(const char *text, tether_status_t expected)
{
    cJSON *jwk = parse_json(text);
    tether_ec_key_t pk;

    tether_ec_key_init(&pk);
    assert_int_equal(tether_jwk_parse(jwk, &pk), expected);
    assert_false(tether_ec_key_is_set(&pk)); /* left empty */
    tether_ec_key_free(&pk);
    cJSON_Delete(jwk);
}

static void jwk_parse_rejects(void **state)
{
    tether_ec_key_t pk;
    cJSON *jwk = parse_json("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}");

    (void)state;
    assert_jwk_rejected("{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\"}",
                        TETHER_ERR_UNSUPPORTED);
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
                        TETHER_ERR_UNSUPPORTED);
    assert_jwk_rejected("{\"kty\":\"ec\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}",
                        TETHER_ERR_UNSUPPORTED);
    assert_jwk_rejected("{\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", TETHER_ERR_PARSE);
    assert_jwk_rejected("{\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", TETHER_ERR_PARSE);
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\"}", TETHER_ERR_PARSE);
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":7}",
                        TETHER_ERR_PARSE);
    /* the private key is refused where a public key is expected */
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
                        "\",\"d\":\"" A3_D "\"}",
                        TETHER_ERR_PARSE);
    /* 31-byte x, padded x, 33-byte x */
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
                        "\"83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"" A3_Y "\"}",
                        TETHER_ERR_PARSE);
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "=\",\"y\":\"" A3_Y "\"}",
                        TETHER_ERR_PARSE);
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA" A3_X "\",\"y\":\"" A3_Y "\"}",
                        TETHER_ERR_PARSE);
    /* not on the curve (last character of y changed) */
    assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
                        "\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4\"}",
                        TETHER_ERR_PARSE);
    /* not an object */
    assert_jwk_rejected("[\"EC\"]", TETHER_ERR_PARSE);
    /* the key must come empty */
    new_key(&pk);
    assert_int_equal(tether_jwk_parse(jwk, &pk), TETHER_ERR_INVALID_ARGUMENT);
    tether_ec_key_free(&pk);
    cJSON_Delete(jwk);
}

/* ---- JWT access tokens -------------------------------------------------------- */

static void jwt_round_trip(void **state)
{
    struct world *w = *state;
    cJSON *claims = good_claims();
    cJSON *verified = NULL;
    char header[128];
    uint8_t raw[128];
    size_t raw_len = 0;

    assert_int_equal(tether_jwt_sign("k2", claims, &w->current, w->token, sizeof(w->token),
                                     &w->token_len),
                     TETHER_OK);
    cJSON_Delete(claims);
    assert_int_equal(tether_jwt_verify(w->token, w->token_len, &w->keyset, &w->expect, &verified),
                     TETHER_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(verified, "sub")->valuestring, "device-0001");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(verified, "cnf"), "jkt")
                            ->valuestring,
                        DPOP_JKT);
    cJSON_Delete(verified);

    /* the header is exactly what RFC 9068 asks for */
    memcpy(header, w->token, strcspn(w->token, "."));
    header[strcspn(w->token, ".")] = '\0';
    assert_int_equal(tether_base64url_decode(header, strlen(header), raw, sizeof(raw) - 1, &raw_len),
                     TETHER_OK);
    raw[raw_len] = '\0';
    assert_string_equal((const char *)raw, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}");

    /* no NUL needed after the token; claims_out may be NULL */
    w->token[w->token_len] = '!';
    assert_int_equal(tether_jwt_verify(w->token, w->token_len, &w->keyset, &w->expect, NULL),
                     TETHER_OK);

    /* the previous key still verifies its tokens (rotation) */
    claims = good_claims();
    assert_int_equal(tether_jwt_sign("k1", claims, &w->previous, w->token, sizeof(w->token),
                                     &w->token_len),
                     TETHER_OK);
    assert_int_equal(verify(w, w->token, w->token_len), TETHER_OK);

    /* aud as an array holding ours */
    cJSON_DeleteItemFromObjectCaseSensitive(claims, "aud");
    cJSON_AddItemToObject(claims, "aud",
                          cJSON_CreateStringArray((const char *[]){"other", AUDIENCE}, 2));
    assert_int_equal(sign_and_verify(w, claims), TETHER_OK);

    /* typ may also be written in full, in any case (RFC 9068 4) */
    sign_text("{\"alg\":\"ES256\",\"typ\":\"application/AT+JWT\",\"kid\":\"k2\"}",
              "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE
              "\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300}",
              &w->current, w->token, sizeof(w->token));
    assert_int_equal(verify(w, w->token, strlen(w->token)), TETHER_OK);
}

/* The header decides nothing before the verifier's own rules. */
static void jwt_rejects_algorithms(void **state)
{
    struct world *w = *state;
    static const char payload[] = "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE
                                  "\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1700000000,"
                                  "\"exp\":1700000300}";
    char token[1024], mac_b64[64];
    uint8_t mac[32];
    uint8_t der[128];
    size_t n, m = 0;
    int der_len;

    /* "alg":"none" with the empty signature of RFC 7519 6.1 */
    n = sign_text("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    n = (size_t)(strrchr(token, '.') - token) + 1;
    token[n] = '\0';
    assert_int_equal(verify(w, token, n), TETHER_ERR_PARSE);
    /* and with a signature that would verify if alg were ignored */
    n = sign_text("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);
    n = sign_text("{\"alg\":\"None\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);

    /* HS256 keyed with the issuer's public key bytes (key confusion) */
    n = sign_text("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    n = (size_t)(strrchr(token, '.') - token);
    der_len = mbedtls_pk_write_pubkey_der((mbedtls_pk_context *)tether_ec_key_pk(w->keys[1].key),
                                          der, sizeof(der));
    assert_true(der_len > 0);
    assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                     der + sizeof(der) - (size_t)der_len, (size_t)der_len,
                                     (const unsigned char *)token, n, mac),
                     0);
    assert_int_equal(tether_base64url_encode(mac, sizeof(mac), mac_b64, sizeof(mac_b64), &m),
                     TETHER_OK);
    token[n] = '.';
    memcpy(token + n + 1, mac_b64, m + 1);
    assert_int_equal(verify(w, token, strlen(token)), TETHER_ERR_UNSUPPORTED);

    /* alg is case-sensitive; ES384, RS256: unsupported; missing or not a string: malformed */
    n = sign_text("{\"alg\":\"es256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);
    n = sign_text("{\"alg\":\"ES384\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);
    n = sign_text("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);
    n = sign_text("{\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current, token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_PARSE);
    n = sign_text("{\"alg\":[\"ES256\"],\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_PARSE);
    /* a crit extension we cannot understand (RFC 7515 4.1.11) */
    n = sign_text("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\",\"crit\":[\"exp\"],\"exp\":1}",
                  payload, &w->current, token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);
    /* a JWE-shaped header */
    n = sign_text("{\"alg\":\"ES256\",\"enc\":\"A256GCM\",\"typ\":\"at+jwt\",\"kid\":\"k2\",\"crit\":"
                  "[\"enc\"]}",
                  payload, &w->current, token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_ERR_UNSUPPORTED);
    /* the same payload under a proper header verifies: the checks above
     * failed for their header alone */
    n = sign_text("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload, &w->current,
                  token, sizeof(token));
    assert_int_equal(verify(w, token, n), TETHER_OK);
}

static void jwt_rejects_headers(void **state)
{
    struct world *w = *state;
    static const char payload[] = "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE
                                  "\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1700000000,"
                                  "\"exp\":1700000300}";
    static const struct {
        const char *header;
        tether_status_t expected;
    } cases[] = {
        /* typ */
        {"{\"alg\":\"ES256\",\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"dpop+jwt\",\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt \",\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":1,\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        /* kid */
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":2}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k3\"}", TETHER_ERR_UNKNOWN_KEY},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"K2\"}", TETHER_ERR_UNKNOWN_KEY},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"\"}", TETHER_ERR_UNKNOWN_KEY},
        /* kid of a key that did not sign */
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", TETHER_ERR_VERIFY},
        /* duplicate members: which alg, which kid? (RFC 7515 4) */
        {"{\"alg\":\"ES256\",\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\",\"kid\":\"k1\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\",\"x\":{\"a\":1,\"a\":2}}",
         TETHER_ERR_PARSE},
        /* a NUL hidden in a string */
        {"{\"alg\":\"ES256\\u0000x\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\\u0000junk\"}", TETHER_ERR_PARSE},
        /* not an object, or not only one */
        {"[\"ES256\"]", TETHER_ERR_PARSE},
        {"\"ES256\"", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}{}", TETHER_ERR_PARSE},
        {"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"", TETHER_ERR_PARSE},
        {"", TETHER_ERR_PARSE},
        /* whitespace around and inside is JSON */
        {" {\"alg\" : \"ES256\",\r\n \"typ\":\"at+jwt\",\"kid\":\"k2\"}\n", TETHER_OK},
    };
    char token[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = sign_text(cases[i].header, payload, &w->current, token, sizeof(token));
        tether_status_t rc = verify(w, token, n);
        if (rc != cases[i].expected)
            fail_msg("header %s: %s, expected %s", cases[i].header, tether_strerror(rc),
                     tether_strerror(cases[i].expected));
    }
    /* empty key set */
    {
        size_t n = sign_text("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", payload,
                             &w->current, token, sizeof(token));
        tether_jwt_keyset_t none = {NULL, 0};
        assert_int_equal(tether_jwt_verify(token, n, &none, &w->expect, NULL), TETHER_ERR_UNKNOWN_KEY);
    }
}

static void jwt_rejects_tampering(void **state)
{
    struct world *w = *state;
    cJSON *claims = good_claims();
    char token[TOKEN_SIZE], forged[TOKEN_SIZE], payload_b64[1024];
    size_t len, n, header_len, sig_start;
    char *payload_text;

    assert_int_equal(tether_jwt_sign("k2", claims, &w->current, token, sizeof(token), &len),
                     TETHER_OK);
    header_len = strcspn(token, ".");
    sig_start = (size_t)(strrchr(token, '.') - token) + 1;

    /* payload replaced: another subject under the original signature */
    set_string(claims, "sub", "device-0002");
    payload_text = cJSON_PrintUnformatted(claims);
    assert_int_equal(tether_base64url_encode((const uint8_t *)payload_text, strlen(payload_text),
                                             payload_b64, sizeof(payload_b64), &n),
                     TETHER_OK);
    memcpy(forged, token, header_len + 1);
    memcpy(forged + header_len + 1, payload_b64, n);
    memcpy(forged + header_len + 1 + n, token + sig_start - 1, len - sig_start + 2);
    assert_int_equal(verify(w, forged, strlen(forged)), TETHER_ERR_VERIFY);
    cJSON_free(payload_text);

    /* every single-character change to the signature */
    memcpy(forged, token, len + 1);
    for (size_t i = sig_start; i < len; i++) {
        char saved = forged[i];
        forged[i] = saved == 'A' ? 'B' : 'A';
        tether_status_t rc = verify(w, forged, len);
        /* the last character carries 2 unused bits: some changes are non-canonical */
        assert_true(rc == TETHER_ERR_VERIFY || (i == len - 1 && rc == TETHER_ERR_PARSE));
        forged[i] = saved;
    }
    /* a change to the header or payload */
    for (size_t i = 0; i < sig_start - 1; i += 7) {
        char saved = forged[i];
        if (saved == '.')
            continue;
        forged[i] = saved == 'e' ? 'f' : 'e';
        assert_int_not_equal(verify(w, forged, len), TETHER_OK);
        forged[i] = saved;
    }
    assert_int_equal(verify(w, forged, len), TETHER_OK);

    /* signature swapped for a DER one, for zeros, and one from another key */
    memcpy(forged, token, sig_start);
    memcpy(forged + sig_start, "MEUCIQ", 6);
    memcpy(forged + sig_start + 6, token + sig_start, len - sig_start + 1);
    assert_int_equal(verify(w, forged, strlen(forged)), TETHER_ERR_VERIFY);
    memcpy(forged, token, len + 1);
    memset(forged + sig_start, 'A', len - sig_start);
    assert_int_equal(verify(w, forged, len), TETHER_ERR_VERIFY);
    n = sign_text("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}", "{}", &w->stranger, forged,
                  sizeof(forged));
    assert_int_equal(verify(w, forged, n), TETHER_ERR_VERIFY);
    cJSON_Delete(claims);
}

static void jwt_rejects_malformed(void **state)
{
    struct world *w = *state;
    cJSON *claims = good_claims();
    char token[TOKEN_SIZE + 16], bad[TOKEN_SIZE + 16];
    size_t len, header_len;

    assert_int_equal(tether_jwt_sign("k2", claims, &w->current, token, sizeof(token), &len),
                     TETHER_OK);
    cJSON_Delete(claims);
    header_len = strcspn(token, ".");

    /* truncated: in the signature, at a dot, inside the header */
    assert_int_equal(verify(w, token, len - 1), TETHER_ERR_VERIFY);
    assert_int_equal(verify(w, token, (size_t)(strrchr(token, '.') - token)), TETHER_ERR_PARSE);
    assert_int_equal(verify(w, token, (size_t)(strrchr(token, '.') - token) + 1), TETHER_ERR_PARSE);
    assert_int_equal(verify(w, token, header_len), TETHER_ERR_PARSE);
    assert_int_equal(verify(w, token, 10), TETHER_ERR_PARSE);
    assert_int_equal(verify(w, token, 0), TETHER_ERR_PARSE);

    /* trailing garbage: characters, a fourth segment, whitespace, NUL */
    memcpy(bad, token, len);
    memcpy(bad + len, "xy", 3);
    assert_int_equal(verify(w, bad, len + 2), TETHER_ERR_VERIFY);
    memcpy(bad + len, ".x", 3);
    assert_int_equal(verify(w, bad, len + 2), TETHER_ERR_PARSE);
    memcpy(bad + len, "..", 3);
    assert_int_equal(verify(w, bad, len + 2), TETHER_ERR_PARSE);
    memcpy(bad + len, " ", 2);
    assert_int_equal(verify(w, bad, len + 1), TETHER_ERR_PARSE);
    memcpy(bad + len, "\n", 2);
    assert_int_equal(verify(w, bad, len + 1), TETHER_ERR_PARSE);
    bad[len] = '\0';
    assert_int_equal(verify(w, bad, len + 1), TETHER_ERR_PARSE);
    /* leading garbage, as in an Authorization header not stripped */
    memcpy(bad, "Bearer ", 7);
    memcpy(bad + 7, token, len + 1);
    assert_int_equal(verify(w, bad, len + 7), TETHER_ERR_PARSE);

    /* bad base64url: padding, standard alphabet, non-canonical last character */
    memcpy(bad, token, header_len);
    memcpy(bad + header_len, "=", 1);
    memcpy(bad + header_len + 1, token + header_len, len - header_len + 1);
    assert_int_equal(verify(w, bad, len + 1), TETHER_ERR_PARSE);
    memcpy(bad, token, len + 1);
    bad[3] = '+';
    assert_int_equal(verify(w, bad, len), TETHER_ERR_PARSE);
    memcpy(bad, token, len + 1);
    bad[len - 5] = '/';
    assert_int_equal(verify(w, bad, len), TETHER_ERR_PARSE);
    /* an empty segment */
    assert_int_equal(verify(w, "..", 2), TETHER_ERR_PARSE);
    assert_int_equal(verify(w, ".eyJ9.sig", 9), TETHER_ERR_PARSE);
    /* a header segment of length 4k+1 */
    assert_int_equal(verify(w, "eyJhb.eyJ9.AAAA", 15), TETHER_ERR_PARSE);

    /* oversized: rejected before any decoding */
    memset(bad, 'A', TETHER_JWS_MAX_LEN + 1);
    bad[100] = '.';
    bad[200] = '.';
    assert_int_equal(verify(w, bad, TETHER_JWS_MAX_LEN + 1), TETHER_ERR_TOO_LARGE);
    assert_int_equal(verify(w, bad, TETHER_JWS_MAX_LEN), TETHER_ERR_PARSE);
}

static void jwt_oversized_claims(void **state)
{
    struct world *w = *state;
    cJSON *claims = good_claims();
    char *big = malloc(TETHER_JWS_MAX_LEN);
    char token[TOKEN_SIZE];
    size_t len = 99;

    assert_non_null(big);
    memset(big, 'a', TETHER_JWS_MAX_LEN - 1);
    big[TETHER_JWS_MAX_LEN - 1] = '\0';
    /* about 5900 bytes of claims encode to about 7900 characters: fits */
    big[5600] = '\0';
    set_string(claims, "scope", big);
    assert_int_equal(tether_jwt_sign("k2", claims, &w->current, token, sizeof(token), &len),
                     TETHER_OK);
    assert_true(len <= TETHER_JWS_MAX_LEN);
    assert_int_equal(verify(w, token, len), TETHER_OK);
    /* 6200 bytes do not */
    big[5600] = 'a';
    big[6200] = '\0';
    set_string(claims, "scope", big);
    assert_int_equal(tether_jwt_sign("k2", claims, &w->current, token, sizeof(token), &len),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    free(big);
    cJSON_Delete(claims);
}

static void jwt_time_checks(void **state)
{
    struct world *w = *state;
    cJSON *claims;

    /* exp: valid until exp + leeway (exclusive) */
    claims = good_claims();
    set_number(claims, "exp", (double)(NOW - LEEWAY + 1));
    assert_int_equal(sign_and_verify(w, claims), TETHER_OK);
    claims = good_claims();
    set_number(claims, "exp", (double)(NOW - LEEWAY));
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_EXPIRED);
    claims = good_claims();
    set_number(claims, "iat", (double)(NOW - 3600));
    set_number(claims, "nbf", (double)(NOW - 3600));
    set_number(claims, "exp", (double)(NOW - 3300));
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_EXPIRED);

    /* nbf: valid from nbf - leeway */
    claims = good_claims();
    set_number(claims, "nbf", (double)(NOW + LEEWAY));
    assert_int_equal(sign_and_verify(w, claims), TETHER_OK);
    claims = good_claims();
    set_number(claims, "nbf", (double)(NOW + LEEWAY + 1));
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_NOT_YET_VALID);
    /* nbf is optional */
    claims = good_claims();
    cJSON_DeleteItemFromObjectCaseSensitive(claims, "nbf");
    assert_int_equal(sign_and_verify(w, claims), TETHER_OK);

    /* iat in the future beyond the leeway */
    claims = good_claims();
    set_number(claims, "iat", (double)(NOW + LEEWAY + 1));
    set_number(claims, "nbf", (double)NOW);
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_NOT_YET_VALID);
    claims = good_claims();
    set_number(claims, "iat", (double)(NOW + LEEWAY));
    assert_int_equal(sign_and_verify(w, claims), TETHER_OK);

    /* zero leeway */
    w->expect.leeway = 0;
    claims = good_claims();
    set_number(claims, "exp", (double)NOW);
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_EXPIRED);
    claims = good_claims();
    set_number(claims, "exp", (double)(NOW + 1));
    assert_int_equal(sign_and_verify(w, claims), TETHER_OK);
    /* leeway over the maximum is the caller's mistake */
    w->expect.leeway = TETHER_JWT_MAX_LEEWAY + 1;
    assert_int_equal(verify(w, w->token, w->token_len), TETHER_ERR_INVALID_ARGUMENT);
    w->expect.leeway = LEEWAY;
    /* a clock far in the past or future gives no overflow */
    w->expect.now = INT64_MIN;
    assert_int_equal(verify(w, w->token, w->token_len), TETHER_ERR_NOT_YET_VALID);
    w->expect.now = INT64_MAX - 10;
    assert_int_equal(verify(w, w->token, w->token_len), TETHER_ERR_EXPIRED);
    w->expect.now = NOW;
}

static void jwt_issuer_and_audience(void **state)
{
    struct world *w = *state;
    cJSON *claims;

    claims = good_claims();
    set_string(claims, "iss", "https://evil.example.com");
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_ISSUER);
    claims = good_claims();
    set_string(claims, "iss", ISSUER "/");
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_ISSUER);
    claims = good_claims();
    set_string(claims, "aud", "tether-gate-2");
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_AUDIENCE);
    claims = good_claims();
    set_string(claims, "aud", "TETHER-GATE");
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_AUDIENCE);
    claims = good_claims();
    cJSON_DeleteItemFromObjectCaseSensitive(claims, "aud");
    cJSON_AddItemToObject(claims, "aud", cJSON_CreateStringArray((const char *[]){"a", "b"}, 2));
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_AUDIENCE);
    claims = good_claims();
    cJSON_DeleteItemFromObjectCaseSensitive(claims, "aud");
    cJSON_AddItemToObject(claims, "aud", cJSON_CreateArray());
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_AUDIENCE);
    /* the issuer is checked before the audience, and both before time */
    claims = good_claims();
    set_string(claims, "iss", "x");
    set_string(claims, "aud", "y");
    set_number(claims, "exp", 1);
    assert_int_equal(sign_and_verify(w, claims), TETHER_ERR_WRONG_ISSUER);
}

static void jwt_rejects_bad_claims(void **state)
{
    struct world *w = *state;
    static const char *const required[] = {"iss", "sub", "aud", "client_id", "jti", "iat", "exp"};
    static const char header[] = "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k2\"}";
    static const char *const raw_payloads[] = {
        /* not an object */
        "[]",
        "\"" ISSUER "\"",
        "42",
        "null",
        "",
        /* duplicates: which issuer, which subject? */
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300,\"iss\":\"https://evil.example.com\"}",
        "{\"iss\":\"https://evil.example.com\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":"
        "\"c\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300,\"iss\":\"" ISSUER "\"}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300,\"cnf\":{\"jkt\":\"a\",\"jkt\":\"b\"}}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300,\"exp\":1900000000}",
        /* a NUL escape that would cut the issuer short in C */
        "{\"iss\":\"" ISSUER "\\u0000.evil\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":"
        "\"c\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300}",
        /* a raw control character in a string; invalid UTF-8 */
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\x01\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\","
        "\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\xc0\xaf\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\","
        "\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300}",
        /* garbage after the object */
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300}x",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300}{}",
        /* a byte order mark */
        "\xef\xbb\xbf{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":"
        "\"c\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300}",
        /* aud of the wrong type, or with a non-string element */
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":7,\"client_id\":\"c\",\"jti\":\"j\",\"iat\":"
        "1700000000,\"exp\":1700000300}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":[\"" AUDIENCE "\",7],\"client_id\":\"c\","
        "\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700000300}",
        /* NumericDates that are not whole, non-negative, sane numbers */
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":\"1700000300\"}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300.5}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":-1,\"exp\":1700000300}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1e300}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1e999}",
        "{\"iss\":\"" ISSUER "\",\"sub\":\"d\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300,\"nbf\":null}",
        /* an empty subject */
        "{\"iss\":\"" ISSUER "\",\"sub\":\"\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"c\",\"jti\":"
        "\"j\",\"iat\":1700000000,\"exp\":1700000300}",
        /* deep nesting stays bounded (cJSON's nesting limit) */
        "{\"iss\":\"" ISSUER "\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "[[[[[[[[",
    };
    char token[TOKEN_SIZE];
    cJSON *claims;

    /* each required claim missing, then of the wrong type */
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        claims = good_claims();
        cJSON_DeleteItemFromObjectCaseSensitive(claims, required[i]);
        if (sign_and_verify(w, claims) != TETHER_ERR_PARSE)
            fail_msg("missing %s accepted", required[i]);
        claims = good_claims();
        cJSON_DeleteItemFromObjectCaseSensitive(claims, required[i]);
        cJSON_AddBoolToObject(claims, required[i], 1);
        if (sign_and_verify(w, claims) != TETHER_ERR_PARSE)
            fail_msg("boolean %s accepted", required[i]);
    }
    for (size_t i = 0; i < sizeof(raw_payloads) / sizeof(raw_payloads[0]); i++) {
        size_t n = sign_text(header, raw_payloads[i], &w->current, token, sizeof(token));
        if (verify(w, token, n) != TETHER_ERR_PARSE)
            fail_msg("claims accepted: %s", raw_payloads[i]);
    }
    /* deep nesting beyond cJSON's limit, well within the size limit */
    {
        char deep[3000];
        size_t n;
        memset(deep, '[', sizeof(deep));
        memcpy(deep, "{\"a\":", 5);
        deep[sizeof(deep) - 1] = '\0';
        n = sign_text(header, deep, &w->current, token, sizeof(token));
        assert_int_equal(verify(w, token, n), TETHER_ERR_PARSE);
    }
    /* whitespace and a non-ASCII subject are fine */
    {
        size_t n = sign_text(header,
                             " {\"iss\" : \"" ISSUER "\",\n\"sub\":\"d\xc3\xa9vice\",\"aud\":\"" AUDIENCE
                             "\",\"client_id\":\"c\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":"
                             "1700000300} \r\n",
                             &w->current, token, sizeof(token));
        assert_int_equal(verify(w, token, n), TETHER_OK);
    }
}

static void jwt_sign_arguments(void **state)
{
    struct world *w = *state;
    cJSON *claims = good_claims();
    cJSON *array = cJSON_CreateArray();
    char token[1024];
    size_t len;

    assert_int_equal(tether_jwt_sign(NULL, claims, &w->current, token, sizeof(token), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jwt_sign("", claims, &w->current, token, sizeof(token), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jwt_sign("k", array, &w->current, token, sizeof(token), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jwt_sign("k", claims, w->keys[0].key, token, sizeof(token), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jwt_sign("k", claims, &w->current, token, 20, &len),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(tether_jwt_verify(NULL, 0, &w->keyset, &w->expect, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jwt_verify("a.b.c", 5, NULL, &w->expect, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_jwt_verify("a.b.c", 5, &w->keyset, NULL, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    cJSON_Delete(array);
    cJSON_Delete(claims);
}

static void strerror_covers_new_codes(void **state)
{
    (void)state;
    assert_string_not_equal(tether_strerror(TETHER_ERR_UNKNOWN_KEY), "unknown error");
    assert_string_not_equal(tether_strerror(TETHER_ERR_EXPIRED), "unknown error");
    assert_string_not_equal(tether_strerror(TETHER_ERR_NOT_YET_VALID), "unknown error");
    assert_string_not_equal(tether_strerror(TETHER_ERR_WRONG_ISSUER), "unknown error");
    assert_string_not_equal(tether_strerror(TETHER_ERR_WRONG_AUDIENCE), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jws_rfc7515_a3),
        cmocka_unit_test(jws_sign_with_rfc7515_a3_key),
        cmocka_unit_test(jws_sign_arguments),
        cmocka_unit_test_setup_teardown(jws_sign_with_callback, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwk_rfc9449_dpop_proof, setup_world, teardown_world),
        cmocka_unit_test(jwk_thumbprint_vectors),
        cmocka_unit_test(jwk_round_trip),
        cmocka_unit_test(jwk_parse_rejects),
        cmocka_unit_test_setup_teardown(jwt_round_trip, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_rejects_algorithms, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_rejects_headers, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_rejects_tampering, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_rejects_malformed, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_oversized_claims, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_time_checks, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_issuer_and_audience, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_rejects_bad_claims, setup_world, teardown_world),
        cmocka_unit_test_setup_teardown(jwt_sign_arguments, setup_world, teardown_world),
        cmocka_unit_test(strerror_covers_new_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
