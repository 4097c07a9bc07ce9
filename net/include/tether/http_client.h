/*
 * The client's request path, one for every transport: checks a request,
 * writes it ("Connection: close", one request per connection, unless the
 * caller keeps the connection) and reads one bounded response
 * (tether/http_response.h) over any tether_transport_t.
 * tether_https_request() runs it over TLS to the fleet; the agent's `token`
 * command over its Unix socket.
 *
 * The request head holds the caller's credentials (Authorization) and the
 * response may hold tokens: both live in memory wiped after use, and header
 * values and bodies are never logged or put into messages.
 */
#ifndef TETHER_HTTP_CLIENT_H
#define TETHER_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"
#include "tether/http_response.h"
#include "tether/transport.h"

#define TETHER_HTTP_CLIENT_MAX_EXTRA_HEADERS 16
#define TETHER_HTTP_CLIENT_MAX_HEADER_LINE 8192 /* one extra header line ("Name: value") */
#define TETHER_HTTP_CLIENT_MAX_PATH 2048

typedef struct tether_http_client_request {
    /* "GET", "POST", "PUT", "PATCH" or "DELETE". */
    const char *method;
    /* The Host header ("host:port"), and the peer's name in messages. */
    const char *authority;
    /* "" or "/a/b", put before path (a base URL's prefix). */
    const char *prefix;
    /* Starts with '/', may hold a query; no fragment, nothing needing
     * encoding. */
    const char *path;
    /* The Content-Type of body, or NULL. */
    const char *content_type;
    /* Sent as is with a Content-Length (NULL and 0: none). */
    const uint8_t *body;
    size_t body_len;
    /* NULL, or a NULL-terminated array of at most
     * TETHER_HTTP_CLIENT_MAX_EXTRA_HEADERS lines "Name: value" without CRLF. Fields
     * that frame the message (Host, Content-Length, Transfer-Encoding,
     * Connection, ...) are set by the request path and refused here. */
    const char *const *extra_headers;
    /* false: "Connection: close" is sent; true: the connection may carry
     * another request after this one (HTTP/1.1 persistence: the response's
     * `persistent` says whether the server agrees). */
    bool keep_alive;
} tether_http_client_request_t;

/* Why a request failed, for the caller's own message. */
typedef struct tether_http_client_failure {
    /* The transport's negative code when its send or recv failed, else 0;
     * while_sending says which. */
    int transport_error;
    bool while_sending;
    /* The stream ended or failed before any byte of the response arrived:
     * on a kept connection, the server may have closed it before it read
     * the request. */
    bool nothing_received;
    char text[256]; /* a sentence for people: what failed */
} tether_http_client_failure_t;

/*
 * Checks req without sending anything. TETHER_OK, or
 * TETHER_ERR_INVALID_ARGUMENT / TETHER_ERR_TOO_LARGE with failure->text
 * saying what is wrong (never quoting a header value). Every pointer is
 * only read during the call.
 */
TETHER_MUST_CHECK tether_status_t tether_http_client_check(const tether_http_client_request_t *req,
                                                           tether_http_client_failure_t *failure);

/*
 * Checks req, sends it over transport and reads the whole response into
 * resp (initialised by the caller; its previous contents are freed) within
 * limits. failure is cleared on entry. TETHER_OK whenever a well-formed
 * response arrived, whatever its status. Otherwise resp is empty and
 * failure says why:
 *   TETHER_ERR_INVALID_ARGUMENT, TETHER_ERR_TOO_LARGE: as _check, or a
 *     response over limits;
 *   TETHER_ERR_PROTOCOL: a malformed response, or one cut short (an end
 *     without framing, or TETHER_TRANSPORT_CUT before the framing ended);
 *   TETHER_ERR_IO: the transport failed (failure->transport_error);
 *   TETHER_ERR_NO_MEMORY.
 */
TETHER_MUST_CHECK tether_status_t
tether_http_client_exchange(const tether_transport_t *transport,
                            const tether_http_client_request_t *req,
                            const tether_http_limits_t *limits, tether_https_response_t *resp,
                            tether_http_client_failure_t *failure);

#endif
