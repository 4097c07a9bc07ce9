/*
 * The agent's DPoP proofs, signed with the device key on the fake TPM and
 * checked with lib's verifier against the thumbprint the fleet puts in
 * cnf.jkt; and the per-token counts of what the agent did with a token.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <tss2/tss2_common.h>
#include <tss2/tss2_tpm2_types.h>

#include "dpop_signer.h"
#include "enroll_device.h"
#include "token_counts.h"
#include "tether/base64url.h"
#include "tether/jose.h"
#include "tether/tpm_fake.h"

#define COUNTER 0x01000100u
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ0b2tlbi1vbmUifQ.c2ln"
#define URL "https://gate.example/v1/chat/completions"
#define NOW 1700000000

typedef struct fixture {
    tether_tpm_t tpm;
    pthread_mutex_t lock;
    tether_enroll_request_t req;
    tether_agent_state_t state;
    tether_dpop_signer_t signer;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P256, .seed = 9};

    if (f == NULL)
        return -1;
    f->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    tether_tpm_init(&f->tpm);
    f->tpm.retry_delay_ms = 0;
    tether_dpop_signer_init(&f->signer);
    if (tether_tpm_open_fake(&f->tpm, &config) != TETHER_OK ||
        tether_agent_enroll_prepare(&f->tpm, TETHER_EK_ANY, COUNTER, &f->req, &f->state) !=
            TETHER_OK ||
        tether_dpop_signer_setup(&f->signer, &f->tpm, &f->lock, &f->state) != TETHER_OK ||
        tether_jwk_thumbprint_key(&f->signer.public_key, f->jkt, sizeof(f->jkt)) != TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    tether_dpop_signer_free(&f->signer);
    tether_tpm_close(&f->tpm);
    tether_enroll_request_wipe(&f->req);
    free(f);
    return 0;
}

/* Verifies proof as a gateway would for POST URL with TOKEN. */
static tether_dpop_failure_t verify(const fixture_t *f, const char *proof,
                                    tether_dpop_result_t *result)
{
    tether_dpop_expect_t expect = {.htm = "POST",
                                   .htu = URL,
                                   .access_token = TOKEN,
                                   .access_token_len = strlen(TOKEN),
                                   .jkt = f->jkt,
                                   .now = NOW,
                                   .max_age = 60,
                                   .leeway = 5};
    tether_dpop_failure_t failure = TETHER_DPOP_FAILURE__COUNT;
    char why[128];

    if (tether_dpop_verify(proof, strlen(proof), &expect, result, &failure, why, sizeof(why)) !=
        TETHER_OK)
        print_message("refused: %s\n", why);
    return failure;
}

static tether_status_t sign(fixture_t *f, const char *nonce, char *out, size_t out_size)
{
    size_t len;
    char why[128];

    return tether_dpop_signer_sign(&f->signer, "POST", URL, nonce, TOKEN, strlen(TOKEN), NOW,
                                   out, out_size, &len, why, sizeof(why));
}

static void proof_verifies_against_the_device_key(void **state)
{
    fixture_t *f = *state;
    char first[TETHER_DPOP_MAX_LEN + 1], second[TETHER_DPOP_MAX_LEN + 1];
    tether_dpop_result_t r1, r2;

    assert_int_equal(sign(f, NULL, first, sizeof(first)), TETHER_OK);
    assert_int_equal(verify(f, first, &r1), TETHER_DPOP_OK);
    assert_string_equal(r1.nonce, "");
    assert_int_equal(r1.iat, NOW);
    /* The key stays loaded: one object in the TPM, whatever the count. */
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 1);
    assert_int_equal(sign(f, "server-nonce-1", second, sizeof(second)), TETHER_OK);
    assert_int_equal(verify(f, second, &r2), TETHER_DPOP_OK);
    assert_string_equal(r2.nonce, "server-nonce-1");
    assert_string_not_equal(r1.jti, r2.jti); /* fresh per proof */
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 1);
    tether_dpop_signer_free(&f->signer);
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);
}

/* A failed signature says why, leaves nothing loaded, and the next proof
 * loads the key again. */
static void tpm_failure_reloads_the_key(void **state)
{
    fixture_t *f = *state;
    char proof[TETHER_DPOP_MAX_LEN + 1], why[128];
    size_t len = 1;
    tether_dpop_result_t r;

    assert_int_equal(sign(f, NULL, proof, sizeof(proof)), TETHER_OK);
    tether_tpm_fake_inject(&f->tpm, TETHER_FAKE_OP_SIGN, TPM2_RC_LOCKOUT, 1);
    assert_int_equal(tether_dpop_signer_sign(&f->signer, "POST", URL, NULL, TOKEN, strlen(TOKEN),
                                             NOW, proof, sizeof(proof), &len, why, sizeof(why)),
                     TETHER_ERR_TPM_LOCKOUT);
    assert_int_equal(len, 0);
    assert_string_equal(proof, "");
    assert_true(why[0] != '\0');
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);
    tether_tpm_fake_inject(&f->tpm, TETHER_FAKE_OP_LOAD_KEY, TPM2_RC_LOCKOUT, 1);
    assert_int_equal(sign(f, NULL, proof, sizeof(proof)), TETHER_ERR_TPM_LOCKOUT);
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);
    assert_int_equal(sign(f, NULL, proof, sizeof(proof)), TETHER_OK);
    assert_int_equal(verify(f, proof, &r), TETHER_DPOP_OK);
}

/* The signer sends no TPM command while another thread (the exchange)
 * holds the TPM mutex: its proof comes only once the lock is released. */
typedef struct signing_thread {
    fixture_t *f;
    volatile int done;
    tether_status_t rc;
} signing_thread_t;

static void *sign_in_thread(void *arg)
{
    signing_thread_t *t = arg;
    char proof[TETHER_DPOP_MAX_LEN + 1];

    t->rc = sign(t->f, NULL, proof, sizeof(proof));
    t->done = 1;
    return NULL;
}

static void sign_waits_for_the_tpm_lock(void **state)
{
    signing_thread_t t = {.f = *state, .done = 0, .rc = TETHER_ERR_STATE};
    pthread_t thread;
    struct timespec wait = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};

    pthread_mutex_lock(&t.f->lock);
    assert_int_equal(pthread_create(&thread, NULL, sign_in_thread, &t), 0);
    nanosleep(&wait, NULL);
    assert_int_equal(t.done, 0);
    assert_int_equal(tether_tpm_fake_loaded_objects(&t.f->tpm), 0);
    pthread_mutex_unlock(&t.f->lock);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(t.done, 1);
    assert_int_equal(t.rc, TETHER_OK);
}

/* ---- per-token counts ------------------------------------------------- */

static void counts_per_token(void **state)
{
    tether_token_counts_t c;
    const tether_token_count_t *e;

    (void)state;
    tether_token_counts_init(&c);
    assert_int_equal(tether_token_counts_add(&c, "a", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, "a", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, "a", TETHER_TOKEN_COUNT_REQUEST), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, "b", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_non_null(e = tether_token_counts_find(&c, "a"));
    assert_int_equal(e->proofs, 2);
    assert_int_equal(e->requests, 1);
    assert_non_null(e = tether_token_counts_find(&c, "b"));
    assert_int_equal(e->proofs, 1);
    assert_int_equal(e->requests, 0);
    assert_null(tether_token_counts_find(&c, "c"));
    assert_int_equal(c.count, 2);
}

static void counts_refuse_bad_jti(void **state)
{
    tether_token_counts_t c;
    char long_jti[TETHER_TOKEN_JTI_MAX + 2];

    (void)state;
    tether_token_counts_init(&c);
    memset(long_jti, 'j', sizeof(long_jti) - 1);
    long_jti[sizeof(long_jti) - 1] = '\0';
    assert_int_equal(tether_token_counts_add(&c, "", TETHER_TOKEN_COUNT_PROOF),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_token_counts_add(&c, NULL, TETHER_TOKEN_COUNT_PROOF),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_token_counts_add(&c, long_jti, TETHER_TOKEN_COUNT_PROOF),
                     TETHER_ERR_INVALID_ARGUMENT);
    long_jti[TETHER_TOKEN_JTI_MAX] = '\0';
    assert_int_equal(tether_token_counts_add(&c, long_jti, TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_int_equal(c.count, 1);
}

/* Bounded: the token counted longest ago goes first; counting a token
 * again keeps it. */
static void counts_forget_the_least_recent(void **state)
{
    tether_token_counts_t c;
    char jti[8];

    (void)state;
    tether_token_counts_init(&c);
    for (int i = 0; i < TETHER_TOKEN_COUNTS_MAX; i++) {
        snprintf(jti, sizeof(jti), "t%d", i);
        assert_int_equal(tether_token_counts_add(&c, jti, TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    }
    assert_int_equal(tether_token_counts_add(&c, "t0", TETHER_TOKEN_COUNT_REQUEST), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, "new", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_int_equal(c.count, TETHER_TOKEN_COUNTS_MAX);
    assert_null(tether_token_counts_find(&c, "t1"));
    assert_non_null(tether_token_counts_find(&c, "t0"));
    assert_int_equal(tether_token_counts_find(&c, "t0")->proofs, 1);
    assert_int_equal(tether_token_counts_find(&c, "t0")->requests, 1);
    assert_string_equal(c.entries[TETHER_TOKEN_COUNTS_MAX - 1].jti, "new");
    assert_string_equal(c.entries[0].jti, "t2");
}

static void counts_saturate(void **state)
{
    tether_token_counts_t c;

    (void)state;
    tether_token_counts_init(&c);
    assert_int_equal(tether_token_counts_add(&c, "a", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    c.entries[0].proofs = UINT64_MAX;
    assert_int_equal(tether_token_counts_add(&c, "a", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_true(c.entries[0].proofs == UINT64_MAX);
}

static void counts_as_json(void **state)
{
    tether_token_counts_t c;
    cJSON *obj = cJSON_CreateObject();
    char *json;

    (void)state;
    tether_token_counts_init(&c);
    assert_int_equal(tether_token_counts_add(&c, "a", TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, "b", TETHER_TOKEN_COUNT_REQUEST), TETHER_OK);
    assert_int_equal(tether_token_counts_to_json(&c, obj, "tokens"), TETHER_OK);
    json = cJSON_PrintUnformatted(obj);
    assert_string_equal(json, "{\"tokens\":[{\"jti\":\"a\",\"proofs\":1,\"requests\":0},"
                              "{\"jti\":\"b\",\"proofs\":0,\"requests\":1}]}");
    cJSON_free(json);
    cJSON_Delete(obj);
}

static void jti_of_a_token(void **state)
{
    char jti[TETHER_TOKEN_JTI_MAX + 1];
    char token[256], payload[128];

    (void)state;
    assert_int_equal(tether_token_jti(TOKEN, strlen(TOKEN), jti), TETHER_OK);
    assert_string_equal(jti, "token-one");
    /* No jti, a jti that is not a string or holds a space, not a JWS. */
    const char *claims[] = {"{\"sub\":\"d\"}", "{\"jti\":7}", "{\"jti\":\"a b\"}",
                            "{\"jti\":\"\"}", "[1]"};
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        assert_int_equal(tether_base64url_encode((const uint8_t *)claims[i], strlen(claims[i]),
                                                 payload, sizeof(payload), NULL),
                         TETHER_OK);
        snprintf(token, sizeof(token), "eyJhbGciOiJFUzI1NiJ9.%s.c2ln", payload);
        assert_int_equal(tether_token_jti(token, strlen(token), jti), TETHER_ERR_PARSE);
        assert_string_equal(jti, "");
    }
    assert_int_equal(tether_token_jti("no-dots", 7, jti), TETHER_ERR_PARSE);
    assert_int_equal(tether_token_jti("a.b", 3, jti), TETHER_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(proof_verifies_against_the_device_key, setup, teardown),
        cmocka_unit_test_setup_teardown(tpm_failure_reloads_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(sign_waits_for_the_tpm_lock, setup, teardown),
        cmocka_unit_test(counts_per_token),
        cmocka_unit_test(counts_refuse_bad_jti),
        cmocka_unit_test(counts_forget_the_least_recent),
        cmocka_unit_test(counts_saturate),
        cmocka_unit_test(counts_as_json),
        cmocka_unit_test(jti_of_a_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
