/* The strict form parser of POST /v1/token (token_form.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "token_form.h"

#define GRANT "urn:ietf:params:oauth:grant-type:token-exchange"
#define GRANT_ENC "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
#define TYPE_ENC "urn%3Atether%3Aparams%3Aoauth%3Atoken-type%3Atpm-evidence-v1"
#define BASE "grant_type=" GRANT_ENC "&subject_token_type=" TYPE_ENC "&subject_token=eyJ2IjoxfQ"

static tether_token_form_t *parse(const char *body, tether_status_t expected, char *why,
                                  size_t why_size)
{
    tether_token_form_t *form = malloc(sizeof(*form));
    tether_status_t rc;

    assert_non_null(form);
    rc = tether_token_form_parse(body, strlen(body), form, why, why_size);
    if (rc != expected)
        fail_msg("\"%.200s\": got %d, expected %d (%s)", body, rc, expected, why);
    return form;
}

static void agent_and_curl_forms(void **state)
{
    char why[TETHER_TOKEN_FORM_WHY_SIZE];
    tether_token_form_t *form;

    (void)state;
    /* What tether-agent sends. */
    form = parse(BASE, TETHER_OK, why, sizeof(why));
    assert_string_equal(form->grant_type, GRANT);
    assert_string_equal(form->subject_token_type, TETHER_EVIDENCE_TOKEN_TYPE);
    assert_string_equal(form->subject_token, "eyJ2IjoxfQ");
    assert_int_equal(form->subject_token_len, 10);
    assert_string_equal(form->scope, "");
    assert_string_equal(form->audience, "");
    free(form);
    /* Raw ':' and '/', lowercase escapes, '+' as a space, any order. */
    form = parse("audience=https://gw.example/v1&scope=ai.inference+ai.embed&subject_token=a-_b"
                 "&subject_token_type=urn:tether:params:oauth:token-type:tpm-evidence-v1"
                 "&grant_type=urn%3aietf%3aparams%3aoauth%3agrant-type%3atoken-exchange",
                 TETHER_OK, why, sizeof(why));
    assert_string_equal(form->grant_type, GRANT);
    assert_string_equal(form->scope, "ai.inference ai.embed");
    assert_string_equal(form->audience, "https://gw.example/v1");
    assert_string_equal(form->subject_token, "a-_b");
    free(form);
    /* A parameter without a value counts as omitted (RFC 6749 3.1). */
    form = parse(BASE "&scope=&audience=", TETHER_OK, why, sizeof(why));
    assert_string_equal(form->scope, "");
    free(form);
    /* Names are decoded too. */
    form = parse("grant%5Ftype=" GRANT_ENC "&subject_token_type=" TYPE_ENC "&subject_token=x",
                 TETHER_OK, why, sizeof(why));
    free(form);
}

static void refusals(void **state)
{
    static const char *const refused[] = {
        "",
        "&" BASE,
        BASE "&",
        BASE "&&scope=x",
        BASE "&scope",
        BASE "&client_id=x",
        BASE "&Scope=x",
        BASE "&scope=x&scope=y",
        BASE "&scope=&scope=",
        BASE "&subject_token=x",
        BASE "&audience=a%2",
        BASE "&audience=a%zz",
        BASE "&audience=a%00",
        BASE "&audience=a%0a",
        BASE "&audience=a%C3%A9",
        BASE "&audience=a b",
        BASE "&audience=a+b",
        BASE "&audience=a#b",
        BASE "&audience=a=b",
        BASE "&audience=\xc3\xa9",
        BASE "&audience=a%22b",
        BASE "&scope=a++b",
        BASE "&scope=+a",
        BASE "&scope=a%5Cb",
        "grant_type=" GRANT_ENC "&subject_token_type=" TYPE_ENC "&subject_token=ab.cd",
        "grant_type=" GRANT_ENC "&subject_token_type=" TYPE_ENC "&subject_token=ab+cd",
        "grant_type=" GRANT_ENC "&subject_token_type=" TYPE_ENC "&subject_token=",
        "grant_type=" GRANT_ENC "&subject_token_type=" TYPE_ENC,
        "grant_type=" GRANT_ENC "&subject_token=x",
        "subject_token_type=" TYPE_ENC "&subject_token=x",
        "grant_type=" GRANT_ENC "\r\n&subject_token_type=" TYPE_ENC "&subject_token=x",
        "%67rant_type%=x",
        "a%=b",
    };
    char why[TETHER_TOKEN_FORM_WHY_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        tether_token_form_t *form;

        why[0] = '\0';
        form = parse(refused[i], TETHER_ERR_PARSE, why, sizeof(why));
        assert_true(strlen(why) > 0);
        /* Wiped on error. */
        assert_int_equal(form->subject_token[0], '\0');
        assert_int_equal(form->grant_type[0], '\0');
        free(form);
    }
}

static void bounds(void **state)
{
    char why[TETHER_TOKEN_FORM_WHY_SIZE];
    size_t size = TETHER_TOKEN_FORM_MAX_BODY + 64;
    char *body = malloc(size);
    tether_token_form_t *form;
    size_t used;

    (void)state;
    assert_non_null(body);
    /* The longest subject_token is accepted, one character more is not. */
    used = (size_t)snprintf(body, size, "%s",
                            "grant_type=" GRANT_ENC "&subject_token_type=" TYPE_ENC
                            "&subject_token=");
    memset(body + used, 'A', TETHER_EVIDENCE_MAX_TOKEN);
    body[used + TETHER_EVIDENCE_MAX_TOKEN] = '\0';
    form = parse(body, TETHER_OK, why, sizeof(why));
    assert_int_equal(form->subject_token_len, TETHER_EVIDENCE_MAX_TOKEN);
    free(form);
    strcat(body, "A");
    free(parse(body, TETHER_ERR_PARSE, why, sizeof(why)));
    assert_non_null(strstr(why, "subject_token is longer"));
    /* Other values: TETHER_TOKEN_FORM_VALUE_MAX bytes once decoded. */
    used = (size_t)snprintf(body, size, "%s", BASE "&audience=");
    memset(body + used, 'a', TETHER_TOKEN_FORM_VALUE_MAX);
    body[used + TETHER_TOKEN_FORM_VALUE_MAX] = '\0';
    free(parse(body, TETHER_OK, why, sizeof(why)));
    strcat(body, "a");
    free(parse(body, TETHER_ERR_PARSE, why, sizeof(why)));
    /* The whole body. */
    memset(body, 'a', TETHER_TOKEN_FORM_MAX_BODY + 1);
    body[TETHER_TOKEN_FORM_MAX_BODY + 1] = '\0';
    free(parse(body, TETHER_ERR_TOO_LARGE, why, sizeof(why)));
    free(body);
}

/* Reasons name parameters, never values (the subject_token is a credential
 * while its nonce lives). */
static void reasons_hold_no_values(void **state)
{
    char why[TETHER_TOKEN_FORM_WHY_SIZE];

    (void)state;
    free(parse(BASE "&audience=SECRETVALUE%", TETHER_ERR_PARSE, why, sizeof(why)));
    assert_null(strstr(why, "SECRETVALUE"));
    free(parse(BASE "&SECRETNAME=1", TETHER_ERR_PARSE, why, sizeof(why)));
    assert_null(strstr(why, "SECRETNAME"));
    free(parse("grant_type=SECRETVALUE&subject_token_type=x&subject_token=eyJ", TETHER_OK, why,
               sizeof(why)));
    /* A NULL why is fine. */
    {
        tether_token_form_t *form = malloc(sizeof(*form));
        assert_non_null(form);
        assert_int_equal(tether_token_form_parse("x", 1, form, NULL, 0), TETHER_ERR_PARSE);
        free(form);
    }
}

#define HASH_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HASH_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define HASHES "&platform_log_sha256=" HASH_A "&tether_log_sha256=" HASH_B

/* The measured-boot parameters: hashes alone, or with the logs that
 * changed; the logs are spans of the body. */
static void measured_boot_parameters(void **state)
{
    char why[TETHER_TOKEN_FORM_WHY_SIZE];
    static const char with_log[] = BASE HASHES "&tether_log=AQID";
    tether_token_form_t *form;

    (void)state;
    form = parse(BASE HASHES, TETHER_OK, why, sizeof(why));
    assert_string_equal(form->platform_log_sha256, HASH_A);
    assert_string_equal(form->tether_log_sha256, HASH_B);
    assert_null(form->platform_log.data);
    assert_int_equal(form->platform_log.len, 0);
    assert_null(form->tether_log.data);
    free(form);
    form = parse(with_log, TETHER_OK, why, sizeof(why));
    assert_ptr_equal(form->tether_log.data, with_log + strlen(with_log) - 4);
    assert_int_equal(form->tether_log.len, 4);
    assert_int_equal(form->platform_log.len, 0);
    free(form);
    form = parse(BASE "&platform_log=AQ" HASHES "&tether_log=AQI", TETHER_OK, why, sizeof(why));
    assert_int_equal(form->platform_log.len, 2);
    assert_int_equal(form->tether_log.len, 3);
    free(form);
    /* Without them: a device whose policy has no measured boot. */
    form = parse(BASE, TETHER_OK, why, sizeof(why));
    assert_string_equal(form->platform_log_sha256, "");
    assert_null(form->tether_log.data);
    free(form);
}

static void measured_boot_refusals(void **state)
{
    static const struct {
        const char *body;
        const char *why;
    } refused[] = {
        /* Both hashes or neither. */
        {BASE "&platform_log_sha256=" HASH_A, "come together"},
        {BASE "&tether_log_sha256=" HASH_B, "come together"},
        /* A log only beside its hash. */
        {BASE "&tether_log=AQID", "comes only with"},
        {BASE "&platform_log=AQID", "comes only with"},
        /* A hash is 64 lowercase hex digits. */
        {BASE "&platform_log_sha256=" HASH_A "0&tether_log_sha256=" HASH_B, "longer than"},
        {BASE "&platform_log_sha256=0123&tether_log_sha256=" HASH_B, "characters"},
        {BASE "&platform_log_sha256=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789"
              "abcdef&tether_log_sha256=" HASH_B,
         "characters"},
        /* A log is raw base64url without padding: never escaped. */
        {BASE HASHES "&tether_log=AQ%49D", "base64url"},
        {BASE HASHES "&tether_log=AQ==", "base64url"},
        {BASE HASHES "&tether_log=AQ+D", "base64url"},
        {BASE HASHES "&tether_log=AQIDB", "base64url"},
        {BASE HASHES "&tether_log=AQID&tether_log=AQID", "more than once"},
        {BASE HASHES HASHES, "more than once"},
    };
    char why[TETHER_TOKEN_FORM_WHY_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        tether_token_form_t *form = parse(refused[i].body, TETHER_ERR_PARSE, why, sizeof(why));

        if (strstr(why, refused[i].why) == NULL)
            fail_msg("\"%.300s\": \"%s\" does not say \"%s\"", refused[i].body, why,
                     refused[i].why);
        assert_null(form->tether_log.data);
        assert_int_equal(form->platform_log_sha256[0], '\0');
        free(form);
    }
}

/* Each log up to the encoding of its wire bound, and the largest body
 * within TETHER_TOKEN_FORM_MAX_BODY. */
static void measured_boot_bounds(void **state)
{
    char why[TETHER_TOKEN_FORM_WHY_SIZE];
    size_t size = TETHER_TOKEN_FORM_MAX_BODY + 64, used;
    char *body = malloc(size);
    tether_token_form_t *form;

    (void)state;
    assert_non_null(body);
    used = (size_t)snprintf(body, size, "%s", BASE HASHES "&platform_log=");
    memset(body + used, 'A', TETHER_TOKEN_FORM_PLATFORM_LOG_MAX);
    used += TETHER_TOKEN_FORM_PLATFORM_LOG_MAX;
    used += (size_t)snprintf(body + used, size - used, "&tether_log=");
    memset(body + used, 'A', TETHER_TOKEN_FORM_TETHER_LOG_MAX);
    body[used + TETHER_TOKEN_FORM_TETHER_LOG_MAX] = '\0';
    assert_true(strlen(body) <= TETHER_TOKEN_FORM_MAX_BODY);
    form = parse(body, TETHER_OK, why, sizeof(why));
    assert_int_equal(form->platform_log.len, TETHER_TOKEN_FORM_PLATFORM_LOG_MAX);
    assert_int_equal(form->tether_log.len, TETHER_TOKEN_FORM_TETHER_LOG_MAX);
    free(form);
    /* One character more in either: refused, naming it. */
    strcat(body, "A");
    free(parse(body, TETHER_ERR_PARSE, why, sizeof(why)));
    assert_non_null(strstr(why, "tether_log is longer"));
    used = (size_t)snprintf(body, size, "%s", BASE HASHES "&platform_log=");
    memset(body + used, 'A', TETHER_TOKEN_FORM_PLATFORM_LOG_MAX + 1);
    body[used + TETHER_TOKEN_FORM_PLATFORM_LOG_MAX + 1] = '\0';
    free(parse(body, TETHER_ERR_PARSE, why, sizeof(why)));
    assert_non_null(strstr(why, "platform_log is longer"));
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agent_and_curl_forms),
        cmocka_unit_test(refusals),
        cmocka_unit_test(bounds),
        cmocka_unit_test(reasons_hold_no_values),
        cmocka_unit_test(measured_boot_parameters),
        cmocka_unit_test(measured_boot_refusals),
        cmocka_unit_test(measured_boot_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
