/*
 * The TPM side of enrolment: creating the device's keys and counter and
 * answering the fleet's credential challenge. Works with any tether_tpm_t
 * (ESAPI on a device, the fake in unit tests).
 */
#ifndef TETHER_AGENT_ENROLL_DEVICE_H
#define TETHER_AGENT_ENROLL_DEVICE_H

#include <stdint.h>

#include "state.h"
#include "tether/enroll.h"
#include "tether/tpm.h"

/* Selects the EK (want: a type or TETHER_EK_ANY), creates the AK and device
 * key under it, certifies the device key with the AK, defines the exchange
 * counter at counter_index (or reuses a counter tether defined there
 * before), and fills req (all but name and bootstrap token) and state (all
 * but device_id and fleet_url). Nothing stays loaded in the TPM. */
TETHER_MUST_CHECK tether_status_t tether_agent_enroll_prepare(tether_tpm_t *tpm,
                                                              tether_ek_type_t want,
                                                              TPM2_HANDLE counter_index,
                                                              tether_enroll_request_t *req,
                                                              tether_agent_state_t *state);

/* Runs TPM2_ActivateCredential with the state's AK and EK and computes the
 * proof for the fleet. The recovered secret is wiped before returning. */
TETHER_MUST_CHECK tether_status_t tether_agent_enroll_activate(
    tether_tpm_t *tpm, const tether_agent_state_t *state, const TPM2B_ID_OBJECT *credential_blob,
    const TPM2B_ENCRYPTED_SECRET *encrypted_secret, const char *enrollment_id,
    uint8_t proof[32]);

#endif
