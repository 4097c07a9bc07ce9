/*
 * JOSE as tether uses it: ES256 only (ECDSA P-256 with SHA-256).
 *
 * - ES256 with lib's P-256 keys (crypto.h; RFC 7518 section 3.4: the JWS
 *   signature is the raw 32-byte R followed by the 32-byte S, not DER).
 * - JWS compact serialization (RFC 7515 section 7.1): sign with a key or with
 *   a callback (the device key lives in the TPM), verify with one key.
 * - JWK for EC P-256 public keys (RFC 7517, RFC 7518 section 6.2) and JWK
 *   thumbprints (RFC 7638), the value of cnf.jkt.
 * - JWT access tokens (RFC 9068 profile: typ "at+jwt", kid, ES256): sign and
 *   verify against a key set, issuer, audience and the caller's clock.
 *
 * Nothing here reads a clock, a file or the network. Tokens and JWS texts are
 * bearer credentials: callers wipe them (tether_wipe) when done.
 */
#ifndef TETHER_JOSE_H
#define TETHER_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include "tether/crypto.h"
#include "tether/error.h"

/* Longest compact JWS (and so JWT) produced or accepted, in characters. A
 * bound on what an unauthenticated peer can make a verifier decode and parse. */
#define TETHER_JWS_MAX_LEN 8192

#define TETHER_ES256_DIGEST_SIZE TETHER_SHA256_SIZE
#define TETHER_ES256_SIGNATURE_SIZE TETHER_EC_SIGNATURE_SIZE /* R || S */

/* 43 base64url characters of a SHA-256 digest, and a NUL. */
#define TETHER_JWK_THUMBPRINT_SIZE 44

/* Clock skew tolerated between issuer and verifier, in seconds. */
#define TETHER_JWT_DEFAULT_LEEWAY 30
#define TETHER_JWT_MAX_LEEWAY 300

/* ---- JWS compact serialization, ES256 ---------------------------------- */

/* A signer that holds its key elsewhere (a TPM): writes the ES256 signature
 * R || S of the 32-byte SHA-256 digest to sig. Returns 0 (TETHER_OK) on
 * success. Any tether_status_t it returns (TETHER_ERR_TPM_LOCKOUT, ...) is
 * passed back to the caller unchanged; other non-zero values become
 * TETHER_ERR_CRYPTO. */
typedef int (*tether_jws_sign_fn)(void *ctx, const uint8_t digest[32], uint8_t sig[64]);

/* Writes BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)
 * and a NUL to out (out_size bytes); *out_len (may be NULL) gets its length.
 * header is the caller's JSON object and must hold "alg":"ES256"; it is
 * serialized without whitespace. The pointers are borrowed for the call.
 * TETHER_ERR_TOO_LARGE when the result would not fit in out or would exceed
 * TETHER_JWS_MAX_LEN. out is wiped on error. */
tether_status_t tether_jws_sign(const cJSON *header, const uint8_t *payload, size_t payload_len,
                                const tether_ec_key_t *key, char *out, size_t out_size,
                                size_t *out_len);

/* Same, with the signature made by sign(sign_ctx, digest, sig). */
tether_status_t tether_jws_sign_with(const cJSON *header, const uint8_t *payload,
                                     size_t payload_len, tether_jws_sign_fn sign, void *sign_ctx,
                                     char *out, size_t out_size, size_t *out_len);

/* Verifies a compact JWS (jws[0..len), need not be NUL-terminated) with one
 * P-256 key and, only if the signature verifies, decodes its payload into
 * payload (payload_size bytes; *payload_len gets the count). The protected
 * header must be a JSON object whose "alg" is exactly "ES256", without
 * "crit". If header_out is not NULL, it gets the parsed header (the caller
 * frees it with cJSON_Delete); it is NULL on error.
 * Returns TETHER_ERR_PARSE (malformed: segments, base64url, header JSON),
 * TETHER_ERR_TOO_LARGE (over TETHER_JWS_MAX_LEN, or payload_size too small),
 * TETHER_ERR_UNSUPPORTED (alg is not ES256, or crit is present),
 * TETHER_ERR_VERIFY (bad signature). */
TETHER_MUST_CHECK tether_status_t tether_jws_verify(const char *jws, size_t len,
                                                    const tether_ec_key_t *key,
                                                    cJSON **header_out,
                                                    uint8_t *payload, size_t payload_size,
                                                    size_t *payload_len);

/* ---- JWK, EC P-256 public keys ------------------------------------------ */

/* Sets key (initialised with tether_ec_key_init by the caller, still empty;
 * freed by the caller) from a JWK object {"kty":"EC","crv":"P-256","x","y"}.
 * x and y must be 32 bytes each (RFC 7518 section 6.2.1.2) and the point on
 * the curve. Other members (kid, use, alg) are ignored; a "d" member
 * (private key) is refused. TETHER_ERR_UNSUPPORTED for another kty or crv,
 * TETHER_ERR_PARSE for anything malformed. On error key is left empty. */
TETHER_MUST_CHECK tether_status_t tether_jwk_parse(const cJSON *jwk, tether_ec_key_t *key);

/* Creates a new JWK object {"kty":"EC","crv":"P-256","x":..,"y":..} with the
 * public part of key; the caller owns *out (cJSON_Delete) and may add
 * members such as "kid". TETHER_ERR_INVALID_ARGUMENT for an empty key. */
tether_status_t tether_jwk_write(const tether_ec_key_t *key, cJSON **out);

/* RFC 7638 thumbprint with SHA-256, base64url-encoded, NUL-terminated in out
 * (out_size >= TETHER_JWK_THUMBPRINT_SIZE), of a JWK object. The hashed text
 * is a JSON object of only the required members of the key type, ordered by
 * member name, without whitespace: EC (crv, kty, x, y), RSA (e, kty, n), OKP
 * (crv, kty, x, RFC 8037) and oct (k, kty). Their values must be strings of
 * printable ASCII without '"' or '\' (so no escaping question arises).
 * TETHER_ERR_UNSUPPORTED for another kty, TETHER_ERR_PARSE when a required
 * member is missing or not such a string. The key itself is not checked. */
tether_status_t tether_jwk_thumbprint(const cJSON *jwk, char *out, size_t out_size);

/* Thumbprint of an EC P-256 key's public part: the device key's thumbprint
 * is the cnf.jkt claim of the tokens bound to it. */
tether_status_t tether_jwk_thumbprint_key(const tether_ec_key_t *key, char *out, size_t out_size);

/* ---- JWT access tokens (RFC 9068) --------------------------------------- */

/* One verification key: kid and key are borrowed and must outlive every
 * tether_jwt_verify call that uses them. */
typedef struct tether_jwt_key {
    const char *kid;            /* NUL-terminated key id, compared exactly */
    const tether_ec_key_t *key; /* EC P-256 public key (or key pair) */
} tether_jwt_key_t;

/* The issuer keys a verifier trusts (old keys stay while their tokens live). */
typedef struct tether_jwt_keyset {
    const tether_jwt_key_t *keys;
    size_t count;
} tether_jwt_keyset_t;

/* What the verifier expects. Strings are borrowed for the call. */
typedef struct tether_jwt_expect {
    const char *issuer;    /* "iss" must equal it exactly */
    const char *audience;  /* "aud" (string, or array of strings) must hold it */
    int64_t now;           /* seconds since the Unix epoch, from the caller's clock */
    uint32_t leeway;       /* tolerated clock skew in seconds, at most TETHER_JWT_MAX_LEEWAY */
} tether_jwt_expect_t;

/* Only for the issuer's own introspection endpoint, which reports "aud" to
 * the relying party that checks it (RFC 7662 section 2.2): passed as
 * expect->audience (recognised by its address, not its text), "aud" is
 * checked for its shape only. A relying party never uses it. */
extern const char TETHER_JWT_ANY_AUDIENCE[];

/* Issues an access token: header {"alg":"ES256","typ":"at+jwt","kid":kid},
 * payload the caller's claims object serialized without whitespace. key is
 * the issuer's P-256 private key. Output as for tether_jws_sign. */
tether_status_t tether_jwt_sign(const char *kid, const cJSON *claims, const tether_ec_key_t *key,
                                char *out, size_t out_size, size_t *out_len);

/* Same, with the signature made by sign(sign_ctx, digest, sig). */
tether_status_t tether_jwt_sign_with(const char *kid, const cJSON *claims, tether_jws_sign_fn sign,
                                     void *sign_ctx, char *out, size_t out_size, size_t *out_len);

/* Verifies an access token token[0..len) (need not be NUL-terminated), in
 * this order, stopping at the first failure:
 *  1. size (TETHER_ERR_TOO_LARGE over TETHER_JWS_MAX_LEN) and shape: three
 *     segments of strict base64url (TETHER_ERR_PARSE);
 *  2. header: a JSON object without duplicate members (TETHER_ERR_PARSE);
 *     "alg" exactly "ES256" and no "crit" (TETHER_ERR_UNSUPPORTED, so
 *     "none" and HS256 never reach a key); "typ" "at+jwt" or
 *     "application/at+jwt", any case (RFC 9068 section 4; TETHER_ERR_PARSE);
 *     "kid" a string (TETHER_ERR_PARSE) naming a key in keys
 *     (TETHER_ERR_UNKNOWN_KEY);
 *  3. the signature with that key (TETHER_ERR_VERIFY). Nothing of the
 *     payload is decoded or parsed before this point;
 *  4. claims: a JSON object without duplicate members holding the claims
 *     RFC 9068 section 2.2 requires: iss, sub, client_id, jti (strings), aud
 *     (string or array of strings), exp and iat (integer NumericDates), and
 *     nbf if present (TETHER_ERR_PARSE otherwise);
 *  5. iss (TETHER_ERR_WRONG_ISSUER), aud (TETHER_ERR_WRONG_AUDIENCE; not
 *     with TETHER_JWT_ANY_AUDIENCE);
 *  6. now >= exp + leeway (TETHER_ERR_EXPIRED); now < nbf - leeway or
 *     now < iat - leeway (TETHER_ERR_NOT_YET_VALID).
 * On success, if claims_out is not NULL, it gets the claims (the caller frees
 * them with cJSON_Delete); it is NULL on error. keys and expect are borrowed. */
TETHER_MUST_CHECK tether_status_t tether_jwt_verify(const char *token, size_t len,
                                                    const tether_jwt_keyset_t *keys,
                                                    const tether_jwt_expect_t *expect,
                                                    cJSON **claims_out);

#endif
