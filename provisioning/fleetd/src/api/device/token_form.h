/*
 * The body of POST /v1/token: an RFC 8693 token exchange request in
 * application/x-www-form-urlencoded (RFC 6749 appendix B; WHATWG URL,
 * "application/x-www-form-urlencoded parsing"), parsed strictly, bounded and
 * without I/O (fuzzed: tests/fuzz/fuzz_token_form.c).
 *
 *   grant_type          required
 *   subject_token       required; base64url characters only
 *   subject_token_type  required
 *   scope               optional; RFC 6749 scope syntax
 *   audience            optional; printable ASCII without spaces
 *   platform_log_sha256, tether_log_sha256
 *                       optional, together; 64 lowercase hex digits (the
 *                       SHA-256 of each event log, tether/eventlog_wire.h)
 *   platform_log, tether_log
 *                       optional, each only with the hashes; base64url
 *                       characters only, not percent-encoded, at most the
 *                       encoding of TETHER_EVENTLOG_WIRE_PLATFORM_MAX /
 *                       TETHER_EVENTLOG_WIRE_TETHER_MAX bytes; kept as
 *                       spans of the body (not copied)
 *
 * Each parameter at most once; any other parameter, an empty pair ("&&"), a
 * pair without '=', a bad percent escape, a raw byte outside the characters
 * that need no escaping, or a decoded byte outside printable ASCII is
 * refused. "+" is a space. A parameter sent without a value counts as
 * omitted (RFC 6749 section 3.1), but still only once. The values of
 * grant_type and subject_token_type are the caller's to check (they decide
 * between unsupported_grant_type and invalid_request).
 */
#ifndef TETHER_FLEET_TOKEN_FORM_H
#define TETHER_FLEET_TOKEN_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "tether/base64url.h"
#include "tether/error.h"
#include "tether/eventlog_wire.h"
#include "tether/evidence.h"

#define TETHER_TOKEN_FORM_VALUE_MAX 512 /* bytes of every decoded value but subject_token */
/* Characters of each log's base64url at most. */
#define TETHER_TOKEN_FORM_PLATFORM_LOG_MAX                                                    \
    TETHER_BASE64URL_ENCODED_LEN(TETHER_EVENTLOG_WIRE_PLATFORM_MAX)
#define TETHER_TOKEN_FORM_TETHER_LOG_MAX TETHER_BASE64URL_ENCODED_LEN(TETHER_EVENTLOG_WIRE_TETHER_MAX)
/* The longest body: every parameter, its value fully percent-encoded, and
 * the measured-boot parameters (the logs are never percent-encoded). */
#define TETHER_TOKEN_FORM_MAX_BODY                                                            \
    (TETHER_EVIDENCE_MAX_TOKEN + 4 * 3 * TETHER_TOKEN_FORM_VALUE_MAX + 128 +                 \
     2 * (32 + TETHER_EVENTLOG_WIRE_SHA256_HEX) + TETHER_TOKEN_FORM_PLATFORM_LOG_MAX +        \
     TETHER_TOKEN_FORM_TETHER_LOG_MAX)
#define TETHER_TOKEN_FORM_WHY_SIZE 160

/* A value kept where it is in the body: it lives as long as the body. */
typedef struct tether_token_form_span {
    const char *data;
    size_t len;
} tether_token_form_span_t;

typedef struct tether_token_form {
    char grant_type[TETHER_TOKEN_FORM_VALUE_MAX + 1];
    char subject_token[TETHER_EVIDENCE_MAX_TOKEN + 1];
    size_t subject_token_len;
    char subject_token_type[TETHER_TOKEN_FORM_VALUE_MAX + 1];
    char scope[TETHER_TOKEN_FORM_VALUE_MAX + 1];    /* "" when omitted */
    char audience[TETHER_TOKEN_FORM_VALUE_MAX + 1]; /* "" when omitted */
    /* Measured boot: both hashes "" when omitted (a device whose policy
     * has none); a log's span is {NULL, 0} when only its hash was sent. */
    char platform_log_sha256[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1];
    char tether_log_sha256[TETHER_EVENTLOG_WIRE_SHA256_HEX + 1];
    tether_token_form_span_t platform_log;
    tether_token_form_span_t tether_log;
} tether_token_form_t;

/* Parses body[0..len) (need not be NUL-terminated) into form (about 18
 * KiB: put it on the heap). TETHER_ERR_TOO_LARGE over
 * TETHER_TOKEN_FORM_MAX_BODY, TETHER_ERR_PARSE otherwise, both with a
 * sentence in why (which never quotes a value); form is wiped on error.
 * why may be NULL. */
TETHER_MUST_CHECK tether_status_t tether_token_form_parse(const char *body, size_t len,
                                                          tether_token_form_t *form, char *why,
                                                          size_t why_size);

#endif
