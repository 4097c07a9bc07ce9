/*
 * Bodies of admin API requests, parsed strictly: exactly one JSON object,
 * no unknown or repeated members, every member of the right type and within
 * its bounds. Pure (no I/O): the input is untrusted and fuzzed. On error,
 * message (a sentence for the client) says what is wrong.
 */
#ifndef TETHER_FLEET_ADMIN_REQUEST_H
#define TETHER_FLEET_ADMIN_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tether/error.h"

#define TETHER_ADMIN_MESSAGE_SIZE 160
#define TETHER_ADMIN_MIN_TTL 60

typedef struct tether_admin_allow_request {
    char ek_sha256[TETHER_STORE_EK_SHA256_SIZE]; /* lowercase */
    char name[TETHER_STORE_NAME_MAX + 1];
} tether_admin_allow_request_t;

typedef struct tether_admin_reason_request {
    char reason[TETHER_STORE_REASON_MAX + 1];
} tether_admin_reason_request_t;

/* {"policy": NAME}: the policy a device is to follow. */
typedef struct tether_admin_policy_request {
    char policy[TETHER_POLICY_NAME_MAX + 1];
} tether_admin_policy_request_t;

typedef struct tether_admin_bootstrap_request {
    unsigned ttl_seconds;
    unsigned uses;
} tether_admin_bootstrap_request_t;

typedef struct tether_admin_token_request {
    char name[TETHER_STORE_NAME_MAX + 1];
    unsigned roles;
} tether_admin_token_request_t;

/* {"ek_sha256": "<64 hex>", "name": "<name>"} */
TETHER_MUST_CHECK tether_status_t tether_admin_parse_allow(const char *body, size_t len,
                                                           tether_admin_allow_request_t *req,
                                                           char *message, size_t message_size);

/* {"reason": "<1-256 printable ASCII>"} */
TETHER_MUST_CHECK tether_status_t tether_admin_parse_reason(const char *body, size_t len,
                                                            tether_admin_reason_request_t *req,
                                                            char *message, size_t message_size);

/* {"ttl_seconds": 60..max_ttl, "uses": 1..1000 (default 1)} */
/* {"policy"}: a name tether_policy_name_valid accepts. */
TETHER_MUST_CHECK tether_status_t tether_admin_parse_policy(const char *body, size_t len,
                                                            tether_admin_policy_request_t *req,
                                                            char *message, size_t message_size);

TETHER_MUST_CHECK tether_status_t tether_admin_parse_bootstrap(
    const char *body, size_t len, unsigned max_ttl, tether_admin_bootstrap_request_t *req,
    char *message, size_t message_size);

/* {"name": "<name>", "roles": ["read" | "fleet" | "security" | "relying-party", ...]} */
TETHER_MUST_CHECK tether_status_t tether_admin_parse_token(const char *body, size_t len,
                                                           tether_admin_token_request_t *req,
                                                           char *message, size_t message_size);

#endif
