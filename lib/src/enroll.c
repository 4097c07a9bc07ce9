#include "tether/enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <tss2/tss2_mu.h>

#include "tether/json_strict.h"
#include "tether/attest.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/mbedtls_bridge.h"
#include "tether/tpm2_public.h"

/* Largest marshalled structure carried (TPM2B_PUBLIC of an RSA key). */
#define MAX_STRUCT 4096

void tether_enroll_request_wipe(tether_enroll_request_t *req)
{
    tether_wipe(req, sizeof(*req));
}

/* --- JSON form ---------------------------------------------------------------- */

/* Each TPM structure travels as the base64url of its TPM marshalling. */
#define MARSHAL(type, value, buf, len)                                                  \
    (Tss2_MU_##type##_Marshal((value), (buf), MAX_STRUCT, (len)) == TSS2_RC_SUCCESS ? 0 \
                                                                                    : -1)

tether_status_t tether_enroll_request_to_json(const tether_enroll_request_t *req, char **json)
{
    uint8_t buf[MAX_STRUCT];
    size_t len;
    cJSON *obj;
    int bad = 0;

    if (req == NULL || json == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *json = NULL;
    if ((obj = cJSON_CreateObject()) == NULL)
        return TETHER_ERR_NO_MEMORY;
#define ADD_STRUCT(member, type, value)                                                            \
    len = 0;                                                                                       \
    bad |= MARSHAL(type, value, buf, &len) ||                                                      \
           tether_base64url_add_member(obj, member, buf, len) != TETHER_OK
    ADD_STRUCT("ek_public", TPM2B_PUBLIC, &req->ek_public);
    bad |= req->ek_cert_len == 0 || tether_base64url_add_member(obj, "ek_certificate", req->ek_cert,
                                                                req->ek_cert_len) != TETHER_OK;
    ADD_STRUCT("ak_public", TPM2B_PUBLIC, &req->ak_public);
    ADD_STRUCT("device_key_public", TPM2B_PUBLIC, &req->device_key_public);
    ADD_STRUCT("device_key_certify", TPM2B_ATTEST, &req->device_key_certify);
    ADD_STRUCT("device_key_signature", TPMT_SIGNATURE, &req->device_key_signature);
    ADD_STRUCT("counter_public", TPM2B_NV_PUBLIC, &req->counter_public);
#undef ADD_STRUCT
    if (req->name[0] != '\0')
        bad |= cJSON_AddStringToObject(obj, "name", req->name) == NULL;
    if (req->bootstrap_token[0] != '\0')
        bad |= cJSON_AddStringToObject(obj, "bootstrap_token", req->bootstrap_token) == NULL;
    if (!bad)
        *json = cJSON_PrintUnformatted(obj);
    tether_wipe(buf, sizeof(buf));
    /* The tree holds the bootstrap token: wipe its string before freeing. */
    {
        cJSON *token = cJSON_GetObjectItemCaseSensitive(obj, "bootstrap_token");
        if (cJSON_IsString(token))
            tether_wipe(token->valuestring, strlen(token->valuestring));
    }
    cJSON_Delete(obj);
    if (bad)
        return TETHER_ERR_INVALID_ARGUMENT;
    return *json != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;
}

static const char *const known_members[] = {
    "ek_public",          "ek_certificate",       "ak_public",      "device_key_public",
    "device_key_certify", "device_key_signature", "counter_public", "name",
    "bootstrap_token",
};

static int is_known(const char *member)
{
    for (size_t i = 0; i < sizeof(known_members) / sizeof(known_members[0]); i++)
        if (strcmp(member, known_members[i]) == 0)
            return 1;
    return 0;
}

/* Copies an optional bounded text member. */
static tether_status_t get_text(const cJSON *obj, const char *member, char *out, size_t max,
                                char *why, size_t why_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, member);
    size_t len;

    out[0] = '\0';
    if (item == NULL)
        return TETHER_OK;
    if (!cJSON_IsString(item))
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "\"%s\" is not a string", member);
    len = strlen(item->valuestring);
    if (len > max)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "\"%s\" is longer than %zu bytes",
                              member, max);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)item->valuestring[i] < 0x20 || item->valuestring[i] == 0x7f)
            return tether_explain(TETHER_ERR_PARSE, why, why_size,
                                  "\"%s\" holds a control character", member);
    }
    memcpy(out, item->valuestring, len + 1);
    return TETHER_OK;
}

#define UNMARSHAL(type, buf, len, value, offset)                                            \
    (Tss2_MU_##type##_Unmarshal((buf), (len), (offset), (value)) == TSS2_RC_SUCCESS &&      \
     *(offset) == (len))

/* tss2-mu does not check a TPM2B's size field against the structure inside
 * it; one text must have one meaning, so the size must be exact. */
static int tpm2b_size_exact(const uint8_t *buf, size_t len)
{
    return len >= 2 && ((size_t)buf[0] << 8 | buf[1]) + 2 == len;
}

tether_status_t tether_enroll_request_from_json(const char *text, size_t len,
                                                tether_enroll_request_t *req, char *why,
                                                size_t why_size)
{
    uint8_t buf[MAX_STRUCT];
    size_t n, offset;
    cJSON *obj = NULL;
    const cJSON *item;
    tether_status_t rc;

    if (text == NULL || req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(req, 0, sizeof(*req));
    if (len > TETHER_ENROLL_MAX_JSON) {
        rc = tether_explain(TETHER_ERR_TOO_LARGE, why, why_size, "request is larger than %d bytes",
                            TETHER_ENROLL_MAX_JSON);
        goto out;
    }
    if (tether_json_parse_object(text, len, &obj) != TETHER_OK) {
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size,
                            "request is not one strict JSON object");
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
#define GET_STRUCT(member, type, value)                                                            \
    if ((rc = tether_base64url_get_member(obj, member, buf, sizeof(buf), &n, why, why_size)) !=    \
        TETHER_OK)                                                                                 \
        goto out;                                                                                  \
    offset = 0;                                                                                    \
    if (!UNMARSHAL(type, buf, n, value, &offset) ||                                                \
        (strncmp(#type, "TPM2B_", 6) == 0 && !tpm2b_size_exact(buf, n))) {                         \
        rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "\"%s\" is not a " #type, member);    \
        goto out;                                                                                  \
    }
    GET_STRUCT("ek_public", TPM2B_PUBLIC, &req->ek_public);
    GET_STRUCT("ak_public", TPM2B_PUBLIC, &req->ak_public);
    GET_STRUCT("device_key_public", TPM2B_PUBLIC, &req->device_key_public);
    GET_STRUCT("device_key_certify", TPM2B_ATTEST, &req->device_key_certify);
    GET_STRUCT("device_key_signature", TPMT_SIGNATURE, &req->device_key_signature);
    GET_STRUCT("counter_public", TPM2B_NV_PUBLIC, &req->counter_public);
#undef GET_STRUCT
    if ((rc = tether_base64url_get_member(obj, "ek_certificate", req->ek_cert, sizeof(req->ek_cert),
                                          &req->ek_cert_len, why, why_size)) != TETHER_OK ||
        (rc = get_text(obj, "name", req->name, TETHER_ENROLL_MAX_NAME, why, why_size)) !=
            TETHER_OK ||
        (rc = get_text(obj, "bootstrap_token", req->bootstrap_token, TETHER_ENROLL_MAX_BOOTSTRAP,
                       why, why_size)) != TETHER_OK)
        goto out;
    rc = TETHER_OK;
out:
    if (obj != NULL) {
        item = cJSON_GetObjectItemCaseSensitive(obj, "bootstrap_token");
        if (cJSON_IsString(item))
            tether_wipe(item->valuestring, strlen(item->valuestring));
        cJSON_Delete(obj);
    }
    tether_wipe(buf, sizeof(buf));
    if (rc != TETHER_OK)
        tether_enroll_request_wipe(req);
    return rc;
}

/* --- checks ----------------------------------------------------------------- */

#define KEY_REQUIRED                                                                   \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
     TPMA_OBJECT_SIGN_ENCRYPT)

/* An ECDSA-SHA256 P-256 signing key that never leaves its TPM. */
static tether_status_t check_signing_key(const TPMT_PUBLIC *key, int restricted, const char *what,
                                         char *why, size_t why_size)
{
    TPMA_OBJECT attrs = key->objectAttributes;

    if (key->type != TPM2_ALG_ECC || key->nameAlg != TPM2_ALG_SHA256 ||
        key->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "%s is not an ECC P-256 key with SHA-256 names", what);
    if ((attrs & KEY_REQUIRED) != KEY_REQUIRED)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "%s is not fixedTPM, fixedParent, sensitiveDataOrigin and sign",
                              what);
    if (attrs & TPMA_OBJECT_DECRYPT)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size, "%s may also decrypt", what);
    if (!!(attrs & TPMA_OBJECT_RESTRICTED) != !!restricted)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size, "%s is %srestricted", what,
                              restricted ? "not " : "");
    if (key->parameters.eccDetail.scheme.scheme != TPM2_ALG_ECDSA ||
        key->parameters.eccDetail.scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "%s does not sign with ECDSA-SHA256", what);
    return TETHER_OK;
}

static int names_equal(const TPM2B_NAME *a, const TPM2B_NAME *b)
{
    return a->size == b->size && a->size <= sizeof(a->name) && memcmp(a->name, b->name, a->size) == 0;
}

static tether_status_t check_certify(const tether_enroll_request_t *req, char *why,
                                     size_t why_size)
{
    const TPMT_PUBLIC *ak = &req->ak_public.publicArea;
    uint8_t qualifying[32];
    TPMS_ATTEST attest;
    TPM2B_NAME dev_name, ek_qn, ak_qn;

    if (tether_tpm2_verify_signature(ak, req->device_key_certify.attestationData,
                                     req->device_key_certify.size,
                                     &req->device_key_signature) != TETHER_OK)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the device key certification is not signed by the AK");
    if (tether_attest_parse(req->device_key_certify.attestationData, req->device_key_certify.size,
                            TPM2_ST_ATTEST_CERTIFY, &attest) != TETHER_OK)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the device key certification is not a TPM2_Certify attestation");
    if (tether_tpm2_public_name(&req->device_key_public.publicArea, &dev_name) != TETHER_OK ||
        !names_equal(&attest.attested.certify.name, &dev_name))
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the certification is for another key than the device key sent");
    if (tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT, &req->ek_public.publicArea,
                                   &ek_qn) != TETHER_OK ||
        tether_tpm2_qualified_name(&ek_qn, 0, ak, &ak_qn) != TETHER_OK ||
        !names_equal(&attest.qualifiedSigner, &ak_qn))
        return tether_explain(
            TETHER_ERR_VERIFY, why, why_size,
            "the certification was signed by an AK that is not a child of the EK");
    if (mbedtls_sha256_ret((const unsigned char *)TETHER_ENROLL_CERTIFY_LABEL,
                           strlen(TETHER_ENROLL_CERTIFY_LABEL), qualifying, 0) != 0 ||
        attest.extraData.size != sizeof(qualifying) ||
        memcmp(attest.extraData.buffer, qualifying, sizeof(qualifying)) != 0)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the certification carries unexpected qualifying data");
    return TETHER_OK;
}

static tether_status_t check_counter(const TPMS_NV_PUBLIC *nv, char *why, size_t why_size)
{
    /* Writes only through the index's own authorisation; nobody but the
     * owner may delete it, and no policy may. */
    const TPMA_NV required = TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD;
    const TPMA_NV forbidden = TPMA_NV_PPWRITE | TPMA_NV_OWNERWRITE | TPMA_NV_POLICYWRITE |
                              TPMA_NV_POLICY_DELETE | TPMA_NV_PLATFORMCREATE;

    if (!tether_nv_index_is_owner(nv->nvIndex))
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the counter's NV index 0x%08x is outside the owner range",
                              nv->nvIndex);
    if (((nv->attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT) != TPM2_NT_COUNTER ||
        nv->dataSize != 8)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "NV index 0x%08x is not an 8-byte counter", nv->nvIndex);
    if ((nv->attributes & required) != required || (nv->attributes & forbidden) != 0)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the counter's attributes 0x%08x allow writes or deletion by others",
                              nv->attributes);
    if (nv->nameAlg != TPM2_ALG_SHA256)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the counter's name algorithm is not SHA-256");
    return TETHER_OK;
}

tether_status_t tether_enroll_request_check(const tether_enroll_request_t *req, char *why,
                                            size_t why_size)
{
    const TPMT_PUBLIC *ek;
    tether_status_t rc;

    if (req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    ek = &req->ek_public.publicArea;
    if (!(ek->objectAttributes & TPMA_OBJECT_RESTRICTED) ||
        !(ek->objectAttributes & TPMA_OBJECT_DECRYPT) ||
        (ek->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) ||
        !(ek->objectAttributes & TPMA_OBJECT_FIXEDTPM))
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the EK is not a fixedTPM restricted decryption key");
    rc = tether_tpm2_public_matches_cert(ek, req->ek_cert, req->ek_cert_len);
    if (rc == TETHER_ERR_PARSE)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the EK certificate is not DER X.509");
    if (rc != TETHER_OK)
        return tether_explain(TETHER_ERR_EK_MISMATCH, why, why_size,
                              "the EK certificate certifies another key than the EK sent");
    if ((rc = check_signing_key(&req->ak_public.publicArea, 1, "the AK", why, why_size)) !=
            TETHER_OK ||
        (rc = check_signing_key(&req->device_key_public.publicArea, 0, "the device key", why,
                                why_size)) != TETHER_OK ||
        (rc = check_certify(req, why, why_size)) != TETHER_OK ||
        (rc = check_counter(&req->counter_public.nvPublic, why, why_size)) != TETHER_OK)
        return rc;
    return TETHER_OK;
}

tether_status_t tether_ek_cert_verify(const uint8_t *der, size_t len, const tether_cert_set_t *cas,
                                      char *why, size_t why_size)
{
    mbedtls_x509_crt *anchors = tether_cert_set_chain(cas);
    mbedtls_x509_crt crt;
    uint32_t flags = 0;
    char info[256];
    tether_status_t rc;

    if (der == NULL || cas == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (anchors == NULL)
        return tether_explain(TETHER_ERR_VERIFY, why, why_size,
                              "the EK certificate does not chain to a trusted TPM manufacturer CA "
                              "(none is trusted)");
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, len) != 0) {
        rc =
            tether_explain(TETHER_ERR_VERIFY, why, why_size, "the EK certificate is not DER X.509");
        goto out;
    }
    if (mbedtls_x509_crt_verify(&crt, anchors, NULL, NULL, &flags, NULL, NULL) != 0) {
        info[0] = '\0';
        mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
        info[strcspn(info, "\n")] = '\0';
        rc = tether_explain(
            TETHER_ERR_VERIFY, why, why_size,
            "the EK certificate does not chain to a trusted TPM manufacturer CA (%s)", info);
        goto out;
    }
    rc = TETHER_OK;
out:
    mbedtls_x509_crt_free(&crt);
    return rc;
}

tether_status_t tether_ek_sha256(const TPMT_PUBLIC *ek, uint8_t out[32])
{
    mbedtls_pk_context pk;
    uint8_t der[1024];
    tether_status_t rc;
    int len;

    if (ek == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_pk_init(&pk);
    if ((rc = tether_tpm2_public_to_pk(ek, &pk)) != TETHER_OK)
        goto out;
    len = mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
    if (len <= 0 || mbedtls_sha256_ret(der + sizeof(der) - (size_t)len, (size_t)len, out, 0) != 0)
        rc = TETHER_ERR_CRYPTO;
out:
    mbedtls_pk_free(&pk);
    return rc;
}

tether_status_t tether_enroll_activation_proof(const uint8_t *secret, size_t secret_len,
                                               const char *enrollment_id, uint8_t proof[32])
{
    static const char label[] = "tether enroll activate v1";
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    int ok;

    if (secret == NULL || secret_len == 0 || enrollment_id == NULL || proof == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_md_init(&ctx);
    ok = mbedtls_md_setup(&ctx, md, 1) == 0 && mbedtls_md_hmac_starts(&ctx, secret, secret_len) == 0 &&
         mbedtls_md_hmac_update(&ctx, (const unsigned char *)label, sizeof(label) - 1) == 0 &&
         mbedtls_md_hmac_update(&ctx, (const unsigned char *)enrollment_id,
                                strlen(enrollment_id)) == 0 &&
         mbedtls_md_hmac_finish(&ctx, proof) == 0;
    mbedtls_md_free(&ctx);
    return ok ? TETHER_OK : TETHER_ERR_CRYPTO;
}
