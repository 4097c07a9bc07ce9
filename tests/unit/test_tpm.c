/*
 * What every TPM implementation shares (hal/src/tpm.c), exercised through
 * the fake: response-code mapping, the bounded retry policy, EK selection,
 * key-blob encoding and the argument checks of the wrappers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <tss2/tss2_common.h>

#include "tether/tpm.h"
#include "tether/tpm_fake.h"

#define CERT_P256 (1u << TETHER_EK_ECC_P256)
#define CERT_P384 (1u << TETHER_EK_ECC_P384)
#define CERT_RSA (1u << TETHER_EK_RSA2048)
#define CERT_ALL (CERT_P256 | CERT_P384 | CERT_RSA)
#define COUNTER 0x01000010u

static void open_fake(tether_tpm_t *tpm, unsigned cert_types, uint64_t seed)
{
    tether_tpm_fake_config_t config = {.ek_cert_types = cert_types, .seed = seed};

    tether_tpm_init(tpm);
    tpm->retry_delay_ms = 0;
    assert_int_equal(tether_tpm_open_fake(tpm, &config), TETHER_OK);
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* --- tether_tpm_rc_status ------------------------------------------------- */

static void rc_status_table(void **state)
{
    static const struct {
        uint32_t rc;
        tether_status_t status;
    } table[] = {
        {TSS2_RC_SUCCESS, TETHER_OK},
        /* Warnings (format zero): only RETRY, YIELDED and TESTING are worth
         * another try; LOCKOUT never is. */
        {TPM2_RC_RETRY, TETHER_ERR_TPM_RETRY},
        {TPM2_RC_YIELDED, TETHER_ERR_TPM_RETRY},
        {TPM2_RC_TESTING, TETHER_ERR_TPM_RETRY},
        {TPM2_RC_LOCKOUT, TETHER_ERR_TPM_LOCKOUT},
        {TPM2_RC_NV_RATE, TETHER_ERR_TPM},
        {TPM2_RC_NV_UNAVAILABLE, TETHER_ERR_TPM},
        {TPM2_RC_OBJECT_MEMORY, TETHER_ERR_TPM},
        {TPM2_RC_CANCELED, TETHER_ERR_TPM},
        /* Format-zero errors. */
        {TPM2_RC_INITIALIZE, TETHER_ERR_TPM},
        {TPM2_RC_FAILURE, TETHER_ERR_TPM},
        {TPM2_RC_NV_DEFINED, TETHER_ERR_TPM},
        {TPM2_RC_NV_UNINITIALIZED, TETHER_ERR_TPM},
        /* Format one: the handle, session or parameter number must not
         * change the meaning; 0x9a2 is BAD_AUTH on session 1, not a warning. */
        {TPM2_RC_AUTH_FAIL, TETHER_ERR_TPM_AUTH},
        {TPM2_RC_AUTH_FAIL + TPM2_RC_S + TPM2_RC_1, TETHER_ERR_TPM_AUTH},
        {TPM2_RC_AUTH_FAIL + TPM2_RC_S + TPM2_RC_3, TETHER_ERR_TPM_AUTH},
        {TPM2_RC_BAD_AUTH, TETHER_ERR_TPM_AUTH},
        {TPM2_RC_BAD_AUTH + TPM2_RC_S + TPM2_RC_1, TETHER_ERR_TPM_AUTH},
        {TPM2_RC_BAD_AUTH + TPM2_RC_S + TPM2_RC_2, TETHER_ERR_TPM_AUTH},
        {TPM2_RC_HANDLE + TPM2_RC_1, TETHER_ERR_TPM},
        {TPM2_RC_HANDLE + TPM2_RC_7, TETHER_ERR_TPM},
        {TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_1, TETHER_ERR_TPM},
        {TPM2_RC_VALUE + TPM2_RC_P + 0xf00, TETHER_ERR_TPM}, /* parameter 15 */
        {TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1, TETHER_ERR_TPM},
        {TPM2_RC_POLICY_FAIL + TPM2_RC_S + TPM2_RC_1, TETHER_ERR_TPM},
        {TPM2_RC_SIZE + TPM2_RC_P + TPM2_RC_2, TETHER_ERR_TPM},
        /* TPM codes passed on by a resource manager. */
        {TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_RETRY, TETHER_ERR_TPM_RETRY},
        {TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_YIELDED, TETHER_ERR_TPM_RETRY},
        {TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_LOCKOUT, TETHER_ERR_TPM_LOCKOUT},
        {TSS2_RESMGR_TPM_RC_LAYER | (TPM2_RC_AUTH_FAIL + TPM2_RC_S + TPM2_RC_1),
         TETHER_ERR_TPM_AUTH},
        {TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_FAILURE, TETHER_ERR_TPM},
        /* The TSS's own layers: only lost connections are CONNECT. */
        {TSS2_TCTI_RC_IO_ERROR, TETHER_ERR_TPM_CONNECT},
        {TSS2_TCTI_RC_NO_CONNECTION, TETHER_ERR_TPM_CONNECT},
        {TSS2_RESMGR_RC_LAYER | TSS2_BASE_RC_IO_ERROR, TETHER_ERR_TPM_CONNECT},
        {TSS2_ESAPI_RC_LAYER | TSS2_BASE_RC_NO_CONNECTION, TETHER_ERR_TPM_CONNECT},
        {TSS2_TCTI_RC_GENERAL_FAILURE, TETHER_ERR_TPM},
        {TSS2_TCTI_RC_TRY_AGAIN, TETHER_ERR_TPM},
        {TSS2_ESYS_RC_BAD_REFERENCE, TETHER_ERR_TPM},
        {TSS2_ESYS_RC_MEMORY, TETHER_ERR_TPM},
        {TSS2_MU_RC_INSUFFICIENT_BUFFER, TETHER_ERR_TPM},
        {TSS2_SYS_RC_BAD_SEQUENCE, TETHER_ERR_TPM},
        /* A TSS layer whose low bits happen to equal a TPM warning is no
         * TPM warning. */
        {TSS2_ESAPI_RC_LAYER | TPM2_RC_RETRY, TETHER_ERR_TPM},
        {TSS2_TCTI_RC_LAYER | TPM2_RC_LOCKOUT, TETHER_ERR_TPM},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        tether_status_t got = tether_tpm_rc_status(table[i].rc);
        if (got != table[i].status)
            fail_msg("rc 0x%08x: got %d, want %d", table[i].rc, got, table[i].status);
    }
}

/* --- retries --------------------------------------------------------------- */

static uint64_t counter_value(tether_tpm_t *tpm)
{
    uint64_t value = 0;

    assert_int_equal(tether_tpm_nv_read_counter(tpm, COUNTER, &value), TETHER_OK);
    return value;
}

static void retry_then_success(void **state)
{
    tether_tpm_t tpm;

    (void)state;
    open_fake(&tpm, 0, 1);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);

    /* Busy twice, then done: the increment happened exactly once. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, TPM2_RC_RETRY, 2);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(counter_value(&tpm), 2);
    /* The busy answers are remembered as the last failure seen. */
    assert_int_equal(tpm.last_rc, TPM2_RC_RETRY);

    /* One short of the limit still succeeds; YIELDED and TESTING as well,
     * and RETRY forwarded by a resource manager. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, TPM2_RC_YIELDED,
                           tpm.max_attempts - 1);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, TPM2_RC_TESTING, 1);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_RETRY, 1);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(counter_value(&tpm), 5);

    /* With a real delay: 1 ms, then 2 ms. */
    tpm.retry_delay_ms = 1;
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, TPM2_RC_RETRY, 2);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(counter_value(&tpm), 6);
    tether_tpm_close(&tpm);
}

static void retry_exhausted(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_info_t info;

    (void)state;
    open_fake(&tpm, 0, 1);
    assert_int_equal(tpm.max_attempts, TETHER_TPM_DEFAULT_ATTEMPTS);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);

    /* Busy on every attempt: TETHER_ERR_TPM_RETRY, the op never ran, and
     * exactly max_attempts attempts were made (the fault is used up). */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, TPM2_RC_RETRY, tpm.max_attempts);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_ERR_TPM_RETRY);
    assert_int_equal(tpm.last_rc, TPM2_RC_RETRY);
    assert_true(contains(tpm.last_error, "TPM2_NV_Increment"));
    assert_int_equal(counter_value(&tpm), 1);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(counter_value(&tpm), 2);

    /* A smaller limit is honoured. */
    tpm.max_attempts = 2;
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_GET_INFO, TPM2_RC_RETRY, 3);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_TPM_RETRY);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK); /* 1 left, then done */
    /* max_attempts 0 still makes one attempt. */
    tpm.max_attempts = 0;
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_GET_INFO, TPM2_RC_RETRY, 1);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_TPM_RETRY);
    tether_tpm_close(&tpm);
}

/* Lockout, authorisation failures and lost connections are reported at
 * once: a retry loop would only deepen a lockout. */
static void no_retry_for_hard_errors(void **state)
{
    static const struct {
        uint32_t rc;
        tether_status_t status;
    } cases[] = {
        {TPM2_RC_LOCKOUT, TETHER_ERR_TPM_LOCKOUT},
        {TPM2_RC_AUTH_FAIL + TPM2_RC_S + TPM2_RC_1, TETHER_ERR_TPM_AUTH},
        {TSS2_TCTI_RC_IO_ERROR, TETHER_ERR_TPM_CONNECT},
        {TPM2_RC_FAILURE, TETHER_ERR_TPM},
    };
    tether_tpm_t tpm;

    (void)state;
    open_fake(&tpm, 0, 1);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Three injected: each call uses up exactly one. */
        tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, cases[i].rc, 3);
        for (unsigned call = 0; call < 3; call++) {
            assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), cases[i].status);
            assert_int_equal(tpm.last_rc, cases[i].rc);
        }
        assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    }
    assert_int_equal(counter_value(&tpm), 1 + 4);
    tether_tpm_close(&tpm);
}

/* --- tether_ek_open ------------------------------------------------------------ */

static void ek_open_expect(unsigned certs, tether_ek_type_t want, tether_ek_type_t got)
{
    tether_tpm_t tpm;
    tether_ek_t ek;

    open_fake(&tpm, certs, 1);
    assert_int_equal(tether_ek_open(&tpm, want, &ek), TETHER_OK);
    assert_int_equal(ek.type, got);
    assert_int_not_equal(ek.handle, TETHER_TPM_HANDLE_NONE);
    assert_true(ek.cert_len > 0);
    assert_int_equal(ek.public_area.publicArea.type,
                     got == TETHER_EK_RSA2048 ? TPM2_ALG_RSA : TPM2_ALG_ECC);
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 1);
    tether_ek_free(&tpm, &ek);
    assert_int_equal(ek.handle, TETHER_TPM_HANDLE_NONE);
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 0);
    tether_tpm_close(&tpm);
}

static void ek_open_preference(void **state)
{
    (void)state;
    /* P-256 over P-384 over RSA 2048. */
    ek_open_expect(CERT_ALL, TETHER_EK_ANY, TETHER_EK_ECC_P256);
    ek_open_expect(CERT_P384 | CERT_RSA, TETHER_EK_ANY, TETHER_EK_ECC_P384);
    ek_open_expect(CERT_RSA, TETHER_EK_ANY, TETHER_EK_RSA2048);
    /* Forced types. */
    ek_open_expect(CERT_ALL, TETHER_EK_ECC_P384, TETHER_EK_ECC_P384);
    ek_open_expect(CERT_P256 | CERT_P384, TETHER_EK_ECC_P256, TETHER_EK_ECC_P256);
}

static void ek_open_fails(tether_tpm_t *tpm, tether_ek_type_t want, tether_status_t status,
                          const char *message)
{
    tether_ek_t ek;

    memset(&ek, 0x5a, sizeof(ek));
    assert_int_equal(tether_ek_open(tpm, want, &ek), status);
    if (message != NULL && !contains(tpm->last_error, message))
        fail_msg("last_error \"%s\" lacks \"%s\"", tpm->last_error, message);
    /* Nothing stays loaded and nothing is left in the struct. */
    assert_int_equal(tether_tpm_fake_loaded_objects(tpm), 0);
    assert_int_equal(ek.handle, TETHER_TPM_HANDLE_NONE);
    assert_int_equal(ek.cert_len, 0);
}

static void ek_open_no_cert(void **state)
{
    tether_tpm_t tpm;

    (void)state;
    open_fake(&tpm, 0, 1);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_NO_EK_CERT, "any supported EK type");
    tether_tpm_close(&tpm);

    open_fake(&tpm, CERT_P256, 1);
    ek_open_fails(&tpm, TETHER_EK_RSA2048, TETHER_ERR_NO_EK_CERT, "RSA 2048");
    ek_open_fails(&tpm, TETHER_EK_ECC_P384, TETHER_ERR_NO_EK_CERT, "ECC NIST P-384");
    tether_tpm_close(&tpm);
}

static void ek_open_mismatch(void **state)
{
    tether_tpm_t tpm, other;
    uint8_t cert[TETHER_TPM_MAX_NV_READ];
    size_t len = 0;

    (void)state;
    /* A genuine certificate, from another TPM (another seed). */
    open_fake(&other, CERT_P256 | CERT_P384, 2);
    assert_int_equal(tether_tpm_nv_read(&other, tether_ek_cert_nv_index(TETHER_EK_ECC_P256), cert,
                                        sizeof(cert), &len),
                     TETHER_OK);
    open_fake(&tpm, CERT_P256, 1);
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, cert, len), TETHER_OK);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_EK_MISMATCH, "certifies another key");
    ek_open_fails(&tpm, TETHER_EK_ECC_P256, TETHER_ERR_EK_MISMATCH, "0x01c0000a");

    /* A P-384 certificate in the P-256 index. */
    assert_int_equal(tether_tpm_nv_read(&other, tether_ek_cert_nv_index(TETHER_EK_ECC_P384), cert,
                                        sizeof(cert), &len),
                     TETHER_OK);
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, cert, len), TETHER_OK);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_EK_MISMATCH, NULL);
    tether_tpm_close(&other);
    tether_tpm_close(&tpm);
}

static void ek_open_bad_cert(void **state)
{
    static const uint8_t garbage[] = {0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef};
    uint8_t big[TETHER_TPM_MAX_NV_READ + 1];
    tether_tpm_t tpm;

    (void)state;
    open_fake(&tpm, CERT_P256, 1);
    assert_int_equal(
        tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, garbage, sizeof(garbage)), TETHER_OK);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_PARSE, "not DER X.509");
    /* The first type with a certificate is used; a bad one is not skipped. */
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P384, garbage, 1), TETHER_OK);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_PARSE, NULL);
    memset(big, 0x30, sizeof(big));
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, big, sizeof(big)),
                     TETHER_OK);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_TOO_LARGE, "more than");
    tether_tpm_close(&tpm);
}

static void ek_open_tpm_errors(void **state)
{
    tether_tpm_t tpm;
    tether_ek_t ek;
    tether_tpm_handle_t h[3];
    TPM2B_PUBLIC pub;

    (void)state;
    open_fake(&tpm, CERT_P256, 1);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_READ, TPM2_RC_LOCKOUT, 1);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_TPM_LOCKOUT, "TPM2_NV_Read");
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_CREATE_EK, TPM2_RC_FAILURE, 1);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_TPM, "TPM2_CreatePrimary");
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_CREATE_EK, TPM2_RC_RETRY, tpm.max_attempts);
    ek_open_fails(&tpm, TETHER_EK_ANY, TETHER_ERR_TPM_RETRY, NULL);

    /* Busy for a moment: ek_open rides it out. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TPM2_RC_RETRY, 2);
    assert_int_equal(tether_ek_open(&tpm, TETHER_EK_ANY, &ek), TETHER_OK);
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 1);
    tether_ek_free(&tpm, &ek);

    /* No object memory left (someone leaked handles). */
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &h[i], &pub), TETHER_OK);
    memset(&ek, 0, sizeof(ek));
    assert_int_equal(tether_ek_open(&tpm, TETHER_EK_ANY, &ek), TETHER_ERR_STATE);
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(tether_tpm_flush(&tpm, h[i]), TETHER_OK);
    tether_tpm_close(&tpm);
}

static void ek_open_arguments(void **state)
{
    tether_tpm_t tpm, closed;
    tether_ek_t ek;

    (void)state;
    open_fake(&tpm, CERT_P256, 1);
    assert_int_equal(tether_ek_open(NULL, TETHER_EK_ANY, &ek), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_ek_open(&tpm, TETHER_EK_ANY, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_ek_open(&tpm, (tether_ek_type_t)(TETHER_EK_ANY + 1), &ek),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_tpm_init(&closed);
    assert_int_equal(tether_ek_open(&closed, TETHER_EK_ANY, &ek), TETHER_ERR_STATE);
    /* ek_free takes NULL and zeroed structs. */
    tether_ek_free(&tpm, NULL);
    memset(&ek, 0, sizeof(ek));
    tether_ek_free(&tpm, &ek);
    tether_ek_free(NULL, &ek);
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 0);
    tether_tpm_close(&tpm);

    assert_int_equal(tether_ek_cert_nv_index(TETHER_EK_ECC_P256), 0x01c0000a);
    assert_int_equal(tether_ek_cert_nv_index(TETHER_EK_ECC_P384), 0x01c00016);
    assert_int_equal(tether_ek_cert_nv_index(TETHER_EK_RSA2048), 0x01c00002);
    assert_int_equal(tether_ek_cert_nv_index(TETHER_EK_ANY), 0);
    assert_string_equal(tether_ek_type_name(TETHER_EK_RSA2048), "RSA 2048");
    assert_string_equal(tether_ek_type_name(TETHER_EK_ANY), "unknown");
}

/* --- key blobs --------------------------------------------------------------- */

static void make_blob(tether_tpm_key_blob_t *blob)
{
    tether_tpm_t tpm;
    tether_tpm_handle_t ek = TETHER_TPM_HANDLE_NONE;
    TPM2B_PUBLIC pub;

    open_fake(&tpm, 0, 1);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &ek, &pub), TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&tpm, ek, TETHER_KEY_AK, blob), TETHER_OK);
    tether_tpm_close(&tpm);
}

static bool all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < len; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

static void key_blob_round_trip(void **state)
{
    tether_tpm_key_blob_t blob, back;
    uint8_t buf[sizeof(tether_tpm_key_blob_t) + 16], again[sizeof(buf)];
    size_t len = 0, len2 = 0;

    (void)state;
    make_blob(&blob);
    assert_int_equal(tether_tpm_key_blob_marshal(&blob, buf, sizeof(buf), &len), TETHER_OK);
    assert_int_equal(len, 2u + blob.public_area.size + 2u + blob.private_blob.size);
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, &back), TETHER_OK);
    assert_int_equal(back.public_area.size, blob.public_area.size);
    assert_memory_equal(&back.public_area.publicArea.unique.ecc,
                        &blob.public_area.publicArea.unique.ecc, sizeof(TPMS_ECC_POINT));
    assert_int_equal(back.public_area.publicArea.objectAttributes,
                     blob.public_area.publicArea.objectAttributes);
    assert_int_equal(back.private_blob.size, blob.private_blob.size);
    assert_memory_equal(back.private_blob.buffer, blob.private_blob.buffer, blob.private_blob.size);
    assert_int_equal(tether_tpm_key_blob_marshal(&back, again, sizeof(again), &len2), TETHER_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
}

static void key_blob_truncated_and_trailing(void **state)
{
    tether_tpm_key_blob_t blob, back;
    uint8_t buf[sizeof(tether_tpm_key_blob_t) + 16], small[sizeof(buf)];
    size_t len = 0, out_len;

    (void)state;
    make_blob(&blob);
    assert_int_equal(tether_tpm_key_blob_marshal(&blob, buf, sizeof(buf), &len), TETHER_OK);
    for (size_t cut = 0; cut < len; cut++) {
        memset(&back, 0x5a, sizeof(back));
        if (tether_tpm_key_blob_unmarshal(buf, cut, &back) != TETHER_ERR_PARSE)
            fail_msg("a blob cut to %zu of %zu bytes was accepted", cut, len);
        assert_true(all_zero(&back, sizeof(back)));
    }
    buf[len] = 0;
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len + 1, &back), TETHER_ERR_PARSE);
    assert_true(all_zero(&back, sizeof(back)));

    /* Sizes inside that disagree with the data. */
    buf[1]++; /* TPM2B_PUBLIC size one too large, then one too small */
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, &back), TETHER_ERR_PARSE);
    buf[1] = (uint8_t)(buf[1] - 2);
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, &back), TETHER_ERR_PARSE);
    buf[1]++;
    buf[len - blob.private_blob.size - 1]++; /* TPM2B_PRIVATE size */
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, &back), TETHER_ERR_PARSE);
    buf[len - blob.private_blob.size - 1]--;
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, &back), TETHER_OK);

    /* Marshalling into every buffer that is too small fails cleanly. */
    for (size_t size = 0; size < len; size++) {
        out_len = 12345;
        assert_int_equal(tether_tpm_key_blob_marshal(&blob, small, size, &out_len),
                         TETHER_ERR_TOO_LARGE);
        assert_int_equal(out_len, 12345);
    }
    assert_int_equal(tether_tpm_key_blob_marshal(&blob, small, len, &out_len), TETHER_OK);
    assert_int_equal(out_len, len);

    assert_int_equal(tether_tpm_key_blob_marshal(NULL, buf, sizeof(buf), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_key_blob_marshal(&blob, NULL, sizeof(buf), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_key_blob_marshal(&blob, buf, sizeof(buf), NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_key_blob_unmarshal(NULL, len, &back), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, NULL), TETHER_ERR_INVALID_ARGUMENT);
}

/* --- wrapper argument checks -------------------------------------------------- */

static void wrapper_arguments(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_info_t info;
    tether_tpm_handle_t h = TETHER_TPM_HANDLE_NONE;
    tether_tpm_key_blob_t blob = {0};
    tether_tpm_attestation_t att;
    TPM2B_PUBLIC pub;
    TPM2B_NV_PUBLIC nv_pub;
    TPM2B_NAME name;
    TPM2B_DIGEST digest;
    TPM2B_ID_OBJECT cred = {0};
    TPM2B_ENCRYPTED_SECRET secret = {0};
    TPML_PCR_SELECTION sel = {.count = 1};
    TPML_DIGEST_VALUES values = {.count = 1};
    uint8_t q[TETHER_TPM_MAX_QUALIFYING + 1] = {0}, buf[8], d32[32] = {0}, sig[64];
    size_t len;
    uint64_t value;

    (void)state;
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    values.digests[0].hashAlg = TPM2_ALG_SHA256;
    open_fake(&tpm, 0, 1);
    /* Handles 1 and 2 exist, so argument errors are the wrappers'. */
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &h, &pub), TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&tpm, h, TETHER_KEY_AK, &blob), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&tpm, h, &blob, &h), TETHER_OK);
    assert_int_equal(h, 2);
    tpm.last_error[0] = '\0';

    assert_int_equal(tether_tpm_get_info(NULL, &info), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_get_info(&tpm, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read(NULL, COUNTER, buf, sizeof(buf), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read(&tpm, COUNTER, NULL, sizeof(buf), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read(&tpm, COUNTER, buf, sizeof(buf), NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_ek(NULL, TETHER_EK_ECC_P256, &h, &pub),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, NULL, &pub),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &h, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ANY, &h, &pub),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_key(NULL, 1, TETHER_KEY_AK, &blob),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_key(&tpm, 1, TETHER_KEY_AK, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_key(&tpm, TETHER_TPM_HANDLE_NONE, TETHER_KEY_AK, &blob),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_create_key(&tpm, 1, (tether_key_kind_t)7, &blob),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_load_key(NULL, 1, &blob, &h), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_load_key(&tpm, 1, NULL, &h), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_load_key(&tpm, 1, &blob, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_load_key(&tpm, TETHER_TPM_HANDLE_NONE, &blob, &h),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_flush(NULL, 1), TETHER_ERR_INVALID_ARGUMENT);

    /* Qualifying data: at most 64 bytes, and NULL only when empty. */
    assert_int_equal(tether_tpm_certify(&tpm, 2, 1, q, sizeof(q), &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_certify(&tpm, 2, 1, NULL, 1, &att), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_certify(&tpm, 2, 1, q, TETHER_TPM_MAX_QUALIFYING, &att), TETHER_OK);
    assert_int_equal(tether_tpm_certify(NULL, 2, 1, q, 1, &att), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_certify(&tpm, 2, 1, q, 1, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_certify(&tpm, TETHER_TPM_HANDLE_NONE, 1, q, 1, &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_certify(&tpm, 2, TETHER_TPM_HANDLE_NONE, q, 1, &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_certify(&tpm, 2, COUNTER, q, sizeof(q), &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_certify(&tpm, 2, COUNTER, NULL, 3, &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_certify(&tpm, 2, COUNTER, q, 3, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_certify(&tpm, TETHER_TPM_HANDLE_NONE, COUNTER, q, 3, &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_quote(&tpm, 2, &sel, q, sizeof(q), &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_quote(&tpm, 2, &sel, NULL, 2, &att), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_quote(&tpm, 2, NULL, q, 2, &att), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_quote(&tpm, 2, &sel, q, 2, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_quote(&tpm, TETHER_TPM_HANDLE_NONE, &sel, q, 2, &att),
                     TETHER_ERR_INVALID_ARGUMENT);
    sel.count = 0;
    assert_int_equal(tether_tpm_quote(&tpm, 2, &sel, q, 2, &att), TETHER_ERR_INVALID_ARGUMENT);
    sel.count = TPM2_NUM_PCR_BANKS + 1;
    assert_int_equal(tether_tpm_quote(&tpm, 2, &sel, q, 2, &att), TETHER_ERR_INVALID_ARGUMENT);
    sel.count = 1;
    assert_int_equal(tether_tpm_quote(&tpm, 2, &sel, q, 2, &att), TETHER_OK);

    assert_int_equal(tether_tpm_sign_digest(NULL, 2, d32, sig), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_sign_digest(&tpm, 2, NULL, sig), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_sign_digest(&tpm, 2, d32, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_sign_digest(&tpm, TETHER_TPM_HANDLE_NONE, d32, sig),
                     TETHER_ERR_INVALID_ARGUMENT);

    /* NV counters live in the owner range 0x01000000-0x013fffff only. */
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x00ffffff), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x01400000), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x01c0000a), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x81000001), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_define_counter(NULL, COUNTER), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_undefine(&tpm, 0x01c0000a), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_undefine(NULL, COUNTER), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x01000000), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x013fffff), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(NULL, COUNTER), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read_counter(NULL, COUNTER, &value),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read_public(NULL, COUNTER, &nv_pub, &name),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read_public(&tpm, COUNTER, NULL, &name),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_nv_read_public(&tpm, COUNTER, &nv_pub, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);

    assert_int_equal(tether_tpm_activate_credential(NULL, 2, 1, &cred, &secret, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_activate_credential(&tpm, 2, 1, NULL, &secret, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_activate_credential(&tpm, 2, 1, &cred, NULL, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_activate_credential(&tpm, 2, 1, &cred, &secret, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        tether_tpm_activate_credential(&tpm, TETHER_TPM_HANDLE_NONE, 1, &cred, &secret, &digest),
        TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        tether_tpm_activate_credential(&tpm, 2, TETHER_TPM_HANDLE_NONE, &cred, &secret, &digest),
        TETHER_ERR_INVALID_ARGUMENT);
    cred.size = sizeof(cred.credential) + 1;
    assert_int_equal(tether_tpm_activate_credential(&tpm, 2, 1, &cred, &secret, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);
    cred.size = 0;
    secret.size = sizeof(secret.secret) + 1;
    assert_int_equal(tether_tpm_activate_credential(&tpm, 2, 1, &cred, &secret, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);

    assert_int_equal(tether_tpm_pcr_read(NULL, TPM2_ALG_SHA256, 0, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 0, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, TPM2_MAX_PCRS, &digest),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_pcr_extend(NULL, 0, &values), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 0, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_pcr_extend(&tpm, TPM2_MAX_PCRS, &values),
                     TETHER_ERR_INVALID_ARGUMENT);
    values.count = 0;
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 0, &values), TETHER_ERR_INVALID_ARGUMENT);
    values.count = TPM2_NUM_PCR_BANKS + 1;
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 0, &values), TETHER_ERR_INVALID_ARGUMENT);

    /* Argument errors are caught before the TPM is asked: no message. */
    assert_string_equal(tpm.last_error, "");
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 2);
    tether_tpm_close(&tpm);
}

/* Every wrapper refuses a context that is not open. */
static void not_open(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_info_t info;
    TPM2B_PUBLIC pub;
    tether_tpm_handle_t h;
    uint64_t value;

    (void)state;
    tether_tpm_init(&tpm);
    assert_int_equal(tpm.max_attempts, TETHER_TPM_DEFAULT_ATTEMPTS);
    assert_int_equal(tpm.retry_delay_ms, TETHER_TPM_DEFAULT_RETRY_DELAY_MS);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_STATE);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &h, &pub), TETHER_ERR_STATE);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_ERR_STATE);
    assert_int_equal(tether_tpm_flush(&tpm, 1), TETHER_ERR_STATE);
    assert_true(contains(tpm.last_error, "not open"));
    tether_tpm_init(NULL);
    tether_tpm_close(&tpm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rc_status_table),     cmocka_unit_test(retry_then_success),
        cmocka_unit_test(retry_exhausted),     cmocka_unit_test(no_retry_for_hard_errors),
        cmocka_unit_test(ek_open_preference),  cmocka_unit_test(ek_open_no_cert),
        cmocka_unit_test(ek_open_mismatch),    cmocka_unit_test(ek_open_bad_cert),
        cmocka_unit_test(ek_open_tpm_errors),  cmocka_unit_test(ek_open_arguments),
        cmocka_unit_test(key_blob_round_trip), cmocka_unit_test(key_blob_truncated_and_trailing),
        cmocka_unit_test(wrapper_arguments),   cmocka_unit_test(not_open),
    };
    return cmocka_run_group_tests_name("tpm", tests, NULL, NULL);
}
