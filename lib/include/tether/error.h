/*
 * One status type for the whole project. TETHER_OK is zero; every other value
 * names what went wrong. tether_strerror() gives a sentence for people.
 */
#ifndef TETHER_ERROR_H
#define TETHER_ERROR_H

#include <stddef.h>

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
    TETHER_ERR_CONFLICT,          /* conflicts with existing state (duplicate, wrong status) */
    TETHER_ERR_STORE,             /* the database failed; see the store's log line */
    TETHER_ERR_UNKNOWN_KEY,       /* signed with a key (kid) the verifier does not hold */
    TETHER_ERR_EXPIRED,           /* token or credential past its expiry */
    TETHER_ERR_NOT_YET_VALID,     /* token's nbf or iat lies in the future */
    TETHER_ERR_WRONG_ISSUER,      /* token issued by someone the verifier does not trust */
    TETHER_ERR_WRONG_AUDIENCE,    /* token meant for another relying party */
    TETHER_ERR_NETWORK,           /* server unreachable: refused, no route, name not resolved */
    TETHER_ERR_TIMEOUT,           /* a server did not connect or answer in time */
    TETHER_ERR_TLS,               /* TLS handshake or certificate check failed */
    TETHER_ERR_PROTOCOL,          /* a peer broke the protocol (e.g. malformed HTTP response) */
    TETHER_ERR__COUNT
} tether_status_t;

/* A static, human-readable description of the status; never NULL. */
const char *tether_strerror(tether_status_t status);

#if defined(__GNUC__)
#define TETHER_MUST_CHECK __attribute__((warn_unused_result))
#define TETHER_EXPLAIN_FORMAT __attribute__((format(printf, 4, 5)))
#else
#define TETHER_MUST_CHECK
#define TETHER_EXPLAIN_FORMAT
#endif

/* For functions that explain a refusal in a caller's (why, why_size)
 * buffer: writes the printf-style message into why (truncated to why_size,
 * always terminated; nothing when why is NULL or why_size is 0) and returns
 * status, so that a refusal is one statement: return tether_explain(...). */
tether_status_t tether_explain(tether_status_t status, char *why, size_t why_size, const char *fmt,
                               ...) TETHER_EXPLAIN_FORMAT;

#endif
