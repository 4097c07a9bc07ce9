/*
 * The body of POST /v1/introspect (RFC 7662 section 2.1): an
 * application/x-www-form-urlencoded form with "token" (required) and
 * "token_type_hint" (optional, ignored: tether has one kind of token).
 * A relying party that authenticates as an OAuth client in the body (RFC
 * 6749 section 2.3.1, client_secret_post) adds "client_id" and
 * "client_secret" (client_auth.h says what they are). Pure (no I/O): the
 * input is untrusted and fuzzed.
 *
 * Pairs separated by '&' (empty ones skipped), name and value split at the
 * first '=', each decoded as form_urlencoded.h says. As OAuth asks (RFC 6749
 * section 3.2), a parameter without a value counts as absent, tether's
 * parameters may appear once only, and unknown ones are ignored.
 */
#ifndef TETHER_FLEET_INTROSPECT_REQUEST_H
#define TETHER_FLEET_INTROSPECT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "client_auth.h"
#include "tether/error.h"
#include "tether/jose.h"

#define TETHER_INTROSPECT_MAX_PARAMS 16 /* pairs in one body, known or not */
#define TETHER_INTROSPECT_MESSAGE_SIZE 128

typedef struct tether_introspect_request {
    /* The decoded token and a NUL: a bearer credential, wiped by
     * tether_introspect_request_clear. Longer tokens than any this fleet
     * issues are not kept: too_long is set (they are simply not active). */
    char token[TETHER_JWS_MAX_LEN + 1];
    size_t token_len;
    bool too_long;
    /* client_id and client_secret, when sent (a longer one is refused) */
    tether_client_credentials_t client;
    bool has_client_id;
    bool has_client_secret;
} tether_introspect_request_t;

/* Parses body[0..len) (need not be NUL-terminated) into req. On
 * TETHER_ERR_PARSE, message (a sentence for the client) says what is wrong
 * and req is wiped. */
TETHER_MUST_CHECK tether_status_t tether_introspect_request_parse(
    const char *body, size_t len, tether_introspect_request_t *req, char *message,
    size_t message_size);

/* The client credentials of an introspection body, for the route table's
 * client authentication: TETHER_OK with client_secret sent (creds->id is
 * "" without client_id), TETHER_ERR_NOT_FOUND without one, and the
 * parser's status for a body that does not parse (the handler answers it).
 * creds is wiped unless TETHER_OK. */
TETHER_MUST_CHECK tether_status_t tether_introspect_request_client(
    const char *body, size_t len, tether_client_credentials_t *creds);

/* Wipes req. */
void tether_introspect_request_clear(tether_introspect_request_t *req);

#endif
