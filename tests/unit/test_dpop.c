/* DPoP proofs (lib/include/tether/dpop.h): RFC 9449's published proof, a
 * round trip, and one test per refusal, each with its failure code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "tether/base64url.h"
#include "tether/crypto.h"
#include "tether/dpop.h"
#include "tether/jose.h"

#include "rfc9449_vectors.h"

#define NOW 1700000000
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZXYifQ.c2ln"
#define HTU "https://gate.example/v1/chat/completions"

typedef struct fixture {
    tether_ec_key_t key, other;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
    char proof[TETHER_DPOP_MAX_LEN + 1];
    tether_dpop_expect_t expect;
    tether_dpop_result_t result;
    tether_dpop_failure_t failure;
    char why[160];
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;

    memset(&f, 0, sizeof(f));
    tether_ec_key_init(&f.key);
    tether_ec_key_init(&f.other);
    if (tether_ec_key_generate(&f.key) != TETHER_OK ||
        tether_ec_key_generate(&f.other) != TETHER_OK ||
        tether_jwk_thumbprint_key(&f.key, f.jkt, sizeof(f.jkt)) != TETHER_OK)
        return -1;
    f.expect.htm = "POST";
    f.expect.htu = HTU;
    f.expect.access_token = TOKEN;
    f.expect.access_token_len = strlen(TOKEN);
    f.expect.jkt = f.jkt;
    f.expect.now = NOW;
    f.expect.max_age = 60;
    f.expect.leeway = 5;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    tether_ec_key_free(&f->key);
    tether_ec_key_free(&f->other);
    return 0;
}

static tether_dpop_claims_t good_claims(void)
{
    tether_dpop_claims_t c = {
        .htm = "POST",
        .htu = HTU,
        .jti = "e1j3V_bKic8-LAEB",
        .iat = NOW,
        .access_token = TOKEN,
        .access_token_len = sizeof(TOKEN) - 1,
        .nonce = NULL,
    };
    return c;
}

static tether_status_t sign_claims(fixture_t *f, const tether_dpop_claims_t *c,
                                   const tether_ec_key_t *key)
{
    return tether_dpop_sign(c, key, f->proof, sizeof(f->proof), NULL);
}

/* Signs header and payload texts as given (a proof tether_dpop_sign would
 * never make). */
static void sign_raw(fixture_t *f, const char *header_json, const char *payload)
{
    cJSON *header = cJSON_Parse(header_json);

    assert_non_null(header);
    assert_int_equal(tether_jws_sign(header, (const uint8_t *)payload, strlen(payload), &f->key,
                                     f->proof, sizeof(f->proof), NULL),
                     TETHER_OK);
    cJSON_Delete(header);
}

/* The header {"typ":typ,"alg":"ES256","jwk":key's JWK} as text. */
static char *header_text(fixture_t *f, const char *typ)
{
    cJSON *header = cJSON_CreateObject(), *jwk = NULL;
    char *text;

    assert_int_equal(tether_jwk_write(&f->key, &jwk), TETHER_OK);
    cJSON_AddStringToObject(header, "typ", typ);
    cJSON_AddStringToObject(header, "alg", "ES256");
    cJSON_AddItemToObject(header, "jwk", jwk);
    text = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);
    assert_non_null(text);
    return text;
}

static tether_status_t verify(fixture_t *f)
{
    return tether_dpop_verify(f->proof, strlen(f->proof), &f->expect, &f->result, &f->failure,
                              f->why, sizeof(f->why));
}

static void assert_refused(fixture_t *f, tether_dpop_failure_t failure)
{
    assert_int_equal(verify(f), TETHER_ERR_VERIFY);
    assert_int_equal(f->failure, failure);
    assert_true(f->why[0] != '\0');
    assert_string_equal(f->result.jti, "");
}

static void test_rfc9449_proof_verifies(void **state)
{
    fixture_t *f = *state;
    tether_dpop_expect_t expect = {
        .htm = "POST",
        .htu = "https://server.example.com/token",
        .access_token = NULL,
        .jkt = DPOP_JKT,
        .now = DPOP_IAT,
        .max_age = 60,
        .leeway = 5,
    };

    assert_int_equal(tether_dpop_verify(DPOP_PROOF, strlen(DPOP_PROOF), &expect,
                                        &f->result, &f->failure, NULL, 0),
                     TETHER_OK);
    assert_int_equal(f->failure, TETHER_DPOP_OK);
    assert_string_equal(f->result.jti, "-BwC3ESc6acc2lTc");
    assert_int_equal(f->result.iat, DPOP_IAT);
    assert_string_equal(f->result.nonce, "");
    /* The same proof presented with a token: it carries no ath. */
    expect.access_token = TOKEN;
    expect.access_token_len = strlen(TOKEN);
    assert_int_equal(tether_dpop_verify(DPOP_PROOF, strlen(DPOP_PROOF), &expect,
                                        &f->result, &f->failure, NULL, 0),
                     TETHER_ERR_VERIFY);
    assert_int_equal(f->failure, TETHER_DPOP_WRONG_ATH);
}

static void test_round_trip_with_nonce(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();

    c.nonce = "eyJ7S_zG.eyJH0-Z.HX4w-7v";
    /* The verifier normalises the proof's htu: case, default port, query. */
    c.htu = "HTTPS://Gate.Example:443/v1/chat/completions?stream=1#x";
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_int_equal(verify(f), TETHER_OK);
    assert_int_equal(f->failure, TETHER_DPOP_OK);
    assert_string_equal(f->result.jti, c.jti);
    assert_int_equal(f->result.iat, NOW);
    assert_string_equal(f->result.nonce, c.nonce);
}

static void test_malformed(void **state)
{
    fixture_t *f = *state;

    strcpy(f->proof, "not a jws");
    assert_refused(f, TETHER_DPOP_MALFORMED);
    assert_int_equal(sign_claims(f, &(tether_dpop_claims_t){.htm = "POST", .htu = HTU,
                                                            .jti = "j", .iat = NOW},
                                 &f->key),
                     TETHER_OK);
    /* Over the length bound, whatever follows. */
    memset(f->proof + strlen(f->proof), 'A', TETHER_DPOP_MAX_LEN + 1 - strlen(f->proof));
    f->proof[TETHER_DPOP_MAX_LEN] = '\0';
    f->proof[TETHER_DPOP_MAX_LEN - 1] = 'A';
    assert_int_equal(tether_dpop_verify(f->proof, TETHER_DPOP_MAX_LEN + 1, &f->expect, &f->result,
                                        &f->failure, NULL, 0),
                     TETHER_ERR_VERIFY);
    assert_int_equal(f->failure, TETHER_DPOP_MALFORMED);
    /* Claims that are not JSON. */
    {
        char *h = header_text(f, "dpop+jwt");
        sign_raw(f, h, "[1,2]");
        cJSON_free(h);
    }
    assert_refused(f, TETHER_DPOP_MALFORMED);
}

static void test_wrong_type(void **state)
{
    fixture_t *f = *state;
    char *h = header_text(f, "jwt");

    sign_raw(f, h, "{}");
    cJSON_free(h);
    assert_refused(f, TETHER_DPOP_WRONG_TYPE);
}

static void test_wrong_alg(void **state)
{
    fixture_t *f = *state;
    char header[64], proof_text[256];

    /* {"typ":"dpop+jwt","alg":"none"} with an empty signature. */
    assert_int_equal(tether_base64url_encode((const uint8_t *)"{\"typ\":\"dpop+jwt\",\"alg\":\"none\"}",
                                             31, header, sizeof(header), NULL),
                     TETHER_OK);
    snprintf(proof_text, sizeof(proof_text), "%s.e30.", header);
    strcpy(f->proof, proof_text);
    assert_refused(f, TETHER_DPOP_WRONG_ALG);
}

static void test_bad_key(void **state)
{
    fixture_t *f = *state;

    /* A JWK with its private part: tether_jwk_parse refuses "d". */
    sign_raw(f,
             "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\","
             "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
             "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}}",
             "{}");
    assert_refused(f, TETHER_DPOP_BAD_KEY);
    sign_raw(f, "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"}", "{}");
    assert_refused(f, TETHER_DPOP_BAD_KEY);
}

static void test_bad_signature(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();
    size_t n;

    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    n = strlen(f->proof);
    f->proof[n - 3] = f->proof[n - 3] == 'A' ? 'B' : 'A';
    assert_refused(f, TETHER_DPOP_BAD_SIGNATURE);
}

static void test_wrong_key(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();

    assert_int_equal(sign_claims(f, &c, &f->other), TETHER_OK);
    assert_refused(f, TETHER_DPOP_WRONG_KEY);
}

static void test_bad_claims(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();
    char long_jti[TETHER_DPOP_JTI_MAX + 2];

    memset(long_jti, 'j', sizeof(long_jti) - 1);
    long_jti[sizeof(long_jti) - 1] = '\0';
    {
        char *h = header_text(f, "dpop+jwt");
        sign_raw(f, h, "{\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1700000000}");
        assert_refused(f, TETHER_DPOP_BAD_CLAIMS);
        sign_raw(f, h, "{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1700000000.5}");
        assert_refused(f, TETHER_DPOP_BAD_CLAIMS);
        sign_raw(f, h, "{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1700000000,"
                       "\"nonce\":7}");
        assert_refused(f, TETHER_DPOP_BAD_CLAIMS);
        cJSON_free(h);
    }
    /* The signer refuses a jti over the bound, so the verifier's bound is
     * tested with a proof made by hand. */
    c.jti = long_jti;
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_ERR_INVALID_ARGUMENT);
    {
        char *h = header_text(f, "dpop+jwt");
        char payload[256];
        snprintf(payload, sizeof(payload),
                 "{\"jti\":\"%s\",\"htm\":\"POST\",\"htu\":\"" HTU "\",\"iat\":1700000000}",
                 long_jti);
        sign_raw(f, h, payload);
        cJSON_free(h);
    }
    assert_refused(f, TETHER_DPOP_BAD_CLAIMS);
}

static void test_wrong_htm(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();

    c.htm = "GET";
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_refused(f, TETHER_DPOP_WRONG_HTM);
    c.htm = "post"; /* methods are case-sensitive (RFC 9110 section 9.1) */
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_refused(f, TETHER_DPOP_WRONG_HTM);
}

static void test_wrong_htu(void **state)
{
    static const char *const others[] = {
        "https://gate.example/v1/completions",
        "http://gate.example/v1/chat/completions",
        "https://gate.example:8443/v1/chat/completions",
        "https://other.example/v1/chat/completions",
        "https://gate.example/v1/chat/completions/",
        "ftp://gate.example/v1/chat/completions",
    };
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();

    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        c.htu = others[i];
        assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
        assert_refused(f, TETHER_DPOP_WRONG_HTU);
    }
}

static void test_iat_window(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();

    c.iat = NOW - 60; /* the oldest accepted */
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_int_equal(verify(f), TETHER_OK);
    c.iat = NOW - 61;
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_refused(f, TETHER_DPOP_STALE);
    c.iat = NOW + 5; /* the latest accepted */
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_int_equal(verify(f), TETHER_OK);
    c.iat = NOW + 6;
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_refused(f, TETHER_DPOP_FUTURE);
}

static void test_wrong_ath(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();

    c.access_token = "another.token.value";
    c.access_token_len = strlen(c.access_token);
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_refused(f, TETHER_DPOP_WRONG_ATH);
    c.access_token = NULL; /* no ath at all */
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_refused(f, TETHER_DPOP_WRONG_ATH);
}

/* The token's hash given by the caller stands for hashing the token: the
 * same answers, and a wrong hash refuses the proof. */
static void test_ath_from_given_hash(void **state)
{
    fixture_t *f = *state;
    tether_dpop_claims_t c = good_claims();
    uint8_t hash[TETHER_SHA256_SIZE];

    assert_int_equal(tether_sha256(TOKEN, strlen(TOKEN), hash), TETHER_OK);
    f->expect.access_token_sha256 = hash;
    assert_int_equal(sign_claims(f, &c, &f->key), TETHER_OK);
    assert_int_equal(verify(f), TETHER_OK);
    hash[0] ^= 1;
    assert_refused(f, TETHER_DPOP_WRONG_ATH);
    f->expect.access_token_sha256 = NULL;
}

static void test_htu_normalize(void **state)
{
    static const struct {
        const char *in, *out;
    } good[] = {
        {"https://gate.example/v1/models", "https://gate.example/v1/models"},
        {"HTTPS://GATE.Example:443/v1/Models", "https://gate.example/v1/Models"},
        {"http://127.0.0.1:80", "http://127.0.0.1/"},
        {"http://127.0.0.1:08080/a?b#c", "http://127.0.0.1:8080/a"},
        {"https://[::1]:8443/x%2fy", "https://[::1]:8443/x%2Fy"},
        {"https://h?q", "https://h/"},
    };
    static const char *const bad[] = {
        "gate.example/v1", "ftp://h/", "https://user@h/", "https:///x", "https://h:/",
        "https://h:65536/", "https://h:0/", "https://h/a b", "https://h/%4", "https://h/%zz",
        "https://[::1/", "https://[::1]x/", "https://",
    };
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(tether_dpop_htu_normalize(good[i].in, strlen(good[i].in), out, sizeof(out)),
                         TETHER_OK);
        assert_string_equal(out, good[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tether_dpop_htu_normalize(bad[i], strlen(bad[i]), out, sizeof(out)),
                         TETHER_ERR_PARSE);
        assert_string_equal(out, "");
    }
    assert_int_equal(tether_dpop_htu_normalize("https://gate.example/v1/models", 30, out, 20),
                     TETHER_ERR_TOO_LARGE);
    /* An empty authority at the very end of a text that is not
     * NUL-terminated: nothing past it is read (found by fuzz_dpop_proof;
     * ASan reports the read past the buffer). */
    {
        char *exact = malloc(8);
        assert_non_null(exact);
        memcpy(exact, "https://", 8);
        assert_int_equal(tether_dpop_htu_normalize(exact, 8, out, sizeof(out)), TETHER_ERR_PARSE);
        free(exact);
    }
}

static void test_failure_names(void **state)
{
    (void)state;
    assert_string_equal(tether_dpop_failure_name(TETHER_DPOP_WRONG_HTU), "dpop_wrong_htu");
    for (int i = 0; i < TETHER_DPOP_FAILURE__COUNT; i++)
        assert_non_null(tether_dpop_failure_name((tether_dpop_failure_t)i));
    assert_string_equal(tether_dpop_failure_name(TETHER_DPOP_FAILURE__COUNT), "dpop_unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9449_proof_verifies),
        cmocka_unit_test(test_round_trip_with_nonce),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_wrong_alg),
        cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_bad_claims),
        cmocka_unit_test(test_wrong_htm),
        cmocka_unit_test(test_wrong_htu),
        cmocka_unit_test(test_iat_window),
        cmocka_unit_test(test_wrong_ath),
        cmocka_unit_test(test_ath_from_given_hash),
        cmocka_unit_test(test_htu_normalize),
        cmocka_unit_test(test_failure_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
