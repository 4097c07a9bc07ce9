/*
 * The body of POST /v1/enroll/activate, parsed strictly: exactly one JSON
 * object with exactly the members below, no repeats, nothing else. Pure (no
 * I/O): the input comes from any network peer and is fuzzed. (The body of
 * POST /v1/enroll is lib's tether_enroll_request_from_json.) On error,
 * message (a sentence for the client) says what is wrong.
 */
#ifndef TETHER_FLEET_ENROLL_REQUEST_H
#define TETHER_FLEET_ENROLL_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tether/error.h"

#define TETHER_ENROLL_MESSAGE_SIZE 160
#define TETHER_ENROLL_PROOF_SIZE 32
#define TETHER_ENROLL_ACTIVATE_MAX_JSON 1024

typedef struct tether_enroll_activate_request {
    char enrollment_id[TETHER_STORE_ENROLLMENT_ID_SIZE]; /* "enr_" + 32 lowercase hex */
    uint8_t proof[TETHER_ENROLL_PROOF_SIZE];
} tether_enroll_activate_request_t;

/* {"enrollment_id": "enr_<32 hex>", "proof": "<base64url of 32 bytes>"}.
 * TETHER_ERR_PARSE with message set; req is wiped then. */
TETHER_MUST_CHECK tether_status_t tether_enroll_parse_activate(
    const char *body, size_t len, tether_enroll_activate_request_t *req, char *message,
    size_t message_size);

#endif
