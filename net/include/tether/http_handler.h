/*
 * What the servers' request handlers see and produce, with no HTTP library in
 * sight: the server (http_server.c) fills a request, a handler fills a
 * response. Handlers are called from several threads at once.
 */
#ifndef TETHER_HTTP_HANDLER_H
#define TETHER_HTTP_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/error.h"

#define TETHER_HTTP_MAX_QUERY 4

typedef struct tether_http_query {
    const char *key;
    const char *value; /* "" when absent */
} tether_http_query_t;

struct tether_http_request;

/* Looks up a request header field by name (case-insensitive): its value, or
 * NULL when absent. The server sets one over its connection; a test may set
 * its own. */
typedef const char *(*tether_http_header_fn)(const struct tether_http_request *request,
                                             const char *name);

/* Every pointer lives until the handler returns. */
typedef struct tether_http_request {
    const char *method;
    const char *path;          /* percent-decoded, without the query */
    const char *authorization; /* NULL when absent */
    const char *content_type;  /* NULL when absent */
    const char *remote;        /* the client's IP address; NULL when unknown */
    const uint8_t *body;
    size_t body_len;
    tether_http_query_t query[TETHER_HTTP_MAX_QUERY];
    size_t query_count;
    bool query_overflow; /* more parameters than TETHER_HTTP_MAX_QUERY */
    tether_http_header_fn header; /* other header fields (tether_http_request_header) */
    void *header_ctx;             /* for header: the server's connection */
} tether_http_request_t;

/* The value of the header field name, or NULL when absent or when request
 * has no header function. */
const char *tether_http_request_header(const tether_http_request_t *request, const char *name);

struct tether_http_response;

/*
 * Long polling. A handler with nothing to answer yet sets response->park
 * instead of a body; the server then holds the request without holding a
 * thread and calls poll(arg, final, response) from its waker thread (never
 * two calls at once for one request): after tether_http_server_wake(),
 * about once a second, and with final true when timeout_ms has passed or
 * the server stops. poll fills response and returns true when the answer
 * is ready; with final true it must answer. release(arg) is called exactly
 * once, after the last poll (or by tether_http_response_clear when the
 * request was never parked).
 */
typedef struct tether_http_park {
    bool (*poll)(void *arg, bool final, struct tether_http_response *response);
    void (*release)(void *arg);
    void *arg;
    unsigned timeout_ms;
} tether_http_park_t;

/*
 * A streamed body (tether/http_stream.h): bytes a producer thread writes
 * while the server sends them, never held whole. The handler creates it,
 * hands its producer side to a thread, and sets response->stream; the
 * server then owns the consumer side.
 */
struct tether_http_stream;
/* Header fields a handler adds to its response (DPoP-Nonce, a relying
 * party's answers to an auth_request). */
#define TETHER_HTTP_MAX_RESPONSE_HEADERS 4

typedef struct tether_http_header {
    const char *name; /* static string */
    char *value;      /* malloc'd; freed by tether_http_response_clear */
} tether_http_header_t;

typedef struct tether_http_response {
    unsigned status;
    char *body;                   /* malloc'd text (JSON unless content_type says); wiped
                                     and freed by the server */
    const char *content_type;     /* static string; NULL: application/json */
    const char *route;            /* static string naming the endpoint in the server's
                                     metrics (a pattern, never the raw path); NULL: none */
    const char *www_authenticate; /* static string or NULL */
    const char *allow;            /* static string or NULL (for 405) */
    const char *retry_after;      /* static string or NULL (for 503) */
    uint64_t retry_after_seconds; /* when retry_after is NULL: sent when > 0 (for 429) */
    tether_http_park_t park;      /* poll set: answer later (no body) */
    /* Set instead of a body: the body comes from the stream, with the
     * media type content_type. */
    struct tether_http_stream *stream;
    tether_http_header_t headers[TETHER_HTTP_MAX_RESPONSE_HEADERS];
    size_t header_count;
} tether_http_response_t;

typedef void (*tether_http_handler_fn)(void *arg, const tether_http_request_t *request,
                                       tether_http_response_t *response);

/* Sets status and body to the JSON of json (deleted here). Falls back to a
 * 500 error when printing fails. */
void tether_http_respond_json(tether_http_response_t *response, unsigned status, cJSON *json);

/* {"error": code, "error_description": description} with the status. */
void tether_http_respond_error(tether_http_response_t *response, unsigned status,
                               const char *code, const char *description);

/* Adds the header field name (a static string) with a copy of value: a
 * visible character string (RFC 9110 field-value, no CR, LF or NUL).
 * TETHER_ERR_INVALID_ARGUMENT for another value, TETHER_ERR_TOO_LARGE past
 * TETHER_HTTP_MAX_RESPONSE_HEADERS, TETHER_ERR_NO_MEMORY. */
TETHER_MUST_CHECK tether_status_t tether_http_response_add_header(
    tether_http_response_t *response, const char *name, const char *value);

/* Wipes and frees the body and the added header values, releases a park
 * that was not taken over, and gives up a stream that was not taken over
 * (its producer sees the client gone); leaves the response empty. */
void tether_http_response_clear(tether_http_response_t *response);

#endif
