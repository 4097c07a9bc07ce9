/*
 * DPoP proofs (RFC 9449): the proof a device sends with each request to show
 * it holds the key its access token is bound to (the token's cnf.jkt).
 *
 * The gateway verifies them (tether_dpop_verify, RFC 9449 section 4.3) and
 * the agent makes them (tether_dpop_sign_with, with the TPM device key), so
 * both sides share one definition of the structure:
 *
 *   header  {"typ":"dpop+jwt","alg":"ES256","jwk":{EC P-256 public key}}
 *   claims  {"jti","htm","htu","iat","ath"[,"nonce"]}
 *
 * What this file does not do, because it needs state: remembering jti values
 * (the caller's replay cache, keyed by the proof's jkt and jti) and issuing
 * or checking server nonces (the caller compares result->nonce). Nothing
 * here reads a clock, a file or the network.
 */
#ifndef TETHER_DPOP_H
#define TETHER_DPOP_H

#include <stddef.h>
#include <stdint.h>

#include "tether/crypto.h"
#include "tether/error.h"
#include "tether/jose.h"

/* Longest proof accepted, in characters: a header with one P-256 JWK, a
 * bounded htu and nonce. A bound on what an unauthenticated peer can make
 * the verifier decode. */
#define TETHER_DPOP_MAX_LEN 4096
#define TETHER_DPOP_JTI_MAX 64    /* characters of jti */
#define TETHER_DPOP_NONCE_MAX 256 /* characters of nonce */
#define TETHER_DPOP_HTU_MAX 2048  /* characters of a normalised htu */
#define TETHER_DPOP_HTM_MAX 16

/* Why a proof was refused: each has a stable name (tether_dpop_failure_name)
 * that a relying party may put in its error bodies. */
typedef enum tether_dpop_failure {
    TETHER_DPOP_OK = 0,
    TETHER_DPOP_MALFORMED,     /* not a compact JWS of JSON objects, or over a bound */
    TETHER_DPOP_WRONG_TYPE,    /* header typ is not dpop+jwt */
    TETHER_DPOP_WRONG_ALG,     /* alg is not ES256, or crit is present */
    TETHER_DPOP_BAD_KEY,       /* jwk missing, not a public EC P-256 key */
    TETHER_DPOP_BAD_SIGNATURE, /* the signature does not verify with jwk */
    TETHER_DPOP_WRONG_KEY,     /* jwk's thumbprint is not the token's cnf.jkt */
    TETHER_DPOP_BAD_CLAIMS,    /* jti, htm, htu or iat missing or of the wrong type */
    TETHER_DPOP_WRONG_HTM,     /* htm is not this request's method */
    TETHER_DPOP_WRONG_HTU,     /* htu is not this request's URL */
    TETHER_DPOP_STALE,         /* iat before the window */
    TETHER_DPOP_FUTURE,        /* iat after now + leeway */
    TETHER_DPOP_WRONG_ATH,     /* ath missing or not the access token's hash */
    TETHER_DPOP_FAILURE__COUNT
} tether_dpop_failure_t;

/* What the verifier checks the proof against. Strings are borrowed for the
 * call. */
typedef struct tether_dpop_expect {
    const char *htm;          /* this request's method, compared exactly */
    const char *htu;          /* this request's URL, normalised (tether_dpop_htu_normalize) */
    const char *access_token; /* the token presented with the proof (its hash is ath);
                                 NULL only for a proof sent without a token, which must
                                 then carry no ath (RFC 9449 section 5) */
    size_t access_token_len;
    const uint8_t *access_token_sha256; /* SHA-256 of the token when the caller has it
                                           already (32 bytes), or NULL: saves hashing it
                                           again */
    const char *jkt;          /* the token's cnf.jkt */
    int64_t now;              /* seconds since the Unix epoch, the caller's clock */
    uint32_t max_age;         /* iat >= now - max_age */
    uint32_t leeway;          /* iat <= now + leeway */
} tether_dpop_expect_t;

/* What a verified proof says; the caller's replay cache keys on (jkt, jti)
 * and keeps each entry until iat + max_age. */
typedef struct tether_dpop_result {
    char jti[TETHER_DPOP_JTI_MAX + 1];
    int64_t iat;
    char nonce[TETHER_DPOP_NONCE_MAX + 1]; /* "" when the proof carries none */
} tether_dpop_result_t;

/* The claims of a proof to sign. Strings are borrowed for the call. */
typedef struct tether_dpop_claims {
    const char *htm;
    const char *htu;          /* sent as given; a verifier normalises it */
    const char *jti;          /* unique per proof: 1 to TETHER_DPOP_JTI_MAX characters */
    int64_t iat;
    const char *access_token; /* ath is its hash; NULL for a proof without a token */
    size_t access_token_len;
    const char *nonce;        /* the server's DPoP-Nonce, or NULL */
} tether_dpop_claims_t;

/* Verifies proof[0..len) (need not be NUL-terminated) as RFC 9449 section
 * 4.3 says, stopping at the first failure, in this order: size and shape;
 * header (typ, alg, jwk); the signature with the header's jwk; the jwk's RFC
 * 7638 thumbprint against expect->jkt (constant time); the claims (jti of 1
 * to TETHER_DPOP_JTI_MAX printable characters, htm, htu, integer iat,
 * optional nonce string); htm; htu (normalised, against expect->htu); iat
 * within [now - max_age, now + leeway]; ath = base64url(SHA-256(token)).
 * TETHER_OK with result filled, or TETHER_ERR_VERIFY with *failure set and a
 * sentence in why (why_size bytes; why may be NULL).
 * TETHER_ERR_INVALID_ARGUMENT for a missing argument. result is zeroed on
 * entry and on error; *failure is TETHER_DPOP_OK on success. */
TETHER_MUST_CHECK tether_status_t tether_dpop_verify(const char *proof, size_t len,
                                                     const tether_dpop_expect_t *expect,
                                                     tether_dpop_result_t *result,
                                                     tether_dpop_failure_t *failure, char *why,
                                                     size_t why_size);

/* A stable lower-case name for failure ("dpop_wrong_htu", ...), never NULL. */
const char *tether_dpop_failure_name(tether_dpop_failure_t failure);

/* Normalises an http(s) URL for comparing htu (RFC 9449 section 4.3, point
 * 9; RFC 3986 section 6.2.2 and 6.2.3): scheme and host in lower case, the
 * default port (80, 443) dropped, percent-encodings in upper case, an empty
 * path as "/", the query and fragment removed. url[0..len) need not be
 * NUL-terminated. Refused (TETHER_ERR_PARSE): another scheme, userinfo, an
 * empty host, a bad port, bytes outside printable ASCII, a bad
 * percent-encoding; TETHER_ERR_TOO_LARGE when out (out_size bytes) is too
 * small. out is NUL-terminated on success and "" on error. */
TETHER_MUST_CHECK tether_status_t tether_dpop_htu_normalize(const char *url, size_t len, char *out,
                                                            size_t out_size);

/* ath for an access token: base64url(SHA-256(token)), NUL-terminated in out
 * (at least 44 bytes). */
TETHER_MUST_CHECK tether_status_t tether_dpop_ath(const char *token, size_t len, char *out,
                                                  size_t out_size);

/* Makes a proof signed by sign(sign_ctx, ...) for the public key public_key
 * (whose JWK goes in the header): the agent's TPM device key. Output as for
 * tether_jws_sign (out wiped on error). */
TETHER_MUST_CHECK tether_status_t tether_dpop_sign_with(const tether_dpop_claims_t *claims,
                                                        const tether_ec_key_t *public_key,
                                                        tether_jws_sign_fn sign, void *sign_ctx,
                                                        char *out, size_t out_size,
                                                        size_t *out_len);

/* Same with a key pair held in memory (a session key, tests). */
TETHER_MUST_CHECK tether_status_t tether_dpop_sign(const tether_dpop_claims_t *claims,
                                                   const tether_ec_key_t *key, char *out,
                                                   size_t out_size, size_t *out_len);

#endif
