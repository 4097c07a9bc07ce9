/*
 * One HTTP/1.1 response parsed from a byte buffer: pure (no sockets, no
 * allocation beyond the response it returns), unit-tested and fuzzed. Used
 * by every client path (tether/http_client.h), whatever the transport.
 *
 * Responses carry tokens: their buffers are wiped when freed, and nothing
 * here logs header values or bodies.
 */
#ifndef TETHER_HTTP_RESPONSE_H
#define TETHER_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

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
    /* After a successful parse: the connection may carry another request
     * (RFC 9112 9.3): an HTTP/1.1 response framed by its own length (or
     * without a body) and without "Connection: close". */
    bool persistent;
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

#endif
