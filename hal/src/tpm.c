/*
 * What every TPM implementation shares: argument checks, bounded retries,
 * response-code mapping, EK selection and key-blob marshalling.
 */
#include "tether/tpm.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_mu.h>

#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/tpm2_public.h"

static const TPM2_HANDLE ek_cert_indices[TETHER_EK_TYPE_COUNT] = {
    [TETHER_EK_ECC_P256] = 0x01c0000a,
    [TETHER_EK_ECC_P384] = 0x01c00016,
    [TETHER_EK_RSA2048] = 0x01c00002,
};

static const char *const ek_type_names[TETHER_EK_TYPE_COUNT] = {
    [TETHER_EK_ECC_P256] = "ECC NIST P-256",
    [TETHER_EK_ECC_P384] = "ECC NIST P-384",
    [TETHER_EK_RSA2048] = "RSA 2048",
};

TPM2_HANDLE tether_ek_cert_nv_index(tether_ek_type_t type)
{
    return (unsigned)type < TETHER_EK_TYPE_COUNT ? ek_cert_indices[type] : 0;
}

const char *tether_ek_type_name(tether_ek_type_t type)
{
    return (unsigned)type < TETHER_EK_TYPE_COUNT ? ek_type_names[type] : "unknown";
}

void tether_tpm_init(tether_tpm_t *tpm)
{
    if (tpm == NULL)
        return;
    memset(tpm, 0, sizeof(*tpm));
    tpm->max_attempts = TETHER_TPM_DEFAULT_ATTEMPTS;
    tpm->retry_delay_ms = TETHER_TPM_DEFAULT_RETRY_DELAY_MS;
}

void tether_tpm_close(tether_tpm_t *tpm)
{
    if (tpm == NULL)
        return;
    if (tpm->ops != NULL && tpm->ops->close != NULL)
        tpm->ops->close(tpm);
    tether_wipe(tpm, sizeof(*tpm));
}

tether_status_t tether_tpm_fail(tether_tpm_t *tpm, tether_status_t status, uint32_t rc,
                                const char *fmt, ...)
{
    va_list ap;

    tpm->last_rc = rc;
    va_start(ap, fmt);
    vsnprintf(tpm->last_error, sizeof(tpm->last_error), fmt, ap);
    va_end(ap);
    return status;
}

tether_status_t tether_tpm_rc_status(uint32_t rc)
{
    uint32_t layer = rc & TSS2_RC_LAYER_MASK;
    uint32_t code = rc & 0xffffu;

    if (rc == TSS2_RC_SUCCESS)
        return TETHER_OK;
    if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) {
        if (code & TPM2_RC_FMT1) {
            /* Format one: strip the handle/session/parameter number. */
            code &= TPM2_RC_FMT1 | 0x3fu;
            if (code == TPM2_RC_AUTH_FAIL || code == TPM2_RC_BAD_AUTH)
                return TETHER_ERR_TPM_AUTH;
            return TETHER_ERR_TPM;
        }
        if (code == TPM2_RC_RETRY || code == TPM2_RC_YIELDED || code == TPM2_RC_TESTING)
            return TETHER_ERR_TPM_RETRY;
        if (code == TPM2_RC_LOCKOUT)
            return TETHER_ERR_TPM_LOCKOUT;
        return TETHER_ERR_TPM;
    }
    if (code == TSS2_BASE_RC_NO_CONNECTION || code == TSS2_BASE_RC_IO_ERROR)
        return TETHER_ERR_TPM_CONNECT;
    return TETHER_ERR_TPM;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The bounded retry policy around one operation: TETHER_ERR_TPM_RETRY
 * (TPM_RC_RETRY, YIELDED, TESTING) is tried again up to max_attempts times
 * with a doubling delay; every other result ends it. */
typedef struct tpm_retry {
    unsigned attempt; /* 0 before the first call; UINT_MAX: not to be called */
    unsigned delay_ms;
} tpm_retry_t;

/* Sets *st to the refusal when the context is not open (no call is made). */
static tpm_retry_t tpm_retry_begin(tether_tpm_t *tpm, tether_status_t *st)
{
    tpm_retry_t r = {.attempt = 0, .delay_ms = tpm->retry_delay_ms};

    *st = TETHER_OK;
    if (tpm->ops == NULL) {
        *st = tether_tpm_fail(tpm, TETHER_ERR_STATE, 0, "TPM context is not open");
        r.attempt = UINT_MAX;
    }
    return r;
}

/* True when the operation is to be called (again) after the result st. */
static bool tpm_retry_again(tether_tpm_t *tpm, tpm_retry_t *r, tether_status_t st)
{
    if (r->attempt == 0) {
        r->attempt = 1;
        return true;
    }
    if (r->attempt == UINT_MAX || st != TETHER_ERR_TPM_RETRY || r->attempt >= tpm->max_attempts)
        return false;
    tether_debug("hal", "TPM busy (attempt %u): %s", r->attempt, tpm->last_error);
    sleep_ms(r->delay_ms);
    r->delay_ms = r->delay_ms < 1000 ? r->delay_ms * 2 : r->delay_ms;
    r->attempt++;
    return true;
}

/* Runs `call`, an expression that performs the operation once, under the
 * retry policy and leaves its last result in st. */
#define TPM_RUN(st, tpm, call)                                                     \
    for (tpm_retry_t retry_ = tpm_retry_begin((tpm), &(st));                       \
         tpm_retry_again((tpm), &retry_, (st));)                                   \
    (st) = (call)

static bool qualifying_ok(const uint8_t *qualifying, size_t len)
{
    return len <= TETHER_TPM_MAX_QUALIFYING && (qualifying != NULL || len == 0);
}

tether_status_t tether_tpm_get_info(tether_tpm_t *tpm, tether_tpm_info_t *info)
{
    tether_status_t st;

    if (tpm == NULL || info == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->get_info(tpm, info));
    return st;
}

tether_status_t tether_tpm_nv_read(tether_tpm_t *tpm, TPM2_HANDLE nv_index, uint8_t *buf,
                                   size_t buf_size, size_t *len)
{
    tether_status_t st;

    if (tpm == NULL || buf == NULL || len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_read(tpm, nv_index, buf, buf_size, len));
    return st;
}

tether_status_t tether_tpm_create_ek(tether_tpm_t *tpm, tether_ek_type_t type,
                                     tether_tpm_handle_t *ek, TPM2B_PUBLIC *public_area)
{
    tether_status_t st;

    if (tpm == NULL || ek == NULL || public_area == NULL || (unsigned)type >= TETHER_EK_TYPE_COUNT)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->create_ek(tpm, type, ek, public_area));
    return st;
}

tether_status_t tether_tpm_create_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                      tether_key_kind_t kind, tether_tpm_key_blob_t *blob)
{
    tether_status_t st;

    if (tpm == NULL || blob == NULL || ek == TETHER_TPM_HANDLE_NONE ||
        (kind != TETHER_KEY_AK && kind != TETHER_KEY_DEVICE))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->create_key(tpm, ek, kind, blob));
    return st;
}

tether_status_t tether_tpm_load_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                    const tether_tpm_key_blob_t *blob, tether_tpm_handle_t *key)
{
    tether_status_t st;

    if (tpm == NULL || blob == NULL || key == NULL || ek == TETHER_TPM_HANDLE_NONE)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->load_key(tpm, ek, blob, key));
    return st;
}

tether_status_t tether_tpm_flush(tether_tpm_t *tpm, tether_tpm_handle_t handle)
{
    tether_status_t st;

    if (tpm == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (handle == TETHER_TPM_HANDLE_NONE)
        return TETHER_OK;
    TPM_RUN(st, tpm, tpm->ops->flush(tpm, handle));
    return st;
}

tether_status_t tether_tpm_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                   tether_tpm_handle_t object, const uint8_t *qualifying,
                                   size_t qualifying_len, tether_tpm_attestation_t *out)
{
    tether_status_t st;

    if (tpm == NULL || out == NULL || ak == TETHER_TPM_HANDLE_NONE ||
        object == TETHER_TPM_HANDLE_NONE || !qualifying_ok(qualifying, qualifying_len))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->certify(tpm, ak, object, qualifying, qualifying_len, out));
    return st;
}

tether_status_t tether_tpm_sign_digest(tether_tpm_t *tpm, tether_tpm_handle_t key,
                                       const uint8_t digest[32], uint8_t signature[64])
{
    tether_status_t st;

    if (tpm == NULL || digest == NULL || signature == NULL || key == TETHER_TPM_HANDLE_NONE)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->sign_digest(tpm, key, digest, signature));
    return st;
}

tether_status_t tether_tpm_nv_define_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    tether_status_t st;

    if (tpm == NULL || !tether_nv_index_is_owner(nv_index))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_define_counter(tpm, nv_index));
    return st;
}

tether_status_t tether_tpm_nv_undefine(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    tether_status_t st;

    if (tpm == NULL || !tether_nv_index_is_owner(nv_index))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_undefine(tpm, nv_index));
    return st;
}

tether_status_t tether_tpm_nv_increment(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    tether_status_t st;

    if (tpm == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_increment(tpm, nv_index));
    return st;
}

tether_status_t tether_tpm_nv_read_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                           uint64_t *value)
{
    tether_status_t st;

    if (tpm == NULL || value == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_read_counter(tpm, nv_index, value));
    return st;
}

tether_status_t tether_tpm_nv_read_public(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                          TPM2B_NV_PUBLIC *public_area, TPM2B_NAME *name)
{
    tether_status_t st;

    if (tpm == NULL || public_area == NULL || name == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_read_public(tpm, nv_index, public_area, name));
    return st;
}

tether_status_t tether_tpm_nv_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                      TPM2_HANDLE nv_index, const uint8_t *qualifying,
                                      size_t qualifying_len, tether_tpm_attestation_t *out)
{
    tether_status_t st;

    if (tpm == NULL || out == NULL || ak == TETHER_TPM_HANDLE_NONE ||
        !qualifying_ok(qualifying, qualifying_len))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->nv_certify(tpm, ak, nv_index, qualifying, qualifying_len, out));
    return st;
}

tether_status_t tether_tpm_quote(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                 const TPML_PCR_SELECTION *pcrs, const uint8_t *qualifying,
                                 size_t qualifying_len, tether_tpm_attestation_t *out)
{
    tether_status_t st;

    if (tpm == NULL || pcrs == NULL || out == NULL || ak == TETHER_TPM_HANDLE_NONE ||
        pcrs->count == 0 || pcrs->count > TPM2_NUM_PCR_BANKS ||
        !qualifying_ok(qualifying, qualifying_len))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->quote(tpm, ak, pcrs, qualifying, qualifying_len, out));
    return st;
}

tether_status_t tether_tpm_activate_credential(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                               tether_tpm_handle_t ek,
                                               const TPM2B_ID_OBJECT *credential_blob,
                                               const TPM2B_ENCRYPTED_SECRET *secret,
                                               TPM2B_DIGEST *cert_info)
{
    tether_status_t st;

    if (tpm == NULL || credential_blob == NULL || secret == NULL || cert_info == NULL ||
        ak == TETHER_TPM_HANDLE_NONE || ek == TETHER_TPM_HANDLE_NONE ||
        credential_blob->size > sizeof(credential_blob->credential) ||
        secret->size > sizeof(secret->secret))
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->activate_credential(tpm, ak, ek, credential_blob, secret, cert_info));
    return st;
}

tether_status_t tether_tpm_pcr_read(tether_tpm_t *tpm, TPMI_ALG_HASH bank, uint32_t pcr,
                                    TPM2B_DIGEST *value)
{
    tether_status_t st;

    if (tpm == NULL || value == NULL || pcr >= TPM2_MAX_PCRS)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->pcr_read(tpm, bank, pcr, value));
    return st;
}

tether_status_t tether_tpm_pcr_extend(tether_tpm_t *tpm, uint32_t pcr,
                                      const TPML_DIGEST_VALUES *digests)
{
    tether_status_t st;

    if (tpm == NULL || digests == NULL || pcr >= TPM2_MAX_PCRS || digests->count == 0 ||
        digests->count > TPM2_NUM_PCR_BANKS)
        return TETHER_ERR_INVALID_ARGUMENT;
    TPM_RUN(st, tpm, tpm->ops->pcr_extend(tpm, pcr, digests));
    return st;
}

tether_status_t tether_ek_open(tether_tpm_t *tpm, tether_ek_type_t want, tether_ek_t *ek)
{
    tether_status_t rc = TETHER_ERR_NO_EK_CERT;

    if (tpm == NULL || ek == NULL || (unsigned)want > TETHER_EK_ANY)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(ek, 0, sizeof(*ek));
    for (unsigned t = 0; t < TETHER_EK_TYPE_COUNT; t++) {
        tether_ek_type_t type = (tether_ek_type_t)t;
        TPM2_HANDLE index = tether_ek_cert_nv_index(type);

        if (want != TETHER_EK_ANY && want != type)
            continue;
        rc = tether_tpm_nv_read(tpm, index, ek->cert_der, sizeof(ek->cert_der), &ek->cert_len);
        if (rc == TETHER_ERR_NOT_FOUND) {
            rc = TETHER_ERR_NO_EK_CERT;
            continue;
        }
        if (rc != TETHER_OK)
            goto out;
        if ((rc = tether_tpm_create_ek(tpm, type, &ek->handle, &ek->public_area)) != TETHER_OK)
            goto out;
        ek->type = type;
        /* A certificate for another key would let a genuine TPM's certificate
         * vouch for a key that lives elsewhere. */
        rc = tether_tpm2_public_matches_cert(&ek->public_area.publicArea, ek->cert_der,
                                             ek->cert_len);
        if (rc == TETHER_ERR_PARSE)
            tether_tpm_fail(tpm, rc, 0, "EK certificate at NV 0x%08x is not DER X.509", index);
        else if (rc == TETHER_ERR_EK_MISMATCH)
            tether_tpm_fail(tpm, rc, 0,
                            "EK certificate at NV 0x%08x certifies another key than the %s EK",
                            index, tether_ek_type_name(type));
        else if (rc != TETHER_OK)
            tether_tpm_fail(tpm, rc, 0, "cannot compare the %s EK with its certificate: %s",
                            tether_ek_type_name(type), tether_strerror(rc));
        goto out;
    }
    tether_tpm_fail(tpm, rc, 0, "no EK certificate in NV for %s",
                    want == TETHER_EK_ANY ? "any supported EK type" : tether_ek_type_name(want));
out:
    if (rc != TETHER_OK)
        tether_ek_free(tpm, ek);
    return rc;
}

void tether_ek_free(tether_tpm_t *tpm, tether_ek_t *ek)
{
    if (ek == NULL)
        return;
    if (tpm != NULL && ek->handle != TETHER_TPM_HANDLE_NONE)
        (void)tether_tpm_flush(tpm, ek->handle);
    tether_wipe(ek, sizeof(*ek));
}

tether_status_t tether_tpm_key_blob_marshal(const tether_tpm_key_blob_t *blob, uint8_t *buf,
                                            size_t buf_size, size_t *len)
{
    size_t offset = 0;

    if (blob == NULL || buf == NULL || len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(&blob->public_area, buf, buf_size, &offset) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(&blob->private_blob, buf, buf_size, &offset) != TSS2_RC_SUCCESS)
        return TETHER_ERR_TOO_LARGE;
    *len = offset;
    return TETHER_OK;
}

tether_status_t tether_tpm_key_blob_unmarshal(const uint8_t *buf, size_t len,
                                              tether_tpm_key_blob_t *blob)
{
    size_t offset = 0;

    if (buf == NULL || blob == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(blob, 0, sizeof(*blob));
    /* tss2-mu does not check a TPM2B_PUBLIC's size field against the
     * TPMT_PUBLIC it holds; a blob whose size disagrees is not canonical. */
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &offset, &blob->public_area) != TSS2_RC_SUCCESS ||
        blob->public_area.size == 0 || offset != 2u + blob->public_area.size ||
        Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &offset, &blob->private_blob) != TSS2_RC_SUCCESS ||
        blob->private_blob.size == 0 || offset != len) {
        tether_wipe(blob, sizeof(*blob));
        return TETHER_ERR_PARSE;
    }
    return TETHER_OK;
}
