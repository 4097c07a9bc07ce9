/*
 * The TPM interface over tpm2-tss ESAPI and any TCTI.
 *
 * Every transient object this code loads is recorded in a slot table; the
 * handles given to callers are slot numbers, so a stale or foreign handle is
 * refused instead of reaching the TPM, and close() flushes whatever callers
 * left loaded. Sessions are started and flushed inside each operation.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/tpm.h"
#include "tpm_templates.h"

#define ESAPI_SLOTS 16

typedef struct esapi_slot {
    ESYS_TR tr;               /* ESYS_TR_NONE when free */
    TPMA_OBJECT attributes;   /* to choose how the object is authorised */
} esapi_slot_t;

typedef struct esapi_impl {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    uint16_t nv_buffer_max; /* TPM_PT_NV_BUFFER_MAX */
    esapi_slot_t slots[ESAPI_SLOTS];
} esapi_impl_t;

static esapi_impl_t *impl_of(tether_tpm_t *tpm)
{
    return (esapi_impl_t *)tpm->impl;
}

/* Records a TSS failure: the command name and the decoded response code. */
static tether_status_t esys_fail(tether_tpm_t *tpm, const char *command, TSS2_RC rc)
{
    return tether_tpm_fail(tpm, tether_tpm_rc_status(rc), rc, "%s: %s (0x%x)", command,
                           Tss2_RC_Decode(rc), rc);
}

static tether_status_t slot_add(tether_tpm_t *tpm, ESYS_TR tr, TPMA_OBJECT attributes,
                                tether_tpm_handle_t *handle)
{
    esapi_impl_t *impl = impl_of(tpm);

    for (unsigned i = 0; i < ESAPI_SLOTS; i++) {
        if (impl->slots[i].tr == ESYS_TR_NONE) {
            impl->slots[i].tr = tr;
            impl->slots[i].attributes = attributes;
            *handle = i + 1;
            return TETHER_OK;
        }
    }
    /* Should not happen: callers hold at most a handful of objects. */
    Esys_FlushContext(impl->esys, tr);
    return tether_tpm_fail(tpm, TETHER_ERR_STATE, 0,
                           "more than %d TPM objects loaded at once (a handle leak)", ESAPI_SLOTS);
}

static esapi_slot_t *slot_get(tether_tpm_t *tpm, tether_tpm_handle_t handle)
{
    esapi_impl_t *impl = impl_of(tpm);

    if (handle == TETHER_TPM_HANDLE_NONE || handle > ESAPI_SLOTS ||
        impl->slots[handle - 1].tr == ESYS_TR_NONE) {
        tether_tpm_fail(tpm, TETHER_ERR_INVALID_ARGUMENT, 0, "unknown TPM object handle %u",
                        handle);
        return NULL;
    }
    return &impl->slots[handle - 1];
}

/*
 * Authorisation for using the EK (a parent, or the key of
 * ActivateCredential). The low-range EK templates have no userWithAuth, so
 * use needs PolicySecret(TPM_RH_ENDORSEMENT) (EK Credential Profile B.3.2);
 * the high-range ones allow the (empty) authValue.
 */
static tether_status_t ek_session(tether_tpm_t *tpm, const esapi_slot_t *ek, ESYS_TR *session)
{
    static const TPMT_SYM_DEF no_symmetric = {.algorithm = TPM2_ALG_NULL};
    esapi_impl_t *impl = impl_of(tpm);
    TPM2B_TIMEOUT *timeout = NULL;
    TPMT_TK_AUTH *ticket = NULL;
    TSS2_RC rc;

    *session = ESYS_TR_PASSWORD;
    if (ek->attributes & TPMA_OBJECT_USERWITHAUTH)
        return TETHER_OK;
    rc = Esys_StartAuthSession(impl->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &no_symmetric, TPM2_ALG_SHA256,
                               session);
    if (rc != TSS2_RC_SUCCESS) {
        *session = ESYS_TR_NONE;
        return esys_fail(tpm, "TPM2_StartAuthSession", rc);
    }
    /* Keep the session alive after use so that it is always flushed here. */
    rc = Esys_TRSess_SetAttributes(impl->esys, *session, TPMA_SESSION_CONTINUESESSION, 0xff);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_PolicySecret(impl->esys, ESYS_TR_RH_ENDORSEMENT, *session, ESYS_TR_PASSWORD,
                               ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, &timeout, &ticket);
    Esys_Free(timeout);
    Esys_Free(ticket);
    if (rc != TSS2_RC_SUCCESS) {
        Esys_FlushContext(impl->esys, *session);
        *session = ESYS_TR_NONE;
        return esys_fail(tpm, "TPM2_PolicySecret", rc);
    }
    return TETHER_OK;
}

static void session_end(tether_tpm_t *tpm, ESYS_TR session)
{
    if (session != ESYS_TR_NONE && session != ESYS_TR_PASSWORD)
        Esys_FlushContext(impl_of(tpm)->esys, session);
}

/* An ESYS_TR for an NV index; closed (not flushed) with Esys_TR_Close. */
static tether_status_t nv_handle(tether_tpm_t *tpm, TPM2_HANDLE nv_index, ESYS_TR *tr)
{
    TSS2_RC rc = Esys_TR_FromTPMPublic(impl_of(tpm)->esys, nv_index, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, tr);
    if (rc == TSS2_RC_SUCCESS)
        return TETHER_OK;
    *tr = ESYS_TR_NONE;
    /* TPM_RC_HANDLE on the first handle: the index is not defined. */
    if ((rc & 0xffffu & ~TPM2_RC_N_MASK) == TPM2_RC_HANDLE)
        return tether_tpm_fail(tpm, TETHER_ERR_NOT_FOUND, rc, "NV index 0x%08x is not defined",
                               nv_index);
    return esys_fail(tpm, "TPM2_NV_ReadPublic", rc);
}

static void nv_close(tether_tpm_t *tpm, ESYS_TR *tr)
{
    if (*tr != ESYS_TR_NONE)
        Esys_TR_Close(impl_of(tpm)->esys, tr);
    *tr = ESYS_TR_NONE;
}

static tether_status_t esapi_get_info(tether_tpm_t *tpm, tether_tpm_info_t *info)
{
    esapi_impl_t *impl = impl_of(tpm);
    TPMS_CAPABILITY_DATA *props = NULL, *pcrs = NULL;
    TPMI_YES_NO more = TPM2_NO;
    tether_status_t status = TETHER_OK;
    TSS2_RC rc;

    memset(info, 0, sizeof(*info));
    rc = Esys_GetCapability(impl->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                            TPM2_CAP_TPM_PROPERTIES, TPM2_PT_FIXED, TPM2_MAX_TPM_PROPERTIES, &more,
                            &props);
    if (rc != TSS2_RC_SUCCESS) {
        status = esys_fail(tpm, "TPM2_GetCapability(properties)", rc);
        goto out;
    }
    for (uint32_t i = 0; i < props->data.tpmProperties.count; i++) {
        const TPMS_TAGGED_PROPERTY *p = &props->data.tpmProperties.tpmProperty[i];
        char *dest = NULL;

        switch (p->property) {
        case TPM2_PT_MANUFACTURER: dest = info->manufacturer; break;
        case TPM2_PT_VENDOR_STRING_1: dest = info->vendor; break;
        case TPM2_PT_VENDOR_STRING_2: dest = info->vendor + 4; break;
        case TPM2_PT_VENDOR_STRING_3: dest = info->vendor + 8; break;
        case TPM2_PT_VENDOR_STRING_4: dest = info->vendor + 12; break;
        case TPM2_PT_FIRMWARE_VERSION_1: info->firmware_version_1 = p->value; break;
        case TPM2_PT_FIRMWARE_VERSION_2: info->firmware_version_2 = p->value; break;
        case TPM2_PT_REVISION: info->spec_revision = p->value; break;
        default: break;
        }
        if (dest != NULL) {
            /* Four big-endian characters, NUL-padded (TPM2 Part 2, 6.13). */
            for (unsigned b = 0; b < 4; b++) {
                char c = (char)(p->value >> (24 - 8 * b));
                dest[b] = (c >= 0x20 && c < 0x7f) ? c : '\0';
            }
        }
    }
    /* Vendor strings may leave gaps of NULs; keep only the printable prefix. */
    info->vendor[16] = '\0';
    info->manufacturer[4] = '\0';

    rc = Esys_GetCapability(impl->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS,
                            0, 1, &more, &pcrs);
    if (rc != TSS2_RC_SUCCESS) {
        status = esys_fail(tpm, "TPM2_GetCapability(PCRs)", rc);
        goto out;
    }
    for (uint32_t i = 0; i < pcrs->data.assignedPCR.count; i++) {
        const TPMS_PCR_SELECTION *sel = &pcrs->data.assignedPCR.pcrSelections[i];
        bool allocated = false;

        for (unsigned b = 0; b < sel->sizeofSelect && b < TPM2_PCR_SELECT_MAX; b++)
            allocated = allocated || sel->pcrSelect[b] != 0;
        if (allocated && info->pcr_bank_count < TETHER_TPM_MAX_PCR_BANKS)
            info->pcr_banks[info->pcr_bank_count++] = sel->hash;
    }
out:
    Esys_Free(props);
    Esys_Free(pcrs);
    return status;
}

static tether_status_t esapi_nv_read(tether_tpm_t *tpm, TPM2_HANDLE nv_index, uint8_t *buf,
                                     size_t buf_size, size_t *len)
{
    esapi_impl_t *impl = impl_of(tpm);
    TPM2B_NV_PUBLIC *pub = NULL;
    TPM2B_MAX_NV_BUFFER *chunk = NULL;
    ESYS_TR nv = ESYS_TR_NONE, auth;
    tether_status_t status;
    uint16_t size, offset = 0;
    TSS2_RC rc;

    *len = 0;
    if ((status = nv_handle(tpm, nv_index, &nv)) != TETHER_OK)
        goto out;
    rc = Esys_NV_ReadPublic(impl->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        status = esys_fail(tpm, "TPM2_NV_ReadPublic", rc);
        goto out;
    }
    size = pub->nvPublic.dataSize;
    if (size > buf_size) {
        status = tether_tpm_fail(tpm, TETHER_ERR_TOO_LARGE, 0,
                                 "NV index 0x%08x holds %u bytes, more than the %zu allowed",
                                 nv_index, size, buf_size);
        goto out;
    }
    if (pub->nvPublic.attributes & TPMA_NV_AUTHREAD)
        auth = nv;
    else if (pub->nvPublic.attributes & TPMA_NV_OWNERREAD)
        auth = ESYS_TR_RH_OWNER;
    else {
        status = tether_tpm_fail(tpm, TETHER_ERR_TPM_AUTH, 0,
                                 "NV index 0x%08x is readable by neither its own nor the owner's "
                                 "authorisation",
                                 nv_index);
        goto out;
    }
    while (offset < size) {
        uint16_t want = (uint16_t)(size - offset);
        if (want > impl->nv_buffer_max)
            want = impl->nv_buffer_max;
        rc = Esys_NV_Read(impl->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, want,
                          offset, &chunk);
        if (rc != TSS2_RC_SUCCESS) {
            status = esys_fail(tpm, "TPM2_NV_Read", rc);
            goto out;
        }
        if (chunk->size != want) {
            status = tether_tpm_fail(tpm, TETHER_ERR_TPM, 0, "TPM2_NV_Read returned %u bytes, not %u",
                                     chunk->size, want);
            goto out;
        }
        memcpy(buf + offset, chunk->buffer, want);
        offset = (uint16_t)(offset + want);
        Esys_Free(chunk);
        chunk = NULL;
    }
    *len = size;
    status = TETHER_OK;
out:
    Esys_Free(pub);
    Esys_Free(chunk);
    nv_close(tpm, &nv);
    return status;
}

static tether_status_t esapi_create_ek(tether_tpm_t *tpm, tether_ek_type_t type,
                                       tether_tpm_handle_t *ek, TPM2B_PUBLIC *public_area)
{
    esapi_impl_t *impl = impl_of(tpm);
    TPM2B_SENSITIVE_CREATE sensitive = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION creation_pcrs = {0};
    TPM2B_PUBLIC tmpl, *out_public = NULL;
    ESYS_TR tr = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    tether_ek_template(type, &tmpl);
    rc = Esys_CreatePrimary(impl->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                            ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcrs, &tr,
                            &out_public, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_CreatePrimary(EK)", rc);
    *public_area = *out_public;
    status = slot_add(tpm, tr, out_public->publicArea.objectAttributes, ek);
    Esys_Free(out_public);
    return status;
}

static tether_status_t esapi_create_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                        tether_key_kind_t kind, tether_tpm_key_blob_t *blob)
{
    esapi_impl_t *impl = impl_of(tpm);
    esapi_slot_t *parent = slot_get(tpm, ek);
    TPM2B_SENSITIVE_CREATE sensitive = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION creation_pcrs = {0};
    TPM2B_PUBLIC tmpl, *out_public = NULL;
    TPM2B_PRIVATE *out_private = NULL;
    ESYS_TR session = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if (parent == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_key_template(kind, &tmpl);
    if ((status = ek_session(tpm, parent, &session)) != TETHER_OK)
        return status;
    rc = Esys_Create(impl->esys, parent->tr, session, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                     &outside, &creation_pcrs, &out_private, &out_public, NULL, NULL, NULL);
    session_end(tpm, session);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, kind == TETHER_KEY_AK ? "TPM2_Create(AK)" : "TPM2_Create(device key)",
                         rc);
    blob->public_area = *out_public;
    blob->private_blob = *out_private;
    Esys_Free(out_public);
    Esys_Free(out_private);
    return TETHER_OK;
}

static tether_status_t esapi_load_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                      const tether_tpm_key_blob_t *blob, tether_tpm_handle_t *key)
{
    esapi_impl_t *impl = impl_of(tpm);
    esapi_slot_t *parent = slot_get(tpm, ek);
    ESYS_TR session = ESYS_TR_NONE, tr = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if (parent == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((status = ek_session(tpm, parent, &session)) != TETHER_OK)
        return status;
    rc = Esys_Load(impl->esys, parent->tr, session, ESYS_TR_NONE, ESYS_TR_NONE, &blob->private_blob,
                   &blob->public_area, &tr);
    session_end(tpm, session);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_Load", rc);
    return slot_add(tpm, tr, blob->public_area.publicArea.objectAttributes, key);
}

static tether_status_t esapi_flush(tether_tpm_t *tpm, tether_tpm_handle_t handle)
{
    esapi_slot_t *slot = slot_get(tpm, handle);
    TSS2_RC rc;

    if (slot == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = Esys_FlushContext(impl_of(tpm)->esys, slot->tr);
    if (rc != TSS2_RC_SUCCESS && tether_tpm_rc_status(rc) == TETHER_ERR_TPM_RETRY)
        return esys_fail(tpm, "TPM2_FlushContext", rc);
    /* Whatever else happened, the handle is no longer usable. */
    slot->tr = ESYS_TR_NONE;
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_FlushContext", rc);
    return TETHER_OK;
}

static void copy_qualifying(TPM2B_DATA *data, const uint8_t *qualifying, size_t len)
{
    memset(data, 0, sizeof(*data));
    data->size = (uint16_t)len; /* len <= TETHER_TPM_MAX_QUALIFYING, checked by the wrapper */
    if (len > 0)
        memcpy(data->buffer, qualifying, len);
}

/* Moves an ESAPI attestation result into the caller's struct. */
static void take_attestation(tether_tpm_attestation_t *out, TPM2B_ATTEST *attest,
                             TPMT_SIGNATURE *signature)
{
    out->attest = *attest;
    out->signature = *signature;
    Esys_Free(attest);
    Esys_Free(signature);
}

static const TPMT_SIG_SCHEME key_scheme = {.scheme = TPM2_ALG_NULL};

static tether_status_t esapi_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                     tether_tpm_handle_t object, const uint8_t *qualifying,
                                     size_t qualifying_len, tether_tpm_attestation_t *out)
{
    esapi_slot_t *signer = slot_get(tpm, ak), *certified = slot_get(tpm, object);
    TPM2B_ATTEST *attest = NULL;
    TPMT_SIGNATURE *signature = NULL;
    TPM2B_DATA data;
    TSS2_RC rc;

    if (signer == NULL || certified == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    copy_qualifying(&data, qualifying, qualifying_len);
    rc = Esys_Certify(impl_of(tpm)->esys, certified->tr, signer->tr, ESYS_TR_PASSWORD,
                      ESYS_TR_PASSWORD, ESYS_TR_NONE, &data, &key_scheme, &attest, &signature);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_Certify", rc);
    take_attestation(out, attest, signature);
    return TETHER_OK;
}

/* Left-pads a big-endian integer to width bytes. */
static bool pad_scalar(const TPM2B_ECC_PARAMETER *in, uint8_t *out, size_t width)
{
    if (in->size > width)
        return false;
    memset(out, 0, width - in->size);
    memcpy(out + width - in->size, in->buffer, in->size);
    return true;
}

static tether_status_t esapi_sign_digest(tether_tpm_t *tpm, tether_tpm_handle_t key,
                                         const uint8_t digest[32], uint8_t signature[64])
{
    esapi_slot_t *signer = slot_get(tpm, key);
    TPM2B_DIGEST in = {.size = 32};
    /* A NULL hashcheck ticket: allowed for unrestricted keys only. */
    TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
    TPMT_SIGNATURE *out = NULL;
    tether_status_t status = TETHER_OK;
    TSS2_RC rc;

    if (signer == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memcpy(in.buffer, digest, 32);
    rc = Esys_Sign(impl_of(tpm)->esys, signer->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                   &in, &key_scheme, &ticket, &out);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_Sign", rc);
    if (out->sigAlg != TPM2_ALG_ECDSA || !pad_scalar(&out->signature.ecdsa.signatureR, signature, 32) ||
        !pad_scalar(&out->signature.ecdsa.signatureS, signature + 32, 32))
        status = tether_tpm_fail(tpm, TETHER_ERR_TPM, 0,
                                 "TPM2_Sign returned a signature that is not ECDSA P-256");
    Esys_Free(out);
    return status;
}

static tether_status_t esapi_nv_define_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    esapi_impl_t *impl = impl_of(tpm);
    TPM2B_AUTH auth = {0};
    TPM2B_NV_PUBLIC pub;
    ESYS_TR tr = ESYS_TR_NONE;
    TSS2_RC rc;

    tether_counter_template(nv_index, &pub);
    rc = Esys_NV_DefineSpace(impl->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, &auth, &pub, &tr);
    if (rc != TSS2_RC_SUCCESS) {
        if ((rc & 0xffffu) == TPM2_RC_NV_DEFINED)
            return tether_tpm_fail(tpm, TETHER_ERR_STATE, rc, "NV index 0x%08x is already defined",
                                   nv_index);
        return esys_fail(tpm, "TPM2_NV_DefineSpace", rc);
    }
    nv_close(tpm, &tr);
    return TETHER_OK;
}

static tether_status_t esapi_nv_undefine(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    ESYS_TR nv = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if ((status = nv_handle(tpm, nv_index, &nv)) != TETHER_OK)
        return status;
    /* On success ESAPI invalidates the ESYS_TR itself. */
    rc = Esys_NV_UndefineSpace(impl_of(tpm)->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD,
                               ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
        nv_close(tpm, &nv);
        return esys_fail(tpm, "TPM2_NV_UndefineSpace", rc);
    }
    return TETHER_OK;
}

static tether_status_t esapi_nv_increment(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    ESYS_TR nv = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if ((status = nv_handle(tpm, nv_index, &nv)) != TETHER_OK)
        return status;
    rc = Esys_NV_Increment(impl_of(tpm)->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE);
    nv_close(tpm, &nv);
    return rc == TSS2_RC_SUCCESS ? TETHER_OK : esys_fail(tpm, "TPM2_NV_Increment", rc);
}

static tether_status_t esapi_nv_read_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                             uint64_t *value)
{
    TPM2B_MAX_NV_BUFFER *data = NULL;
    ESYS_TR nv = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if ((status = nv_handle(tpm, nv_index, &nv)) != TETHER_OK)
        return status;
    rc = Esys_NV_Read(impl_of(tpm)->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0,
                      &data);
    nv_close(tpm, &nv);
    if (rc != TSS2_RC_SUCCESS) {
        if ((rc & 0xffffu) == TPM2_RC_NV_UNINITIALIZED)
            return tether_tpm_fail(tpm, TETHER_ERR_STATE, rc,
                                   "NV counter 0x%08x has never been incremented", nv_index);
        return esys_fail(tpm, "TPM2_NV_Read", rc);
    }
    if (data->size != 8) {
        Esys_Free(data);
        return tether_tpm_fail(tpm, TETHER_ERR_TPM, 0, "NV counter 0x%08x is not 8 bytes",
                               nv_index);
    }
    *value = 0;
    for (unsigned i = 0; i < 8; i++)
        *value = (*value << 8) | data->buffer[i];
    Esys_Free(data);
    return TETHER_OK;
}

static tether_status_t esapi_nv_read_public(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                            TPM2B_NV_PUBLIC *public_area, TPM2B_NAME *name)
{
    TPM2B_NV_PUBLIC *pub = NULL;
    TPM2B_NAME *nv_name = NULL;
    ESYS_TR nv = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if ((status = nv_handle(tpm, nv_index, &nv)) != TETHER_OK)
        return status;
    rc = Esys_NV_ReadPublic(impl_of(tpm)->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
                            &nv_name);
    nv_close(tpm, &nv);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_NV_ReadPublic", rc);
    *public_area = *pub;
    *name = *nv_name;
    Esys_Free(pub);
    Esys_Free(nv_name);
    return TETHER_OK;
}

static tether_status_t esapi_nv_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                        TPM2_HANDLE nv_index, const uint8_t *qualifying,
                                        size_t qualifying_len, tether_tpm_attestation_t *out)
{
    esapi_slot_t *signer = slot_get(tpm, ak);
    TPM2B_ATTEST *attest = NULL;
    TPMT_SIGNATURE *signature = NULL;
    ESYS_TR nv = ESYS_TR_NONE;
    tether_status_t status;
    TPM2B_DATA data;
    TSS2_RC rc;

    if (signer == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((status = nv_handle(tpm, nv_index, &nv)) != TETHER_OK)
        return status;
    copy_qualifying(&data, qualifying, qualifying_len);
    /* Certify the counter's 8 bytes so nvContents carries its value. */
    rc = Esys_NV_Certify(impl_of(tpm)->esys, signer->tr, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
                         ESYS_TR_NONE, &data, &key_scheme, 8, 0, &attest, &signature);
    nv_close(tpm, &nv);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_NV_Certify", rc);
    take_attestation(out, attest, signature);
    return TETHER_OK;
}

static tether_status_t esapi_quote(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                   const TPML_PCR_SELECTION *pcrs, const uint8_t *qualifying,
                                   size_t qualifying_len, tether_tpm_attestation_t *out)
{
    esapi_slot_t *signer = slot_get(tpm, ak);
    TPM2B_ATTEST *attest = NULL;
    TPMT_SIGNATURE *signature = NULL;
    TPM2B_DATA data;
    TSS2_RC rc;

    if (signer == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    copy_qualifying(&data, qualifying, qualifying_len);
    rc = Esys_Quote(impl_of(tpm)->esys, signer->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                    &data, &key_scheme, pcrs, &attest, &signature);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_Quote", rc);
    take_attestation(out, attest, signature);
    return TETHER_OK;
}

static tether_status_t esapi_activate_credential(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                                 tether_tpm_handle_t ek,
                                                 const TPM2B_ID_OBJECT *credential_blob,
                                                 const TPM2B_ENCRYPTED_SECRET *secret,
                                                 TPM2B_DIGEST *cert_info)
{
    esapi_slot_t *activated = slot_get(tpm, ak), *key = slot_get(tpm, ek);
    TPM2B_DIGEST *out = NULL;
    ESYS_TR session = ESYS_TR_NONE;
    tether_status_t status;
    TSS2_RC rc;

    if (activated == NULL || key == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((status = ek_session(tpm, key, &session)) != TETHER_OK)
        return status;
    rc = Esys_ActivateCredential(impl_of(tpm)->esys, activated->tr, key->tr, ESYS_TR_PASSWORD,
                                 session, ESYS_TR_NONE, credential_blob, secret, &out);
    session_end(tpm, session);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_ActivateCredential", rc);
    *cert_info = *out;
    tether_wipe(out, sizeof(*out));
    Esys_Free(out);
    return TETHER_OK;
}

static tether_status_t esapi_pcr_read(tether_tpm_t *tpm, TPMI_ALG_HASH bank, uint32_t pcr,
                                      TPM2B_DIGEST *value)
{
    TPML_PCR_SELECTION sel = {.count = 1};
    TPML_PCR_SELECTION *sel_out = NULL;
    TPML_DIGEST *values = NULL;
    tether_status_t status = TETHER_OK;
    TSS2_RC rc;

    sel.pcrSelections[0].hash = bank;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t)(1u << (pcr % 8));
    rc = Esys_PCR_Read(impl_of(tpm)->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL,
                       &sel_out, &values);
    if (rc != TSS2_RC_SUCCESS)
        return esys_fail(tpm, "TPM2_PCR_Read", rc);
    if (values->count != 1)
        status = tether_tpm_fail(tpm, TETHER_ERR_NOT_FOUND, 0,
                                 "PCR %u is not allocated in bank 0x%04x", pcr, bank);
    else
        *value = values->digests[0];
    Esys_Free(sel_out);
    Esys_Free(values);
    return status;
}

static tether_status_t esapi_pcr_extend(tether_tpm_t *tpm, uint32_t pcr,
                                        const TPML_DIGEST_VALUES *digests)
{
    TSS2_RC rc = Esys_PCR_Extend(impl_of(tpm)->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD,
                                 ESYS_TR_NONE, ESYS_TR_NONE, digests);
    return rc == TSS2_RC_SUCCESS ? TETHER_OK : esys_fail(tpm, "TPM2_PCR_Extend", rc);
}

static void esapi_close(tether_tpm_t *tpm)
{
    esapi_impl_t *impl = impl_of(tpm);

    if (impl == NULL)
        return;
    if (impl->esys != NULL) {
        for (unsigned i = 0; i < ESAPI_SLOTS; i++) {
            if (impl->slots[i].tr != ESYS_TR_NONE)
                Esys_FlushContext(impl->esys, impl->slots[i].tr);
        }
        Esys_Finalize(&impl->esys);
    }
    Tss2_TctiLdr_Finalize(&impl->tcti);
    free(impl);
    tpm->impl = NULL;
    tpm->ops = NULL;
}

static const tether_tpm_ops_t esapi_ops = {
    .get_info = esapi_get_info,
    .nv_read = esapi_nv_read,
    .create_ek = esapi_create_ek,
    .create_key = esapi_create_key,
    .load_key = esapi_load_key,
    .flush = esapi_flush,
    .certify = esapi_certify,
    .sign_digest = esapi_sign_digest,
    .nv_define_counter = esapi_nv_define_counter,
    .nv_undefine = esapi_nv_undefine,
    .nv_increment = esapi_nv_increment,
    .nv_read_counter = esapi_nv_read_counter,
    .nv_read_public = esapi_nv_read_public,
    .nv_certify = esapi_nv_certify,
    .quote = esapi_quote,
    .activate_credential = esapi_activate_credential,
    .pcr_read = esapi_pcr_read,
    .pcr_extend = esapi_pcr_extend,
    .close = esapi_close,
};

/* TPM2_Startup(CLEAR) for a TPM that was never started. A started TPM
 * answers TPM_RC_INITIALIZE, which ESAPI already reports as success. */
static tether_status_t esapi_startup(tether_tpm_t *tpm)
{
    TSS2_RC rc = Esys_Startup(impl_of(tpm)->esys, TPM2_SU_CLEAR);

    if (rc == TSS2_RC_SUCCESS || (rc & 0xffffu) == TPM2_RC_INITIALIZE)
        return TETHER_OK;
    return esys_fail(tpm, "TPM2_Startup", rc);
}

static void esapi_read_nv_buffer_max(tether_tpm_t *tpm)
{
    esapi_impl_t *impl = impl_of(tpm);
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;

    impl->nv_buffer_max = 512; /* a size every TPM accepts */
    if (Esys_GetCapability(impl->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                           TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more,
                           &cap) == TSS2_RC_SUCCESS &&
        cap->data.tpmProperties.count == 1 &&
        cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX) {
        uint32_t v = cap->data.tpmProperties.tpmProperty[0].value;
        if (v >= 64 && v <= TPM2_MAX_NV_BUFFER_SIZE)
            impl->nv_buffer_max = (uint16_t)v;
    }
    Esys_Free(cap);
}

tether_status_t tether_tpm_open_esapi(tether_tpm_t *tpm, const char *tcti)
{
    esapi_impl_t *impl;
    tether_status_t status;
    TSS2_RC rc;

    if (tpm == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (tpm->ops != NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_STATE, 0, "TPM context is already open");
    /* tether reports every TSS failure itself, decoded and with context;
     * the TSS's own stderr logging stays off unless the user asks for it. */
    setenv("TSS2_LOG", "all+NONE", 0);
    impl = calloc(1, sizeof(*impl));
    if (impl == NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_NO_MEMORY, 0, "out of memory");
    for (unsigned i = 0; i < ESAPI_SLOTS; i++)
        impl->slots[i].tr = ESYS_TR_NONE;
    tpm->impl = impl;
    tpm->ops = &esapi_ops;

    rc = Tss2_TctiLdr_Initialize(tcti, &impl->tcti);
    if (rc != TSS2_RC_SUCCESS) {
        status = tether_tpm_fail(tpm, TETHER_ERR_TPM_CONNECT, rc,
                                 "cannot open TCTI \"%s\": %s (0x%x)",
                                 tcti != NULL ? tcti : "(default)", Tss2_RC_Decode(rc), rc);
        goto fail;
    }
    rc = Esys_Initialize(&impl->esys, impl->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        status = esys_fail(tpm, "Esys_Initialize", rc);
        goto fail;
    }
    if ((status = esapi_startup(tpm)) != TETHER_OK)
        goto fail;
    esapi_read_nv_buffer_max(tpm);
    return TETHER_OK;
fail:
    esapi_close(tpm); /* leaves last_error for the caller */
    return status;
}
