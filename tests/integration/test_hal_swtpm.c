/*
 * Every hal operation against a real swtpm (started by run_with_swtpm.sh,
 * found through TETHER_TEST_TCTI). Where a result can be checked without
 * trusting hal, the test does so: signatures are verified in software, and a
 * second, independent ESAPI context counts the TPM's loaded objects and
 * computes MakeCredential on the TPM itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "tether/attest.h"
#include "tether/mbedtls_bridge.h"
#include "tether/bytes.h"
#include "tether/tpm.h"
#include "tether/tpm2_public.h"

#define COUNTER_INDEX 0x01000100u
/* TPM2_TRANSIENT_FIRST and TPM2_LOADED_SESSION_FIRST as unsigned constants:
 * the tss2 macros shift a signed int into the sign bit. */
#define TRANSIENT_FIRST 0x80000000u
#define LOADED_SESSION_FIRST 0x02000000u

static const char *tcti;

/* --- independent view of the TPM ------------------------------------------ */

typedef struct raw_tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
} raw_tpm_t;

static void raw_open(raw_tpm_t *raw)
{
    assert_int_equal(Tss2_TctiLdr_Initialize(tcti, &raw->tcti), TSS2_RC_SUCCESS);
    assert_int_equal(Esys_Initialize(&raw->esys, raw->tcti, NULL), TSS2_RC_SUCCESS);
}

static void raw_close(raw_tpm_t *raw)
{
    Esys_Finalize(&raw->esys);
    Tss2_TctiLdr_Finalize(&raw->tcti);
}

/* Handles of a kind (transient objects, loaded sessions) the TPM holds. */
static uint32_t tpm_handle_count(TPM2_HANDLE first)
{
    raw_tpm_t raw;
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    uint32_t count;

    raw_open(&raw);
    assert_int_equal(Esys_GetCapability(raw.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES, &more, &cap),
                     TSS2_RC_SUCCESS);
    count = cap->data.handles.count;
    Esys_Free(cap);
    raw_close(&raw);
    return count;
}

static void assert_no_tpm_leak(void)
{
    assert_int_equal(tpm_handle_count(TRANSIENT_FIRST), 0);
    assert_int_equal(tpm_handle_count(LOADED_SESSION_FIRST), 0);
}

/* TPM2_MakeCredential computed by the TPM itself over a loaded EK public. */
static void tpm_make_credential(const TPM2B_PUBLIC *ek_public, const TPM2B_NAME *name,
                                const TPM2B_DIGEST *secret, TPM2B_ID_OBJECT *blob,
                                TPM2B_ENCRYPTED_SECRET *encrypted)
{
    raw_tpm_t raw;
    ESYS_TR ek;
    TPM2B_ID_OBJECT *out_blob = NULL;
    TPM2B_ENCRYPTED_SECRET *out_secret = NULL;

    raw_open(&raw);
    assert_int_equal(Esys_LoadExternal(raw.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                       ek_public, ESYS_TR_RH_NULL, &ek),
                     TSS2_RC_SUCCESS);
    assert_int_equal(Esys_MakeCredential(raw.esys, ek, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                         secret, name, &out_blob, &out_secret),
                     TSS2_RC_SUCCESS);
    *blob = *out_blob;
    *encrypted = *out_secret;
    Esys_Free(out_blob);
    Esys_Free(out_secret);
    Esys_FlushContext(raw.esys, ek);
    raw_close(&raw);
}

/* --- fixtures --------------------------------------------------------------- */

typedef struct fixture {
    tether_tpm_t tpm;
    tether_ek_t ek;
    tether_tpm_key_blob_t ak_blob;
    tether_tpm_handle_t ak;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    tether_tpm_init(&f->tpm);
    if (tether_tpm_open_esapi(&f->tpm, tcti) != TETHER_OK) {
        fprintf(stderr, "cannot open %s: %s\n", tcti, f->tpm.last_error);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* setup plus the selected EK and a loaded AK. */
static int setup_ak(void **state)
{
    fixture_t *f;

    if (setup(state) != 0)
        return -1;
    f = *state;
    if (tether_ek_open(&f->tpm, TETHER_EK_ANY, &f->ek) != TETHER_OK ||
        tether_tpm_create_key(&f->tpm, f->ek.handle, TETHER_KEY_AK, &f->ak_blob) != TETHER_OK ||
        tether_tpm_load_key(&f->tpm, f->ek.handle, &f->ak_blob, &f->ak) != TETHER_OK) {
        fprintf(stderr, "AK setup failed: %s\n", f->tpm.last_error);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    if (f->ak != TETHER_TPM_HANDLE_NONE)
        (void)tether_tpm_flush(&f->tpm, f->ak);
    tether_ek_free(&f->tpm, &f->ek);
    tether_tpm_close(&f->tpm);
    free(f);
    return 0;
}

/* The AK's qualified name: endorsement hierarchy, EK, AK. */
static void ak_qualified_name(const fixture_t *f, TPM2B_NAME *qn)
{
    TPM2B_NAME ek_qn;

    assert_int_equal(tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT,
                                                 &f->ek.public_area.publicArea, &ek_qn),
                     TETHER_OK);
    assert_int_equal(tether_tpm2_qualified_name(&ek_qn, 0, &f->ak_blob.public_area.publicArea, qn),
                     TETHER_OK);
}

/* Verifies signature and type, returns the parsed attestation. */
static void check_attestation(const fixture_t *f, const tether_tpm_attestation_t *a,
                              TPMI_ST_ATTEST type, const uint8_t *qualifying, size_t qlen,
                              TPMS_ATTEST *out)
{
    TPM2B_NAME qn;

    assert_int_equal(tether_tpm2_verify_signature(&f->ak_blob.public_area.publicArea,
                                                  a->attest.attestationData, a->attest.size,
                                                  &a->signature),
                     TETHER_OK);
    assert_int_equal(tether_attest_parse(a->attest.attestationData, a->attest.size, type, out),
                     TETHER_OK);
    assert_int_equal(out->extraData.size, qlen);
    assert_memory_equal(out->extraData.buffer, qualifying, qlen);
    ak_qualified_name(f, &qn);
    assert_int_equal(out->qualifiedSigner.size, qn.size);
    assert_memory_equal(out->qualifiedSigner.name, qn.name, qn.size);
    assert_int_equal(out->clockInfo.safe, TPM2_YES);
}

/* --- tests ------------------------------------------------------------------ */

static void info_reports_swtpm(void **state)
{
    fixture_t *f = *state;
    tether_tpm_info_t info;
    int has_sha256 = 0;

    assert_int_equal(tether_tpm_get_info(&f->tpm, &info), TETHER_OK);
    assert_string_equal(info.manufacturer, "IBM");
    assert_true(info.spec_revision >= 116);
    assert_true(info.pcr_bank_count >= 1);
    for (size_t i = 0; i < info.pcr_bank_count; i++)
        has_sha256 |= info.pcr_banks[i] == TPM2_ALG_SHA256;
    assert_true(has_sha256);
}

static void connect_failure_is_clear(void **state)
{
    tether_tpm_t tpm;

    (void)state;
    tether_tpm_init(&tpm);
    /* Port 1 on loopback: nothing listens there. */
    assert_int_equal(tether_tpm_open_esapi(&tpm, "swtpm:host=127.0.0.1,port=1"),
                     TETHER_ERR_TPM_CONNECT);
    assert_non_null(strstr(tpm.last_error, "swtpm:host=127.0.0.1,port=1"));
    tether_tpm_close(&tpm);
}

static void ek_selection(void **state)
{
    fixture_t *f = *state;
    tether_ek_t ek;

    /* swtpm 0.7 certifies an RSA-2048 and an ECC P-384 EK, no P-256 one. */
    assert_int_equal(tether_ek_open(&f->tpm, TETHER_EK_ANY, &ek), TETHER_OK);
    assert_int_equal(ek.type, TETHER_EK_ECC_P384);
    assert_int_equal(ek.public_area.publicArea.parameters.eccDetail.curveID, TPM2_ECC_NIST_P384);
    assert_int_equal(tether_tpm2_public_matches_cert(&ek.public_area.publicArea, ek.cert_der,
                                                     ek.cert_len),
                     TETHER_OK);
    tether_ek_free(&f->tpm, &ek);

    assert_int_equal(tether_ek_open(&f->tpm, TETHER_EK_RSA2048, &ek), TETHER_OK);
    assert_int_equal(ek.type, TETHER_EK_RSA2048);
    assert_int_equal(ek.public_area.publicArea.unique.rsa.size, 256);
    tether_ek_free(&f->tpm, &ek);

    assert_int_equal(tether_ek_open(&f->tpm, TETHER_EK_ECC_P256, &ek), TETHER_ERR_NO_EK_CERT);
    assert_non_null(strstr(f->tpm.last_error, "P-256"));
    assert_int_equal(ek.handle, TETHER_TPM_HANDLE_NONE);
    assert_no_tpm_leak();
}

static void ek_is_deterministic_and_primary_matches_cert(void **state)
{
    fixture_t *f = *state;
    tether_tpm_handle_t h1, h2;
    TPM2B_PUBLIC p1, p2;

    /* P-256 has no certificate on swtpm, but its EK can still be created. */
    assert_int_equal(tether_tpm_create_ek(&f->tpm, TETHER_EK_ECC_P256, &h1, &p1), TETHER_OK);
    assert_int_equal(tether_tpm_create_ek(&f->tpm, TETHER_EK_ECC_P256, &h2, &p2), TETHER_OK);
    assert_int_equal(p1.publicArea.unique.ecc.x.size, 32);
    assert_memory_equal(&p1.publicArea.unique.ecc, &p2.publicArea.unique.ecc,
                        sizeof(p1.publicArea.unique.ecc));
    assert_int_equal(tether_tpm_flush(&f->tpm, h1), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&f->tpm, h2), TETHER_OK);
    /* A flushed handle is refused, not passed on to the TPM. */
    assert_int_equal(tether_tpm_flush(&f->tpm, h1), TETHER_ERR_INVALID_ARGUMENT);
    assert_no_tpm_leak();
}

static void ak_attributes_and_reload(void **state)
{
    fixture_t *f = *state;
    const TPMT_PUBLIC *ak = &f->ak_blob.public_area.publicArea;
    uint8_t buf[2048];
    size_t len;
    tether_tpm_key_blob_t parsed;
    tether_tpm_handle_t again;
    tether_tpm_attestation_t quote;
    TPMS_ATTEST attest;
    TPML_PCR_SELECTION pcrs = {.count = 1};
    const uint8_t nonce[16] = "reloaded-ak-0001";

    assert_int_equal(ak->type, TPM2_ALG_ECC);
    assert_int_equal(ak->parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
    assert_true(ak->objectAttributes & TPMA_OBJECT_RESTRICTED);
    assert_true(ak->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT);
    assert_true(ak->objectAttributes & TPMA_OBJECT_FIXEDTPM);
    assert_true(ak->objectAttributes & TPMA_OBJECT_FIXEDPARENT);
    assert_true(ak->objectAttributes & TPMA_OBJECT_SENSITIVEDATAORIGIN);
    assert_false(ak->objectAttributes & TPMA_OBJECT_DECRYPT);

    /* Save as the state directory would, reopen the TPM, reload, quote. */
    assert_int_equal(tether_tpm_key_blob_marshal(&f->ak_blob, buf, sizeof(buf), &len), TETHER_OK);
    assert_int_equal(tether_tpm_flush(&f->tpm, f->ak), TETHER_OK);
    f->ak = TETHER_TPM_HANDLE_NONE;
    tether_ek_free(&f->tpm, &f->ek);
    tether_tpm_close(&f->tpm);
    tether_tpm_init(&f->tpm);
    assert_int_equal(tether_tpm_open_esapi(&f->tpm, tcti), TETHER_OK);
    assert_int_equal(tether_ek_open(&f->tpm, TETHER_EK_ANY, &f->ek), TETHER_OK);
    assert_int_equal(tether_tpm_key_blob_unmarshal(buf, len, &parsed), TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&f->tpm, f->ek.handle, &parsed, &again), TETHER_OK);
    f->ak = again;
    pcrs.pcrSelections[0].hash = TPM2_ALG_SHA256;
    pcrs.pcrSelections[0].sizeofSelect = 3;
    pcrs.pcrSelections[0].pcrSelect[0] = 0x01;
    assert_int_equal(tether_tpm_quote(&f->tpm, f->ak, &pcrs, nonce, sizeof(nonce), &quote),
                     TETHER_OK);
    check_attestation(f, &quote, TPM2_ST_ATTEST_QUOTE, nonce, sizeof(nonce), &attest);

    /* A tampered private blob is refused by the TPM with a decoded error. */
    parsed.private_blob.buffer[parsed.private_blob.size / 2] ^= 0x01;
    assert_int_equal(tether_tpm_load_key(&f->tpm, f->ek.handle, &parsed, &again), TETHER_ERR_TPM);
    assert_non_null(strstr(f->tpm.last_error, "TPM2_Load"));
    assert_non_null(strstr(f->tpm.last_error, "tpm:"));
}

static void device_key_certify_and_sign(void **state)
{
    fixture_t *f = *state;
    tether_tpm_key_blob_t dev_blob;
    tether_tpm_handle_t dev;
    tether_tpm_attestation_t cert;
    TPMS_ATTEST attest;
    TPM2B_NAME dev_name;
    const uint8_t qualifying[32] = "certify-device-key-qualifying-00";
    uint8_t digest[32], sig[64];
    mbedtls_pk_context pk;
    mbedtls_mpi r, s;

    assert_int_equal(tether_tpm_create_key(&f->tpm, f->ek.handle, TETHER_KEY_DEVICE, &dev_blob),
                     TETHER_OK);
    assert_false(dev_blob.public_area.publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED);
    assert_int_equal(tether_tpm_load_key(&f->tpm, f->ek.handle, &dev_blob, &dev), TETHER_OK);

    assert_int_equal(tether_tpm_certify(&f->tpm, f->ak, dev, qualifying, sizeof(qualifying), &cert),
                     TETHER_OK);
    check_attestation(f, &cert, TPM2_ST_ATTEST_CERTIFY, qualifying, sizeof(qualifying), &attest);
    assert_int_equal(tether_tpm2_public_name(&dev_blob.public_area.publicArea, &dev_name),
                     TETHER_OK);
    assert_int_equal(attest.attested.certify.name.size, dev_name.size);
    assert_memory_equal(attest.attested.certify.name.name, dev_name.name, dev_name.size);

    /* Raw r||s over a digest, verified with the device key's public part. */
    mbedtls_sha256_ret((const unsigned char *)"message to sign", 15, digest, 0);
    assert_int_equal(tether_tpm_sign_digest(&f->tpm, dev, digest, sig), TETHER_OK);
    mbedtls_pk_init(&pk);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(tether_tpm2_public_to_pk(&dev_blob.public_area.publicArea, &pk), TETHER_OK);
    assert_int_equal(mbedtls_mpi_read_binary(&r, sig, 32), 0);
    assert_int_equal(mbedtls_mpi_read_binary(&s, sig + 32, 32), 0);
    assert_int_equal(mbedtls_ecdsa_verify(&mbedtls_pk_ec(pk)->grp, digest, 32,
                                          &mbedtls_pk_ec(pk)->Q, &r, &s),
                     0);
    digest[0] ^= 1;
    assert_int_not_equal(mbedtls_ecdsa_verify(&mbedtls_pk_ec(pk)->grp, digest, 32,
                                              &mbedtls_pk_ec(pk)->Q, &r, &s),
                         0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_pk_free(&pk);

    /* The restricted AK refuses to sign an outside digest. */
    assert_int_equal(tether_tpm_sign_digest(&f->tpm, f->ak, digest, sig), TETHER_ERR_TPM);
    assert_int_equal(tether_tpm_flush(&f->tpm, dev), TETHER_OK);
}

static void counter_lifecycle_and_certify(void **state)
{
    fixture_t *f = *state;
    TPM2B_NV_PUBLIC pub;
    TPM2B_NAME name;
    uint64_t v1, v2, v3;
    tether_tpm_attestation_t cert;
    TPMS_ATTEST attest;
    const uint8_t qualifying[32] = "nv-certify-qualifying-data-00000";
    uint8_t expected_be[8];

    assert_int_equal(tether_tpm_nv_increment(&f->tpm, COUNTER_INDEX), TETHER_ERR_NOT_FOUND);
    assert_non_null(strstr(f->tpm.last_error, "not defined"));
    assert_int_equal(tether_tpm_nv_define_counter(&f->tpm, COUNTER_INDEX), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&f->tpm, COUNTER_INDEX), TETHER_ERR_STATE);
    assert_int_equal(tether_tpm_nv_read_counter(&f->tpm, COUNTER_INDEX, &v1), TETHER_ERR_STATE);
    assert_non_null(strstr(f->tpm.last_error, "never been incremented"));

    assert_int_equal(tether_tpm_nv_increment(&f->tpm, COUNTER_INDEX), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&f->tpm, COUNTER_INDEX, &v1), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&f->tpm, COUNTER_INDEX), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&f->tpm, COUNTER_INDEX, &v2), TETHER_OK);
    assert_int_equal(v2, v1 + 1);

    assert_int_equal(tether_tpm_nv_read_public(&f->tpm, COUNTER_INDEX, &pub, &name), TETHER_OK);
    assert_int_equal(pub.nvPublic.nvIndex, COUNTER_INDEX);
    assert_int_equal((pub.nvPublic.attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT,
                     TPM2_NT_COUNTER);
    assert_true(pub.nvPublic.attributes & TPMA_NV_WRITTEN);

    assert_int_equal(tether_tpm_nv_certify(&f->tpm, f->ak, COUNTER_INDEX, qualifying,
                                           sizeof(qualifying), &cert),
                     TETHER_OK);
    check_attestation(f, &cert, TPM2_ST_ATTEST_NV, qualifying, sizeof(qualifying), &attest);
    assert_int_equal(attest.attested.nv.indexName.size, name.size);
    assert_memory_equal(attest.attested.nv.indexName.name, name.name, name.size);
    assert_int_equal(attest.attested.nv.offset, 0);
    assert_int_equal(attest.attested.nv.nvContents.size, 8);
    for (unsigned i = 0; i < 8; i++)
        expected_be[i] = (uint8_t)(v2 >> (56 - 8 * i));
    assert_memory_equal(attest.attested.nv.nvContents.buffer, expected_be, 8);

    /* Deleting and re-creating the index never takes the counter back. */
    assert_int_equal(tether_tpm_nv_undefine(&f->tpm, COUNTER_INDEX), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&f->tpm, COUNTER_INDEX, &v3), TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_tpm_nv_define_counter(&f->tpm, COUNTER_INDEX), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&f->tpm, COUNTER_INDEX), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&f->tpm, COUNTER_INDEX, &v3), TETHER_OK);
    assert_true(v3 > v2);
    assert_int_equal(tether_tpm_nv_undefine(&f->tpm, COUNTER_INDEX), TETHER_OK);
}

static void quote_covers_pcr_values(void **state)
{
    fixture_t *f = *state;
    TPML_PCR_SELECTION pcrs = {.count = 1};
    tether_tpm_attestation_t quote;
    TPMS_ATTEST attest;
    TPM2B_DIGEST value;
    mbedtls_sha256_context sha;
    uint8_t expected[32];
    const uint8_t nonce[32] = "quote-nonce-0123456789abcdef0123";

    pcrs.pcrSelections[0].hash = TPM2_ALG_SHA256;
    pcrs.pcrSelections[0].sizeofSelect = 3;
    pcrs.pcrSelections[0].pcrSelect[0] = 0xff; /* PCRs 0-7 */
    pcrs.pcrSelections[0].pcrSelect[2] = 0x01; /* PCR 16 */
    assert_int_equal(tether_tpm_quote(&f->tpm, f->ak, &pcrs, nonce, sizeof(nonce), &quote),
                     TETHER_OK);
    check_attestation(f, &quote, TPM2_ST_ATTEST_QUOTE, nonce, sizeof(nonce), &attest);

    /* pcrDigest = SHA-256 over the selected PCR values, in order. */
    mbedtls_sha256_init(&sha);
    mbedtls_sha256_starts_ret(&sha, 0);
    for (uint32_t pcr = 0; pcr < 24; pcr++) {
        if (!(pcrs.pcrSelections[0].pcrSelect[pcr / 8] & (1u << (pcr % 8))))
            continue;
        assert_int_equal(tether_tpm_pcr_read(&f->tpm, TPM2_ALG_SHA256, pcr, &value), TETHER_OK);
        mbedtls_sha256_update_ret(&sha, value.buffer, value.size);
    }
    mbedtls_sha256_finish_ret(&sha, expected);
    mbedtls_sha256_free(&sha);
    assert_int_equal(attest.attested.quote.pcrDigest.size, 32);
    assert_memory_equal(attest.attested.quote.pcrDigest.buffer, expected, 32);

    /* Tampering with one byte of the quote breaks the signature. */
    quote.attest.attestationData[quote.attest.size - 1] ^= 1;
    assert_int_equal(tether_tpm2_verify_signature(&f->ak_blob.public_area.publicArea,
                                                  quote.attest.attestationData, quote.attest.size,
                                                  &quote.signature),
                     TETHER_ERR_VERIFY);
}

static void pcr_extend_is_hash_chain(void **state)
{
    fixture_t *f = *state;
    TPM2B_DIGEST before, after;
    TPML_DIGEST_VALUES digests = {.count = 1};
    uint8_t chain[64], expected[32];

    assert_int_equal(tether_tpm_pcr_read(&f->tpm, TPM2_ALG_SHA256, 16, &before), TETHER_OK);
    digests.digests[0].hashAlg = TPM2_ALG_SHA256;
    mbedtls_sha256_ret((const unsigned char *)"measured component", 18,
                   digests.digests[0].digest.sha256, 0);
    assert_int_equal(tether_tpm_pcr_extend(&f->tpm, 16, &digests), TETHER_OK);
    assert_int_equal(tether_tpm_pcr_read(&f->tpm, TPM2_ALG_SHA256, 16, &after), TETHER_OK);
    memcpy(chain, before.buffer, 32);
    memcpy(chain + 32, digests.digests[0].digest.sha256, 32);
    mbedtls_sha256_ret(chain, sizeof(chain), expected, 0);
    assert_memory_equal(after.buffer, expected, 32);
    /* A bank the TPM does not have is reported, not invented. */
    assert_int_equal(tether_tpm_pcr_read(&f->tpm, TPM2_ALG_SHA1, 16, &after), TETHER_ERR_NOT_FOUND);
}

static void activate_with_ek(fixture_t *f)
{
    TPM2B_NAME ak_name;
    TPM2B_DIGEST secret = {.size = 32}, recovered;
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET encrypted;

    memcpy(secret.buffer, "activation-secret-0123456789abcd", 32);
    assert_int_equal(tether_tpm2_public_name(&f->ak_blob.public_area.publicArea, &ak_name),
                     TETHER_OK);
    tpm_make_credential(&f->ek.public_area, &ak_name, &secret, &blob, &encrypted);
    assert_int_equal(tether_tpm_activate_credential(&f->tpm, f->ak, f->ek.handle, &blob, &encrypted,
                                                    &recovered),
                     TETHER_OK);
    assert_int_equal(recovered.size, 32);
    assert_memory_equal(recovered.buffer, secret.buffer, 32);

    /* A credential bound to another name does not activate. */
    ak_name.name[ak_name.size - 1] ^= 1;
    tpm_make_credential(&f->ek.public_area, &ak_name, &secret, &blob, &encrypted);
    assert_int_equal(tether_tpm_activate_credential(&f->tpm, f->ak, f->ek.handle, &blob, &encrypted,
                                                    &recovered),
                     TETHER_ERR_TPM);
    assert_non_null(strstr(f->tpm.last_error, "TPM2_ActivateCredential"));
}

static void activate_credential_ecc_ek(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(f->ek.type, TETHER_EK_ECC_P384);
    activate_with_ek(f);
}

static void activate_credential_rsa_ek(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(tether_tpm_flush(&f->tpm, f->ak), TETHER_OK);
    f->ak = TETHER_TPM_HANDLE_NONE;
    tether_ek_free(&f->tpm, &f->ek);
    assert_int_equal(tether_ek_open(&f->tpm, TETHER_EK_RSA2048, &f->ek), TETHER_OK);
    assert_int_equal(tether_tpm_create_key(&f->tpm, f->ek.handle, TETHER_KEY_AK, &f->ak_blob),
                     TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&f->tpm, f->ek.handle, &f->ak_blob, &f->ak), TETHER_OK);
    activate_with_ek(f);
}

/* Hundreds of full cycles (EK, AK load, quote, flush) leave nothing loaded:
 * swtpm has only three object slots, so one leaked handle per cycle would
 * fail within a few iterations. */
static void many_quotes_no_handle_leak(void **state)
{
    fixture_t *f = *state;
    TPML_PCR_SELECTION pcrs = {.count = 1};
    tether_tpm_key_blob_t ak_blob = f->ak_blob;

    pcrs.pcrSelections[0].hash = TPM2_ALG_SHA256;
    pcrs.pcrSelections[0].sizeofSelect = 3;
    pcrs.pcrSelections[0].pcrSelect[0] = 0xff;
    assert_int_equal(tether_tpm_flush(&f->tpm, f->ak), TETHER_OK);
    f->ak = TETHER_TPM_HANDLE_NONE;
    tether_ek_free(&f->tpm, &f->ek);
    for (unsigned i = 0; i < 300; i++) {
        tether_ek_t ek;
        tether_tpm_handle_t ak;
        tether_tpm_attestation_t quote;
        uint8_t nonce[8] = {(uint8_t)i, (uint8_t)(i >> 8)};

        assert_int_equal(tether_ek_open(&f->tpm, TETHER_EK_ANY, &ek), TETHER_OK);
        assert_int_equal(tether_tpm_load_key(&f->tpm, ek.handle, &ak_blob, &ak), TETHER_OK);
        assert_int_equal(tether_tpm_quote(&f->tpm, ak, &pcrs, nonce, sizeof(nonce), &quote),
                         TETHER_OK);
        assert_int_equal(tether_tpm2_verify_signature(&ak_blob.public_area.publicArea,
                                                      quote.attest.attestationData,
                                                      quote.attest.size, &quote.signature),
                         TETHER_OK);
        assert_int_equal(tether_tpm_flush(&f->tpm, ak), TETHER_OK);
        tether_ek_free(&f->tpm, &ek);
    }
    assert_no_tpm_leak();
}

/* close() flushes what a careless caller left loaded. */
static void close_flushes_leftovers(void **state)
{
    tether_tpm_t tpm;
    tether_tpm_handle_t h1, h2;
    TPM2B_PUBLIC pub;

    (void)state;
    tether_tpm_init(&tpm);
    assert_int_equal(tether_tpm_open_esapi(&tpm, tcti), TETHER_OK);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P256, &h1, &pub), TETHER_OK);
    assert_int_equal(tether_tpm_create_ek(&tpm, TETHER_EK_ECC_P384, &h2, &pub), TETHER_OK);
    assert_int_equal(tpm_handle_count(TRANSIENT_FIRST), 2);
    tether_tpm_close(&tpm);
    assert_no_tpm_leak();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(info_reports_swtpm, setup, teardown),
        cmocka_unit_test(connect_failure_is_clear),
        cmocka_unit_test_setup_teardown(ek_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(ek_is_deterministic_and_primary_matches_cert, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ak_attributes_and_reload, setup_ak, teardown),
        cmocka_unit_test_setup_teardown(device_key_certify_and_sign, setup_ak, teardown),
        cmocka_unit_test_setup_teardown(counter_lifecycle_and_certify, setup_ak, teardown),
        cmocka_unit_test_setup_teardown(quote_covers_pcr_values, setup_ak, teardown),
        cmocka_unit_test_setup_teardown(pcr_extend_is_hash_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(activate_credential_ecc_ek, setup_ak, teardown),
        cmocka_unit_test_setup_teardown(activate_credential_rsa_ek, setup_ak, teardown),
        cmocka_unit_test_setup_teardown(many_quotes_no_handle_leak, setup_ak, teardown),
        cmocka_unit_test(close_flushes_leftovers),
    };

    tcti = getenv("TETHER_TEST_TCTI");
    if (tcti == NULL || tcti[0] == '\0') {
        fprintf(stderr, "TETHER_TEST_TCTI is not set: run this test through run_with_swtpm.sh\n");
        return 1;
    }
    setenv("TSS2_LOG", "all+NONE", 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
