/*
 * The attested token exchange (DESIGN.md, "Attested token exchange", "Clone
 * detection"): the two endpoints tether-agent calls every ~2/3 of a token's
 * lifetime, over TLS and without any other credential than its TPM.
 *
 *   POST /v1/challenge  {"device_id"} -> {"nonce", "expires_in", "pcr_selection"}
 *   POST /v1/token      RFC 8693 token exchange (form) with the TPM evidence
 *                       (tether/evidence.h) as subject_token -> an RFC 9068
 *                       access token, and "next_challenge": the nonce of the
 *                       device's next exchange, usable from its scheduled
 *                       refresh ("valid_in"), so a refresh is one request
 *
 * Nonces are stateless (tether/nonce.h) under DIR/nonce.key. The token
 * endpoint checks, in this order: the form; the evidence parses; the device
 * is known and active; the nonce; tether_evidence_verify() against what
 * enrolment stored (AK, qualified signer, counter name, the configured PCR
 * selection and the device's reference digest, the last accepted clock);
 * then one store transaction decides between a new exchange, a
 * byte-identical retry and a clone (tether_store_exchange_record), and the
 * token is signed only after that commit. Bodies, answers and errors:
 * provisioning/fleetd/README.md.
 */
#ifndef TETHER_FLEET_EXCHANGE_API_H
#define TETHER_FLEET_EXCHANGE_API_H

#include <stdbool.h>
#include <stdint.h>

#include "route.h"
#include "tether/http_handler.h"
#include "issuer_keys.h"
#include "store.h"
#include "tether/nonce.h"
#include "token_issuer.h"

#define TETHER_CHALLENGE_TTL 60 /* seconds a nonce is valid, from the opening of its window */
/* Seconds a nonce may be used before its window opens: the clocks of
 * replicas sharing one store differ by this much at most. */
#define TETHER_NONCE_WINDOW_LEEWAY 5

typedef struct tether_exchange_api {
    tether_store_t *store;               /* borrowed: must outlive every request */
    tether_issuer_keys_t *keys;          /* borrowed, opened */
    const tether_token_policy_t *policy; /* borrowed */
    uint8_t nonce_key[TETHER_NONCE_KEY_SIZE]; /* a copy */
    int64_t (*clock)(void); /* Unix seconds; NULL: the system clock (tests set one) */
} tether_exchange_api_t;

/* nonce_key is copied; tether_exchange_api_free wipes the copy. */
void tether_exchange_api_init(tether_exchange_api_t *api, tether_store_t *store,
                              tether_issuer_keys_t *keys, const tether_token_policy_t *policy,
                              const uint8_t nonce_key[TETHER_NONCE_KEY_SIZE]);

/* Wipes the struct; accepts NULL. */
void tether_exchange_api_free(tether_exchange_api_t *api);

/* POST /v1/challenge and POST /v1/token, routed by router.c (which has
 * checked the method, the query, the media type and the body's size); the
 * API is call->router->exchange. */
void tether_exchange_api_challenge(tether_route_call_t *call);
void tether_exchange_api_token(tether_route_call_t *call);

#endif
