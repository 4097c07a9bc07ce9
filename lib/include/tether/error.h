/*
 * One status type for the whole project. TETHER_OK is zero; every other value
 * names what went wrong. tether_strerror() gives a sentence for people.
 */
#ifndef TETHER_ERROR_H
#define TETHER_ERROR_H

typedef enum tether_status {
    TETHER_OK = 0,
    TETHER_ERR_INVALID_ARGUMENT,  /* a caller passed something unusable */
    TETHER_ERR_NO_MEMORY,
    TETHER_ERR_IO,                /* file or socket I/O failed */
    TETHER_ERR_PARSE,             /* malformed input */
    TETHER_ERR_TOO_LARGE,         /* input or output over its bound */
    TETHER_ERR_NOT_FOUND,
    TETHER_ERR_CRYPTO,            /* a cryptographic primitive failed */
    TETHER_ERR_VERIFY,            /* a signature, MAC or check did not verify */
    TETHER_ERR_UNSUPPORTED,
    TETHER_ERR_STATE,             /* operation not valid in the current state */
    TETHER_ERR_TPM,               /* TPM or TSS error; see the TPM context's message */
    TETHER_ERR_TPM_CONNECT,       /* the TCTI could not reach the TPM */
    TETHER_ERR_TPM_RETRY,         /* the TPM stayed busy through every retry */
    TETHER_ERR_TPM_LOCKOUT,       /* dictionary-attack lockout; never retried */
    TETHER_ERR_TPM_AUTH,          /* authorization failed; never retried */
    TETHER_ERR_NO_EK_CERT,        /* no EK certificate in the TPM's NV */
    TETHER_ERR_EK_MISMATCH,       /* EK certificate key differs from the EK */
    TETHER_ERR__COUNT
} tether_status_t;

/* A static, human-readable description of the status; never NULL. */
const char *tether_strerror(tether_status_t status);

#if defined(__GNUC__)
#define TETHER_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TETHER_MUST_CHECK
#endif

#endif
