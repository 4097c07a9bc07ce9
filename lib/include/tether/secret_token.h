/*
 * tether's bearer secrets in a form that secret scanners recognise (the
 * GitHub token format idea): a fixed prefix per kind, a random body and a
 * checksum, so a leaked token is found in logs and repositories without
 * false positives and without asking the server.
 *
 *   token    = prefix body checksum
 *   prefix   = "tthr_adm_" (admin API tokens) | "tthr_boot_" (bootstrap tokens)
 *   body     = 32 base62 characters from tether_random_bytes (about 190 bits)
 *   checksum = 6 base62 characters: CRC-32 (IEEE 802.3) of the ASCII bytes of
 *              prefix and body together (everything before the checksum),
 *              written as a base-62 number, most significant digit first,
 *              zero-padded ("000000" is 0)
 *   base62   = "0-9A-Za-z" in that order (digit values 0..61)
 *
 * The checksum is not a MAC: it only tells typos and random strings from
 * tokens. The server stores only tether_secret_token_hash() of a token.
 *
 * Also here: finding tether access tokens (JWTs) in arbitrary text, for
 * revoking tokens that leaked.
 */
#ifndef TETHER_SECRET_TOKEN_H
#define TETHER_SECRET_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

typedef enum tether_secret_kind {
    TETHER_SECRET_ADMIN = 0,  /* "tthr_adm_": fleetd admin API (tetherctl) */
    TETHER_SECRET_BOOTSTRAP,  /* "tthr_boot_": one-time device enrolment */
} tether_secret_kind_t;

#define TETHER_SECRET_BODY_LEN 32
#define TETHER_SECRET_CHECKSUM_LEN 6
/* Longest token (the bootstrap prefix is 10 characters), and a buffer for it. */
#define TETHER_SECRET_TOKEN_MAX_LEN (10 + TETHER_SECRET_BODY_LEN + TETHER_SECRET_CHECKSUM_LEN)
#define TETHER_SECRET_TOKEN_SIZE (TETHER_SECRET_TOKEN_MAX_LEN + 1)
#define TETHER_SECRET_HASH_SIZE 32

/* The prefix of a kind ("tthr_adm_", ...), or NULL for an unknown kind. */
const char *tether_secret_token_prefix(tether_secret_kind_t kind);

/* Writes a new token of the kind and a NUL to out (out_size bytes, at least
 * TETHER_SECRET_TOKEN_SIZE is always enough). The body is drawn by rejection
 * sampling, so every base62 character is equally likely. The caller wipes
 * out when done. out is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_secret_token_generate(tether_secret_kind_t kind, char *out,
                                                               size_t out_size);

/* Checks token[0..len) (need not be NUL-terminated) against the format of
 * expected: TETHER_ERR_PARSE for a wrong prefix, length or character,
 * TETHER_ERR_VERIFY for a wrong checksum. Says nothing of whether the token
 * was issued: look its hash up for that. */
TETHER_MUST_CHECK tether_status_t tether_secret_token_check_format(const char *token, size_t len,
                                                                   tether_secret_kind_t expected);

/* SHA-256 of the token's bytes: what the server stores and looks up (compare
 * stored hashes with tether_ct_equal). */
tether_status_t tether_secret_token_hash(const char *token, size_t len,
                                         uint8_t hash[TETHER_SECRET_HASH_SIZE]);

/* CRC-32 as in IEEE 802.3, zlib and PNG: reflected, polynomial 0xEDB88320,
 * initial value and final XOR 0xFFFFFFFF. "123456789" gives 0xCBF43926.
 * Without lookup tables, so the time does not depend on the data. */
uint32_t tether_crc32(const void *data, size_t len);

/* Where a candidate token lies in a text. */
typedef struct tether_token_span {
    size_t offset;
    size_t len;
} tether_token_span_t;

/* Finds what looks like tether access tokens in text[0..len) (any bytes;
 * need not be NUL-terminated): three dot-separated base64url segments,
 * at most TETHER_JWS_MAX_LEN characters in all, whose first segment decodes
 * (at most 1024 characters) to a JSON object with "typ" "at+jwt" (or
 * "application/at+jwt", any case) and whose second starts like a JSON
 * object. Nothing is verified: these are candidates to check with
 * tether_jwt_verify or to revoke. Writes up to max_spans spans in text order
 * and their number to *count. Returns TETHER_ERR_TOO_LARGE when more
 * candidates follow the last span written (scan again from its end).
 * Time is linear in len; memory does not depend on len. */
tether_status_t tether_secret_token_find_jwts(const char *text, size_t len,
                                              tether_token_span_t *spans, size_t max_spans,
                                              size_t *count);

#endif
