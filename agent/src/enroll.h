#ifndef TETHER_AGENT_ENROLL_H
#define TETHER_AGENT_ENROLL_H

#include "state.h"
#include "tether/https_client.h"
#include "tether/tpm.h"

/* The whole enrolment with an open TPM and a set-up client: keys and
 * counter, POST /v1/enroll, ActivateCredential, POST /v1/enroll/activate.
 * Fills state (all but fleet_url); writes nothing to disk. Prints the
 * reason of a failure on stderr. 0 on success. */
int tether_agent_enroll_with(tether_tpm_t *tpm, tether_https_client_t *client,
                             tether_ek_type_t ek_type, TPM2_HANDLE counter_index,
                             const char *name, const char *bootstrap_token,
                             tether_agent_state_t *state);

/* `tether-agent enroll`: returns a process exit code. */
int tether_agent_enroll_main(int argc, char **argv);

#endif
