/*
 * The fleet's base URL, "https://HOST[:PORT][/prefix]": a strict, pure
 * parser (no sockets, no allocation), unit-tested and fuzzed.
 */
#ifndef TETHER_URL_H
#define TETHER_URL_H

#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_URL_MAX_LENGTH 1024 /* whole URL text */
#define TETHER_URL_MAX_HOST 253    /* a DNS name (RFC 1035 2.3.4) or an address */
#define TETHER_URL_MAX_PREFIX 512  /* path prefix */
#define TETHER_URL_DEFAULT_PORT 443

typedef enum tether_url_host_type {
    TETHER_URL_HOST_DNS = 0,
    TETHER_URL_HOST_IPV4,
    TETHER_URL_HOST_IPV6,
} tether_url_host_type_t;

typedef struct tether_url {
    tether_url_host_type_t host_type;
    /* The name or address as written (IPv6 without brackets): what is
     * resolved, and the name the server's certificate must carry. */
    char host[TETHER_URL_MAX_HOST + 1];
    uint16_t port;
    char port_text[6];
    /* "host:port" or "[v6]:port": the Host header and error messages. */
    char authority[TETHER_URL_MAX_HOST + 9];
    /* "" or "/a/b" (no trailing '/'), put before every request path. */
    char prefix[TETHER_URL_MAX_PREFIX + 1];
} tether_url_t;

/*
 * Parses a base URL "https://HOST[:PORT][/prefix]" of len bytes (no NUL
 * needed; an embedded NUL is refused). HOST is a DNS name (letters, digits,
 * '-', dots), a dotted-quad IPv4 address or a bracketed IPv6 address; the
 * port defaults to 443. Refused: other schemes, user info, queries,
 * fragments, spaces, control and non-ASCII bytes, empty, "." and ".."
 * path segments, and anything over the TETHER_URL_MAX_* bounds.
 * TETHER_ERR_PARSE or TETHER_ERR_TOO_LARGE on failure, with *problem (if
 * problem is not NULL) set to a static sentence saying what is wrong and url
 * zeroed.
 */
TETHER_MUST_CHECK tether_status_t tether_url_parse(const char *text, size_t len, tether_url_t *url,
                                                   const char **problem);

#endif
