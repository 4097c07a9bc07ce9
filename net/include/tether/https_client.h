/*
 * HTTP/1.1 client over TLS with a pinned CA: how tether-agent and tetherctl
 * reach tether-fleetd.
 *
 * Three layers, the first two pure (no sockets, no allocation beyond the
 * response they return) so that they can be unit-tested and fuzzed:
 *   - tether_url_parse(): a base URL "https://HOST[:PORT][/prefix]";
 *   - tether_http_response_parse(): one HTTP/1.1 response in a byte buffer;
 *   - tether_https_client_t: connect, TLS 1.2 handshake against the pinned
 *     CA, one request per connection ("Connection: close"), bounded reads.
 *
 * Responses carry tokens: their buffers are wiped when freed, and nothing
 * here logs header values or bodies.
 */
#ifndef TETHER_HTTPS_CLIENT_H
#define TETHER_HTTPS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "tether/error.h"

/* ---- Base URL --------------------------------------------------------- */

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

/* ---- HTTP response ---------------------------------------------------- */

#define TETHER_HTTP_DEFAULT_MAX_HEADER_BYTES (16u * 1024u)
#define TETHER_HTTP_DEFAULT_MAX_BODY_BYTES (1024u * 1024u)
/* The largest limits accepted, so that sizes never approach overflow. */
#define TETHER_HTTP_LIMIT_MAX_HEADER_BYTES (1024u * 1024u)
#define TETHER_HTTP_LIMIT_MAX_BODY_BYTES (1024u * 1024u * 1024u)
/* Chunked encoding: bytes of chunk-size lines, extensions, CRLFs and
 * trailers together, so that a body of tiny chunks stays bounded too. */
#define TETHER_HTTP_MAX_CHUNK_FRAMING (64u * 1024u)

typedef struct tether_http_limits {
    /* Status line and header fields up to the empty line, including any
     * interim (1xx) responses before the final one. */
    size_t max_header_bytes;
    size_t max_body_bytes; /* after removing the chunked encoding */
} tether_http_limits_t;

typedef struct tether_https_response {
    int status; /* 100..599; 0 while no complete response is held */
    /* Heap, body_len bytes followed by a NUL (for text bodies); owned by the
     * response, never NULL after a successful parse. */
    uint8_t *body;
    size_t body_len;
    /* Header fields of the final response in order, as header_count pairs
     * "name\0value\0" (values without surrounding whitespace); heap, owned.
     * Read them with tether_https_response_header(). */
    char *headers;
    size_t headers_size;
    size_t header_count;
    /* After a failed parse: a static sentence naming what was wrong. */
    const char *problem;
} tether_https_response_t;

void tether_https_response_init(tether_https_response_t *resp);

/* Wipes and frees body and headers and returns resp to its initial state.
 * Accepts NULL. */
void tether_https_response_free(tether_https_response_t *resp);

/* The value of the first header field called name (compared without regard
 * to case), or NULL. Valid until resp is freed or parsed into again. */
const char *tether_https_response_header(const tether_https_response_t *resp, const char *name);

/*
 * Parses one HTTP/1.x response (RFC 9112) from buf[0..len), the bytes
 * received so far; closed says that the peer closed the connection after
 * them. Interim 1xx responses are skipped (101 is refused). The body is
 * framed by Transfer-Encoding: chunked, by Content-Length, or by the close
 * of the connection; 204 and 304 have none. Strict: CRLF line ends only, no
 * folded lines, no whitespace before a colon, one Content-Length at most and
 * never together with Transfer-Encoding, no transfer coding but chunked, no
 * bytes after the end of the message.
 *
 * resp must have been initialised; its previous contents are freed. Returns:
 *   TETHER_OK, *complete true: resp holds the response;
 *   TETHER_OK, *complete false: the bytes are a valid beginning and more are
 *     needed (only when !closed; complete may be NULL when closed);
 *   TETHER_ERR_PROTOCOL: malformed, or cut short by the close;
 *   TETHER_ERR_TOO_LARGE: over a limit;
 * on failure resp->problem names the fault.
 */
TETHER_MUST_CHECK tether_status_t tether_http_response_parse(const uint8_t *buf, size_t len,
                                                             bool closed,
                                                             const tether_http_limits_t *limits,
                                                             tether_https_response_t *resp,
                                                             bool *complete);

/* ---- HTTPS client ----------------------------------------------------- */

#define TETHER_HTTPS_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define TETHER_HTTPS_DEFAULT_IO_TIMEOUT_MS 10000u
#define TETHER_HTTPS_DEFAULT_REQUEST_TIMEOUT_MS 60000u
#define TETHER_HTTPS_MAX_EXTRA_HEADERS 16
#define TETHER_HTTPS_MAX_HEADER_LINE 8192 /* one extra header line ("Name: value") */
#define TETHER_HTTPS_MAX_PATH 2048

/*
 * Life cycle: tether_https_client_init() (cannot fail), optionally change
 * the settings, tether_https_client_setup(), any number of
 * tether_https_request() calls (one at a time: a client is not shared
 * between threads), tether_https_client_free(). After setup the client must
 * stay where it is (not copied or moved): its TLS configuration points to
 * its own CA chain.
 */
typedef struct tether_https_client {
    /* Settings: defaults from _init(), may be changed before any request. */
    unsigned connect_timeout_ms; /* TCP connect, all addresses of the host together */
    unsigned io_timeout_ms;      /* longest wait for the server to send or take bytes
                                    (TLS handshake, request, each read) */
    unsigned request_timeout_ms; /* the whole request, connect to last byte */
    tether_http_limits_t limits; /* bounds on each response */

    /* Set by _setup(); read-only for callers. */
    tether_url_t url;
    char ca_file[160]; /* the CA file's name, for messages (may be truncated) */
    mbedtls_x509_crt ca;
    mbedtls_ssl_config tls;
    bool ready;

    /* The last failure of _setup() or a request; cleared when one starts. */
    int tls_error;         /* mbedTLS error code of a TLS failure, else 0 */
    uint32_t verify_flags; /* MBEDTLS_X509_BADCERT_* of a rejected certificate */
    char error[256];       /* a sentence for people: what failed and what to check */
} tether_https_client_t;

void tether_https_client_init(tether_https_client_t *client);

/*
 * Prepares the client for base_url (see tether_url_parse) and pins the CA
 * certificates in the PEM file ca_file: the server's certificate must chain
 * to one of them (no system trust store), carry the URL's host as its
 * subject CN or as a DNS subjectAltName (mbedTLS 2.28 matches no IP
 * subjectAltName, so a server reached by address lists the address text as
 * a DNS name). The connection uses TLS 1.2 (the minimum; mbedTLS 2.28
 * offers nothing newer) with an ECDHE key exchange and an AEAD cipher
 * (AES-GCM, ChaCha20-Poly1305). Neither string needs to outlive the call. TETHER_ERR_PARSE/TOO_LARGE for a bad URL or CA
 * file, TETHER_ERR_IO when the file cannot be read, TETHER_ERR_STATE when
 * already set up; client->error explains. A client whose setup failed may
 * be set up again.
 */
TETHER_MUST_CHECK tether_status_t tether_https_client_setup(tether_https_client_t *client,
                                                            const char *base_url,
                                                            const char *ca_file);

/* Releases everything and wipes the struct; accepts NULL and a client that
 * was only initialised. */
void tether_https_client_free(tether_https_client_t *client);

/*
 * Sends one request on a new connection and reads the whole response.
 *   method: "GET", "POST", "PUT", "PATCH" or "DELETE";
 *   path: starts with '/', may hold a query; sent after the URL's prefix;
 *   content_type: the Content-Type of body, or NULL;
 *   body, body_len: sent as is with a Content-Length (NULL and 0: none);
 *   extra_headers: NULL, or a NULL-terminated array of at most
 *     TETHER_HTTPS_MAX_EXTRA_HEADERS lines "Name: value" without CRLF, e.g.
 *     "Authorization: Bearer ...". Header values are never logged. Fields
 *     that frame the message (Host, Content-Length, Transfer-Encoding,
 *     Connection, ...) are set by the client and refused here.
 * Every pointer is only read during the call. resp must have been
 * initialised; its previous contents are freed.
 *
 * TETHER_OK whenever a well-formed response arrived, whatever its status:
 * check resp->status. Otherwise resp is empty and client->error explains:
 * TETHER_ERR_NETWORK (refused, unreachable, name not resolved),
 * TETHER_ERR_TIMEOUT, TETHER_ERR_TLS (handshake or certificate; see
 * client->tls_error and client->verify_flags), TETHER_ERR_PROTOCOL
 * (malformed response, or cut short without TLS close_notify),
 * TETHER_ERR_TOO_LARGE (over client->limits), TETHER_ERR_IO (the socket
 * failed or the server closed it early), TETHER_ERR_NO_MEMORY,
 * TETHER_ERR_STATE (not set up), TETHER_ERR_INVALID_ARGUMENT (refused before
 * connecting).
 */
TETHER_MUST_CHECK tether_status_t tether_https_request(tether_https_client_t *client,
                                                       const char *method, const char *path,
                                                       const char *content_type,
                                                       const uint8_t *body, size_t body_len,
                                                       const char *const *extra_headers,
                                                       tether_https_response_t *resp);

#endif
