/*
 * fleetd's enrolment endpoints in process (no HTTP): genuine requests built
 * by the agent's TPM code against the fake TPM go straight to the handler
 * over a real SQLite store; the fake TPM answers the credential as a device
 * would. Every refusal must leave the database exactly as it was.
 */
#include <fcntl.h>
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
#include <sqlite3.h>
#include <tss2/tss2_mu.h>

#include "admin_internal.h"
#include "config.h"
#include "enroll_api.h"
#include "enroll_device.h"
#include "enroll_request.h"
#include "files.h"
#include "fleet_fixture.h"
#include "route.h"
#include "source_limit.h"
#include "fleet.h"
#include "store.h"
#include "store_schema.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/enroll.h"
#include "tether/enroll_forgery.h"
#include "tether/file.h"
#include "tether/secret_token.h"
#include "tether/tpm2_public.h"
#include "tether/tpm_fake.h"
#include "validate.h"

#define COUNTER 0x01000100u
#define T0 1700000000
#define ECC_AND_RSA ((1u << TETHER_EK_ECC_P256) | (1u << TETHER_EK_RSA2048))

static int64_t test_now = T0;

static int64_t test_clock(void)
{
    return test_now;
}

/* A device: a fake TPM and the request its agent built. */
typedef struct device {
    tether_tpm_t tpm;
    tether_enroll_request_t req;
    tether_agent_state_t state;
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE];
    char *json; /* the request body */
} device_t;

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char path[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    tether_cert_set_t cas;
    tether_enroll_api_t api;
    tether_http_response_t response;
    cJSON *json;
    char enrollment_id[TETHER_STORE_ENROLLMENT_ID_SIZE]; /* from the last 200 of /v1/enroll */
    const char *remote; /* the requests' source address; NULL: unknown */
} fixture_t;

/* ---- fixture ---- */

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uint8_t key[TETHER_ENROLL_KEY_SIZE];

    if (f == NULL)
        return -1;
    test_now = T0;
    if (fleet_fixture_open("enroll", f->dir, f->path, &f->store) != 0 ||
        tether_fleet_key_file_load(f->dir, "enroll.key", key, sizeof(key), true) != TETHER_OK)
        return -1;
    tether_cert_set_init(&f->cas);
    tether_enroll_api_init(&f->api, &f->store, &f->cas, key);
    f->api.clock = test_clock;
    tether_wipe(key, sizeof(key));
    if (tether_enroll_api_set_limits(&f->api, TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK,
                                     TETHER_CONFIG_DEFAULT_ENROLL_RATE_PER_MINUTE,
                                     TETHER_CONFIG_DEFAULT_ENROLL_BURST) != TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    cJSON_Delete(f->json);
    tether_http_response_clear(&f->response);
    tether_enroll_api_free(&f->api);
    tether_cert_set_free(&f->cas);
    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

/* ---- devices ---- */

static void device_body(device_t *d, const char *name, const char *token)
{
    snprintf(d->req.name, sizeof(d->req.name), "%s", name != NULL ? name : "");
    snprintf(d->req.bootstrap_token, sizeof(d->req.bootstrap_token), "%s",
             token != NULL ? token : "");
    free(d->json);
    d->json = NULL;
    assert_int_equal(tether_enroll_request_to_json(&d->req, &d->json), TETHER_OK);
}

/* Prepares a new enrolment on the device's TPM (new AK and device key). */
static void device_prepare(device_t *d, tether_ek_type_t type)
{
    uint8_t digest[32];

    tether_enroll_request_wipe(&d->req);
    assert_int_equal(tether_agent_enroll_prepare(&d->tpm, type, COUNTER, &d->req, &d->state),
                     TETHER_OK);
    assert_int_equal(tether_ek_sha256(&d->req.ek_public.publicArea, digest), TETHER_OK);
    assert_int_equal(tether_hex_encode(digest, sizeof(digest), d->ek_sha256, sizeof(d->ek_sha256)),
                     TETHER_OK);
    device_body(d, NULL, NULL);
}

/* A device whose TPM is a fake from seed; trusted: its manufacturer CA is
 * one of the fleet's EK CAs. */
static device_t *device_new(fixture_t *f, uint64_t seed, unsigned ek_types, bool trusted)
{
    device_t *d = calloc(1, sizeof(*d));
    tether_tpm_fake_config_t config = {.ek_cert_types = ek_types, .seed = seed};
    const uint8_t *ca = NULL;
    size_t ca_len = 0;

    assert_non_null(d);
    tether_tpm_init(&d->tpm);
    d->tpm.retry_delay_ms = 0;
    assert_int_equal(tether_tpm_open_fake(&d->tpm, &config), TETHER_OK);
    if (trusted) {
        assert_int_equal(tether_tpm_fake_ca_cert(&d->tpm, &ca, &ca_len), TETHER_OK);
        assert_int_equal(tether_cert_set_add_der(&f->cas, ca, ca_len), TETHER_OK);
    }
    device_prepare(d, TETHER_EK_ANY);
    return d;
}

static void device_free(device_t *d)
{
    if (d == NULL)
        return;
    tether_tpm_close(&d->tpm);
    tether_enroll_request_wipe(&d->req);
    free(d->json);
    free(d);
}

/* Puts the device's EK on the allow list; returns the device id. */
static void allow(fixture_t *f, const device_t *d, const char *name, char id[TETHER_STORE_DEVICE_ID_SIZE])
{
    tether_store_allow_t row;
    tether_store_device_t device;

    memset(&row, 0, sizeof(row));
    assert_int_equal(tether_fleet_device_id_new(row.id), TETHER_OK);
    memcpy(row.ek_sha256, d->ek_sha256, sizeof(row.ek_sha256));
    snprintf(row.name, sizeof(row.name), "%s", name);
    assert_int_equal(tether_store_device_import(&f->store, &row, 1, test_now, NULL, NULL),
                     TETHER_OK);
    assert_int_equal(tether_store_device_find_ek(&f->store, d->ek_sha256, &device), TETHER_OK);
    memcpy(id, device.id, TETHER_STORE_DEVICE_ID_SIZE);
}

/* A new bootstrap token in token. */
static void bootstrap_token(fixture_t *f, unsigned uses, int64_t expires_at,
                            char token[TETHER_SECRET_TOKEN_SIZE])
{
    uint8_t hash[TETHER_SECRET_HASH_SIZE];

    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_BOOTSTRAP, token,
                                                  TETHER_SECRET_TOKEN_SIZE),
                     TETHER_OK);
    assert_int_equal(tether_secret_token_hash(token, strlen(token), hash), TETHER_OK);
    assert_int_equal(tether_store_bootstrap_token_create(&f->store, hash, expires_at, uses, test_now),
                     TETHER_OK);
}

/* ---- requests ---- */

static unsigned call(fixture_t *f, const char *method, const char *path, const char *content_type,
                     const char *body)
{
    tether_http_request_t request;

    memset(&request, 0, sizeof(request));
    request.method = method;
    request.path = path;
    request.content_type = content_type;
    request.body = (const uint8_t *)body;
    request.body_len = body != NULL ? strlen(body) : 0;
    request.remote = f->remote;
    assert_true(strcmp(path, TETHER_FLEET_PATH_ENROLL) == 0 ||
                strcmp(path, TETHER_FLEET_PATH_ACTIVATE) == 0);
    return fleet_fixture_route(&(tether_router_t){.store = &f->store, .enroll = &f->api},
                               &request, &f->response, &f->json, false);
}

static const char *text(const fixture_t *f, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->json, name);

    return cJSON_IsString(item) ? item->valuestring : "";
}

/* POST /v1/enroll with the device's body; keeps the enrollment id. */
static unsigned enroll(fixture_t *f, const device_t *d)
{
    unsigned status = call(f, "POST", "/v1/enroll", "application/json", d->json);

    if (status == 200)
        snprintf(f->enrollment_id, sizeof(f->enrollment_id), "%s", text(f, "enrollment_id"));
    return status;
}

/* The device's TPM answers the credential of the last 200 of /v1/enroll:
 * the activation body, malloc'd. */
static char *answer(fixture_t *f, device_t *d)
{
    uint8_t raw[1024];
    size_t len = 0, offset = 0;
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET secret;
    uint8_t proof[32];
    char proof_b64[64];
    char *body = malloc(256);

    assert_non_null(body);
    memset(&blob, 0, sizeof(blob));
    memset(&secret, 0, sizeof(secret));
    assert_int_equal(tether_base64url_decode(text(f, "credential_blob"),
                                             strlen(text(f, "credential_blob")), raw, sizeof(raw),
                                             &len),
                     TETHER_OK);
    assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(raw, len, &offset, &blob), TSS2_RC_SUCCESS);
    assert_int_equal(offset, len);
    offset = 0;
    assert_int_equal(tether_base64url_decode(text(f, "encrypted_secret"),
                                             strlen(text(f, "encrypted_secret")), raw, sizeof(raw),
                                             &len),
                     TETHER_OK);
    assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(raw, len, &offset, &secret),
                     TSS2_RC_SUCCESS);
    assert_int_equal(offset, len);
    assert_int_equal(tether_agent_enroll_activate(&d->tpm, &d->state, &blob, &secret,
                                                  f->enrollment_id, proof),
                     TETHER_OK);
    assert_int_equal(tether_base64url_encode(proof, sizeof(proof), proof_b64, sizeof(proof_b64),
                                             NULL),
                     TETHER_OK);
    snprintf(body, 256, "{\"enrollment_id\": \"%s\", \"proof\": \"%s\"}", f->enrollment_id,
             proof_b64);
    return body;
}

static unsigned activate(fixture_t *f, const char *body)
{
    return call(f, "POST", "/v1/enroll/activate", "application/json", body);
}

/* Enrols the device all the way; device_id gets its id. */
static void enrol_fully(fixture_t *f, device_t *d, char device_id[TETHER_STORE_DEVICE_ID_SIZE])
{
    char *body;

    assert_int_equal(enroll(f, d), 200);
    body = answer(f, d);
    assert_int_equal(activate(f, body), 200);
    assert_string_equal(text(f, "status"), "active");
    assert_true(tether_fleet_device_id_valid(text(f, "device_id"), strlen(text(f, "device_id"))));
    snprintf(device_id, TETHER_STORE_DEVICE_ID_SIZE, "%s", text(f, "device_id"));
    free(body);
}

/* ---- the database, read beside the store ---- */

static long long pending(const fixture_t *f)
{
    return fleet_db_count(f->path, "SELECT count(*) FROM enrolment_sessions");
}

/* Sends body and expects a refusal that changes nothing at all. */
static void expect_refusal(fixture_t *f, const char *path, const char *body, unsigned status,
                           const char *error)
{
    char *before = fleet_db_snapshot(f->path);
    char *after;

    assert_int_equal(call(f, "POST", path, "application/json", body), status);
    assert_string_equal(text(f, "error"), error);
    assert_true(strlen(text(f, "error_description")) > 0);
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* An activation repeated: 200 with the same device, and nothing changes. */
static void expect_repeat(fixture_t *f, const char *body, const char *device_id)
{
    char *before = fleet_db_snapshot(f->path);
    char *after;

    assert_int_equal(activate(f, body), 200);
    assert_string_equal(text(f, "device_id"), device_id);
    assert_string_equal(text(f, "status"), "active");
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static tether_store_device_t device_row(fixture_t *f, const char *ek_sha256)
{
    tether_store_device_t device;

    assert_int_equal(tether_store_device_find_ek(&f->store, ek_sha256, &device), TETHER_OK);
    return device;
}

/* ---- tests ---- */

static void allow_list_enrolment(void **state)
{
    fixture_t *f = *state;
    device_t *d = device_new(f, 1, ECC_AND_RSA, true);
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char ak_hex[2 * sizeof(TPMU_NAME) + 1];
    tether_store_device_t device;
    TPM2B_NAME ak_name;
    char *body;
    cJSON *json;

    allow(f, d, "gateway-7", id);
    device_body(d, "the-device-says", NULL);
    assert_int_equal(enroll(f, d), 200);
    assert_true(tether_fleet_enrollment_id_valid(f->enrollment_id, strlen(f->enrollment_id)));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(f->json, "expires_in")->valueint,
                     TETHER_ENROLL_PENDING_SECONDS);
    assert_true(strlen(text(f, "credential_blob")) > 0);
    assert_true(strlen(text(f, "encrypted_secret")) > 0);
    assert_int_equal(cJSON_GetArraySize(f->json), 4);
    /* Started, not enrolled: the device row does not change. */
    assert_int_equal(pending(f), 1);
    device = device_row(f, d->ek_sha256);
    assert_int_equal(device.status, TETHER_DEVICE_ALLOWED);
    assert_false(device.enrolled);
    assert_false(device.has_counter_index);
    /* No secret is stored: the session holds only what the device sent. */
    assert_int_equal(
        fleet_db_count(f->path, "SELECT count(*) FROM enrolment_sessions WHERE bootstrap_hash IS "
                                "NULL AND name = 'the-device-says' AND counter_nv_index = 16777472 "
                                "AND expires_at = created_at + 300"),
        1);

    body = answer(f, d);
    assert_int_equal(activate(f, body), 200);
    assert_string_equal(text(f, "device_id"), id);
    assert_string_equal(text(f, "status"), "active");
    assert_int_equal(cJSON_GetArraySize(f->json), 2);
    assert_int_equal(pending(f), 0);

    device = device_row(f, d->ek_sha256);
    assert_string_equal(device.id, id);
    assert_string_equal(device.name, "gateway-7"); /* the operator's name wins */
    assert_int_equal(device.status, TETHER_DEVICE_ACTIVE);
    assert_true(device.enrolled);
    assert_false(device.allow_reenroll);
    assert_true(device.has_counter);
    assert_int_equal(device.highest_counter, 0);
    assert_true(device.has_counter_index);
    assert_int_equal(device.counter_index, COUNTER);
    assert_int_equal(tether_tpm2_public_name(&d->req.ak_public.publicArea, &ak_name), TETHER_OK);
    assert_int_equal(tether_hex_encode(ak_name.name, ak_name.size, ak_hex, sizeof(ak_hex)),
                     TETHER_OK);
    assert_string_equal(device.ak_name, ak_hex);
    assert_int_equal(fleet_db_count(f->path,
                                    "SELECT count(*) FROM devices WHERE ek_public IS NOT NULL AND "
                                    "ek_cert IS NOT NULL AND device_key_public IS NOT NULL AND "
                                    "device_key_certify_attest IS NOT NULL AND "
                                    "device_key_certify_signature IS NOT NULL AND "
                                    "counter_nv_public IS NOT NULL AND last_clock IS NULL"),
                     1);

    /* What the admin API shows. */
    json = admin_device_json(&device);
    assert_non_null(json);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(json, "ak_name")->valuestring, ak_hex);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(json, "counter_index")->valuestring,
                        "0x01000100");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(json, "ek_sha256")->valuestring,
                        d->ek_sha256);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(json, "status")->valuestring, "active");
    cJSON_Delete(json);

    /* The same proof again (the answer was lost): the same answer, and
     * nothing changes. */
    expect_repeat(f, body, id);
    free(body);
    device_free(d);
}

static void bootstrap_enrolment(void **state)
{
    fixture_t *f = *state;
    device_t *a = device_new(f, 2, 1u << TETHER_EK_RSA2048, true);
    device_t *b = device_new(f, 3, ECC_AND_RSA, true);
    device_t *c = device_new(f, 4, ECC_AND_RSA, true);
    char token[TETHER_SECRET_TOKEN_SIZE];
    char id_a[TETHER_STORE_DEVICE_ID_SIZE], id_b[TETHER_STORE_DEVICE_ID_SIZE];
    char log_path[300];
    uint8_t *log_bytes = NULL;
    const char *log;
    size_t log_len = 0;
    tether_store_device_t device;
    int saved_stderr, fd;
    char *body;

    /* Log lines go to a file, to be searched for the token afterwards. */
    snprintf(log_path, sizeof(log_path), "%s/log", f->dir);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved_stderr >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);

    bootstrap_token(f, 2, T0 + 600, token);
    device_body(a, "gw-rsa", token);
    assert_int_equal(enroll(f, a), 200);
    /* A use is consumed at activation only, so a failed one costs nothing. */
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 2);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM enrolment_sessions WHERE "
                              "length(bootstrap_hash) = 32"),
                     1);
    body = answer(f, a);
    assert_int_equal(activate(f, body), 200);
    free(body);
    snprintf(id_a, sizeof(id_a), "%s", text(f, "device_id"));
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 1);
    device = device_row(f, a->ek_sha256);
    assert_string_equal(device.id, id_a);
    assert_string_equal(device.name, "gw-rsa");
    assert_int_equal(device.status, TETHER_DEVICE_ACTIVE);
    assert_int_equal(a->state.ek_type, TETHER_EK_RSA2048);

    /* Without a name the device is named by its id. */
    device_body(b, NULL, token);
    enrol_fully(f, b, id_b);
    assert_string_not_equal(id_a, id_b);
    device = device_row(f, b->ek_sha256);
    assert_string_equal(device.name, id_b);
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 0);

    /* Used up. */
    device_body(c, "gw-c", token);
    expect_refusal(f, "/v1/enroll", c->json, 403, "bootstrap_token_used");

    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    assert_int_equal(tether_file_read(log_path, 1 << 20, &log_bytes, &log_len), TETHER_OK);
    log = (const char *)log_bytes;
    assert_non_null(strstr(log, "device enrolled"));
    assert_non_null(strstr(log, "via=bootstrap_token"));
    assert_non_null(strstr(log, "bootstrap_token_used"));
    assert_null(strstr(log, token));
    assert_null(strstr(log, "tthr_boot_"));
    assert_null(strstr(log, f->enrollment_id)); /* ids are cut short in logs */
    free(log_bytes);
    device_free(a);
    device_free(b);
    device_free(c);
}

static void enroll_refusals_change_nothing(void **state)
{
    fixture_t *f = *state;
    device_t *d = device_new(f, 5, ECC_AND_RSA, true);
    device_t *stranger = device_new(f, 6, ECC_AND_RSA, false);
    tether_enroll_request_t rsa, saved;
    tether_agent_state_t rsa_state;
    char token[TETHER_SECRET_TOKEN_SIZE];
    char expired[TETHER_SECRET_TOKEN_SIZE];
    char bad[TETHER_SECRET_TOKEN_SIZE];
    char *before, *after;

    bootstrap_token(f, 1, T0 + 600, token);
    bootstrap_token(f, 1, T0 - 1, expired);

    /* HTTP level. */
    before = fleet_db_snapshot(f->path);
    assert_int_equal(call(f, "GET", "/v1/enroll", NULL, NULL), 405);
    assert_string_equal(f->response.allow, "POST");
    assert_int_equal(call(f, "POST", "/v1/enroll", "text/plain", d->json), 415);
    assert_int_equal(call(f, "POST", "/v1/enroll/activate", NULL, "{}"), 415);
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* 1. The request does not parse. */
    expect_refusal(f, "/v1/enroll", "", 400, "invalid_request");
    expect_refusal(f, "/v1/enroll", "[]", 400, "invalid_request");
    expect_refusal(f, "/v1/enroll", "{\"ek_public\": 1}", 400, "invalid_request");

    /* 2. The EK certificate is from a manufacturer the fleet does not trust. */
    expect_refusal(f, "/v1/enroll", stranger->json, 403, "untrusted_ek_certificate");
    f->api.ek_cas = NULL;
    expect_refusal(f, "/v1/enroll", d->json, 403, "untrusted_ek_certificate");
    f->api.ek_cas = &f->cas;

    /* 3. The EK certificate (trusted) is another EK's; the AK may be exported. */
    saved = d->req;
    assert_int_equal(tether_agent_enroll_prepare(&d->tpm, TETHER_EK_RSA2048, COUNTER, &rsa,
                                                 &rsa_state),
                     TETHER_OK);
    memcpy(d->req.ek_cert, rsa.ek_cert, rsa.ek_cert_len);
    d->req.ek_cert_len = rsa.ek_cert_len;
    device_body(d, NULL, NULL);
    expect_refusal(f, "/v1/enroll", d->json, 400, "ek_certificate_mismatch");
    d->req = saved;
    d->req.ak_public.publicArea.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
    device_body(d, NULL, NULL);
    expect_refusal(f, "/v1/enroll", d->json, 400, "invalid_attestation");
    assert_non_null(strstr(text(f, "error_description"), "not restricted"));
    d->req = saved;
    tether_enroll_request_wipe(&rsa);

    /* 4. Authorisation. */
    device_body(d, NULL, NULL);
    expect_refusal(f, "/v1/enroll", d->json, 403, "device_not_allowed");
    device_body(d, "no/slashes", token);
    expect_refusal(f, "/v1/enroll", d->json, 400, "invalid_request");
    device_body(d, NULL, "tthr_boot_short");
    expect_refusal(f, "/v1/enroll", d->json, 401, "invalid_bootstrap_token");
    snprintf(bad, sizeof(bad), "%s", token);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'a' ? 'b' : 'a'; /* checksum */
    device_body(d, NULL, bad);
    expect_refusal(f, "/v1/enroll", d->json, 401, "invalid_bootstrap_token");
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_BOOTSTRAP, bad, sizeof(bad)),
                     TETHER_OK); /* well-formed, never issued */
    device_body(d, NULL, bad);
    expect_refusal(f, "/v1/enroll", d->json, 401, "invalid_bootstrap_token");
    device_body(d, NULL, expired);
    expect_refusal(f, "/v1/enroll", d->json, 403, "bootstrap_token_expired");
    test_now = T0 + 600; /* the good token's expiry */
    device_body(d, NULL, token);
    expect_refusal(f, "/v1/enroll", d->json, 403, "bootstrap_token_expired");
    test_now = T0;

    assert_int_equal(pending(f), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 0);
    assert_int_equal(fleet_db_count(f->path, "SELECT sum(uses_left) FROM bootstrap_tokens"), 2);
    device_free(d);
    device_free(stranger);
}

static void activation_refusals(void **state)
{
    fixture_t *f = *state;
    device_t *d = device_new(f, 7, ECC_AND_RSA, true);
    char token[TETHER_SECRET_TOKEN_SIZE];
    char wrong[256];
    char *before, *after, *body;

    bootstrap_token(f, 1, T0 + 120, token);
    device_body(d, NULL, token);

    /* Malformed bodies and unknown enrolments. */
    expect_refusal(f, "/v1/enroll/activate", "{}", 400, "invalid_request");
    expect_refusal(f, "/v1/enroll/activate",
                   "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\", \"proof\": "
                   "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"device_id\": \"x\"}",
                   400, "invalid_request");
    expect_refusal(f, "/v1/enroll/activate",
                   "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\", \"proof\": "
                   "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                   400, "invalid_enrollment");

    /* A wrong proof drops the enrolment, and burns no bootstrap use. */
    before = fleet_db_snapshot(f->path);
    assert_int_equal(enroll(f, d), 200);
    assert_int_equal(pending(f), 1);
    body = answer(f, d); /* the right proof, kept for later */
    snprintf(wrong, sizeof(wrong),
             "{\"enrollment_id\": \"%s\", \"proof\": "
             "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
             f->enrollment_id);
    assert_int_equal(activate(f, wrong), 403);
    assert_string_equal(text(f, "error"), "activation_failed");
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after); /* the session is gone; nothing else changed */
    free(after);
    expect_refusal(f, "/v1/enroll/activate", body, 400, "invalid_enrollment");
    free(body);

    /* An answer after 300 s: the session has expired and is removed. */
    assert_int_equal(enroll(f, d), 200);
    body = answer(f, d);
    test_now = T0 + TETHER_ENROLL_PENDING_SECONDS;
    assert_int_equal(activate(f, body), 400);
    assert_string_equal(text(f, "error"), "invalid_enrollment");
    assert_int_equal(pending(f), 0);
    after = fleet_db_snapshot(f->path);
    assert_string_equal(before, after);
    free(after);
    free(body);

    /* The token expires between the enrolment and its activation. */
    test_now = T0;
    assert_int_equal(enroll(f, d), 200);
    body = answer(f, d);
    test_now = T0 + 120;
    expect_refusal(f, "/v1/enroll/activate", body, 403, "bootstrap_token_expired");
    assert_int_equal(pending(f), 1);
    free(body);
    test_now = T0;

    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 0);
    free(before);
    device_free(d);
}

static void authorization_rechecked_at_activation(void **state)
{
    fixture_t *f = *state;
    device_t *a = device_new(f, 8, ECC_AND_RSA, true);
    device_t *b = device_new(f, 9, ECC_AND_RSA, true);
    device_t *c = device_new(f, 10, ECC_AND_RSA, true);
    char token[TETHER_SECRET_TOKEN_SIZE];
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char *body_a, *body_b, *body_c;

    /* Two devices start with a one-use token; the first to activate wins. */
    bootstrap_token(f, 1, T0 + 600, token);
    device_body(a, NULL, token);
    device_body(b, NULL, token);
    assert_int_equal(enroll(f, a), 200);
    body_a = answer(f, a);
    assert_int_equal(enroll(f, b), 200);
    body_b = answer(f, b);
    assert_int_equal(activate(f, body_a), 200);
    expect_refusal(f, "/v1/enroll/activate", body_b, 403, "bootstrap_token_used");

    /* An allowed device revoked while its enrolment is in flight. */
    allow(f, c, "gw-c", id);
    assert_int_equal(enroll(f, c), 200);
    body_c = answer(f, c);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE,
                                                       "stolen", test_now, NULL),
                     TETHER_OK);
    expect_refusal(f, "/v1/enroll/activate", body_c, 409, "already_enrolled");
    assert_int_equal(device_row(f, c->ek_sha256).status, TETHER_DEVICE_REVOKED);

    free(body_a);
    free(body_b);
    free(body_c);
    device_free(a);
    device_free(b);
    device_free(c);
}

static void reenrolment_only_after_reinstate(void **state)
{
    fixture_t *f = *state;
    device_t *d = device_new(f, 11, ECC_AND_RSA, true);
    char token[TETHER_SECRET_TOKEN_SIZE];
    char id[TETHER_STORE_DEVICE_ID_SIZE], again[TETHER_STORE_DEVICE_ID_SIZE];
    char first_ak[sizeof(((tether_store_device_t *)0)->ak_name)];
    tether_store_device_t device;

    allow(f, d, "gw", id);
    enrol_fully(f, d, again);
    assert_string_equal(again, id);
    snprintf(first_ak, sizeof(first_ak), "%s", device_row(f, d->ek_sha256).ak_name);

    /* The same EK again (new AK on the same TPM): refused, with or without a token. */
    bootstrap_token(f, 5, T0 + 600, token);
    device_prepare(d, TETHER_EK_ANY);
    expect_refusal(f, "/v1/enroll", d->json, 409, "already_enrolled");
    device_body(d, NULL, token);
    expect_refusal(f, "/v1/enroll", d->json, 409, "already_enrolled");

    /* Quarantined, then revoked: still refused. */
    fleet_db_exec(f->path,
                  "UPDATE devices SET highest_counter = 42, last_clock = 7, last_reset_count = 1, "
                  "last_restart_count = 2, last_clock_safe = 1");
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_QUARANTINE,
                                                       "clone", test_now, NULL),
                     TETHER_OK);
    expect_refusal(f, "/v1/enroll", d->json, 409, "already_enrolled");
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REINSTATE,
                                                       "checked", test_now, NULL),
                     TETHER_OK);
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE,
                                                       "gone", test_now, NULL),
                     TETHER_OK);
    expect_refusal(f, "/v1/enroll", d->json, 409, "already_enrolled");

    /* Reinstated by an operator: it enrols again, keeping its id and name,
     * with the new AK and fresh clone-detection state; the token is untouched. */
    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REINSTATE,
                                                       "found", test_now, NULL),
                     TETHER_OK);
    assert_true(device_row(f, d->ek_sha256).allow_reenroll);
    test_now = T0 + 1000;
    enrol_fully(f, d, again);
    assert_string_equal(again, id);
    device = device_row(f, d->ek_sha256);
    assert_int_equal(device.status, TETHER_DEVICE_ACTIVE);
    assert_string_equal(device.name, "gw");
    assert_false(device.allow_reenroll);
    assert_true(device.has_counter);
    assert_int_equal(device.highest_counter, 0);
    assert_string_not_equal(device.ak_name, first_ak);
    assert_int_equal(device.updated_at, T0 + 1000);
    assert_int_equal(device.created_at, T0);
    assert_int_equal(fleet_db_count(f->path,
                                    "SELECT count(*) FROM devices WHERE last_clock IS NULL AND "
                                    "last_reset_count IS NULL AND last_restart_count IS NULL AND "
                                    "last_clock_safe IS NULL"),
                     1);
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 5);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 1);

    /* And once active, never twice. */
    device_prepare(d, TETHER_EK_ANY);
    expect_refusal(f, "/v1/enroll", d->json, 409, "already_enrolled");
    device_free(d);
}

/* An agent that restarted starts a second enrolment beside its first: the
 * first to prove its secret wins, and the other is gone with it. */
static void enrolments_in_flight_side_by_side(void **state)
{
    fixture_t *f = *state;
    device_t *d = device_new(f, 12, ECC_AND_RSA, true);
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char first[TETHER_STORE_ENROLLMENT_ID_SIZE];
    char *old_body, *body;

    allow(f, d, "gw", id);
    assert_int_equal(enroll(f, d), 200);
    old_body = answer(f, d);
    snprintf(first, sizeof(first), "%s", f->enrollment_id);
    device_prepare(d, TETHER_EK_ANY); /* the agent restarted: new keys */
    assert_int_equal(enroll(f, d), 200);
    assert_string_not_equal(first, f->enrollment_id);
    assert_int_equal(pending(f), 2);
    body = answer(f, d);
    assert_int_equal(activate(f, body), 200);
    assert_string_equal(text(f, "device_id"), id);
    assert_int_equal(pending(f), 0);
    expect_refusal(f, "/v1/enroll/activate", old_body, 400, "invalid_enrollment");
    free(old_body);
    free(body);
    device_free(d);
}

/* A forged request against the victim's EK (tether/enroll_forgery.h): a
 * new software AK each time. */
static void forge(device_t *forger, const device_t *victim)
{
    assert_int_equal(tether_enroll_forge(&forger->req, &victim->req), TETHER_OK);
    device_body(forger, "forged", NULL);
}

/* POST /v1/enroll with the device's request, from address (its source). */
static unsigned enroll_from(fixture_t *f, const device_t *d, const char *address)
{
    unsigned status;

    f->remote = address;
    status = enroll(f, d);
    f->remote = NULL;
    return status;
}

/* The displacement attack: forged enrolments of the victim's EK before,
 * between and after the victim's own steps. The victim's enrolment is never
 * replaced and completes; the forger's go with it. */
static void forged_enrolments_do_not_displace(void **state)
{
    fixture_t *f = *state;
    device_t *victim = device_new(f, 13, ECC_AND_RSA, true);
    device_t *forger = device_new(f, 14, ECC_AND_RSA, false);
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char forged_id[TETHER_STORE_ENROLLMENT_ID_SIZE];
    char *body, *forged_body;

    allow(f, victim, "victim", id);
    forge(forger, victim);
    assert_int_equal(enroll_from(f, forger, "198.51.100.7"), 200);
    assert_int_equal(enroll_from(f, victim, "192.0.2.1"), 200);
    body = answer(f, victim);
    forge(forger, victim); /* another software AK each time */
    assert_int_equal(enroll_from(f, forger, "198.51.100.7"), 200);
    snprintf(forged_id, sizeof(forged_id), "%s", f->enrollment_id);
    assert_int_equal(pending(f), 3);
    /* The forger cannot answer its credential: it was made for the victim's EK. */
    forged_body = malloc(256);
    assert_non_null(forged_body);
    snprintf(forged_body, 256,
             "{\"enrollment_id\": \"%s\", \"proof\": "
             "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
             forged_id);
    assert_int_equal(activate(f, forged_body), 403);
    assert_string_equal(text(f, "error"), "activation_failed");
    assert_int_equal(pending(f), 2); /* the forger's own try is dropped, not the victim's */
    assert_int_equal(enroll_from(f, forger, "198.51.100.7"), 200);

    assert_int_equal(activate(f, body), 200);
    assert_string_equal(text(f, "device_id"), id);
    assert_int_equal(device_row(f, victim->ek_sha256).status, TETHER_DEVICE_ACTIVE);
    assert_int_equal(pending(f), 0);
    /* Once active, a forged request is refused like any second enrolment. */
    expect_refusal(f, "/v1/enroll", forger->json, 409, "already_enrolled");
    free(body);
    free(forged_body);
    device_free(victim);
    device_free(forger);
}

/* Enrolments in flight are bounded per EK and source (2) and per EK
 * (enroll_max_pending_per_ek). At a bound the oldest within it is displaced
 * only once it is a minute old; before that a new one is refused with 429
 * and Retry-After, and the refusal changes nothing. One forger's address
 * cannot take the victim's place. */
static void pending_enrolments_bounded(void **state)
{
    static const char *const forgers[] = {"198.51.100.1", "198.51.100.2", "198.51.100.3",
                                          "198.51.100.4", "198.51.100.5", "198.51.100.6",
                                          "198.51.100.7", "198.51.100.8"};
    fixture_t *f = *state;
    device_t *victim = device_new(f, 15, ECC_AND_RSA, true);
    device_t *forger = device_new(f, 16, ECC_AND_RSA, false);
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char *body;
    unsigned i;

    _Static_assert(TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK == 8, "forgers[] fills it");
    allow(f, victim, "victim", id);
    forge(forger, victim);
    assert_int_equal(enroll_from(f, victim, "192.0.2.1"), 200);
    body = answer(f, victim);
    /* Per source: two. */
    assert_int_equal(enroll_from(f, forger, forgers[0]), 200);
    assert_int_equal(enroll_from(f, forger, forgers[0]), 200);
    test_now = T0 + 20;
    f->remote = forgers[0];
    expect_refusal(f, "/v1/enroll", forger->json, 429, "too_many_enrolments");
    assert_string_equal(f->response.retry_after, "40");
    /* Per EK: eight, whatever the sources. */
    for (i = 1; i < 6; i++)
        assert_int_equal(enroll_from(f, forger, forgers[i]), 200);
    assert_int_equal(pending(f), TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK);
    f->remote = forgers[6];
    expect_refusal(f, "/v1/enroll", forger->json, 429, "too_many_enrolments");
    assert_string_equal(f->response.retry_after, "40");
    f->remote = NULL;
    /* The victim's enrolment, in flight all along, completes. */
    assert_int_equal(activate(f, body), 200);
    assert_string_equal(text(f, "device_id"), id);
    assert_int_equal(pending(f), 0);
    free(body);

    /* After a minute, the oldest makes room: an enrolment left that long
     * is abandoned (or a forger's). */
    fleet_db_exec(f->path, "UPDATE devices SET status = 'revoked', allow_reenroll = 1");
    test_now = T0 + 100;
    assert_int_equal(enroll_from(f, victim, "192.0.2.1"), 200);
    body = answer(f, victim);
    for (i = 0; i < 7; i++)
        assert_int_equal(enroll_from(f, forger, forgers[i]), 200);
    test_now = T0 + 100 + TETHER_ENROLL_PROTECTED_SECONDS;
    assert_int_equal(enroll_from(f, forger, forgers[7]), 200);
    assert_int_equal(pending(f), TETHER_CONFIG_DEFAULT_ENROLL_MAX_PENDING_PER_EK);
    expect_refusal(f, "/v1/enroll/activate", body, 400, "invalid_enrollment");
    free(body);
    device_free(victim);
    device_free(forger);
}

/* POST /v1/enroll attempts per source: a bucket of enroll_burst refilled at
 * enroll_rate_per_minute, counted before any work (a malformed body counts
 * too); 429 rate_limited with Retry-After beyond it; other sources are not
 * affected, an IPv6 /64 is one source. */
static void enrolment_attempts_per_source_bounded(void **state)
{
    fixture_t *f = *state;
    char *before;

    f->remote = "192.0.2.10";
    for (unsigned i = 0; i < TETHER_CONFIG_DEFAULT_ENROLL_BURST; i++)
        assert_int_equal(call(f, "POST", "/v1/enroll", "application/json", "{}"), 400);
    before = fleet_db_snapshot(f->path);
    expect_refusal(f, "/v1/enroll", "{}", 429, "rate_limited");
    assert_string_equal(f->response.retry_after, "10"); /* one attempt at 6 a minute */
    f->remote = "192.0.2.11";
    assert_int_equal(call(f, "POST", "/v1/enroll", "application/json", "{}"), 400);
    f->remote = "::ffff:192.0.2.10"; /* the same IPv4 client through an IPv6 socket */
    expect_refusal(f, "/v1/enroll", "{}", 429, "rate_limited");
    test_now = T0 + 10;
    f->remote = "192.0.2.10";
    assert_int_equal(call(f, "POST", "/v1/enroll", "application/json", "{}"), 400);
    expect_refusal(f, "/v1/enroll", "{}", 429, "rate_limited");

    f->remote = "2001:db8:1:2::1";
    for (unsigned i = 0; i < TETHER_CONFIG_DEFAULT_ENROLL_BURST; i++)
        assert_int_equal(call(f, "POST", "/v1/enroll", "application/json", "{}"), 400);
    f->remote = "2001:db8:1:2:ffff::99"; /* the same /64 */
    expect_refusal(f, "/v1/enroll", "{}", 429, "rate_limited");
    f->remote = "2001:db8:1:3::1"; /* the next /64 */
    assert_int_equal(call(f, "POST", "/v1/enroll", "application/json", "{}"), 400);
    /* Activation is not an attempt: it costs no bucket and is not refused. */
    f->remote = "192.0.2.10";
    expect_refusal(f, "/v1/enroll/activate", "{}", 400, "invalid_request");
    free(before);
}

/* The buckets alone: refill, cap, the slot table's bound, and a limit that
 * was never set up admits nothing. */
static void source_limit_buckets(void **state)
{
    tether_source_limit_t limit;
    char source[64];
    int64_t retry = -1;

    (void)state;
    tether_source_limit_init(&limit);
    assert_false(tether_source_limit_take(&limit, "192.0.2.1", T0, &retry));
    assert_int_equal(tether_source_limit_setup(&limit, 0, 1), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_source_limit_setup(&limit, 30, 2), TETHER_OK);
    assert_true(tether_source_limit_take(&limit, "192.0.2.1", T0, &retry));
    assert_true(tether_source_limit_take(&limit, "192.0.2.1", T0, &retry));
    assert_false(tether_source_limit_take(&limit, "192.0.2.1", T0, &retry));
    assert_int_equal(retry, 2); /* 30 a minute: one every 2 s */
    assert_false(tether_source_limit_take(&limit, "192.0.2.1", T0 + 1, &retry));
    assert_int_equal(retry, 1);
    assert_true(tether_source_limit_take(&limit, "192.0.2.1", T0 + 2, &retry));
    /* A long pause fills the bucket to its burst, no more; a clock that
     * steps back adds nothing. */
    assert_true(tether_source_limit_take(&limit, "192.0.2.1", T0 + 100000, &retry));
    assert_true(tether_source_limit_take(&limit, "192.0.2.1", T0 + 100000, &retry));
    assert_false(tether_source_limit_take(&limit, "192.0.2.1", T0 + 50, &retry));
    /* Unknown and unparsable sources share one bucket. */
    assert_true(tether_source_limit_take(&limit, NULL, T0, &retry));
    assert_true(tether_source_limit_take(&limit, "not an address", T0, &retry));
    assert_false(tether_source_limit_take(&limit, NULL, T0, &retry));
    /* More sources than slots: the table stays bounded and every new source
     * still gets its burst; 192.0.2.1, emptied, is the one kept longest. */
    for (unsigned i = 0; i < TETHER_SOURCE_LIMIT_SLOTS + 10; i++) {
        snprintf(source, sizeof(source), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_true(tether_source_limit_take(&limit, source, T0 + 100000, &retry));
    }
    tether_source_limit_free(&limit);
    tether_source_limit_free(NULL);
}

/* A device whose agent died after the fleet activated it asks again with
 * the same proof: the same answer, nothing changes, the bootstrap token is
 * used once. A wrong proof is refused and changes nothing; once the device
 * is revoked, or enrolled again, the old enrolment is no longer answered. */
static void activation_repeated_is_idempotent(void **state)
{
    fixture_t *f = *state;
    device_t *d = device_new(f, 17, ECC_AND_RSA, true);
    char token[TETHER_SECRET_TOKEN_SIZE];
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char wrong[256];
    char *body;

    bootstrap_token(f, 2, T0 + 600, token);
    device_body(d, "gw", token);
    assert_int_equal(enroll(f, d), 200);
    body = answer(f, d);
    assert_int_equal(activate(f, body), 200);
    snprintf(id, sizeof(id), "%s", text(f, "device_id"));
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 1);
    expect_repeat(f, body, id);
    test_now = T0 + 10 * TETHER_ENROLL_PENDING_SECONDS; /* long after: still answered */
    expect_repeat(f, body, id);
    assert_int_equal(fleet_db_count(f->path, "SELECT uses_left FROM bootstrap_tokens"), 1);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM devices"), 1);
    snprintf(wrong, sizeof(wrong),
             "{\"enrollment_id\": \"%s\", \"proof\": "
             "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
             f->enrollment_id);
    expect_refusal(f, "/v1/enroll/activate", wrong, 403, "activation_failed");
    expect_repeat(f, body, id);

    assert_int_equal(tether_store_device_change_status(&f->store, id, TETHER_DEVICE_REVOKE,
                                                       "stolen", test_now, NULL),
                     TETHER_OK);
    expect_refusal(f, "/v1/enroll/activate", body, 400, "invalid_enrollment");
    free(body);
    device_free(d);
}

static void activate_body_parser(void **state)
{
    static const char id[] = "enr_0123456789abcdef0123456789abcdef";
    static const char proof[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    tether_enroll_activate_request_t req;
    char message[TETHER_ENROLL_MESSAGE_SIZE];
    char body[512];
    static const char *const refused[] = {
        "",
        "null",
        "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\"}",
        "{\"proof\": \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
        "{\"enrollment_id\": \"ENR_0123456789ABCDEF0123456789ABCDEF\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
        "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcde\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
        "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}",
        "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ\"}",
        "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
        "{\"enrollment_id\": 7, \"proof\": \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}",
        "{\"enrollment_id\": \"enr_0123456789abcdef0123456789abcdef\", \"proof\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"} {}",
    };

    (void)state;
    snprintf(body, sizeof(body), "{\"proof\": \"%s\", \"enrollment_id\": \"%s\"}", proof, id);
    assert_int_equal(tether_enroll_parse_activate(body, strlen(body), &req, message,
                                                  sizeof(message)),
                     TETHER_OK);
    assert_string_equal(req.enrollment_id, id);
    for (unsigned i = 0; i < sizeof(req.proof); i++)
        assert_int_equal(req.proof[i], i);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        message[0] = '\0';
        if (tether_enroll_parse_activate(refused[i], strlen(refused[i]), &req, message,
                                         sizeof(message)) != TETHER_ERR_PARSE)
            fail_msg("accepted: %s", refused[i]);
        assert_true(strlen(message) > 0);
        assert_int_equal(req.enrollment_id[0], '\0');
    }
}

static void enroll_key_file(void **state)
{
    fixture_t *f = *state;
    uint8_t key[32], again[32];
    char path[320];
    struct stat st;

    assert_int_equal(tether_fleet_key_file_load(f->dir, "k", key, sizeof(key), false),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_fleet_key_file_load(f->dir, "k", key, sizeof(key), true), TETHER_OK);
    snprintf(path, sizeof(path), "%s/k", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    /* Made once: later loads read the same key. */
    assert_int_equal(tether_fleet_key_file_load(f->dir, "k", again, sizeof(again), true),
                     TETHER_OK);
    assert_memory_equal(key, again, sizeof(key));
    assert_int_equal(tether_fleet_key_file_load(f->dir, "k", again, 16, false), TETHER_ERR_TOO_LARGE);
    assert_int_equal(truncate(path, 31), 0);
    assert_int_equal(tether_fleet_key_file_load(f->dir, "k", again, sizeof(again), true),
                     TETHER_ERR_PARSE);
}

/* init makes the enrolment key beside the other keys. */
static void init_makes_enroll_key(void **state)
{
    fixture_t *f = *state;
    tether_fleet_init_options_t opts;
    char token[TETHER_SECRET_TOKEN_SIZE];
    char dir[320], path[340];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/fleet", f->dir);
    memset(&opts, 0, sizeof(opts));
    opts.dir = dir;
    assert_int_equal(tether_fleet_init(&opts, token), TETHER_OK);
    tether_wipe(token, sizeof(token));
    snprintf(path, sizeof(path), "%s/%s", dir, TETHER_FLEET_ENROLL_KEY_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, TETHER_ENROLL_KEY_SIZE);
}

/* A fleet created before enrolment existed (schema version 1) migrates
 * with its devices intact. */
static void migration_from_version_1(void **state)
{
    fixture_t *f = *state;
    char path[320];
    char sql[512];
    sqlite3 *db = NULL;
    tether_store_t store;
    tether_store_device_t device;
    int version = 0;
    cJSON *json;

    snprintf(path, sizeof(path), "%s/old.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tether_store_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "CREATE TABLE schema_version (version INTEGER NOT NULL);"
             "INSERT INTO schema_version VALUES (1);"
             "INSERT INTO devices (id, name, ek_sha256, status, created_at, updated_at) VALUES "
             "('dev_000000000000000000000001', 'old', '%064d', 'allowed', 1, 2)",
             0);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    tether_store_init(&store);
    assert_int_equal(tether_store_open_sqlite(&store, path), TETHER_OK);
    assert_int_equal(tether_store_schema_version(&store, &version), TETHER_OK);
    assert_int_equal(version, tether_store_latest_version());
    assert_int_equal(tether_store_device_get(&store, "dev_000000000000000000000001", &device),
                     TETHER_OK);
    assert_string_equal(device.name, "old");
    assert_false(device.enrolled);
    assert_string_equal(device.ak_name, "");
    assert_false(device.has_counter_index);
    json = admin_device_json(&device);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "ak_name")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "counter_index")));
    cJSON_Delete(json);
    tether_store_free(&store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(allow_list_enrolment, setup, teardown),
        cmocka_unit_test_setup_teardown(bootstrap_enrolment, setup, teardown),
        cmocka_unit_test_setup_teardown(enroll_refusals_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(activation_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(authorization_rechecked_at_activation, setup, teardown),
        cmocka_unit_test_setup_teardown(reenrolment_only_after_reinstate, setup, teardown),
        cmocka_unit_test_setup_teardown(enrolments_in_flight_side_by_side, setup, teardown),
        cmocka_unit_test_setup_teardown(forged_enrolments_do_not_displace, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_enrolments_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(enrolment_attempts_per_source_bounded, setup, teardown),
        cmocka_unit_test(source_limit_buckets),
        cmocka_unit_test_setup_teardown(activation_repeated_is_idempotent, setup, teardown),
        cmocka_unit_test(activate_body_parser),
        cmocka_unit_test_setup_teardown(enroll_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(init_makes_enroll_key, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_from_version_1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
