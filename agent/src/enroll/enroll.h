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

/* What an enrolment is started with (borrowed for the call). */
typedef struct tether_agent_enroll_params {
    const char *fleet;           /* the fleet's URL, as given to the client */
    tether_ek_type_t ek_type;
    TPM2_HANDLE counter_index;
    const char *name;            /* NULL: the fleet's choice */
    const char *bootstrap_token; /* NULL: none (allow list) */
} tether_agent_enroll_params_t;

/*
 * Brings the device to active with the fleet, crash-safe: an enrolment
 * pending in state_dir (enrolment.json, for this fleet) is resumed at
 * activation; when there is none, or the fleet no longer holds it, a new
 * one starts, and enrolment.json is written (atomically) before activating.
 * The fleet answers a repeated activation again, so a run that died after
 * the fleet activated the device but before device.json was written is
 * finished by the next. Fills state (fleet_url included); enrolment.json
 * stays until the caller has saved device.json and removes it. Prints the
 * reason of a failure on stderr. 0 on success.
 */
int tether_agent_enroll_to_active(tether_tpm_t *tpm, tether_https_client_t *client,
                                  const tether_agent_enroll_params_t *params,
                                  const char *state_dir, tether_agent_state_t *state);

/* Reads the fleet's 200 answer to POST /v1/enroll ({"enrollment_id",
 * "credential_blob", "encrypted_secret", the last two base64url of TPM2B
 * structures, each exactly one) into pending's enrollment_id,
 * credential_blob and encrypted_secret. Pure. TETHER_ERR_PARSE for any
 * other answer. */
TETHER_MUST_CHECK tether_status_t tether_agent_enroll_read_challenge(
    const uint8_t *body, size_t body_len, tether_agent_pending_t *pending);

/* `tether-agent enroll`: returns a process exit code. */
int tether_agent_enroll_main(int argc, char **argv);

#endif
