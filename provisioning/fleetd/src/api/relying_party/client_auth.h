/*
 * OAuth client authentication of relying parties at the introspection
 * endpoint, as RFC 7662 section 2.1 asks and RFC 6749 section 2.3.1 says:
 * HTTP Basic (RFC 7617) with the client id as user id and the client secret
 * as password, each form-urlencoded before the base64; or client_id and
 * client_secret in the form body (introspect_request.h reads those). A
 * relying party's client id is its admin token's id (the decimal "id" of
 * POST /v1/admin/tokens and of tetherctl token list) and its client secret
 * is the admin token itself. Stock resource servers (Apache's
 * mod_auth_openidc, ...) can then introspect without a bearer header.
 * Pure (no I/O): the header is untrusted and fuzzed.
 */
#ifndef TETHER_FLEET_CLIENT_AUTH_H
#define TETHER_FLEET_CLIENT_AUTH_H

#include <stddef.h>

#include "tether/error.h"

#define TETHER_CLIENT_ID_MAX 16      /* digits of an admin token id (below 2^53) */
#define TETHER_CLIENT_SECRET_MAX 128 /* bytes; more than any admin token */
/* The longest base64 of "id:secret" with both fully percent-encoded. */
#define TETHER_CLIENT_BASIC_MAX (4 * ((3 * (TETHER_CLIENT_ID_MAX + TETHER_CLIENT_SECRET_MAX) + 3) / 3))
#define TETHER_CLIENT_MESSAGE_SIZE 96

/* Decoded client credentials. secret is a bearer credential: wipe it with
 * tether_client_credentials_clear. */
typedef struct tether_client_credentials {
    char id[TETHER_CLIENT_ID_MAX + 1];
    char secret[TETHER_CLIENT_SECRET_MAX + 1];
    size_t secret_len;
} tether_client_credentials_t;

/* Parses the credentials of "Authorization: Basic <value>" (value is what
 * follows the scheme and its space): base64 with padding (RFC 4648 section
 * 4) of "id:secret", split at the first ':', each part form-urlencoded.
 * Refused with TETHER_ERR_PARSE and a sentence in message (which never
 * quotes the credentials): bad base64, no ':', an empty or too long part, a
 * bad escape or a NUL. creds is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_client_auth_parse_basic(
    const char *value, tether_client_credentials_t *creds, char *message, size_t message_size);

/* Wipes creds; NULL is fine. */
void tether_client_credentials_clear(tether_client_credentials_t *creds);

#endif
