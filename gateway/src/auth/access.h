/*
 * Who may pass: the authorization every request to tether-gate goes through
 * before any stage sees it (DESIGN.md, "AI endpoint access").
 *
 *  1. "Authorization: DPoP <token>" (or "Bearer <token>" where the token's
 *     policy allows bearer tokens explicitly);
 *  2. the access token, verified once and then cached by its SHA-256 until
 *     it expires: ES256 at+jwt of the fleet (kid from its JWKS), aud this
 *     gateway, exp/nbf with the configured leeway, a sub, jti and cnf.jkt;
 *  3. revocation: the device or token listed by the feed, or the feed stale;
 *  4. the token's policy (tether.policy) known to this gateway;
 *  5. the DPoP proof, verified on every request (lib/dpop.h): bound to the
 *     token's cnf.jkt, htm/htu of this request, iat in the window, ath;
 *  6. the server nonce, when configured (stateless: MACed with a key of
 *     this process, expiring after TETHER_GATE_NONCE_TTL);
 *  7. the proof's jti never seen before with this token (the replay cache:
 *     full means 503, never forgetting a jti early).
 * The result is the verified identity, or a refusal (refusal.h).
 */
#ifndef TETHER_GATE_ACCESS_H
#define TETHER_GATE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet_keys.h"
#include "gate_config.h"
#include "gate_table.h"
#include "refusal.h"
#include "revocations.h"
#include "tether/cidr.h"
#include "tether/dpop.h"
#include "tether/jose.h"
#include "tether/nonce.h"

#define TETHER_GATE_ID_MAX 128 /* bytes of a device id or token jti */
#define TETHER_GATE_SOURCES_MAX 32 /* networks in tether.sources: the fleet policy's bound */
#define TETHER_GATE_NONCE_TTL 300

/* What a verified request carries to the next stage. */
typedef struct tether_gate_identity {
    char device[TETHER_GATE_ID_MAX + 1]; /* the token's sub */
    char jti[TETHER_GATE_ID_MAX + 1];    /* the token's jti */
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
    char policy[TETHER_GATE_CONFIG_NAME_MAX + 1];
    char models[TETHER_GATE_CONFIG_MODELS_MAX + 1]; /* the token's tether.models, comma-separated */
    int64_t iat; /* fleetd's clock: a device revoked later refuses it */
    int64_t exp;
    bool bearer; /* passed without a proof (its policy allows bearer tokens) */
    /* The token's tether.sources: the networks its requests may come from
     * (canonical, ascending); none: any. */
    tether_cidr_t sources[TETHER_GATE_SOURCES_MAX];
    size_t source_count;
} tether_gate_identity_t;

/* The request as authorization sees it. Strings are borrowed for the call. */
typedef struct tether_gate_access_request {
    const char *authorization; /* the Authorization header, or NULL */
    const char *dpop;          /* the DPoP header, or NULL */
    const char *htm;           /* the method the proof must name */
    const char *htu;           /* the URL the proof must name, normalised */
} tether_gate_access_request_t;

/* The checker. Caller-owned; shared by the server's threads. */
typedef struct tether_gate_access {
    const tether_gate_config_t *config;     /* borrowed */
    tether_gate_fleet_keys_t *keys;         /* borrowed */
    tether_gate_revocations_t *revocations; /* borrowed */
    tether_gate_table_t tokens;             /* verified tokens, by SHA-256(token) */
    tether_gate_table_t replay;             /* SHA-256(SHA-256(token) || jti) */
    uint8_t nonce_key[TETHER_NONCE_KEY_SIZE];
} tether_gate_access_t;

void tether_gate_access_init(tether_gate_access_t *access);

/* Sizes the caches from config and makes the nonce key. Every pointer must
 * outlive the checker. */
TETHER_MUST_CHECK tether_status_t tether_gate_access_open(tether_gate_access_t *access,
                                                          const tether_gate_config_t *config,
                                                          tether_gate_fleet_keys_t *keys,
                                                          tether_gate_revocations_t *revocations);

/* Wipes the caches and the nonce key; accepts NULL. */
void tether_gate_access_free(tether_gate_access_t *access);

/* Authorizes request at wall-clock now and monotonic mono_now. TETHER_OK
 * with *identity set, or TETHER_ERR_VERIFY with *refusal set. Both are
 * zeroed on entry. */
TETHER_MUST_CHECK tether_status_t tether_gate_access_check(tether_gate_access_t *access,
                                                           const tether_gate_access_request_t *request,
                                                           int64_t now, int64_t mono_now,
                                                           tether_gate_identity_t *identity,
                                                           tether_gate_refusal_t *refusal);

/* The token's sources against the request's TCP peer, remote (the HTTP
 * layer's text address; NULL when unknown), after tether_gate_access_check
 * passed: TETHER_OK inside them (or when the token names none), or
 * TETHER_ERR_VERIFY with *refusal (zeroed on entry) 403
 * source_network_refused. The peer is the socket's, never a header: behind
 * a reverse proxy (the /authz routes) it is the proxy's address. */
TETHER_MUST_CHECK tether_status_t tether_gate_access_check_source(
    const tether_gate_identity_t *identity, const char *remote, tether_gate_refusal_t *refusal);

/* A fresh server nonce (base64url, NUL-terminated in out, at least
 * TETHER_NONCE_TEXT_LEN + 1 bytes) valid for TETHER_GATE_NONCE_TTL. */
TETHER_MUST_CHECK tether_status_t tether_gate_access_nonce(tether_gate_access_t *access,
                                                           int64_t now, char *out,
                                                           size_t out_size);

#endif
