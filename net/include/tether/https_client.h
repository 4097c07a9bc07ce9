/*
 * HTTP/1.1 client over TLS with a pinned CA: how tether-agent and tetherctl
 * reach tether-fleetd.
 *
 * tether_https_client_t connects, runs the TLS 1.2 handshake against the
 * pinned CA and sends one request per connection ("Connection: close"), or
 * with keep_alive keeps the connection for the next requests, over the
 * shared request path (tether/http_client.h) with bounded reads. The
 * pure parsers it relies on have their own headers: tether/url.h for the
 * base URL, tether/http_response.h for the response.
 */
#ifndef TETHER_HTTPS_CLIENT_H
#define TETHER_HTTPS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "tether/error.h"
#include "tether/http_client.h"
#include "tether/http_response.h"
#include "tether/url.h"

/* ---- HTTPS client ----------------------------------------------------- */

#define TETHER_HTTPS_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define TETHER_HTTPS_DEFAULT_IO_TIMEOUT_MS 10000u
#define TETHER_HTTPS_DEFAULT_REQUEST_TIMEOUT_MS 60000u
/* The request path's bounds (tether/http_client.h), under this client's
 * names. */
#define TETHER_HTTPS_MAX_EXTRA_HEADERS TETHER_HTTP_CLIENT_MAX_EXTRA_HEADERS
#define TETHER_HTTPS_MAX_HEADER_LINE TETHER_HTTP_CLIENT_MAX_HEADER_LINE
#define TETHER_HTTPS_MAX_PATH TETHER_HTTP_CLIENT_MAX_PATH

/*
 * Life cycle: tether_https_client_init() (cannot fail), optionally change
 * the settings, tether_https_client_setup(), any number of
 * tether_https_request() calls (one at a time: a client is not shared
 * between threads), tether_https_client_free(). After setup the client must
 * stay where it is (not copied or moved): its TLS configuration points to
 * its own CA chain, its kept connection to its socket.
 *
 * With keep_alive, a connection whose response allows it (HTTP/1.1, framed
 * by its length, no "Connection: close") stays open for the next request
 * until tether_https_client_close(), a failure, or the server closes it. A
 * kept connection the server has closed is seen before the request is
 * written (it is readable while idle) and replaced; when the close races
 * the request and no byte of an answer came, the request is sent once more
 * on a new connection only if resending it is harmless: GET, PUT and DELETE
 * (RFC 9110 9.2.2), or a request sent with tether_https_request_resendable.
 */
typedef struct tether_https_client {
    /* Settings: defaults from _init(), may be changed before any request. */
    unsigned connect_timeout_ms; /* TCP connect, all addresses of the host together */
    unsigned io_timeout_ms;      /* longest wait for the server to send or take bytes
                                    (TLS handshake, request, each read) */
    unsigned request_timeout_ms; /* the whole request, connect to last byte */
    tether_http_limits_t limits; /* bounds on each response */
    bool keep_alive;             /* keep the connection for the next request (above) */

    /* Set by _setup(); read-only for callers. */
    tether_url_t url;
    char ca_file[160]; /* the CA file's name, for messages (may be truncated) */
    mbedtls_x509_crt ca;
    mbedtls_ssl_config tls;
    bool ready;

    /* The connection: open during a request, and between requests while
     * kept (keep_alive). Internal. */
    tether_socket_t sock;
    mbedtls_ssl_context ssl;
    bool connected;
    /* The last handshake's TLS session (its master secret and the server's
     * session ticket), offered at the next connection for an abbreviated
     * handshake; the server decides whether it resumes. Internal; wiped by
     * _free. */
    mbedtls_ssl_session session;
    bool has_session;

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
 * Sends one request, on a new connection or the kept one (keep_alive), and
 * reads the whole response.
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

/*
 * The same, for a request that the caller knows has the effect of one when
 * the server receives it twice (a POST fleetd answers again with the same
 * result, as POST /v1/token for the same evidence): it may be sent once more
 * on a new connection when a kept connection is found closed under it (see
 * keep_alive above).
 */
TETHER_MUST_CHECK tether_status_t tether_https_request_resendable(
    tether_https_client_t *client, const char *method, const char *path,
    const char *content_type, const uint8_t *body, size_t body_len,
    const char *const *extra_headers, tether_https_response_t *resp);

/* Closes the kept connection, if any (the client stays set up); accepts
 * NULL. The agent closes it after each exchange: refreshes are minutes
 * apart, and an open connection would hold a place at the server. */
void tether_https_client_close(tether_https_client_t *client);

#endif
