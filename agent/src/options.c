#include "options.h"

#include <stdio.h>

tether_status_t tether_agent_tpm_open(tether_tpm_t *tpm, const char *tcti, char *why,
                                      size_t why_size)
{
    tether_status_t rc;

    if (why_size > 0)
        why[0] = '\0';
    if ((rc = tether_tpm_open_esapi(tpm, tcti)) != TETHER_OK)
        snprintf(why, why_size, "%s: %s", tether_strerror(rc),
                 tpm->last_error[0] != '\0' ? tpm->last_error : "no details");
    return rc;
}
