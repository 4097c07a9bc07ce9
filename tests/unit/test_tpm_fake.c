/*
 * The fake TPM (tests/fakes/src/tpm_fake.c): every operation, its error
 * paths, and that what it produces has the formats and properties of a real
 * TPM's output (checked with the lib verification code and mbedTLS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/x509_crt.h>
#include <tss2/tss2_mu.h>

#include "tether/attest.h"
#include "tether/credential.h"
#include "tether/mbedtls_bridge.h"
#include "tether/tpm.h"
#include "tether/tpm2_public.h"
#include "tether/tpm_fake.h"

#define CERT_P256 (1u << TETHER_EK_ECC_P256)
#define CERT_P384 (1u << TETHER_EK_ECC_P384)
#define CERT_RSA (1u << TETHER_EK_RSA2048)
#define COUNTER 0x01000010u
#define COUNTER_2 0x01000011u

static void open_fake(tether_tpm_t *tpm, unsigned cert_types, uint64_t seed)
{
    tether_tpm_fake_config_t config = {.ek_cert_types = cert_types, .seed = seed};

    tether_tpm_init(tpm);
    tpm->retry_delay_ms = 0;
    assert_int_equal(tether_tpm_open_fake(tpm, &config), TETHER_OK);
}

static void sha256(const void *data, size_t len, uint8_t out[32])
{
    assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, len, out), 0);
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* A P-256 fake with its EK open, an AK and a device key created and loaded:
 * all three object slots in use. */
typedef struct fixture {
    tether_tpm_t tpm;
    tether_ek_t ek;
    tether_tpm_key_blob_t ak_blob, dk_blob;
    tether_tpm_handle_t ak, dk;
} fixture_t;

static int fixture_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    open_fake(&fx->tpm, CERT_P256, 1);
    assert_int_equal(tether_ek_open(&fx->tpm, TETHER_EK_ANY, &fx->ek), TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&fx->tpm, fx->ek.handle, TETHER_KEY_AK, &fx->ak_blob),
                     TETHER_OK);
    assert_int_equal(
        tether_tpm_create_key(&fx->tpm, fx->ek.handle, TETHER_KEY_DEVICE, &fx->dk_blob), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &fx->ak_blob, &fx->ak),
                     TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &fx->dk_blob, &fx->dk),
                     TETHER_OK);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture_t *fx = *state;

    if (fx == NULL)
        return 0;
    (void)tether_tpm_flush(&fx->tpm, fx->ak);
    (void)tether_tpm_flush(&fx->tpm, fx->dk);
    tether_ek_free(&fx->tpm, &fx->ek);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 0);
    tether_tpm_close(&fx->tpm);
    free(fx);
    return 0;
}

static const TPMT_PUBLIC *ak_public(const fixture_t *fx)
{
    return &fx->ak_blob.public_area.publicArea;
}

static void verify_attestation(const TPMT_PUBLIC *signer, const tether_tpm_attestation_t *a)
{
    assert_int_equal(a->signature.sigAlg, TPM2_ALG_ECDSA);
    assert_int_equal(a->signature.signature.ecdsa.hash, TPM2_ALG_SHA256);
    assert_int_equal(a->signature.signature.ecdsa.signatureR.size, 32);
    assert_int_equal(a->signature.signature.ecdsa.signatureS.size, 32);
    assert_int_equal(tether_tpm2_verify_signature(signer, a->attest.attestationData, a->attest.size,
                                                  &a->signature),
                     TETHER_OK);
}

/* The header a TPM writes into every TPMS_ATTEST. */
static void check_attest_header(const fixture_t *fx, const TPMS_ATTEST *attest,
                                const uint8_t *qualifying, size_t qualifying_len)
{
    TPM2B_NAME ek_qn, ak_qn;

    assert_int_equal(attest->magic, TPM2_GENERATED_VALUE);
    assert_int_equal(tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT,
                                                &fx->ek.public_area.publicArea, &ek_qn),
                     TETHER_OK);
    assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, ak_public(fx), &ak_qn), TETHER_OK);
    assert_int_equal(attest->qualifiedSigner.size, ak_qn.size);
    assert_memory_equal(attest->qualifiedSigner.name, ak_qn.name, ak_qn.size);
    assert_int_equal(attest->extraData.size, qualifying_len);
    if (qualifying_len > 0)
        assert_memory_equal(attest->extraData.buffer, qualifying, qualifying_len);
    assert_int_equal(attest->clockInfo.safe, TPM2_YES);
    assert_true(attest->clockInfo.clock > 0);
    assert_int_not_equal(attest->firmwareVersion, 0);
}

/* --- open, close, info ---------------------------------------------------- */

static void open_arguments(void **state)
{
    tether_tpm_fake_config_t config = {.ek_cert_types = CERT_P256, .seed = 1};
    tether_tpm_fake_config_t bad_types = {.ek_cert_types = 1u << TETHER_EK_TYPE_COUNT};
    tether_tpm_t tpm;
    tether_tpm_info_t info;

    (void)state;
    tether_tpm_init(&tpm);
    assert_int_equal(tether_tpm_open_fake(NULL, &config), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_open_fake(&tpm, NULL), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_open_fake(&tpm, &bad_types), TETHER_ERR_INVALID_ARGUMENT);
    /* Not open: the wrappers refuse and the fake's helpers answer nothing. */
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_STATE);
    assert_true(contains(tpm.last_error, "not open"));
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 0);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TPM2_RC_RETRY, 1); /* ignored */
    tether_tpm_close(&tpm); /* initialised, never opened */

    tether_tpm_init(&tpm);
    assert_int_equal(tether_tpm_open_fake(&tpm, &config), TETHER_OK);
    assert_int_equal(tether_tpm_open_fake(&tpm, &config), TETHER_ERR_STATE);
    assert_true(contains(tpm.last_error, "already open"));
    tether_tpm_close(&tpm);
    assert_null(tpm.ops);
    assert_null(tpm.impl);
    tether_tpm_close(&tpm); /* twice is harmless */
    tether_tpm_close(NULL);
}

static void get_info(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_info_t info;

    (void)state;
    open_fake(&tpm, 0, 1);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK);
    assert_string_equal(info.manufacturer, "FAKE");
    assert_string_equal(info.vendor, "tether fake");
    assert_int_equal(info.pcr_bank_count, 1);
    assert_int_equal(info.pcr_banks[0], TPM2_ALG_SHA256);
    assert_int_not_equal(info.firmware_version_1, 0);
    assert_int_not_equal(info.spec_revision, 0);

    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_GET_INFO, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_FAILURE);
    assert_true(contains(tpm.last_error, "TPM2_GetCapability"));
    /* A later success keeps the last failure's message for cleanup paths. */
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK);
    assert_int_equal(tpm.last_rc, TPM2_RC_FAILURE);
    assert_true(contains(tpm.last_error, "TPM2_GetCapability"));
    tether_tpm_close(&tpm);
}

/* --- EKs, certificates, the CA -------------------------------------------- */

static void parse_cert(mbedtls_x509_crt *crt, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt_init(crt);
    assert_int_equal(mbedtls_x509_crt_parse_der(crt, der, len), 0);
}

static void ca_and_ek_certificates(void **state)
{
    tether_tpm_t tpm, same, other;
    const uint8_t *ca = NULL, *ca_same = NULL, *ca_other = NULL;
    size_t ca_len = 0, ca_same_len = 0, ca_other_len = 0, cert_len = 0;
    uint8_t cert[TETHER_TPM_MAX_NV_READ];
    mbedtls_x509_crt ca_crt, ek_crt;
    tether_tpm_handle_t ek = TETHER_TPM_HANDLE_NONE;
    TPM2B_PUBLIC ek_public;
    uint32_t flags = 0;

    (void)state;
    open_fake(&tpm, CERT_P256 | CERT_P384, 5);
    open_fake(&same, 0, 5);
    open_fake(&other, 0, 6);
    assert_int_equal(tether_tpm_fake_ca_cert(&tpm, &ca, &ca_len), TETHER_OK);
    assert_int_equal(tether_tpm_fake_ca_cert(&same, &ca_same, &ca_same_len), TETHER_OK);
    assert_int_equal(tether_tpm_fake_ca_cert(&other, &ca_other, &ca_other_len), TETHER_OK);
    /* The CA is a function of the seed. */
    assert_int_equal(ca_len, ca_same_len);
    assert_memory_equal(ca, ca_same, ca_len);
    assert_false(ca_len == ca_other_len && memcmp(ca, ca_other, ca_len) == 0);

    parse_cert(&ca_crt, ca, ca_len);
    assert_true(ca_crt.ca_istrue);
    assert_int_equal(mbedtls_pk_get_type(&ca_crt.pk), MBEDTLS_PK_ECKEY);
    assert_int_equal(mbedtls_x509_crt_verify(&ca_crt, &ca_crt, NULL, NULL, &flags, NULL, NULL), 0);

    for (tether_ek_type_t type = TETHER_EK_ECC_P256; type <= TETHER_EK_ECC_P384; type++) {
        assert_int_equal(
            tether_tpm_nv_read(&tpm, tether_ek_cert_nv_index(type), cert, sizeof(cert), &cert_len),
            TETHER_OK);
        parse_cert(&ek_crt, cert, cert_len);
        assert_false(ek_crt.ca_istrue);
        flags = 0;
        assert_int_equal(mbedtls_x509_crt_verify(&ek_crt, &ca_crt, NULL, NULL, &flags, NULL, NULL),
                         0);
        assert_int_equal(tether_tpm_create_ek(&tpm, type, &ek, &ek_public), TETHER_OK);
        assert_int_equal(tether_tpm2_public_matches_pk(&ek_public.publicArea, &ek_crt.pk),
                         TETHER_OK);
        assert_int_equal(tether_tpm_flush(&tpm, ek), TETHER_OK);
        mbedtls_x509_crt_free(&ek_crt);
    }
    /* The other fake's CA did not sign these. */
    mbedtls_x509_crt_free(&ca_crt);
    parse_cert(&ca_crt, ca_other, ca_other_len);
    parse_cert(&ek_crt, cert, cert_len);
    assert_int_not_equal(mbedtls_x509_crt_verify(&ek_crt, &ca_crt, NULL, NULL, &flags, NULL, NULL),
                         0);
    mbedtls_x509_crt_free(&ek_crt);
    mbedtls_x509_crt_free(&ca_crt);

    /* No certificate for RSA in this fake. */
    assert_int_equal(tether_tpm_nv_read(&tpm, tether_ek_cert_nv_index(TETHER_EK_RSA2048), cert,
                                        sizeof(cert), &cert_len),
                     TETHER_ERR_NOT_FOUND);
    assert_true(contains(tpm.last_error, "0x01c00002 is not defined"));
    /* A buffer too small for the certificate. */
    assert_int_equal(
        tether_tpm_nv_read(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P256), cert, 16, &cert_len),
        TETHER_ERR_TOO_LARGE);
    assert_int_equal(cert_len, 0);
    assert_int_equal(tether_tpm_fake_ca_cert(NULL, &ca, &ca_len), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_fake_ca_cert(&tpm, NULL, &ca_len), TETHER_ERR_INVALID_ARGUMENT);
    tether_tpm_close(&tpm);
    tether_tpm_close(&same);
    tether_tpm_close(&other);
}

static void ek_public_areas(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_handle_t ek = TETHER_TPM_HANDLE_NONE;
    TPM2B_PUBLIC pub, again;
    mbedtls_pk_context pk;

    (void)state;
    open_fake(&tpm, 0, 9);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &ek, &pub), TETHER_OK);
    assert_int_equal(pub.publicArea.type, TPM2_ALG_ECC);
    assert_int_equal(pub.publicArea.nameAlg, TPM2_ALG_SHA256);
    assert_int_equal(pub.publicArea.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
    assert_true(pub.publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED);
    assert_true(pub.publicArea.objectAttributes & TPMA_OBJECT_DECRYPT);
    assert_int_equal(pub.publicArea.unique.ecc.x.size, 32);
    assert_int_equal(pub.publicArea.unique.ecc.y.size, 32);
    assert_int_not_equal(pub.size, 0);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub.publicArea, &pk), TETHER_OK);
    mbedtls_pk_free(&pk);
    assert_int_equal(tether_tpm_flush(&tpm, ek), TETHER_OK);

    /* The same EK every time (it is a primary key from a fixed seed). */
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &ek, &again), TETHER_OK);
    assert_memory_equal(&pub, &again, sizeof(pub));
    assert_int_equal(tether_tpm_flush(&tpm, ek), TETHER_OK);

    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P384, &ek, &pub), TETHER_OK);
    assert_int_equal(pub.publicArea.nameAlg, TPM2_ALG_SHA384);
    assert_int_equal(pub.publicArea.parameters.eccDetail.curveID, TPM2_ECC_NIST_P384);
    assert_int_equal(pub.publicArea.unique.ecc.x.size, 48);
    assert_true(pub.publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(&pub.publicArea, &pk), TETHER_OK);
    mbedtls_pk_free(&pk);
    assert_int_equal(tether_tpm_flush(&tpm, ek), TETHER_OK);

    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_CREATE_EK, TPM2_RC_HIERARCHY, 1);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &ek, &pub), TETHER_ERR_TPM);
    assert_true(contains(tpm.last_error, "TPM2_CreatePrimary(EK)"));
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 0);
    tether_tpm_close(&tpm);
}

static void set_ek_cert(void **state)
{
    tether_tpm_t tpm;
    uint8_t cert[TETHER_TPM_MAX_NV_READ], big[TETHER_TPM_MAX_NV_READ + 1];
    size_t len = 0;
    const uint8_t junk[] = {1, 2, 3};

    (void)state;
    open_fake(&tpm, 0, 1);
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P384, junk, sizeof(junk)),
                     TETHER_OK);
    assert_int_equal(tether_tpm_nv_read(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P384), cert,
                                        sizeof(cert), &len),
                     TETHER_OK);
    assert_int_equal(len, sizeof(junk));
    assert_memory_equal(cert, junk, sizeof(junk));
    /* Replacing keeps one index. */
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P384, junk, 2), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P384), cert,
                                        sizeof(cert), &len),
                     TETHER_OK);
    assert_int_equal(len, 2);
    /* Larger than tether reads. */
    memset(big, 0x30, sizeof(big));
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, big, sizeof(big)),
                     TETHER_OK);
    assert_int_equal(tether_tpm_nv_read(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P256), cert,
                                        sizeof(cert), &len),
                     TETHER_ERR_TOO_LARGE);

    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_TYPE_COUNT, junk, 3),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, NULL, 3),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P256, junk, 0),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_fake_set_ek_cert(NULL, TETHER_EK_ECC_P256, junk, 3),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_tpm_close(&tpm);
}

/* --- keys ------------------------------------------------------------------- */

static void key_templates(void **state)
{
    fixture_t *fx = *state;
    const TPMT_PUBLIC *ak = ak_public(fx), *dk = &fx->dk_blob.public_area.publicArea;
    const TPMA_OBJECT fixed = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                              TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;
    mbedtls_pk_context pk;

    assert_int_equal(ak->type, TPM2_ALG_ECC);
    assert_int_equal(ak->objectAttributes & fixed, fixed);
    assert_true(ak->objectAttributes & TPMA_OBJECT_RESTRICTED);
    assert_int_equal(dk->objectAttributes & fixed, fixed);
    assert_false(dk->objectAttributes & TPMA_OBJECT_RESTRICTED);
    assert_int_equal(ak->parameters.eccDetail.scheme.scheme, TPM2_ALG_ECDSA);
    assert_int_equal(ak->unique.ecc.x.size, 32);
    assert_int_not_equal(fx->ak_blob.private_blob.size, 0);
    assert_int_not_equal(fx->ak_blob.public_area.size, 0);
    /* Two keys, two different key pairs. */
    assert_memory_not_equal(ak->unique.ecc.x.buffer, dk->unique.ecc.x.buffer, 32);
    mbedtls_pk_init(&pk);
    assert_int_equal(tether_tpm2_public_to_pk(dk, &pk), TETHER_OK);
    mbedtls_pk_free(&pk);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 3);
}

static void create_and_load_errors(void **state)
{
    fixture_t *fx = *state;
    tether_tpm_key_blob_t blob;
    tether_tpm_handle_t key = TETHER_TPM_HANDLE_NONE;

    /* Unknown handles never reach the "TPM". */
    assert_int_equal(tether_tpm_create_key(&fx->tpm, 7, TETHER_KEY_AK, &blob),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_true(contains(fx->tpm.last_error, "unknown TPM object handle 7"));
    assert_int_equal(tether_tpm_load_key(&fx->tpm, 3 + 1, &fx->ak_blob, &key),
                     TETHER_ERR_INVALID_ARGUMENT);
    /* A signing key is no parent. */
    assert_int_equal(tether_tpm_create_key(&fx->tpm, fx->ak, TETHER_KEY_AK, &blob), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_TYPE + TPM2_RC_1);
    assert_true(contains(fx->tpm.last_error, "TPM2_Create(AK)"));
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->dk, &fx->ak_blob, &key), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_TYPE + TPM2_RC_1);

    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_CREATE_KEY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_create_key(&fx->tpm, fx->ek.handle, TETHER_KEY_DEVICE, &blob),
                     TETHER_ERR_TPM);
    assert_true(contains(fx->tpm.last_error, "TPM2_Create(device key)"));
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 3);
}

static void object_memory(void **state)
{
    fixture_t *fx = *state;
    tether_tpm_handle_t key = TETHER_TPM_HANDLE_NONE, ek = TETHER_TPM_HANDLE_NONE;
    TPM2B_PUBLIC pub;

    /* EK, AK and device key fill the three slots, as on a real TPM. */
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 3);
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &fx->ak_blob, &key),
                     TETHER_ERR_STATE);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_OBJECT_MEMORY);
    assert_true(contains(fx->tpm.last_error, "object memory full"));
    assert_int_equal(key, TETHER_TPM_HANDLE_NONE);
    assert_int_equal(tether_tpm_create_ek(&fx->tpm, TETHER_EK_ECC_P256, &ek, &pub),
                     TETHER_ERR_STATE);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 3);

    /* Flushing frees a slot, and the handle is dead afterwards. */
    assert_int_equal(tether_tpm_flush(&fx->tpm, fx->dk), TETHER_OK);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 2);
    assert_int_equal(tether_tpm_flush(&fx->tpm, fx->dk), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_flush(&fx->tpm, 99), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_tpm_flush(&fx->tpm, TETHER_TPM_HANDLE_NONE), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &fx->dk_blob, &fx->dk),
                     TETHER_OK);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 3);

    /* A flush that fails leaves the object loaded. */
    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_ANY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_flush(&fx->tpm, fx->dk), TETHER_ERR_TPM);
    assert_true(contains(fx->tpm.last_error, "TPM2_FlushContext"));
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 3);
}

/* Each changed byte of a key blob, in either part, makes TPM2_Load fail
 * (integrity), and nothing stays loaded. */
static void load_tampered(void **state)
{
    fixture_t *fx = *state;
    tether_tpm_handle_t key = TETHER_TPM_HANDLE_NONE;
    tether_tpm_key_blob_t blob;

    assert_int_equal(tether_tpm_flush(&fx->tpm, fx->dk), TETHER_OK);
    fx->dk = TETHER_TPM_HANDLE_NONE;
    for (size_t i = 0; i < fx->ak_blob.private_blob.size; i++) {
        blob = fx->ak_blob;
        blob.private_blob.buffer[i] ^= 0x01;
        assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &blob, &key), TETHER_ERR_TPM);
        assert_int_equal(fx->tpm.last_rc, TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1);
    }
    assert_true(contains(fx->tpm.last_error, "TPM2_Load"));

    blob = fx->ak_blob;
    blob.public_area.publicArea.objectAttributes &=
        ~TPMA_OBJECT_RESTRICTED; /* "un-restrict" the AK */
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &blob, &key), TETHER_ERR_TPM);
    blob = fx->ak_blob;
    blob.public_area.publicArea.unique.ecc.x.buffer[5] ^= 0x80;
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &blob, &key), TETHER_ERR_TPM);
    /* The public part of the device key with the private part of the AK. */
    blob = fx->ak_blob;
    blob.public_area = fx->dk_blob.public_area;
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &blob, &key), TETHER_ERR_TPM);
    blob = fx->ak_blob;
    blob.private_blob.size--;
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &blob, &key), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_SIZE + TPM2_RC_P + TPM2_RC_1);
    blob.private_blob.size = 0;
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &blob, &key), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 2);

    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_LOAD_KEY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_load_key(&fx->tpm, fx->ek.handle, &fx->dk_blob, &key),
                     TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_fake_loaded_objects(&fx->tpm), 2);
}

/* Blobs are bound to the parent: one made under the P-256 EK does not load
 * under the P-384 EK of the same TPM. */
static void load_under_other_parent(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_handle_t p256, p384, key = TETHER_TPM_HANDLE_NONE;
    tether_tpm_key_blob_t blob;
    TPM2B_PUBLIC pub;

    (void)state;
    open_fake(&tpm, 0, 3);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &p256, &pub), TETHER_OK);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P384, &p384, &pub), TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&tpm, p256, TETHER_KEY_AK, &blob), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&tpm, p384, &blob, &key), TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1);
    assert_int_equal(tether_tpm_load_key(&tpm, p256, &blob, &key), TETHER_OK);
    assert_int_equal(tether_tpm_fake_loaded_objects(&tpm), 3);
    tether_tpm_close(&tpm); /* flushes what is left */
}

/* A fake opened with the same seed is a clone: same EK, and each loads the
 * other's key blobs. Another seed is another TPM: fixedTPM holds. */
/* TPMs of one vendor: different endorsement seeds, one manufacturer CA. */
static void shared_manufacturer(void **state)
{
    tether_tpm_fake_config_t c1 = {.ek_cert_types = 1u << TETHER_EK_ECC_P256, .seed = 11, .manufacturer = 5};
    tether_tpm_fake_config_t c2 = {.ek_cert_types = 1u << TETHER_EK_ECC_P256, .seed = 12, .manufacturer = 5};
    tether_tpm_t t1, t2;
    const uint8_t *ca1, *ca2;
    size_t len1, len2;
    tether_ek_t ek1, ek2;
    mbedtls_x509_crt ca, cert;
    uint32_t flags = 0;

    (void)state;
    tether_tpm_init(&t1);
    tether_tpm_init(&t2);
    assert_int_equal(tether_tpm_open_fake(&t1, &c1), TETHER_OK);
    assert_int_equal(tether_tpm_open_fake(&t2, &c2), TETHER_OK);
    assert_int_equal(tether_tpm_fake_ca_cert(&t1, &ca1, &len1), TETHER_OK);
    assert_int_equal(tether_tpm_fake_ca_cert(&t2, &ca2, &len2), TETHER_OK);
    assert_int_equal(len1, len2);
    assert_memory_equal(ca1, ca2, len1);
    assert_int_equal(tether_ek_open(&t1, TETHER_EK_ECC_P256, &ek1), TETHER_OK);
    assert_int_equal(tether_ek_open(&t2, TETHER_EK_ECC_P256, &ek2), TETHER_OK);
    assert_memory_not_equal(&ek1.public_area, &ek2.public_area, sizeof(ek1.public_area));
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&cert);
    assert_int_equal(mbedtls_x509_crt_parse_der(&ca, ca1, len1), 0);
    assert_int_equal(mbedtls_x509_crt_parse_der(&cert, ek2.cert_der, ek2.cert_len), 0);
    assert_int_equal(mbedtls_x509_crt_verify(&cert, &ca, NULL, NULL, &flags, NULL, NULL), 0);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&cert);
    tether_ek_free(&t1, &ek1);
    tether_ek_free(&t2, &ek2);
    tether_tpm_close(&t1);
    tether_tpm_close(&t2);
}

static void clones(void **state)
{
    tether_tpm_t a, b, other;
    tether_ek_t ek_a, ek_b, ek_other;
    tether_tpm_key_blob_t ak_blob;
    tether_tpm_handle_t ak_a = TETHER_TPM_HANDLE_NONE, ak_b = TETHER_TPM_HANDLE_NONE;
    tether_tpm_handle_t ak_other = TETHER_TPM_HANDLE_NONE;
    tether_tpm_attestation_t quote_b;
    TPML_PCR_SELECTION sel = {.count = 1};
    const uint8_t nonce[32] = {7};

    (void)state;
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[0] = 1;
    open_fake(&a, CERT_P256, 42);
    open_fake(&b, CERT_P256, 42);
    open_fake(&other, CERT_P256, 43);
    assert_int_equal(tether_ek_open(&a, TETHER_EK_ANY, &ek_a), TETHER_OK);
    assert_int_equal(tether_ek_open(&b, TETHER_EK_ANY, &ek_b), TETHER_OK);
    assert_int_equal(tether_ek_open(&other, TETHER_EK_ANY, &ek_other), TETHER_OK);
    assert_memory_equal(&ek_a.public_area, &ek_b.public_area, sizeof(ek_a.public_area));
    assert_int_equal(ek_a.cert_len, ek_b.cert_len);
    assert_memory_equal(ek_a.cert_der, ek_b.cert_der, ek_a.cert_len);
    assert_memory_not_equal(&ek_a.public_area, &ek_other.public_area, sizeof(ek_a.public_area));

    assert_int_equal(tether_tpm_create_key(&a, ek_a.handle, TETHER_KEY_AK, &ak_blob), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&a, ek_a.handle, &ak_blob, &ak_a), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&b, ek_b.handle, &ak_blob, &ak_b), TETHER_OK);
    /* The clone signs as the original AK. */
    assert_int_equal(tether_tpm_quote(&b, ak_b, &sel, nonce, sizeof(nonce), &quote_b), TETHER_OK);
    verify_attestation(&ak_blob.public_area.publicArea, &quote_b);

    assert_int_equal(tether_tpm_load_key(&other, ek_other.handle, &ak_blob, &ak_other),
                     TETHER_ERR_TPM);
    assert_int_equal(other.last_rc, TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1);
    assert_int_equal(tether_tpm_fake_loaded_objects(&other), 1);

    assert_int_equal(tether_tpm_flush(&a, ak_a), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&b, ak_b), TETHER_OK);
    tether_ek_free(&a, &ek_a);
    tether_ek_free(&b, &ek_b);
    tether_ek_free(&other, &ek_other);
    assert_int_equal(tether_tpm_fake_loaded_objects(&a), 0);
    tether_tpm_close(&a);
    tether_tpm_close(&b);
    tether_tpm_close(&other);
}

/* --- certify and sign ----------------------------------------------------- */

static void certify(void **state)
{
    fixture_t *fx = *state;
    const uint8_t qualifying[TETHER_TPM_MAX_QUALIFYING] = {1, 2, 3, 4, [63] = 0xff};
    tether_tpm_attestation_t first, second;
    TPMS_ATTEST attest, attest2;
    TPM2B_NAME dk_name, dk_qn, ek_qn;

    assert_int_equal(
        tether_tpm_certify(&fx->tpm, fx->ak, fx->dk, qualifying, sizeof(qualifying), &first),
        TETHER_OK);
    verify_attestation(ak_public(fx), &first);
    assert_int_equal(tether_attest_parse(first.attest.attestationData, first.attest.size,
                                         TPM2_ST_ATTEST_CERTIFY, &attest),
                     TETHER_OK);
    check_attest_header(fx, &attest, qualifying, sizeof(qualifying));
    assert_int_equal(tether_tpm2_public_name(&fx->dk_blob.public_area.publicArea, &dk_name),
                     TETHER_OK);
    assert_int_equal(attest.attested.certify.name.size, dk_name.size);
    assert_memory_equal(attest.attested.certify.name.name, dk_name.name, dk_name.size);
    assert_int_equal(tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT,
                                                &fx->ek.public_area.publicArea, &ek_qn),
                     TETHER_OK);
    assert_int_equal(
        tether_tpm2_qualified_name(&ek_qn, 0, &fx->dk_blob.public_area.publicArea, &dk_qn),
        TETHER_OK);
    assert_memory_equal(attest.attested.certify.qualifiedName.name, dk_qn.name, dk_qn.size);

    /* No qualifying data; the clock has moved on. */
    assert_int_equal(tether_tpm_certify(&fx->tpm, fx->ak, fx->dk, NULL, 0, &second), TETHER_OK);
    assert_int_equal(tether_attest_parse(second.attest.attestationData, second.attest.size,
                                         TPM2_ST_ATTEST_CERTIFY, &attest2),
                     TETHER_OK);
    assert_int_equal(attest2.extraData.size, 0);
    assert_true(attest2.clockInfo.clock > attest.clockInfo.clock);
    assert_int_equal(attest2.clockInfo.resetCount, attest.clockInfo.resetCount);
    assert_int_equal(attest2.clockInfo.restartCount, attest.clockInfo.restartCount);

    /* The device key is unrestricted and the EK does not sign at all. */
    assert_int_equal(tether_tpm_certify(&fx->tpm, fx->dk, fx->ak, NULL, 0, &second),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_ATTRIBUTES + TPM2_RC_2);
    assert_true(contains(fx->tpm.last_error, "TPM2_Certify"));
    assert_int_equal(tether_tpm_certify(&fx->tpm, fx->ek.handle, fx->dk, NULL, 0, &second),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_KEY + TPM2_RC_2);
    assert_int_equal(tether_tpm_certify(&fx->tpm, fx->ak, 3 + 5, NULL, 0, &second),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_CERTIFY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_certify(&fx->tpm, fx->ak, fx->dk, NULL, 0, &second),
                     TETHER_ERR_TPM);
    /* The AK may certify the EK too. */
    assert_int_equal(tether_tpm_certify(&fx->tpm, fx->ak, fx->ek.handle, NULL, 0, &second),
                     TETHER_OK);
}

static void sign_digest(void **state)
{
    fixture_t *fx = *state;
    uint8_t digest[32], signature[64];
    mbedtls_pk_context pk;
    mbedtls_mpi r, s;

    sha256("hello", 5, digest);
    assert_int_equal(tether_tpm_sign_digest(&fx->tpm, fx->dk, digest, signature), TETHER_OK);
    mbedtls_pk_init(&pk);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(tether_tpm2_public_to_pk(&fx->dk_blob.public_area.publicArea, &pk), TETHER_OK);
    assert_int_equal(mbedtls_mpi_read_binary(&r, signature, 32), 0);
    assert_int_equal(mbedtls_mpi_read_binary(&s, signature + 32, 32), 0);
    assert_int_equal(
        mbedtls_ecdsa_verify(&mbedtls_pk_ec(pk)->grp, digest, 32, &mbedtls_pk_ec(pk)->Q, &r, &s),
        0);
    digest[0] ^= 1;
    assert_int_not_equal(
        mbedtls_ecdsa_verify(&mbedtls_pk_ec(pk)->grp, digest, 32, &mbedtls_pk_ec(pk)->Q, &r, &s),
        0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_pk_free(&pk);

    /* The AK is restricted: no outside digests (it could forge a quote). */
    assert_int_equal(tether_tpm_sign_digest(&fx->tpm, fx->ak, digest, signature), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_TICKET + TPM2_RC_P + TPM2_RC_3);
    assert_true(contains(fx->tpm.last_error, "restricted"));
    assert_int_equal(tether_tpm_sign_digest(&fx->tpm, fx->ek.handle, digest, signature),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_KEY + TPM2_RC_1);
    assert_int_equal(tether_tpm_sign_digest(&fx->tpm, 3 + 1, digest, signature),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_SIGN, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_sign_digest(&fx->tpm, fx->dk, digest, signature), TETHER_ERR_TPM);
    assert_true(contains(fx->tpm.last_error, "TPM2_Sign"));
}

/* --- NV counters ------------------------------------------------------------ */

static void nv_counter(void **state)
{
    tether_tpm_t tpm;
    uint64_t value = 0;

    (void)state;
    open_fake(&tpm, CERT_P256, 1);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_nv_undefine(&tpm, COUNTER), TETHER_ERR_NOT_FOUND);
    assert_true(contains(tpm.last_error, "0x01000010 is not defined"));

    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_ERR_STATE);
    assert_int_equal(tpm.last_rc, TPM2_RC_NV_DEFINED);
    assert_true(contains(tpm.last_error, "already defined"));
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_ERR_STATE);
    assert_true(contains(tpm.last_error, "never been incremented"));
    for (unsigned i = 1; i <= 3; i++) {
        assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
        assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_OK);
        assert_int_equal(value, i);
    }

    /* Deleted and defined again, the counter does not go back (TPM2 Part 1,
     * NV counters): the TPM remembers the highest value. */
    assert_int_equal(tether_tpm_nv_undefine(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_OK);
    assert_true(value > 3);
    /* A second counter starts above the first as well. */
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER_2), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER_2), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER_2, &value), TETHER_OK);
    assert_true(value > 4);

    /* The EK certificate index is no counter, and the owner cannot delete it. */
    assert_int_equal(tether_tpm_nv_increment(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P256)),
                     TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_ATTRIBUTES + TPM2_RC_2);
    assert_int_equal(tpm.ops->nv_undefine(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P256)),
                     TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_NV_AUTHORIZATION);
    /* Reading a counter from an index shorter than 8 bytes. */
    assert_int_equal(
        tether_tpm_fake_set_ek_cert(&tpm, TETHER_EK_ECC_P384, (const uint8_t *)"ab", 2), TETHER_OK);
    assert_int_equal(
        tether_tpm_nv_read_counter(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P384), &value),
        TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_NV_RANGE);

    /* Faults: define, increment, read (NV_READ covers nv_read_counter). */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_DEFINE, TPM2_RC_NV_SPACE, 1);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, 0x01000020), TETHER_ERR_TPM);
    assert_true(contains(tpm.last_error, "TPM2_NV_DefineSpace"));
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_INCREMENT, TPM2_RC_NV_RATE, 1);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_ERR_TPM);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_NV_READ, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_nv_read_counter(&tpm, COUNTER, &value), TETHER_OK);
    assert_int_equal(value, 4); /* the failed increment did nothing */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_nv_undefine(&tpm, COUNTER), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_nv_undefine(&tpm, COUNTER), TETHER_OK);
    tether_tpm_close(&tpm);
}

static void nv_space_full(void **state)
{
    tether_tpm_t tpm;
    TPM2_HANDLE index = 0x01000100;
    tether_status_t rc;

    (void)state;
    open_fake(&tpm, 0, 1);
    while ((rc = tether_tpm_nv_define_counter(&tpm, index)) == TETHER_OK)
        index++;
    assert_int_equal(rc, TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_NV_SPACE);
    assert_true(index > 0x01000100);
    assert_int_equal(tether_tpm_nv_undefine(&tpm, 0x01000100), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, index), TETHER_OK);
    tether_tpm_close(&tpm);
}

/* The name a verifier computes from the public area; TPMA_NV_WRITTEN is part
 * of it, so it changes at the first increment. */
static void nv_read_public(void **state)
{
    tether_tpm_t tpm;
    TPM2B_NV_PUBLIC pub;
    TPM2B_NAME name, first_name;
    uint8_t buf[sizeof(TPMS_NV_PUBLIC)], digest[32];
    size_t offset = 0;

    (void)state;
    open_fake(&tpm, CERT_P256, 1);
    assert_int_equal(tether_tpm_nv_read_public(&tpm, COUNTER, &pub, &name), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_public(&tpm, COUNTER, &pub, &first_name), TETHER_OK);
    assert_int_equal(pub.nvPublic.nvIndex, COUNTER);
    assert_int_equal(pub.nvPublic.dataSize, 8);
    assert_int_equal((pub.nvPublic.attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT,
                     TPM2_NT_COUNTER);
    assert_false(pub.nvPublic.attributes & TPMA_NV_WRITTEN);

    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_public(&tpm, COUNTER, &pub, &name), TETHER_OK);
    assert_true(pub.nvPublic.attributes & TPMA_NV_WRITTEN);
    assert_int_equal(Tss2_MU_TPMS_NV_PUBLIC_Marshal(&pub.nvPublic, buf, sizeof(buf), &offset),
                     TSS2_RC_SUCCESS);
    assert_int_equal(pub.size, offset);
    sha256(buf, offset, digest);
    assert_int_equal(name.size, 34);
    assert_int_equal(name.name[0], 0x00);
    assert_int_equal(name.name[1], 0x0b);
    assert_memory_equal(name.name + 2, digest, 32);
    assert_memory_not_equal(name.name, first_name.name, 34);

    /* The EK certificate index reads too (platform-created, written). */
    assert_int_equal(
        tether_tpm_nv_read_public(&tpm, tether_ek_cert_nv_index(TETHER_EK_ECC_P256), &pub, &name),
        TETHER_OK);
    assert_true(pub.nvPublic.attributes & TPMA_NV_PLATFORMCREATE);
    assert_true(pub.nvPublic.dataSize > 100);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_nv_read_public(&tpm, COUNTER, &pub, &name), TETHER_ERR_TPM);
    tether_tpm_close(&tpm);
}

static void nv_read_counter_area(void **state)
{
    tether_tpm_t tpm;
    uint8_t buf[16];
    size_t len = 99;

    (void)state;
    open_fake(&tpm, 0, 1);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    /* Before its first write an index cannot be read (TPM_RC_NV_UNINITIALIZED). */
    assert_int_equal(tether_tpm_nv_read(&tpm, COUNTER, buf, sizeof(buf), &len), TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_NV_UNINITIALIZED);
    assert_int_equal(len, 0);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read(&tpm, COUNTER, buf, sizeof(buf), &len), TETHER_OK);
    assert_int_equal(len, 8);
    assert_memory_equal(buf, "\0\0\0\0\0\0\0\2", 8);
    tether_tpm_close(&tpm);
}

static void nv_certify(void **state)
{
    fixture_t *fx = *state;
    const uint8_t nonce[32] = {0xaa, 0xbb};
    tether_tpm_attestation_t out;
    TPMS_ATTEST attest;
    TPM2B_NV_PUBLIC pub;
    TPM2B_NAME name;

    assert_int_equal(tether_tpm_nv_define_counter(&fx->tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, fx->ak, COUNTER, nonce, sizeof(nonce), &out),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_NV_UNINITIALIZED);
    for (unsigned i = 0; i < 258; i++)
        assert_int_equal(tether_tpm_nv_increment(&fx->tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, fx->ak, COUNTER, nonce, sizeof(nonce), &out),
                     TETHER_OK);
    verify_attestation(ak_public(fx), &out);
    assert_int_equal(tether_attest_parse(out.attest.attestationData, out.attest.size,
                                         TPM2_ST_ATTEST_NV, &attest),
                     TETHER_OK);
    check_attest_header(fx, &attest, nonce, sizeof(nonce));
    assert_int_equal(tether_tpm_nv_read_public(&fx->tpm, COUNTER, &pub, &name), TETHER_OK);
    assert_int_equal(attest.attested.nv.indexName.size, name.size);
    assert_memory_equal(attest.attested.nv.indexName.name, name.name, name.size);
    assert_int_equal(attest.attested.nv.offset, 0);
    assert_int_equal(attest.attested.nv.nvContents.size, 8);
    assert_memory_equal(attest.attested.nv.nvContents.buffer, "\0\0\0\0\0\0\x01\x02", 8);

    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, fx->dk, COUNTER, NULL, 0, &out),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_ATTRIBUTES + TPM2_RC_1);
    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, fx->ak, COUNTER_2, NULL, 0, &out),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, 3 + 2, COUNTER, NULL, 0, &out),
                     TETHER_ERR_INVALID_ARGUMENT);
    /* An index shorter than a counter's 8 bytes. */
    assert_int_equal(
        tether_tpm_fake_set_ek_cert(&fx->tpm, TETHER_EK_ECC_P384, (const uint8_t *)"abc", 3),
        TETHER_OK);
    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, fx->ak,
                                           tether_ek_cert_nv_index(TETHER_EK_ECC_P384), NULL, 0,
                                           &out),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_NV_RANGE);
    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_NV_CERTIFY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_nv_certify(&fx->tpm, fx->ak, COUNTER, NULL, 0, &out),
                     TETHER_ERR_TPM);
    assert_true(contains(fx->tpm.last_error, "TPM2_NV_Certify"));
    assert_int_equal(tether_tpm_nv_undefine(&fx->tpm, COUNTER), TETHER_OK);
}

/* --- PCRs and quotes ------------------------------------------------------- */

static void extend_sha256(tether_tpm_t *tpm, uint32_t pcr, const char *what)
{
    TPML_DIGEST_VALUES digests = {.count = 1};

    digests.digests[0].hashAlg = TPM2_ALG_SHA256;
    sha256(what, strlen(what), digests.digests[0].digest.sha256);
    assert_int_equal(tether_tpm_pcr_extend(tpm, pcr, &digests), TETHER_OK);
}

static void pcrs(void **state)
{
    tether_tpm_t tpm;
    TPM2B_DIGEST value;
    TPML_DIGEST_VALUES digests = {.count = 2};
    uint8_t zero[32] = {0}, buf[64], expected[32];

    (void)state;
    open_fake(&tpm, 0, 1);
    for (uint32_t pcr = 0; pcr < 24; pcr++) {
        assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, pcr, &value), TETHER_OK);
        assert_int_equal(value.size, 32);
        assert_memory_equal(value.buffer, zero, 32);
    }
    /* extend: new = SHA-256(old || digest) */
    digests.digests[0].hashAlg = TPM2_ALG_SHA1; /* bank not allocated: ignored */
    memset(digests.digests[0].digest.sha1, 0x11, 20);
    digests.digests[1].hashAlg = TPM2_ALG_SHA256;
    memset(digests.digests[1].digest.sha256, 0x22, 32);
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 7, &digests), TETHER_OK);
    memset(buf, 0, 32);
    memset(buf + 32, 0x22, 32);
    sha256(buf, 64, expected);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 7, &value), TETHER_OK);
    assert_memory_equal(value.buffer, expected, 32);
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 7, &digests), TETHER_OK);
    memcpy(buf, expected, 32);
    sha256(buf, 64, expected);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 7, &value), TETHER_OK);
    assert_memory_equal(value.buffer, expected, 32);

    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA1, 7, &value), TETHER_ERR_NOT_FOUND);
    assert_true(contains(tpm.last_error, "not allocated"));
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 24, &value), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 24, &digests), TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_VALUE + TPM2_RC_1);
    /* An unknown algorithm fails the whole command: PCR 7 keeps its value. */
    digests.digests[0].hashAlg = 0x7777;
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 7, &digests), TETHER_ERR_TPM);
    assert_int_equal(tpm.last_rc, TPM2_RC_HASH + TPM2_RC_P + TPM2_RC_1);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 7, &value), TETHER_OK);
    assert_memory_equal(value.buffer, expected, 32);

    /* Past the wrapper's checks, the fake still bounds the list. */
    digests.count = TPM2_NUM_PCR_BANKS + 1;
    assert_int_equal(tpm.ops->pcr_extend(&tpm, 7, &digests), TETHER_ERR_TPM);
    digests.count = 2;
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_PCR_EXTEND, TPM2_RC_FAILURE, 1);
    digests.digests[0].hashAlg = TPM2_ALG_SHA256;
    assert_int_equal(tether_tpm_pcr_extend(&tpm, 7, &digests), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 7, &value), TETHER_OK);
    assert_memory_equal(value.buffer, expected, 32);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_pcr_read(&tpm, TPM2_ALG_SHA256, 7, &value), TETHER_ERR_TPM);
    tether_tpm_close(&tpm);
}

static void quote(void **state)
{
    fixture_t *fx = *state;
    const uint8_t nonce[32] = {1, 2, 3};
    TPML_PCR_SELECTION sel = {.count = 3};
    tether_tpm_attestation_t out;
    TPMS_ATTEST attest;
    TPM2B_DIGEST value;
    uint8_t concat[4 * 32], expected[32];

    extend_sha256(&fx->tpm, 0, "firmware");
    extend_sha256(&fx->tpm, 7, "secure boot");
    extend_sha256(&fx->tpm, 16, "debug");
    extend_sha256(&fx->tpm, 23, "application");
    /* Two SHA-256 selections, in this order, and a SHA-1 one the fake does
     * not have: it is left out of what the TPM reports as quoted. */
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[2] = 0x80; /* 23 */
    sel.pcrSelections[1].hash = TPM2_ALG_SHA1;
    sel.pcrSelections[1].sizeofSelect = 3;
    sel.pcrSelections[1].pcrSelect[0] = 0x01;
    sel.pcrSelections[2].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[2].sizeofSelect = 3;
    sel.pcrSelections[2].pcrSelect[0] = 0x81; /* 0, 7 */
    sel.pcrSelections[2].pcrSelect[2] = 0x01; /* 16 */
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->ak, &sel, nonce, sizeof(nonce), &out),
                     TETHER_OK);
    verify_attestation(ak_public(fx), &out);
    assert_int_equal(tether_attest_parse(out.attest.attestationData, out.attest.size,
                                         TPM2_ST_ATTEST_QUOTE, &attest),
                     TETHER_OK);
    check_attest_header(fx, &attest, nonce, sizeof(nonce));
    assert_int_equal(attest.attested.quote.pcrSelect.count, 2);
    assert_memory_equal(&attest.attested.quote.pcrSelect.pcrSelections[0], &sel.pcrSelections[0],
                        sizeof(TPMS_PCR_SELECTION));
    assert_memory_equal(&attest.attested.quote.pcrSelect.pcrSelections[1], &sel.pcrSelections[2],
                        sizeof(TPMS_PCR_SELECTION));
    const uint32_t order[4] = {23, 0, 7, 16};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(tether_tpm_pcr_read(&fx->tpm, TPM2_ALG_SHA256, order[i], &value),
                         TETHER_OK);
        memcpy(concat + 32 * i, value.buffer, 32);
    }
    sha256(concat, sizeof(concat), expected);
    assert_int_equal(attest.attested.quote.pcrDigest.size, 32);
    assert_memory_equal(attest.attested.quote.pcrDigest.buffer, expected, 32);

    /* A fourth select byte (PCRs 24-31) is accepted and cleared. */
    sel.count = 1;
    sel.pcrSelections[0].sizeofSelect = 4;
    sel.pcrSelections[0].pcrSelect[3] = 0xff;
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->ak, &sel, NULL, 0, &out), TETHER_OK);
    assert_int_equal(tether_attest_parse(out.attest.attestationData, out.attest.size,
                                         TPM2_ST_ATTEST_QUOTE, &attest),
                     TETHER_OK);
    assert_int_equal(attest.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[3], 0);
    assert_int_equal(tether_tpm_pcr_read(&fx->tpm, TPM2_ALG_SHA256, 23, &value), TETHER_OK);
    sha256(value.buffer, 32, expected);
    assert_memory_equal(attest.attested.quote.pcrDigest.buffer, expected, 32);

    sel.count = TPM2_NUM_PCR_BANKS + 1; /* past the wrapper's check */
    assert_int_equal(fx->tpm.ops->quote(&fx->tpm, fx->ak, &sel, NULL, 0, &out), TETHER_ERR_TPM);
    sel.count = 1;
    sel.pcrSelections[0].sizeofSelect = 2;
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->ak, &sel, NULL, 0, &out), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_3);
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].hash = 0x7777;
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->ak, &sel, NULL, 0, &out), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_HASH + TPM2_RC_P + TPM2_RC_3);
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->dk, &sel, NULL, 0, &out), TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_ATTRIBUTES + TPM2_RC_1);
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->ek.handle, &sel, NULL, 0, &out),
                     TETHER_ERR_TPM);
    assert_int_equal(fx->tpm.last_rc, TPM2_RC_KEY + TPM2_RC_1);
    assert_int_equal(tether_tpm_quote(&fx->tpm, 3 + 1, &sel, NULL, 0, &out),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_tpm_fake_inject(&fx->tpm, TETHER_FAKE_OP_QUOTE, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_quote(&fx->tpm, fx->ak, &sel, NULL, 0, &out), TETHER_ERR_TPM);
    assert_true(contains(fx->tpm.last_error, "TPM2_Quote"));
}

/* --- ActivateCredential ------------------------------------------------------ */

/* MakeCredential by the verifier (lib), ActivateCredential by the fake. */
static void activate_with(tether_tpm_t *tpm, tether_tpm_handle_t ek, const TPM2B_PUBLIC *ek_public,
                          tether_tpm_handle_t ak, const TPMT_PUBLIC *ak_pub,
                          const TPMT_PUBLIC *other_pub)
{
    uint8_t secret[32];
    TPM2B_NAME ak_name, other_name;
    TPM2B_ID_OBJECT blob, changed;
    TPM2B_ENCRYPTED_SECRET enc, changed_enc;
    TPM2B_DIGEST out;

    for (unsigned i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(tether_tpm2_public_name(ak_pub, &ak_name), TETHER_OK);
    assert_int_equal(tether_tpm2_public_name(other_pub, &other_name), TETHER_OK);
    assert_int_equal(
        tether_credential_make(ek_public, &ak_name, secret, sizeof(secret), &blob, &enc),
        TETHER_OK);
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &blob, &enc, &out), TETHER_OK);
    assert_int_equal(out.size, sizeof(secret));
    assert_memory_equal(out.buffer, secret, sizeof(secret));

    /* Bound to the AK's name: the same credential fails for another key. */
    assert_int_equal(
        tether_credential_make(ek_public, &other_name, secret, sizeof(secret), &blob, &enc),
        TETHER_OK);
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &blob, &enc, &out),
                     TETHER_ERR_TPM);
    assert_true(contains(tpm->last_error, "TPM2_ActivateCredential"));
    assert_int_equal(out.size, 0);

    /* Any changed byte of the blob fails. */
    assert_int_equal(
        tether_credential_make(ek_public, &ak_name, secret, sizeof(secret), &blob, &enc),
        TETHER_OK);
    for (unsigned i = 0; i < blob.size; i += 7) {
        changed = blob;
        changed.credential[i] ^= 0x04;
        assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &changed, &enc, &out),
                         TETHER_ERR_TPM);
    }
    changed_enc = enc;
    changed_enc.secret[changed_enc.size / 2] ^= 0x10;
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &blob, &changed_enc, &out),
                     TETHER_ERR_TPM);
    changed_enc.size = 0;
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &blob, &changed_enc, &out),
                     TETHER_ERR_TPM);
    /* The EK handle must be the EK. */
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ak, &blob, &enc, &out),
                     TETHER_ERR_TPM);
    assert_int_equal(tpm->last_rc, TPM2_RC_TYPE + TPM2_RC_2);
    tether_tpm_fake_inject(tpm, TETHER_FAKE_OP_ACTIVATE, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &blob, &enc, &out),
                     TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_activate_credential(tpm, ak, ek, &blob, &enc, &out), TETHER_OK);
    assert_memory_equal(out.buffer, secret, sizeof(secret));
}

static void activate_credential_p256(void **state)
{
    fixture_t *fx = *state;
    tether_tpm_t other;
    tether_tpm_handle_t other_ek = TETHER_TPM_HANDLE_NONE;
    TPM2B_PUBLIC other_public;
    TPM2B_NAME ak_name;
    TPM2B_ID_OBJECT blob = {0};
    TPM2B_ENCRYPTED_SECRET enc = {0};
    TPM2B_DIGEST out;
    const uint8_t secret[16] = {9, 9, 9};

    activate_with(&fx->tpm, fx->ek.handle, &fx->ek.public_area, fx->ak, ak_public(fx),
                  &fx->dk_blob.public_area.publicArea);
    assert_int_equal(
        tether_tpm_activate_credential(&fx->tpm, 3 + 1, fx->ek.handle, &blob, &enc, &out),
        TETHER_ERR_INVALID_ARGUMENT);

    /* Encrypted to another TPM's EK: this one cannot open it. */
    open_fake(&other, 0, 2);
    assert_int_equal(tether_tpm_create_ek(&other, TETHER_EK_ECC_P256, &other_ek, &other_public),
                     TETHER_OK);
    assert_int_equal(tether_tpm2_public_name(ak_public(fx), &ak_name), TETHER_OK);
    assert_int_equal(
        tether_credential_make(&other_public, &ak_name, secret, sizeof(secret), &blob, &enc),
        TETHER_OK);
    assert_int_equal(
        tether_tpm_activate_credential(&fx->tpm, fx->ak, fx->ek.handle, &blob, &enc, &out),
        TETHER_ERR_TPM);
    tether_tpm_close(&other);
}

static void activate_credential_p384_and_rsa(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_handle_t ek = TETHER_TPM_HANDLE_NONE, ak = TETHER_TPM_HANDLE_NONE;
    tether_tpm_key_blob_t ak_blob, dk_blob;
    TPM2B_PUBLIC ek_public;

    (void)state;
    open_fake(&tpm, 0, 11);
    for (tether_ek_type_t type = TETHER_EK_ECC_P384; type <= TETHER_EK_RSA2048; type++) {
        assert_int_equal(tether_tpm_create_ek(&tpm, type, &ek, &ek_public), TETHER_OK);
        assert_int_equal(tether_tpm_create_key(&tpm, ek, TETHER_KEY_AK, &ak_blob), TETHER_OK);
        assert_int_equal(tether_tpm_create_key(&tpm, ek, TETHER_KEY_DEVICE, &dk_blob), TETHER_OK);
        assert_int_equal(tether_tpm_load_key(&tpm, ek, &ak_blob, &ak), TETHER_OK);
        activate_with(&tpm, ek, &ek_public, ak, &ak_blob.public_area.publicArea,
                      &dk_blob.public_area.publicArea);
        assert_int_equal(tether_tpm_flush(&tpm, ak), TETHER_OK);
        assert_int_equal(tether_tpm_flush(&tpm, ek), TETHER_OK);
    }
    assert_int_equal(ek_public.publicArea.type, TPM2_ALG_RSA);
    assert_int_equal(ek_public.publicArea.unique.rsa.size, 256);
    tether_tpm_close(&tpm);
}

/* --- fault injection ----------------------------------------------------------- */

static void inject_counts(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_info_t info;

    (void)state;
    open_fake(&tpm, 0, 1);
    /* A fault for one op leaves the others alone. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_SIGN, TPM2_RC_FAILURE, 2);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK);
    /* ANY hits every op, one call each. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_ANY, TPM2_RC_FAILURE, 2);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_nv_define_counter(&tpm, COUNTER), TETHER_OK);
    /* count 0 cancels. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_GET_INFO, TPM2_RC_FAILURE, 5);
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_GET_INFO, TPM2_RC_FAILURE, 0);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK);
    /* Out-of-range ops are ignored. */
    tether_tpm_fake_inject(&tpm, (tether_tpm_fake_op_t)99, TPM2_RC_FAILURE, 1);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_OK);
    /* The message names the command and decodes the code. */
    tether_tpm_fake_inject(&tpm, TETHER_FAKE_OP_GET_INFO, TPM2_RC_LOCKOUT, 1);
    assert_int_equal(tether_tpm_get_info(&tpm, &info), TETHER_ERR_TPM_LOCKOUT);
    assert_true(contains(tpm.last_error, "TPM2_GetCapability: injected fault"));
    assert_true(contains(tpm.last_error, "0x921"));
    tether_tpm_close(&tpm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_arguments),
        cmocka_unit_test(get_info),
        cmocka_unit_test(ca_and_ek_certificates),
        cmocka_unit_test(ek_public_areas),
        cmocka_unit_test(set_ek_cert),
        cmocka_unit_test_setup_teardown(key_templates, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(create_and_load_errors, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(object_memory, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(load_tampered, fixture_setup, fixture_teardown),
        cmocka_unit_test(load_under_other_parent),
        cmocka_unit_test(clones),
        cmocka_unit_test(shared_manufacturer),
        cmocka_unit_test_setup_teardown(certify, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(sign_digest, fixture_setup, fixture_teardown),
        cmocka_unit_test(nv_counter),
        cmocka_unit_test(nv_space_full),
        cmocka_unit_test(nv_read_public),
        cmocka_unit_test(nv_read_counter_area),
        cmocka_unit_test_setup_teardown(nv_certify, fixture_setup, fixture_teardown),
        cmocka_unit_test(pcrs),
        cmocka_unit_test_setup_teardown(quote, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(activate_credential_p256, fixture_setup, fixture_teardown),
        cmocka_unit_test(activate_credential_p384_and_rsa),
        cmocka_unit_test(inject_counts),
    };
    return cmocka_run_group_tests_name("tpm_fake", tests, NULL, NULL);
}
