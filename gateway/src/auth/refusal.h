/*
 * Why tether-gate refuses a request: the HTTP status, the OAuth error code
 * of RFC 6750 section 3.1 / RFC 9449 section 7 (in WWW-Authenticate and the
 * body) and the gateway's own code (the body's "tether_error"), one per
 * reason, so a client and a test can tell each refusal apart. The DPoP
 * proof's own reasons are lib's (tether_dpop_failure_name: "dpop_wrong_htu",
 * ...).
 */
#ifndef TETHER_GATE_REFUSAL_H
#define TETHER_GATE_REFUSAL_H

#include <stdbool.h>

/* OAuth error codes (RFC 6750, RFC 9449). */
#define TETHER_GATE_OAUTH_INVALID_REQUEST "invalid_request"
#define TETHER_GATE_OAUTH_INVALID_TOKEN "invalid_token"
#define TETHER_GATE_OAUTH_INSUFFICIENT_SCOPE "insufficient_scope"
#define TETHER_GATE_OAUTH_INVALID_DPOP_PROOF "invalid_dpop_proof"
#define TETHER_GATE_OAUTH_USE_DPOP_NONCE "use_dpop_nonce"
#define TETHER_GATE_OAUTH_UNAVAILABLE "temporarily_unavailable"

/* tether-gate's codes. */
#define TETHER_GATE_TOKEN_MISSING "token_missing"             /* no Authorization */
#define TETHER_GATE_TOKEN_MALFORMED "token_malformed"         /* not "DPoP <token>" */
#define TETHER_GATE_TOKEN_INVALID "token_invalid"             /* shape, typ, claims */
#define TETHER_GATE_TOKEN_UNSUPPORTED "token_unsupported_alg" /* alg is not ES256 */
#define TETHER_GATE_TOKEN_BAD_SIGNATURE "token_bad_signature"
#define TETHER_GATE_TOKEN_UNKNOWN_KEY "token_unknown_key"     /* kid not in the fleet's JWKS */
#define TETHER_GATE_TOKEN_EXPIRED "token_expired"
#define TETHER_GATE_TOKEN_NOT_YET_VALID "token_not_yet_valid"
#define TETHER_GATE_TOKEN_WRONG_ISSUER "token_wrong_issuer"
#define TETHER_GATE_TOKEN_WRONG_AUDIENCE "token_wrong_audience"
#define TETHER_GATE_TOKEN_UNBOUND "token_unbound"             /* no cnf.jkt */
#define TETHER_GATE_TOKEN_REVOKED "token_revoked"
#define TETHER_GATE_DEVICE_REVOKED "device_revoked"
#define TETHER_GATE_BEARER_NOT_ALLOWED "bearer_not_allowed"
#define TETHER_GATE_POLICY_UNKNOWN "policy_unknown"
#define TETHER_GATE_SOURCE_REFUSED "source_network_refused" /* outside tether.sources */
#define TETHER_GATE_DPOP_MISSING "dpop_missing"
#define TETHER_GATE_DPOP_REPLAYED "dpop_replayed"
#define TETHER_GATE_DPOP_NONCE_REQUIRED "dpop_nonce_required"
#define TETHER_GATE_REPLAY_CACHE_FULL "replay_cache_full"
#define TETHER_GATE_CODE_FEED_STALE "revocation_feed_stale"
#define TETHER_GATE_FLEET_KEYS_UNAVAILABLE "fleet_keys_unavailable"
#define TETHER_GATE_AUTHZ_NO_TARGET "authz_no_original_request"
#define TETHER_GATE_NOT_FOUND "not_found"
#define TETHER_GATE_NOT_LOCAL "not_loopback" /* a loopback-only route (/metrics) */

typedef struct tether_gate_refusal {
    unsigned status;          /* 400, 401, 403 or 503 */
    const char *error;        /* an OAuth code above */
    const char *tether_error; /* a tether-gate code above, or a dpop_* failure name */
    char description[192];    /* for people; never holds a token or proof */
    bool nonce;               /* send a fresh DPoP-Nonce with the refusal */
} tether_gate_refusal_t;

#endif
