/*
 * The attested token exchange in process (no HTTP): devices are fake TPMs
 * enrolled through fleetd's own enrolment endpoints with the agent's code;
 * their evidence is made exactly as tether-agent makes it (challenge, counter
 * increment, NV_Certify, Quote over SHA-256(nonce || SHA-256(usage))) and
 * goes straight to the handlers over a real SQLite store. Clones are fakes
 * opened with the same seed and the original's AK blob. Every refusal must
 * leave the database exactly as it was; clones must be quarantined, their
 * tokens revoked, the feed told and an alert written with both sightings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <sqlite3.h>
#include <tss2/tss2_mu.h>

#include "admin_api.h"
#include "config.h"
#include "discovery_api.h"
#include "enroll_api.h"
#include "enroll_device.h"
#include "exchange.h"
#include "exchange_api.h"
#include "files.h"
#include "fleet_metrics.h"
#include "fleet_fixture.h"
#include "fleet_policies.h"
#include "route.h"
#include "fleet.h"
#include "issuer_keys.h"
#include "pki.h"
#include "store.h"
#include "store_schema.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/cel.h"
#include "tether/crypto.h"
#include "tether/file.h"
#include "tether/measured_boot.h"
#include "tether/enroll.h"
#include "tether/evidence.h"
#include "tether/jose.h"
#include "tether/json_strict.h"
#include "tether/random.h"
#include "tether/secret_token.h"
#include "tether/tpm2_public.h"
#include "tether/tpm_fake.h"
#include "token_form.h"
#include "token_issuer.h"
#include "validate.h"

#define COUNTER 0x01000100u
#define OTHER_COUNTER 0x01000101u
#define T0 1700000000
#define ECC_ONLY (1u << TETHER_EK_ECC_P256)
#define ISSUER "https://127.0.0.1:8443"
#define EXCHANGE_GRANT "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
#define EVIDENCE_TYPE "urn%3Atether%3Aparams%3Aoauth%3Atoken-type%3Atpm-evidence-v1"

static int64_t test_now = T0;
/* The usage document attest() has the TPM sign; NULL: a version 0 one. */
static const char *usage_document;

static int64_t test_clock(void)
{
    return test_now;
}

/* A device: a fake TPM, what its agent keeps, and its usage counters. */
typedef struct device {
    tether_tpm_t tpm;
    tether_enroll_request_t req;
    tether_agent_state_t state;
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    uint64_t exchanges;
} device_t;

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char path[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    tether_cert_set_t cas;
    tether_enroll_api_t enroll;
    tether_fleet_config_t config;
    tether_token_policy_t policy;
    tether_issuer_keys_t keys;
    tether_exchange_api_t api;
    tether_discovery_api_t discovery;
    tether_admin_api_t admin;
    tether_fleet_metrics_t metrics;
    tether_router_t router;
    char admin_token[TETHER_SECRET_TOKEN_SIZE];
    tether_http_response_t response;
    cJSON *json;
    int feed_hooks;
} fixture_t;

static void on_revocation(void *arg)
{
    ((fixture_t *)arg)->feed_hooks++;
}

/* ---- fixture ---- */

static void write_first_issuer_key(const char *dir)
{
    mbedtls_pk_context pk;
    tether_fleet_pem_t pem = {NULL, 0};

    mbedtls_pk_init(&pk);
    assert_int_equal(tether_fleet_key_generate(&pk), TETHER_OK);
    assert_int_equal(tether_fleet_key_pem(&pk, &pem), TETHER_OK);
    assert_int_equal(tether_fleet_file_write(dir, "issuer-key.pem", pem.data, pem.len, 0600),
                     TETHER_OK);
    tether_fleet_pem_free(&pem);
    mbedtls_pk_free(&pk);
}

static void open_keys(fixture_t *f)
{
    tether_issuer_keys_init(&f->keys);
    assert_int_equal(tether_issuer_keys_open(&f->keys, f->dir, &f->store, f->policy.issuer,
                                             test_now),
                     TETHER_OK);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uint8_t key[32];

    if (f == NULL)
        return -1;
    test_now = T0;
    usage_document = NULL;
    if (fleet_fixture_open("exchange", f->dir, f->path, &f->store) != 0 ||
        tether_fleet_key_file_load(f->dir, "enroll.key", key, sizeof(key), true) != TETHER_OK)
        return -1;
    tether_store_set_revocation_hook(&f->store, on_revocation, f);
    tether_cert_set_init(&f->cas);
    tether_enroll_api_init(&f->enroll, &f->store, &f->cas, key);
    f->enroll.clock = test_clock;
    if (tether_enroll_api_set_limits(&f->enroll, TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK,
                                     TETHER_CONFIG_DEFAULT_ENROLL_RATE_PER_MINUTE,
                                     TETHER_CONFIG_DEFAULT_ENROLL_BURST) != TETHER_OK)
        return -1;
    tether_fleet_config_init(&f->config);
    if (tether_token_policy_from_config(&f->config, &f->policy) != TETHER_OK ||
        tether_fleet_policy_default_ensure(&f->store, &f->policy, T0) != TETHER_OK)
        return -1;
    write_first_issuer_key(f->dir);
    open_keys(f);
    if (tether_fleet_key_file_load(f->dir, "nonce.key", key, sizeof(key), true) != TETHER_OK)
        return -1;
    tether_exchange_api_init(&f->api, &f->store, &f->keys, &f->policy, key);
    f->api.clock = test_clock;
    tether_discovery_api_init(&f->discovery, &f->keys, &f->policy);
    f->discovery.clock = test_clock;
    tether_admin_api_init(&f->admin, &f->store, 86400);
    f->admin.issuer_keys = &f->keys;
    tether_fleet_metrics_init(&f->metrics);
    if (tether_fleet_metrics_open(&f->metrics, T0) != TETHER_OK)
        return -1;
    tether_store_set_metrics(&f->store, f->metrics.store_transaction_seconds);
    f->router = (tether_router_t){.store = &f->store, .admin = &f->admin, .enroll = &f->enroll,
                                  .exchange = &f->api, .discovery = &f->discovery,
                                  .metrics = &f->metrics};
    fleet_fixture_admin_token(&f->store, f->admin_token, TETHER_ROLE_ALL);
    tether_wipe(key, sizeof(key));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    cJSON_Delete(f->json);
    tether_http_response_clear(&f->response);
    tether_exchange_api_free(&f->api);
    tether_issuer_keys_free(&f->keys);
    tether_enroll_api_free(&f->enroll);
    tether_cert_set_free(&f->cas);
    fleet_fixture_close(f->dir, &f->store);
    tether_fleet_metrics_free(&f->metrics);
    free(f);
    return 0;
}

/* ---- requests ---- */

static unsigned call_handler(fixture_t *f, const char *method, const char *path,
                             const char *content_type, const char *authorization,
                             const char *body)
{
    tether_http_request_t request;

    memset(&request, 0, sizeof(request));
    request.method = method;
    request.path = path;
    request.content_type = content_type;
    request.authorization = authorization;
    request.remote = "192.0.2.7";
    request.body = (const uint8_t *)body;
    request.body_len = body != NULL ? strlen(body) : 0;
    return fleet_fixture_route(&f->router, &request, &f->response, &f->json, false);
}

static unsigned call(fixture_t *f, const char *method, const char *path, const char *content_type,
                     const char *body)
{
    /* The exchange's and discovery's endpoints only. */
    assert_true(strcmp(path, TETHER_FLEET_PATH_CHALLENGE) == 0 ||
                strcmp(path, TETHER_FLEET_PATH_TOKEN) == 0 ||
                strcmp(path, TETHER_FLEET_PATH_JWKS) == 0 ||
                strcmp(path, TETHER_FLEET_PATH_METADATA) == 0);
    return call_handler(f, method, path, content_type, NULL, body);
}

static unsigned admin_call(fixture_t *f, const char *method, const char *path)
{
    char authorization[32 + TETHER_SECRET_TOKEN_SIZE];

    snprintf(authorization, sizeof(authorization), "Bearer %s", f->admin_token);
    return call_handler(f, method, path, NULL, authorization, NULL);
}

/* The line "name{labels} value" is in fleetd's metrics text. */
static void expect_sample(fixture_t *f, const char *sample)
{
    char *all = NULL, line[256];
    size_t len = 0;

    assert_int_equal(tether_metrics_write(&f->metrics.registry, &all, &len), TETHER_OK);
    snprintf(line, sizeof(line), "\n%s\n", sample);
    if (strstr(all, line) == NULL)
        fail_msg("no \"%s\" in the metrics:\n%s", sample, all);
    free(all);
}

static const char *text(const fixture_t *f, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->json, name);

    return cJSON_IsString(item) ? item->valuestring : "";
}

static double number(const cJSON *json, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, name);

    assert_true(cJSON_IsNumber(item));
    return item->valuedouble;
}

/* ---- the database, read beside the store ---- */

static tether_store_device_t device_row(fixture_t *f, const char *id)
{
    tether_store_device_t device;

    assert_int_equal(tether_store_device_get(&f->store, id, &device), TETHER_OK);
    return device;
}

/* ---- devices: enrolled through the enrolment endpoints ---- */

static void device_open(fixture_t *f, device_t *d, uint64_t seed, bool trust)
{
    tether_tpm_fake_config_t config = {.ek_cert_types = ECC_ONLY, .seed = seed};
    const uint8_t *ca = NULL;
    size_t ca_len = 0;

    memset(d, 0, sizeof(*d));
    tether_tpm_init(&d->tpm);
    d->tpm.retry_delay_ms = 0;
    assert_int_equal(tether_tpm_open_fake(&d->tpm, &config), TETHER_OK);
    if (trust) {
        assert_int_equal(tether_tpm_fake_ca_cert(&d->tpm, &ca, &ca_len), TETHER_OK);
        assert_int_equal(tether_cert_set_add_der(&f->cas, ca, ca_len), TETHER_OK);
    }
}

static void device_close(device_t *d)
{
    tether_tpm_close(&d->tpm);
    tether_enroll_request_wipe(&d->req);
}

/* The agent's side of enrolment on the device's TPM (new AK and device
 * key; the counter is reused), then POST /v1/enroll, the TPM activates the
 * credential, POST /v1/enroll/activate. */
static void enrol_tpm(fixture_t *f, device_t *d)
{
    uint8_t digest[32], raw[1024], proof[32];
    char proof_b64[64], body[256], enrollment_id[TETHER_STORE_ENROLLMENT_ID_SIZE];
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET secret;
    size_t len = 0, offset = 0;
    char *json = NULL;

    tether_enroll_request_wipe(&d->req);
    assert_int_equal(tether_agent_enroll_prepare(&d->tpm, TETHER_EK_ANY, COUNTER, &d->req,
                                                 &d->state),
                     TETHER_OK);
    assert_int_equal(tether_ek_sha256(&d->req.ek_public.publicArea, digest), TETHER_OK);
    assert_int_equal(tether_hex_encode(digest, sizeof(digest), d->ek_sha256, sizeof(d->ek_sha256)),
                     TETHER_OK);
    assert_int_equal(tether_enroll_request_to_json(&d->req, &json), TETHER_OK);
    assert_int_equal(call_handler(f, "POST", "/v1/enroll", "application/json", NULL, json),
                     200);
    free(json);
    snprintf(enrollment_id, sizeof(enrollment_id), "%s", text(f, "enrollment_id"));
    memset(&blob, 0, sizeof(blob));
    memset(&secret, 0, sizeof(secret));
    assert_int_equal(tether_base64url_decode(text(f, "credential_blob"),
                                             strlen(text(f, "credential_blob")), raw, sizeof(raw),
                                             &len),
                     TETHER_OK);
    assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(raw, len, &offset, &blob), TSS2_RC_SUCCESS);
    offset = 0;
    assert_int_equal(tether_base64url_decode(text(f, "encrypted_secret"),
                                             strlen(text(f, "encrypted_secret")), raw, sizeof(raw),
                                             &len),
                     TETHER_OK);
    assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(raw, len, &offset, &secret),
                     TSS2_RC_SUCCESS);
    assert_int_equal(tether_agent_enroll_activate(&d->tpm, &d->state, &blob, &secret,
                                                  enrollment_id, proof),
                     TETHER_OK);
    assert_int_equal(tether_base64url_encode(proof, sizeof(proof), proof_b64, sizeof(proof_b64),
                                             NULL),
                     TETHER_OK);
    snprintf(body, sizeof(body), "{\"enrollment_id\": \"%s\", \"proof\": \"%s\"}", enrollment_id,
             proof_b64);
    assert_int_equal(call_handler(f, "POST", "/v1/enroll/activate", "application/json", NULL,
                                  body),
                     200);
    snprintf(d->id, sizeof(d->id), "%s", text(f, "device_id"));
    snprintf(d->state.device_id, sizeof(d->state.device_id), "%s", d->id);
    assert_int_equal(device_row(f, d->id).status, TETHER_DEVICE_ACTIVE);
}

/* A new device: a fake TPM from seed, its EK on the allow list, enrolled. */
static void enrol(fixture_t *f, device_t *d, uint64_t seed)
{
    tether_store_allow_t row;
    tether_ek_t ek;
    uint8_t digest[32];

    device_open(f, d, seed, true);
    memset(&ek, 0, sizeof(ek));
    assert_int_equal(tether_ek_open(&d->tpm, TETHER_EK_ANY, &ek), TETHER_OK);
    assert_int_equal(tether_ek_sha256(&ek.public_area.publicArea, digest), TETHER_OK);
    tether_ek_free(&d->tpm, &ek);
    memset(&row, 0, sizeof(row));
    assert_int_equal(tether_fleet_device_id_new(row.id), TETHER_OK);
    assert_int_equal(tether_hex_encode(digest, sizeof(digest), row.ek_sha256,
                                       sizeof(row.ek_sha256)),
                     TETHER_OK);
    snprintf(row.name, sizeof(row.name), "device-%llu", (unsigned long long)seed);
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, test_now, NULL, NULL),
                     TETHER_OK);
    enrol_tpm(f, d);
}

/* A copy of d's TPM state: the same seed (so the same EK and the same
 * wrapping key: it loads d's AK blob), the same agent state, and the counter
 * defined anew and incremented `increments` times. */
static void clone_of(fixture_t *f, const device_t *d, uint64_t seed, unsigned increments,
                     device_t *clone)
{
    device_open(f, clone, seed, false);
    clone->state = d->state;
    snprintf(clone->id, sizeof(clone->id), "%s", d->id);
    assert_int_equal(tether_tpm_nv_define_counter(&clone->tpm, COUNTER), TETHER_OK);
    for (unsigned i = 0; i < increments; i++)
        assert_int_equal(tether_tpm_nv_increment(&clone->tpm, COUNTER), TETHER_OK);
}

/* Lets the TPM's clock run: every command of the fake takes 250 ms. */
static void tick(device_t *d, unsigned commands)
{
    TPM2B_DIGEST value;

    for (unsigned i = 0; i < commands; i++)
        assert_int_equal(tether_tpm_pcr_read(&d->tpm, TPM2_ALG_SHA256, 0, &value), TETHER_OK);
}

/* ---- the exchange, as tether-agent makes it ---- */

typedef struct challenge {
    uint8_t nonce[TETHER_NONCE_SIZE];
    TPML_PCR_SELECTION pcrs;
} challenge_t;

static void get_challenge(fixture_t *f, const char *id, challenge_t *ch)
{
    char body[128];
    size_t len = 0;

    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", id);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", body), 200);
    assert_int_equal(cJSON_GetArraySize(f->json), 3);
    assert_int_equal(number(f->json, "expires_in"), TETHER_CHALLENGE_TTL);
    assert_string_equal(text(f, "pcr_selection"), "sha256:0,1,2,3,4,5,6,7");
    assert_int_equal(tether_base64url_decode(text(f, "nonce"), strlen(text(f, "nonce")), ch->nonce,
                                             sizeof(ch->nonce), &len),
                     TETHER_OK);
    assert_int_equal(len, TETHER_NONCE_SIZE);
    assert_int_equal(tether_token_pcr_selection_parse(text(f, "pcr_selection"), &ch->pcrs),
                     TETHER_OK);
}

/* The TPM part (agent/src/exchange.c, attest()). */
static void attest(device_t *d, const challenge_t *ch, tether_evidence_t *ev)
{
    uint8_t q[TETHER_EVIDENCE_QUALIFYING_SIZE];
    tether_ek_t ek;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    tether_tpm_attestation_t nv, quote;
    int n;

    memset(ev, 0, sizeof(*ev));
    memset(&ek, 0, sizeof(ek));
    snprintf(ev->device_id, sizeof(ev->device_id), "%s", d->id);
    memcpy(ev->nonce, ch->nonce, sizeof(ev->nonce));
    if (usage_document != NULL)
        n = snprintf((char *)ev->usage, sizeof(ev->usage), "%s", usage_document);
    else
        n = snprintf((char *)ev->usage, sizeof(ev->usage),
                     "{\"token_requests\":%llu,\"exchanges\":%llu}", 0ULL,
                     (unsigned long long)d->exchanges);
    d->exchanges++;
    ev->usage_len = (size_t)n;
    assert_int_equal(tether_evidence_qualifying(ev->nonce, ev->usage, ev->usage_len, q),
                     TETHER_OK);
    assert_int_equal(tether_ek_open(&d->tpm, d->state.ek_type, &ek), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&d->tpm, ek.handle, &d->state.ak, &ak), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&d->tpm, d->state.counter_index), TETHER_OK);
    assert_int_equal(tether_tpm_nv_certify(&d->tpm, ak, d->state.counter_index, q, sizeof(q), &nv),
                     TETHER_OK);
    assert_int_equal(tether_tpm_quote(&d->tpm, ak, &ch->pcrs, q, sizeof(q), &quote), TETHER_OK);
    ev->nv_certify = nv.attest;
    ev->nv_signature = nv.signature;
    ev->quote = quote.attest;
    ev->quote_signature = quote.signature;
    (void)tether_tpm_flush(&d->tpm, ak);
    tether_ek_free(&d->tpm, &ek);
}

static char *encode(const tether_evidence_t *ev)
{
    char *token = NULL;

    assert_int_equal(tether_evidence_encode(ev, &token), TETHER_OK);
    return token;
}

/* A challenge and the TPM's evidence over it: the subject_token (malloc'd). */
static char *evidence(fixture_t *f, device_t *d)
{
    challenge_t ch;
    tether_evidence_t ev;

    get_challenge(f, d->id, &ch);
    attest(d, &ch, &ev);
    return encode(&ev);
}

/* POST /v1/token with the form the agent sends, and extra parameters
 * ("&name=value...", "" for none). */
static unsigned post_token_with(fixture_t *f, const char *subject_token, const char *extra)
{
    size_t size = strlen(subject_token) + strlen(extra) + 512;
    char *body = malloc(size);
    unsigned status;

    assert_non_null(body);
    snprintf(body, size, "%s%s%s",
             "grant_type=" EXCHANGE_GRANT "&subject_token_type=" EVIDENCE_TYPE "&subject_token=",
             subject_token, extra);
    status = call(f, "POST", "/v1/token", "application/x-www-form-urlencoded", body);
    free(body);
    return status;
}

static unsigned post_token(fixture_t *f, const char *subject_token)
{
    return post_token_with(f, subject_token, "");
}

/* One whole exchange that must succeed; the access token (malloc'd). */
static char *exchange_ok(fixture_t *f, device_t *d)
{
    char *ev = evidence(f, d);
    char *token;

    if (post_token(f, ev) != 200)
        fail_msg("exchange refused: %s", f->response.body);
    free(ev);
    token = strdup(text(f, "access_token"));
    assert_non_null(token);
    return token;
}

/* Sends subject_token with extra parameters and expects a refusal that
 * changes nothing at all. */
static void expect_refusal_with(fixture_t *f, const char *subject_token, const char *extra,
                                unsigned status, const char *error, const char *tether_error)
{
    char *before = fleet_db_snapshot(f->path);
    char *after;

    if (post_token_with(f, subject_token, extra) != status)
        fail_msg("expected HTTP %u %s, got %u: %s", status, tether_error, f->response.status,
                 f->response.body);
    assert_string_equal(text(f, "error"), error);
    assert_string_equal(text(f, "tether_error"), tether_error);
    assert_true(strlen(text(f, "error_description")) > 0);
    assert_int_equal(cJSON_GetArraySize(f->json), 3);
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void expect_refusal(fixture_t *f, const char *subject_token, unsigned status,
                           const char *error, const char *tether_error)
{
    expect_refusal_with(f, subject_token, "", status, error, tether_error);
}

/* ---- the published keys ---- */

typedef struct jwks {
    tether_ec_key_t pk[8];
    char kid[8][TETHER_JWK_THUMBPRINT_SIZE];
    tether_jwt_key_t keys[8];
    size_t count;
} jwks_t;

/* GET /.well-known/jwks.json, parsed as a relying party would. */
static void fetch_jwks(fixture_t *f, jwks_t *set)
{
    const cJSON *keys, *jwk;

    memset(set, 0, sizeof(*set));
    assert_int_equal(call(f, "GET", TETHER_FLEET_PATH_JWKS, NULL, NULL), 200);
    keys = cJSON_GetObjectItemCaseSensitive(f->json, "keys");
    assert_true(cJSON_IsArray(keys));
    cJSON_ArrayForEach(jwk, keys)
    {
        char thumbprint[TETHER_JWK_THUMBPRINT_SIZE];

        assert_true(set->count < 8);
        assert_null(cJSON_GetObjectItemCaseSensitive(jwk, "d"));
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(jwk, "use")->valuestring, "sig");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(jwk, "alg")->valuestring, "ES256");
        tether_ec_key_init(&set->pk[set->count]);
        assert_int_equal(tether_jwk_parse(jwk, &set->pk[set->count]), TETHER_OK);
        /* kid is the RFC 7638 thumbprint of the key. */
        assert_int_equal(tether_jwk_thumbprint(jwk, thumbprint, sizeof(thumbprint)), TETHER_OK);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(jwk, "kid")->valuestring,
                            thumbprint);
        memcpy(set->kid[set->count], thumbprint, sizeof(thumbprint));
        set->keys[set->count].kid = set->kid[set->count];
        set->keys[set->count].key = &set->pk[set->count];
        set->count++;
    }
}

static void jwks_free(jwks_t *set)
{
    for (size_t i = 0; i < set->count; i++)
        tether_ec_key_free(&set->pk[i]);
}

/* tether_jwt_verify with the published keys, as a relying party. */
static tether_status_t verify_token(fixture_t *f, const char *token, int64_t now, cJSON **claims)
{
    jwks_t set;
    tether_jwt_keyset_t keyset;
    tether_jwt_expect_t expect = {ISSUER, "tether", now, 0};
    tether_status_t rc;

    fetch_jwks(f, &set);
    keyset.keys = set.keys;
    keyset.count = set.count;
    rc = tether_jwt_verify(token, strlen(token), &keyset, &expect, claims);
    jwks_free(&set);
    return rc;
}

/* again is the token first issued again: its header and claims byte for
 * byte (its signature verifies where the test checks it). The signature
 * itself is the same only with a deterministic signer (lib's mbedTLS one,
 * these tests'); tether-fleetd signs with libcrypto, whose nonce is
 * hedged. */
static void assert_same_token(const char *again, const char *first)
{
    const char *dot = strrchr(first, '.');

    assert_non_null(dot);
    assert_int_equal(strrchr(again, '.') - again, dot - first);
    assert_memory_equal(again, first, (size_t)(dot - first));
}

/* The token's header (unverified), for kid. */
static char *token_kid(const char *token)
{
    uint8_t header[512];
    size_t len = 0;
    cJSON *json = NULL;
    char *kid;

    assert_int_equal(tether_base64url_decode(token, strcspn(token, "."), header,
                                             sizeof(header) - 1, &len),
                     TETHER_OK);
    assert_int_equal(tether_json_parse_object((const char *)header, len, &json), TETHER_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(json, "typ")->valuestring, "at+jwt");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(json, "alg")->valuestring, "ES256");
    kid = strdup(cJSON_GetObjectItemCaseSensitive(json, "kid")->valuestring);
    cJSON_Delete(json);
    return kid;
}

static const cJSON *claim(const cJSON *claims, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(claims, name);

    if (item == NULL)
        fail_msg("no claim %s", name);
    return item;
}

/* Writes f->policy's token keys as the next version of the default policy,
 * as an operator changing them would after the first start. */
static void default_policy_update(fixture_t *f)
{
    tether_policy_document_t doc;
    char text[TETHER_POLICY_DOCUMENT_MAX + 1], why[256];
    size_t len = 0;
    int64_t version = 0;

    assert_int_equal(tether_fleet_policy_from_token_policy(&f->policy, &doc, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(tether_policy_document_write(&doc, text, sizeof(text), &len), TETHER_OK);
    assert_int_equal(tether_store_policy_write(&f->store, TETHER_POLICY_DEFAULT_NAME, text, false,
                                               test_now, &version),
                     TETHER_OK);
}

/* The tether claim's policy, version and models ("a,b"). */
static void expect_policy_claims(const cJSON *claims, const char *name, double version,
                                 const char *models)
{
    const cJSON *tether = claim(claims, "tether");
    const cJSON *item;
    char joined[256] = "";

    assert_string_equal(claim(tether, "policy")->valuestring, name);
    assert_true(number(tether, "policy_version") == version);
    cJSON_ArrayForEach(item, claim(tether, "models"))
    {
        assert_true(cJSON_IsString(item));
        snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
                 joined[0] != '\0' ? "," : "", item->valuestring);
    }
    assert_string_equal(joined, models);
}

/* The jti of a token this fleet issued (verified). */
static void token_jti(fixture_t *f, const char *token, char jti[TETHER_STORE_JTI_SIZE])
{
    cJSON *claims = NULL;

    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    snprintf(jti, TETHER_STORE_JTI_SIZE, "%s", claim(claims, "jti")->valuestring);
    cJSON_Delete(claims);
}

/* A relying party's report of requests on jti of d, counted now. */
static void gateway_report(fixture_t *f, const device_t *d, const char *jti, int64_t requests,
                           const char *report_id)
{
    tether_store_usage_result_t result;

    fleet_fixture_usage_report(&f->store, "gate-b", report_id, jti, d->id, requests, test_now,
                               TETHER_STORE_USAGE_QUARANTINE, &result);
}

/* ---- tests: the genuine exchange ---- */

static void happy_path(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *token, *kid, *again;
    cJSON *claims = NULL;
    const cJSON *tether, *models;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE], jti[TETHER_STORE_JTI_SIZE], sql[256];
    tether_ec_key_t device_key;
    tether_store_issued_token_t issued;
    tether_jwt_keyset_t keyset;
    tether_jwt_expect_t expect;
    const char *issuer = NULL;

    enrol(f, &d, 1);
    test_now = T0 + 10;
    token = exchange_ok(f, &d);
    assert_string_equal(text(f, "issued_token_type"),
                        "urn:ietf:params:oauth:token-type:access_token");
    assert_string_equal(text(f, "token_type"), "Bearer");
    assert_int_equal(number(f->json, "expires_in"), 300);
    assert_string_equal(text(f, "scope"), "ai.inference");

    /* A relying party verifies it with the published keys. */
    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    kid = token_kid(token);
    assert_string_equal(kid, tether_issuer_keys_active_kid(&f->keys));
    assert_string_equal(claim(claims, "iss")->valuestring, ISSUER);
    assert_string_equal(claim(claims, "sub")->valuestring, d.id);
    assert_string_equal(claim(claims, "aud")->valuestring, "tether");
    assert_string_equal(claim(claims, "client_id")->valuestring, d.id);
    assert_int_equal(number(claims, "iat"), T0 + 10);
    assert_int_equal(number(claims, "nbf"), T0 + 10);
    assert_int_equal(number(claims, "exp"), T0 + 10 + 300);
    snprintf(jti, sizeof(jti), "%s", claim(claims, "jti")->valuestring);
    assert_int_equal(strlen(jti), 32);
    assert_int_equal(strspn(jti, "0123456789abcdef"), 32);
    assert_string_equal(claim(claims, "scope")->valuestring, "ai.inference");
    /* cnf.jkt: the thumbprint of the device key enrolment certified. */
    tether_ec_key_init(&device_key);
    assert_int_equal(tether_tpm2_public_to_ec_key(&d.req.device_key_public.publicArea, &device_key),
                     TETHER_OK);
    assert_int_equal(tether_jwk_thumbprint_key(&device_key, jkt, sizeof(jkt)), TETHER_OK);
    tether_ec_key_free(&device_key);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(claim(claims, "cnf"), "jkt")->valuestring,
                        jkt);
    tether = claim(claims, "tether");
    assert_int_equal(number(tether, "counter"), 2); /* once at enrolment, once now */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tether, "policy")->valuestring, "default");
    models = cJSON_GetObjectItemCaseSensitive(tether, "models");
    assert_int_equal(cJSON_GetArraySize(models), 1);
    assert_string_equal(cJSON_GetArrayItem(models, 0)->valuestring, "*");
    assert_int_equal(number(tether, "cost_ceiling"), 0);
    cJSON_Delete(claims);

    /* Recorded before it left: counter, clock, reference, sighting, token. */
    assert_int_equal(device_row(f, d.id).highest_counter, 2);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM devices WHERE id = '%s' AND length(pcr_digest) = 32 AND "
             "length(last_fingerprint) = 32 AND last_address = '192.0.2.7' AND last_seen_at = %d "
             "AND last_clock > 0 AND last_clock_safe = 1",
             d.id, T0 + 10);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    assert_int_equal(tether_store_issued_token_get(&f->store, jti, &issued), TETHER_OK);
    assert_string_equal(issued.device_id, d.id);
    assert_true(issued.has_counter);
    assert_int_equal(issued.counter, 2);
    assert_int_equal(issued.issued_at, T0 + 10);
    assert_int_equal(issued.exp, T0 + 310);
    assert_false(issued.revoked);
    assert_string_equal(issued.kid, kid);
    assert_string_equal(issued.scope, "ai.inference");
    assert_string_equal(issued.audience, "tether");
    assert_int_equal(tether_store_issued_token_get(&f->store, "nope", &issued),
                     TETHER_ERR_NOT_FOUND);

    /* The module API for introspection verifies it too. */
    memset(&expect, 0, sizeof(expect));
    expect.audience = "tether";
    expect.now = test_now;
    assert_int_equal(tether_issuer_keys_verify(&f->keys, token, strlen(token), &expect, NULL),
                     TETHER_OK);
    assert_int_equal(tether_issuer_keys_acquire(&f->keys, test_now, &keyset, &issuer), TETHER_OK);
    assert_int_equal(keyset.count, 1);
    assert_string_equal(issuer, ISSUER);
    tether_issuer_keys_release(&f->keys);

    /* The next exchange: a higher counter, the same reference digest. */
    test_now = T0 + 200;
    again = exchange_ok(f, &d);
    assert_int_equal(device_row(f, d.id).highest_counter, 3);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM issued_tokens"), 2);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 0);
    assert_int_equal(f->feed_hooks, 0);
    free(again);
    free(kid);
    free(token);
    device_close(&d);
}

/* The RFC 8414 metadata and the discovery endpoints' refusals. */
static void discovery(void **state)
{
    fixture_t *f = *state;
    const cJSON *grants, *methods;

    assert_int_equal(call(f, "GET", TETHER_FLEET_PATH_METADATA, NULL, NULL), 200);
    assert_string_equal(text(f, "issuer"), ISSUER);
    assert_string_equal(text(f, "token_endpoint"), ISSUER "/v1/token");
    assert_string_equal(text(f, "jwks_uri"), ISSUER "/.well-known/jwks.json");
    assert_string_equal(text(f, "introspection_endpoint"), ISSUER "/v1/introspect");
    assert_string_equal(text(f, "tether_revocation_feed_endpoint"), ISSUER "/v1/revocations");
    grants = cJSON_GetObjectItemCaseSensitive(f->json, "grant_types_supported");
    assert_int_equal(cJSON_GetArraySize(grants), 1);
    assert_string_equal(cJSON_GetArrayItem(grants, 0)->valuestring,
                        "urn:ietf:params:oauth:grant-type:token-exchange");
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f->json,
                                                            "token_endpoint_auth_methods_supported"),
                           0)
            ->valuestring,
        "none");
    methods = cJSON_GetObjectItemCaseSensitive(f->json,
                                               "introspection_endpoint_auth_methods_supported");
    assert_int_equal(cJSON_GetArraySize(methods), 2);
    assert_string_equal(cJSON_GetArrayItem(methods, 0)->valuestring, "client_secret_basic");
    assert_string_equal(cJSON_GetArrayItem(methods, 1)->valuestring, "client_secret_post");
    assert_int_equal(call(f, "POST", TETHER_FLEET_PATH_JWKS, "application/json", "{}"), 405);
    assert_string_equal(f->response.allow, "GET");
    /* The exchange endpoints: POST, the right media type, no query. */
    assert_int_equal(call(f, "GET", "/v1/token", NULL, NULL), 405);
    assert_string_equal(text(f, "tether_error"), "method_not_allowed");
    assert_int_equal(call(f, "POST", "/v1/token", "application/json", "{}"), 415);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/x-www-form-urlencoded", "a=b"),
                     415);
    /* The challenge route's body limit (1 KiB), refused with the exchange's
     * error body. */
    {
        char big[1100];

        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", big), 413);
        assert_string_equal(text(f, "tether_error"), "payload_too_large");
    }
}

/* ---- tests: refusals ---- */

/* A software key in place of the AK, to re-sign edited attestations: the
 * checks a genuine TPM can never fail. The device row's AK is replaced by
 * it (as if enrolment had stored it), so its signatures verify. */
typedef struct soft_ak {
    mbedtls_ecp_keypair key;
    TPMT_PUBLIC public_area;
    TPM2B_NAME qualified_name; /* under the device's EK */
} soft_ak_t;

static void soft_ak_install(fixture_t *f, const device_t *d, soft_ak_t *soft)
{
    TPM2B_PUBLIC pub;
    uint8_t raw[sizeof(TPM2B_PUBLIC)];
    size_t len = 0;

    mbedtls_ecp_keypair_init(&soft->key);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &soft->key,
                                         tether_random_mbedtls, NULL),
                     0);
    soft->public_area = d->req.ak_public.publicArea; /* the same template, another point */
    assert_int_equal(mbedtls_mpi_write_binary(&soft->key.Q.X,
                                              soft->public_area.unique.ecc.x.buffer, 32),
                     0);
    assert_int_equal(mbedtls_mpi_write_binary(&soft->key.Q.Y,
                                              soft->public_area.unique.ecc.y.buffer, 32),
                     0);
    assert_int_equal(tether_evidence_ak_qualified_name(&d->req.ek_public.publicArea,
                                                       &soft->public_area, &soft->qualified_name),
                     TETHER_OK);
    memset(&pub, 0, sizeof(pub));
    pub.publicArea = soft->public_area;
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, raw, sizeof(raw), &len), TSS2_RC_SUCCESS);
    fleet_db_set_blob(f->path, "devices", "ak_public", d->id, raw, len);
}

/* Re-marshals both attestations of ev, with edit applied to which (0: the
 * NV certification, 1: the quote, 2: both) and the qualified signer set to
 * the software AK's unless keep_signer, and signs both with it. */
static void resign(soft_ak_t *soft, tether_evidence_t *ev, int which, bool keep_signer,
                   void (*edit)(TPMS_ATTEST *))
{
    for (int i = 0; i < 2; i++) {
        TPM2B_ATTEST *a = i == 0 ? &ev->nv_certify : &ev->quote;
        TPMT_SIGNATURE *sig = i == 0 ? &ev->nv_signature : &ev->quote_signature;
        TPMS_ATTEST parsed;
        size_t offset = 0;
        uint8_t hash[32];
        mbedtls_mpi r, s;

        memset(&parsed, 0, sizeof(parsed));
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(a->attestationData, a->size, &offset,
                                                       &parsed),
                         TSS2_RC_SUCCESS);
        if (!keep_signer)
            parsed.qualifiedSigner = soft->qualified_name;
        if ((i == which || which == 2) && edit != NULL)
            edit(&parsed);
        offset = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&parsed, a->attestationData,
                                                     sizeof(a->attestationData), &offset),
                         TSS2_RC_SUCCESS);
        a->size = (uint16_t)offset;
        assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                    a->attestationData, a->size, hash),
                         0);
        mbedtls_mpi_init(&r);
        mbedtls_mpi_init(&s);
        assert_int_equal(mbedtls_ecdsa_sign(&soft->key.grp, &r, &s, &soft->key.d, hash, 32,
                                            tether_random_mbedtls, NULL),
                         0);
        assert_int_equal(mbedtls_mpi_write_binary(&r, sig->signature.ecdsa.signatureR.buffer, 32),
                         0);
        assert_int_equal(mbedtls_mpi_write_binary(&s, sig->signature.ecdsa.signatureS.buffer, 32),
                         0);
        mbedtls_mpi_free(&r);
        mbedtls_mpi_free(&s);
    }
}

static void edit_unsafe(TPMS_ATTEST *a)
{
    a->clockInfo.safe = TPM2_NO;
}

static void edit_firmware(TPMS_ATTEST *a)
{
    a->firmwareVersion++;
}

static void edit_magic(TPMS_ATTEST *a)
{
    a->magic = 0xff544348u;
}

/* Evidence of d with one change, refused with code and nothing stored. */
static void expect_evidence_refusal(fixture_t *f, const tether_evidence_t *ev, const char *code)
{
    char *token = encode(ev);

    expect_refusal(f, token, 400, "invalid_grant", code);
    free(token);
}

static void every_evidence_refusal(void **state)
{
    fixture_t *f = *state;
    device_t d, other;
    challenge_t ch;
    tether_evidence_t ev, tmp;
    soft_ak_t soft;
    uint8_t other_key[TETHER_NONCE_KEY_SIZE];
    TPML_DIGEST_VALUES extend;
    char *ok;

    enrol(f, &d, 2);
    enrol(f, &other, 3);
    /* A first accepted exchange: the PCR reference and the last clock. */
    ok = exchange_ok(f, &d);
    free(ok);

    expect_refusal(f, "AAAA", 400, "invalid_grant", "malformed_evidence");

    /* bad_signature: one bit of a signature; and another TPM's evidence
     * sent under this device's id. */
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    ev.quote_signature.signature.ecdsa.signatureS.buffer[5] ^= 1;
    expect_evidence_refusal(f, &ev, "bad_signature");
    get_challenge(f, other.id, &ch);
    attest(&other, &ch, &ev);
    snprintf(ev.device_id, sizeof(ev.device_id), "%s", d.id);
    expect_evidence_refusal(f, &ev, "bad_signature");

    /* wrong_attestation_type: the two attestations swapped. */
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    tmp = ev;
    ev.nv_certify = tmp.quote;
    ev.nv_signature = tmp.quote_signature;
    ev.quote = tmp.nv_certify;
    ev.quote_signature = tmp.nv_signature;
    expect_evidence_refusal(f, &ev, "wrong_attestation_type");

    /* nonce_invalid: another fleet's nonce; nonce_expired: 60 s later. */
    assert_int_equal(tether_random_bytes(other_key, sizeof(other_key)), TETHER_OK);
    get_challenge(f, d.id, &ch);
    assert_int_equal(tether_nonce_issue(other_key, sizeof(other_key), (uint64_t)test_now, 60,
                                        ch.nonce),
                     TETHER_OK);
    attest(&d, &ch, &ev);
    expect_evidence_refusal(f, &ev, "nonce_invalid");
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    test_now += TETHER_CHALLENGE_TTL;
    expect_evidence_refusal(f, &ev, "nonce_expired");
    test_now += 1;

    /* extra_data_mismatch: the usage report changed after the TPM signed. */
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    ev.usage[2] = 'X';
    expect_evidence_refusal(f, &ev, "extra_data_mismatch");

    /* wrong_counter: another NV counter of the same TPM certified. */
    assert_int_equal(tether_tpm_nv_define_counter(&d.tpm, OTHER_COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&d.tpm, OTHER_COUNTER), TETHER_OK);
    d.state.counter_index = OTHER_COUNTER;
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    d.state.counter_index = COUNTER;
    expect_evidence_refusal(f, &ev, "wrong_counter");

    /* pcr_mismatch: fewer PCRs than the fleet asks for; and a PCR changed
     * since the first exchange stored the reference. */
    get_challenge(f, d.id, &ch);
    ch.pcrs.pcrSelections[0].pcrSelect[0] = 0x0f;
    attest(&d, &ch, &ev);
    expect_evidence_refusal(f, &ev, "pcr_mismatch");
    memset(&extend, 0, sizeof(extend));
    extend.count = 1;
    extend.digests[0].hashAlg = TPM2_ALG_SHA256;
    memset(extend.digests[0].digest.sha256, 0x42, 32);
    assert_int_equal(tether_tpm_pcr_extend(&d.tpm, 4, &extend), TETHER_OK);
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    expect_evidence_refusal(f, &ev, "pcr_mismatch");

    /* What a genuine TPM never signs, signed by a software key that the
     * device row names as its AK. The other device's evidence serves: its
     * counter has the same index and attributes (so the same name) and its
     * PCRs the values of d's reference. */
    soft_ak_install(f, &d, &soft);
    get_challenge(f, other.id, &ch);
    attest(&other, &ch, &ev);
    snprintf(ev.device_id, sizeof(ev.device_id), "%s", d.id);
    tmp = ev;
    resign(&soft, &tmp, 2, true, NULL); /* still the TPM AK's qualified name */
    expect_evidence_refusal(f, &tmp, "wrong_signer");
    tmp = ev;
    resign(&soft, &tmp, 1, false, edit_magic);
    expect_evidence_refusal(f, &tmp, "wrong_attestation_type");
    device_close(&d);
    device_close(&other);
    mbedtls_ecp_keypair_free(&soft.key);
}

/* The checks after the PCRs, on a device whose PCRs are untouched. */
/* Usage documents that are not the canonical form of a known version,
 * signed by the TPM all the same: refused, nothing changes. */
static void usage_document_refusals(void **state)
{
    static const char *const bad[] = {
        "{}",
        "{\"version\":2,\"exchanges\":0,\"token_requests\":0,\"tokens\":[]}",
        "{\"version\":1, \"exchanges\":0,\"token_requests\":0,\"tokens\":[]}",
        "{\"version\":1,\"exchanges\":01,\"token_requests\":0,\"tokens\":[]}",
        "{\"version\":1,\"exchanges\":1.0,\"token_requests\":0,\"tokens\":[]}",
        "{\"version\":1,\"exchanges\":-1,\"token_requests\":0,\"tokens\":[]}",
        "{\"version\":1,\"token_requests\":0,\"exchanges\":0,\"tokens\":[]}",
        "{\"version\":1,\"exchanges\":9007199254740992,\"token_requests\":0,\"tokens\":[]}",
        "{\"version\":1,\"exchanges\":0,\"token_requests\":0,\"tokens\":[]} ",
        ("{\"version\":1,\"exchanges\":0,\"token_requests\":0,\"tokens\":[{\"jti\":\"a\","
         "\"proofs\":1,\"requests\":0,\"bearer\":0},{\"jti\":\"a\",\"proofs\":1,"
         "\"requests\":0,\"bearer\":0}]}"),
        ("{\"version\":1,\"exchanges\":0,\"token_requests\":0,\"tokens\":[{\"jti\":\"a\","
         "\"requests\":0,\"proofs\":1,\"bearer\":0}]}"),
    };
    fixture_t *f = *state;
    device_t d;
    challenge_t ch;
    tether_evidence_t ev;
    char *ok, *many;
    size_t used;

    enrol(f, &d, 2);
    ok = exchange_ok(f, &d);
    free(ok);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        usage_document = bad[i];
        get_challenge(f, d.id, &ch);
        attest(&d, &ch, &ev);
        expect_evidence_refusal(f, &ev, "usage_document_invalid");
    }
    /* Oversized: 17 tokens, one more than a document may hold. */
    many = malloc(TETHER_EVIDENCE_MAX_USAGE);
    assert_non_null(many);
    used = (size_t)snprintf(many, TETHER_EVIDENCE_MAX_USAGE,
                            "{\"version\":1,\"exchanges\":0,\"token_requests\":0,\"tokens\":[");
    for (int i = 0; i < 17; i++)
        used += (size_t)snprintf(many + used, TETHER_EVIDENCE_MAX_USAGE - used,
                                 "%s{\"jti\":\"t%d\",\"proofs\":0,\"requests\":0,\"bearer\":0}",
                                 i == 0 ? "" : ",", i);
    snprintf(many + used, TETHER_EVIDENCE_MAX_USAGE - used, "]}");
    usage_document = many;
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    expect_evidence_refusal(f, &ev, "usage_document_invalid");
    usage_document = NULL;
    free(many);
    /* The device goes on. */
    ok = exchange_ok(f, &d);
    free(ok);
    device_close(&d);
}

/* A token that a relying party accepted more requests on than the device
 * made (a stolen bearer token): the device's next exchange quarantines it,
 * in the clone path's transaction; the device's own figure passes. */
static void usage_mismatch_quarantines(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *token, *again, doc[256], jti[TETHER_STORE_JTI_SIZE], sql[256];

    enrol(f, &d, 2);
    token = exchange_ok(f, &d);
    token_jti(f, token, jti);
    /* The device made 3 requests; a gateway reports 3 of them. */
    test_now += 5;
    gateway_report(f, &d, jti, 3, "r-honest-000000001");
    test_now += 2; /* the report came before the next nonce */
    snprintf(doc, sizeof(doc),
             "{\"version\":1,\"exchanges\":1,\"token_requests\":1,\"tokens\":[{\"jti\":\"%s\","
             "\"proofs\":3,\"requests\":3,\"bearer\":1}]}",
             jti);
    usage_document = doc;
    again = exchange_ok(f, &d);
    free(again);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 0);
    /* Someone else sends 4 more with the bearer token. */
    gateway_report(f, &d, jti, 4, "r-stolen-000000001");
    test_now += 2;
    again = evidence(f, &d);
    assert_int_equal(post_token(f, again), 403);
    assert_string_equal(text(f, "tether_error"), "usage_mismatch");
    free(again);
    usage_document = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM devices WHERE id = '%s' AND status = 'quarantined'", d.id);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    snprintf(sql, sizeof(sql), "SELECT revoked FROM issued_tokens WHERE jti = '%s'", jti);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    assert_int_equal(fleet_db_alerts(f->path, "kind = 'usage_mismatch'",
                                     "{\"gateway_accepted\": 7, \"device_made\": 3}"),
                     1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM revocations"), 1);
    free(token);
    device_close(&d);
}

static void clock_and_consistency_refusals(void **state)
{
    fixture_t *f = *state;
    device_t d;
    challenge_t ch;
    tether_evidence_t ev, tmp;
    soft_ak_t soft;
    char *ok;

    enrol(f, &d, 4);
    ok = exchange_ok(f, &d);
    free(ok);
    soft_ak_install(f, &d, &soft);
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    /* The software AK's genuine-looking evidence is accepted... */
    tmp = ev;
    resign(&soft, &tmp, 2, false, edit_unsafe);
    expect_evidence_refusal(f, &tmp, "clock_unsafe");
    tmp = ev;
    resign(&soft, &tmp, 0, false, edit_firmware);
    expect_evidence_refusal(f, &tmp, "inconsistent_attestations");
    /* ... unedited, it passes every check. */
    tmp = ev;
    resign(&soft, &tmp, 2, false, NULL);
    {
        char *token = encode(&tmp);
        assert_int_equal(post_token(f, token), 200);
        free(token);
    }
    device_close(&d);
    mbedtls_ecp_keypair_free(&soft.key);
}

static void form_refusals(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *body;
        unsigned status;
        const char *error, *tether_error;
    } cases[] = {
        {"", 400, "invalid_request", "malformed_request"},
        {"grant_type=" EXCHANGE_GRANT, 400, "invalid_request", "malformed_request"},
        {"grant_type=" EXCHANGE_GRANT "&subject_token_type=" EVIDENCE_TYPE
         "&subject_token=AAAA&subject_token=AAAA",
         400, "invalid_request", "malformed_request"},
        {"grant_type=" EXCHANGE_GRANT "&subject_token_type=" EVIDENCE_TYPE
         "&subject_token=AAAA&client_secret=x",
         400, "invalid_request", "malformed_request"},
        {"grant_type=" EXCHANGE_GRANT "&subject_token_type=" EVIDENCE_TYPE "&subject_token=AA%2",
         400, "invalid_request", "malformed_request"},
        {"grant_type=client_credentials&subject_token_type=" EVIDENCE_TYPE "&subject_token=AAAA",
         400, "unsupported_grant_type", "unsupported_grant_type"},
        {"grant_type=" EXCHANGE_GRANT
         "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token=AAAA",
         400, "invalid_request", "unsupported_token_type"},
        {"grant_type=" EXCHANGE_GRANT "&subject_token_type=" EVIDENCE_TYPE
         "&subject_token=AAAA&scope=ai.inference+admin",
         400, "invalid_scope", "invalid_scope"},
        {"grant_type=" EXCHANGE_GRANT "&subject_token_type=" EVIDENCE_TYPE
         "&subject_token=AAAA&audience=https%3A%2F%2Fother.example",
         400, "invalid_target", "invalid_target"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *before = fleet_db_snapshot(f->path);
        char *after;

        if (call(f, "POST", "/v1/token", "application/x-www-form-urlencoded", cases[i].body) !=
            cases[i].status)
            fail_msg("case %zu: %s", i, f->response.body);
        assert_string_equal(text(f, "error"), cases[i].error);
        assert_string_equal(text(f, "tether_error"), cases[i].tether_error);
        after = fleet_db_snapshot(f->path);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
    /* Query parameters carry no credentials here (RFC 6749 section 3.2). */
    {
        tether_http_request_t request;
        tether_http_query_t q = {"subject_token", "AAAA"};

        memset(&request, 0, sizeof(request));
        request.method = "POST";
        request.path = "/v1/token";
        request.content_type = "application/x-www-form-urlencoded";
        request.query[0] = q;
        request.query_count = 1;
        tether_http_response_clear(&f->response);
        tether_router_handle(&f->router, &request, &f->response);
        assert_int_equal(f->response.status, 400);
    }
}

/* A requested scope and audience from the configured sets. */
static void scope_and_audience(void **state)
{
    fixture_t *f = *state;
    tether_fleet_config_error_t error;
    static const char conf[] = "audience = tether,gateway-b\nscope = ai.inference ai.embed\n"
                               "models = gpt-4o,llama-3\ncost_ceiling = 12.50\n";
    device_t d;
    char *ev, *body;
    cJSON *claims = NULL;
    tether_jwt_keyset_t keyset;
    tether_jwt_expect_t expect = {ISSUER, "gateway-b", 0, 0};

    assert_int_equal(tether_fleet_config_parse(conf, strlen(conf), &f->config, &error), TETHER_OK);
    assert_int_equal(tether_token_policy_from_config(&f->config, &f->policy), TETHER_OK);
    default_policy_update(f);
    enrol(f, &d, 5);
    ev = evidence(f, &d);
    body = malloc(strlen(ev) + 512);
    assert_non_null(body);
    sprintf(body, "subject_token=%s%s", ev,
            "&scope=ai.embed&audience=gateway-b&grant_type=" EXCHANGE_GRANT
            "&subject_token_type=" EVIDENCE_TYPE);
    assert_int_equal(call(f, "POST", "/v1/token", "application/x-www-form-urlencoded", body), 200);
    assert_string_equal(text(f, "scope"), "ai.embed");
    expect.now = test_now;
    assert_int_equal(tether_issuer_keys_acquire(&f->keys, test_now, &keyset, NULL), TETHER_OK);
    assert_int_equal(tether_jwt_verify(text(f, "access_token"), strlen(text(f, "access_token")),
                                       &keyset, &expect, &claims),
                     TETHER_OK);
    tether_issuer_keys_release(&f->keys);
    assert_string_equal(claim(claims, "aud")->valuestring, "gateway-b");
    assert_string_equal(claim(claims, "scope")->valuestring, "ai.embed");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(claim(claims, "tether"),
                                                                         "models")),
                     2);
    assert_true(number(claim(claims, "tether"), "cost_ceiling") == 12.5);
    cJSON_Delete(claims);
    /* Without a request: the first audience and every scope. */
    free(ev);
    ev = evidence(f, &d);
    assert_int_equal(post_token(f, ev), 200);
    assert_string_equal(text(f, "scope"), "ai.inference ai.embed");
    free(ev);
    free(body);
    device_close(&d);
}

/* Revoked, quarantined and not enrolled devices get neither a nonce nor a
 * token, and the refusal changes nothing. */
static void device_state_refusals(void **state)
{
    fixture_t *f = *state;
    device_t d;
    tether_store_allow_t row;
    char body[128], *ev;
    static const struct {
        tether_device_action_t action;
        const char *code;
    } steps[] = {
        {TETHER_DEVICE_QUARANTINE, "device_quarantined"},
        {TETHER_DEVICE_REVOKE, "device_revoked"},
        {TETHER_DEVICE_REINSTATE, "device_not_active"},
    };

    enrol(f, &d, 6);
    ev = evidence(f, &d); /* made while active */
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char *before, *after;

        assert_int_equal(tether_store_device_change_status(&f->store, d.id, steps[i].action, "test",
                                                           test_now, NULL),
                         TETHER_OK);
        before = fleet_db_snapshot(f->path);
        snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", d.id);
        assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", body), 403);
        assert_string_equal(text(f, "error"), "invalid_grant");
        assert_string_equal(text(f, "tether_error"), steps[i].code);
        after = fleet_db_snapshot(f->path);
        assert_string_equal(before, after);
        free(before);
        free(after);
        expect_refusal(f, ev, 403, "invalid_grant", steps[i].code);
    }
    free(ev);

    /* Unknown devices, well-formed or not; malformed challenge bodies. */
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json",
                          "{\"device_id\":\"dev_000000000000000000000000\"}"),
                     403);
    assert_string_equal(text(f, "tether_error"), "unknown_device");
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json",
                          "{\"device_id\":\"gateway-7\"}"),
                     403);
    assert_string_equal(text(f, "tether_error"), "unknown_device");
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json",
                          "{\"device_id\":\"a\",\"x\":1}"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json",
                          "{\"device_id\":\"a b\"}"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", "{\"device_id\":7}"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json",
                          "{\"device_id\":\"a\",\"device_id\":\"a\"}"),
                     400);
    /* An allowed device that never enrolled. */
    memset(&row, 0, sizeof(row));
    assert_int_equal(tether_fleet_device_id_new(row.id), TETHER_OK);
    memset(row.ek_sha256, 'a', 64);
    snprintf(row.name, sizeof(row.name), "never-enrolled");
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, test_now, NULL, NULL),
                     TETHER_OK);
    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", row.id);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", body), 403);
    assert_string_equal(text(f, "tether_error"), "device_not_active");
    device_close(&d);
}

/* ---- tests: retries and clones ---- */

static void byte_identical_retry(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *ev = NULL, *first = NULL, *second = NULL, *before, *after;
    cJSON *a = NULL, *b = NULL;

    enrol(f, &d, 7);
    ev = evidence(f, &d);
    assert_int_equal(post_token(f, ev), 200);
    first = strdup(text(f, "access_token"));
    before = fleet_db_snapshot(f->path);
    /* The answer was lost; the agent sends the same evidence again. */
    test_now += 20;
    assert_int_equal(post_token(f, ev), 200);
    assert_int_equal(number(f->json, "expires_in"), 300 - 20);
    second = strdup(text(f, "access_token"));
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after); /* no new row, no alarm */
    assert_int_equal(verify_token(f, first, test_now, &a), TETHER_OK);
    assert_int_equal(verify_token(f, second, test_now, &b), TETHER_OK);
    assert_true(cJSON_Compare(a, b, true)); /* same jti, iat, exp and claims */
    assert_same_token(second, first);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 0);
    assert_int_equal(device_row(f, d.id).status, TETHER_DEVICE_ACTIVE);
    /* Once its nonce has expired, the evidence is refused like any other. */
    test_now += TETHER_CHALLENGE_TTL;
    expect_refusal(f, ev, 400, "invalid_grant", "nonce_expired");
    /* Counted: one token signed, answered twice, then a refusal; both
     * answers went through the store's transaction. */
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"issued\"} 1");
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"retry\"} 1");
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"nonce_expired\"} 1");
    expect_sample(f, "tether_fleetd_tokens_issued_total 1");
    expect_sample(f, "tether_fleetd_store_transaction_duration_seconds_count"
                     "{operation=\"exchange\"} 2");
    expect_sample(f, "tether_fleetd_enrolments_total{step=\"activate\",outcome=\"ok\"} 1");
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(before);
    free(after);
    free(first);
    free(second);
    free(ev);
    device_close(&d);
}

#define EDGE_V1                                                                               \
    "{\"version\":1,\"tokens\":{\"models\":[\"llama3:8b\"],\"cost_ceiling\":2.5,"              \
    "\"lifetime_seconds\":60},\"thresholds\":[],\"sources\":[]}"
#define EDGE_V2                                                                               \
    "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o*\",\"llama3:8b\"],\"cost_ceiling\":0,"   \
    "\"lifetime_seconds\":120},\"thresholds\":[],\"sources\":[]}"

/* A token carries the current version of the policy its device follows:
 * its name, version, models and cost ceiling, and lives its lifetime. */
static void token_follows_policy(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *token;
    cJSON *claims = NULL;
    int64_t version = 0;

    enrol(f, &d, 21);
    token = exchange_ok(f, &d);
    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    expect_policy_claims(claims, "default", 1, "*");
    assert_int_equal(number(claims, "exp") - number(claims, "iat"), 300);
    cJSON_Delete(claims);
    free(token);
    /* Moved to another policy: its claims at the next exchange. */
    assert_int_equal(tether_store_policy_write(&f->store, "edge", EDGE_V1, true, test_now,
                                               &version),
                     TETHER_OK);
    assert_int_equal(tether_store_device_set_policy(&f->store, d.id, "edge", test_now), TETHER_OK);
    test_now += 10;
    token = exchange_ok(f, &d);
    assert_int_equal(number(f->json, "expires_in"), 60);
    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    expect_policy_claims(claims, "edge", 1, "llama3:8b");
    assert_true(number(claim(claims, "tether"), "cost_ceiling") == 2.5);
    /* No sources in the policy: no claim (any source). */
    assert_null(cJSON_GetObjectItemCaseSensitive(claim(claims, "tether"), "sources"));
    assert_int_equal(number(claims, "exp") - number(claims, "iat"), 60);
    cJSON_Delete(claims);
    free(token);
    /* The policy updated: the next token carries version 2. */
    assert_int_equal(tether_store_policy_write(&f->store, "edge", EDGE_V2, false, test_now,
                                               &version),
                     TETHER_OK);
    assert_int_equal(version, 2);
    test_now += 10;
    token = exchange_ok(f, &d);
    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    expect_policy_claims(claims, "edge", 2, "gpt-4o*,llama3:8b");
    assert_true(number(claim(claims, "tether"), "cost_ceiling") == 0);
    assert_int_equal(number(claims, "exp") - number(claims, "iat"), 120);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM issued_tokens WHERE "
                                             "policy = 'edge' AND policy_version = 2"),
                     1);
    cJSON_Delete(claims);
    free(token);
    device_close(&d);
}

#define SOURCES(network, action)                                                              \
    "{\"version\":1,\"tokens\":{\"models\":[\"*\"],\"cost_ceiling\":0,"                         \
    "\"lifetime_seconds\":300},\"thresholds\":[{\"kind\":\"source_networks\",\"value\":1,"   \
    "\"action\":\"" action "\"}],\"sources\":[\"" network "\"]}"

/* The exchange's address (192.0.2.7 here) against the policy's sources:
 * inside, served; outside with alert, served and alerted once; outside
 * with quarantine, 403 source_network_refused, the device quarantined and
 * its tokens revoked in the exchange's transaction. */
static void source_networks_at_exchange(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *token, *ev, *sources, sql[256];
    cJSON *claims = NULL;
    int64_t version = 0;

    enrol(f, &d, 23);
    assert_int_equal(tether_store_policy_write(&f->store, "site", SOURCES("192.0.2.0/24",
                                                                          "quarantine"),
                                               true, test_now, &version),
                     TETHER_OK);
    assert_int_equal(tether_store_device_set_policy(&f->store, d.id, "site", test_now), TETHER_OK);
    token = exchange_ok(f, &d);
    /* The token carries the policy's sources, canonical, for gateways. */
    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    sources = cJSON_PrintUnformatted(
        cJSON_GetObjectItemCaseSensitive(claim(claims, "tether"), "sources"));
    assert_non_null(sources);
    assert_string_equal(sources, "[\"192.0.2.0/24\"]");
    cJSON_free(sources);
    cJSON_Delete(claims);
    free(token);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 0);
    assert_int_equal(tether_store_policy_write(&f->store, "site", SOURCES("10.0.0.0/8", "alert"),
                                               false, test_now, &version),
                     TETHER_OK);
    test_now += 10;
    token = exchange_ok(f, &d);
    free(token);
    test_now += 10;
    token = exchange_ok(f, &d);
    assert_int_equal(fleet_db_alerts(f->path, "kind = 'threshold_exceeded'",
                                     "{\"kind\": \"source_networks\", "
                                     "\"observed\": \"192.0.2.7\", \"action\": \"alert\"}"),
                     1);
    assert_int_equal(tether_store_policy_write(&f->store, "site",
                                               SOURCES("10.0.0.0/8", "quarantine"), false,
                                               test_now, &version),
                     TETHER_OK);
    test_now += 10;
    ev = evidence(f, &d);
    assert_int_equal(post_token(f, ev), 403);
    assert_string_equal(text(f, "error"), "invalid_grant");
    assert_string_equal(text(f, "tether_error"), "source_network_refused");
    free(ev);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM devices WHERE id = '%s' AND status = 'quarantined'", d.id);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM issued_tokens WHERE device_id = '%s' AND revoked = 0", d.id);
    assert_int_equal(fleet_db_count(f->path, sql), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM revocations"), 1);
    free(token);
    device_close(&d);
}

/* A byte-identical retry gets the same token even when the device's
 * policy changed between the two: the claims of the version recorded with
 * the token, not the current one. */
static void retry_keeps_policy(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *ev, *first;
    int64_t version = 0;

    enrol(f, &d, 22);
    ev = evidence(f, &d);
    assert_int_equal(post_token(f, ev), 200);
    first = strdup(text(f, "access_token"));
    assert_non_null(first);
    assert_int_equal(tether_store_policy_write(&f->store, "edge", EDGE_V1, true, test_now,
                                               &version),
                     TETHER_OK);
    assert_int_equal(tether_store_device_set_policy(&f->store, d.id, "edge", test_now), TETHER_OK);
    test_now += 5;
    assert_int_equal(post_token(f, ev), 200);
    assert_same_token(text(f, "access_token"), first);
    /* And after the policy it was issued under got a new version. */
    assert_int_equal(tether_store_policy_write(&f->store, "default", EDGE_V2, false, test_now,
                                               &version),
                     TETHER_OK);
    test_now += 5;
    assert_int_equal(post_token(f, ev), 200);
    assert_same_token(text(f, "access_token"), first);
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"retry\"} 2");
    free(first);
    free(ev);
    device_close(&d);
}

/* A token issued before its policy version was recorded (schema 10) cannot
 * be issued again with the same claims: its retry is refused, and the
 * agent starts over. */
static void retry_of_token_without_policy(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *ev;

    enrol(f, &d, 23);
    ev = evidence(f, &d);
    assert_int_equal(post_token(f, ev), 200);
    fleet_db_exec(f->path, "UPDATE issued_tokens SET policy = NULL, policy_version = NULL");
    test_now += 5;
    expect_refusal(f, ev, 400, "invalid_grant", "nonce_expired");
    free(ev);
    free(exchange_ok(f, &d));
    device_close(&d);
}

/* The containment every clone signal must leave: the device quarantined
 * naming the clone, every unexpired token revoked, a feed entry, one alert
 * of kind with both sightings, and nothing more for either TPM. */
static void expect_contained(fixture_t *f, const device_t *d, const char *kind,
                             uint64_t last_counter, uint64_t this_counter, const char *live_jti)
{
    char sql[256];
    char *details, *reason;
    cJSON *json;
    const cJSON *last, *now;
    tether_store_device_t row = device_row(f, d->id);

    assert_int_equal(row.status, TETHER_DEVICE_QUARANTINED);
    assert_non_null(strstr(row.status_reason, "clone"));
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM issued_tokens WHERE device_id = '%s' AND "
                               "revoked = 0 AND exp > %lld", d->id, (long long)test_now);
    assert_int_equal(fleet_db_count(f->path, sql), 0);
    if (live_jti != NULL) {
        snprintf(sql, sizeof(sql), "SELECT revoked FROM issued_tokens WHERE jti = '%s'", live_jti);
        assert_int_equal(fleet_db_count(f->path, sql), 1);
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM revocations WHERE device_id = '%s' AND jti IS NULL", d->id);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    assert_int_equal(f->feed_hooks, 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM alerts WHERE device_id = '%s' AND kind = '%s'",
             d->id, kind);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 1);
    snprintf(sql, sizeof(sql), "SELECT details FROM alerts WHERE device_id = '%s'", d->id);
    details = fleet_db_text(f->path, sql);
    json = cJSON_Parse(details);
    assert_non_null(json);
    reason = cJSON_GetObjectItemCaseSensitive(json, "reason")->valuestring;
    assert_non_null(strstr(reason, "clone"));
    last = cJSON_GetObjectItemCaseSensitive(json, "last_accepted");
    now = cJSON_GetObjectItemCaseSensitive(json, "this");
    assert_int_equal(number(last, "counter"), last_counter);
    assert_int_equal(number(now, "counter"), this_counter);
    for (int i = 0; i < 2; i++) {
        const cJSON *s = i == 0 ? last : now;
        const cJSON *clock = cJSON_GetObjectItemCaseSensitive(s, "clock_info");
        assert_true(number(clock, "clock") > 0);
        assert_int_equal(number(clock, "resetCount"), 1);
        assert_int_equal(number(clock, "restartCount"), 0);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "source_address")->valuestring,
                            "192.0.2.7");
        assert_true(number(s, "time") >= T0);
    }
    cJSON_Delete(json);
    free(details);
}

static void expect_clone_refused(fixture_t *f, const char *subject_token)
{
    if (post_token(f, subject_token) != 403)
        fail_msg("expected 403 clone_detected, got %u: %s", f->response.status, f->response.body);
    assert_string_equal(text(f, "error"), "invalid_grant");
    assert_string_equal(text(f, "tether_error"), "clone_detected");
}

/* After quarantine, neither TPM gets anything, and nothing changes. */
static void expect_both_shut_out(fixture_t *f, device_t *a, device_t *b)
{
    char body[128], *before = fleet_db_snapshot(f->path), *after;

    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", a->id);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", body), 403);
    assert_string_equal(text(f, "tether_error"), "device_quarantined");
    (void)b;
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void clone_first_then_original(void **state)
{
    fixture_t *f = *state;
    device_t d, clone;
    char *token, *ev;
    cJSON *claims = NULL;

    enrol(f, &d, 8);
    clone_of(f, &d, 8, 1, &clone); /* the state copied right after enrolment */
    token = exchange_ok(f, &clone); /* the clone is first: nothing to tell yet */
    assert_int_equal(device_row(f, d.id).highest_counter, 2);
    assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
    /* The original's clock is ahead (it ran longer): only its counter, equal
     * to the clone's, gives two TPM states away. */
    tick(&d, 400);
    test_now += 30;
    ev = evidence(f, &d);
    expect_clone_refused(f, ev);
    expect_contained(f, &d, "clone_detected", 2, 2,
                     cJSON_GetObjectItemCaseSensitive(claims, "jti")->valuestring);
    expect_both_shut_out(f, &d, &clone);
    cJSON_Delete(claims);
    free(ev);
    free(token);
    device_close(&clone);
    device_close(&d);
}

static void original_first_then_clone(void **state)
{
    fixture_t *f = *state;
    device_t d, clone;
    char *token, *ev;

    enrol(f, &d, 9);
    clone_of(f, &d, 9, 1, &clone);
    token = exchange_ok(f, &d);
    tick(&clone, 4000); /* a clone whose clock runs ahead passes the clock check */
    test_now += 30;
    ev = evidence(f, &clone);
    expect_clone_refused(f, ev);
    expect_contained(f, &d, "clone_detected", 2, 2, NULL);
    assert_int_equal(
        fleet_db_count(f->path, "SELECT count(*) FROM issued_tokens WHERE revoked = 1"), 1);
    free(ev);
    free(token);
    device_close(&clone);
    device_close(&d);
}

/* A TPM state restored from an older snapshot of itself: its counter is
 * behind the highest the fleet accepted. */
static void tpm_state_rolled_back(void **state)
{
    fixture_t *f = *state;
    device_t d, old;
    char *token, *ev;

    enrol(f, &d, 10);
    clone_of(f, &d, 10, 1, &old); /* the snapshot: counter 1 */
    for (int i = 0; i < 3; i++) {
        token = exchange_ok(f, &d);
        free(token);
        test_now += 10;
    }
    assert_int_equal(device_row(f, d.id).highest_counter, 4);
    tick(&old, 4000);
    ev = evidence(f, &old); /* counter 2 */
    expect_clone_refused(f, ev);
    expect_contained(f, &d, "clone_detected", 4, 2, NULL);
    assert_int_equal(
        fleet_db_count(f->path, "SELECT count(*) FROM issued_tokens WHERE revoked = 1"), 3);
    free(ev);
    device_close(&old);
    device_close(&d);
}

/* The second signal: valid evidence whose TPM clock went back, even with a
 * counter above the highest. */
static void clock_regression(void **state)
{
    fixture_t *f = *state;
    device_t d, clone;
    char *token, *ev;

    enrol(f, &d, 11);
    clone_of(f, &d, 11, 10, &clone); /* counter ahead, clock behind */
    tick(&d, 100);
    token = exchange_ok(f, &d);
    test_now += 30;
    ev = evidence(f, &clone);
    expect_clone_refused(f, ev);
    assert_non_null(strstr(text(f, "error_description"), "clock"));
    expect_contained(f, &d, "clock_regression", 2, 11, NULL);
    expect_sample(f, "tether_fleetd_clone_alerts_total{signal=\"clock_regression\"} 1");
    expect_sample(f, "tether_fleetd_clone_alerts_total{signal=\"counter_not_increasing\"} 0");
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"clone_detected\"} 1");
    free(ev);
    free(token);
    device_close(&clone);
    device_close(&d);
}

/* What a replay or a malleated copy must leave: the device active, no
 * alert, nothing on the revocation feed, and every token it was issued
 * still valid (not revoked, verifying with the published keys). */
static void expect_unharmed(fixture_t *f, const device_t *d, char *const *tokens, size_t count)
{
    char sql[256];

    assert_int_equal(device_row(f, d->id).status, TETHER_DEVICE_ACTIVE);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts"), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM revocations"), 0);
    assert_int_equal(f->feed_hooks, 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM issued_tokens WHERE device_id = '%s' AND revoked = 1", d->id);
    assert_int_equal(fleet_db_count(f->path, sql), 0);
    for (size_t i = 0; i < count; i++) {
        cJSON *claims = NULL;

        assert_int_equal(verify_token(f, tokens[i], test_now, &claims), TETHER_OK);
        cJSON_Delete(claims);
    }
}

static void free_all(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
}

/* Evidence replayed after a newer exchange, within its nonce's life: its
 * nonce was used up by its own exchange, so it is a replay, not a clone
 * (a clone answers a fresh nonce). Refused as nonce_reused; nothing changes.
 * Before nonces were single-use its clock, behind the newer one's, had the
 * device quarantined: anyone who saw one exchange could take it down. */
static void replayed_evidence(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *first, *tokens[3];

    enrol(f, &d, 12);
    first = evidence(f, &d);
    assert_int_equal(post_token(f, first), 200);
    tokens[0] = strdup(text(f, "access_token"));
    test_now += 5;
    tokens[1] = exchange_ok(f, &d);
    test_now += 5; /* within the first nonce's minute */
    expect_refusal(f, first, 400, "invalid_grant", "nonce_reused");
    expect_unharmed(f, &d, tokens, 2);
    /* The device goes on as before. */
    tokens[2] = exchange_ok(f, &d);
    assert_int_equal(device_row(f, d.id).highest_counter, 4);
    free_all(tokens, 3);
    free(first);
    device_close(&d);
}

/* Posts evidence that must be accepted; its access token (malloc'd). */
static char *post_accepted(fixture_t *f, const tether_evidence_t *ev)
{
    char *subject_token = encode(ev);
    char *access_token;

    if (post_token(f, subject_token) != 200)
        fail_msg("evidence refused: %s", f->response.body);
    free(subject_token);
    access_token = strdup(text(f, "access_token"));
    assert_non_null(access_token);
    return access_token;
}

/* A zero byte put in front of a signature scalar (r or s). */
static void prepend_zero(TPM2B_ECC_PARAMETER *p)
{
    TPM2B_ECC_PARAMETER padded;

    assert_true(p->size < sizeof(p->buffer));
    memset(&padded, 0, sizeof(padded));
    padded.size = (UINT16)(p->size + 1);
    memcpy(padded.buffer + 1, p->buffer, p->size);
    *p = padded;
}

/* An accepted evidence re-encoded by whoever saw it (a TLS-terminating
 * proxy, a logging middlebox) and posted again within its nonce's life.
 * Once that quarantined the device: the retry fingerprint hashed the
 * signature bytes, and verification took other encodings. */
static void malleated_evidence(void **state)
{
    fixture_t *f = *state;
    device_t d;
    challenge_t ch;
    tether_evidence_t ev, tmp;
    char *token, *before, *after, *tokens[2];

    enrol(f, &d, 13);
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &ev);
    tokens[0] = post_accepted(f, &ev);
    /* r or s with a leading zero byte: no TPM writes that; refused as a bad
     * signature, nothing changes. */
    tmp = ev;
    prepend_zero(&tmp.quote_signature.signature.ecdsa.signatureR);
    expect_evidence_refusal(f, &tmp, "bad_signature");
    tmp = ev;
    prepend_zero(&tmp.nv_signature.signature.ecdsa.signatureS);
    expect_evidence_refusal(f, &tmp, "bad_signature");
    /* s replaced by n - s in both signatures: valid (a TPM may sign with a
     * high s), the same attested content, so a retry: the same token. */
    tmp = ev;
    assert_int_equal(tether_tpm_fake_negate_s(&tmp.quote_signature), TETHER_OK);
    assert_int_equal(tether_tpm_fake_negate_s(&tmp.nv_signature), TETHER_OK);
    token = encode(&tmp);
    before = fleet_db_snapshot(f->path);
    test_now += 5;
    assert_int_equal(post_token(f, token), 200);
    assert_same_token(text(f, "access_token"), tokens[0]);
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    /* After a newer exchange the malleated copy is a replay. */
    tokens[1] = exchange_ok(f, &d);
    test_now += 5;
    expect_refusal(f, token, 400, "invalid_grant", "nonce_reused");
    expect_unharmed(f, &d, tokens, 2);
    free(before);
    free(after);
    free(token);
    free_all(tokens, 2);
    device_close(&d);
}

/* One nonce answered twice by the TPM (each with its own counter): the
 * first accepted uses the nonce up, and any other evidence over it is a
 * replay, whatever its counter: one below the highest (which on a fresh
 * nonce is the clone signal) or one above. */
static void nonce_reused_with_other_evidence(void **state)
{
    fixture_t *f = *state;
    device_t d;
    challenge_t ch;
    tether_evidence_t lower, accepted, higher;
    char *token, *tokens[1];

    enrol(f, &d, 14);
    get_challenge(f, d.id, &ch);
    attest(&d, &ch, &lower);    /* counter 2 */
    attest(&d, &ch, &accepted); /* counter 3 */
    attest(&d, &ch, &higher);   /* counter 4 */
    tokens[0] = post_accepted(f, &accepted);
    expect_evidence_refusal(f, &lower, "nonce_reused");
    expect_evidence_refusal(f, &higher, "nonce_reused");
    assert_int_equal(device_row(f, d.id).highest_counter, 3);
    expect_unharmed(f, &d, tokens, 1);
    /* The rows of used nonces go once their nonce has expired. */
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM used_nonces"), 1);
    test_now += TETHER_CHALLENGE_TTL;
    token = exchange_ok(f, &d);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM used_nonces"), 1);
    free(token);
    free_all(tokens, 1);
    device_close(&d);
}

/* Evidence that never reached the fleet (withheld by whoever sat on the
 * path, or lost after the counter went up) and is sent after a newer
 * exchange: its nonce is fresh, but older than the newer exchange's. Once
 * that was a clone sighting: anyone on the path could hold one exchange
 * back and take the device down. */
static void withheld_evidence(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *withheld, *tokens[1];

    enrol(f, &d, 17);
    withheld = evidence(f, &d); /* counter 2, never delivered */
    test_now += 5;
    tokens[0] = exchange_ok(f, &d); /* counter 3 */
    test_now += 5;
    expect_refusal(f, withheld, 400, "invalid_grant", "nonce_expired");
    expect_unharmed(f, &d, tokens, 1);
    free(withheld);
    free_all(tokens, 1);
    device_close(&d);
}

/* The next challenge of the last token answer, as the agent reads it;
 * returns its valid_in. */
static int64_t next_challenge(fixture_t *f, challenge_t *ch)
{
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(f->json, "next_challenge");
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(next, "nonce");
    const cJSON *pcrs = cJSON_GetObjectItemCaseSensitive(next, "pcr_selection");
    size_t len = 0;
    int64_t valid_in;

    assert_true(cJSON_IsObject(next));
    assert_int_equal(cJSON_GetArraySize(next), 4);
    assert_true(cJSON_IsString(nonce) && cJSON_IsString(pcrs));
    valid_in = (int64_t)number(next, "valid_in");
    /* Open for one challenge's life from the window's opening. */
    assert_int_equal(number(next, "expires_in"), valid_in + TETHER_CHALLENGE_TTL);
    assert_int_equal(tether_base64url_decode(nonce->valuestring, strlen(nonce->valuestring),
                                             ch->nonce, sizeof(ch->nonce), &len),
                     TETHER_OK);
    assert_int_equal(len, TETHER_NONCE_SIZE);
    assert_string_equal(pcrs->valuestring, "sha256:0,1,2,3,4,5,6,7");
    assert_int_equal(tether_token_pcr_selection_parse(pcrs->valuestring, &ch->pcrs), TETHER_OK);
    return valid_in;
}

/* One round trip per refresh: each token comes with the nonce of the next
 * exchange, usable from the scheduled refresh (2/3 of the token's life,
 * give or take 5 %) for one challenge's life, once. */
static void next_challenge_per_token(void **state)
{
    fixture_t *f = *state;
    device_t d;
    challenge_t next, later;
    tether_evidence_t early, ev, again;
    char *tokens[2];
    int64_t issued = T0 + 10, valid_in;

    enrol(f, &d, 21);
    test_now = issued;
    tokens[0] = exchange_ok(f, &d);
    valid_in = next_challenge(f, &next);
    assert_true(valid_in >= 300 * 2 / 3 - 15 && valid_in <= 300 * 2 / 3 - 15 + 30);

    /* Before its window (beyond the replicas' leeway): refused, nothing
     * recorded; the agent then asks POST /v1/challenge. */
    test_now = issued + valid_in - TETHER_NONCE_WINDOW_LEEWAY - 1;
    attest(&d, &next, &early);
    expect_evidence_refusal(f, &early, "nonce_not_yet_valid");
    assert_int_equal(device_row(f, d.id).highest_counter, 2);

    /* At the scheduled refresh: one request, accepted, and a next one. */
    test_now = issued + valid_in;
    attest(&d, &next, &ev);
    tokens[1] = post_accepted(f, &ev);
    assert_int_equal(device_row(f, d.id).highest_counter, 4);
    valid_in = next_challenge(f, &later);

    /* Used once: other evidence over it is a replay, as for any nonce. */
    attest(&d, &next, &again);
    expect_evidence_refusal(f, &again, "nonce_reused");
    expect_unharmed(f, &d, tokens, 2);

    /* Past its window it is expired like a challenge. */
    test_now += valid_in + TETHER_CHALLENGE_TTL;
    attest(&d, &later, &ev);
    expect_evidence_refusal(f, &ev, "nonce_expired");
    assert_int_equal(device_row(f, d.id).status, TETHER_DEVICE_ACTIVE);
    free_all(tokens, 2);
    device_close(&d);
}

/* Evidence over a next challenge that never reached the fleet, then an
 * exchange over a challenge a few seconds later: the first is older
 * evidence, not a clone's, because every nonce expires one challenge life
 * after its window opens (the clone rule orders nonces by expiry). */
static void withheld_next_challenge_evidence(void **state)
{
    fixture_t *f = *state;
    device_t d;
    challenge_t next;
    tether_evidence_t withheld;
    char *tokens[2];
    int64_t valid_in;

    enrol(f, &d, 22);
    test_now = T0 + 10;
    tokens[0] = exchange_ok(f, &d);
    valid_in = next_challenge(f, &next);
    test_now += valid_in;
    attest(&d, &next, &withheld); /* counter 3, never delivered */
    test_now += 5;
    tokens[1] = exchange_ok(f, &d); /* counter 4, over a challenge */
    expect_evidence_refusal(f, &withheld, "nonce_expired");
    assert_int_equal(device_row(f, d.id).highest_counter, 4);
    expect_unharmed(f, &d, tokens, 2);
    free_all(tokens, 2);
    device_close(&d);
}

/* A power loss: the TPM restarts without TPM2_Shutdown, so its clock is not
 * safe until it next writes Clock to NV (up to about 70 minutes on a real
 * chip). resetCount went up since the last accepted exchange: the device
 * gets its token at once, and on the same boot again. */
static void power_loss(void **state)
{
    fixture_t *f = *state;
    device_t d, clone;
    char *tokens[3], *ev, sql[256];

    enrol(f, &d, 15);
    clone_of(f, &d, 15, 10, &clone);
    tokens[0] = exchange_ok(f, &d);
    tether_tpm_fake_power_loss(&d.tpm);
    test_now += 30;
    tokens[1] = exchange_ok(f, &d);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM devices WHERE id = '%s' AND last_clock_safe = 0 AND "
             "last_reset_count = 2 AND last_restart_count = 0",
             d.id);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    test_now += 30;
    tokens[2] = exchange_ok(f, &d);
    expect_unharmed(f, &d, tokens, 3);
    /* An unsafe clock that went back on that same boot is no power loss:
     * a second TPM state (its counter ahead, its clock behind). */
    tether_tpm_fake_power_loss(&clone.tpm);
    test_now += 30;
    ev = evidence(f, &clone);
    expect_clone_refused(f, ev);
    assert_int_equal(device_row(f, d.id).status, TETHER_DEVICE_QUARANTINED);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM alerts WHERE device_id = '%s' AND kind = 'clock_regression'",
             d.id);
    assert_int_equal(fleet_db_count(f->path, sql), 1);
    free(ev);
    free_all(tokens, 3);
    device_close(&clone);
    device_close(&d);
}

/* Right after enrolment nothing shows a TPM Reset: an unsafe clock on the
 * first exchange is refused (the agent tries again once the TPM has
 * written its clock), and nothing changes. */
static void unsafe_clock_on_first_exchange(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *ev;

    enrol(f, &d, 16);
    tether_tpm_fake_power_loss(&d.tpm);
    ev = evidence(f, &d);
    expect_refusal(f, ev, 400, "invalid_grant", "clock_unsafe");
    free(ev);
    device_close(&d);
}

/* After a quarantine, an operator's reinstate and a new enrolment, the
 * device starts over: new AK, a new PCR reference (trust on first use
 * again), no last sighting, and its counter (the same NV index) goes on. */
static void reenrolment_starts_over(void **state)
{
    fixture_t *f = *state;
    device_t d;
    TPML_DIGEST_VALUES extend;
    char *token, *ev, sql[256], *before_digest, *after_digest;

    enrol(f, &d, 16);
    token = exchange_ok(f, &d);
    free(token);
    snprintf(sql, sizeof(sql), "SELECT pcr_digest FROM devices WHERE id = '%s'", d.id);
    before_digest = fleet_db_text(f->path, sql);
    /* New firmware: the old reference no longer matches. */
    memset(&extend, 0, sizeof(extend));
    extend.count = 1;
    extend.digests[0].hashAlg = TPM2_ALG_SHA256;
    memset(extend.digests[0].digest.sha256, 0x17, 32);
    assert_int_equal(tether_tpm_pcr_extend(&d.tpm, 0, &extend), TETHER_OK);
    ev = evidence(f, &d);
    expect_refusal(f, ev, 400, "invalid_grant", "pcr_mismatch");
    free(ev);
    assert_int_equal(tether_store_device_change_status(&f->store, d.id, TETHER_DEVICE_QUARANTINE,
                                                       "firmware check", test_now, NULL),
                     TETHER_OK);
    assert_int_equal(tether_store_device_change_status(&f->store, d.id, TETHER_DEVICE_REINSTATE,
                                                       "firmware update approved", test_now,
                                                       NULL),
                     TETHER_OK);
    test_now += 100;
    enrol_tpm(f, &d);
    assert_int_equal(fleet_db_count(f->path,
                                    "SELECT count(*) FROM devices WHERE pcr_digest IS NULL AND "
                                    "last_fingerprint IS NULL AND last_address IS NULL AND "
                                    "last_seen_at IS NULL AND highest_counter = 0"),
                     1);
    token = exchange_ok(f, &d);
    after_digest = fleet_db_text(f->path, sql);
    assert_string_not_equal(before_digest, after_digest);
    assert_true(device_row(f, d.id).highest_counter > 2);
    free(token);
    free(before_digest);
    free(after_digest);
    device_close(&d);
}

/* ---- tests: lifetimes and keys ---- */

static void lifetime_clamped(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *line;
        unsigned lifetime;
    } cases[] = {
        {"token_lifetime_seconds = 5\n", 30},
        {"token_lifetime_seconds = 99999\n", 3600},
        {"token_lifetime_seconds = 45\n", 45},
    };
    tether_fleet_config_error_t error;
    device_t d;

    enrol(f, &d, 13);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *token;
        cJSON *claims = NULL;

        assert_int_equal(tether_fleet_config_parse(cases[i].line, strlen(cases[i].line),
                                                   &f->config, &error),
                         TETHER_OK);
        assert_int_equal(tether_fleet_config_token_lifetime(&f->config), cases[i].lifetime);
        assert_int_equal(tether_token_policy_from_config(&f->config, &f->policy), TETHER_OK);
        default_policy_update(f);
        test_now += 10;
        token = exchange_ok(f, &d);
        assert_int_equal(number(f->json, "expires_in"), cases[i].lifetime);
        assert_int_equal(verify_token(f, token, test_now, &claims), TETHER_OK);
        assert_int_equal(number(claims, "exp") - number(claims, "iat"), cases[i].lifetime);
        cJSON_Delete(claims);
        free(token);
    }
    assert_int_equal(tether_fleet_config_parse("token_lifetime_seconds = 0\n",
                                               strlen("token_lifetime_seconds = 0\n"), &f->config,
                                               &error),
                     TETHER_ERR_PARSE);
    device_close(&d);
}

static void key_rotation(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *ev1, *old_token, *new_token, *old_kid, *new_kid;
    int64_t old_exp;
    cJSON *claims = NULL;
    jwks_t set;
    const cJSON *keys, *retired_json;
    tether_store_issuer_key_t active, retired;

    enrol(f, &d, 14);
    ev1 = evidence(f, &d);
    assert_int_equal(post_token(f, ev1), 200);
    old_token = strdup(text(f, "access_token"));
    old_kid = token_kid(old_token);
    old_exp = T0 + 300;

    /* The old key is published until its last token expires. */
    test_now = T0 + 10;
    assert_int_equal(tether_issuer_keys_rotate(&f->keys, test_now, &active, &retired), TETHER_OK);
    assert_string_equal(retired.kid, old_kid);
    assert_int_equal(retired.retired_at, T0 + 10);
    assert_int_equal(retired.not_after, old_exp);
    assert_int_equal(active.retired_at, 0);
    assert_string_equal(active.kid, tether_issuer_keys_active_kid(&f->keys));
    {
        char path[400];
        struct stat st;

        snprintf(path, sizeof(path), "%s/issuer-keys/%s.pem", f->dir, active.kid);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        snprintf(path, sizeof(path), "%s/issuer-keys", f->dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    /* GET /v1/admin/keys (read role). */
    assert_int_equal(admin_call(f, "GET", "/v1/admin/keys"), 200);
    keys = cJSON_GetObjectItemCaseSensitive(f->json, "keys");
    assert_int_equal(cJSON_GetArraySize(keys), 2);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(keys, 0), "state")->valuestring,
        "retired");
    assert_int_equal(number(cJSON_GetArrayItem(keys, 0), "not_after"), old_exp);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(keys, 1), "state")->valuestring,
        "active");

    /* Both keys are published; the old token still verifies. */
    test_now = T0 + 20;
    fetch_jwks(f, &set);
    assert_int_equal(set.count, 2);
    jwks_free(&set);
    assert_int_equal(verify_token(f, old_token, test_now, NULL), TETHER_OK);

    /* New tokens are signed by the new key. */
    new_token = exchange_ok(f, &d);
    new_kid = token_kid(new_token);
    assert_string_not_equal(new_kid, old_kid);
    assert_string_equal(new_kid, active.kid);
    assert_int_equal(verify_token(f, new_token, test_now, &claims), TETHER_OK);
    cJSON_Delete(claims);

    /* Rotated again through the admin API (security role; its clock is
     * the system's, so not_after is at least now). */
    assert_int_equal(admin_call(f, "POST", "/v1/admin/keys/rotate"), 201);
    retired_json = cJSON_GetObjectItemCaseSensitive(f->json, "retired");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(retired_json, "kid")->valuestring,
                        new_kid);
    assert_true(number(retired_json, "not_after") >= T0 + 20 + 300);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(f->json, "active"), "state")
                            ->valuestring,
                        "active");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(f->json, "active"), "kid")
                            ->valuestring,
                        tether_issuer_keys_active_kid(&f->keys));

    /* A restart loads every published key, with the newest signing. */
    snprintf(active.kid, sizeof(active.kid), "%s", tether_issuer_keys_active_kid(&f->keys));
    tether_issuer_keys_free(&f->keys);
    open_keys(f);
    assert_string_equal(tether_issuer_keys_active_kid(&f->keys), active.kid);
    fetch_jwks(f, &set);
    assert_int_equal(set.count, 3);
    jwks_free(&set);

    /* Past the first key's not_after, it is no longer published... */
    test_now = old_exp + 1;
    fetch_jwks(f, &set);
    assert_int_equal(set.count, 2);
    jwks_free(&set);
    assert_int_equal(verify_token(f, old_token, test_now, NULL), TETHER_ERR_UNKNOWN_KEY);
    /* ... and a fleetd starting now does not load it. */
    tether_issuer_keys_free(&f->keys);
    open_keys(f);
    fetch_jwks(f, &set);
    assert_int_equal(set.count, 2);
    for (size_t i = 0; i < set.count; i++)
        assert_string_not_equal(set.kid[i], old_kid);
    jwks_free(&set);
    free(ev1);
    free(old_kid);
    free(new_kid);
    free(old_token);
    free(new_token);
    device_close(&d);
}

/* A byte-identical retry after a rotation gets the token signed by the
 * key that first signed it. */
static void retry_after_rotation(void **state)
{
    fixture_t *f = *state;
    device_t d;
    char *ev, *first, *kid;

    enrol(f, &d, 15);
    ev = evidence(f, &d);
    assert_int_equal(post_token(f, ev), 200);
    first = strdup(text(f, "access_token"));
    assert_int_equal(tether_issuer_keys_rotate(&f->keys, test_now + 1, NULL, NULL), TETHER_OK);
    test_now += 5;
    assert_int_equal(post_token(f, ev), 200);
    kid = token_kid(text(f, "access_token"));
    assert_string_not_equal(kid, tether_issuer_keys_active_kid(&f->keys));
    assert_string_equal(first, text(f, "access_token"));
    free(kid);
    free(first);
    free(ev);
    device_close(&d);
}

/* ---- tests: pure parts ---- */

/* GET /metrics: the read role's, never public; the exposition text under
 * its media type, the route's pattern as the HTTP layer's label. */
static void metrics_endpoint(void **state)
{
    fixture_t *f = *state;
    char fleet_only[TETHER_SECRET_TOKEN_SIZE], authorization[32 + TETHER_SECRET_TOKEN_SIZE];
    tether_http_request_t request;
    tether_http_response_t response;

    memset(&request, 0, sizeof(request));
    memset(&response, 0, sizeof(response));
    request.method = "GET";
    request.path = TETHER_FLEET_PATH_METRICS;
    tether_router_handle(&f->router, &request, &response);
    assert_int_equal(response.status, 401);
    assert_string_equal(response.route, TETHER_FLEET_PATH_METRICS);
    tether_http_response_clear(&response);

    fleet_fixture_admin_token(&f->store, fleet_only, TETHER_ROLE_FLEET);
    snprintf(authorization, sizeof(authorization), "Bearer %s", fleet_only);
    request.authorization = authorization;
    tether_router_handle(&f->router, &request, &response);
    assert_int_equal(response.status, 403);
    tether_http_response_clear(&response);

    snprintf(authorization, sizeof(authorization), "Bearer %s", f->admin_token);
    tether_router_handle(&f->router, &request, &response);
    assert_int_equal(response.status, 200);
    assert_string_equal(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(response.body, "# TYPE tether_fleetd_exchanges_total counter\n"));
    assert_non_null(strstr(response.body, "\nprocess_start_time_seconds 1700000000\n"));
    assert_non_null(strstr(response.body, "\ntether_fleetd_build_info{version=\""));
    tether_http_response_clear(&response);

    /* A path with an id is labelled by its pattern: one series for all ids. */
    assert_int_equal(admin_call(f, "GET", TETHER_FLEET_PATH_DEVICES "/no-such-device"), 404);
    assert_string_equal(f->response.route, TETHER_FLEET_PATH_DEVICES "/*");
    assert_int_equal(admin_call(f, "GET", "/v1/admin/no-such-endpoint"), 404);
    assert_null(f->response.route);
    tether_wipe(fleet_only, sizeof(fleet_only));
}

static void clone_rule(void **state)
{
    tether_store_exchange_device_t *row = calloc(1, sizeof(*row));
    tether_store_exchange_t ex;

    (void)state;
    assert_non_null(row);
    memset(&ex, 0, sizeof(ex));
    row->device.status = TETHER_DEVICE_ACTIVE;
    row->device.has_counter = true;
    row->device.highest_counter = 7;
    row->has_last = true;
    memset(row->last_fingerprint, 0xaa, 32);
    memset(ex.fingerprint, 0xbb, 32);
    ex.sighting.counter = 8;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_ACCEPT);
    ex.sighting.counter = 100; /* gaps are normal */
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_ACCEPT);
    ex.sighting.counter = 7;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_CLONE);
    memset(ex.fingerprint, 0xaa, 32);
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_RETRY);
    ex.sighting.counter = 6; /* the fingerprint of the last, a lower counter: impossible */
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_CLONE);
    ex.sighting.counter = 8;
    ex.clock_regression = true;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false),
                     TETHER_STORE_EXCHANGE_CLOCK_REGRESSION);
    /* A used nonce: a replay, whatever the counter or clock; never an alarm. */
    assert_int_equal(tether_store_exchange_decide(row, &ex, true),
                     TETHER_STORE_EXCHANGE_NONCE_REUSED);
    ex.clock_regression = false;
    memset(ex.fingerprint, 0xbb, 32);
    for (uint64_t counter = 6; counter <= 8; counter++) {
        ex.sighting.counter = counter;
        assert_int_equal(tether_store_exchange_decide(row, &ex, true),
                         TETHER_STORE_EXCHANGE_NONCE_REUSED);
    }
    /* ... but the retry of the last accepted exchange used it itself. */
    memset(ex.fingerprint, 0xaa, 32);
    ex.sighting.counter = 7;
    assert_int_equal(tether_store_exchange_decide(row, &ex, true), TETHER_STORE_EXCHANGE_RETRY);
    /* A retry whose clock is flagged (the same evidence accepted meanwhile
     * by a concurrent request) is still a retry. */
    ex.clock_regression = true;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_RETRY);
    /* A fresh nonce issued before the last accepted exchange's (it expires
     * earlier): evidence older than that exchange, whatever its clock. */
    memset(ex.fingerprint, 0xbb, 32);
    row->last_nonce_expires_at = T0 + 60;
    ex.nonce_expires_at = T0 + 59;
    for (uint64_t counter = 6; counter <= 7; counter++) {
        ex.sighting.counter = counter;
        ex.clock_regression = true;
        assert_int_equal(tether_store_exchange_decide(row, &ex, false),
                         TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED);
        ex.clock_regression = false;
        assert_int_equal(tether_store_exchange_decide(row, &ex, false),
                         TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED);
        assert_int_equal(tether_store_exchange_decide(row, &ex, true),
                         TETHER_STORE_EXCHANGE_NONCE_REUSED);
    }
    ex.sighting.counter = 8; /* above the highest: in order */
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_ACCEPT);
    /* Issued in the same second as the last accepted one: fresh. */
    ex.sighting.counter = 7;
    ex.nonce_expires_at = T0 + 60;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_CLONE);
    /* Unknown (the last exchange was accepted before schema 5): fresh. */
    row->last_nonce_expires_at = 0;
    ex.nonce_expires_at = T0 + 59;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_CLONE);
    row->device.status = TETHER_DEVICE_QUARANTINED;
    assert_int_equal(tether_store_exchange_decide(row, &ex, false),
                     TETHER_STORE_EXCHANGE_NOT_ACTIVE);
    assert_int_equal(tether_store_exchange_decide(row, &ex, true),
                     TETHER_STORE_EXCHANGE_NOT_ACTIVE);
    free(row);
}

static void exchange_config_keys(void **state)
{
    static const char *const refused[] = {
        "pcr_selection = sha1:0,1\n",   "pcr_selection = sha256:1,0\n",
        "pcr_selection = sha256:24\n",  "pcr_selection = sha256:01\n",
        "pcr_selection = sha256:\n",    "pcr_selection = sha256:0,,1\n",
        "issuer = http://x\n",          "issuer = https://x/\n",
        "issuer = https://x?a=b\n",     "audience = a,,b\n",
        "audience = a b\n",             "scope = a  b\n",
        "scope = a\"b\n",               "models = \n",
        "cost_ceiling = -1\n",          "cost_ceiling = 1.\n",
        "cost_ceiling = 01\n",          "cost_ceiling = 1e3\n",
        "usage_mismatch_action = block\n", "usage_mismatch_action = Alert\n",
    };
    tether_fleet_config_t config, again;
    tether_fleet_config_error_t error;
    tether_token_policy_t policy;
    char *text = NULL;
    static const char good[] = "pcr_selection = sha256:0,2,7,23\nissuer = https://fleet.example\n"
                               "audience = a,b\nscope = x y\nmodels = m1\ncost_ceiling = 0.25\n"
                               "token_lifetime_seconds = 600\nusage_mismatch_action = alert\n";

    (void)state;
    /* A usage mismatch quarantines unless the fleet says alert. */
    tether_fleet_config_init(&config);
    assert_int_equal(tether_token_policy_from_config(&config, &policy), TETHER_OK);
    assert_int_equal(policy.usage_mismatch_action, TETHER_STORE_USAGE_QUARANTINE);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        tether_fleet_config_init(&config);
        if (tether_fleet_config_parse(refused[i], strlen(refused[i]), &config, &error) !=
            TETHER_ERR_PARSE)
            fail_msg("accepted: %s", refused[i]);
        assert_int_equal(error.line, 1);
    }
    tether_fleet_config_init(&config);
    assert_int_equal(tether_fleet_config_parse(good, strlen(good), &config, &error), TETHER_OK);
    assert_int_equal(tether_token_policy_from_config(&config, &policy), TETHER_OK);
    assert_string_equal(policy.issuer, "https://fleet.example");
    assert_int_equal(policy.lifetime_seconds, 600);
    assert_int_equal(policy.pcr_selection.pcrSelections[0].pcrSelect[0], 0x85);
    assert_int_equal(policy.pcr_selection.pcrSelections[0].pcrSelect[2], 0x80);
    assert_int_equal(policy.usage_mismatch_action, TETHER_STORE_USAGE_ALERT);
    /* The file init writes reads back the same. */
    assert_int_equal(tether_fleet_config_format(&config, &text), TETHER_OK);
    tether_fleet_config_init(&again);
    assert_int_equal(tether_fleet_config_parse(text, strlen(text), &again, &error), TETHER_OK);
    assert_memory_equal(&config, &again, sizeof(config));
    free(text);
}

/* init makes the nonce key beside the enrolment key; the first run records
 * the init key as the signing key. */
static void init_makes_exchange_keys(void **state)
{
    fixture_t *f = *state;
    tether_fleet_init_options_t opts;
    char token[TETHER_SECRET_TOKEN_SIZE];
    char dir[320], path[340];
    struct stat st;
    tether_store_t store;
    tether_issuer_keys_t keys;

    snprintf(dir, sizeof(dir), "%s/fleet", f->dir);
    memset(&opts, 0, sizeof(opts));
    opts.dir = dir;
    assert_int_equal(tether_fleet_init(&opts, token), TETHER_OK);
    tether_wipe(token, sizeof(token));
    snprintf(path, sizeof(path), "%s/nonce.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, TETHER_NONCE_KEY_SIZE);
    snprintf(path, sizeof(path), "%s/fleet.db", dir);
    tether_store_init(&store);
    assert_int_equal(tether_store_open_sqlite(&store, path), TETHER_OK);
    tether_issuer_keys_init(&keys);
    assert_int_equal(tether_issuer_keys_open(&keys, dir, &store, ISSUER, T0), TETHER_OK);
    assert_int_equal(strlen(tether_issuer_keys_active_kid(&keys)), 43);
    tether_issuer_keys_free(&keys);
    /* Once recorded, the file must hold the key its kid names. */
    write_first_issuer_key(dir);
    tether_issuer_keys_init(&keys);
    assert_int_equal(tether_issuer_keys_open(&keys, dir, &store, ISSUER, T0), TETHER_ERR_VERIFY);
    tether_issuer_keys_free(&keys);
    tether_store_free(&store);
}

/* A fleet at schema version 2 migrates, with its devices intact. */
static void migration_from_version_2(void **state)
{
    fixture_t *f = *state;
    char path[320];
    sqlite3 *db = NULL;
    tether_store_t store;
    int version = 0;

    snprintf(path, sizeof(path), "%s/v2.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tether_store_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tether_store_migrations[1], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (2);"
                                  "INSERT INTO devices (id, name, ek_sha256, status, "
                                  "highest_counter, created_at, updated_at) VALUES "
                                  "('dev_000000000000000000000001', 'old', "
                                  "'0000000000000000000000000000000000000000000000000000000000000000',"
                                  " 'active', 9, 1, 2)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    tether_store_init(&store);
    assert_int_equal(tether_store_open_sqlite(&store, path), TETHER_OK);
    assert_int_equal(tether_store_schema_version(&store, &version), TETHER_OK);
    assert_int_equal(version, tether_store_latest_version());
    {
        tether_store_exchange_device_t *row = calloc(1, sizeof(*row));
        assert_non_null(row);
        assert_int_equal(tether_store_exchange_device_get(&store, "dev_000000000000000000000001",
                                                          row),
                         TETHER_OK);
        assert_int_equal(row->device.highest_counter, 9);
        assert_false(row->has_last);
        assert_int_equal(row->pcr_digest_len, 0);
        free(row);
    }
    tether_store_free(&store);
}

/* A fleet at schema version 3 migrates: the last accepted exchange gets a
 * nonce expiry (last_seen_at + 61), so a retry of it across the upgrade
 * (its fingerprint was computed otherwise) is older evidence, not a clone,
 * while a nonce issued after that exchange is still fresh. */
static void migration_from_version_3(void **state)
{
    fixture_t *f = *state;
    char path[320];
    sqlite3 *db = NULL;
    tether_store_t store;
    tether_store_exchange_device_t *row = calloc(1, sizeof(*row));
    tether_store_exchange_t ex;
    int version = 0;

    assert_non_null(row);
    snprintf(path, sizeof(path), "%s/v3.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (int v = 0; v < 3; v++)
        assert_int_equal(sqlite3_exec(db, tether_store_migrations[v], NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (3);"
                                  "INSERT INTO devices (id, name, ek_sha256, status, "
                                  "highest_counter, last_clock, last_reset_count, "
                                  "last_restart_count, last_clock_safe, last_fingerprint, "
                                  "last_address, last_seen_at, created_at, updated_at) VALUES "
                                  "('dev_000000000000000000000003', 'old', "
                                  "'0000000000000000000000000000000000000000000000000000000000000003',"
                                  " 'active', 5, 1000, 1, 0, 1, randomblob(32), '192.0.2.7', "
                                  "1700000000, 1, 2)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    tether_store_init(&store);
    assert_int_equal(tether_store_open_sqlite(&store, path), TETHER_OK);
    assert_int_equal(tether_store_schema_version(&store, &version), TETHER_OK);
    assert_int_equal(version, tether_store_latest_version());
    assert_int_equal(tether_store_exchange_device_get(&store, "dev_000000000000000000000003", row),
                     TETHER_OK);
    assert_true(row->has_last);
    assert_int_equal(row->last_nonce_expires_at, T0 + 61);
    memset(&ex, 0, sizeof(ex));
    ex.sighting.counter = 5;
    ex.nonce_expires_at = T0 + 60; /* issued when that exchange was accepted */
    assert_int_equal(tether_store_exchange_decide(row, &ex, false),
                     TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED);
    ex.nonce_expires_at = T0 + 61; /* issued a second later */
    assert_int_equal(tether_store_exchange_decide(row, &ex, false), TETHER_STORE_EXCHANGE_CLONE);
    free(row);
    tether_store_free(&store);
}

/* ---- measured boot (exchange_measured_boot.h), the agent's side included ---- */

/* The fleet's PCRs and tether's (a policy made from tether's log alone). */
#define MEASURED_SELECTION "sha256:0,1,2,3,4,5,6,7,13"

typedef struct measured {
    char platform[FLEET_FIXTURE_PATH_SIZE + 16]; /* the platform's log: absent here */
    char tether[FLEET_FIXTURE_PATH_SIZE + 16];   /* tether's CEL */
    uint64_t records;
} measured_t;

static void measured_open(fixture_t *f, measured_t *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->platform, sizeof(m->platform), "%s/platform.bin", f->dir);
    snprintf(m->tether, sizeof(m->tether), "%s/tether.cel", f->dir);
}

/* tether-agent measure's record of the file name holding content, appended
 * to tether's log, and PCR 13 extended with it when extend (as measure
 * does; a log changed behind the TPM's back when not). */
static void measure_file(device_t *d, measured_t *m, const char *name, const char *content,
                         bool extend)
{
    tether_cel_measurement_t cel = {.name = name, .path = "/opt/app/run", .bank_count = 1,
                                    .algorithms = {TPM2_ALG_SHA256}};
    uint8_t record[TETHER_CEL_RECORD_MAX], digests[1][TETHER_HASH_MAX_SIZE];
    TPML_DIGEST_VALUES values;
    size_t len = 0;
    FILE *file;

    assert_int_equal(tether_sha256(content, strlen(content), cel.file_digests[0]), TETHER_OK);
    assert_int_equal(tether_cel_encode(m->records++, &cel, record, sizeof(record), &len, digests),
                     TETHER_OK);
    assert_non_null(file = fopen(m->tether, "ab"));
    assert_int_equal(fwrite(record, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
    if (!extend)
        return;
    memset(&values, 0, sizeof(values));
    values.count = 1;
    values.digests[0].hashAlg = TPM2_ALG_SHA256;
    memcpy(values.digests[0].digest.sha256, digests[0], 32);
    assert_int_equal(tether_tpm_pcr_extend(&d->tpm, TETHER_CEL_PCR, &values), TETHER_OK);
}

/* Writes the policy "measured" (create: version 1, else the next) with the
 * reference values of tether's log as it is, and puts the device on it. */
static void measured_policy(fixture_t *f, const device_t *d, const measured_t *m, bool create)
{
    tether_policy_document_t *doc = calloc(1, sizeof(*doc));
    char *text = malloc(TETHER_POLICY_DOCUMENT_MAX + 1), why[256];
    uint8_t *log = NULL;
    size_t log_len = 0, len = 0;
    int64_t version = 0;

    assert_non_null(doc);
    assert_non_null(text);
    assert_int_equal(tether_file_read(m->tether, TETHER_CEL_MAX_SIZE, &log, &log_len), TETHER_OK);
    assert_int_equal(tether_fleet_policy_from_token_policy(&f->policy, doc, why, sizeof(why)),
                     TETHER_OK);
    doc->has_measured_boot = true;
    assert_int_equal(tether_measured_boot_reference_add_logs(&doc->measured_boot, NULL, 0, log,
                                                             log_len, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(tether_policy_document_write(doc, text, TETHER_POLICY_DOCUMENT_MAX + 1, &len),
                     TETHER_OK);
    assert_int_equal(
        tether_store_policy_write(&f->store, "measured", text, create, test_now, &version),
        TETHER_OK);
    assert_int_equal(tether_store_device_set_policy(&f->store, d->id, "measured", test_now),
                     TETHER_OK);
    free(log);
    free(text);
    free(doc);
}

/* The challenge of a device under measured boot, read by the agent's own
 * reader: the nonce, the selection and the hashes the fleet holds. */
static void measured_challenge(fixture_t *f, const device_t *d, challenge_t *ch,
                               tether_agent_measured_boot_t *mb)
{
    char body[128], *answer;

    snprintf(body, sizeof(body), "{\"device_id\":\"%s\"}", d->id);
    assert_int_equal(call(f, "POST", "/v1/challenge", "application/json", body), 200);
    assert_string_equal(text(f, "pcr_selection"), MEASURED_SELECTION);
    assert_non_null(answer = cJSON_PrintUnformatted(f->json));
    assert_int_equal(tether_agent_exchange_read_challenge((const uint8_t *)answer, strlen(answer),
                                                          ch->nonce, &ch->pcrs, mb),
                     TETHER_OK);
    assert_true(mb->asked);
    cJSON_free(answer);
}

/* The challenge under measured boot and the TPM's evidence over it (the
 * subject_token, malloc'd). */
static char *measured_evidence(fixture_t *f, device_t *d, tether_agent_measured_boot_t *mb)
{
    tether_evidence_t ev;
    challenge_t ch;

    measured_challenge(f, d, &ch, mb);
    attest(d, &ch, &ev);
    return encode(&ev);
}

/* One exchange under measured boot as tether-agent makes it: the challenge,
 * the event-log parameters from m's files, the TPM's evidence, POST
 * /v1/token. The HTTP status; *sent: the log bytes the agent sent. */
static unsigned measured_exchange(fixture_t *f, device_t *d, const measured_t *m, size_t *sent)
{
    const tether_agent_eventlog_paths_t paths = {.platform = m->platform, .tether = m->tether};
    tether_agent_measured_boot_t mb;
    char *params = NULL, *token, why[256];
    unsigned status;

    token = measured_evidence(f, d, &mb);
    assert_int_equal(tether_agent_eventlog_params(&mb, &paths, &params, sent, why, sizeof(why)),
                     TETHER_OK);
    status = post_token_with(f, token, params);
    free(token);
    free(params);
    return status;
}

/* The first exchange sends tether's log, the next ones its hash only; the
 * challenge names what the fleet holds; a device on another policy
 * exchanges as before (get_challenge: exactly three members). */
static void measured_boot_exchange(void **state)
{
    fixture_t *f = *state;
    device_t d;
    measured_t m;
    challenge_t ch;
    tether_agent_measured_boot_t mb;
    size_t sent = 0;
    char *held;

    enrol(f, &d, 31);
    free(exchange_ok(f, &d));
    measured_open(f, &m);
    measure_file(&d, &m, "app", "app version 1", true);
    measured_policy(f, &d, &m, true);
    test_now += 10;
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 200);
    assert_int_equal(sent, fleet_db_count(f->path, "SELECT length(bytes) FROM device_eventlogs "
                                                   "WHERE log = 'tether'"));
    assert_true(sent > 0);
    /* The platform's log is absent on this device: the empty log, whose
     * hash says it all, so nothing is kept for it. */
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM device_eventlogs"), 1);
    /* Next: the challenge names tether's log, the agent sends hashes only. */
    test_now += 10;
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 200);
    assert_int_equal(sent, 0);
    held = fleet_db_text(f->path, "SELECT sha256 FROM device_eventlogs");
    measured_challenge(f, &d, &ch, &mb);
    assert_string_equal(mb.tether_held, held);
    assert_string_equal(mb.platform_held, "");
    free(held);
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"issued\"} 3");
    /* Back on the default policy: no measured_boot member, no logs. */
    assert_int_equal(
        tether_store_device_set_policy(&f->store, d.id, TETHER_POLICY_DEFAULT_NAME, test_now),
        TETHER_OK);
    test_now += 10;
    free(exchange_ok(f, &d));
    device_close(&d);
}

/* The next challenge a token under measured boot brings carries what a
 * challenge does: the policy's wider selection and the hashes of the logs
 * the fleet holds once this exchange's are kept, so that the refresh over
 * it is one request with hashes only (read and answered with the agent's
 * own functions). */
static void measured_boot_next_challenge(void **state)
{
    fixture_t *f = *state;
    const cJSON *member;
    device_t d;
    measured_t m;
    challenge_t ch;
    tether_next_challenge_t next;
    tether_evidence_t ev;
    size_t sent = 0;
    char *answer, *held, *token, *params = NULL, why[256];

    enrol(f, &d, 33);
    free(exchange_ok(f, &d));
    measured_open(f, &m);
    measure_file(&d, &m, "app", "app version 1", true);
    measured_policy(f, &d, &m, true);
    test_now += 10;
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 200);
    assert_true(sent > 0);
    member = cJSON_GetObjectItemCaseSensitive(f->json, "next_challenge");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(member,
                                                                               "pcr_selection")),
                        MEASURED_SELECTION);
    assert_non_null(answer = cJSON_PrintUnformatted(f->json));
    assert_int_equal(tether_agent_exchange_read_next((const uint8_t *)answer, strlen(answer), 0,
                                                     &next),
                     TETHER_OK);
    cJSON_free(answer);
    held = fleet_db_text(f->path, "SELECT sha256 FROM device_eventlogs");
    assert_true(next.measured_boot.asked);
    assert_string_equal(next.measured_boot.tether_held, held);
    assert_string_equal(next.measured_boot.platform_held, "");
    /* In its window: the logs did not change, their hashes go alone. */
    test_now += next.opens_ms / 1000;
    memcpy(ch.nonce, next.nonce, sizeof(ch.nonce));
    ch.pcrs = next.pcrs;
    attest(&d, &ch, &ev);
    token = encode(&ev);
    assert_int_equal(tether_agent_eventlog_params(&next.measured_boot,
                                                  &(tether_agent_eventlog_paths_t){
                                                      .platform = m.platform, .tether = m.tether},
                                                  &params, &sent, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(sent, 0);
    assert_int_equal(post_token_with(f, token, params), 200);
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"issued\"} 3");
    tether_next_challenge_forget(&next);
    free(params);
    free(token);
    free(held);
    device_close(&d);
}

/* A retry's token is issued again under the policy version it was issued
 * under, but the next challenge that comes with it is for the device's
 * policy now. A fleet whose selection holds PCR 13 already: the retry's
 * quote fits both policies, the one with measured boot the token was
 * issued under and the default the device is on now, whose next challenge
 * has no measured_boot member. */
static void retry_next_challenge_follows_policy(void **state)
{
    fixture_t *f = *state;
    tether_agent_measured_boot_t mb;
    const cJSON *next;
    device_t d;
    measured_t m;
    size_t sent = 0;
    char *token, *params = NULL, *first, why[256];

    snprintf(f->policy.pcr_selection_text, sizeof(f->policy.pcr_selection_text), "%s",
             MEASURED_SELECTION);
    assert_int_equal(tether_token_pcr_selection_parse(MEASURED_SELECTION, &f->policy.pcr_selection),
                     TETHER_OK);
    enrol(f, &d, 34);
    measured_open(f, &m);
    measure_file(&d, &m, "app", "app version 1", true);
    measured_policy(f, &d, &m, true);
    token = measured_evidence(f, &d, &mb);
    assert_int_equal(tether_agent_eventlog_params(
                         &mb, &(tether_agent_eventlog_paths_t){.platform = m.platform,
                                                               .tether = m.tether},
                         &params, &sent, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(post_token_with(f, token, params), 200);
    next = cJSON_GetObjectItemCaseSensitive(f->json, "next_challenge");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(next, "measured_boot")));
    first = strdup(text(f, "access_token"));
    assert_non_null(first);
    assert_int_equal(
        tether_store_device_set_policy(&f->store, d.id, TETHER_POLICY_DEFAULT_NAME, test_now),
        TETHER_OK);
    test_now += 5;
    assert_int_equal(post_token_with(f, token, params), 200);
    assert_same_token(text(f, "access_token"), first);
    next = cJSON_GetObjectItemCaseSensitive(f->json, "next_challenge");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(next, "pcr_selection")),
        MEASURED_SELECTION);
    assert_null(cJSON_GetObjectItemCaseSensitive(next, "measured_boot"));
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"retry\"} 1");
    free(first);
    free(params);
    free(token);
    device_close(&d);
}

/* The SHA-256 of data in lowercase hex. */
static void sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t digest[32];

    assert_int_equal(tether_sha256(data, len, digest), TETHER_OK);
    assert_int_equal(tether_hex_encode(digest, sizeof(digest), out, 65), TETHER_OK);
}

/* The refusal's alert: one measured_boot_refused of the device whose
 * details name code, log and event. */
static void expect_measured_alert(fixture_t *f, const device_t *d, const char *code,
                                  const char *log, long long event)
{
    char where[160], members[256];

    snprintf(where, sizeof(where), "kind = '%s' AND device_id = '%s'",
             TETHER_FLEET_ALERT_MEASURED_BOOT_REFUSED, d->id);
    snprintf(members, sizeof(members),
             "{\"code\": \"%s\", \"log\": \"%s\", \"event\": %lld, "
             "\"policy\": \"measured\"}",
             code, log, event);
    assert_int_equal(fleet_db_alerts(f->path, where, members), 1);
}

/* Refusals: a hash the fleet does not hold, bytes that are not their hash's
 * and no logs at all (nothing changes); a file of tether's changed
 * (measurement_not_allowed, until the policy admits it) and a log the PCRs
 * do not back (eventlog_replay_mismatch): an alert, no device state
 * changed, the log the fleet holds kept. All 400, as pcr_mismatch. */
static void measured_boot_refusals(void **state)
{
    fixture_t *f = *state;
    device_t d;
    measured_t m;
    tether_agent_measured_boot_t mb;
    tether_store_device_t before;
    uint8_t *log = NULL;
    size_t sent = 0, log_len = 0;
    char empty[65], other[65], extra[1024], *token, *held, *b64;

    enrol(f, &d, 32);
    measured_open(f, &m);
    measure_file(&d, &m, "app", "app version 1", true);
    measured_policy(f, &d, &m, true);
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 200);
    held = fleet_db_text(f->path, "SELECT sha256 FROM device_eventlogs");
    sha256_hex("", 0, empty);
    sha256_hex("other", 5, other);
    test_now += 10;
    /* A hash the fleet does not hold, without bytes. */
    token = measured_evidence(f, &d, &mb);
    snprintf(extra, sizeof(extra), "&platform_log_sha256=%s&tether_log_sha256=%s", empty, other);
    expect_refusal_with(f, token, extra, 400, "invalid_grant",
                        TETHER_FLEET_EXCHANGE_EVENTLOG_UNKNOWN);
    /* No logs named at all. */
    expect_refusal_with(f, token, "", 400, "invalid_grant", TETHER_FLEET_EXCHANGE_EVENTLOG_UNKNOWN);
    /* Bytes that do not hash to their hash. */
    assert_int_equal(tether_file_read(m.tether, TETHER_CEL_MAX_SIZE, &log, &log_len), TETHER_OK);
    assert_non_null(b64 = malloc(TETHER_BASE64URL_ENCODED_LEN(log_len) + 1));
    assert_int_equal(tether_base64url_encode(log, log_len, b64,
                                             TETHER_BASE64URL_ENCODED_LEN(log_len) + 1, NULL),
                     TETHER_OK);
    snprintf(extra, sizeof(extra), "&platform_log_sha256=%s&tether_log_sha256=%s&tether_log=%s",
             empty, other, b64);
    expect_refusal_with(f, token, extra, 400, "invalid_request", "malformed_request");
    free(b64);
    free(log);
    free(token);
    /* A file of tether's changed: its new digest is not the policy's. */
    measure_file(&d, &m, "app", "app version 2", true);
    before = device_row(f, d.id);
    test_now += 10;
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 400);
    assert_string_equal(text(f, "tether_error"), TETHER_FLEET_EXCHANGE_MEASUREMENT_NOT_ALLOWED);
    assert_non_null(strstr(text(f, "error_description"), "tether log, PCR 13, event 1"));
    expect_measured_alert(f, &d, TETHER_FLEET_EXCHANGE_MEASUREMENT_NOT_ALLOWED, "tether", 1);
    assert_int_equal(device_row(f, d.id).highest_counter, before.highest_counter);
    assert_int_equal(device_row(f, d.id).status, TETHER_DEVICE_ACTIVE);
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"measurement_not_allowed\"} 1");
    {
        char *now_held = fleet_db_text(f->path, "SELECT sha256 FROM device_eventlogs");
        assert_string_equal(now_held, held);
        free(now_held);
    }
    /* The policy admits it: accepted, and the new log is kept. */
    measured_policy(f, &d, &m, false);
    test_now += 10;
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 200);
    assert_true(sent > 0);
    assert_true(device_row(f, d.id).highest_counter > before.highest_counter);
    /* A record the PCR never saw: the replay is not the quote's. */
    measure_file(&d, &m, "app", "app version 1", false);
    before = device_row(f, d.id);
    test_now += 10;
    assert_int_equal(measured_exchange(f, &d, &m, &sent), 400);
    assert_string_equal(text(f, "tether_error"), TETHER_FLEET_EXCHANGE_EVENTLOG_REPLAY_MISMATCH);
    assert_int_equal(device_row(f, d.id).highest_counter, before.highest_counter);
    expect_sample(f, "tether_fleetd_exchanges_total{outcome=\"eventlog_replay_mismatch\"} 1");
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM alerts WHERE kind = "
                                             "'" TETHER_FLEET_ALERT_MEASURED_BOOT_REFUSED "'"),
                     2);
    free(held);
    device_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(happy_path, setup, teardown),
        cmocka_unit_test_setup_teardown(discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(metrics_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(every_evidence_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_document_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_mismatch_quarantines, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_and_consistency_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(form_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(scope_and_audience, setup, teardown),
        cmocka_unit_test_setup_teardown(device_state_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(byte_identical_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(next_challenge_per_token, setup, teardown),
        cmocka_unit_test_setup_teardown(withheld_next_challenge_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(token_follows_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(source_networks_at_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_keeps_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_of_token_without_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(measured_boot_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(measured_boot_next_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_next_challenge_follows_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(measured_boot_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(clone_first_then_original, setup, teardown),
        cmocka_unit_test_setup_teardown(original_first_then_clone, setup, teardown),
        cmocka_unit_test_setup_teardown(tpm_state_rolled_back, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_regression, setup, teardown),
        cmocka_unit_test_setup_teardown(replayed_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(malleated_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(nonce_reused_with_other_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(withheld_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(unsafe_clock_on_first_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(reenrolment_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(lifetime_clamped, setup, teardown),
        cmocka_unit_test_setup_teardown(key_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_after_rotation, setup, teardown),
        cmocka_unit_test(clone_rule),
        cmocka_unit_test(exchange_config_keys),
        cmocka_unit_test_setup_teardown(init_makes_exchange_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_from_version_2, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_from_version_3, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
