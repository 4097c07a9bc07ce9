/*
 * What authorization costs tether-gate per request, with lib's crypto
 * (mbedTLS): a DPoP proof verified (the floor: one ECDSA P-256 verification
 * per request), an access token verified (once per token: the result is
 * cached), and the whole check of a request whose token is cached (proof,
 * replay cache, revocation lists). Prints figures; asserts nothing.
 *   bench_dpop [COUNT]   (default 500)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "access.h"
#include "tether/dpop.h"
#include "tether/jose.h"

#define NOW 1700000000
#define MONO 1000
#define FLEET "https://fleet.example:8443"
#define HTU "http://127.0.0.1:8480/v1/chat/completions"

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, size_t count)
{
    double sum = 0;

    for (size_t i = 0; i < count; i++)
        sum += ms[i];
    qsort(ms, count, sizeof(*ms), compare);
    printf("%-44s p50 %.3f ms  p99 %.3f ms  mean %.3f ms  (%zu runs)\n", what, ms[count / 2],
           ms[count * 99 / 100], sum / (double)count, count);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_dpop: %s failed\n", what);
    exit(1);
}

/* A token of the fleet bound to jkt, signed by issuer. */
static void make_token(const tether_ec_key_t *issuer, const char *jkt, char *out, size_t size)
{
    cJSON *claims = cJSON_CreateObject(), *cnf, *tether;

    cJSON_AddStringToObject(claims, "iss", FLEET);
    cJSON_AddStringToObject(claims, "sub", "dev_bench");
    cJSON_AddStringToObject(claims, "aud", "tether-gate");
    cJSON_AddStringToObject(claims, "client_id", "dev_bench");
    cJSON_AddStringToObject(claims, "jti", "bench-token");
    cJSON_AddNumberToObject(claims, "iat", NOW - 10);
    cJSON_AddNumberToObject(claims, "exp", NOW + 300);
    cnf = cJSON_AddObjectToObject(claims, "cnf");
    cJSON_AddStringToObject(cnf, "jkt", jkt);
    tether = cJSON_AddObjectToObject(claims, "tether");
    cJSON_AddStringToObject(tether, "policy", "default");
    if (tether_jwt_sign("k1", claims, issuer, out, size, NULL) != TETHER_OK)
        die("signing the token");
    cJSON_Delete(claims);
}

int main(int argc, char **argv)
{
    static tether_gate_config_t config;
    static tether_gate_fleet_keys_t keys;
    static tether_gate_revocations_t revocations;
    static tether_gate_access_t access;
    static char token[TETHER_JWS_MAX_LEN + 1], authorization[TETHER_JWS_MAX_LEN + 8];
    size_t count = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 500;
    char (*proofs)[TETHER_DPOP_MAX_LEN + 1];
    double *ms;
    tether_ec_key_t issuer, device;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE], jti[32];
    cJSON *jwks, *jwk = NULL, *page;

    if (count < 10 || count > 100000)
        count = 500;
    proofs = calloc(count, sizeof(*proofs));
    ms = calloc(count, sizeof(*ms));
    if (proofs == NULL || ms == NULL)
        die("allocating");
    tether_ec_key_init(&issuer);
    tether_ec_key_init(&device);
    if (tether_ec_key_generate(&issuer) != TETHER_OK || tether_ec_key_generate(&device) != TETHER_OK ||
        tether_jwk_thumbprint_key(&device, jkt, sizeof(jkt)) != TETHER_OK)
        die("making keys");
    make_token(&issuer, jkt, token, sizeof(token));
    snprintf(authorization, sizeof(authorization), "DPoP %s", token);
    for (size_t i = 0; i < count; i++) {
        tether_dpop_claims_t c = {"POST", HTU, jti, NOW, token, strlen(token), NULL};
        snprintf(jti, sizeof(jti), "bench-%zu", i);
        if (tether_dpop_sign(&c, &device, proofs[i], sizeof(proofs[i]), NULL) != TETHER_OK)
            die("signing proofs");
    }

    /* 1. The proof alone. */
    for (size_t i = 0; i < count; i++) {
        tether_dpop_expect_t e = {.htm = "POST",
                                  .htu = HTU,
                                  .access_token = token,
                                  .access_token_len = strlen(token),
                                  .jkt = jkt,
                                  .now = NOW,
                                  .max_age = 60,
                                  .leeway = 5};
        tether_dpop_result_t result;
        tether_dpop_failure_t failure;
        double t0 = now_ms();
        if (tether_dpop_verify(proofs[i], strlen(proofs[i]), &e, &result, &failure, NULL, 0) !=
            TETHER_OK)
            die("verifying a proof");
        ms[i] = now_ms() - t0;
    }
    report("DPoP proof verified (tether_dpop_verify)", ms, count);

    /* 2. The access token, as on its first request. */
    {
        tether_jwt_key_t key = {"k1", &issuer};
        tether_jwt_keyset_t set = {&key, 1};
        tether_jwt_expect_t expect = {FLEET, "tether-gate", NOW, 5};
        for (size_t i = 0; i < count; i++) {
            cJSON *claims = NULL;
            double t0 = now_ms();
            if (tether_jwt_verify(token, strlen(token), &set, &expect, &claims) != TETHER_OK)
                die("verifying the token");
            ms[i] = now_ms() - t0;
            cJSON_Delete(claims);
        }
        report("access token verified (first request only)", ms, count);
    }

    /* 3. The whole check of a request whose token is cached. */
    tether_gate_config_init(&config);
    snprintf(config.fleet, sizeof(config.fleet), "%s", FLEET);
    config.policy_count = 1;
    tether_gate_config_policy_init(&config.policies[0], "default");
    tether_gate_fleet_keys_init(&keys);
    tether_gate_revocations_init(&revocations);
    tether_gate_access_init(&access);
    jwks = cJSON_CreateObject();
    if (tether_jwk_write(&issuer, &jwk) != TETHER_OK)
        die("writing the JWKS");
    cJSON_AddStringToObject(jwk, "kid", "k1");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(jwks, "keys"), jwk);
    page = cJSON_Parse("{\"revocations\":[],\"last_seq\":0}");
    if (tether_gate_fleet_keys_open(&keys, FLEET) != TETHER_OK ||
        tether_gate_fleet_keys_set(&keys, jwks) != TETHER_OK ||
        tether_gate_revocations_open(&revocations, 65536, 60) != TETHER_OK ||
        tether_gate_revocations_apply(&revocations, page, NOW, MONO) != TETHER_OK ||
        tether_gate_access_open(&access, &config, &keys, &revocations) != TETHER_OK)
        die("setting up the gateway's checker");
    for (size_t i = 0; i < count; i++) {
        tether_gate_access_request_t request = {authorization, proofs[i], "POST", HTU};
        tether_gate_identity_t identity;
        tether_gate_refusal_t refusal;
        double t0 = now_ms();
        if (tether_gate_access_check(&access, &request, NOW, MONO, &identity, &refusal) !=
            TETHER_OK)
            die("authorizing a request");
        ms[i] = now_ms() - t0;
    }
    report("request authorized, token cached (whole check)", ms, count);

    cJSON_Delete(jwks);
    cJSON_Delete(page);
    tether_gate_access_free(&access);
    tether_gate_revocations_free(&revocations);
    tether_gate_fleet_keys_free(&keys);
    tether_ec_key_free(&issuer);
    tether_ec_key_free(&device);
    free(proofs);
    free(ms);
    return 0;
}
