/*
 * A TPM in software for unit tests (tether/tpm_fake.h).
 *
 * It answers in the formats a real TPM uses, so verifiers can be tested
 * against it: public areas from the same templates as the ESAPI code,
 * TPMS_ATTEST marshalled with tss2-mu and signed with ECDSA P-256/SHA-256,
 * names and qualified names as in TPM2 Part 1, 16, NV counters that never go
 * back (Part 1, 37), TPM2_ActivateCredential with the real KDFs, and TSS2
 * response codes that go through the common retry and mapping code.
 *
 * Modelled: endorsement seed (EKs derived from config->seed, so two fakes
 * with one seed are clones), fixedTPM key blobs (AES-GCM under a key derived
 * from the seed and the parent's name), three transient object slots, an EK
 * manufacturer CA, NV indices (counters and EK certificates), 24 SHA-256
 * PCRs, a clock that advances with every command.
 * Not modelled: sessions, authorisation values and policies, dictionary
 * attack logic (inject TPM2_RC_LOCKOUT instead), hierarchies other than
 * endorsement and owner, context save/load, TPM Reset/Restart, PCR banks
 * other than SHA-256, RSA or non-P-256 AKs, persistent handles.
 *
 * Fault injection: ops that have no tether_tpm_fake_op_t of their own
 * (flush, nv_undefine, nv_read_public, pcr_read) only fail under
 * TETHER_FAKE_OP_ANY; nv_read_counter is a TPM2_NV_Read and fails under
 * TETHER_FAKE_OP_NV_READ.
 */
#include "tether/tpm_fake.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hmac_drbg.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include "tether/bytes.h"
#include "tether/credential_soft.h"
#include "tether/mbedtls_bridge.h"
#include "tether/random.h"
#include "tether/tpm2_public.h"
#include "tpm_templates.h"

/* Transient object slots: small like a real TPM's (MAX_LOADED_OBJECTS is 3
 * in the reference implementation), so that a handle leak shows at once. */
#define FAKE_OBJECTS 3
#define FAKE_NV_INDICES 8
#define FAKE_NV_MAX_SIZE 8192 /* above TETHER_TPM_MAX_NV_READ, to test that bound */
#define FAKE_PCRS 24
#define FAKE_FIRMWARE_1 0x20240101u
#define FAKE_FIRMWARE_2 0x00000001u
#define FAKE_SPEC_REVISION 164u
#define FAKE_CLOCK_START 1000000u
#define FAKE_CLOCK_STEP 250u /* ms per command */
#define FAKE_RESET_COUNT 1u
#define FAKE_RESTART_COUNT 0u
#define FAKE_CLOCK_LOST 60000u /* ms of Clock a power loss takes back (not yet in NV) */

/* The private part of a key blob: IV || AES-256-GCM(d) || tag. */
#define WRAP_IV_LEN 12
#define WRAP_SCALAR_LEN 32
#define WRAP_TAG_LEN 16
#define WRAP_BLOB_LEN (WRAP_IV_LEN + WRAP_SCALAR_LEN + WRAP_TAG_LEN)

#define FAKE_CA_NAME "CN=tether fake TPM manufacturer CA,O=tether"
#define FAKE_NOT_BEFORE "20240101000000"
#define FAKE_NOT_AFTER "20991231235959"

/* EK certificate indices as a manufacturer writes them (EK Credential
 * Profile 2.x, 2.2.1.5): platform-created, owner- and auth-readable. */
#define EK_CERT_NV_ATTRIBUTES                                                                      \
    (TPMA_NV_PPWRITE | TPMA_NV_WRITEDEFINE | TPMA_NV_PPREAD | TPMA_NV_OWNERREAD |                  \
     TPMA_NV_AUTHREAD | TPMA_NV_NO_DA | TPMA_NV_WRITTEN | TPMA_NV_PLATFORMCREATE)

typedef struct fake_ek {
    bool ready;
    mbedtls_pk_context key; /* the EK private key, derived from the seed */
    TPM2B_PUBLIC public_area;
} fake_ek_t;

typedef struct fake_object {
    bool used;
    bool is_ek;
    tether_ek_type_t ek_type; /* when is_ek: the key lives in fake_impl_t.eks */
    TPM2B_PUBLIC public_area;
    TPM2B_NAME name;
    TPM2B_NAME qualified_name;
    mbedtls_ecp_keypair key; /* AK or device key */
} fake_object_t;

typedef struct fake_nv {
    bool used;
    bool cert_pending; /* an EK certificate made on first use (RSA keys are slow) */
    tether_ek_type_t cert_type;
    TPMS_NV_PUBLIC public_area;
    uint8_t *data; /* public_area.dataSize bytes */
} fake_nv_t;

typedef struct fake_fault {
    uint32_t rc;
    unsigned count;
} fake_fault_t;

typedef struct fake_impl {
    uint8_t seed[8];            /* config->seed, big-endian */
    uint8_t manufacturer[8];    /* config->manufacturer, or the seed when 0 */
    uint8_t storage_secret[32]; /* the "TPM-internal" secret that wraps key blobs */
    fake_ek_t eks[TETHER_EK_TYPE_COUNT];
    fake_object_t objects[FAKE_OBJECTS];
    fake_nv_t nv[FAKE_NV_INDICES];
    uint64_t highest_counter; /* highest value any NV counter on this TPM has had */
    uint8_t pcrs[FAKE_PCRS][32];
    uint64_t clock_ms;
    uint32_t reset_count;       /* FAKE_RESET_COUNT, + 1 per power loss */
    bool clock_safe;            /* NO after a power loss (never written back to NV here) */
    fake_fault_t faults[TETHER_FAKE_OP_PCR_EXTEND + 1];
    mbedtls_pk_context ca_key;
    uint8_t ca_cert[1024];
    size_t ca_cert_len;
} fake_impl_t;

static const tether_tpm_ops_t fake_ops;

static fake_impl_t *impl_of(tether_tpm_t *tpm)
{
    return (fake_impl_t *)tpm->impl;
}

static fake_impl_t *fake_of(const tether_tpm_t *tpm)
{
    return (tpm != NULL && tpm->ops == &fake_ops) ? (fake_impl_t *)tpm->impl : NULL;
}

/* Records a TPM error the way the ESAPI code does: command, why, decoded
 * response code. The status comes from the common mapping. */
static tether_status_t tpm_error(tether_tpm_t *tpm, const char *command, uint32_t rc,
                                 const char *why)
{
    return tether_tpm_fail(tpm, tether_tpm_rc_status(rc), rc, "%s: %s: %s (0x%x)", command, why,
                           Tss2_RC_Decode(rc), rc);
}

static tether_status_t crypto_error(tether_tpm_t *tpm, const char *command, const char *what,
                                    int ret)
{
    return tether_tpm_fail(tpm, TETHER_ERR_CRYPTO, 0, "%s: fake TPM cannot %s (mbedTLS -0x%04x)",
                           command, what, (unsigned)-ret);
}

/* Every command starts here: the clock ticks, then an injected fault (for
 * this op, else for any op) fails the command before it does anything. */
static tether_status_t fake_begin(tether_tpm_t *tpm, tether_tpm_fake_op_t op, const char *command)
{
    fake_impl_t *impl = impl_of(tpm);
    fake_fault_t *fault = NULL;

    impl->clock_ms += FAKE_CLOCK_STEP;
    if (op != TETHER_FAKE_OP_ANY && impl->faults[op].count > 0)
        fault = &impl->faults[op];
    else if (impl->faults[TETHER_FAKE_OP_ANY].count > 0)
        fault = &impl->faults[TETHER_FAKE_OP_ANY];
    if (fault == NULL)
        return TETHER_OK;
    fault->count--;
    return tpm_error(tpm, command, fault->rc, "injected fault");
}

static void put_be64(uint8_t out[8], uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t in[8])
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* A deterministic generator for what the seed decides (EKs, the CA): HMAC-DRBG
 * over label || 0 || seed || extra. */
static int drbg_from(const uint8_t seed[8], const char *label, uint8_t extra,
                     mbedtls_hmac_drbg_context *drbg)
{
    uint8_t material[64];
    size_t label_len = strlen(label), len = 0;
    int ret;

    if (label_len + 1 + 8 + 1 > sizeof(material))
        return -1;
    memcpy(material, label, label_len);
    len += label_len;
    material[len++] = 0;
    memcpy(material + len, seed, 8);
    len += 8;
    material[len++] = extra;
    ret = mbedtls_hmac_drbg_seed_buf(drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), material,
                                     len);
    tether_wipe(material, sizeof(material));
    return ret;
}

static int seed_drbg(const fake_impl_t *impl, const char *label, uint8_t extra,
                     mbedtls_hmac_drbg_context *drbg)
{
    return drbg_from(impl->seed, label, extra, drbg);
}

static size_t public_size(const TPMT_PUBLIC *pub)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t offset = 0;

    if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &offset) != TSS2_RC_SUCCESS)
        return 0;
    return offset;
}

/* --- objects ------------------------------------------------------------ */

static fake_object_t *object_get(tether_tpm_t *tpm, tether_tpm_handle_t handle)
{
    fake_impl_t *impl = impl_of(tpm);

    if (handle == TETHER_TPM_HANDLE_NONE || handle > FAKE_OBJECTS ||
        !impl->objects[handle - 1].used) {
        tether_tpm_fail(tpm, TETHER_ERR_INVALID_ARGUMENT, 0, "unknown TPM object handle %u",
                        handle);
        return NULL;
    }
    return &impl->objects[handle - 1];
}

/* A free object slot, marked used, and its handle; NULL with *status set
 * when every slot is taken. Like object_get, it answers with the pointer so
 * that no caller (and no optimiser) has to prove a status implies one. */
static fake_object_t *object_alloc(tether_tpm_t *tpm, const char *command,
                                   tether_tpm_handle_t *handle, tether_status_t *status)
{
    fake_impl_t *impl = impl_of(tpm);

    *handle = TETHER_TPM_HANDLE_NONE;
    *status = TETHER_OK;
    for (unsigned i = 0; i < FAKE_OBJECTS; i++) {
        if (!impl->objects[i].used) {
            impl->objects[i].used = true;
            *handle = i + 1;
            return &impl->objects[i];
        }
    }
    *status = tether_tpm_fail(tpm, TETHER_ERR_STATE, TPM2_RC_OBJECT_MEMORY,
                              "%s: object memory full: %d transient objects are loaded already "
                              "(flush the ones no longer needed; is a handle leaking?) (0x%x)",
                              command, FAKE_OBJECTS, TPM2_RC_OBJECT_MEMORY);
    return NULL;
}

static void object_release(fake_object_t *obj)
{
    mbedtls_ecp_keypair_free(&obj->key);
    tether_wipe(obj, sizeof(*obj));
    mbedtls_ecp_keypair_init(&obj->key);
}

/* The signer of an attestation: a restricted signing key. A real TPM would
 * let any signing key sign; tether's rule is that only the AK signs
 * attestations, and the fake holds callers to it. */
static tether_status_t signer_check(tether_tpm_t *tpm, const char *command,
                                    const fake_object_t *signer, uint32_t handle_number)
{
    TPMA_OBJECT attributes = signer->public_area.publicArea.objectAttributes;

    if (signer->is_ek || !(attributes & TPMA_OBJECT_SIGN_ENCRYPT))
        return tpm_error(tpm, command, TPM2_RC_KEY + handle_number, "the key is not a signing key");
    if (!(attributes & TPMA_OBJECT_RESTRICTED))
        return tpm_error(tpm, command, TPM2_RC_ATTRIBUTES + handle_number,
                         "only a restricted signing key (the AK) may sign attestations");
    return TETHER_OK;
}

/* --- EKs and the manufacturer CA ----------------------------------------- */

static tether_status_t ek_get(tether_tpm_t *tpm, const char *command, tether_ek_type_t type,
                              fake_ek_t **out)
{
    fake_impl_t *impl = impl_of(tpm);
    fake_ek_t *ek = &impl->eks[type];
    mbedtls_hmac_drbg_context drbg;
    TPMT_PUBLIC *p = &ek->public_area.publicArea;
    int ret;

    *out = NULL;
    if (ek->ready) {
        *out = ek;
        return TETHER_OK;
    }
    mbedtls_hmac_drbg_init(&drbg);
    tether_ek_template(type, &ek->public_area);
    ret = seed_drbg(impl, "tether fake endorsement", (uint8_t)type, &drbg);
    if (ret == 0 && type == TETHER_EK_RSA2048) {
        mbedtls_rsa_context *rsa;

        ret = mbedtls_pk_setup(&ek->key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
        if (ret == 0) {
            rsa = mbedtls_pk_rsa(ek->key);
            /* The EK decrypts with OAEP/SHA-256 (TPM2 Part 1, B.10.3). */
            mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
            ret = mbedtls_rsa_gen_key(rsa, mbedtls_hmac_drbg_random, &drbg, 2048, 65537);
        }
        if (ret == 0)
            ret = mbedtls_rsa_export_raw(rsa, p->unique.rsa.buffer, 256, NULL, 0, NULL, 0, NULL, 0,
                                         NULL, 0);
        p->unique.rsa.size = 256;
    } else if (ret == 0) {
        size_t width = type == TETHER_EK_ECC_P384 ? 48 : 32;
        mbedtls_ecp_group_id group =
            type == TETHER_EK_ECC_P384 ? MBEDTLS_ECP_DP_SECP384R1 : MBEDTLS_ECP_DP_SECP256R1;
        mbedtls_ecp_keypair *ec;

        ret = mbedtls_pk_setup(&ek->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
        if (ret == 0) {
            ec = mbedtls_pk_ec(ek->key);
            ret = mbedtls_ecp_gen_key(group, ec, mbedtls_hmac_drbg_random, &drbg);
            if (ret == 0)
                ret = mbedtls_mpi_write_binary(&ec->Q.X, p->unique.ecc.x.buffer, width);
            if (ret == 0)
                ret = mbedtls_mpi_write_binary(&ec->Q.Y, p->unique.ecc.y.buffer, width);
        }
        p->unique.ecc.x.size = (uint16_t)width;
        p->unique.ecc.y.size = (uint16_t)width;
    }
    mbedtls_hmac_drbg_free(&drbg);
    if (ret != 0) {
        mbedtls_pk_free(&ek->key);
        mbedtls_pk_init(&ek->key);
        memset(&ek->public_area, 0, sizeof(ek->public_area));
        return crypto_error(tpm, command, "derive the EK from its seed", ret);
    }
    ek->public_area.size = (uint16_t)public_size(p);
    ek->ready = true;
    *out = ek;
    return TETHER_OK;
}

/* Writes a certificate for subject_key signed by the CA key into buf; *der
 * points into buf. */
static int cert_write(fake_impl_t *impl, mbedtls_hmac_drbg_context *drbg, const char *subject,
                      mbedtls_pk_context *subject_key, bool is_ca, unsigned key_usage, uint8_t *buf,
                      size_t size, const uint8_t **der, size_t *len)
{
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    uint8_t serial_bytes[16];
    int ret;

    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    /* A positive serial derived from the seed: unique per fake device. */
    ret = mbedtls_hmac_drbg_random(drbg, serial_bytes, sizeof(serial_bytes));
    serial_bytes[0] = (uint8_t)((serial_bytes[0] & 0x7f) | 0x01);
    if (ret == 0)
        ret = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof(serial_bytes));
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, subject_key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &impl->ca_key);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_serial(&crt, &serial);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_subject_name(&crt, subject);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_issuer_name(&crt, FAKE_CA_NAME);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_validity(&crt, FAKE_NOT_BEFORE, FAKE_NOT_AFTER);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_basic_constraints(&crt, is_ca ? 1 : 0, is_ca ? 0 : -1);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_key_usage(&crt, key_usage);
    if (ret == 0) {
        ret = mbedtls_x509write_crt_der(&crt, buf, size, mbedtls_hmac_drbg_random, drbg);
        if (ret > 0) {
            *len = (size_t)ret;
            *der = buf + size - (size_t)ret;
            ret = 0;
        } else if (ret == 0) {
            ret = -1;
        }
    }
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
    return ret;
}

static tether_status_t ca_create(tether_tpm_t *tpm)
{
    fake_impl_t *impl = impl_of(tpm);
    mbedtls_hmac_drbg_context drbg;
    uint8_t buf[sizeof(impl->ca_cert)];
    const uint8_t *der = NULL;
    size_t len = 0;
    int ret;

    mbedtls_hmac_drbg_init(&drbg);
    ret = drbg_from(impl->manufacturer, "tether fake manufacturer CA", 0, &drbg);
    if (ret == 0)
        ret = mbedtls_pk_setup(&impl->ca_key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (ret == 0)
        ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(impl->ca_key),
                                  mbedtls_hmac_drbg_random, &drbg);
    if (ret == 0)
        ret = cert_write(impl, &drbg, FAKE_CA_NAME, &impl->ca_key, true,
                         MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN, buf, sizeof(buf),
                         &der, &len);
    mbedtls_hmac_drbg_free(&drbg);
    if (ret != 0)
        return crypto_error(tpm, "open", "make its manufacturer CA", ret);
    memcpy(impl->ca_cert, der, len);
    impl->ca_cert_len = len;
    return TETHER_OK;
}

/* The EK certificate of an index still pending, made now. */
static tether_status_t ek_cert_make(tether_tpm_t *tpm, const char *command, fake_nv_t *nv)
{
    fake_impl_t *impl = impl_of(tpm);
    mbedtls_hmac_drbg_context drbg;
    uint8_t buf[2048];
    const uint8_t *der = NULL;
    char subject[96];
    size_t len = 0;
    fake_ek_t *ek;
    tether_status_t status;
    int ret;

    if ((status = ek_get(tpm, command, nv->cert_type, &ek)) != TETHER_OK)
        return status;
    snprintf(subject, sizeof(subject), "CN=tether fake EK %s,O=tether",
             tether_ek_type_name(nv->cert_type));
    mbedtls_hmac_drbg_init(&drbg);
    ret = seed_drbg(impl, "tether fake EK certificate", (uint8_t)nv->cert_type, &drbg);
    if (ret == 0)
        ret = cert_write(impl, &drbg, subject, &ek->key, false,
                         nv->cert_type == TETHER_EK_RSA2048 ? MBEDTLS_X509_KU_KEY_ENCIPHERMENT
                                                            : MBEDTLS_X509_KU_KEY_AGREEMENT,
                         buf, sizeof(buf), &der, &len);
    mbedtls_hmac_drbg_free(&drbg);
    if (ret != 0)
        return crypto_error(tpm, command, "write the EK certificate", ret);
    if ((nv->data = malloc(len)) == NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_NO_MEMORY, 0, "%s: out of memory", command);
    memcpy(nv->data, der, len);
    nv->public_area.dataSize = (uint16_t)len;
    nv->cert_pending = false;
    return TETHER_OK;
}

/* --- NV ----------------------------------------------------------------- */

static fake_nv_t *nv_find(fake_impl_t *impl, TPM2_HANDLE nv_index)
{
    for (unsigned i = 0; i < FAKE_NV_INDICES; i++) {
        if (impl->nv[i].used && impl->nv[i].public_area.nvIndex == nv_index)
            return &impl->nv[i];
    }
    return NULL;
}

static fake_nv_t *nv_free_slot(fake_impl_t *impl)
{
    for (unsigned i = 0; i < FAKE_NV_INDICES; i++) {
        if (!impl->nv[i].used)
            return &impl->nv[i];
    }
    return NULL;
}

static void nv_release(fake_nv_t *nv)
{
    if (nv->data != NULL) {
        tether_wipe(nv->data, nv->public_area.dataSize);
        free(nv->data);
    }
    tether_wipe(nv, sizeof(*nv));
}

/* A defined index, its certificate made if pending; NULL with *status set
 * otherwise. Undefined: the error the ESAPI code gives (TPM_RC_HANDLE from
 * TPM2_NV_ReadPublic). Answers with the pointer, as object_alloc does. */
static fake_nv_t *nv_get(tether_tpm_t *tpm, const char *command, TPM2_HANDLE nv_index,
                         tether_status_t *status)
{
    fake_nv_t *nv = nv_find(impl_of(tpm), nv_index);

    *status = TETHER_OK;
    if (nv == NULL) {
        *status = tether_tpm_fail(tpm, TETHER_ERR_NOT_FOUND, TPM2_RC_HANDLE + TPM2_RC_1,
                                  "NV index 0x%08x is not defined", nv_index);
        return NULL;
    }
    if (nv->cert_pending && (*status = ek_cert_make(tpm, command, nv)) != TETHER_OK)
        return NULL;
    return nv;
}

/* The start of a command on an NV index: fake_begin, then nv_get. */
static fake_nv_t *nv_begin(tether_tpm_t *tpm, tether_tpm_fake_op_t op, const char *command,
                           TPM2_HANDLE nv_index, tether_status_t *status)
{
    if ((*status = fake_begin(tpm, op, command)) != TETHER_OK)
        return NULL;
    return nv_get(tpm, command, nv_index, status);
}

static bool nv_written(const fake_nv_t *nv)
{
    return (nv->public_area.attributes & TPMA_NV_WRITTEN) != 0;
}

static bool nv_is_counter(const fake_nv_t *nv)
{
    return ((nv->public_area.attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT) ==
           TPM2_NT_COUNTER;
}

/* nameAlg || H(marshalled TPMS_NV_PUBLIC) (TPM2 Part 1, 16); it changes when
 * TPMA_NV_WRITTEN is set by the first write. */
static tether_status_t nv_name(tether_tpm_t *tpm, const char *command, const fake_nv_t *nv,
                               TPM2B_NAME *name)
{
    const mbedtls_md_info_t *md =
        mbedtls_md_info_from_type((mbedtls_md_type_t)tether_tpm2_md_type(nv->public_area.nameAlg));
    uint8_t buf[sizeof(TPMS_NV_PUBLIC)];
    size_t offset = 0;

    memset(name, 0, sizeof(*name));
    if (md == NULL ||
        Tss2_MU_TPMS_NV_PUBLIC_Marshal(&nv->public_area, buf, sizeof(buf), &offset) !=
            TSS2_RC_SUCCESS ||
        mbedtls_md(md, buf, offset, name->name + 2) != 0)
        return tether_tpm_fail(tpm, TETHER_ERR_TPM, TPM2_RC_FAILURE,
                               "%s: cannot compute the name of NV index 0x%08x", command,
                               nv->public_area.nvIndex);
    name->name[0] = (uint8_t)(nv->public_area.nameAlg >> 8);
    name->name[1] = (uint8_t)nv->public_area.nameAlg;
    name->size = (uint16_t)(2 + mbedtls_md_get_size(md));
    return TETHER_OK;
}

/* --- attestations --------------------------------------------------------- */

static int ecdsa_sign_p256(mbedtls_ecp_keypair *key, const uint8_t hash[32], uint8_t r_out[32],
                           uint8_t s_out[32])
{
    mbedtls_mpi r, s;
    int ret;

    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ret = mbedtls_ecdsa_sign(&key->grp, &r, &s, &key->d, hash, 32, tether_random_mbedtls, NULL);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&r, r_out, 32);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&s, s_out, 32);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ret;
}

/* Fills the common header of TPMS_ATTEST (TPM2 Part 2, 10.12.12), marshals
 * it and signs SHA-256 of the bytes with the signer, as TPM2_Certify,
 * TPM2_NV_Certify and TPM2_Quote do. */
static tether_status_t attest_sign(tether_tpm_t *tpm, const char *command, fake_object_t *signer,
                                   const uint8_t *qualifying, size_t qualifying_len,
                                   TPMS_ATTEST *attest, tether_tpm_attestation_t *out)
{
    fake_impl_t *impl = impl_of(tpm);
    uint8_t hash[32];
    size_t offset = 0;
    int ret;

    attest->magic = TPM2_GENERATED_VALUE;
    attest->qualifiedSigner = signer->qualified_name;
    attest->extraData.size = (uint16_t)qualifying_len;
    if (qualifying_len > 0)
        memcpy(attest->extraData.buffer, qualifying, qualifying_len);
    /* The AK is in the endorsement hierarchy, so clockInfo is not
     * obfuscated (TPM2 Part 1, 36.6). */
    attest->clockInfo.clock = impl->clock_ms;
    attest->clockInfo.resetCount = impl->reset_count;
    attest->clockInfo.restartCount = FAKE_RESTART_COUNT;
    attest->clockInfo.safe = impl->clock_safe ? TPM2_YES : TPM2_NO;
    attest->firmwareVersion = ((uint64_t)FAKE_FIRMWARE_1 << 32) | FAKE_FIRMWARE_2;

    memset(out, 0, sizeof(*out));
    if (Tss2_MU_TPMS_ATTEST_Marshal(attest, out->attest.attestationData,
                                    sizeof(out->attest.attestationData),
                                    &offset) != TSS2_RC_SUCCESS)
        return tether_tpm_fail(tpm, TETHER_ERR_TPM, TPM2_RC_FAILURE,
                               "%s: cannot marshal TPMS_ATTEST", command);
    out->attest.size = (uint16_t)offset;
    ret = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), out->attest.attestationData,
                     offset, hash);
    if (ret == 0)
        ret = ecdsa_sign_p256(&signer->key, hash, out->signature.signature.ecdsa.signatureR.buffer,
                              out->signature.signature.ecdsa.signatureS.buffer);
    if (ret != 0) {
        memset(out, 0, sizeof(*out));
        return crypto_error(tpm, command, "sign", ret);
    }
    out->signature.sigAlg = TPM2_ALG_ECDSA;
    out->signature.signature.ecdsa.hash = TPM2_ALG_SHA256;
    out->signature.signature.ecdsa.signatureR.size = 32;
    out->signature.signature.ecdsa.signatureS.size = 32;
    return TETHER_OK;
}

/* --- key wrapping ----------------------------------------------------------- */

/* The wrapping key for children of parent: only this TPM (this seed) and
 * this parent give it, which is what makes the blob fixedTPM. */
static int wrap_key(const fake_impl_t *impl, const fake_object_t *parent, uint8_t key[32])
{
    static const char label[] = "tether fake wrap";
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    int ret;

    mbedtls_md_init(&ctx);
    ret = mbedtls_md_setup(&ctx, md, 1);
    if (ret == 0)
        ret = mbedtls_md_hmac_starts(&ctx, impl->storage_secret, sizeof(impl->storage_secret));
    if (ret == 0)
        ret = mbedtls_md_hmac_update(&ctx, (const uint8_t *)label, sizeof(label));
    if (ret == 0)
        ret = mbedtls_md_hmac_update(&ctx, parent->name.name, parent->name.size);
    if (ret == 0)
        ret = mbedtls_md_hmac_finish(&ctx, key);
    mbedtls_md_free(&ctx);
    return ret;
}

/* Encrypts (wrap) or decrypts (!wrap) the private scalar under the parent,
 * with the marshalled public area as additional data so the two parts of
 * a blob cannot be mixed. Returns MBEDTLS_ERR_GCM_AUTH_FAILED for a blob
 * that is not ours. */
static int wrap_crypt(const fake_impl_t *impl, const fake_object_t *parent, const TPMT_PUBLIC *pub,
                      bool wrap, uint8_t scalar[WRAP_SCALAR_LEN], TPM2B_PRIVATE *blob)
{
    uint8_t key[32], aad[sizeof(TPMT_PUBLIC)];
    size_t aad_len = 0;
    mbedtls_gcm_context gcm;
    uint8_t *iv = blob->buffer, *ct = blob->buffer + WRAP_IV_LEN,
            *tag = blob->buffer + WRAP_IV_LEN + WRAP_SCALAR_LEN;
    int ret;

    mbedtls_gcm_init(&gcm);
    if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, aad, sizeof(aad), &aad_len) != TSS2_RC_SUCCESS) {
        ret = MBEDTLS_ERR_GCM_BAD_INPUT;
        goto out;
    }
    if ((ret = wrap_key(impl, parent, key)) != 0 ||
        (ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256)) != 0)
        goto out;
    if (wrap) {
        if ((ret = tether_random_mbedtls(NULL, iv, WRAP_IV_LEN)) != 0)
            goto out;
        ret = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, WRAP_SCALAR_LEN, iv, WRAP_IV_LEN,
                                        aad, aad_len, scalar, ct, WRAP_TAG_LEN, tag);
        blob->size = WRAP_BLOB_LEN;
    } else {
        ret = mbedtls_gcm_auth_decrypt(&gcm, WRAP_SCALAR_LEN, iv, WRAP_IV_LEN, aad, aad_len, tag,
                                       WRAP_TAG_LEN, ct, scalar);
    }
out:
    mbedtls_gcm_free(&gcm);
    tether_wipe(key, sizeof(key));
    return ret;
}

/* --- operations ------------------------------------------------------------ */

static tether_status_t fake_get_info(tether_tpm_t *tpm, tether_tpm_info_t *info)
{
    tether_status_t status;

    memset(info, 0, sizeof(*info));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_GET_INFO, "TPM2_GetCapability")) != TETHER_OK)
        return status;
    memcpy(info->manufacturer, "FAKE", 5);
    snprintf(info->vendor, sizeof(info->vendor), "%s", "tether fake");
    info->firmware_version_1 = FAKE_FIRMWARE_1;
    info->firmware_version_2 = FAKE_FIRMWARE_2;
    info->spec_revision = FAKE_SPEC_REVISION;
    info->pcr_bank_count = 1;
    info->pcr_banks[0] = TPM2_ALG_SHA256;
    return TETHER_OK;
}

static tether_status_t fake_nv_read(tether_tpm_t *tpm, TPM2_HANDLE nv_index, uint8_t *buf,
                                    size_t buf_size, size_t *len)
{
    static const char command[] = "TPM2_NV_Read";
    tether_status_t status;
    fake_nv_t *nv;

    *len = 0;
    if ((nv = nv_begin(tpm, TETHER_FAKE_OP_NV_READ, command, nv_index, &status)) == NULL)
        return status;
    if (nv->public_area.dataSize > buf_size)
        return tether_tpm_fail(tpm, TETHER_ERR_TOO_LARGE, 0,
                               "NV index 0x%08x holds %u bytes, more than the %zu allowed",
                               nv_index, nv->public_area.dataSize, buf_size);
    if (!nv_written(nv))
        return tpm_error(tpm, command, TPM2_RC_NV_UNINITIALIZED, "the index was never written");
    memcpy(buf, nv->data, nv->public_area.dataSize);
    *len = nv->public_area.dataSize;
    return TETHER_OK;
}

static tether_status_t fake_create_ek(tether_tpm_t *tpm, tether_ek_type_t type,
                                      tether_tpm_handle_t *handle, TPM2B_PUBLIC *public_area)
{
    static const char command[] = "TPM2_CreatePrimary(EK)";
    TPM2B_NAME name, qualified_name;
    fake_object_t *obj;
    tether_status_t status;
    fake_ek_t *ek;

    *handle = TETHER_TPM_HANDLE_NONE;
    memset(public_area, 0, sizeof(*public_area));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_CREATE_EK, command)) != TETHER_OK ||
        (status = ek_get(tpm, command, type, &ek)) != TETHER_OK)
        return status;
    /* A primary key's parent is its hierarchy (TPM2 Part 1, 16). */
    if (tether_tpm2_public_name(&ek->public_area.publicArea, &name) != TETHER_OK ||
        tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT, &ek->public_area.publicArea,
                                   &qualified_name) != TETHER_OK)
        return tether_tpm_fail(tpm, TETHER_ERR_TPM, TPM2_RC_FAILURE,
                               "%s: cannot compute the EK's name", command);
    if ((obj = object_alloc(tpm, command, handle, &status)) == NULL)
        return status;
    obj->is_ek = true;
    obj->ek_type = type;
    obj->public_area = ek->public_area;
    obj->name = name;
    obj->qualified_name = qualified_name;
    *public_area = ek->public_area;
    return TETHER_OK;
}

static tether_status_t fake_create_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                       tether_key_kind_t kind, tether_tpm_key_blob_t *blob)
{
    const char *command = kind == TETHER_KEY_AK ? "TPM2_Create(AK)" : "TPM2_Create(device key)";
    fake_impl_t *impl = impl_of(tpm);
    mbedtls_ecp_keypair key;
    uint8_t scalar[WRAP_SCALAR_LEN];
    tether_tpm_key_blob_t made;
    TPMT_PUBLIC *p = &made.public_area.publicArea;
    fake_object_t *parent;
    tether_status_t status;
    int ret;

    memset(blob, 0, sizeof(*blob));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_CREATE_KEY, command)) != TETHER_OK)
        return status;
    if ((parent = object_get(tpm, ek)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (!parent->is_ek)
        return tpm_error(tpm, command, TPM2_RC_TYPE + TPM2_RC_1,
                         "the parent is not a storage key (pass the EK)");
    memset(&made, 0, sizeof(made));
    mbedtls_ecp_keypair_init(&key);
    tether_key_template(kind, &made.public_area);
    ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &key, tether_random_mbedtls, NULL);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&key.Q.X, p->unique.ecc.x.buffer, 32);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&key.Q.Y, p->unique.ecc.y.buffer, 32);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&key.d, scalar, sizeof(scalar));
    p->unique.ecc.x.size = 32;
    p->unique.ecc.y.size = 32;
    made.public_area.size = (uint16_t)public_size(p);
    if (ret == 0)
        ret = wrap_crypt(impl, parent, p, true, scalar, &made.private_blob);
    if (ret != 0)
        status = crypto_error(tpm, command, "create the key", ret);
    else
        *blob = made;
    mbedtls_ecp_keypair_free(&key);
    tether_wipe(scalar, sizeof(scalar));
    tether_wipe(&made, sizeof(made));
    return status;
}

static tether_status_t fake_load_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                     const tether_tpm_key_blob_t *blob, tether_tpm_handle_t *handle)
{
    static const char command[] = "TPM2_Load";
    fake_impl_t *impl = impl_of(tpm);
    const TPMT_PUBLIC *p = &blob->public_area.publicArea;
    uint8_t scalar[WRAP_SCALAR_LEN], x[32], y[32];
    TPM2B_PRIVATE private_blob = blob->private_blob;
    TPM2B_NAME name, qualified_name;
    fake_object_t *parent, *obj = NULL;
    tether_status_t status;
    int ret;

    *handle = TETHER_TPM_HANDLE_NONE;
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_LOAD_KEY, command)) != TETHER_OK)
        return status;
    if ((parent = object_get(tpm, ek)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (!parent->is_ek)
        return tpm_error(tpm, command, TPM2_RC_TYPE + TPM2_RC_1,
                         "the parent is not a storage key (pass the EK)");
    if (private_blob.size != WRAP_BLOB_LEN)
        return tpm_error(tpm, command, TPM2_RC_SIZE + TPM2_RC_P + TPM2_RC_1,
                         "the private part was not made by this kind of TPM");
    /* Integrity first, as a TPM does: nothing of the blob is trusted before. */
    ret = wrap_crypt(impl, parent, p, false, scalar, &private_blob);
    if (ret == MBEDTLS_ERR_GCM_AUTH_FAILED || ret == MBEDTLS_ERR_GCM_BAD_INPUT) {
        status = tpm_error(tpm, command, TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1,
                           "the key blob does not verify under this parent (made by another "
                           "TPM or under another EK, or changed)");
        goto out;
    }
    if (ret != 0) {
        status = crypto_error(tpm, command, "unwrap the key", ret);
        goto out;
    }
    if (p->type != TPM2_ALG_ECC || p->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
        p->unique.ecc.x.size != 32 || p->unique.ecc.y.size != 32) {
        status = tpm_error(tpm, command, TPM2_RC_TYPE + TPM2_RC_P + TPM2_RC_2,
                           "the fake TPM loads only ECC P-256 keys");
        goto out;
    }
    if (tether_tpm2_public_name(p, &name) != TETHER_OK ||
        tether_tpm2_qualified_name(&parent->qualified_name, 0, p, &qualified_name) != TETHER_OK) {
        status = tether_tpm_fail(tpm, TETHER_ERR_TPM, TPM2_RC_FAILURE,
                                 "%s: cannot compute the key's name", command);
        goto out;
    }
    if ((obj = object_alloc(tpm, command, handle, &status)) == NULL)
        goto out;
    ret = mbedtls_ecp_group_load(&obj->key.grp, MBEDTLS_ECP_DP_SECP256R1);
    if (ret == 0)
        ret = mbedtls_mpi_read_binary(&obj->key.d, scalar, sizeof(scalar));
    if (ret == 0)
        ret = mbedtls_ecp_mul(&obj->key.grp, &obj->key.Q, &obj->key.d, &obj->key.grp.G,
                              tether_random_mbedtls, NULL);
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&obj->key.Q.X, x, sizeof(x));
    if (ret == 0)
        ret = mbedtls_mpi_write_binary(&obj->key.Q.Y, y, sizeof(y));
    if (ret != 0) {
        status = crypto_error(tpm, command, "load the key", ret);
        goto out;
    }
    if (memcmp(x, p->unique.ecc.x.buffer, 32) != 0 || memcmp(y, p->unique.ecc.y.buffer, 32) != 0) {
        status = tpm_error(tpm, command, TPM2_RC_BINDING + TPM2_RC_P + TPM2_RC_2,
                           "the public and private parts do not belong together");
        goto out;
    }
    obj->public_area = blob->public_area;
    obj->public_area.size = (uint16_t)public_size(p);
    obj->name = name;
    obj->qualified_name = qualified_name;
    status = TETHER_OK;
out:
    if (status != TETHER_OK && obj != NULL) {
        object_release(obj);
        *handle = TETHER_TPM_HANDLE_NONE;
    }
    tether_wipe(scalar, sizeof(scalar));
    tether_wipe(&private_blob, sizeof(private_blob));
    return status;
}

static tether_status_t fake_flush(tether_tpm_t *tpm, tether_tpm_handle_t handle)
{
    fake_object_t *obj;
    tether_status_t status;

    if ((status = fake_begin(tpm, TETHER_FAKE_OP_ANY, "TPM2_FlushContext")) != TETHER_OK)
        return status;
    if ((obj = object_get(tpm, handle)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    object_release(obj);
    return TETHER_OK;
}

static tether_status_t fake_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                    tether_tpm_handle_t object, const uint8_t *qualifying,
                                    size_t qualifying_len, tether_tpm_attestation_t *out)
{
    static const char command[] = "TPM2_Certify";
    fake_object_t *signer, *certified;
    tether_status_t status;
    TPMS_ATTEST attest;

    memset(out, 0, sizeof(*out));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_CERTIFY, command)) != TETHER_OK)
        return status;
    if ((certified = object_get(tpm, object)) == NULL || (signer = object_get(tpm, ak)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* TPM2_Certify: objectHandle is handle 1, signHandle handle 2. */
    if ((status = signer_check(tpm, command, signer, TPM2_RC_2)) != TETHER_OK)
        return status;
    memset(&attest, 0, sizeof(attest));
    attest.type = TPM2_ST_ATTEST_CERTIFY;
    attest.attested.certify.name = certified->name;
    attest.attested.certify.qualifiedName = certified->qualified_name;
    return attest_sign(tpm, command, signer, qualifying, qualifying_len, &attest, out);
}

static tether_status_t fake_sign_digest(tether_tpm_t *tpm, tether_tpm_handle_t handle,
                                        const uint8_t digest[32], uint8_t signature[64])
{
    static const char command[] = "TPM2_Sign";
    fake_object_t *key;
    tether_status_t status;
    TPMA_OBJECT attributes;
    int ret;

    memset(signature, 0, 64);
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_SIGN, command)) != TETHER_OK)
        return status;
    if ((key = object_get(tpm, handle)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    attributes = key->public_area.publicArea.objectAttributes;
    if (key->is_ek || !(attributes & TPMA_OBJECT_SIGN_ENCRYPT))
        return tpm_error(tpm, command, TPM2_RC_KEY + TPM2_RC_1, "the key is not a signing key");
    /* A restricted key signs an outside digest only with a hashcheck ticket
     * proving the digest does not start with TPM_GENERATED_VALUE; without
     * one the TPM answers TPM_RC_TICKET (TPM2 Part 3, 20.2). */
    if (attributes & TPMA_OBJECT_RESTRICTED)
        return tpm_error(tpm, command, TPM2_RC_TICKET + TPM2_RC_P + TPM2_RC_3,
                         "a restricted key (the AK) cannot sign an outside digest; use the "
                         "device key");
    ret = ecdsa_sign_p256(&key->key, digest, signature, signature + 32);
    if (ret != 0) {
        tether_wipe(signature, 64);
        return crypto_error(tpm, command, "sign", ret);
    }
    return TETHER_OK;
}

static tether_status_t fake_nv_define_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    static const char command[] = "TPM2_NV_DefineSpace";
    fake_impl_t *impl = impl_of(tpm);
    TPM2B_NV_PUBLIC tmpl;
    tether_status_t status;
    fake_nv_t *nv;

    if ((status = fake_begin(tpm, TETHER_FAKE_OP_NV_DEFINE, command)) != TETHER_OK)
        return status;
    if (nv_find(impl, nv_index) != NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_STATE, TPM2_RC_NV_DEFINED,
                               "NV index 0x%08x is already defined", nv_index);
    if ((nv = nv_free_slot(impl)) == NULL)
        return tpm_error(tpm, command, TPM2_RC_NV_SPACE, "no room for another NV index");
    if ((nv->data = calloc(1, 8)) == NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_NO_MEMORY, 0, "%s: out of memory", command);
    tether_counter_template(nv_index, &tmpl);
    nv->used = true;
    nv->public_area = tmpl.nvPublic;
    return TETHER_OK;
}

static tether_status_t fake_nv_undefine(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    static const char command[] = "TPM2_NV_UndefineSpace";
    tether_status_t status;
    fake_nv_t *nv = NULL;

    if ((status = fake_begin(tpm, TETHER_FAKE_OP_ANY, command)) != TETHER_OK)
        return status;
    if ((nv = nv_find(impl_of(tpm), nv_index)) == NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_NOT_FOUND, TPM2_RC_HANDLE + TPM2_RC_1,
                               "NV index 0x%08x is not defined", nv_index);
    if (nv->public_area.attributes & TPMA_NV_PLATFORMCREATE)
        return tpm_error(tpm, command, TPM2_RC_NV_AUTHORIZATION,
                         "the index was created by the platform; the owner cannot delete it");
    /* The counter's value lives on in highest_counter (updated by every
     * increment), so a new counter never starts below it. */
    nv_release(nv);
    return TETHER_OK;
}

static tether_status_t fake_nv_increment(tether_tpm_t *tpm, TPM2_HANDLE nv_index)
{
    static const char command[] = "TPM2_NV_Increment";
    fake_impl_t *impl = impl_of(tpm);
    tether_status_t status;
    fake_nv_t *nv;
    uint64_t value;

    if ((nv = nv_begin(tpm, TETHER_FAKE_OP_NV_INCREMENT, command, nv_index, &status)) == NULL)
        return status;
    if (!nv_is_counter(nv))
        return tpm_error(tpm, command, TPM2_RC_ATTRIBUTES + TPM2_RC_2,
                         "the index is not a counter");
    /* TPM2 Part 1, 37.2.5 / Part 3, 31.8: a counter's first increment
     * starts from the highest value any counter on this TPM has had, so
     * deleting and re-creating a counter never takes it back. */
    value = nv_written(nv) ? get_be64(nv->data) : impl->highest_counter;
    if (value == UINT64_MAX)
        return tpm_error(tpm, command, TPM2_RC_NV_RANGE, "the counter is at its maximum");
    value++;
    put_be64(nv->data, value);
    nv->public_area.attributes |= TPMA_NV_WRITTEN;
    if (value > impl->highest_counter)
        impl->highest_counter = value;
    return TETHER_OK;
}

static tether_status_t fake_nv_read_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                            uint64_t *value)
{
    static const char command[] = "TPM2_NV_Read";
    tether_status_t status;
    fake_nv_t *nv;

    *value = 0;
    if ((nv = nv_begin(tpm, TETHER_FAKE_OP_NV_READ, command, nv_index, &status)) == NULL)
        return status;
    if (!nv_written(nv))
        return tether_tpm_fail(tpm, TETHER_ERR_STATE, TPM2_RC_NV_UNINITIALIZED,
                               "NV counter 0x%08x has never been incremented", nv_index);
    if (nv->public_area.dataSize < 8)
        return tpm_error(tpm, command, TPM2_RC_NV_RANGE, "the index holds less than 8 bytes");
    *value = get_be64(nv->data);
    return TETHER_OK;
}

static tether_status_t fake_nv_read_public(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                           TPM2B_NV_PUBLIC *public_area, TPM2B_NAME *name)
{
    static const char command[] = "TPM2_NV_ReadPublic";
    uint8_t buf[sizeof(TPMS_NV_PUBLIC)];
    size_t offset = 0;
    tether_status_t status;
    fake_nv_t *nv;

    memset(public_area, 0, sizeof(*public_area));
    memset(name, 0, sizeof(*name));
    if ((nv = nv_begin(tpm, TETHER_FAKE_OP_ANY, command, nv_index, &status)) == NULL ||
        (status = nv_name(tpm, command, nv, name)) != TETHER_OK)
        return status;
    public_area->nvPublic = nv->public_area;
    if (Tss2_MU_TPMS_NV_PUBLIC_Marshal(&nv->public_area, buf, sizeof(buf), &offset) ==
        TSS2_RC_SUCCESS)
        public_area->size = (uint16_t)offset;
    return TETHER_OK;
}

static tether_status_t fake_nv_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                       TPM2_HANDLE nv_index, const uint8_t *qualifying,
                                       size_t qualifying_len, tether_tpm_attestation_t *out)
{
    static const char command[] = "TPM2_NV_Certify";
    fake_object_t *signer;
    tether_status_t status;
    TPMS_ATTEST attest;
    fake_nv_t *nv;

    memset(out, 0, sizeof(*out));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_NV_CERTIFY, command)) != TETHER_OK)
        return status;
    if ((signer = object_get(tpm, ak)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* TPM2_NV_Certify: signHandle 1, authHandle 2, nvIndex 3. */
    if ((status = signer_check(tpm, command, signer, TPM2_RC_1)) != TETHER_OK ||
        (nv = nv_get(tpm, command, nv_index, &status)) == NULL)
        return status;
    if (!nv_written(nv))
        return tpm_error(tpm, command, TPM2_RC_NV_UNINITIALIZED,
                         "the index was never written (increment the counter first)");
    if (nv->public_area.dataSize < 8)
        return tpm_error(tpm, command, TPM2_RC_NV_RANGE, "the index holds less than 8 bytes");
    memset(&attest, 0, sizeof(attest));
    attest.type = TPM2_ST_ATTEST_NV;
    if ((status = nv_name(tpm, command, nv, &attest.attested.nv.indexName)) != TETHER_OK)
        return status;
    /* The same 8 bytes at offset 0 the ESAPI code asks for. */
    attest.attested.nv.offset = 0;
    attest.attested.nv.nvContents.size = 8;
    memcpy(attest.attested.nv.nvContents.buffer, nv->data, 8);
    return attest_sign(tpm, command, signer, qualifying, qualifying_len, &attest, out);
}

static tether_status_t fake_quote(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                  const TPML_PCR_SELECTION *pcrs, const uint8_t *qualifying,
                                  size_t qualifying_len, tether_tpm_attestation_t *out)
{
    static const char command[] = "TPM2_Quote";
    fake_impl_t *impl = impl_of(tpm);
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    TPML_PCR_SELECTION selected;
    mbedtls_md_context_t md;
    fake_object_t *signer;
    tether_status_t status;
    TPMS_ATTEST attest;
    int ret;

    memset(out, 0, sizeof(*out));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_QUOTE, command)) != TETHER_OK)
        return status;
    if ((signer = object_get(tpm, ak)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((status = signer_check(tpm, command, signer, TPM2_RC_1)) != TETHER_OK)
        return status;
    /* The TPM drops banks it has not allocated and PCRs it does not have,
     * and reports the selection it actually quoted (TPM2 Part 3, 18.4). */
    if (pcrs->count > TPM2_NUM_PCR_BANKS)
        return tpm_error(tpm, command, TPM2_RC_SIZE + TPM2_RC_P + TPM2_RC_3,
                         "more PCR selections than banks");
    memset(&selected, 0, sizeof(selected));
    for (uint32_t i = 0; i < pcrs->count; i++) {
        const TPMS_PCR_SELECTION *in = &pcrs->pcrSelections[i];
        TPMS_PCR_SELECTION *keep;

        if (in->sizeofSelect < 3 || in->sizeofSelect > TPM2_PCR_SELECT_MAX)
            return tpm_error(tpm, command, TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_3,
                             "a PCR selection is not 3 or 4 bytes long");
        if (tether_tpm2_md_type(in->hash) == MBEDTLS_MD_NONE)
            return tpm_error(tpm, command, TPM2_RC_HASH + TPM2_RC_P + TPM2_RC_3,
                             "a PCR selection names an unknown hash algorithm");
        if (in->hash != TPM2_ALG_SHA256)
            continue;
        keep = &selected.pcrSelections[selected.count++];
        *keep = *in;
        for (unsigned b = 0; b < keep->sizeofSelect; b++) {
            if (b >= FAKE_PCRS / 8)
                keep->pcrSelect[b] = 0;
        }
    }
    memset(&attest, 0, sizeof(attest));
    attest.type = TPM2_ST_ATTEST_QUOTE;
    attest.attested.quote.pcrSelect = selected;
    /* pcrDigest: H(signing scheme) over the selected values in selection
     * order, lowest PCR first within a selection. */
    mbedtls_md_init(&md);
    ret = mbedtls_md_setup(&md, sha256, 0);
    if (ret == 0)
        ret = mbedtls_md_starts(&md);
    for (uint32_t i = 0; ret == 0 && i < selected.count; i++) {
        const TPMS_PCR_SELECTION *sel = &selected.pcrSelections[i];

        for (unsigned pcr = 0; ret == 0 && pcr < FAKE_PCRS; pcr++) {
            if (sel->pcrSelect[pcr / 8] & (1u << (pcr % 8)))
                ret = mbedtls_md_update(&md, impl->pcrs[pcr], 32);
        }
    }
    if (ret == 0)
        ret = mbedtls_md_finish(&md, attest.attested.quote.pcrDigest.buffer);
    mbedtls_md_free(&md);
    if (ret != 0)
        return crypto_error(tpm, command, "digest the PCRs", ret);
    attest.attested.quote.pcrDigest.size = 32;
    return attest_sign(tpm, command, signer, qualifying, qualifying_len, &attest, out);
}

static tether_status_t fake_activate_credential(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                                tether_tpm_handle_t ek,
                                                const TPM2B_ID_OBJECT *credential_blob,
                                                const TPM2B_ENCRYPTED_SECRET *secret,
                                                TPM2B_DIGEST *cert_info)
{
    static const char command[] = "TPM2_ActivateCredential";
    fake_impl_t *impl = impl_of(tpm);
    fake_object_t *activated, *key;
    fake_ek_t *ek_keys;
    tether_status_t status;
    size_t len = 0;

    memset(cert_info, 0, sizeof(*cert_info));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_ACTIVATE, command)) != TETHER_OK)
        return status;
    if ((activated = object_get(tpm, ak)) == NULL || (key = object_get(tpm, ek)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* activateHandle is handle 1, keyHandle handle 2. */
    if (!key->is_ek)
        return tpm_error(tpm, command, TPM2_RC_TYPE + TPM2_RC_2,
                         "the key handle is not a decryption key (pass the EK)");
    ek_keys = &impl->eks[key->ek_type];
    status = tether_credential_activate_soft(&ek_keys->key, &ek_keys->public_area, &activated->name,
                                             credential_blob, secret, cert_info->buffer,
                                             sizeof(cert_info->buffer), &len);
    if (status == TETHER_OK) {
        cert_info->size = (uint16_t)len;
        return TETHER_OK;
    }
    switch (status) {
    case TETHER_ERR_VERIFY:
        /* The outer HMAC failed: another EK, another AK name, or a changed
         * byte (TPM2 Part 1, 24.5). */
        status = tpm_error(tpm, command, TPM2_RC_INTEGRITY + TPM2_RC_P + TPM2_RC_1,
                           "the credential was not made for this EK and this AK, or was changed");
        break;
    case TETHER_ERR_PARSE:
    case TETHER_ERR_INVALID_ARGUMENT:
    case TETHER_ERR_TOO_LARGE:
        status = tpm_error(tpm, command, TPM2_RC_SIZE + TPM2_RC_P + TPM2_RC_1,
                           "the credential blob or the encrypted secret is malformed");
        break;
    default:
        status = tether_tpm_fail(tpm, status, 0, "%s: fake TPM failed: %s", command,
                                 tether_strerror(status));
        break;
    }
    tether_wipe(cert_info, sizeof(*cert_info));
    return status;
}

static tether_status_t fake_pcr_read(tether_tpm_t *tpm, TPMI_ALG_HASH bank, uint32_t pcr,
                                     TPM2B_DIGEST *value)
{
    tether_status_t status;

    memset(value, 0, sizeof(*value));
    if ((status = fake_begin(tpm, TETHER_FAKE_OP_ANY, "TPM2_PCR_Read")) != TETHER_OK)
        return status;
    if (bank != TPM2_ALG_SHA256 || pcr >= FAKE_PCRS)
        return tether_tpm_fail(tpm, TETHER_ERR_NOT_FOUND, 0,
                               "PCR %u is not allocated in bank 0x%04x", pcr, bank);
    value->size = 32;
    memcpy(value->buffer, impl_of(tpm)->pcrs[pcr], 32);
    return TETHER_OK;
}

static tether_status_t fake_pcr_extend(tether_tpm_t *tpm, uint32_t pcr,
                                       const TPML_DIGEST_VALUES *digests)
{
    static const char command[] = "TPM2_PCR_Extend";
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    fake_impl_t *impl = impl_of(tpm);
    tether_status_t status;
    uint8_t buf[64];

    if ((status = fake_begin(tpm, TETHER_FAKE_OP_PCR_EXTEND, command)) != TETHER_OK)
        return status;
    if (pcr >= FAKE_PCRS)
        return tpm_error(tpm, command, TPM2_RC_VALUE + TPM2_RC_1, "the TPM has 24 PCRs");
    if (digests->count > TPM2_NUM_PCR_BANKS)
        return tpm_error(tpm, command, TPM2_RC_SIZE + TPM2_RC_P + TPM2_RC_1,
                         "more digests than banks");
    for (uint32_t i = 0; i < digests->count; i++) {
        if (tether_tpm2_md_type(digests->digests[i].hashAlg) == MBEDTLS_MD_NONE)
            return tpm_error(tpm, command, TPM2_RC_HASH + TPM2_RC_P + TPM2_RC_1,
                             "a digest names an unknown hash algorithm");
    }
    /* Digests for banks that are not allocated are ignored, as on a TPM. */
    for (uint32_t i = 0; i < digests->count; i++) {
        if (digests->digests[i].hashAlg != TPM2_ALG_SHA256)
            continue;
        memcpy(buf, impl->pcrs[pcr], 32);
        memcpy(buf + 32, digests->digests[i].digest.sha256, 32);
        if (mbedtls_md(sha256, buf, sizeof(buf), impl->pcrs[pcr]) != 0)
            return tether_tpm_fail(tpm, TETHER_ERR_CRYPTO, 0, "%s: SHA-256 failed", command);
    }
    return TETHER_OK;
}

static void fake_close(tether_tpm_t *tpm)
{
    fake_impl_t *impl = impl_of(tpm);

    if (impl == NULL)
        return;
    for (unsigned i = 0; i < FAKE_OBJECTS; i++)
        mbedtls_ecp_keypair_free(&impl->objects[i].key);
    for (unsigned i = 0; i < TETHER_EK_TYPE_COUNT; i++)
        mbedtls_pk_free(&impl->eks[i].key);
    for (unsigned i = 0; i < FAKE_NV_INDICES; i++)
        nv_release(&impl->nv[i]);
    mbedtls_pk_free(&impl->ca_key);
    tether_wipe(impl, sizeof(*impl));
    free(impl);
    tpm->impl = NULL;
    tpm->ops = NULL;
}

static const tether_tpm_ops_t fake_ops = {
    .get_info = fake_get_info,
    .nv_read = fake_nv_read,
    .create_ek = fake_create_ek,
    .create_key = fake_create_key,
    .load_key = fake_load_key,
    .flush = fake_flush,
    .certify = fake_certify,
    .sign_digest = fake_sign_digest,
    .nv_define_counter = fake_nv_define_counter,
    .nv_undefine = fake_nv_undefine,
    .nv_increment = fake_nv_increment,
    .nv_read_counter = fake_nv_read_counter,
    .nv_read_public = fake_nv_read_public,
    .nv_certify = fake_nv_certify,
    .quote = fake_quote,
    .activate_credential = fake_activate_credential,
    .pcr_read = fake_pcr_read,
    .pcr_extend = fake_pcr_extend,
    .close = fake_close,
};

/* Defines the NV index of an EK certificate, to be made on first use. */
static tether_status_t ek_cert_define(tether_tpm_t *tpm, tether_ek_type_t type, fake_nv_t **out)
{
    fake_impl_t *impl = impl_of(tpm);
    TPM2_HANDLE index = tether_ek_cert_nv_index(type);
    fake_nv_t *nv = nv_find(impl, index);

    *out = NULL;
    if (nv == NULL && (nv = nv_free_slot(impl)) == NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_STATE, TPM2_RC_NV_SPACE,
                               "fake TPM has no room for another NV index");
    nv_release(nv); /* a certificate defined before is replaced */
    nv->used = true;
    nv->cert_pending = true;
    nv->cert_type = type;
    nv->public_area.nvIndex = index;
    nv->public_area.nameAlg = TPM2_ALG_SHA256;
    nv->public_area.attributes = EK_CERT_NV_ATTRIBUTES;
    *out = nv;
    return TETHER_OK;
}

tether_status_t tether_tpm_open_fake(tether_tpm_t *tpm, const tether_tpm_fake_config_t *config)
{
    fake_impl_t *impl;
    tether_status_t status;
    fake_nv_t *nv;

    if (tpm == NULL || config == NULL ||
        (config->ek_cert_types & ~((1u << TETHER_EK_TYPE_COUNT) - 1u)) != 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (tpm->ops != NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_STATE, 0, "TPM context is already open");
    if ((impl = calloc(1, sizeof(*impl))) == NULL)
        return tether_tpm_fail(tpm, TETHER_ERR_NO_MEMORY, 0, "out of memory");
    for (unsigned i = 0; i < FAKE_OBJECTS; i++)
        mbedtls_ecp_keypair_init(&impl->objects[i].key);
    for (unsigned i = 0; i < TETHER_EK_TYPE_COUNT; i++)
        mbedtls_pk_init(&impl->eks[i].key);
    mbedtls_pk_init(&impl->ca_key);
    tpm->impl = impl;
    tpm->ops = &fake_ops;

    put_be64(impl->seed, config->seed);
    put_be64(impl->manufacturer, config->manufacturer != 0 ? config->manufacturer : config->seed);
    impl->clock_ms = FAKE_CLOCK_START;
    impl->reset_count = FAKE_RESET_COUNT;
    impl->clock_safe = true;
    {
        mbedtls_hmac_drbg_context drbg;
        int ret;

        mbedtls_hmac_drbg_init(&drbg);
        ret = seed_drbg(impl, "tether fake storage", 0, &drbg);
        if (ret == 0)
            ret =
                mbedtls_hmac_drbg_random(&drbg, impl->storage_secret, sizeof(impl->storage_secret));
        mbedtls_hmac_drbg_free(&drbg);
        if (ret != 0) {
            status = crypto_error(tpm, "open", "derive its storage secret", ret);
            goto fail;
        }
    }
    if ((status = ca_create(tpm)) != TETHER_OK)
        goto fail;
    for (unsigned t = 0; t < TETHER_EK_TYPE_COUNT; t++) {
        if ((config->ek_cert_types & (1u << t)) &&
            (status = ek_cert_define(tpm, (tether_ek_type_t)t, &nv)) != TETHER_OK)
            goto fail;
    }
    return TETHER_OK;
fail:
    fake_close(tpm); /* leaves last_error for the caller */
    return status;
}

void tether_tpm_fake_inject(tether_tpm_t *tpm, tether_tpm_fake_op_t op, uint32_t rc, unsigned count)
{
    fake_impl_t *impl = fake_of(tpm);

    if (impl == NULL || (unsigned)op > TETHER_FAKE_OP_PCR_EXTEND)
        return;
    impl->faults[op].rc = rc;
    impl->faults[op].count = count;
}

void tether_tpm_fake_power_loss(tether_tpm_t *tpm)
{
    fake_impl_t *impl = fake_of(tpm);

    if (impl == NULL)
        return;
    impl->reset_count++;
    impl->clock_safe = false;
    impl->clock_ms = impl->clock_ms > FAKE_CLOCK_START + FAKE_CLOCK_LOST
                         ? impl->clock_ms - FAKE_CLOCK_LOST
                         : FAKE_CLOCK_START;
    memset(impl->pcrs, 0, sizeof(impl->pcrs));
}

tether_status_t tether_tpm_fake_negate_s(TPMT_SIGNATURE *sig)
{
    TPMS_SIGNATURE_ECC *ecc;
    mbedtls_ecp_group grp;
    mbedtls_mpi s;
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (sig == NULL || sig->sigAlg != TPM2_ALG_ECDSA)
        return TETHER_ERR_INVALID_ARGUMENT;
    ecc = &sig->signature.ecdsa;
    if (ecc->signatureS.size > sizeof(ecc->signatureS.buffer))
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        mbedtls_mpi_read_binary(&s, ecc->signatureS.buffer, ecc->signatureS.size) != 0)
        goto out;
    if (mbedtls_mpi_cmp_int(&s, 0) <= 0 || mbedtls_mpi_cmp_mpi(&s, &grp.N) >= 0)
        goto out;
    if (mbedtls_mpi_sub_mpi(&s, &grp.N, &s) != 0 ||
        mbedtls_mpi_write_binary(&s, ecc->signatureS.buffer, 32) != 0)
        goto out;
    ecc->signatureS.size = 32;
    rc = TETHER_OK;
out:
    mbedtls_mpi_free(&s);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

unsigned tether_tpm_fake_loaded_objects(const tether_tpm_t *tpm)
{
    const fake_impl_t *impl = fake_of(tpm);
    unsigned count = 0;

    if (impl == NULL)
        return 0;
    for (unsigned i = 0; i < FAKE_OBJECTS; i++)
        count += impl->objects[i].used ? 1u : 0u;
    return count;
}

tether_status_t tether_tpm_fake_ca_cert(const tether_tpm_t *tpm, const uint8_t **der, size_t *len)
{
    const fake_impl_t *impl = fake_of(tpm);

    if (der != NULL)
        *der = NULL;
    if (len != NULL)
        *len = 0;
    if (impl == NULL || der == NULL || len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *der = impl->ca_cert;
    *len = impl->ca_cert_len;
    return TETHER_OK;
}

tether_status_t tether_tpm_fake_set_ek_cert(tether_tpm_t *tpm, tether_ek_type_t type,
                                            const uint8_t *der, size_t len)
{
    fake_impl_t *impl = fake_of(tpm);
    tether_status_t status;
    uint8_t *copy;
    fake_nv_t *nv;

    if (impl == NULL || der == NULL || len == 0 || len > FAKE_NV_MAX_SIZE ||
        (unsigned)type >= TETHER_EK_TYPE_COUNT)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((copy = malloc(len)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    memcpy(copy, der, len);
    if ((status = ek_cert_define(tpm, type, &nv)) != TETHER_OK) {
        free(copy);
        return status;
    }
    nv->cert_pending = false;
    nv->data = copy;
    nv->public_area.dataSize = (uint16_t)len;
    return TETHER_OK;
}
