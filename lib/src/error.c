#include "tether/error.h"

#include <stddef.h>

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
};

const char *tether_strerror(tether_status_t status)
{
    if ((unsigned)status >= (unsigned)TETHER_ERR__COUNT || messages[status] == NULL)
        return "unknown error";
    return messages[status];
}
