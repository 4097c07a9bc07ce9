/* tether-gate's authorization (gateway/src/auth/access.h) and its parts:
 * the bounded expiring table (the replay cache), the revocation lists, and
 * the whole check with tokens and proofs made by lib, without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "access.h"
#include "gate_table.h"
#include "revocations.h"
#include "tether/dpop.h"
#include "tether/jose.h"

#define NOW 1700000000
#define MONO 1000
#define FLEET "https://fleet.example:8443"
#define HTU "http://127.0.0.1:8480/v1/chat/completions"

/* ---- the table --------------------------------------------------------- */

static void key_of(unsigned i, uint8_t key[TETHER_GATE_TABLE_KEY_SIZE])
{
    /* Keys are digests; these share their first bytes, so they land in one
     * window, as an attacker's keys never could. */
    memset(key, 0, TETHER_GATE_TABLE_KEY_SIZE);
    key[31] = (uint8_t)i;
    key[30] = (uint8_t)(i >> 8);
}

static void test_table_replay_semantics(void **state)
{
    tether_gate_table_t table;
    uint8_t key[TETHER_GATE_TABLE_KEY_SIZE];

    (void)state;
    tether_gate_table_init(&table);
    assert_int_equal(tether_gate_table_open(&table, 1, 0), TETHER_OK);
    key_of(1, key);
    assert_int_equal(tether_gate_table_add(&table, key, NOW + 60, NOW, NULL), TETHER_GATE_TABLE_ADDED);
    assert_int_equal(tether_gate_table_add(&table, key, NOW + 60, NOW, NULL), TETHER_GATE_TABLE_HELD);
    /* Held until its expiry, not a second less. */
    assert_int_equal(tether_gate_table_add(&table, key, NOW + 120, NOW + 59, NULL),
                     TETHER_GATE_TABLE_HELD);
    assert_true(tether_gate_table_get(&table, key, NOW + 59, NULL));
    assert_false(tether_gate_table_get(&table, key, NOW + 60, NULL));
    assert_int_equal(tether_gate_table_add(&table, key, NOW + 120, NOW + 60, NULL),
                     TETHER_GATE_TABLE_ADDED);
    tether_gate_table_free(&table);
}

static void test_table_full_refuses_never_forgets(void **state)
{
    tether_gate_table_t table;
    uint8_t key[TETHER_GATE_TABLE_KEY_SIZE];

    (void)state;
    tether_gate_table_init(&table);
    assert_int_equal(tether_gate_table_open(&table, 1, 0), TETHER_OK);
    assert_int_equal(table.capacity, TETHER_GATE_TABLE_PROBES);
    for (unsigned i = 0; i < TETHER_GATE_TABLE_PROBES; i++) {
        key_of(i, key);
        assert_int_equal(tether_gate_table_add(&table, key, NOW + 60, NOW, NULL),
                         TETHER_GATE_TABLE_ADDED);
    }
    key_of(TETHER_GATE_TABLE_PROBES, key);
    assert_int_equal(tether_gate_table_add(&table, key, NOW + 60, NOW, NULL), TETHER_GATE_TABLE_FULL);
    assert_int_equal(tether_gate_table_put(&table, key, NOW + 60, NOW, NULL), TETHER_ERR_TOO_LARGE);
    /* Every key stored is still held: full refuses, it never forgets. */
    for (unsigned i = 0; i < TETHER_GATE_TABLE_PROBES; i++) {
        key_of(i, key);
        assert_int_equal(tether_gate_table_add(&table, key, NOW + 60, NOW + 1, NULL),
                         TETHER_GATE_TABLE_HELD);
    }
    /* Once they expire, their slots are reused. */
    key_of(TETHER_GATE_TABLE_PROBES, key);
    assert_int_equal(tether_gate_table_add(&table, key, NOW + 120, NOW + 60, NULL),
                     TETHER_GATE_TABLE_ADDED);
    tether_gate_table_free(&table);
}

static void test_table_values(void **state)
{
    tether_gate_table_t table;
    uint8_t key[TETHER_GATE_TABLE_KEY_SIZE];
    uint32_t value = 7, out = 0;

    (void)state;
    tether_gate_table_init(&table);
    assert_int_equal(tether_gate_table_open(&table, 100, sizeof(value)), TETHER_OK);
    key_of(3, key);
    assert_false(tether_gate_table_get(&table, key, NOW, &out));
    assert_int_equal(tether_gate_table_put(&table, key, NOW + 10, NOW, &value), TETHER_OK);
    value = 8;
    assert_int_equal(tether_gate_table_put(&table, key, NOW + 10, NOW, &value), TETHER_OK);
    assert_true(tether_gate_table_get(&table, key, NOW, &out));
    assert_int_equal(out, 8);
    tether_gate_table_free(&table);
    tether_gate_table_free(NULL);
}

/* ---- revocations ------------------------------------------------------- */

static tether_status_t apply_page(tether_gate_revocations_t *r, const char *json, int64_t mono)
{
    cJSON *page = cJSON_Parse(json);
    tether_status_t rc;

    assert_non_null(page);
    rc = tether_gate_revocations_apply(r, page, NOW, mono);
    cJSON_Delete(page);
    return rc;
}

/* When the entries below were written, and a token issued before. */
#define REVOKED_AT 1700000000
#define ISSUED (REVOKED_AT - 10)

static void test_revocations(void **state)
{
    tether_gate_revocations_t r;

    (void)state;
    tether_gate_revocations_init(&r);
    assert_int_equal(tether_gate_revocations_open(&r, 1024, 60), TETHER_OK);
    /* Never reached: stale. */
    assert_int_equal(tether_gate_revocations_check(&r, "dev_a", "j1", ISSUED, NOW, MONO),
                     TETHER_GATE_FEED_STALE);
    assert_int_equal(apply_page(&r, "{\"revocations\":[],\"last_seq\":0}", MONO), TETHER_OK);
    assert_int_equal(tether_gate_revocations_check(&r, "dev_a", "j1", ISSUED, NOW, MONO),
                     TETHER_GATE_NOT_REVOKED);
    assert_int_equal(apply_page(&r,
                                "{\"revocations\":[{\"seq\":1,\"device_id\":\"dev_a\",\"jti\":null,"
                                "\"created_at\":1700000000},{\"seq\":2,\"device_id\":\"dev_b\","
                                "\"jti\":\"j2\",\"created_at\":1700000000}],\"last_seq\":2}",
                                MONO + 1),
                     TETHER_OK);
    assert_int_equal(tether_gate_revocations_last_seq(&r), 2);
    assert_int_equal(tether_gate_revocations_check(&r, "dev_a", "j9", ISSUED, NOW, MONO + 1),
                     TETHER_GATE_REVOKED_DEVICE);
    assert_int_equal(tether_gate_revocations_check(&r, "dev_b", "j2", ISSUED, NOW, MONO + 1),
                     TETHER_GATE_REVOKED_TOKEN);
    assert_int_equal(tether_gate_revocations_check(&r, "dev_b", "j3", ISSUED, NOW, MONO + 1),
                     TETHER_GATE_NOT_REVOKED);
    /* A revoked token stays listed longer than any token lives. */
    assert_int_equal(tether_gate_revocations_check(&r, "dev_b", "j2", ISSUED,
                                                   NOW + TETHER_GATE_REVOKED_TOKEN_SECONDS - 1,
                                                   MONO + 1),
                     TETHER_GATE_REVOKED_TOKEN);
    /* A device revoked at T refuses the tokens issued at or before T, and
     * passes those the fleet issued after (it reinstated the device), also
     * when the same entries are read again from the start. */
    assert_int_equal(tether_gate_revocations_check(&r, "dev_a", "j8", REVOKED_AT, NOW, MONO + 1),
                     TETHER_GATE_REVOKED_DEVICE);
    assert_int_equal(
        tether_gate_revocations_check(&r, "dev_a", "j8", REVOKED_AT + 1, NOW, MONO + 1),
        TETHER_GATE_NOT_REVOKED);
    /* Revoked again later: the latest time counts, an older entry read
     * after it does not bring the time back. */
    assert_int_equal(apply_page(&r,
                                "{\"revocations\":[{\"seq\":3,\"device_id\":\"dev_a\",\"jti\":null,"
                                "\"created_at\":1700000100},{\"seq\":4,\"device_id\":\"dev_a\","
                                "\"jti\":null,\"created_at\":1700000000}],\"last_seq\":4}",
                                MONO + 1),
                     TETHER_OK);
    assert_int_equal(
        tether_gate_revocations_check(&r, "dev_a", "j8", REVOKED_AT + 100, NOW, MONO + 1),
        TETHER_GATE_REVOKED_DEVICE);
    assert_int_equal(
        tether_gate_revocations_check(&r, "dev_a", "j8", REVOKED_AT + 101, NOW, MONO + 1),
        TETHER_GATE_NOT_REVOKED);
    /* Malformed pages (no device, no created_at), and a last_seq going
     * back, apply nothing. */
    assert_int_equal(apply_page(&r,
                                "{\"revocations\":[{\"seq\":5,\"jti\":null,\"created_at\":1}],"
                                "\"last_seq\":5}",
                                MONO + 2),
                     TETHER_ERR_PARSE);
    assert_int_equal(apply_page(&r,
                                "{\"revocations\":[{\"seq\":5,\"device_id\":\"dev_c\",\"jti\":null}],"
                                "\"last_seq\":5}",
                                MONO + 2),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_revocations_check(&r, "dev_c", "j4", ISSUED, NOW, MONO + 2),
                     TETHER_GATE_NOT_REVOKED);
    assert_int_equal(apply_page(&r, "{\"revocations\":[],\"last_seq\":3}", MONO + 2),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_revocations_last_seq(&r), 4);
    /* No contact for longer than the staleness: everything is refused. */
    assert_int_equal(tether_gate_revocations_check(&r, "dev_c", "j4", ISSUED, NOW, MONO + 61),
                     TETHER_GATE_NOT_REVOKED);
    assert_int_equal(tether_gate_revocations_check(&r, "dev_c", "j4", ISSUED, NOW, MONO + 62),
                     TETHER_GATE_FEED_STALE);
    tether_gate_revocations_free(&r);
}

/* ---- the whole check ---------------------------------------------------- */

typedef struct fixture {
    tether_gate_config_t config;
    tether_gate_fleet_keys_t keys;
    tether_gate_revocations_t revocations;
    tether_gate_access_t access;
    tether_ec_key_t issuer, device, other;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
    char token[TETHER_JWS_MAX_LEN + 1], authorization[TETHER_JWS_MAX_LEN + 16];
    char proof[TETHER_DPOP_MAX_LEN + 1];
    tether_gate_identity_t identity;
    tether_gate_refusal_t refusal;
} fixture_t;

static void set_issuer_jwks(fixture_t *f, const tether_ec_key_t *key)
{
    cJSON *jwks = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(jwks, "keys"), *jwk = NULL;

    assert_int_equal(tether_jwk_write(key, &jwk), TETHER_OK);
    cJSON_AddStringToObject(jwk, "kid", "k1");
    cJSON_AddItemToArray(list, jwk);
    assert_int_equal(tether_gate_fleet_keys_set(&f->keys, jwks), TETHER_OK);
    cJSON_Delete(jwks);
}

static int setup(void **state)
{
    static fixture_t f;
    cJSON *page;

    memset(&f, 0, sizeof(f));
    tether_gate_config_init(&f.config);
    strcpy(f.config.fleet, FLEET);
    f.config.policy_count = 2;
    tether_gate_config_policy_init(&f.config.policies[0], "default");
    tether_gate_config_policy_init(&f.config.policies[1], "scripts");
    f.config.policies[1].allow_bearer = true;
    tether_gate_fleet_keys_init(&f.keys);
    tether_gate_revocations_init(&f.revocations);
    tether_gate_access_init(&f.access);
    tether_ec_key_init(&f.issuer);
    tether_ec_key_init(&f.device);
    tether_ec_key_init(&f.other);
    if (tether_ec_key_generate(&f.issuer) != TETHER_OK ||
        tether_ec_key_generate(&f.device) != TETHER_OK ||
        tether_ec_key_generate(&f.other) != TETHER_OK ||
        tether_jwk_thumbprint_key(&f.device, f.jkt, sizeof(f.jkt)) != TETHER_OK ||
        tether_gate_fleet_keys_open(&f.keys, FLEET) != TETHER_OK ||
        tether_gate_revocations_open(&f.revocations, 1024, 60) != TETHER_OK ||
        tether_gate_access_open(&f.access, &f.config, &f.keys, &f.revocations) != TETHER_OK)
        return -1;
    set_issuer_jwks(&f, &f.issuer);
    page = cJSON_Parse("{\"revocations\":[{\"seq\":1,\"device_id\":\"dev_revoked\",\"jti\":null,"
                       "\"created_at\":1700000000},{\"seq\":2,\"device_id\":\"dev_a\","
                       "\"jti\":\"revoked-jti\",\"created_at\":1700000000}],"
                       "\"last_seq\":2}");
    if (page == NULL ||
        tether_gate_revocations_apply(&f.revocations, page, NOW, MONO) != TETHER_OK)
        return -1;
    cJSON_Delete(page);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    tether_gate_access_free(&f->access);
    tether_gate_revocations_free(&f->revocations);
    tether_gate_fleet_keys_free(&f->keys);
    tether_ec_key_free(&f->issuer);
    tether_ec_key_free(&f->device);
    tether_ec_key_free(&f->other);
    return 0;
}

/* A token of the fleet for sub/jti with the given policy and audience,
 * bound to the device key, in f->token and f->authorization; sources, when
 * not NULL, is the JSON of its tether.sources claim. */
static void make_token_with_sources(fixture_t *f, const char *sub, const char *jti,
                                    const char *policy, const char *scheme, const char *sources)
{
    cJSON *claims = cJSON_CreateObject(), *cnf, *tether, *models;

    cJSON_AddStringToObject(claims, "iss", FLEET);
    cJSON_AddStringToObject(claims, "sub", sub);
    cJSON_AddStringToObject(claims, "aud", "tether-gate");
    cJSON_AddStringToObject(claims, "client_id", sub);
    cJSON_AddStringToObject(claims, "jti", jti);
    cJSON_AddNumberToObject(claims, "iat", NOW - 10);
    cJSON_AddNumberToObject(claims, "exp", NOW + 300);
    cnf = cJSON_AddObjectToObject(claims, "cnf");
    cJSON_AddStringToObject(cnf, "jkt", f->jkt);
    tether = cJSON_AddObjectToObject(claims, "tether");
    cJSON_AddStringToObject(tether, "policy", policy);
    models = cJSON_AddArrayToObject(tether, "models");
    cJSON_AddItemToArray(models, cJSON_CreateString("gpt-4o-mini"));
    cJSON_AddItemToArray(models, cJSON_CreateString("llama-*"));
    if (sources != NULL)
        cJSON_AddItemToObject(tether, "sources", cJSON_Parse(sources));
    assert_int_equal(tether_jwt_sign("k1", claims, &f->issuer, f->token, sizeof(f->token), NULL),
                     TETHER_OK);
    cJSON_Delete(claims);
    snprintf(f->authorization, sizeof(f->authorization), "%s %s", scheme, f->token);
}

static void make_token(fixture_t *f, const char *sub, const char *jti, const char *policy,
                       const char *scheme)
{
    make_token_with_sources(f, sub, jti, policy, scheme, NULL);
}

static void make_proof(fixture_t *f, const tether_ec_key_t *key, const char *jti,
                       const char *nonce)
{
    tether_dpop_claims_t c = {
        .htm = "POST",
        .htu = HTU,
        .jti = jti,
        .iat = NOW,
        .access_token = f->token,
        .access_token_len = strlen(f->token),
        .nonce = nonce,
    };
    assert_int_equal(tether_dpop_sign(&c, key, f->proof, sizeof(f->proof), NULL), TETHER_OK);
}

static tether_status_t check_at(fixture_t *f, const char *proof, int64_t now, int64_t mono)
{
    tether_gate_access_request_t request = {f->authorization, proof, "POST", HTU};

    return tether_gate_access_check(&f->access, &request, now, mono, &f->identity, &f->refusal);
}

static tether_status_t check(fixture_t *f, const char *proof)
{
    return check_at(f, proof, NOW, MONO);
}

static void assert_refused(fixture_t *f, tether_status_t rc, unsigned status, const char *code)
{
    assert_int_equal(rc, TETHER_ERR_VERIFY);
    assert_int_equal(f->refusal.status, status);
    assert_string_equal(f->refusal.tether_error, code);
    assert_non_null(f->refusal.error);
    assert_string_equal(f->identity.device, "");
}

static void test_access_passes_with_identity(void **state)
{
    fixture_t *f = *state;

    make_token(f, "dev_a", "jti-1", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_int_equal(check(f, f->proof), TETHER_OK);
    assert_string_equal(f->identity.device, "dev_a");
    assert_string_equal(f->identity.jti, "jti-1");
    assert_string_equal(f->identity.jkt, f->jkt);
    assert_string_equal(f->identity.policy, "default");
    assert_string_equal(f->identity.models, "gpt-4o-mini,llama-*");
    assert_int_equal(f->identity.exp, NOW + 300);
    assert_false(f->identity.bearer);
}

static void test_access_token_verified_once(void **state)
{
    fixture_t *f = *state;

    make_token(f, "dev_a", "jti-2", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_int_equal(check(f, f->proof), TETHER_OK);
    /* The issuer's key leaves the set: the cached token still passes (the
     * proof is still verified: a new one is needed)... */
    set_issuer_jwks(f, &f->other);
    make_proof(f, &f->device, "p2", NULL);
    assert_int_equal(check(f, f->proof), TETHER_OK);
    /* ...until it expires (exp + leeway), when it is verified again. */
    make_proof(f, &f->device, "p3", NULL);
    assert_refused(f, check_at(f, f->proof, NOW + 300 + 5, MONO), 401, "token_bad_signature");
    set_issuer_jwks(f, &f->issuer);
}

static void test_access_refusals(void **state)
{
    fixture_t *f = *state;

    make_token(f, "dev_a", "jti-3", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_refused(f, check(f, NULL), 401, "dpop_missing");
    assert_string_equal(f->refusal.error, "invalid_dpop_proof");
    assert_int_equal(check(f, f->proof), TETHER_OK);
    assert_refused(f, check(f, f->proof), 401, "dpop_replayed");
    make_proof(f, &f->other, "p2", NULL);
    assert_refused(f, check(f, f->proof), 401, "dpop_wrong_key");
    /* Another token of the same device: its own replay key space. */
    make_token(f, "dev_a", "jti-4", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_int_equal(check(f, f->proof), TETHER_OK);
    /* Scheme and shape of Authorization. */
    strcpy(f->authorization, "Basic dXNlcjpwYXNz");
    assert_refused(f, check(f, f->proof), 401, "token_malformed");
    strcpy(f->authorization, "DPoP ");
    assert_refused(f, check(f, f->proof), 401, "token_malformed");
    strcpy(f->authorization, "DPoP a b");
    assert_refused(f, check(f, f->proof), 401, "token_malformed");
    {
        tether_gate_access_request_t request = {NULL, f->proof, "POST", HTU};
        assert_refused(f, tether_gate_access_check(&f->access, &request, NOW, MONO, &f->identity,
                                                   &f->refusal),
                       401, "token_missing");
    }
    /* A bearer token where the policy does not allow it. */
    make_token(f, "dev_a", "jti-5", "default", "Bearer");
    assert_refused(f, check(f, NULL), 401, "bearer_not_allowed");
    /* Unknown policy. */
    make_token(f, "dev_a", "jti-6", "premium", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_refused(f, check(f, f->proof), 403, "policy_unknown");
}

static void test_access_bearer_where_allowed(void **state)
{
    fixture_t *f = *state;

    make_token(f, "dev_a", "jti-7", "scripts", "bearer");
    assert_int_equal(check(f, NULL), TETHER_OK);
    assert_true(f->identity.bearer);
    assert_string_equal(f->identity.policy, "scripts");
}

static void test_access_revocation(void **state)
{
    fixture_t *f = *state;

    make_token(f, "dev_revoked", "jti-8", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_refused(f, check(f, f->proof), 401, "device_revoked");
    make_token(f, "dev_a", "revoked-jti", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_refused(f, check(f, f->proof), 401, "token_revoked");
    make_token(f, "dev_a", "jti-9", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_refused(f, check_at(f, f->proof, NOW, MONO + 61), 503, "revocation_feed_stale");
    assert_string_equal(f->refusal.error, "temporarily_unavailable");
}

static void test_access_nonce(void **state)
{
    fixture_t *f = *state;
    char nonce[TETHER_NONCE_TEXT_LEN + 1];

    f->config.dpop_nonce = true;
    make_token(f, "dev_a", "jti-10", "default", "DPoP");
    make_proof(f, &f->device, "p1", NULL);
    assert_refused(f, check(f, f->proof), 401, "dpop_nonce_required");
    assert_string_equal(f->refusal.error, "use_dpop_nonce");
    assert_true(f->refusal.nonce);
    make_proof(f, &f->device, "p2", "bm90LWEtbm9uY2U");
    assert_refused(f, check(f, f->proof), 401, "dpop_nonce_required");
    assert_int_equal(tether_gate_access_nonce(&f->access, NOW - 10, nonce, sizeof(nonce)), TETHER_OK);
    make_proof(f, &f->device, "p3", nonce);
    assert_int_equal(check(f, f->proof), TETHER_OK);
    /* Nonces expire. */
    assert_int_equal(tether_gate_access_nonce(&f->access, NOW - TETHER_GATE_NONCE_TTL, nonce,
                                              sizeof(nonce)),
                     TETHER_OK);
    make_proof(f, &f->device, "p4", nonce);
    assert_refused(f, check(f, f->proof), 401, "dpop_nonce_required");
    f->config.dpop_nonce = false;
}

/* tether.sources is read strictly: 1 to 32 canonical networks, ascending;
 * anything else makes the token invalid (never half read). */
static void test_access_sources_claim(void **state)
{
    static const char *const malformed[] = {
        "[]",                              /* present but empty */
        "\"10.0.0.0/8\"",                  /* not an array */
        "[\"10.0.0.0\"]",                  /* no prefix */
        "[\"10.0.0.1/8\"]",                /* host bits */
        "[\"10.0.0.0/08\"]",               /* not canonical */
        "[\"10.0.0.0/33\"]",               /* prefix above 32 */
        "[\"FD00::/8\"]",                  /* not inet_ntop's text */
        "[\"fd00::/8\",\"10.0.0.0/8\"]",   /* not ascending (IPv4 first) */
        "[\"10.0.0.0/8\",\"10.0.0.0/8\"]", /* twice */
        "[7]",
    };
    fixture_t *f = *state;
    char jti[32], many[40 * 34] = "[";

    make_token_with_sources(f, "dev_a", "jti-s1", "default", "DPoP",
                            "[\"10.0.0.0/8\",\"192.0.2.0/24\",\"fd00::/8\"]");
    make_proof(f, &f->device, "p1", NULL);
    assert_int_equal(check(f, f->proof), TETHER_OK);
    assert_int_equal(f->identity.source_count, 3);
    assert_int_equal(f->identity.sources[2].prefix, 8);
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        snprintf(jti, sizeof(jti), "jti-s-bad-%zu", i);
        make_token_with_sources(f, "dev_a", jti, "default", "DPoP", malformed[i]);
        make_proof(f, &f->device, "p1", NULL);
        assert_refused(f, check(f, f->proof), 401, "token_invalid");
    }
    /* 32 networks pass; 33 do not. */
    for (unsigned i = 0; i < 33; i++) {
        size_t n = strlen(many);

        snprintf(many + n, sizeof(many) - n, "%s\"10.%u.0.0/16\"", i == 0 ? "" : ",", i);
        if (i == 31 || i == 32) {
            snprintf(jti, sizeof(jti), "jti-s-many-%u", i);
            strcat(many, "]");
            make_token_with_sources(f, "dev_a", jti, "default", "DPoP", many);
            make_proof(f, &f->device, "p1", NULL);
            if (i == 31)
                assert_int_equal(check(f, f->proof), TETHER_OK);
            else
                assert_refused(f, check(f, f->proof), 401, "token_invalid");
            many[strlen(many) - 1] = '\0';
        }
    }
}

/* The client's address against the token's sources: IPv4 and IPv6, the
 * edges of a prefix, /0 and full-length networks, IPv4-mapped addresses
 * (IPv6: they match IPv6 networks only) and an unknown address. */
static void test_access_source_check(void **state)
{
    static const struct {
        const char *sources, *remote;
        bool allowed;
    } cases[] = {
        {NULL, "203.0.113.9", true},
        {NULL, NULL, true},
        {"[\"10.1.0.0/16\"]", "10.1.0.0", true},
        {"[\"10.1.0.0/16\"]", "10.1.255.255", true},
        {"[\"10.1.0.0/16\"]", "10.0.255.255", false},
        {"[\"10.1.0.0/16\"]", "10.2.0.0", false},
        {"[\"10.1.2.128/25\"]", "10.1.2.127", false},
        {"[\"10.1.2.128/25\"]", "10.1.2.128", true},
        {"[\"127.0.0.1/32\"]", "127.0.0.1", true},
        {"[\"127.0.0.1/32\"]", "127.0.0.2", false},
        {"[\"0.0.0.0/0\"]", "203.0.113.9", true},
        {"[\"0.0.0.0/0\"]", "::1", false},
        {"[\"::/0\"]", "::1", true},
        {"[\"fd00::/8\"]", "fd12:3456::1", true},
        {"[\"fd00::/8\"]", "fe80::1", false},
        {"[\"2001:db8::/127\"]", "2001:db8::1", true},
        {"[\"2001:db8::/127\"]", "2001:db8::2", false},
        {"[\"::1/128\"]", "::1", true},
        {"[\"10.0.0.0/8\"]", "::ffff:10.1.2.3", false},
        {"[\"::ffff:10.0.0.0/104\"]", "::ffff:10.1.2.3", true},
        {"[\"10.0.0.0/8\",\"fd00::/8\"]", "fd00::1", true},
        {"[\"10.0.0.0/8\"]", NULL, false},
        {"[\"10.0.0.0/8\"]", "not-an-address", false},
    };
    fixture_t *f = *state;
    char jti[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(jti, sizeof(jti), "jti-src-%zu", i);
        make_token_with_sources(f, "dev_a", jti, "default", "DPoP", cases[i].sources);
        make_proof(f, &f->device, "p1", NULL);
        assert_int_equal(check(f, f->proof), TETHER_OK);
        memset(&f->refusal, 0x5a, sizeof(f->refusal));
        if (cases[i].allowed) {
            assert_int_equal(tether_gate_access_check_source(&f->identity, cases[i].remote,
                                                             &f->refusal),
                             TETHER_OK);
            assert_int_equal(f->refusal.status, 0);
            continue;
        }
        assert_int_equal(
            tether_gate_access_check_source(&f->identity, cases[i].remote, &f->refusal),
            TETHER_ERR_VERIFY);
        assert_int_equal(f->refusal.status, 403);
        assert_string_equal(f->refusal.error, "insufficient_scope");
        assert_string_equal(f->refusal.tether_error, "source_network_refused");
        assert_non_null(strstr(f->refusal.description,
                               cases[i].remote != NULL ? cases[i].remote : "unknown address"));
    }
}

int main(void)
{
    const struct CMUnitTest table_tests[] = {
        cmocka_unit_test(test_table_replay_semantics),
        cmocka_unit_test(test_table_full_refuses_never_forgets),
        cmocka_unit_test(test_table_values),
        cmocka_unit_test(test_revocations),
    };
    const struct CMUnitTest access_tests[] = {
        cmocka_unit_test(test_access_passes_with_identity),
        cmocka_unit_test(test_access_token_verified_once),
        cmocka_unit_test(test_access_refusals),
        cmocka_unit_test(test_access_bearer_where_allowed),
        cmocka_unit_test(test_access_revocation),
        cmocka_unit_test(test_access_nonce),
        cmocka_unit_test(test_access_sources_claim),
        cmocka_unit_test(test_access_source_check),
    };
    int failed = cmocka_run_group_tests_name("table", table_tests, NULL, NULL);

    return failed + cmocka_run_group_tests_name("access", access_tests, setup, teardown);
}
