/*
 * The agent's local API: HTTP/1.1 over a Unix socket, for the applications
 * on the device that need the access token (DESIGN.md, "Agent").
 *
 *   GET /v1/token   200 {"access_token","token_type":"Bearer","expires_in"}
 *                   503 {"error":"no_token","error_description":...} while
 *                   the agent holds no valid token (it fails closed)
 *   GET /v1/status  200 {"device_id","state","expires_in","fleet",...}
 *   POST /v1/dpop   {"method","url"[,"nonce"]} -> 200 {"proof","access_token",
 *                   "token_type":"DPoP","expires_in"}: a DPoP proof signed by
 *                   the TPM device key for that request, and the token it is
 *                   bound to (its ath); 503 no_token as above
 *
 * Callers are admitted by SO_PEERCRED: their uid or gid must be in the
 * configured lists (the agent's own uid always is). The socket file is
 * created with mode 0660. One request per connection; requests are bounded
 * (head and body together at most TETHER_LOCAL_MAX_REQUEST bytes).
 *
 * tether_local_server_t serves many callers at once from one poll loop:
 * each connection has its own state (bytes read so far, a deadline), reads
 * are non-blocking, and a caller that sends slowly or not at all delays no
 * other. At most max_connections are open; a caller beyond them gets an
 * immediate 503 "busy" rather than a wait.
 */
#ifndef TETHER_AGENT_LOCAL_API_H
#define TETHER_AGENT_LOCAL_API_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tether/dpop.h"
#include "tether/error.h"

#define TETHER_LOCAL_MAX_REQUEST 4096
#define TETHER_LOCAL_MAX_IDS 32
/* Open connections at once: room for bursts of callers and for a hundred
 * that stall, without refusing the next one. */
#define TETHER_LOCAL_MAX_CONNECTIONS 256
/* How long a caller has, from its connection, to send its request. */
#define TETHER_LOCAL_REQUEST_TIMEOUT_MS 1000

typedef enum tether_local_route {
    TETHER_LOCAL_TOKEN,
    TETHER_LOCAL_STATUS,
    TETHER_LOCAL_DPOP,
    TETHER_LOCAL_NOT_FOUND,
    TETHER_LOCAL_BAD_METHOD,
} tether_local_route_t;

/* Parses the request in buf[0..len). TETHER_OK with *route set when a
 * whole request is there: the head ("...\r\n\r\n") and, for POST /v1/dpop,
 * the body of its Content-Length (required; Transfer-Encoding is refused).
 * TETHER_ERR_STATE when more bytes are needed, TETHER_ERR_PARSE for a
 * malformed request, TETHER_ERR_TOO_LARGE past TETHER_LOCAL_MAX_REQUEST.
 * Pure. */
TETHER_MUST_CHECK tether_status_t tether_local_request_parse(const char *buf, size_t len,
                                                             tether_local_route_t *route);

/* The same, also giving the body: *body points into buf (body_len bytes,
 * not NUL-terminated); NULL and 0 for a route without one. *route, *body
 * and *body_len are set on entry. */
TETHER_MUST_CHECK tether_status_t tether_local_request_parse_body(const char *buf, size_t len,
                                                                  tether_local_route_t *route,
                                                                  const char **body,
                                                                  size_t *body_len);

/* HTTP/1.1 head helpers, shared with the AI endpoint's parser (pure). */

/* TETHER_ERR_PARSE when head[0..head_len) holds a NUL or a bare CR or LF. */
TETHER_MUST_CHECK tether_status_t tether_local_head_check(const char *head, size_t head_len);

/* Whether the header line [line, end) (no CRLF) is named name
 * (case-insensitive), and if so where its value lies, spaces around it
 * trimmed. */
bool tether_local_header_is(const char *line, const char *end, const char *name,
                            const char **value, size_t *value_len);

/* The body length announced in the header lines [lines, head_end) (each
 * ending in CRLF): at most one Content-Length of at most 7 decimal digits
 * (*seen says whether there was one; *length is 0 without), and no
 * Transfer-Encoding, which is refused (TETHER_ERR_PARSE) so that one
 * framing is left. TETHER_ERR_TOO_LARGE for a longer number. */
TETHER_MUST_CHECK tether_status_t tether_local_content_length(const char *lines,
                                                              const char *head_end,
                                                              size_t *length, bool *seen);

/* The body of POST /v1/dpop, decoded. */
typedef struct tether_local_dpop_request {
    char method[TETHER_DPOP_HTM_MAX + 1]; /* upper-case letters */
    char url[TETHER_DPOP_HTU_MAX + 1];    /* an http(s) URL that htu normalisation takes */
    char nonce[TETHER_DPOP_NONCE_MAX + 1]; /* "" when none */
} tether_local_dpop_request_t;

/* Decodes body[0..len): one strict JSON object with exactly the members
 * "method" (1 to TETHER_DPOP_HTM_MAX upper-case letters), "url" (an http or
 * https URL of at most TETHER_DPOP_HTU_MAX characters that
 * tether_dpop_htu_normalize accepts) and optionally "nonce" (1 to
 * TETHER_DPOP_NONCE_MAX characters of RFC 9449's NQCHAR). *req is zeroed on
 * entry and on error; TETHER_ERR_PARSE with a sentence in why otherwise. */
TETHER_MUST_CHECK tether_status_t tether_local_dpop_request_parse(const char *body, size_t len,
                                                                  tether_local_dpop_request_t *req,
                                                                  char *why, size_t why_size);

typedef struct tether_local_acl {
    uid_t uids[TETHER_LOCAL_MAX_IDS];
    size_t uid_count;
    gid_t gids[TETHER_LOCAL_MAX_IDS];
    size_t gid_count;
} tether_local_acl_t;

/* The uid and gid of the process at the other end of the connected Unix
 * socket fd (SO_PEERCRED, taken when it connected). *uid and *gid are set to
 * -1 on entry, so a failure never leaves them holding another caller's ids;
 * on failure TETHER_ERR_IO with the reason in why. */
TETHER_MUST_CHECK tether_status_t tether_local_peer_credentials(int fd, uid_t *uid, gid_t *gid,
                                                                char *why, size_t why_size);

/* Whether a peer with these credentials may ask (the agent's own uid may). */
bool tether_local_acl_allows(const tether_local_acl_t *acl, uid_t uid, gid_t gid);

/* Creates the listening socket at path (a stale socket file is replaced; any
 * other file there is refused), mode 0660. Returns the fd or -1 with a
 * reason in why. */
int tether_local_listen(const char *path, char *why, size_t why_size);

/* Writes a whole HTTP/1.1 response with a JSON body and closes nothing.
 * 0, or -1 when the socket did not take it all (never waits on a
 * non-blocking socket whose buffer is full). */
int tether_local_respond(int fd, int status, const char *json);

/* Answers an admitted, well-formed request for route TETHER_LOCAL_TOKEN,
 * TETHER_LOCAL_STATUS or TETHER_LOCAL_DPOP with one tether_local_respond on
 * fd (closed after). body[0..body_len) is the request's body (NULL, 0 when
 * it has none), valid for the call. */
typedef void (*tether_local_handler_t)(void *context, int fd, tether_local_route_t route,
                                       const char *body, size_t body_len);

typedef struct tether_local_connection {
    int fd;              /* non-blocking, owned */
    int64_t deadline_ms; /* monotonic: when the request must be complete */
    size_t len;          /* bytes of buf read */
    char buf[TETHER_LOCAL_MAX_REQUEST];
} tether_local_connection_t;

typedef struct tether_local_server {
    int listen_fd;          /* -1 when closed */
    size_t max_connections; /* at most TETHER_LOCAL_MAX_CONNECTIONS */
    /* Read at each request: the owner may change *acl between calls. */
    const tether_local_acl_t *acl;
    tether_local_handler_t handler;
    void *context;          /* passed to handler */
    size_t count;           /* connections[0..count) are open */
    tether_local_connection_t connections[TETHER_LOCAL_MAX_CONNECTIONS];
} tether_local_server_t;

/* No socket yet, TETHER_LOCAL_MAX_CONNECTIONS allowed. acl, handler and
 * context must outlive the server. Cannot fail. */
void tether_local_server_init(tether_local_server_t *s, const tether_local_acl_t *acl,
                              tether_local_handler_t handler, void *context);

/* tether_local_listen on path. TETHER_ERR_IO with the reason in why. */
TETHER_MUST_CHECK tether_status_t tether_local_server_open(tether_local_server_t *s,
                                                           const char *path, char *why,
                                                           size_t why_size);

/* How many pollfd entries tether_local_server_pollfds may fill. */
#define TETHER_LOCAL_POLLFDS (1 + TETHER_LOCAL_MAX_CONNECTIONS)

/* Fills fds (room for TETHER_LOCAL_POLLFDS) with what the server waits for:
 * the listening socket, then each open connection. Returns the count. */
size_t tether_local_server_pollfds(const tether_local_server_t *s, struct pollfd *fds);

/* The earliest deadline of an open connection, INT64_MAX when none. */
int64_t tether_local_server_deadline(const tether_local_server_t *s);

/*
 * After poll on the entries of tether_local_server_pollfds (nfds of them,
 * unchanged but for revents): reads what callers sent, answers each
 * complete request (403 to a caller the acl refuses, 400/404/405/413 to a
 * bad request, the handler for the rest) and each caller past its deadline,
 * and accepts new connections, refusing with 503 those beyond
 * max_connections. now_ms is CLOCK_MONOTONIC milliseconds.
 */
void tether_local_server_serve(tether_local_server_t *s, const struct pollfd *fds, size_t nfds,
                               int64_t now_ms);

/* Closes every connection and the listening socket and removes path (when
 * not NULL and the server had opened it); the server may be opened again. */
void tether_local_server_close(tether_local_server_t *s, const char *path);

#endif
