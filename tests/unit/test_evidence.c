/*
 * The attested exchange's evidence without a network: the device side is
 * played by the fake TPM exactly as tether-agent will play it (EK, AK,
 * counter, NV_Certify and Quote over the qualifying data), the fleet side by
 * the pure checks. Every refusal code is reached by the smallest change that
 * should cause it; the checks that a genuine TPM can never fail (magic,
 * clock safety, ...) are reached by re-signing edited attestations with a
 * software key standing in for the AK.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <tss2/tss2_mu.h>

#include "tether/base64url.h"
#include "tether/evidence.h"
#include "tether/nonce.h"
#include "tether/random.h"
#include "tether/tpm2_public.h"
#include "tether/tpm_fake.h"

#define COUNTER 0x01000100u
#define OTHER_COUNTER 0x01000101u
#define NOW 1700000000u
#define USAGE "{\"requests\":12,\"tokens\":3456}"

/* One device: a fake TPM with its EK, AK and counter, as the agent leaves
 * them after enrolment, and what the fleet stored about it. */
typedef struct device {
    tether_tpm_t tpm;
    tether_ek_t ek;
    tether_tpm_key_blob_t ak_blob;
    tether_tpm_handle_t ak;
    TPM2B_NV_PUBLIC counter_public;
    TPM2B_NAME counter_name; /* from TPM2_NV_ReadPublic */
    TPM2B_NAME ak_qn;
} device_t;

typedef struct fixture {
    device_t dev;
    uint8_t key[TETHER_NONCE_KEY_SIZE];
    TPML_PCR_SELECTION pcrs;
    TPM2B_DIGEST expected_digest;
    tether_evidence_policy_t policy;
    tether_evidence_t ev;
    /* A software key in place of the AK, to re-sign edited attestations. */
    mbedtls_ecp_keypair soft_key;
    TPMT_PUBLIC soft_public;
} fixture_t;

static void sha256(const void *data, size_t len, uint8_t out[32])
{
    assert_int_equal(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, len, out), 0);
}

static TPML_PCR_SELECTION pcrs_0_to(unsigned last)
{
    TPML_PCR_SELECTION sel;

    memset(&sel, 0, sizeof(sel));
    sel.count = 1;
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    for (unsigned pcr = 0; pcr <= last; pcr++)
        sel.pcrSelections[0].pcrSelect[pcr / 8] |= (uint8_t)(1u << (pcr % 8));
    return sel;
}

/* The agent's enrolment, as far as the exchange needs it. */
static void device_open(device_t *d, uint64_t seed, const tether_tpm_key_blob_t *ak_blob)
{
    tether_tpm_fake_config_t config = {.ek_cert_types = 1u << TETHER_EK_ECC_P256, .seed = seed};
    TPM2B_NAME computed;

    memset(d, 0, sizeof(*d));
    tether_tpm_init(&d->tpm);
    d->tpm.retry_delay_ms = 0;
    assert_int_equal(tether_tpm_open_fake(&d->tpm, &config), TETHER_OK);
    assert_int_equal(tether_ek_open(&d->tpm, TETHER_EK_ANY, &d->ek), TETHER_OK);
    if (ak_blob != NULL)
        d->ak_blob = *ak_blob; /* a clone: the other TPM's key blob */
    else
        assert_int_equal(tether_tpm_create_key(&d->tpm, d->ek.handle, TETHER_KEY_AK, &d->ak_blob),
                         TETHER_OK);
    assert_int_equal(tether_tpm_load_key(&d->tpm, d->ek.handle, &d->ak_blob, &d->ak), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&d->tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&d->tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_read_public(&d->tpm, COUNTER, &d->counter_public,
                                               &d->counter_name),
                     TETHER_OK);
    /* The fleet computes the same names from the enrolment request. */
    assert_int_equal(tether_evidence_counter_name(&d->counter_public.nvPublic, &computed),
                     TETHER_OK);
    assert_int_equal(computed.size, d->counter_name.size);
    assert_memory_equal(computed.name, d->counter_name.name, computed.size);
    assert_int_equal(tether_nv_public_name(&d->counter_public.nvPublic, &computed), TETHER_OK);
    assert_memory_equal(computed.name, d->counter_name.name, computed.size);
    assert_int_equal(tether_evidence_ak_qualified_name(&d->ek.public_area.publicArea,
                                                       &d->ak_blob.public_area.publicArea,
                                                       &d->ak_qn),
                     TETHER_OK);
}

static void device_close(device_t *d)
{
    if (d->ak != TETHER_TPM_HANDLE_NONE)
        (void)tether_tpm_flush(&d->tpm, d->ak);
    tether_ek_free(&d->tpm, &d->ek);
    tether_tpm_close(&d->tpm);
}

/* One exchange as tether-agent makes it: increment, qualifying data over
 * nonce and usage, NV_Certify of the whole counter, Quote, in that order. */
static void make_evidence_at(device_t *d, TPM2_HANDLE counter, const TPML_PCR_SELECTION *pcrs,
                             const uint8_t nonce[TETHER_NONCE_SIZE], const char *usage,
                             tether_evidence_t *ev)
{
    uint8_t q[TETHER_EVIDENCE_QUALIFYING_SIZE];
    tether_tpm_attestation_t nv, quote;

    memset(ev, 0, sizeof(*ev));
    strcpy(ev->device_id, "dev_0123456789abcdef01234567");
    memcpy(ev->nonce, nonce, TETHER_NONCE_SIZE);
    ev->usage_len = strlen(usage);
    memcpy(ev->usage, usage, ev->usage_len);
    assert_int_equal(tether_evidence_qualifying(ev->nonce, ev->usage, ev->usage_len, q),
                     TETHER_OK);
    assert_int_equal(tether_tpm_nv_increment(&d->tpm, counter), TETHER_OK);
    assert_int_equal(tether_tpm_nv_certify(&d->tpm, d->ak, counter, q, sizeof(q), &nv), TETHER_OK);
    assert_int_equal(tether_tpm_quote(&d->tpm, d->ak, pcrs, q, sizeof(q), &quote), TETHER_OK);
    ev->nv_certify = nv.attest;
    ev->nv_signature = nv.signature;
    ev->quote = quote.attest;
    ev->quote_signature = quote.signature;
}

static void make_evidence(fixture_t *f, device_t *d, tether_evidence_t *ev)
{
    uint8_t nonce[TETHER_NONCE_SIZE];

    assert_int_equal(tether_nonce_issue(f->key, sizeof(f->key), NOW, 60, nonce), TETHER_OK);
    make_evidence_at(d, COUNTER, &f->pcrs, nonce, USAGE, ev);
}

static void soft_key_setup(fixture_t *f)
{
    TPMT_PUBLIC *p = &f->soft_public;

    mbedtls_ecp_keypair_init(&f->soft_key);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &f->soft_key,
                                         tether_random_mbedtls, NULL),
                     0);
    *p = f->dev.ak_blob.public_area.publicArea; /* same template, other point */
    assert_int_equal(mbedtls_mpi_write_binary(&f->soft_key.Q.X, p->unique.ecc.x.buffer, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&f->soft_key.Q.Y, p->unique.ecc.y.buffer, 32), 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uint8_t values[8 * 32];

    if (f == NULL)
        return -1;
    device_open(&f->dev, 42, NULL);
    assert_int_equal(tether_random_bytes(f->key, sizeof(f->key)), TETHER_OK);
    f->pcrs = pcrs_0_to(7);
    /* The reference value a fleet policy would hold: SHA-256 over PCRs 0-7. */
    for (unsigned pcr = 0; pcr < 8; pcr++) {
        TPM2B_DIGEST value;
        assert_int_equal(tether_tpm_pcr_read(&f->dev.tpm, TPM2_ALG_SHA256, pcr, &value), TETHER_OK);
        assert_int_equal(value.size, 32);
        memcpy(values + 32 * pcr, value.buffer, 32);
    }
    sha256(values, sizeof(values), f->expected_digest.buffer);
    f->expected_digest.size = 32;

    f->policy.ak = &f->dev.ak_blob.public_area.publicArea;
    f->policy.ak_qualified_name = &f->dev.ak_qn;
    f->policy.counter_name = &f->dev.counter_name;
    f->policy.pcr_selection = f->pcrs;
    f->policy.pcr_digests = &f->expected_digest;
    f->policy.pcr_digest_count = 1;
    f->policy.last_clock = NULL;
    make_evidence(f, &f->dev, &f->ev);
    soft_key_setup(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    device_close(&f->dev);
    mbedtls_ecp_keypair_free(&f->soft_key);
    free(f);
    return 0;
}

static tether_evidence_code_t verify_code(const tether_evidence_t *ev,
                                          const tether_evidence_policy_t *policy,
                                          tether_evidence_result_t *result)
{
    tether_evidence_result_t scratch;
    tether_evidence_code_t code = TETHER_EVIDENCE_CODE_COUNT;
    char why[256] = "";
    tether_status_t rc;

    rc = tether_evidence_verify(ev, policy, result != NULL ? result : &scratch, &code, why,
                                sizeof(why));
    if (rc == TETHER_OK) {
        assert_int_equal(code, TETHER_EVIDENCE_OK);
    } else {
        assert_int_equal(rc, TETHER_ERR_VERIFY);
        assert_int_not_equal(code, TETHER_EVIDENCE_OK);
        if (why[0] == '\0')
            fail_msg("refusal %s without a reason", tether_evidence_code_name(code));
    }
    return code;
}

#define assert_refused(ev, policy, expected)                                                    \
    do {                                                                                         \
        tether_evidence_code_t got_ = verify_code((ev), (policy), NULL);                         \
        if (got_ != (expected))                                                                  \
            fail_msg("got %s, expected %s", tether_evidence_code_name(got_),                     \
                     tether_evidence_code_name(expected));                                       \
    } while (0)

/* Re-marshals an edited attestation of ev (which = 0: nv_certify, 1: quote,
 * 2: both) and signs both with the software key, so that only the edit
 * differs. */
static void resign(fixture_t *f, tether_evidence_t *ev, int which, void (*edit)(TPMS_ATTEST *))
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
        if ((i == which || which == 2) && edit != NULL)
            edit(&parsed);
        offset = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&parsed, a->attestationData,
                                                     sizeof(a->attestationData), &offset),
                         TSS2_RC_SUCCESS);
        a->size = (uint16_t)offset;
        sha256(a->attestationData, a->size, hash);
        mbedtls_mpi_init(&r);
        mbedtls_mpi_init(&s);
        assert_int_equal(mbedtls_ecdsa_sign(&f->soft_key.grp, &r, &s, &f->soft_key.d, hash, 32,
                                            tether_random_mbedtls, NULL),
                         0);
        assert_int_equal(
            mbedtls_mpi_write_binary(&r, sig->signature.ecdsa.signatureR.buffer, 32), 0);
        assert_int_equal(
            mbedtls_mpi_write_binary(&s, sig->signature.ecdsa.signatureS.buffer, 32), 0);
        mbedtls_mpi_free(&r);
        mbedtls_mpi_free(&s);
    }
}

/* --- the genuine exchange ---------------------------------------------------- */

static void genuine_evidence_verifies(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t parsed, next;
    tether_evidence_result_t result, next_result;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_code_t code;
    char *token = NULL;
    char why[256] = "";
    uint64_t counter;

    /* The wire form carries it unchanged. */
    assert_int_equal(tether_evidence_encode(&f->ev, &token), TETHER_OK);
    assert_true(strlen(token) <= TETHER_EVIDENCE_MAX_TOKEN);
    assert_int_equal(tether_evidence_parse(token, strlen(token), &parsed, why, sizeof(why)),
                     TETHER_OK);
    assert_memory_equal(&parsed, &f->ev, sizeof(parsed));

    /* The fleet's order: nonce, then verify. */
    assert_int_equal(tether_evidence_check_nonce(&parsed, f->key, NULL, sizeof(f->key), NOW + 1,
                                                 &code, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(code, TETHER_EVIDENCE_OK);
    assert_int_equal(verify_code(&parsed, &policy, &result), TETHER_EVIDENCE_OK);
    assert_int_equal(tether_tpm_nv_read_counter(&f->dev.tpm, COUNTER, &counter), TETHER_OK);
    assert_int_equal(result.counter, counter);
    assert_int_equal(result.counter, 2); /* once at enrolment, once for this exchange */
    assert_int_equal(result.clock.safe, TPM2_YES);
    assert_int_equal(result.pcr_digest.size, 32);
    assert_memory_equal(result.pcr_digest.buffer, f->expected_digest.buffer, 32);
    assert_int_equal(result.firmware_version, 0x2024010100000001ull);

    /* The next exchange, against what the fleet stored from this one: the
     * counter goes up and so does the clock. */
    policy.last_clock = &result.clock;
    make_evidence(f, &f->dev, &next);
    assert_int_equal(verify_code(&next, &policy, &next_result), TETHER_EVIDENCE_OK);
    assert_true(next_result.counter > result.counter);
    assert_true(next_result.clock.clock > result.clock.clock);
    /* The quote is made after the NV certification: its clock is reported. */
    {
        TPMS_ATTEST quote;
        size_t offset = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(next.quote.attestationData, next.quote.size,
                                                       &offset, &quote),
                         TSS2_RC_SUCCESS);
        assert_int_equal(next_result.clock.clock, quote.clockInfo.clock);
    }
    free(token);
}

static void first_use_accepts_any_digest(void **state)
{
    fixture_t *f = *state;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_result_t result;

    policy.pcr_digests = NULL;
    policy.pcr_digest_count = 0;
    assert_int_equal(verify_code(&f->ev, &policy, &result), TETHER_EVIDENCE_OK);
    assert_memory_equal(result.pcr_digest.buffer, f->expected_digest.buffer, 32);
}

static void fingerprint_tells_retries_from_exchanges(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t copy = f->ev, next;
    uint8_t a[32], b[32], c[32];

    make_evidence(f, &f->dev, &next);
    assert_int_equal(tether_evidence_fingerprint(&f->ev, a), TETHER_OK);
    assert_int_equal(tether_evidence_fingerprint(&copy, b), TETHER_OK);
    assert_int_equal(tether_evidence_fingerprint(&next, c), TETHER_OK);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
}

/* Two spellings of one exchange's signatures are one exchange: s replaced
 * by n - s, or a new signature altogether (a TPM signs with a fresh k). */
static void fingerprint_ignores_signature_encoding(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t other = f->ev;
    uint8_t a[32], b[32];

    assert_int_equal(tether_tpm_fake_negate_s(&other.quote_signature), TETHER_OK);
    other.quote_signature.signature.ecdsa.signatureR.buffer[3] ^= 0x40;
    other.nv_signature.signature.ecdsa.signatureR.buffer[7] ^= 0x01;
    assert_int_equal(tether_evidence_fingerprint(&f->ev, a), TETHER_OK);
    assert_int_equal(tether_evidence_fingerprint(&other, b), TETHER_OK);
    assert_memory_equal(a, b, 32);
    /* What the TPM was asked to cover counts: another usage report. */
    other.usage[0] ^= 0x01;
    assert_int_equal(tether_evidence_fingerprint(&other, b), TETHER_OK);
    assert_memory_not_equal(a, b, 32);
}

/* --- refusals -------------------------------------------------------------------- */

static void tampered_bytes_break_the_signature(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev;

    ev = f->ev;
    ev.quote.attestationData[ev.quote.size - 1] ^= 1; /* a PCR digest byte */
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_BAD_SIGNATURE);
    ev = f->ev;
    ev.nv_certify.attestationData[ev.nv_certify.size - 1] ^= 1; /* the counter's low byte */
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_BAD_SIGNATURE);
    ev = f->ev;
    ev.nv_signature.signature.ecdsa.signatureS.buffer[5] ^= 1;
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_BAD_SIGNATURE);
    /* The signature of the other attestation does not do either. */
    ev = f->ev;
    ev.quote_signature = f->ev.nv_signature;
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_BAD_SIGNATURE);
}

static void swapped_attestations_are_the_wrong_type(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev = f->ev;

    ev.nv_certify = f->ev.quote;
    ev.nv_signature = f->ev.quote_signature;
    ev.quote = f->ev.nv_certify;
    ev.quote_signature = f->ev.nv_signature;
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE);
    /* Both quotes. */
    ev = f->ev;
    ev.nv_certify = f->ev.quote;
    ev.nv_signature = f->ev.quote_signature;
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE);
}

static void another_tpm_is_refused(void **state)
{
    fixture_t *f = *state;
    device_t other;
    tether_evidence_t ev;
    tether_evidence_policy_t policy = f->policy;

    device_open(&other, 7, NULL);
    make_evidence(f, &other, &ev);
    /* Sent under this device's id: the enrolled AK did not sign it. */
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_BAD_SIGNATURE);
    /* A genuine AK, but not the one enrolled under this EK. */
    policy.ak = &other.ak_blob.public_area.publicArea;
    assert_refused(&ev, &policy, TETHER_EVIDENCE_WRONG_SIGNER);
    /* Same key, claimed under another EK: the qualified name differs. */
    policy = f->policy;
    {
        TPM2B_NAME qn;
        assert_int_equal(tether_evidence_ak_qualified_name(&other.ek.public_area.publicArea,
                                                           policy.ak, &qn),
                         TETHER_OK);
        policy.ak_qualified_name = &qn;
        assert_refused(&f->ev, &policy, TETHER_EVIDENCE_WRONG_SIGNER);
    }
    device_close(&other);
}

static void other_usage_or_nonce_is_extra_data_mismatch(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev = f->ev;
    static const char other[] = "{\"requests\":0,\"tokens\":0}";

    /* Reporting less usage than the TPM signed. */
    memset(ev.usage, 0, sizeof(ev.usage));
    memcpy(ev.usage, other, sizeof(other) - 1);
    ev.usage_len = sizeof(other) - 1;
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_EXTRA_DATA_MISMATCH);
    /* Old evidence with a fresh nonce. */
    ev = f->ev;
    assert_int_equal(tether_nonce_issue(f->key, sizeof(f->key), NOW + 30, 60, ev.nonce),
                     TETHER_OK);
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_EXTRA_DATA_MISMATCH);
}

static void another_index_is_the_wrong_counter(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev;
    uint8_t nonce[TETHER_NONCE_SIZE];

    assert_int_equal(tether_nonce_issue(f->key, sizeof(f->key), NOW, 60, nonce), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&f->dev.tpm, OTHER_COUNTER), TETHER_OK);
    make_evidence_at(&f->dev, OTHER_COUNTER, &f->pcrs, nonce, USAGE, &ev);
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_WRONG_COUNTER);

    /* The enrolled counter deleted and defined again keeps its name (same
     * index, same attributes) and its value does not go back (TPM2 Part 1,
     * 37.2.5): nothing to refuse here. */
    assert_int_equal(tether_tpm_nv_undefine(&f->dev.tpm, COUNTER), TETHER_OK);
    assert_int_equal(tether_tpm_nv_define_counter(&f->dev.tpm, COUNTER), TETHER_OK);
    make_evidence_at(&f->dev, COUNTER, &f->pcrs, nonce, USAGE, &ev);
    {
        tether_evidence_result_t result;
        assert_int_equal(verify_code(&ev, &f->policy, &result), TETHER_EVIDENCE_OK);
        assert_true(result.counter > 2);
    }
}

static void pcrs_must_match_the_policy(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_result_t result;
    TPML_DIGEST_VALUES digests = {.count = 1};
    TPML_PCR_SELECTION more = pcrs_0_to(8);

    /* Another selection in the policy than the agent quoted. */
    policy.pcr_selection = more;
    assert_refused(&f->ev, &policy, TETHER_EVIDENCE_PCR_MISMATCH);
    /* The same set written with a fourth (zero) selection byte is the same. */
    policy = f->policy;
    policy.pcr_selection.pcrSelections[0].sizeofSelect = 4;
    assert_int_equal(verify_code(&f->ev, &policy, NULL), TETHER_EVIDENCE_OK);

    /* Other software measured into PCR 7. */
    digests.digests[0].hashAlg = TPM2_ALG_SHA256;
    memset(digests.digests[0].digest.sha256, 0x77, 32);
    assert_int_equal(tether_tpm_pcr_extend(&f->dev.tpm, 7, &digests), TETHER_OK);
    make_evidence(f, &f->dev, &ev);
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_PCR_MISMATCH);
    /* Accepted once its digest is in the policy's list (or on first use). */
    policy = f->policy;
    policy.pcr_digest_count = 0;
    policy.pcr_digests = NULL;
    assert_int_equal(verify_code(&ev, &policy, &result), TETHER_EVIDENCE_OK);
    assert_memory_not_equal(result.pcr_digest.buffer, f->expected_digest.buffer, 32);
    {
        TPM2B_DIGEST accepted[2] = {f->expected_digest, result.pcr_digest};
        policy.pcr_digests = accepted;
        policy.pcr_digest_count = 2;
        assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
    }
}

static void clock_must_not_go_back(void **state)
{
    fixture_t *f = *state;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_result_t result, refused;
    TPMS_CLOCK_INFO last;

    assert_int_equal(verify_code(&f->ev, &policy, &result), TETHER_EVIDENCE_OK);
    policy.last_clock = &last;

    /* A last exchange later than this one on the same boot. */
    last = result.clock;
    last.clock += 1000000;
    assert_refused(&f->ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
    /* The refusal still says what the TPM signed, for the clone record: the
     * same counter and clockInfo as the accepted verification. */
    memset(&refused, 0xa5, sizeof(refused));
    assert_int_equal(verify_code(&f->ev, &policy, &refused), TETHER_EVIDENCE_CLOCK_REGRESSION);
    assert_int_equal(refused.counter, result.counter);
    assert_int_equal(refused.clock.clock, result.clock.clock);
    assert_int_equal(refused.clock.resetCount, result.clock.resetCount);
    assert_int_equal(refused.clock.restartCount, result.clock.restartCount);
    assert_int_equal(refused.clock.safe, result.clock.safe);
    /* Any other refusal leaves nothing in the result. */
    policy.pcr_selection.count = 0;
    assert_int_equal(verify_code(&f->ev, &policy, &refused), TETHER_EVIDENCE_PCR_MISMATCH);
    assert_int_equal(refused.counter, 0);
    assert_int_equal(refused.clock.clock, 0);
    policy.pcr_selection = f->policy.pcr_selection;
    /* The same evidence again: its clock does not go up. */
    last = result.clock;
    assert_refused(&f->ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
    /* restartCount went down within one reset. */
    last = result.clock;
    last.clock = 0;
    last.restartCount = result.clock.restartCount + 1;
    assert_refused(&f->ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
    /* resetCount went down. */
    last = result.clock;
    last.clock = 0;
    last.resetCount = result.clock.resetCount + 1;
    assert_refused(&f->ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);

    /* A TPM Reset since: restartCount back to 0, clock may be anything. */
    last = result.clock;
    last.resetCount = result.clock.resetCount - 1;
    last.restartCount = 5;
    last.clock = result.clock.clock + 1000000;
    assert_int_equal(verify_code(&f->ev, &policy, NULL), TETHER_EVIDENCE_OK);
    /* A minute earlier on the same boot. */
    last = result.clock;
    last.clock = result.clock.clock - 60000;
    assert_int_equal(verify_code(&f->ev, &policy, NULL), TETHER_EVIDENCE_OK);
    /* Between the NV certification and the quote: the earlier of the two
     * went back. */
    last.clock = result.clock.clock - 1;
    assert_refused(&f->ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
}

/* --- checks a genuine TPM cannot fail: re-signed with the software key --------- */

static void edit_unsafe(TPMS_ATTEST *a) { a->clockInfo.safe = TPM2_NO; }
static void edit_reset(TPMS_ATTEST *a) { a->clockInfo.resetCount++; }
static void edit_restart(TPMS_ATTEST *a) { a->clockInfo.restartCount++; }
static void edit_firmware(TPMS_ATTEST *a) { a->firmwareVersion++; }
static void edit_magic(TPMS_ATTEST *a) { a->magic = 0xff544348u; }
static void edit_offset(TPMS_ATTEST *a) { a->attested.nv.offset = 4; }
static void edit_partial(TPMS_ATTEST *a) { a->attested.nv.nvContents.size = 4; }
static void edit_type_certify(TPMS_ATTEST *a)
{
    memset(&a->attested, 0, sizeof(a->attested));
    a->type = TPM2_ST_ATTEST_CERTIFY;
}
static void edit_later_nv(TPMS_ATTEST *a) { a->clockInfo.clock += 5000; }

static void resigned_edits_are_refused(void **state)
{
    fixture_t *f = *state;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_result_t result;
    tether_evidence_t ev;
    static const struct {
        int which;
        void (*edit)(TPMS_ATTEST *);
        tether_evidence_code_t code;
    } cases[] = {
        {0, edit_unsafe, TETHER_EVIDENCE_CLOCK_UNSAFE},
        {1, edit_unsafe, TETHER_EVIDENCE_CLOCK_UNSAFE},
        {0, edit_reset, TETHER_EVIDENCE_INCONSISTENT},
        {1, edit_restart, TETHER_EVIDENCE_INCONSISTENT},
        {1, edit_firmware, TETHER_EVIDENCE_INCONSISTENT},
        {0, edit_magic, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE},
        {1, edit_magic, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE},
        {0, edit_offset, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE},
        {0, edit_partial, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE},
        {1, edit_type_certify, TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE},
    };

    policy.ak = &f->soft_public;
    /* Re-signing alone changes nothing. */
    ev = f->ev;
    resign(f, &ev, 0, NULL);
    assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
    assert_refused(&ev, &f->policy, TETHER_EVIDENCE_BAD_SIGNATURE);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tether_evidence_code_t got;

        ev = f->ev;
        resign(f, &ev, cases[i].which, cases[i].edit);
        got = verify_code(&ev, &policy, NULL);
        if (got != cases[i].code)
            fail_msg("case %zu: got %s, expected %s", i, tether_evidence_code_name(got),
                     tether_evidence_code_name(cases[i].code));
    }

    /* A Restart since the last exchange, on the same reset: the clock may
     * be anything (the fake TPM never restarts, so both are edited). */
    {
        TPMS_CLOCK_INFO last;

        assert_int_equal(verify_code(&f->ev, &f->policy, &result), TETHER_EVIDENCE_OK);
        last = result.clock;
        last.clock += 1000000;
        ev = f->ev;
        resign(f, &ev, 2, edit_restart);
        policy.last_clock = &last;
        assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
        last.restartCount++;
        assert_refused(&ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
        policy.last_clock = NULL;
    }

    /* The later of the two clocks is reported, whichever came last. */
    ev = f->ev;
    resign(f, &ev, 0, edit_later_nv);
    assert_int_equal(verify_code(&ev, &policy, &result), TETHER_EVIDENCE_OK);
    {
        TPMS_ATTEST nv;
        size_t offset = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(ev.nv_certify.attestationData,
                                                       ev.nv_certify.size, &offset, &nv),
                         TSS2_RC_SUCCESS);
        assert_int_equal(result.clock.clock, nv.clockInfo.clock);
    }
}

/* The clock rule after a power loss (TPM2 Part 1, 36): a TPM Reset without
 * TPM2_Shutdown leaves clockInfo.safe NO until the TPM next writes Clock to
 * NV. Edited and re-signed: the fake TPM's clock is always safe here. */
static void edit_unsafe_later(TPMS_ATTEST *a)
{
    a->clockInfo.safe = TPM2_NO;
    a->clockInfo.clock += 1000;
}

static void unsafe_clock_after_power_loss(void **state)
{
    fixture_t *f = *state;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_result_t result;
    tether_evidence_t ev;
    TPMS_CLOCK_INFO last;

    assert_int_equal(verify_code(&f->ev, &f->policy, &result), TETHER_EVIDENCE_OK);
    policy.ak = &f->soft_public;
    policy.last_clock = &last;
    ev = f->ev;
    resign(f, &ev, 2, edit_unsafe_later);

    /* A Reset since the last accepted exchange (resetCount went up): what a
     * power loss looks like, whatever the clock. */
    last = result.clock;
    last.resetCount = result.clock.resetCount - 1;
    last.clock = result.clock.clock + 1000000;
    assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
    last.safe = TPM2_NO;
    assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
    /* The same Reset as a last exchange that was unsafe already, the clock
     * gone on: the same boot, Clock not yet written to NV. */
    last = result.clock;
    last.safe = TPM2_NO;
    assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
    /* The same Reset as a safe last exchange: safe never goes back to NO
     * within one Reset. */
    last = result.clock;
    assert_refused(&ev, &policy, TETHER_EVIDENCE_CLOCK_UNSAFE);
    /* An unsafe clock that went back within the same Reset and Restart is
     * no power loss: the clone signal, unsafe or not. */
    last = result.clock;
    last.safe = TPM2_NO;
    last.clock = result.clock.clock + 5000;
    assert_refused(&ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
    /* No last exchange: nothing shows a Reset. */
    policy.last_clock = NULL;
    assert_refused(&ev, &policy, TETHER_EVIDENCE_CLOCK_UNSAFE);
    /* The retry of the accepted exchange itself: its clock is last_clock,
     * and both rules held when it was accepted. */
    policy.last_clock = &last;
    last.resetCount = result.clock.resetCount - 1;
    assert_int_equal(verify_code(&ev, &policy, &result), TETHER_EVIDENCE_OK);
    assert_int_equal(result.clock.safe, TPM2_NO);
    last = result.clock;
    assert_refused(&ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
    policy.retry_of_last = true;
    assert_int_equal(verify_code(&ev, &policy, NULL), TETHER_EVIDENCE_OK);
}

static void bad_arguments_are_internal_errors(void **state)
{
    fixture_t *f = *state;
    tether_evidence_policy_t policy = f->policy;
    tether_evidence_result_t result;
    tether_evidence_code_t code = TETHER_EVIDENCE_OK;

    policy.ak = NULL;
    assert_int_equal(tether_evidence_verify(&f->ev, &policy, &result, &code, NULL, 0),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(code, TETHER_EVIDENCE_INTERNAL_ERROR);
    policy = f->policy;
    policy.pcr_digest_count = 3;
    policy.pcr_digests = NULL;
    assert_int_equal(tether_evidence_verify(&f->ev, &policy, &result, &code, NULL, 0),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_evidence_verify(NULL, &f->policy, &result, &code, NULL, 0),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_evidence_verify(&f->ev, &f->policy, &result, NULL, NULL, 0),
                     TETHER_ERR_INVALID_ARGUMENT);
}

static void code_names_are_stable(void **state)
{
    static const char *const expected[TETHER_EVIDENCE_CODE_COUNT] = {
        "ok",           "malformed_evidence",     "nonce_invalid",  "nonce_expired",
        "bad_signature", "wrong_attestation_type", "wrong_signer",   "extra_data_mismatch",
        "wrong_counter", "pcr_mismatch",           "clock_unsafe",   "clock_regression",
        "inconsistent_attestations",              "internal_error",
    };

    (void)state;
    for (int i = 0; i < TETHER_EVIDENCE_CODE_COUNT; i++)
        assert_string_equal(tether_evidence_code_name((tether_evidence_code_t)i), expected[i]);
    assert_string_equal(tether_evidence_code_name(TETHER_EVIDENCE_CODE_COUNT), "internal_error");
    assert_string_equal(tether_evidence_code_name((tether_evidence_code_t)-1), "internal_error");
}

/* --- clones ------------------------------------------------------------------------ */

/* Two TPM states with the same seed and the same AK blob: each makes
 * evidence that passes every check here. What gives the clone away is the
 * fleet's comparison of the counter with the highest value it accepted (and
 * the clock going back for the same AK). */
static void clones_both_verify_and_the_counter_tells(void **state)
{
    fixture_t *f = *state;
    device_t clone;
    tether_evidence_t ev;
    tether_evidence_result_t original, copy;
    tether_evidence_policy_t policy = f->policy;
    uint64_t highest = 0;

    /* The original exchanges a few times; the fleet keeps the highest. */
    for (int i = 0; i < 3; i++) {
        make_evidence(f, &f->dev, &ev);
        assert_int_equal(verify_code(&ev, &policy, &original), TETHER_EVIDENCE_OK);
        assert_true(original.counter > highest);
        highest = original.counter;
    }
    device_open(&clone, 42, &f->dev.ak_blob);
    /* Same index, same attributes: the same counter name. */
    assert_memory_equal(clone.counter_name.name, f->dev.counter_name.name,
                        f->dev.counter_name.size);
    assert_memory_equal(clone.ak_qn.name, f->dev.ak_qn.name, f->dev.ak_qn.size);
    make_evidence(f, &clone, &ev);
    assert_int_equal(verify_code(&ev, &policy, &copy), TETHER_EVIDENCE_OK);
    assert_true(copy.counter <= highest); /* the fleet refuses and quarantines */
    /* With the original's last clock, the clone's clock went back too. */
    policy.last_clock = &original.clock;
    assert_refused(&ev, &policy, TETHER_EVIDENCE_CLOCK_REGRESSION);
    device_close(&clone);
}

/* --- nonces ------------------------------------------------------------------------ */

static void nonce_issue_and_check(void **state)
{
    uint8_t key[TETHER_NONCE_KEY_SIZE], other_key[TETHER_NONCE_KEY_SIZE];
    uint8_t nonce[TETHER_NONCE_SIZE], again[TETHER_NONCE_SIZE], bad[TETHER_NONCE_SIZE + 1];

    (void)state;
    memset(key, 0x11, sizeof(key));
    memset(other_key, 0x22, sizeof(other_key));
    assert_int_equal(tether_nonce_issue(key, sizeof(key), NOW, 60, nonce), TETHER_OK);
    assert_int_equal(tether_nonce_issue(key, sizeof(key), NOW, 60, again), TETHER_OK);
    assert_memory_not_equal(nonce, again, TETHER_NONCE_RANDOM_SIZE);
    assert_int_equal(tether_nonce_check(key, sizeof(key), nonce, sizeof(nonce), NOW), TETHER_OK);
    assert_int_equal(tether_nonce_check(key, sizeof(key), nonce, sizeof(nonce), NOW + 59),
                     TETHER_OK);
    /* Expired at expiry, and an expiry in big-endian unix seconds. */
    assert_int_equal(tether_nonce_check(key, sizeof(key), nonce, sizeof(nonce), NOW + 60),
                     TETHER_ERR_EXPIRED);
    assert_int_equal(tether_nonce_check(key, sizeof(key), nonce, sizeof(nonce), UINT64_MAX),
                     TETHER_ERR_EXPIRED);
    {
        uint64_t expiry = 0;
        for (int i = 0; i < 8; i++)
            expiry = expiry << 8 | nonce[TETHER_NONCE_RANDOM_SIZE + i];
        assert_int_equal(expiry, NOW + 60);
        assert_int_equal(tether_nonce_expiry(nonce), NOW + 60);
    }
    /* Any changed byte: random part, expiry (a longer life) or MAC. */
    for (size_t i = 0; i < TETHER_NONCE_SIZE; i++) {
        memcpy(bad, nonce, sizeof(nonce));
        bad[i] ^= 0x01;
        assert_int_equal(tether_nonce_check(key, sizeof(key), bad, TETHER_NONCE_SIZE, NOW),
                         TETHER_ERR_VERIFY);
    }
    /* Another fleet's key; even expired, a foreign nonce is "invalid". */
    assert_int_equal(tether_nonce_check(other_key, sizeof(other_key), nonce, sizeof(nonce), NOW),
                     TETHER_ERR_VERIFY);
    assert_int_equal(tether_nonce_check(other_key, sizeof(other_key), nonce, sizeof(nonce),
                                        NOW + 3600),
                     TETHER_ERR_VERIFY);
    /* Wrong lengths. */
    memcpy(bad, nonce, sizeof(nonce));
    bad[TETHER_NONCE_SIZE] = 0;
    assert_int_equal(tether_nonce_check(key, sizeof(key), bad, TETHER_NONCE_SIZE + 1, NOW),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_nonce_check(key, sizeof(key), nonce, TETHER_NONCE_SIZE - 1, NOW),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_nonce_check(key, sizeof(key), NULL, 0, NOW), TETHER_ERR_PARSE);
    /* Unusable arguments. */
    assert_int_equal(tether_nonce_check(key, 16, nonce, sizeof(nonce), NOW),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_nonce_issue(key, 16, NOW, 60, again), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_nonce_issue(key, sizeof(key), NOW, 0, again),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_nonce_issue(key, sizeof(key), UINT64_MAX - 10, 60, again),
                     TETHER_ERR_INVALID_ARGUMENT);
}

static void nonce_key_rotation(void **state)
{
    uint8_t old_key[TETHER_NONCE_KEY_SIZE], new_key[TETHER_NONCE_KEY_SIZE];
    uint8_t old_nonce[TETHER_NONCE_SIZE], new_nonce[TETHER_NONCE_SIZE];

    (void)state;
    memset(old_key, 0x33, sizeof(old_key));
    memset(new_key, 0x44, sizeof(new_key));
    assert_int_equal(tether_nonce_issue(old_key, sizeof(old_key), NOW, 60, old_nonce), TETHER_OK);
    assert_int_equal(tether_nonce_issue(new_key, sizeof(new_key), NOW, 60, new_nonce), TETHER_OK);
    assert_int_equal(tether_nonce_check_rotating(new_key, old_key, sizeof(new_key), old_nonce,
                                                 sizeof(old_nonce), NOW),
                     TETHER_OK);
    assert_int_equal(tether_nonce_check_rotating(new_key, old_key, sizeof(new_key), new_nonce,
                                                 sizeof(new_nonce), NOW),
                     TETHER_OK);
    assert_int_equal(tether_nonce_check_rotating(new_key, NULL, sizeof(new_key), old_nonce,
                                                 sizeof(old_nonce), NOW),
                     TETHER_ERR_VERIFY);
    assert_int_equal(tether_nonce_check_rotating(new_key, old_key, sizeof(new_key), old_nonce,
                                                 sizeof(old_nonce), NOW + 60),
                     TETHER_ERR_EXPIRED);
}

static void evidence_nonce_codes(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev = f->ev;
    tether_evidence_code_t code;
    uint8_t other_key[TETHER_NONCE_KEY_SIZE];
    char why[256];

    memset(other_key, 0x55, sizeof(other_key));
    assert_int_equal(tether_evidence_check_nonce(&ev, f->key, NULL, sizeof(f->key), NOW + 60,
                                                 &code, why, sizeof(why)),
                     TETHER_ERR_EXPIRED);
    assert_int_equal(code, TETHER_EVIDENCE_NONCE_EXPIRED);
    assert_int_equal(tether_evidence_check_nonce(&ev, other_key, NULL, sizeof(other_key), NOW,
                                                 &code, why, sizeof(why)),
                     TETHER_ERR_VERIFY);
    assert_int_equal(code, TETHER_EVIDENCE_NONCE_INVALID);
    assert_string_equal(tether_evidence_code_name(code), "nonce_invalid");
    /* The fleet's previous key still accepts its nonces. */
    assert_int_equal(tether_evidence_check_nonce(&ev, other_key, f->key, sizeof(other_key), NOW,
                                                 &code, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(code, TETHER_EVIDENCE_OK);
    assert_int_equal(tether_evidence_check_nonce(&ev, f->key, NULL, 3, NOW, &code, why,
                                                 sizeof(why)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(code, TETHER_EVIDENCE_INTERNAL_ERROR);
}

/* --- the wire form ----------------------------------------------------------------- */

static char *b64(const void *data, size_t len)
{
    size_t size = TETHER_BASE64URL_ENCODED_LEN(len) + 1;
    char *out = malloc(size);

    assert_non_null(out);
    assert_int_equal(tether_base64url_encode(data, len, out, size, NULL), TETHER_OK);
    return out;
}

/* The JSON object inside a token. */
static cJSON *token_json(const char *token)
{
    uint8_t *json = malloc(TETHER_EVIDENCE_MAX_TOKEN);
    size_t len = 0;
    cJSON *obj;

    assert_non_null(json);
    assert_int_equal(tether_base64url_decode(token, strlen(token), json,
                                             TETHER_EVIDENCE_MAX_TOKEN, &len),
                     TETHER_OK);
    obj = cJSON_ParseWithLength((const char *)json, len);
    assert_non_null(obj);
    free(json);
    return obj;
}

static char *json_token(cJSON *obj)
{
    char *json = cJSON_PrintUnformatted(obj);
    char *token;

    assert_non_null(json);
    token = b64(json, strlen(json));
    free(json);
    cJSON_Delete(obj);
    return token;
}

/* The token with member set to a string value (NULL: removed). */
static char *with_member(const char *token, const char *member, const char *value)
{
    cJSON *obj = token_json(token);

    cJSON_DeleteItemFromObjectCaseSensitive(obj, member);
    if (value != NULL)
        assert_non_null(cJSON_AddStringToObject(obj, member, value));
    return json_token(obj);
}

/* The token with member set to the base64url of len bytes. */
static char *with_bytes(const char *token, const char *member, const uint8_t *data, size_t len)
{
    char *text = b64(data, len);
    char *out = with_member(token, member, text);

    free(text);
    return out;
}

static void assert_parse_refused(const char *token, tether_status_t expected, const char *part)
{
    tether_evidence_t ev;
    char why[256] = "";

    memset(&ev, 0x5a, sizeof(ev));
    assert_int_equal(tether_evidence_parse(token, strlen(token), &ev, why, sizeof(why)), expected);
    if (strstr(why, part) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", why, part);
    /* Nothing half-parsed is left behind. */
    assert_int_equal(ev.usage_len, 0);
    assert_int_equal(ev.quote.size, 0);
}

static void parser_refusals(void **state)
{
    fixture_t *f = *state;
    char *token = NULL, *bad;
    uint8_t buf[sizeof(TPM2B_ATTEST) + 2];
    size_t len;

    assert_int_equal(tether_evidence_encode(&f->ev, &token), TETHER_OK);

    /* Unknown, missing and repeated members. */
    {
        cJSON *obj = token_json(token);
        assert_non_null(cJSON_AddTrueToObject(obj, "admin"));
        bad = json_token(obj);
        assert_parse_refused(bad, TETHER_ERR_PARSE, "unknown member \"admin\"");
        free(bad);
    }
    bad = with_member(token, "quote_signature", NULL);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"quote_signature\" is missing");
    free(bad);
    {
        cJSON *obj = token_json(token);
        char *json, *dup;
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "v");
        json = cJSON_PrintUnformatted(obj);
        cJSON_Delete(obj);
        dup = malloc(strlen(json) + 16);
        assert_non_null(dup);
        sprintf(dup, "{\"v\":1,\"v\":1,%s", json + 1);
        bad = b64(dup, strlen(dup));
        assert_parse_refused(bad, TETHER_ERR_PARSE, "strict JSON");
        free(bad);
        free(dup);
        free(json);
    }

    /* Version, device id and nonce. */
    {
        cJSON *obj = token_json(token);
        cJSON_ReplaceItemInObjectCaseSensitive(obj, "v", cJSON_CreateNumber(2));
        bad = json_token(obj);
        assert_parse_refused(bad, TETHER_ERR_PARSE, "\"v\"");
        free(bad);
    }
    bad = with_member(token, "device_id", "dev 1");
    assert_parse_refused(bad, TETHER_ERR_PARSE, "device_id");
    free(bad);
    bad = with_member(token, "device_id", "");
    assert_parse_refused(bad, TETHER_ERR_PARSE, "device_id");
    free(bad);
    bad = with_bytes(token, "nonce", f->ev.nonce, TETHER_NONCE_SIZE - 1);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"nonce\" is not 72 bytes");
    free(bad);

    /* Not base64url: the whole token, and one member. */
    assert_parse_refused("eyJ2IjoxfQ==", TETHER_ERR_PARSE, "not base64url");
    assert_parse_refused("", TETHER_ERR_PARSE, "not base64url");
    bad = with_member(token, "quote", "not*base64url");
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"quote\" is not base64url");
    free(bad);
    bad = b64("[1,2]", 5);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "strict JSON");
    free(bad);

    /* Bounds: the whole token, and the usage report. */
    {
        char *big = malloc(TETHER_EVIDENCE_MAX_TOKEN + 2);
        assert_non_null(big);
        memset(big, 'A', TETHER_EVIDENCE_MAX_TOKEN + 1);
        big[TETHER_EVIDENCE_MAX_TOKEN + 1] = '\0';
        assert_parse_refused(big, TETHER_ERR_TOO_LARGE, "longer than 16384");
        free(big);
    }
    {
        uint8_t *usage = malloc(TETHER_EVIDENCE_MAX_USAGE + 1);
        assert_non_null(usage);
        memset(usage, ' ', TETHER_EVIDENCE_MAX_USAGE + 1);
        bad = with_bytes(token, "usage", usage, TETHER_EVIDENCE_MAX_USAGE + 1);
        assert_parse_refused(bad, TETHER_ERR_PARSE, "\"usage\"");
        free(bad);
        /* Exactly at the bound it parses. */
        bad = with_bytes(token, "usage", usage, TETHER_EVIDENCE_MAX_USAGE);
        {
            tether_evidence_t ev;
            assert_int_equal(tether_evidence_parse(bad, strlen(bad), &ev, NULL, 0), TETHER_OK);
            assert_int_equal(ev.usage_len, TETHER_EVIDENCE_MAX_USAGE);
        }
        free(bad);
        free(usage);
    }

    /* TPM structures: a trailing byte, a size field off by one, a size
     * beyond the buffer, a truncated structure. */
    memcpy(buf, f->ev.quote.attestationData, f->ev.quote.size);
    buf[f->ev.quote.size] = 0;
    bad = with_bytes(token, "quote", buf, f->ev.quote.size + 1u);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"quote\" is not exactly one TPMS_ATTEST");
    free(bad);
    bad = with_bytes(token, "quote", buf, f->ev.quote.size - 1u);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"quote\" is not exactly one TPMS_ATTEST");
    free(bad);
    /* qualifiedSigner's TPM2B size follows magic (4) and type (2). */
    memcpy(buf, f->ev.nv_certify.attestationData, f->ev.nv_certify.size);
    buf[7] = (uint8_t)(buf[7] + 1);
    bad = with_bytes(token, "nv_certify", buf, f->ev.nv_certify.size);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"nv_certify\" is not exactly one TPMS_ATTEST");
    free(bad);
    buf[6] = 0xff;
    buf[7] = 0xff;
    bad = with_bytes(token, "nv_certify", buf, f->ev.nv_certify.size);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"nv_certify\" is not exactly one TPMS_ATTEST");
    free(bad);
    len = 0;
    assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&f->ev.nv_signature, buf, sizeof(buf), &len),
                     TSS2_RC_SUCCESS);
    buf[len] = 0;
    bad = with_bytes(token, "nv_signature", buf, len + 1);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"nv_signature\" is not exactly one");
    free(bad);
    /* signatureR's size (after sigAlg and hash) one larger than its bytes. */
    buf[5] = (uint8_t)(buf[5] + 1);
    bad = with_bytes(token, "nv_signature", buf, len);
    assert_parse_refused(bad, TETHER_ERR_PARSE, "\"nv_signature\" is not exactly one");
    free(bad);
    free(token);
}

static void encode_refuses_what_parse_would(void **state)
{
    fixture_t *f = *state;
    tether_evidence_t ev;
    char *token = NULL;

    ev = f->ev;
    strcpy(ev.device_id, "dev/../1");
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_ERR_INVALID_ARGUMENT);
    assert_null(token);
    ev = f->ev;
    ev.device_id[0] = '\0';
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_ERR_INVALID_ARGUMENT);
    ev = f->ev;
    ev.usage_len = 0;
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_ERR_INVALID_ARGUMENT);
    ev = f->ev;
    ev.quote.size = (uint16_t)(ev.quote.size - 1);
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_ERR_INVALID_ARGUMENT);
    ev = f->ev;
    ev.nv_signature.sigAlg = 0x7777;
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_ERR_INVALID_ARGUMENT);
    assert_null(token);
    /* A full usage report still fits the token bound. */
    ev = f->ev;
    memset(ev.usage, '{', sizeof(ev.usage));
    ev.usage_len = sizeof(ev.usage);
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_OK);
    assert_true(strlen(token) <= TETHER_EVIDENCE_MAX_TOKEN);
    free(token);
}

/* Writes the seed token of tests/fuzz/corpus/fuzz_evidence and prints the
 * matching policy for tests/fuzz/fuzz_evidence.c when
 * TETHER_EVIDENCE_FUZZ_SEED names a file; does nothing otherwise. */
static void print_hex(const char *name, const uint8_t *data, size_t len)
{
    printf("static const uint8_t %s[] = {", name);
    for (size_t i = 0; i < len; i++)
        printf("%s0x%02x,", i % 12 == 0 ? "\n    " : " ", data[i]);
    printf("\n};\n");
}

static void write_fuzz_seed(void **state)
{
    fixture_t *f = *state;
    const char *path = getenv("TETHER_EVIDENCE_FUZZ_SEED");
    static const uint8_t key[TETHER_NONCE_KEY_SIZE] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                                        0x11, 0x11, 0x11, 0x11};
    uint8_t nonce[TETHER_NONCE_SIZE], ak[sizeof(TPMT_PUBLIC)];
    tether_evidence_t ev;
    char *token = NULL;
    size_t ak_len = 0;
    FILE *out;

    assert_non_null(path);
    assert_int_equal(tether_nonce_issue(key, sizeof(key), NOW, 3600, nonce), TETHER_OK);
    make_evidence_at(&f->dev, COUNTER, &f->pcrs, nonce, USAGE, &ev);
    assert_int_equal(tether_evidence_encode(&ev, &token), TETHER_OK);
    assert_non_null(out = fopen(path, "w"));
    assert_int_equal(fwrite(token, 1, strlen(token), out), strlen(token));
    assert_int_equal(fclose(out), 0);
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(&f->dev.ak_blob.public_area.publicArea, ak,
                                                 sizeof(ak), &ak_len),
                     TSS2_RC_SUCCESS);
    print_hex("ak_public", ak, ak_len);
    print_hex("ak_qualified_name", f->dev.ak_qn.name, f->dev.ak_qn.size);
    print_hex("counter_name", f->dev.counter_name.name, f->dev.counter_name.size);
    print_hex("pcr_digest", f->expected_digest.buffer, f->expected_digest.size);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(genuine_evidence_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(first_use_accepts_any_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(fingerprint_tells_retries_from_exchanges, setup, teardown),
        cmocka_unit_test_setup_teardown(fingerprint_ignores_signature_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(unsafe_clock_after_power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_bytes_break_the_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(swapped_attestations_are_the_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(another_tpm_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(other_usage_or_nonce_is_extra_data_mismatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(another_index_is_the_wrong_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(pcrs_must_match_the_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_must_not_go_back, setup, teardown),
        cmocka_unit_test_setup_teardown(resigned_edits_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_arguments_are_internal_errors, setup, teardown),
        cmocka_unit_test(code_names_are_stable),
        cmocka_unit_test_setup_teardown(clones_both_verify_and_the_counter_tells, setup, teardown),
        cmocka_unit_test(nonce_issue_and_check),
        cmocka_unit_test(nonce_key_rotation),
        cmocka_unit_test_setup_teardown(evidence_nonce_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(parser_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(encode_refuses_what_parse_would, setup, teardown),
    };
    const struct CMUnitTest seed[] = {
        cmocka_unit_test_setup_teardown(write_fuzz_seed, setup, teardown),
    };

    if (getenv("TETHER_EVIDENCE_FUZZ_SEED") != NULL)
        return cmocka_run_group_tests(seed, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
