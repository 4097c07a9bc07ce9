#include "tether/error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static const char *const messages[TETHER_ERR__COUNT] = {
    [TETHER_OK] = "success",
    [TETHER_ERR_INVALID_ARGUMENT] = "invalid argument",
    [TETHER_ERR_NO_MEMORY] = "out of memory",
    [TETHER_ERR_IO] = "input/output error",
    [TETHER_ERR_PARSE] = "malformed input",
    [TETHER_ERR_TOO_LARGE] = "input or output exceeds its size limit",
    [TETHER_ERR_NOT_FOUND] = "not found",
    [TETHER_ERR_CRYPTO] = "cryptographic operation failed",
    [TETHER_ERR_VERIFY] = "verification failed",
    [TETHER_ERR_UNSUPPORTED] = "not supported",
    [TETHER_ERR_STATE] = "operation not valid in the current state",
    [TETHER_ERR_TPM] = "TPM command failed",
    [TETHER_ERR_TPM_CONNECT] = "cannot connect to the TPM (check the TCTI string)",
    [TETHER_ERR_TPM_RETRY] = "TPM stayed busy after every retry",
    [TETHER_ERR_TPM_LOCKOUT] = "TPM is in dictionary-attack lockout; wait or reset the lockout",
    [TETHER_ERR_TPM_AUTH] = "TPM authorization failed",
    [TETHER_ERR_NO_EK_CERT] = "no endorsement key certificate found in the TPM",
    [TETHER_ERR_EK_MISMATCH] = "endorsement key does not match its certificate",
    [TETHER_ERR_CONFLICT] = "conflicts with existing state",
    [TETHER_ERR_STORE] = "database error (see the log)",
    [TETHER_ERR_UNKNOWN_KEY] = "signed with an unknown key id; refresh the issuer's key set (JWKS)",
    [TETHER_ERR_EXPIRED] = "token has expired; get a new one (or check the clock)",
    [TETHER_ERR_NOT_YET_VALID] = "token is not valid yet; check the clocks of issuer and verifier",
    [TETHER_ERR_WRONG_ISSUER] = "token comes from an issuer that is not trusted here",
    [TETHER_ERR_WRONG_AUDIENCE] = "token is meant for another audience",
    [TETHER_ERR_NETWORK] = "cannot reach the server (refused, unreachable or unknown host)",
    [TETHER_ERR_TIMEOUT] = "the server did not answer in time",
    [TETHER_ERR_TLS] = "TLS connection failed (handshake or certificate check)",
    [TETHER_ERR_PROTOCOL] = "the peer's answer breaks the protocol (malformed response)",
};

const char *tether_strerror(tether_status_t status)
{
    if ((unsigned)status >= (unsigned)TETHER_ERR__COUNT || messages[status] == NULL)
        return "unknown error";
    return messages[status];
}

tether_status_t tether_explain(tether_status_t status, char *why, size_t why_size, const char *fmt,
                               ...)
{
    va_list ap;

    if (why != NULL && why_size > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return status;
}
