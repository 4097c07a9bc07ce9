#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/error.h"
#include "tether/jose.h"
#include "tether/random.h"
#include "tether/secret_token.h"

#define BASE62 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* RFC 7515 appendix A.1: an HS256 JWT with "typ":"JWT", not an access token. */
#define RFC7515_A1_JWT                                                                             \
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                                     \
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnV" \
    "lfQ"                                                                                          \
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

/* ---- CRC-32 ------------------------------------------------------------------- */

static void crc32_check_values(void **state)
{
    (void)state;
    /* the standard check value of CRC-32/ISO-HDLC (IEEE 802.3, zlib, PNG) */
    assert_int_equal(tether_crc32("123456789", 9), 0xcbf43926u);
    assert_int_equal(tether_crc32("", 0), 0);
    assert_int_equal(tether_crc32(NULL, 0), 0);
    assert_int_equal(tether_crc32("a", 1), 0xe8b7be43u);
    assert_int_equal(tether_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414fa339u);
}

/* ---- format -------------------------------------------------------------------- */

static void prefixes(void **state)
{
    (void)state;
    assert_string_equal(tether_secret_token_prefix(TETHER_SECRET_ADMIN), "tthr_adm_");
    assert_string_equal(tether_secret_token_prefix(TETHER_SECRET_BOOTSTRAP), "tthr_boot_");
    assert_null(tether_secret_token_prefix((tether_secret_kind_t)2));
    assert_null(tether_secret_token_prefix((tether_secret_kind_t)-1));
}

/* Checksums computed independently (Python: zlib.crc32, then base 62 over
 * "0-9A-Za-z", six digits, most significant first). */
static void known_checksums(void **state)
{
    static const struct {
        const char *token;
        tether_secret_kind_t kind;
    } known[] = {
        {"tthr_adm_00000000000000000000000000000000" "3doIys", TETHER_SECRET_ADMIN},
        {"tthr_boot_00000000000000000000000000000000" "2ACgb2", TETHER_SECRET_BOOTSTRAP},
        {"tthr_adm_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW" "4Ffotf", TETHER_SECRET_ADMIN},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        assert_int_equal(tether_secret_token_check_format(known[i].token, strlen(known[i].token),
                                                          known[i].kind),
                         TETHER_OK);
}

static void generate_and_check(void **state)
{
    char a[TETHER_SECRET_TOKEN_SIZE], b[TETHER_SECRET_TOKEN_SIZE];

    (void)state;
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, a, sizeof(a)), TETHER_OK);
    assert_int_equal(strlen(a), 9 + 32 + 6);
    assert_memory_equal(a, "tthr_adm_", 9);
    assert_int_equal(strspn(a + 9, BASE62), 38);
    assert_int_equal(tether_secret_token_check_format(a, strlen(a), TETHER_SECRET_ADMIN), TETHER_OK);
    /* the other kind's format does not match */
    assert_int_equal(tether_secret_token_check_format(a, strlen(a), TETHER_SECRET_BOOTSTRAP),
                     TETHER_ERR_PARSE);

    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_BOOTSTRAP, b, sizeof(b)), TETHER_OK);
    assert_int_equal(strlen(b), TETHER_SECRET_TOKEN_MAX_LEN);
    assert_memory_equal(b, "tthr_boot_", 10);
    assert_int_equal(tether_secret_token_check_format(b, strlen(b), TETHER_SECRET_BOOTSTRAP),
                     TETHER_OK);

    /* fresh every time */
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, b, sizeof(b)), TETHER_OK);
    assert_string_not_equal(a, b);

    /* buffer: exactly length + NUL */
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, a, 47), TETHER_ERR_TOO_LARGE);
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, a, 48), TETHER_OK);
    assert_int_equal(tether_secret_token_generate((tether_secret_kind_t)7, a, sizeof(a)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, NULL, 64),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_wipe(a, sizeof(a));
    tether_wipe(b, sizeof(b));
}

static void check_format_rejects(void **state)
{
    char token[TETHER_SECRET_TOKEN_SIZE + 2];
    size_t len;

    (void)state;
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, token, sizeof(token)),
                     TETHER_OK);
    len = strlen(token);

    /* length */
    assert_int_equal(tether_secret_token_check_format(token, len - 1, TETHER_SECRET_ADMIN),
                     TETHER_ERR_PARSE);
    token[len] = 'A';
    token[len + 1] = '\0';
    assert_int_equal(tether_secret_token_check_format(token, len + 1, TETHER_SECRET_ADMIN),
                     TETHER_ERR_PARSE);
    token[len] = '\0';
    assert_int_equal(tether_secret_token_check_format("", 0, TETHER_SECRET_ADMIN), TETHER_ERR_PARSE);
    assert_int_equal(tether_secret_token_check_format(NULL, 0, TETHER_SECRET_ADMIN),
                     TETHER_ERR_PARSE);
    /* prefix: case, kind, lookalikes */
    token[0] = 'T';
    assert_int_equal(tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN),
                     TETHER_ERR_PARSE);
    token[0] = 't';
    token[8] = '-';
    assert_int_equal(tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN),
                     TETHER_ERR_PARSE);
    token[8] = '_';
    /* characters outside base62 in the body and in the checksum */
    for (size_t i = 9; i < len; i++) {
        static const char bad[] = {'_', '-', '+', '/', '=', ' ', '\0', '\xff'};
        char saved = token[i];
        for (size_t j = 0; j < sizeof(bad); j++) {
            token[i] = bad[j];
            assert_int_equal(tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN),
                             TETHER_ERR_PARSE);
        }
        token[i] = saved;
    }
    /* any single change in body or checksum breaks the checksum (CRC-32
     * detects every single-character error) */
    for (size_t i = 9; i < len; i++) {
        char saved = token[i];
        token[i] = saved == 'x' ? 'y' : 'x';
        assert_int_equal(tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN),
                         TETHER_ERR_VERIFY);
        token[i] = saved;
    }
    /* two body characters swapped */
    {
        char saved = token[10];
        if (token[10] != token[11]) {
            token[10] = token[11];
            token[11] = saved;
            assert_int_equal(tether_secret_token_check_format(token, len, TETHER_SECRET_ADMIN),
                             TETHER_ERR_VERIFY);
        }
    }
    assert_int_equal(tether_secret_token_check_format(token, len, (tether_secret_kind_t)9),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_wipe(token, sizeof(token));
}

/* Rejection sampling leaves no modulo bias: without it, '0'..'7' (bytes
 * 248..255 folded onto them) would come up 5/4 as often as the rest. */
static void body_is_uniform(void **state)
{
    enum { TOKENS = 4000 };
    size_t counts[62] = {0};
    char token[TETHER_SECRET_TOKEN_SIZE];
    double low = 0, rest = 0, expected = TOKENS * 32.0 / 62.0;

    (void)state;
    for (int t = 0; t < TOKENS; t++) {
        assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, token, sizeof(token)),
                         TETHER_OK);
        for (size_t i = 9; i < 9 + 32; i++) {
            const char *p = strchr(BASE62, token[i]);
            assert_non_null(p);
            counts[p - BASE62]++;
        }
    }
    for (size_t i = 0; i < 62; i++) {
        /* about 2065 each, standard deviation about 45 */
        assert_true((double)counts[i] > expected * 0.85 && (double)counts[i] < expected * 1.15);
        if (i < 8)
            low += (double)counts[i];
        else
            rest += (double)counts[i];
    }
    low /= 8;
    rest /= 54;
    assert_true(low / rest < 1.08 && low / rest > 0.92);
}

static void hash_is_sha256(void **state)
{
    /* FIPS 180-2 appendix B.1: SHA-256("abc") */
    static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    uint8_t expected[32], hash[32], other[32];
    size_t len = 0;
    char token[TETHER_SECRET_TOKEN_SIZE];

    (void)state;
    assert_int_equal(tether_hex_decode(abc_hex, 64, expected, sizeof(expected), &len), TETHER_OK);
    assert_int_equal(tether_secret_token_hash("abc", 3, hash), TETHER_OK);
    assert_memory_equal(hash, expected, 32);

    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, token, sizeof(token)),
                     TETHER_OK);
    assert_int_equal(tether_secret_token_hash(token, strlen(token), hash), TETHER_OK);
    assert_int_equal(tether_secret_token_hash(token, strlen(token), other), TETHER_OK);
    assert_true(tether_ct_equal(hash, other, 32));
    token[20] = token[20] == 'a' ? 'b' : 'a';
    assert_int_equal(tether_secret_token_hash(token, strlen(token), other), TETHER_OK);
    assert_false(tether_ct_equal(hash, other, 32));
    assert_int_equal(tether_secret_token_hash(NULL, 3, hash), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_secret_token_hash("abc", 3, NULL), TETHER_ERR_INVALID_ARGUMENT);
    tether_wipe(token, sizeof(token));
}

/* ---- finding leaked access tokens --------------------------------------------- */

struct tokens {
    tether_ec_key_t key;
    char token[2][2048];
    size_t len[2];
};

static int setup_tokens(void **state)
{
    struct tokens *t = calloc(1, sizeof(*t));
    cJSON *claims = cJSON_Parse("{\"iss\":\"https://fleet.example.com\",\"sub\":\"device-0001\","
                                "\"aud\":\"tether-gate\",\"client_id\":\"tether-agent\",\"jti\":\"1\","
                                "\"iat\":1700000000,\"exp\":1700000300}");

    assert_non_null(t);
    assert_non_null(claims);
    tether_ec_key_init(&t->key);
    assert_int_equal(tether_ec_key_generate(&t->key), TETHER_OK);
    assert_int_equal(tether_jwt_sign("k1", claims, &t->key, t->token[0], sizeof(t->token[0]),
                                     &t->len[0]),
                     TETHER_OK);
    cJSON_DeleteItemFromObjectCaseSensitive(claims, "jti");
    cJSON_AddStringToObject(claims, "jti", "2");
    assert_int_equal(tether_jwt_sign("k1", claims, &t->key, t->token[1], sizeof(t->token[1]),
                                     &t->len[1]),
                     TETHER_OK);
    cJSON_Delete(claims);
    *state = t;
    return 0;
}

static int teardown_tokens(void **state)
{
    struct tokens *t = *state;
    tether_ec_key_free(&t->key);
    free(t);
    return 0;
}

static size_t find(const char *text, size_t len, tether_token_span_t *spans, size_t max,
                   tether_status_t expected)
{
    size_t count = 99;
    assert_int_equal(tether_secret_token_find_jwts(text, len, spans, max, &count), expected);
    return count;
}

static void find_in_context(void **state)
{
    struct tokens *t = *state;
    static const char *const frames[][2] = {
        {"Authorization: Bearer ", "\r\n"},
        {"{\"access_token\":\"", "\",\"token_type\":\"Bearer\"}"},
        {"GET /v1/models?access_token=", "&x=1 HTTP/1.1"},
        {"the token was ", ". Then it expired."}, /* a full stop right after it */
        {"", ""},
        {"x=", "\x01\x02"},
        {"'", "'"},
    };
    char text[4096];
    tether_token_span_t spans[4];

    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        size_t pre = strlen(frames[i][0]), n;
        n = (size_t)snprintf(text, sizeof(text), "%s%s%s", frames[i][0], t->token[0], frames[i][1]);
        assert_int_equal(find(text, n, spans, 4, TETHER_OK), 1);
        assert_int_equal(spans[0].offset, pre);
        assert_int_equal(spans[0].len, t->len[0]);
    }
}

static void find_several(void **state)
{
    struct tokens *t = *state;
    char text[8192];
    tether_token_span_t spans[4];
    size_t n, count;

    /* two tokens, a tether admin token, and non-tokens in between */
    n = (size_t)snprintf(text, sizeof(text),
                         "first %s\nadmin tthr_adm_00000000000000000000000000000000" "3doIys\n"
                         "id token " RFC7515_A1_JWT "\nfile a.b.c, version 1.2.3, e.e.e\n"
                         "second %s.",
                         t->token[0], t->token[1]);
    count = find(text, n, spans, 4, TETHER_OK);
    assert_int_equal(count, 2);
    assert_memory_equal(text + spans[0].offset, t->token[0], t->len[0]);
    assert_int_equal(spans[0].len, t->len[0]);
    assert_memory_equal(text + spans[1].offset, t->token[1], t->len[1]);
    assert_int_equal(spans[1].len, t->len[1]);

    /* only as many spans as asked for; then scan on from the last one */
    assert_int_equal(find(text, n, spans, 1, TETHER_ERR_TOO_LARGE), 1);
    {
        size_t from = spans[0].offset + spans[0].len;
        assert_int_equal(find(text + from, n - from, spans, 1, TETHER_OK), 1);
        assert_memory_equal(text + from + spans[0].offset, t->token[1], t->len[1]);
    }
    assert_int_equal(find(text, n, NULL, 0, TETHER_ERR_TOO_LARGE), 0);

    /* two tokens joined by a dot: both found, neither swallowed */
    n = (size_t)snprintf(text, sizeof(text), "%s.%s", t->token[0], t->token[1]);
    assert_int_equal(find(text, n, spans, 4, TETHER_OK), 2);
    assert_int_equal(spans[0].offset, 0);
    assert_int_equal(spans[1].offset, t->len[0] + 1);

    /* junk segments before a token in the same run */
    n = (size_t)snprintf(text, sizeof(text), "v1.eyJ.%s", t->token[0]);
    assert_int_equal(find(text, n, spans, 4, TETHER_OK), 1);
    assert_int_equal(spans[0].offset, 7);
}

static void find_ignores_others(void **state)
{
    struct tokens *t = *state;
    /* RFC 9449 figure 3: a DPoP proof, "typ":"dpop+jwt" */
    static const char dpop[] =
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNo"
        "UklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERW"
        "clUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
        ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGU"
        "uY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
        ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    char text[4096];
    tether_token_span_t spans[4];
    size_t hlen = strcspn(t->token[0], ".");

    assert_int_equal(find(RFC7515_A1_JWT, strlen(RFC7515_A1_JWT), spans, 4, TETHER_OK), 0);
    assert_int_equal(find(dpop, strlen(dpop), spans, 4, TETHER_OK), 0);
    assert_int_equal(find("", 0, spans, 4, TETHER_OK), 0);
    assert_int_equal(find(NULL, 0, spans, 4, TETHER_OK), 0);
    /* header and payload only, or header alone */
    memcpy(text, t->token[0], t->len[0]);
    text[strrchr(t->token[0], '.') - t->token[0]] = ' ';
    assert_int_equal(find(text, t->len[0], spans, 4, TETHER_OK), 0);
    assert_int_equal(find(t->token[0], hlen, spans, 4, TETHER_OK), 0);
    /* a header cut short: "typ" is no longer readable */
    memcpy(text, t->token[0] + 4, t->len[0] - 4);
    assert_int_equal(find(text, t->len[0] - 4, spans, 4, TETHER_OK), 0);
    /* a header that says at+jwt is a candidate, signed or not */
    {
        char forged[256], h[128];
        size_t n = 0;
        static const char header[] = "{\"typ\":\"AT+JWT\",\"alg\":\"none\"}";
        assert_int_equal(tether_base64url_encode((const uint8_t *)header, strlen(header), h,
                                                 sizeof(h), &n),
                         TETHER_OK);
        n = (size_t)snprintf(forged, sizeof(forged), "%s.eyJ9.x0", h);
        assert_int_equal(find(forged, n, spans, 4, TETHER_OK), 1);
    }
    assert_int_equal(tether_secret_token_find_jwts("a", 1, spans, 4, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_secret_token_find_jwts(NULL, 1, spans, 4, (size_t[]){0}),
                     TETHER_ERR_INVALID_ARGUMENT);
}

/* Adversarial text stays linear and bounded: a megabyte that is all
 * candidates, then a megabyte of long header-like segments that decode and
 * fail to parse only at their end. */
static void find_is_linear(void **state)
{
    struct tokens *t = *state;
    enum { SIZE = 1 << 20, MAX_SPANS = SIZE / 16 };
    static const char candidate[] = "eyJ0eXAiOiJhdCtqd3QifQ."; /* {"typ":"at+jwt"} */
    char *text = malloc(SIZE);
    tether_token_span_t *spans = calloc(MAX_SPANS, sizeof(*spans));
    size_t count = 0, tail = SIZE - t->len[0];
    clock_t start = clock();
    double seconds;

    assert_non_null(text);
    assert_non_null(spans);
    for (size_t i = 0; i < tail - 1; i++)
        text[i] = candidate[i % (sizeof(candidate) - 1)];
    text[tail - 1] = ' ';
    memcpy(text + tail, t->token[0], t->len[0]);
    assert_int_equal(tether_secret_token_find_jwts(text, SIZE, spans, MAX_SPANS, &count), TETHER_OK);
    /* every three segments are one candidate (a cut-off last segment may
     * complete one more), and the token itself */
    assert_true(count >= (tail - 1) / (sizeof(candidate) - 1) / 3 + 1);
    assert_true(count <= (tail - 1) / (sizeof(candidate) - 1) / 3 + 2);
    for (size_t i = 1; i < count; i++)
        assert_true(spans[i].offset >= spans[i - 1].offset + spans[i - 1].len);
    assert_int_equal(spans[count - 1].offset, tail);

    /* {"typ":"at+jwt","x":"aaaa...  (never closed), about 1000 characters */
    {
        char json[760], segment[1024];
        size_t n = 0, seg_len = 0;
        memset(json, 'a', sizeof(json));
        memcpy(json, "{\"typ\":\"at+jwt\",\"x\":\"", 21);
        assert_int_equal(tether_base64url_encode((const uint8_t *)json, sizeof(json), segment,
                                                 sizeof(segment), &seg_len),
                         TETHER_OK);
        while (n + seg_len + 1 < tail) {
            memcpy(text + n, segment, seg_len);
            text[n + seg_len] = '.';
            n += seg_len + 1;
        }
        memset(text + n, ' ', tail - n);
    }
    assert_int_equal(tether_secret_token_find_jwts(text, SIZE, spans, MAX_SPANS, &count), TETHER_OK);
    assert_int_equal(count, 1);
    assert_int_equal(spans[0].offset, tail);
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    assert_true(seconds < 20.0); /* generous, for sanitizer builds */
    free(spans);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32_check_values),
        cmocka_unit_test(prefixes),
        cmocka_unit_test(known_checksums),
        cmocka_unit_test(generate_and_check),
        cmocka_unit_test(check_format_rejects),
        cmocka_unit_test(body_is_uniform),
        cmocka_unit_test(hash_is_sha256),
        cmocka_unit_test_setup_teardown(find_in_context, setup_tokens, teardown_tokens),
        cmocka_unit_test_setup_teardown(find_several, setup_tokens, teardown_tokens),
        cmocka_unit_test_setup_teardown(find_ignores_others, setup_tokens, teardown_tokens),
        cmocka_unit_test_setup_teardown(find_is_linear, setup_tokens, teardown_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
