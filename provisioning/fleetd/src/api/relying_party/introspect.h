/*
 * Token introspection (RFC 7662) as the issuer sees it: is this text a
 * currently valid access token of this fleet? Used by POST /v1/introspect
 * (relying_party_api.c). A token is active only when all of these hold, in
 * this order (the first failure is the reason, for the log; the answer to
 * the relying party is only {"active": false}):
 *
 *   1. it is an RFC 9068 access token (typ at+jwt, ES256) signed by one of
 *      the fleet's verification keys (kid), with the fleet's issuer (any
 *      audience: the relying party checks aud from the answer);
 *   2. exp is in the future (no leeway: the fleet's own clock decides) and
 *      nbf/iat not in the future (a small leeway for replicas' clocks);
 *   3. the fleet issued its jti to the device named by sub, and has not
 *      revoked it;
 *   4. that device is active (not revoked, quarantined or re-enrolling).
 *
 * 3 and 4 are one read of the store at request time: a revocation committed
 * before the request is always seen. Nothing is cached.
 */
#ifndef TETHER_FLEET_INTROSPECT_H
#define TETHER_FLEET_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store.h"
#include "tether/error.h"
#include "tether/jose.h"

/* Clock skew accepted for iat and nbf only (tokens from another replica). */
#define TETHER_INTROSPECT_LEEWAY 30

/*
 * Where the fleet's verification keys come from: acquire fills *keys with
 * every key a live token may be signed with as of now (the current issuer
 * key and the retired ones kept for their tokens' lifetime) and keeps them,
 * and the issuer string it sets, valid and unchanged until release (it may
 * hold a lock: nothing else is called in between). Called from several
 * threads. In fleetd, tether_issuer_keys_acquire/release (issuer_keys.h); a
 * fixed set in tests.
 */
typedef struct tether_introspect_keys {
    tether_status_t (*acquire)(void *arg, int64_t now, tether_jwt_keyset_t *keys,
                               const char **issuer);
    void (*release)(void *arg);
    void *arg;
} tether_introspect_keys_t;

typedef enum tether_introspect_reason {
    TETHER_INTROSPECT_ACTIVE = 0,
    TETHER_INTROSPECT_NO_KEYS,           /* the fleet has no verification keys */
    TETHER_INTROSPECT_MALFORMED,         /* not a well-formed access token (or too long) */
    TETHER_INTROSPECT_UNKNOWN_KEY,       /* kid names no key of the fleet */
    TETHER_INTROSPECT_BAD_SIGNATURE,
    TETHER_INTROSPECT_WRONG_ISSUER,
    TETHER_INTROSPECT_EXPIRED,
    TETHER_INTROSPECT_NOT_YET_VALID,
    TETHER_INTROSPECT_UNKNOWN_JTI,       /* never issued (or issued to another device) */
    TETHER_INTROSPECT_TOKEN_REVOKED,
    TETHER_INTROSPECT_DEVICE_NOT_ACTIVE, /* revoked, quarantined, or back to allowed */
} tether_introspect_reason_t;

typedef struct tether_introspect_result {
    tether_introspect_reason_t reason;
    cJSON *claims; /* the verified claims when active; free with tether_introspect_result_clear */
    /* For the log line (neither is secret): */
    char jti[17];  /* the first 16 characters of jti, printable ASCII; "" if unknown */
    char device_id[TETHER_STORE_DEVICE_ID_SIZE]; /* sub of a verified token; "" if unknown */
    tether_device_status_t device_status; /* once the token's row was read */
} tether_introspect_result_t;

/* Decides on token[0..len) as of now. TETHER_OK with result->reason set is
 * a decision; any other status (TETHER_ERR_STORE, TETHER_ERR_NO_MEMORY) means
 * none could be made: answer 500, never "inactive" nor "active". keys and
 * store are borrowed for the call. */
TETHER_MUST_CHECK tether_status_t tether_introspect_token(tether_store_t *store,
                                                          const tether_introspect_keys_t *keys,
                                                          const char *token, size_t len,
                                                          int64_t now,
                                                          tether_introspect_result_t *result);

/* The RFC 7662 answer: {"active": false}, or {"active": true, the token's
 * iss, sub, aud, client_id, scope, exp, iat, nbf, jti, cnf and tether
 * claims (those present), "token_type": "Bearer"}. NULL when out of
 * memory. */
cJSON *tether_introspect_answer(const tether_introspect_result_t *result);

/* "active", "expired", "token_revoked", ... for log lines. */
const char *tether_introspect_reason_name(tether_introspect_reason_t reason);

void tether_introspect_result_clear(tether_introspect_result_t *result);

#endif
