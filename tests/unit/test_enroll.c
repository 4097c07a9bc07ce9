/*
 * Enrolment without a network: the agent's TPM side (against the fake TPM)
 * builds a request, the JSON form carries it, the fleet's checks accept it,
 * and every way of bending it is refused. MakeCredential (fleet) and
 * ActivateCredential (device) meet in the middle.
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

#include <cmocka.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <tss2/tss2_mu.h>

#include "enroll_device.h"
#include "state.h"
#include "tether/base64url.h"
#include "tether/credential.h"
#include "tether/enroll.h"
#include "tether/tpm2_public.h"
#include "tether/tpm_fake.h"

#define COUNTER 0x01000100u

typedef struct fixture {
    tether_tpm_t tpm;
    tether_enroll_request_t req;
    tether_agent_state_t state;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    tether_tpm_fake_config_t config = {
        .ek_cert_types = (1u << TETHER_EK_ECC_P384) | (1u << TETHER_EK_RSA2048),
        .seed = 42,
    };

    if (f == NULL)
        return -1;
    tether_tpm_init(&f->tpm);
    f->tpm.retry_delay_ms = 0;
    if (tether_tpm_open_fake(&f->tpm, &config) != TETHER_OK ||
        tether_agent_enroll_prepare(&f->tpm, TETHER_EK_ANY, COUNTER, &f->req, &f->state) !=
            TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    tether_tpm_close(&f->tpm);
    tether_enroll_request_wipe(&f->req);
    free(f);
    return 0;
}

static void assert_refused(const tether_enroll_request_t *req, tether_status_t expected,
                           const char *reason_part)
{
    char why[256] = "";

    assert_int_equal(tether_enroll_request_check(req, why, sizeof(why)), expected);
    if (strstr(why, reason_part) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", why, reason_part);
}

static void prepared_request_passes_checks(void **state)
{
    fixture_t *f = *state;
    char why[256] = "";

    assert_int_equal(tether_enroll_request_check(&f->req, why, sizeof(why)), TETHER_OK);
    assert_int_equal(f->state.ek_type, TETHER_EK_ECC_P384);
    assert_int_equal(f->state.counter_index, COUNTER);
    /* Nothing stays loaded, and the counter was incremented once (WRITTEN). */
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);
    assert_true(f->req.counter_public.nvPublic.attributes & TPMA_NV_WRITTEN);
}

static void prepare_reuses_own_counter_and_refuses_foreign_index(void **state)
{
    fixture_t *f = *state;
    tether_enroll_request_t again;
    tether_agent_state_t st;

    /* Enrolling again on the same TPM reuses the counter tether defined. */
    assert_int_equal(tether_agent_enroll_prepare(&f->tpm, TETHER_EK_RSA2048, COUNTER, &again, &st),
                     TETHER_OK);
    assert_int_equal(st.ek_type, TETHER_EK_RSA2048);
    assert_int_equal(tether_enroll_request_check(&again, NULL, 0), TETHER_OK);
    /* No EK certificate of the wanted type: a clear error, nothing loaded. */
    assert_int_equal(tether_agent_enroll_prepare(&f->tpm, TETHER_EK_ECC_P256, COUNTER, &again, &st),
                     TETHER_ERR_NO_EK_CERT);
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);
    tether_enroll_request_wipe(&again);
}

static void json_round_trip(void **state)
{
    fixture_t *f = *state;
    tether_enroll_request_t parsed;
    char *json = NULL;
    char why[256];

    strcpy(f->req.name, "gateway-7");
    strcpy(f->req.bootstrap_token, "tthr_boot_example");
    assert_int_equal(tether_enroll_request_to_json(&f->req, &json), TETHER_OK);
    assert_int_equal(tether_enroll_request_from_json(json, strlen(json), &parsed, why, sizeof(why)),
                     TETHER_OK);
    assert_memory_equal(&parsed.ek_public, &f->req.ek_public, sizeof(parsed.ek_public));
    assert_memory_equal(&parsed.ak_public, &f->req.ak_public, sizeof(parsed.ak_public));
    assert_memory_equal(&parsed.device_key_certify, &f->req.device_key_certify,
                        sizeof(parsed.device_key_certify));
    assert_memory_equal(&parsed.counter_public, &f->req.counter_public,
                        sizeof(parsed.counter_public));
    assert_int_equal(parsed.ek_cert_len, f->req.ek_cert_len);
    assert_string_equal(parsed.name, "gateway-7");
    assert_string_equal(parsed.bootstrap_token, "tthr_boot_example");
    assert_int_equal(tether_enroll_request_check(&parsed, why, sizeof(why)), TETHER_OK);
    free(json);
    tether_enroll_request_wipe(&parsed);
}

/* Replaces "member":"..." in json by "member":"value". */
static char *with_member(const char *json, const char *member, const char *value)
{
    char key[64];
    const char *start, *end;
    char *out;

    snprintf(key, sizeof(key), "\"%s\":\"", member);
    start = strstr(json, key);
    assert_non_null(start);
    start += strlen(key);
    end = strchr(start, '"');
    out = malloc(strlen(json) + strlen(value) + 1);
    assert_non_null(out);
    memcpy(out, json, (size_t)(start - json));
    strcpy(out + (start - json), value);
    strcat(out, end);
    return out;
}

static void json_refusals(void **state)
{
    fixture_t *f = *state;
    tether_enroll_request_t parsed;
    char *json = NULL, *bad;
    char why[256];
    char big[TETHER_ENROLL_MAX_JSON + 2];
    uint8_t raw[4096];
    char b64[8192];
    size_t len = 0;

    assert_int_equal(tether_enroll_request_to_json(&f->req, &json), TETHER_OK);

    /* An unknown member. */
    bad = strdup(json);
    bad[strlen(bad) - 1] = '\0';
    {
        char *extra = malloc(strlen(bad) + 32);
        sprintf(extra, "%s,\"admin\":true}", bad);
        assert_int_equal(tether_enroll_request_from_json(extra, strlen(extra), &parsed, why,
                                                         sizeof(why)),
                         TETHER_ERR_PARSE);
        assert_non_null(strstr(why, "unknown member"));
        free(extra);
    }
    free(bad);

    /* Not base64url, and a structure of another type. */
    bad = with_member(json, "ak_public", "not*base64");
    assert_int_equal(tether_enroll_request_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    free(bad);
    bad = with_member(json, "ak_public", "AAAA");
    assert_int_equal(tether_enroll_request_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "ak_public"));
    free(bad);

    /* A TPM2B_PUBLIC whose size field is one too large, with a trailing byte. */
    assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&f->req.ak_public, raw, sizeof(raw), &len),
                     TSS2_RC_SUCCESS);
    raw[len] = 0;
    raw[1] = (uint8_t)(raw[1] + 1);
    assert_int_equal(tether_base64url_encode(raw, len + 1, b64, sizeof(b64), NULL), TETHER_OK);
    bad = with_member(json, "ak_public", b64);
    assert_int_equal(tether_enroll_request_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    free(bad);

    /* A name with a control character, and one too long. */
    bad = with_member(json, "ek_certificate", "");
    assert_int_equal(tether_enroll_request_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    free(bad);

    /* Oversized bodies are refused before parsing. */
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    assert_int_equal(tether_enroll_request_from_json(big, sizeof(big), &parsed, why, sizeof(why)),
                     TETHER_ERR_TOO_LARGE);

    /* Not JSON, and JSON that is not an object. */
    assert_int_equal(tether_enroll_request_from_json("[1]", 3, &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_enroll_request_from_json("{", 1, &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    free(json);
}

static void names_bounded(void **state)
{
    fixture_t *f = *state;
    tether_enroll_request_t parsed;
    char *json = NULL, *bad;
    char why[256], long_name[TETHER_ENROLL_MAX_NAME + 2];

    strcpy(f->req.name, "x");
    assert_int_equal(tether_enroll_request_to_json(&f->req, &json), TETHER_OK);
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    bad = with_member(json, "name", long_name);
    assert_int_equal(tether_enroll_request_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "longer"));
    free(bad);
    bad = with_member(json, "name", "tab\\there");
    assert_int_equal(tether_enroll_request_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "control"));
    free(bad);
    free(json);
}

static void check_refusals(void **state)
{
    fixture_t *f = *state;
    tether_enroll_request_t r;

    /* The AK must be restricted: the device key in its place is refused. */
    r = f->req;
    r.ak_public = f->req.device_key_public;
    assert_refused(&r, TETHER_ERR_VERIFY, "AK is not restricted");

    /* The device key must not be restricted. */
    r = f->req;
    r.device_key_public.publicArea.objectAttributes |= TPMA_OBJECT_RESTRICTED;
    assert_refused(&r, TETHER_ERR_VERIFY, "device key is restricted");

    /* An AK that could leave the TPM. */
    r = f->req;
    r.ak_public.publicArea.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM;
    assert_refused(&r, TETHER_ERR_VERIFY, "fixedTPM");

    /* An AK that can also decrypt. */
    r = f->req;
    r.ak_public.publicArea.objectAttributes |= TPMA_OBJECT_DECRYPT;
    assert_refused(&r, TETHER_ERR_VERIFY, "decrypt");

    /* The certification's signature must be the AK's. */
    r = f->req;
    r.device_key_certify.attestationData[r.device_key_certify.size - 1] ^= 1;
    assert_refused(&r, TETHER_ERR_VERIFY, "not signed by the AK");

    /* A certification of another key. */
    r = f->req;
    r.device_key_public.publicArea.unique.ecc.x.buffer[0] ^= 1;
    assert_refused(&r, TETHER_ERR_VERIFY, "");

    /* A counter that the owner could write, or of the wrong type. */
    r = f->req;
    r.counter_public.nvPublic.attributes |= TPMA_NV_OWNERWRITE;
    assert_refused(&r, TETHER_ERR_VERIFY, "attributes");
    r = f->req;
    r.counter_public.nvPublic.attributes &= ~TPMA_NV_TPM2_NT_MASK;
    assert_refused(&r, TETHER_ERR_VERIFY, "counter");
    r = f->req;
    r.counter_public.nvPublic.nvIndex = 0x01c00002;
    assert_refused(&r, TETHER_ERR_VERIFY, "owner range");

    /* An EK certificate that is not DER. */
    r = f->req;
    r.ek_cert[0] ^= 0xff;
    assert_refused(&r, TETHER_ERR_VERIFY, "DER");
}

static void ek_certificate_of_another_tpm(void **state)
{
    fixture_t *f = *state;
    tether_tpm_t other;
    tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P384, .seed = 7};
    tether_ek_t ek;
    tether_enroll_request_t r = f->req;

    tether_tpm_init(&other);
    assert_int_equal(tether_tpm_open_fake(&other, &config), TETHER_OK);
    assert_int_equal(tether_ek_open(&other, TETHER_EK_ECC_P384, &ek), TETHER_OK);
    memcpy(r.ek_cert, ek.cert_der, ek.cert_len);
    r.ek_cert_len = ek.cert_len;
    assert_refused(&r, TETHER_ERR_EK_MISMATCH, "another key");
    tether_ek_free(&other, &ek);
    tether_tpm_close(&other);
}

static void ek_chain_and_hash(void **state)
{
    fixture_t *f = *state;
    const uint8_t *ca_der;
    size_t ca_len;
    tether_cert_set_t cas, other, empty;
    char why[256];
    uint8_t h1[32], h2[32];
    mbedtls_x509_crt cert;
    uint8_t spki[1024];
    int len;

    assert_int_equal(tether_tpm_fake_ca_cert(&f->tpm, &ca_der, &ca_len), TETHER_OK);
    tether_cert_set_init(&cas);
    tether_cert_set_init(&other);
    tether_cert_set_init(&empty);
    assert_int_equal(tether_cert_set_add_der(&cas, ca_der, ca_len), TETHER_OK);
    assert_int_equal(tether_ek_cert_verify(f->req.ek_cert, f->req.ek_cert_len, &cas, why,
                                           sizeof(why)),
                     TETHER_OK);
    /* The EK certificate itself is no CA for itself. */
    assert_int_equal(tether_cert_set_add_der(&other, f->req.ek_cert, f->req.ek_cert_len),
                     TETHER_OK);
    assert_int_equal(tether_ek_cert_verify(f->req.ek_cert, f->req.ek_cert_len, &other, why,
                                           sizeof(why)),
                     TETHER_ERR_VERIFY);
    assert_non_null(strstr(why, "manufacturer CA"));
    /* No anchor: nothing chains; a certificate that does not parse is not
     * added. */
    assert_int_equal(tether_ek_cert_verify(f->req.ek_cert, f->req.ek_cert_len, &empty, why,
                                           sizeof(why)),
                     TETHER_ERR_VERIFY);
    assert_non_null(strstr(why, "none is trusted"));
    assert_int_equal(tether_cert_set_add_der(&empty, f->req.ek_cert, 10), TETHER_ERR_PARSE);
    assert_int_equal(tether_ek_cert_verify(f->req.ek_cert, f->req.ek_cert_len, &empty, why,
                                           sizeof(why)),
                     TETHER_ERR_VERIFY);

    /* ek_sha256 is SHA-256 of the certificate's SubjectPublicKeyInfo. */
    assert_int_equal(tether_ek_sha256(&f->req.ek_public.publicArea, h1), TETHER_OK);
    mbedtls_x509_crt_init(&cert);
    assert_int_equal(mbedtls_x509_crt_parse_der(&cert, f->req.ek_cert, f->req.ek_cert_len), 0);
    len = mbedtls_pk_write_pubkey_der(&cert.pk, spki, sizeof(spki));
    assert_true(len > 0);
    assert_int_equal(mbedtls_sha256_ret(spki + sizeof(spki) - len, (size_t)len, h2, 0), 0);
    assert_memory_equal(h1, h2, 32);
    mbedtls_x509_crt_free(&cert);
    tether_cert_set_free(&cas);
    tether_cert_set_free(&other);
    tether_cert_set_free(&empty);
    tether_cert_set_free(NULL);
}

static void credential_activation(void **state)
{
    fixture_t *f = *state;
    uint8_t secret[TETHER_ENROLL_SECRET_SIZE], expected[32], proof[32];
    TPM2B_NAME ak_name;
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET encrypted;

    memset(secret, 0x5a, sizeof(secret));
    assert_int_equal(tether_tpm2_public_name(&f->req.ak_public.publicArea, &ak_name), TETHER_OK);
    assert_int_equal(tether_credential_make(&f->req.ek_public, &ak_name, secret, sizeof(secret),
                                            &blob, &encrypted),
                     TETHER_OK);
    assert_int_equal(tether_agent_enroll_activate(&f->tpm, &f->state, &blob, &encrypted, "enr_1",
                                                  proof),
                     TETHER_OK);
    assert_int_equal(tether_enroll_activation_proof(secret, sizeof(secret), "enr_1", expected),
                     TETHER_OK);
    assert_memory_equal(proof, expected, 32);
    /* The proof is bound to the enrolment id. */
    assert_int_equal(tether_enroll_activation_proof(secret, sizeof(secret), "enr_2", expected),
                     TETHER_OK);
    assert_memory_not_equal(proof, expected, 32);
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);

    /* A credential for another AK name does not activate. */
    ak_name.name[5] ^= 1;
    assert_int_equal(tether_credential_make(&f->req.ek_public, &ak_name, secret, sizeof(secret),
                                            &blob, &encrypted),
                     TETHER_OK);
    assert_int_not_equal(tether_agent_enroll_activate(&f->tpm, &f->state, &blob, &encrypted,
                                                      "enr_1", proof),
                         TETHER_OK);
    assert_int_equal(tether_tpm_fake_loaded_objects(&f->tpm), 0);
}

static void state_round_trip_and_refusals(void **state)
{
    fixture_t *f = *state;
    tether_agent_state_t parsed;
    char *json = NULL, *bad;
    char why[128];

    strcpy(f->state.device_id, "dev_0123456789abcdef01234567");
    strcpy(f->state.fleet_url, "https://127.0.0.1:8443");
    assert_int_equal(tether_agent_state_to_json(&f->state, &json), TETHER_OK);
    assert_int_equal(tether_agent_state_from_json(json, strlen(json), &parsed, why, sizeof(why)),
                     TETHER_OK);
    assert_memory_equal(&parsed, &f->state, sizeof(parsed));

    bad = strdup(json);
    *strstr(bad, "0x01000100") = 'X';
    assert_int_equal(tether_agent_state_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "counter_index"));
    free(bad);
    bad = strdup(json);
    memcpy(strstr(bad, "\"p384\""), "\"p999\"", 6);
    assert_int_equal(tether_agent_state_from_json(bad, strlen(bad), &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    free(bad);
    assert_int_equal(tether_agent_state_from_json("{}", 2, &parsed, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    free(json);
}

/* The enrolment in progress survives the process: saved atomically with
 * mode 0600, read back whole, and enough alone to activate (the AK blob and
 * the challenge); device.json's members are not accepted in it, nor it in
 * device.json. */
static void pending_round_trip_and_resume(void **state)
{
    fixture_t *f = *state;
    uint8_t secret[TETHER_ENROLL_SECRET_SIZE], expected[32], proof[32];
    tether_agent_pending_t pending, loaded;
    tether_agent_state_t as_state;
    TPM2B_NAME ak_name;
    char dir[] = "/tmp/tether-pending-XXXXXX";
    char path[64], why[128];
    char *json = NULL, *bad;
    struct stat st;

    assert_non_null(mkdtemp(dir));
    memset(secret, 0x3c, sizeof(secret));
    memset(&pending, 0, sizeof(pending));
    pending.state = f->state;
    strcpy(pending.state.fleet_url, "https://127.0.0.1:8443");
    strcpy(pending.enrollment_id, "enr_0123456789abcdef0123456789abcdef");
    assert_int_equal(tether_tpm2_public_name(&f->req.ak_public.publicArea, &ak_name), TETHER_OK);
    assert_int_equal(tether_credential_make(&f->req.ek_public, &ak_name, secret, sizeof(secret),
                                            &pending.credential_blob, &pending.encrypted_secret),
                     TETHER_OK);

    assert_int_equal(tether_agent_pending_load(dir, &loaded, why, sizeof(why)),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_agent_pending_save(dir, &pending), TETHER_OK);
    snprintf(path, sizeof(path), "%s/%s", dir, TETHER_STATE_PENDING_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(tether_agent_pending_load(dir, &loaded, why, sizeof(why)), TETHER_OK);
    assert_memory_equal(&loaded, &pending, sizeof(loaded));
    assert_int_equal(tether_agent_enroll_activate(&f->tpm, &loaded.state, &loaded.credential_blob,
                                                  &loaded.encrypted_secret, loaded.enrollment_id,
                                                  proof),
                     TETHER_OK);
    assert_int_equal(tether_enroll_activation_proof(secret, sizeof(secret), loaded.enrollment_id,
                                                    expected),
                     TETHER_OK);
    assert_memory_equal(proof, expected, sizeof(proof));

    assert_int_equal(tether_agent_pending_to_json(&pending, &json), TETHER_OK);
    assert_null(strstr(json, "device_id"));
    assert_int_equal(tether_agent_state_from_json(json, strlen(json), &as_state, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    bad = strdup(json);
    memcpy(strstr(bad, "\"enrollment_id\""), "\"device_id\"    ", 15);
    assert_int_equal(tether_agent_pending_from_json(bad, strlen(bad), &loaded, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_string_equal(why, "unknown member");
    assert_int_equal(loaded.enrollment_id[0], '\0');
    free(bad);
    bad = strdup(json);
    *(strchr(strstr(bad, "\"credential_blob\":") + 18, '"') + 5) = '!';
    assert_int_equal(tether_agent_pending_from_json(bad, strlen(bad), &loaded, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "credential_blob"));
    free(bad);
    free(json);

    assert_int_equal(tether_agent_pending_remove(dir), TETHER_OK);
    assert_int_equal(tether_agent_pending_remove(dir), TETHER_OK);
    assert_int_equal(tether_agent_pending_load(dir, &loaded, why, sizeof(why)),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(prepared_request_passes_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(prepare_reuses_own_counter_and_refuses_foreign_index,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(json_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(json_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(names_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(check_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(ek_certificate_of_another_tpm, setup, teardown),
        cmocka_unit_test_setup_teardown(ek_chain_and_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(credential_activation, setup, teardown),
        cmocka_unit_test_setup_teardown(state_round_trip_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_round_trip_and_resume, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
