#include "tether/evidence.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <tss2/tss2_mu.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/json_strict.h"
#include "tether/tpm2_public.h"

/* The JSON text inside a token of TETHER_EVIDENCE_MAX_TOKEN characters. */
#define MAX_JSON TETHER_BASE64URL_DECODED_LEN(TETHER_EVIDENCE_MAX_TOKEN)
#define MAX_ATTEST sizeof(((TPM2B_ATTEST *)0)->attestationData)
#define MAX_SIGNATURE sizeof(TPMT_SIGNATURE) /* a marshalled signature is never larger */

static const char *const code_names[TETHER_EVIDENCE_CODE_COUNT] = {
    [TETHER_EVIDENCE_OK] = "ok",
    [TETHER_EVIDENCE_MALFORMED] = "malformed_evidence",
    [TETHER_EVIDENCE_NONCE_INVALID] = "nonce_invalid",
    [TETHER_EVIDENCE_NONCE_EXPIRED] = "nonce_expired",
    [TETHER_EVIDENCE_BAD_SIGNATURE] = "bad_signature",
    [TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE] = "wrong_attestation_type",
    [TETHER_EVIDENCE_WRONG_SIGNER] = "wrong_signer",
    [TETHER_EVIDENCE_EXTRA_DATA_MISMATCH] = "extra_data_mismatch",
    [TETHER_EVIDENCE_WRONG_COUNTER] = "wrong_counter",
    [TETHER_EVIDENCE_PCR_MISMATCH] = "pcr_mismatch",
    [TETHER_EVIDENCE_CLOCK_UNSAFE] = "clock_unsafe",
    [TETHER_EVIDENCE_CLOCK_REGRESSION] = "clock_regression",
    [TETHER_EVIDENCE_INCONSISTENT] = "inconsistent_attestations",
    [TETHER_EVIDENCE_INTERNAL_ERROR] = "internal_error",
};

const char *tether_evidence_code_name(tether_evidence_code_t code)
{
    if ((unsigned)code >= TETHER_EVIDENCE_CODE_COUNT)
        return code_names[TETHER_EVIDENCE_INTERNAL_ERROR];
    return code_names[code];
}

/* --- wire form ----------------------------------------------------------------- */

tether_status_t tether_evidence_qualifying(const uint8_t nonce[TETHER_NONCE_SIZE],
                                           const uint8_t *usage, size_t usage_len,
                                           uint8_t out[TETHER_EVIDENCE_QUALIFYING_SIZE])
{
    uint8_t usage_hash[32];
    mbedtls_sha256_context ctx;
    int ok;

    if (nonce == NULL || out == NULL || (usage == NULL && usage_len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_sha256_init(&ctx);
    ok = mbedtls_sha256_ret(usage, usage_len, usage_hash, 0) == 0 &&
         mbedtls_sha256_starts_ret(&ctx, 0) == 0 &&
         mbedtls_sha256_update_ret(&ctx, nonce, TETHER_NONCE_SIZE) == 0 &&
         mbedtls_sha256_update_ret(&ctx, usage_hash, sizeof(usage_hash)) == 0 &&
         mbedtls_sha256_finish_ret(&ctx, out) == 0;
    mbedtls_sha256_free(&ctx);
    return ok ? TETHER_OK : TETHER_ERR_CRYPTO;
}

/* Device ids travel into log lines and database keys: a conservative
 * alphabet keeps them inert there. The fleet checks its own format later. */
static bool device_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > TETHER_EVIDENCE_MAX_DEVICE_ID)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A TPMS_ATTEST as signed: it must unmarshal to its last byte. */
static bool attest_unmarshal(const TPM2B_ATTEST *attest, TPMS_ATTEST *out)
{
    size_t offset = 0;

    memset(out, 0, sizeof(*out));
    return attest->size > 0 && attest->size <= MAX_ATTEST &&
           Tss2_MU_TPMS_ATTEST_Unmarshal(attest->attestationData, attest->size, &offset, out) ==
               TSS2_RC_SUCCESS &&
           offset == attest->size;
}

static bool signature_marshal(const TPMT_SIGNATURE *sig, uint8_t *buf, size_t *len)
{
    *len = 0;
    return Tss2_MU_TPMT_SIGNATURE_Marshal(sig, buf, MAX_SIGNATURE, len) == TSS2_RC_SUCCESS;
}

tether_status_t tether_evidence_encode(const tether_evidence_t *ev, char **token)
{
    uint8_t sig[MAX_SIGNATURE];
    size_t sig_len, json_len, token_len;
    TPMS_ATTEST parsed;
    cJSON *obj = NULL;
    char *json = NULL;
    tether_status_t rc;
    int bad = 0;

    if (ev == NULL || token == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *token = NULL;
    if (!device_id_valid(ev->device_id, strnlen(ev->device_id, sizeof(ev->device_id))) ||
        ev->usage_len == 0 || ev->usage_len > TETHER_EVIDENCE_MAX_USAGE ||
        !attest_unmarshal(&ev->nv_certify, &parsed) || !attest_unmarshal(&ev->quote, &parsed))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((obj = cJSON_CreateObject()) == NULL)
        return TETHER_ERR_NO_MEMORY;
    bad |= cJSON_AddNumberToObject(obj, "v", TETHER_EVIDENCE_VERSION) == NULL;
    bad |= cJSON_AddStringToObject(obj, "device_id", ev->device_id) == NULL;
    bad |= tether_base64url_add_member(obj, "nonce", ev->nonce, sizeof(ev->nonce)) != TETHER_OK;
    bad |= tether_base64url_add_member(obj, "usage", ev->usage, ev->usage_len) != TETHER_OK;
    bad |= tether_base64url_add_member(obj, "nv_certify", ev->nv_certify.attestationData,
                                       ev->nv_certify.size) != TETHER_OK;
    bad |= !signature_marshal(&ev->nv_signature, sig, &sig_len) ||
           tether_base64url_add_member(obj, "nv_signature", sig, sig_len) != TETHER_OK;
    bad |= tether_base64url_add_member(obj, "quote", ev->quote.attestationData, ev->quote.size) !=
           TETHER_OK;
    bad |= !signature_marshal(&ev->quote_signature, sig, &sig_len) ||
           tether_base64url_add_member(obj, "quote_signature", sig, sig_len) != TETHER_OK;
    if (bad) {
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    if ((json = cJSON_PrintUnformatted(obj)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    json_len = strlen(json);
    if (json_len > MAX_JSON) {
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    token_len = TETHER_BASE64URL_ENCODED_LEN(json_len);
    if ((*token = malloc(token_len + 1)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    rc = tether_base64url_encode((const uint8_t *)json, json_len, *token, token_len + 1, NULL);
out:
    if (rc != TETHER_OK) {
        free(*token);
        *token = NULL;
    }
    free(json);
    cJSON_Delete(obj);
    return rc;
}

static const char *const known_members[] = {
    "v",          "device_id",    "nonce", "usage",
    "nv_certify", "nv_signature", "quote", "quote_signature",
};

static bool is_known(const char *member)
{
    for (size_t i = 0; i < sizeof(known_members) / sizeof(known_members[0]); i++)
        if (strcmp(member, known_members[i]) == 0)
            return true;
    return false;
}

static tether_status_t get_attest(const cJSON *obj, const char *member, TPM2B_ATTEST *attest,
                                  char *why, size_t why_size)
{
    TPMS_ATTEST parsed;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = tether_base64url_get_member(obj, member, attest->attestationData, MAX_ATTEST, &len,
                                          why, why_size)) != TETHER_OK)
        return rc;
    attest->size = (uint16_t)len;
    if (!attest_unmarshal(attest, &parsed))
        return tether_explain(
            TETHER_ERR_PARSE, why, why_size,
            "\"%s\" is not exactly one TPMS_ATTEST (a size field or the length is off)", member);
    return TETHER_OK;
}

static tether_status_t get_signature(const cJSON *obj, const char *member, TPMT_SIGNATURE *sig,
                                     char *why, size_t why_size)
{
    uint8_t buf[MAX_SIGNATURE];
    size_t len = 0, offset = 0;
    tether_status_t rc;

    if ((rc = tether_base64url_get_member(obj, member, buf, sizeof(buf), &len, why, why_size)) !=
        TETHER_OK)
        return rc;
    if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(buf, len, &offset, sig) != TSS2_RC_SUCCESS ||
        offset != len)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "\"%s\" is not exactly one TPMT_SIGNATURE", member);
    return TETHER_OK;
}

tether_status_t tether_evidence_parse(const char *token, size_t len, tether_evidence_t *ev,
                                      char *why, size_t why_size)
{
    uint8_t *json = NULL;
    size_t json_len = 0, n = 0;
    cJSON *obj = NULL;
    const cJSON *item;
    tether_status_t rc;

    if ((token == NULL && len > 0) || ev == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(ev, 0, sizeof(*ev));
    if (len > TETHER_EVIDENCE_MAX_TOKEN) {
        rc = tether_explain(TETHER_ERR_TOO_LARGE, why, why_size,
                            "the evidence is longer than %d characters", TETHER_EVIDENCE_MAX_TOKEN);
        goto out;
    }
    if ((json = malloc(MAX_JSON)) == NULL) {
        rc = tether_explain(TETHER_ERR_NO_MEMORY, why, why_size, "out of memory");
        goto out;
    }
    if (len == 0 ||
        tether_base64url_decode(token, len, json, MAX_JSON, &json_len) != TETHER_OK) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "the evidence is not base64url");
        goto out;
    }
    if (tether_json_parse_object((const char *)json, json_len, &obj) != TETHER_OK) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "the evidence is not one strict JSON object");
        goto out;
    }
    cJSON_ArrayForEach(item, obj)
    {
        if (!is_known(item->string)) {
            rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "unknown member \"%.40s\"",
                                item->string);
            goto out;
        }
    }
    item = cJSON_GetObjectItemCaseSensitive(obj, "v");
    if (!cJSON_IsNumber(item) || item->valuedouble != (double)TETHER_EVIDENCE_VERSION) {
        rc =
            tether_explain(TETHER_ERR_PARSE, why, why_size,
                           "\"v\" is missing or not %d (this fleet reads evidence version %d only)",
                           TETHER_EVIDENCE_VERSION, TETHER_EVIDENCE_VERSION);
        goto out;
    }
    item = cJSON_GetObjectItemCaseSensitive(obj, "device_id");
    if (!cJSON_IsString(item) ||
        !device_id_valid(item->valuestring, strlen(item->valuestring))) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "\"device_id\" is missing or not 1 to %d characters of [A-Za-z0-9._-]",
                            TETHER_EVIDENCE_MAX_DEVICE_ID);
        goto out;
    }
    memcpy(ev->device_id, item->valuestring, strlen(item->valuestring) + 1);
    if ((rc = tether_base64url_get_member(obj, "nonce", ev->nonce, sizeof(ev->nonce), &n, why,
                                          why_size)) != TETHER_OK)
        goto out;
    if (n != TETHER_NONCE_SIZE) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "\"nonce\" is not %d bytes",
                            TETHER_NONCE_SIZE);
        goto out;
    }
    if ((rc = tether_base64url_get_member(obj, "usage", ev->usage, sizeof(ev->usage),
                                          &ev->usage_len, why, why_size)) != TETHER_OK ||
        (rc = get_attest(obj, "nv_certify", &ev->nv_certify, why, why_size)) != TETHER_OK ||
        (rc = get_signature(obj, "nv_signature", &ev->nv_signature, why, why_size)) != TETHER_OK ||
        (rc = get_attest(obj, "quote", &ev->quote, why, why_size)) != TETHER_OK ||
        (rc = get_signature(obj, "quote_signature", &ev->quote_signature, why, why_size)) !=
            TETHER_OK)
        goto out;
    rc = TETHER_OK;
out:
    cJSON_Delete(obj);
    free(json);
    if (rc != TETHER_OK)
        memset(ev, 0, sizeof(*ev));
    return rc;
}

tether_status_t tether_evidence_fingerprint(const tether_evidence_t *ev, uint8_t out[32])
{
    const uint8_t *part[4];
    size_t part_len[4];
    mbedtls_sha256_context ctx;
    int ok;

    if (ev == NULL || out == NULL || ev->nv_certify.size > MAX_ATTEST ||
        ev->quote.size > MAX_ATTEST || ev->usage_len > sizeof(ev->usage))
        return TETHER_ERR_INVALID_ARGUMENT;
    /* What the TPM attested and what it was asked to cover; never the
     * signatures: ECDSA signatures are malleable (s and n - s both verify,
     * and a TPM signs with a fresh k each time), so two spellings of one
     * exchange must not look like two exchanges. */
    part[0] = ev->nv_certify.attestationData;
    part_len[0] = ev->nv_certify.size;
    part[1] = ev->quote.attestationData;
    part_len[1] = ev->quote.size;
    part[2] = ev->nonce;
    part_len[2] = sizeof(ev->nonce);
    part[3] = ev->usage;
    part_len[3] = ev->usage_len;
    mbedtls_sha256_init(&ctx);
    ok = mbedtls_sha256_starts_ret(&ctx, 0) == 0;
    /* Each part with its length, so no two splits of one byte string agree. */
    for (size_t i = 0; ok && i < 4; i++) {
        const uint8_t len_be[2] = {(uint8_t)(part_len[i] >> 8), (uint8_t)part_len[i]};
        ok = mbedtls_sha256_update_ret(&ctx, len_be, sizeof(len_be)) == 0 &&
             mbedtls_sha256_update_ret(&ctx, part[i], part_len[i]) == 0;
    }
    ok = ok && mbedtls_sha256_finish_ret(&ctx, out) == 0;
    mbedtls_sha256_free(&ctx);
    return ok ? TETHER_OK : TETHER_ERR_CRYPTO;
}

/* --- names ----------------------------------------------------------------------- */

tether_status_t tether_evidence_ak_qualified_name(const TPMT_PUBLIC *ek, const TPMT_PUBLIC *ak,
                                                  TPM2B_NAME *qualified_name)
{
    TPM2B_NAME ek_qn;
    tether_status_t rc;

    if (ek == NULL || ak == NULL || qualified_name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT, ek, &ek_qn)) != TETHER_OK)
        return rc;
    return tether_tpm2_qualified_name(&ek_qn, 0, ak, qualified_name);
}

tether_status_t tether_nv_public_name(const TPMS_NV_PUBLIC *nv, TPM2B_NAME *name)
{
    uint8_t buf[sizeof(TPMS_NV_PUBLIC)];
    const mbedtls_md_info_t *md;
    size_t offset = 0;

    if (nv == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(name, 0, sizeof(*name));
    md = mbedtls_md_info_from_type((mbedtls_md_type_t)tether_tpm2_md_type(nv->nameAlg));
    if (md == NULL)
        return TETHER_ERR_UNSUPPORTED;
    if (Tss2_MU_TPMS_NV_PUBLIC_Marshal(nv, buf, sizeof(buf), &offset) != TSS2_RC_SUCCESS)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (mbedtls_md(md, buf, offset, name->name + 2) != 0)
        return TETHER_ERR_CRYPTO;
    name->name[0] = (uint8_t)(nv->nameAlg >> 8);
    name->name[1] = (uint8_t)nv->nameAlg;
    name->size = (uint16_t)(2 + mbedtls_md_get_size(md));
    return TETHER_OK;
}

tether_status_t tether_evidence_counter_name(const TPMS_NV_PUBLIC *counter, TPM2B_NAME *name)
{
    TPMS_NV_PUBLIC written;

    if (counter == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    written = *counter;
    written.attributes |= TPMA_NV_WRITTEN;
    return tether_nv_public_name(&written, name);
}

/* --- checks ---------------------------------------------------------------------- */

tether_status_t tether_evidence_check_nonce(const tether_evidence_t *ev, const uint8_t *key,
                                            const uint8_t *previous_key, size_t key_len,
                                            uint64_t now, tether_evidence_code_t *code, char *why,
                                            size_t why_size)
{
    tether_status_t rc;

    if (code == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *code = TETHER_EVIDENCE_INTERNAL_ERROR;
    if (ev == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_nonce_check_rotating(key, previous_key, key_len, ev->nonce, sizeof(ev->nonce),
                                     now);
    switch (rc) {
    case TETHER_OK:
        *code = TETHER_EVIDENCE_OK;
        return TETHER_OK;
    case TETHER_ERR_EXPIRED:
        *code = TETHER_EVIDENCE_NONCE_EXPIRED;
        return tether_explain(rc, why, why_size, "the nonce has expired: ask for a new challenge");
    case TETHER_ERR_PARSE:
    case TETHER_ERR_VERIFY:
        *code = TETHER_EVIDENCE_NONCE_INVALID;
        return tether_explain(rc, why, why_size, "the nonce was not issued by this fleet");
    default:
        return tether_explain(rc, why, why_size, "the nonce cannot be checked: %s",
                              tether_strerror(rc));
    }
}

static bool names_equal(const TPM2B_NAME *a, const TPM2B_NAME *b)
{
    return a->size == b->size && a->size <= sizeof(a->name) &&
           memcmp(a->name, b->name, a->size) == 0;
}

static uint8_t select_byte(const TPMS_PCR_SELECTION *s, size_t i)
{
    return i < s->sizeofSelect && i < sizeof(s->pcrSelect) ? s->pcrSelect[i] : 0;
}

/* Same banks in the same order (the digest runs over them in that order)
 * and the same PCRs; a selection of 3 or 4 bytes is the same set when the
 * fourth is zero. */
static bool selections_equal(const TPML_PCR_SELECTION *a, const TPML_PCR_SELECTION *b)
{
    if (a->count != b->count || a->count > TPM2_NUM_PCR_BANKS)
        return false;
    for (uint32_t i = 0; i < a->count; i++) {
        const TPMS_PCR_SELECTION *x = &a->pcrSelections[i], *y = &b->pcrSelections[i];

        if (x->hash != y->hash)
            return false;
        for (size_t j = 0; j < TPM2_PCR_SELECT_MAX; j++)
            if (select_byte(x, j) != select_byte(y, j))
                return false;
    }
    return true;
}

static bool digest_accepted(const TPM2B_DIGEST *digest, const tether_evidence_policy_t *policy)
{
    if (policy->pcr_digest_count == 0)
        return true;
    for (size_t i = 0; i < policy->pcr_digest_count; i++) {
        const TPM2B_DIGEST *ok = &policy->pcr_digests[i];

        if (ok->size == digest->size && ok->size <= sizeof(ok->buffer) &&
            memcmp(ok->buffer, digest->buffer, ok->size) == 0)
            return true;
    }
    return false;
}

/* TPM2 Part 2, TPMS_CLOCK_INFO: resetCount counts TPM Resets; restartCount
 * counts Restarts and Resumes since the last Reset, which sets it to 0;
 * clock only goes up between them. */
static bool clock_regressed(const TPMS_CLOCK_INFO *now, const TPMS_CLOCK_INFO *last)
{
    if (now->resetCount != last->resetCount)
        return now->resetCount < last->resetCount;
    if (now->restartCount != last->restartCount)
        return now->restartCount < last->restartCount;
    return now->clock <= last->clock;
}

/* TPM2 Part 1, 36 (Clock): a TPM Reset without an orderly TPM2_Shutdown
 * (a power loss) sets safe to NO until the TPM next writes Clock to NV,
 * which may take over an hour; within one Reset safe only goes from NO to
 * YES. So an unsafe clock is what a power loss looks like when resetCount
 * went up since the last accepted exchange, or when that exchange was on
 * the same Reset with its clock unsafe already. Called after
 * clock_regressed() held, so resetCount is not below last's. Without a
 * last exchange nothing shows a Reset: refused. */
static bool clock_safe_enough(const TPMS_CLOCK_INFO *now, const TPMS_CLOCK_INFO *last)
{
    if (now->safe == TPM2_YES)
        return true;
    if (last == NULL)
        return false;
    if (now->resetCount != last->resetCount)
        return now->resetCount > last->resetCount;
    return last->safe != TPM2_YES;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

#define REFUSE(c, ...)                                                                             \
    do {                                                                                           \
        *code = (c);                                                                               \
        rc = tether_explain(TETHER_ERR_VERIFY, why, why_size, __VA_ARGS__);                        \
        goto out;                                                                                  \
    } while (0)

tether_status_t tether_evidence_verify(const tether_evidence_t *ev,
                                       const tether_evidence_policy_t *policy,
                                       tether_evidence_result_t *result,
                                       tether_evidence_code_t *code, char *why, size_t why_size)
{
    uint8_t qualifying[TETHER_EVIDENCE_QUALIFYING_SIZE];
    TPMS_ATTEST nv, quote;
    const TPMS_ATTEST *both[2] = {&nv, &quote};
    static const char *const what[2] = {"NV certification", "quote"};
    bool retry;
    tether_status_t rc;

    if (result == NULL || code == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(result, 0, sizeof(*result));
    *code = TETHER_EVIDENCE_INTERNAL_ERROR;
    if (ev == NULL || policy == NULL || policy->ak == NULL || policy->ak_qualified_name == NULL ||
        policy->counter_name == NULL ||
        (policy->pcr_digests == NULL && policy->pcr_digest_count > 0) ||
        ev->usage_len > sizeof(ev->usage) || ev->nv_certify.size > MAX_ATTEST ||
        ev->quote.size > MAX_ATTEST)
        return tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                              "evidence verification called without evidence or a complete policy");

    /* The AK is restricted: it signs only what the TPM itself produced, so
     * everything below is the TPM's word once these hold. */
    if (tether_tpm2_verify_signature(policy->ak, ev->nv_certify.attestationData,
                                     ev->nv_certify.size, &ev->nv_signature) != TETHER_OK)
        REFUSE(TETHER_EVIDENCE_BAD_SIGNATURE,
               "the NV certification is not signed by the device's enrolled AK");
    if (tether_tpm2_verify_signature(policy->ak, ev->quote.attestationData, ev->quote.size,
                                     &ev->quote_signature) != TETHER_OK)
        REFUSE(TETHER_EVIDENCE_BAD_SIGNATURE,
               "the quote is not signed by the device's enrolled AK");

    if (!attest_unmarshal(&ev->nv_certify, &nv) || !attest_unmarshal(&ev->quote, &quote))
        REFUSE(TETHER_EVIDENCE_MALFORMED, "an attestation is not one TPMS_ATTEST");
    /* Only the TPM writes this magic into what it signs (TPM2 Part 1, 36.2). */
    if (nv.magic != TPM2_GENERATED_VALUE || quote.magic != TPM2_GENERATED_VALUE)
        REFUSE(TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE,
               "an attestation does not carry TPM_GENERATED_VALUE");
    if (nv.type != TPM2_ST_ATTEST_NV)
        REFUSE(TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE,
               "\"nv_certify\" is of attestation type 0x%04x, not TPM2_NV_Certify's", nv.type);
    if (quote.type != TPM2_ST_ATTEST_QUOTE)
        REFUSE(TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE,
               "\"quote\" is of attestation type 0x%04x, not TPM2_Quote's", quote.type);
    /* The whole counter, or the value read is not the counter's. */
    if (nv.attested.nv.offset != 0 || nv.attested.nv.nvContents.size != 8)
        REFUSE(TETHER_EVIDENCE_WRONG_ATTESTATION_TYPE,
               "the NV certification covers %u bytes at offset %u, not the whole 8-byte counter",
               (unsigned)nv.attested.nv.nvContents.size, (unsigned)nv.attested.nv.offset);

    for (int i = 0; i < 2; i++) {
        if (!names_equal(&both[i]->qualifiedSigner, policy->ak_qualified_name))
            REFUSE(TETHER_EVIDENCE_WRONG_SIGNER,
                   "the %s names another signer than the enrolled AK under the enrolled EK",
                   what[i]);
    }

    if ((rc = tether_evidence_qualifying(ev->nonce, ev->usage, ev->usage_len, qualifying)) !=
        TETHER_OK) {
        rc = tether_explain(rc, why, why_size, "cannot compute the qualifying data: %s",
                            tether_strerror(rc));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        if (both[i]->extraData.size != sizeof(qualifying) ||
            !tether_ct_equal(both[i]->extraData.buffer, qualifying, sizeof(qualifying)))
            REFUSE(TETHER_EVIDENCE_EXTRA_DATA_MISMATCH,
                   "the %s was not made over this nonce and usage report", what[i]);
    }

    if (!names_equal(&nv.attested.nv.indexName, policy->counter_name))
        REFUSE(TETHER_EVIDENCE_WRONG_COUNTER,
               "the NV certification is of another NV index (or other attributes) than the "
               "counter enrolled for this device");

    if (!selections_equal(&quote.attested.quote.pcrSelect, &policy->pcr_selection))
        REFUSE(TETHER_EVIDENCE_PCR_MISMATCH,
               "the quote covers other PCRs than the policy selects");
    if (!digest_accepted(&quote.attested.quote.pcrDigest, policy))
        REFUSE(TETHER_EVIDENCE_PCR_MISMATCH,
               "the PCR digest is none of the %zu the policy accepts: the device booted other "
               "software",
               policy->pcr_digest_count);

    /* Both were made between one nonce and one request: the same boot of the
     * same firmware. */
    if (nv.clockInfo.resetCount != quote.clockInfo.resetCount ||
        nv.clockInfo.restartCount != quote.clockInfo.restartCount ||
        nv.firmwareVersion != quote.firmwareVersion)
        REFUSE(TETHER_EVIDENCE_INCONSISTENT,
               "the NV certification and the quote come from different boots or firmware");

    /* From here every signature and every other check held: the result is
     * what the TPM attested, and stays filled on a clock regression for the
     * fleet's clone record (evidence.h). */
    result->counter = get_be64(nv.attested.nv.nvContents.buffer);
    result->clock = quote.clockInfo.clock >= nv.clockInfo.clock ? quote.clockInfo : nv.clockInfo;
    result->pcr_digest = quote.attested.quote.pcrDigest;
    result->firmware_version = quote.firmwareVersion;

    /* A retry carries the clock of the exchange last_clock came from: both
     * clock rules held when that exchange was accepted. */
    retry = policy->last_clock != NULL && policy->retry_of_last;
    if (policy->last_clock != NULL && !retry) {
        for (int i = 0; i < 2; i++) {
            const TPMS_CLOCK_INFO *c = &both[i]->clockInfo;

            if (clock_regressed(c, policy->last_clock))
                REFUSE(TETHER_EVIDENCE_CLOCK_REGRESSION,
                       "the %s's clock (reset %u, restart %u, %llu ms) is not after the last "
                       "accepted exchange's (reset %u, restart %u, %llu ms)",
                       what[i], c->resetCount, c->restartCount, (unsigned long long)c->clock,
                       policy->last_clock->resetCount, policy->last_clock->restartCount,
                       (unsigned long long)policy->last_clock->clock);
        }
    }
    for (int i = 0; i < 2 && !retry; i++) {
        if (!clock_safe_enough(&both[i]->clockInfo, policy->last_clock))
            REFUSE(TETHER_EVIDENCE_CLOCK_UNSAFE,
                   "the %s's clock is not safe and no TPM Reset since the last accepted "
                   "exchange explains it (a clock that went back?)",
                   what[i]);
    }

    *code = TETHER_EVIDENCE_OK;
    rc = TETHER_OK;
out:
    tether_wipe(qualifying, sizeof(qualifying));
    if (rc != TETHER_OK && *code != TETHER_EVIDENCE_CLOCK_REGRESSION)
        memset(result, 0, sizeof(*result));
    return rc;
}
