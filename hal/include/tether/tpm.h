/*
 * The TPM interface: the only way tether reaches a TPM.
 *
 * A tether_tpm_t holds a table of operations and the implementation's private
 * state, as tpm2-tss's TCTI and coreMQTT's TransportInterface_t do. Two
 * implementations exist: ESAPI over any TCTI (tpm_esapi.c) and a software
 * fake for unit tests and benchmarks (tests/fakes, tether/tpm_fake.h).
 *
 * Life cycle: tether_tpm_init() (cannot fail), tether_tpm_open_esapi() or
 * tether_tpm_open_fake(), operations, tether_tpm_close() (accepts an
 * initialised but unopened context; flushes every transient object that is
 * still loaded and wipes the struct).
 *
 * Objects loaded in the TPM are named by tether_tpm_handle_t values that stay
 * valid until tether_tpm_flush() or tether_tpm_close(). Callers flush what
 * they load; close() flushes whatever is left, so a TPM never runs out of
 * object slots because of tether.
 *
 * On any failure other than TETHER_ERR_INVALID_ARGUMENT, tpm->last_error holds
 * a sentence naming the command and, for TPM/TSS errors, the decoded TSS2
 * response code (tpm->last_rc). Later successful calls leave them as they
 * are, so cleanup after a failure does not erase its message.
 */
#ifndef TETHER_TPM_H
#define TETHER_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tether/error.h"

typedef uint32_t tether_tpm_handle_t;
#define TETHER_TPM_HANDLE_NONE ((tether_tpm_handle_t)0)

/* EK templates of the TCG EK Credential Profile 2.x, in order of preference. */
typedef enum tether_ek_type {
    TETHER_EK_ECC_P256 = 0, /* template L-2, certificate at NV 0x01c0000a */
    TETHER_EK_ECC_P384,     /* template H-3, certificate at NV 0x01c00016 */
    TETHER_EK_RSA2048,      /* template L-1, certificate at NV 0x01c00002 */
    TETHER_EK_TYPE_COUNT,
    TETHER_EK_ANY = TETHER_EK_TYPE_COUNT /* for selection: the first with a certificate */
} tether_ek_type_t;

/* Keys tether creates under the EK. */
typedef enum tether_key_kind {
    TETHER_KEY_AK = 0, /* restricted ECC P-256 ECDSA-SHA256 signing key */
    TETHER_KEY_DEVICE, /* unrestricted ECC P-256 ECDSA-SHA256 signing key */
} tether_key_kind_t;

#define TETHER_TPM_MAX_PCR_BANKS 8
#define TETHER_TPM_MAX_QUALIFYING 64 /* bytes of qualifying data (TPM2B_DATA) */
#define TETHER_TPM_MAX_NV_READ 4096  /* largest NV area tether reads (certificates) */

typedef struct tether_tpm_info {
    char manufacturer[5];   /* TPM_PT_MANUFACTURER, four ASCII characters */
    char vendor[17];        /* TPM_PT_VENDOR_STRING_1..4 */
    uint32_t firmware_version_1;
    uint32_t firmware_version_2;
    uint32_t spec_revision; /* TPM_PT_REVISION, e.g. 164 for 1.64 */
    size_t pcr_bank_count;  /* hash algorithms with at least one PCR allocated */
    TPMI_ALG_HASH pcr_banks[TETHER_TPM_MAX_PCR_BANKS];
} tether_tpm_info_t;

/* A key created under the EK: public area and TPM-wrapped private part. The
 * private part is useless without the TPM that made it. */
typedef struct tether_tpm_key_blob {
    TPM2B_PUBLIC public_area;
    TPM2B_PRIVATE private_blob;
} tether_tpm_key_blob_t;

/* A TPM-signed attestation: the TPMS_ATTEST bytes exactly as the TPM produced
 * them (TPM2 Part 2, 10.12.12) and the signature over them. */
typedef struct tether_tpm_attestation {
    TPM2B_ATTEST attest;
    TPMT_SIGNATURE signature;
} tether_tpm_attestation_t;

typedef struct tether_tpm tether_tpm_t;

/* The operations an implementation provides. Each receives the context it
 * was opened on; all output pointers are caller-owned. */
typedef struct tether_tpm_ops {
    tether_status_t (*get_info)(tether_tpm_t *tpm, tether_tpm_info_t *info);
    tether_status_t (*nv_read)(tether_tpm_t *tpm, TPM2_HANDLE nv_index, uint8_t *buf,
                               size_t buf_size, size_t *len);
    tether_status_t (*create_ek)(tether_tpm_t *tpm, tether_ek_type_t type,
                                 tether_tpm_handle_t *ek, TPM2B_PUBLIC *public_area);
    tether_status_t (*create_key)(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                  tether_key_kind_t kind, tether_tpm_key_blob_t *blob);
    tether_status_t (*load_key)(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                const tether_tpm_key_blob_t *blob, tether_tpm_handle_t *key);
    tether_status_t (*flush)(tether_tpm_t *tpm, tether_tpm_handle_t handle);
    tether_status_t (*certify)(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                               tether_tpm_handle_t object, const uint8_t *qualifying,
                               size_t qualifying_len, tether_tpm_attestation_t *out);
    tether_status_t (*sign_digest)(tether_tpm_t *tpm, tether_tpm_handle_t key,
                                   const uint8_t digest[32], uint8_t signature[64]);
    tether_status_t (*nv_define_counter)(tether_tpm_t *tpm, TPM2_HANDLE nv_index);
    tether_status_t (*nv_undefine)(tether_tpm_t *tpm, TPM2_HANDLE nv_index);
    tether_status_t (*nv_increment)(tether_tpm_t *tpm, TPM2_HANDLE nv_index);
    tether_status_t (*nv_read_counter)(tether_tpm_t *tpm, TPM2_HANDLE nv_index, uint64_t *value);
    tether_status_t (*nv_read_public)(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                      TPM2B_NV_PUBLIC *public_area, TPM2B_NAME *name);
    tether_status_t (*nv_certify)(tether_tpm_t *tpm, tether_tpm_handle_t ak, TPM2_HANDLE nv_index,
                                  const uint8_t *qualifying, size_t qualifying_len,
                                  tether_tpm_attestation_t *out);
    tether_status_t (*quote)(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                             const TPML_PCR_SELECTION *pcrs, const uint8_t *qualifying,
                             size_t qualifying_len, tether_tpm_attestation_t *out);
    tether_status_t (*activate_credential)(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                           tether_tpm_handle_t ek,
                                           const TPM2B_ID_OBJECT *credential_blob,
                                           const TPM2B_ENCRYPTED_SECRET *secret,
                                           TPM2B_DIGEST *cert_info);
    tether_status_t (*pcr_read)(tether_tpm_t *tpm, TPMI_ALG_HASH bank, uint32_t pcr,
                                TPM2B_DIGEST *value);
    tether_status_t (*pcr_extend)(tether_tpm_t *tpm, uint32_t pcr,
                                  const TPML_DIGEST_VALUES *digests);
    /* Flushes what is still loaded and frees impl; must accept any state. */
    void (*close)(tether_tpm_t *tpm);
} tether_tpm_ops_t;

struct tether_tpm {
    const tether_tpm_ops_t *ops; /* NULL until opened */
    void *impl;                  /* owned by the implementation */
    uint32_t last_rc;            /* TSS2_RC of the last failure, 0 if none */
    char last_error[256];        /* sentence describing the last failure */
    /* An operation that fails with TETHER_ERR_TPM_RETRY (TPM_RC_RETRY,
     * YIELDED or TESTING) is tried again up to max_attempts times in all,
     * sleeping retry_delay_ms, doubled after each attempt, in between. */
    unsigned max_attempts;
    unsigned retry_delay_ms;
};

#define TETHER_TPM_DEFAULT_ATTEMPTS 6
#define TETHER_TPM_DEFAULT_RETRY_DELAY_MS 20

/* Maps a TSS2_RC to a tether status: TETHER_ERR_TPM_RETRY for
 * RETRY/YIELDED/TESTING, TETHER_ERR_TPM_LOCKOUT, TETHER_ERR_TPM_AUTH for
 * AUTH_FAIL/BAD_AUTH, TETHER_ERR_TPM_CONNECT for TCTI I/O and connection
 * failures, TETHER_ERR_TPM for everything else, TETHER_OK for success. */
tether_status_t tether_tpm_rc_status(uint32_t rc);

/* NV index of the EK certificate for each EK type (TCG EK Credential Profile). */
TPM2_HANDLE tether_ek_cert_nv_index(tether_ek_type_t type);
/* "ECC NIST P-256", "ECC NIST P-384", "RSA 2048". */
const char *tether_ek_type_name(tether_ek_type_t type);

void tether_tpm_init(tether_tpm_t *tpm);

/* Connects to a TPM through ESAPI. tcti is a tpm2-tss TCTI configuration
 * string ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321",
 * "mssim:host=...,port=..."); NULL uses the TSS default. Sends
 * TPM2_Startup(CLEAR) when the TPM reports it needs one. */
TETHER_MUST_CHECK tether_status_t tether_tpm_open_esapi(tether_tpm_t *tpm, const char *tcti);

void tether_tpm_close(tether_tpm_t *tpm);

/* Thin wrappers over tpm->ops that check arguments and the open state. */
TETHER_MUST_CHECK tether_status_t tether_tpm_get_info(tether_tpm_t *tpm, tether_tpm_info_t *info);
/* Reads a whole NV index into buf. TETHER_ERR_NOT_FOUND when the index is not
 * defined, TETHER_ERR_TOO_LARGE when it does not fit buf_size. */
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_read(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                                     uint8_t *buf, size_t buf_size, size_t *len);
/* Creates the EK from the TCG default template of the given type
 * (TPM2_CreatePrimary in the endorsement hierarchy). */
TETHER_MUST_CHECK tether_status_t tether_tpm_create_ek(tether_tpm_t *tpm, tether_ek_type_t type,
                                                       tether_tpm_handle_t *ek,
                                                       TPM2B_PUBLIC *public_area);
/* Creates an AK or device key as a child of the EK (fixedTPM, fixedParent,
 * sensitiveDataOrigin); the private key never leaves the TPM unwrapped. */
TETHER_MUST_CHECK tether_status_t tether_tpm_create_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                                        tether_key_kind_t kind,
                                                        tether_tpm_key_blob_t *blob);
TETHER_MUST_CHECK tether_status_t tether_tpm_load_key(tether_tpm_t *tpm, tether_tpm_handle_t ek,
                                                      const tether_tpm_key_blob_t *blob,
                                                      tether_tpm_handle_t *key);
tether_status_t tether_tpm_flush(tether_tpm_t *tpm, tether_tpm_handle_t handle);
/* TPM2_Certify of object by the AK over the qualifying data. */
TETHER_MUST_CHECK tether_status_t tether_tpm_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                                     tether_tpm_handle_t object,
                                                     const uint8_t *qualifying,
                                                     size_t qualifying_len,
                                                     tether_tpm_attestation_t *out);
/* ECDSA over a SHA-256 digest with an unrestricted key: r||s, 32 bytes each. */
TETHER_MUST_CHECK tether_status_t tether_tpm_sign_digest(tether_tpm_t *tpm, tether_tpm_handle_t key,
                                                         const uint8_t digest[32],
                                                         uint8_t signature[64]);
/* Defines an owner-hierarchy NV counter (TPM_NT_COUNTER, empty auth,
 * AUTHREAD|AUTHWRITE|NO_DA). The TPM starts it at or above the highest value
 * any counter on this TPM has had, so it never goes back. */
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_define_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index);
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_undefine(tether_tpm_t *tpm, TPM2_HANDLE nv_index);
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_increment(tether_tpm_t *tpm, TPM2_HANDLE nv_index);
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_read_counter(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                                             uint64_t *value);
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_read_public(tether_tpm_t *tpm, TPM2_HANDLE nv_index,
                                                            TPM2B_NV_PUBLIC *public_area,
                                                            TPM2B_NAME *name);
/* TPM2_NV_Certify of the whole counter by the AK over the qualifying data. */
TETHER_MUST_CHECK tether_status_t tether_tpm_nv_certify(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                                        TPM2_HANDLE nv_index,
                                                        const uint8_t *qualifying,
                                                        size_t qualifying_len,
                                                        tether_tpm_attestation_t *out);
/* TPM2_Quote by the AK over the PCR selection and the qualifying data. */
TETHER_MUST_CHECK tether_status_t tether_tpm_quote(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                                   const TPML_PCR_SELECTION *pcrs,
                                                   const uint8_t *qualifying, size_t qualifying_len,
                                                   tether_tpm_attestation_t *out);
/* TPM2_ActivateCredential: recovers the secret that the verifier bound to
 * the AK's name and encrypted to the EK. cert_info receives the secret. */
TETHER_MUST_CHECK tether_status_t tether_tpm_activate_credential(
    tether_tpm_t *tpm, tether_tpm_handle_t ak, tether_tpm_handle_t ek,
    const TPM2B_ID_OBJECT *credential_blob, const TPM2B_ENCRYPTED_SECRET *secret,
    TPM2B_DIGEST *cert_info);
TETHER_MUST_CHECK tether_status_t tether_tpm_pcr_read(tether_tpm_t *tpm, TPMI_ALG_HASH bank,
                                                      uint32_t pcr, TPM2B_DIGEST *value);
TETHER_MUST_CHECK tether_status_t tether_tpm_pcr_extend(tether_tpm_t *tpm, uint32_t pcr,
                                                        const TPML_DIGEST_VALUES *digests);

/*
 * The EK in use: the first EK type (in preference order, or the one asked
 * for) whose certificate exists in NV, created from its template, with its
 * public key checked against the certificate's.
 */
typedef struct tether_ek {
    tether_ek_type_t type;
    tether_tpm_handle_t handle; /* loaded; released by tether_ek_free() */
    TPM2B_PUBLIC public_area;
    uint8_t cert_der[TETHER_TPM_MAX_NV_READ];
    size_t cert_len;
} tether_ek_t;

/* Selects and creates the EK. want is a type or TETHER_EK_ANY. Errors:
 * TETHER_ERR_NO_EK_CERT (no certificate for any wanted type),
 * TETHER_ERR_EK_MISMATCH (the certificate certifies another key),
 * TETHER_ERR_PARSE (the certificate is not DER X.509). */
TETHER_MUST_CHECK tether_status_t tether_ek_open(tether_tpm_t *tpm, tether_ek_type_t want,
                                                 tether_ek_t *ek);
/* Flushes the EK and wipes the struct; accepts a zeroed struct. */
void tether_ek_free(tether_tpm_t *tpm, tether_ek_t *ek);

/* Serialises a key blob for the state directory (TPM2B_PUBLIC then
 * TPM2B_PRIVATE, both TPM-marshalled), and parses it back with bounds checks.
 * Parsing rejects trailing bytes. */
TETHER_MUST_CHECK tether_status_t tether_tpm_key_blob_marshal(const tether_tpm_key_blob_t *blob,
                                                              uint8_t *buf, size_t buf_size,
                                                              size_t *len);
TETHER_MUST_CHECK tether_status_t tether_tpm_key_blob_unmarshal(const uint8_t *buf, size_t len,
                                                                tether_tpm_key_blob_t *blob);

/* Records a failure on the context (printf-style) and returns status. For
 * implementations. */
tether_status_t tether_tpm_fail(tether_tpm_t *tpm, tether_status_t status, uint32_t rc,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
