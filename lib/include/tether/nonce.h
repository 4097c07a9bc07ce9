/*
 * Challenge nonces for the attested token exchange (DESIGN.md, "Attested
 * token exchange", step 1). fleetd keeps no state per nonce: a nonce carries
 * its own expiry and a MAC under a key every replica holds, so any replica
 * can check a nonce another one issued.
 *
 *   nonce = random (32) || expiry (8, big-endian unix seconds)
 *           || HMAC-SHA256(key, "tether nonce v1" || random || expiry)
 *
 * 72 bytes, carried as base64url (TETHER_NONCE_TEXT_LEN characters). A nonce
 * is not a secret. These functions check only its MAC and expiry: making it
 * single-use is the verifier's (fleetd records each nonce an accepted
 * exchange used, until it expires, in the store every replica shares; see
 * tether/evidence.h).
 */
#ifndef TETHER_NONCE_H
#define TETHER_NONCE_H

#include <stddef.h>
#include <stdint.h>

#include "tether/base64url.h"
#include "tether/error.h"

#define TETHER_NONCE_RANDOM_SIZE 32
#define TETHER_NONCE_EXPIRY_SIZE 8
#define TETHER_NONCE_MAC_SIZE 32
#define TETHER_NONCE_SIZE                                                                          \
    (TETHER_NONCE_RANDOM_SIZE + TETHER_NONCE_EXPIRY_SIZE + TETHER_NONCE_MAC_SIZE) /* 72 */
#define TETHER_NONCE_TEXT_LEN TETHER_BASE64URL_ENCODED_LEN(TETHER_NONCE_SIZE) /* 96 */
#define TETHER_NONCE_KEY_SIZE 32   /* the MAC key, from tether_random_bytes */
#define TETHER_NONCE_DEFAULT_TTL 120 /* seconds: two TPM commands and one request */
#define TETHER_NONCE_LABEL "tether nonce v1"

/* Issues a nonce valid until now + ttl_seconds into out. key holds key_len
 * (TETHER_NONCE_KEY_SIZE) bytes and is only read. TETHER_ERR_INVALID_ARGUMENT
 * for another key size, a zero ttl or an expiry that overflows. */
TETHER_MUST_CHECK tether_status_t tether_nonce_issue(const uint8_t *key, size_t key_len,
                                                     uint64_t now, uint32_t ttl_seconds,
                                                     uint8_t out[TETHER_NONCE_SIZE]);

/* Checks a nonce (the decoded bytes) at time now: TETHER_OK while
 * now < expiry; TETHER_ERR_PARSE when len is not TETHER_NONCE_SIZE;
 * TETHER_ERR_VERIFY when the MAC is not the key's (compared in constant
 * time; a nonce from another fleet or with any byte changed);
 * TETHER_ERR_EXPIRED when the MAC holds and now >= expiry. The expiry is
 * only looked at after the MAC, so it is never taken from an attacker. */
TETHER_MUST_CHECK tether_status_t tether_nonce_check(const uint8_t *key, size_t key_len,
                                                     const uint8_t *nonce, size_t len,
                                                     uint64_t now);

/* The same during a key rotation: the nonce may carry the MAC of current or
 * of previous (NULL when there is none); both keys are key_len bytes. Keep
 * the previous key for at least the longest ttl after rotating. */
TETHER_MUST_CHECK tether_status_t tether_nonce_check_rotating(const uint8_t *current,
                                                              const uint8_t *previous,
                                                              size_t key_len,
                                                              const uint8_t *nonce, size_t len,
                                                              uint64_t now);

/* The expiry written into a nonce (unix seconds). Only a nonce that
 * tether_nonce_check() accepted says when it expires: before that, the
 * bytes are the sender's word. nonce is TETHER_NONCE_SIZE bytes. */
uint64_t tether_nonce_expiry(const uint8_t nonce[TETHER_NONCE_SIZE]);

#endif
