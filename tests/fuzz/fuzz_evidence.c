/*
 * The subject_token of POST /v1/token, from any network peer: parsed
 * strictly, then checked as fleetd checks it (nonce, then verification
 * against a fixed enrolled device, with and without a last clock and on
 * first use). What parses must serialise and parse back to the same
 * evidence.
 *
 * The policy below and corpus/fuzz_evidence/fake-p256-exchange come from one
 * fake-TPM run, so the seed passes every check and mutations start from the
 * deepest path. To make them again (after a change to the wire form):
 *   TETHER_EVIDENCE_FUZZ_SEED=tests/fuzz/corpus/fuzz_evidence/fake-p256-exchange \
 *       <build>/tests/test_evidence
 * writes the token and prints these arrays.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "tether/evidence.h"
#include "tether/nonce.h"

/* The nonce key and time of the run (test_evidence.c: 0x11 x 32, NOW). */
#define FUZZ_NOW 1700000000u
#define FUZZ_KEY_BYTE 0x11

/* The device's AK (TPMT_PUBLIC, TPM marshalling), its qualified name under
 * the EK, the counter's name and the PCR digest of PCRs 0-7 (SHA-256). */
static const uint8_t ak_public[] = {
    0x00, 0x23, 0x00, 0x0b, 0x00, 0x05, 0x00, 0x72, 0x00, 0x00, 0x00, 0x10,
    0x00, 0x18, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x10, 0x00, 0x20, 0x63, 0x91,
    0xa9, 0x0a, 0xac, 0x28, 0x50, 0xb4, 0x0a, 0xdc, 0xf4, 0xa6, 0x4b, 0x87,
    0xd8, 0x3e, 0x71, 0xbd, 0xd1, 0x82, 0xa2, 0xe6, 0x2c, 0x29, 0x15, 0x8f,
    0xe2, 0x16, 0x23, 0xa2, 0x7e, 0xe2, 0x00, 0x20, 0x48, 0x84, 0x60, 0xd5,
    0x51, 0x44, 0xfe, 0xe1, 0xb8, 0x2f, 0x83, 0x8c, 0x7a, 0xd3, 0x99, 0xa1,
    0x94, 0x82, 0x03, 0x7b, 0xdd, 0x1d, 0xd0, 0x62, 0x4a, 0xe8, 0x17, 0x9e,
    0xfa, 0x22, 0xfa, 0xde,
};
static const uint8_t ak_qualified_name[] = {
    0x00, 0x0b, 0x73, 0x46, 0xb8, 0x54, 0x04, 0xc0, 0x96, 0x65, 0x69, 0x44,
    0xa2, 0x55, 0xd9, 0xee, 0x63, 0x17, 0x48, 0x24, 0xc2, 0x2d, 0xf0, 0x88,
    0xf9, 0xe2, 0xa5, 0x08, 0xf6, 0x99, 0xbd, 0xe5, 0xb3, 0x8e,
};
static const uint8_t counter_name[] = {
    0x00, 0x0b, 0xda, 0xd3, 0x42, 0xd0, 0x1b, 0x65, 0x1e, 0xd7, 0x17, 0x62,
    0x78, 0xfc, 0x1c, 0xf9, 0x29, 0x4d, 0x77, 0xdb, 0x41, 0xc9, 0x92, 0xcd,
    0x4a, 0xa1, 0x0d, 0x7a, 0x83, 0xae, 0x16, 0x60, 0x0d, 0x6b,
};
static const uint8_t pcr_digest[] = {
    0x53, 0x41, 0xe6, 0xb2, 0x64, 0x69, 0x79, 0xa7, 0x0e, 0x57, 0x65, 0x30,
    0x07, 0xa1, 0xf3, 0x10, 0x16, 0x94, 0x21, 0xec, 0x9b, 0xdd, 0x9f, 0x1a,
    0x56, 0x48, 0xf7, 0x5a, 0xde, 0x00, 0x5a, 0xf1,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void name_of(const uint8_t *bytes, size_t len, TPM2B_NAME *name)
{
    memset(name, 0, sizeof(*name));
    name->size = (uint16_t)len;
    memcpy(name->name, bytes, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tether_evidence_t ev, again;
    static TPMT_PUBLIC ak;
    static TPM2B_NAME ak_qn, counter;
    static TPM2B_DIGEST digest;
    static uint8_t key[TETHER_NONCE_KEY_SIZE];
    static int ready;
    tether_evidence_policy_t policy;
    tether_evidence_result_t result;
    tether_evidence_code_t code;
    TPMS_CLOCK_INFO last;
    uint8_t fingerprint[32];
    char why[256];
    char *token = NULL;

    if (!ready) {
        size_t offset = 0;
        if (Tss2_MU_TPMT_PUBLIC_Unmarshal(ak_public, sizeof(ak_public), &offset, &ak) !=
            TSS2_RC_SUCCESS)
            abort();
        name_of(ak_qualified_name, sizeof(ak_qualified_name), &ak_qn);
        name_of(counter_name, sizeof(counter_name), &counter);
        digest.size = sizeof(pcr_digest);
        memcpy(digest.buffer, pcr_digest, sizeof(pcr_digest));
        memset(key, FUZZ_KEY_BYTE, sizeof(key));
        ready = 1;
    }

    if (tether_evidence_parse((const char *)data, size, &ev, why, sizeof(why)) != TETHER_OK)
        return 0;
    (void)tether_evidence_check_nonce(&ev, key, NULL, sizeof(key), FUZZ_NOW, &code, why,
                                      sizeof(why));
    (void)tether_evidence_fingerprint(&ev, fingerprint);

    memset(&policy, 0, sizeof(policy));
    policy.ak = &ak;
    policy.ak_qualified_name = &ak_qn;
    policy.counter_name = &counter;
    policy.pcr_selection.count = 1;
    policy.pcr_selection.pcrSelections[0].hash = TPM2_ALG_SHA256;
    policy.pcr_selection.pcrSelections[0].sizeofSelect = 3;
    policy.pcr_selection.pcrSelections[0].pcrSelect[0] = 0xff;
    policy.pcr_digests = &digest;
    policy.pcr_digest_count = 1;
    if (tether_evidence_verify(&ev, &policy, &result, &code, why, sizeof(why)) == TETHER_OK) {
        /* Accepted: the next exchange must not accept the same clock. */
        last = result.clock;
        policy.last_clock = &last;
        if (tether_evidence_verify(&ev, &policy, &result, &code, why, sizeof(why)) !=
                TETHER_ERR_VERIFY ||
            code != TETHER_EVIDENCE_CLOCK_REGRESSION)
            __builtin_trap();
    }
    /* First use, with a last clock from another boot. */
    memset(&last, 0, sizeof(last));
    last.resetCount = 1;
    last.clock = 1000000;
    last.safe = TPM2_YES;
    policy.last_clock = &last;
    policy.pcr_digests = NULL;
    policy.pcr_digest_count = 0;
    (void)tether_evidence_verify(&ev, &policy, &result, &code, why, sizeof(why));

    if (tether_evidence_encode(&ev, &token) != TETHER_OK ||
        tether_evidence_parse(token, strlen(token), &again, why, sizeof(why)) != TETHER_OK ||
        memcmp(&ev, &again, sizeof(ev)) != 0)
        __builtin_trap();
    free(token);
    return 0;
}
