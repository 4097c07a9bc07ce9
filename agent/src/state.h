/*
 * The agent's state directory: public data and TPM-wrapped blobs only
 * (DESIGN.md, "Keys on the device"). One file, device.json, written
 * atomically, holds the device id, the fleet URL, the EK type, the counter's
 * NV index and the AK and device key blobs; fleet-ca.pem is the fleet's CA.
 * While an enrolment is in progress, enrolment.json (written atomically
 * before the agent activates, removed once device.json is written) holds
 * what is needed to finish it: the same keys and counter, and the fleet's
 * challenge. No token, no secret and no private key in the clear is ever
 * written here.
 */
#ifndef TETHER_AGENT_STATE_H
#define TETHER_AGENT_STATE_H

#include <stddef.h>

#include "tether/tpm.h"

#define TETHER_STATE_FILE "device.json"
#define TETHER_STATE_CA_FILE "fleet-ca.pem"
#define TETHER_STATE_PENDING_FILE "enrolment.json"
#define TETHER_ENROLLMENT_ID_MAX 64
#define TETHER_DEVICE_ID_MAX 64
#define TETHER_URL_MAX 256
#define TETHER_DEFAULT_COUNTER_INDEX 0x01000100u

typedef struct tether_agent_state {
    char device_id[TETHER_DEVICE_ID_MAX + 1];
    char fleet_url[TETHER_URL_MAX + 1];
    tether_ek_type_t ek_type;
    TPM2_HANDLE counter_index;
    tether_tpm_key_blob_t ak;
    tether_tpm_key_blob_t device_key;
} tether_agent_state_t;

/* An enrolment the fleet challenged and the agent has not finished: what
 * `tether-agent enroll` needs to resume at activation after a crash. */
typedef struct tether_agent_pending {
    tether_agent_state_t state; /* all but device_id */
    char enrollment_id[TETHER_ENROLLMENT_ID_MAX + 1];
    TPM2B_ID_OBJECT credential_blob;
    TPM2B_ENCRYPTED_SECRET encrypted_secret;
} tether_agent_pending_t;

/* "p256", "p384", "rsa"; parse returns -1 for anything else. */
const char *tether_ek_type_short_name(tether_ek_type_t type);
int tether_ek_type_parse(const char *text, tether_ek_type_t *type);

/* Serialises / parses device.json (pure; the parser is strict and bounded). */
TETHER_MUST_CHECK tether_status_t tether_agent_state_to_json(const tether_agent_state_t *state,
                                                             char **json);
TETHER_MUST_CHECK tether_status_t tether_agent_state_from_json(const char *text, size_t len,
                                                               tether_agent_state_t *state,
                                                               char *why, size_t why_size);

/* dir/device.json, written atomically with mode 0600 (dir made 0700). */
TETHER_MUST_CHECK tether_status_t tether_agent_state_save(const char *dir,
                                                          const tether_agent_state_t *state);
/* TETHER_ERR_NOT_FOUND when the device is not enrolled; TETHER_ERR_PARSE
 * (reason in why) for a damaged file. */
TETHER_MUST_CHECK tether_status_t tether_agent_state_load(const char *dir,
                                                          tether_agent_state_t *state, char *why,
                                                          size_t why_size);

/* The enrolment in progress: enrolment.json, the same way (strict, bounded
 * parser; atomic write, mode 0600; TETHER_ERR_NOT_FOUND when there is none;
 * TETHER_ERR_PARSE with the reason for a damaged file). remove succeeds when
 * the file is already gone. */
TETHER_MUST_CHECK tether_status_t tether_agent_pending_to_json(
    const tether_agent_pending_t *pending, char **json);
TETHER_MUST_CHECK tether_status_t tether_agent_pending_from_json(const char *text, size_t len,
                                                                 tether_agent_pending_t *pending,
                                                                 char *why, size_t why_size);
TETHER_MUST_CHECK tether_status_t tether_agent_pending_save(const char *dir,
                                                            const tether_agent_pending_t *pending);
TETHER_MUST_CHECK tether_status_t tether_agent_pending_load(const char *dir,
                                                            tether_agent_pending_t *pending,
                                                            char *why, size_t why_size);
TETHER_MUST_CHECK tether_status_t tether_agent_pending_remove(const char *dir);

#endif
