/*
 * fleetd's HTTPS server on libmicrohttpd: an internal polling thread with a
 * small thread pool, request bodies bounded while they arrive (413 past the
 * limit), one JSON log line per request (method, path, status, duration,
 * peer; never a header or body).
 *
 * Against clients that hold connections (slowloris): a total and a
 * per-source connection limit, a deadline for the TLS handshake and request
 * head (counted from the accept, and from the end of the previous request
 * on a kept-alive connection: so a kept connection idles at most that long)
 * and an idle timeout while a request is read or answered. Connections are
 * kept alive (HTTP/1.1) for at most max_requests_per_connection requests:
 * the last one is answered with "Connection: close". The process's open-file limit is checked (and raised to the
 * hard limit if needed) for max_connections at open.
 *
 * Requests are refused with JSON errors before any handler sees them: a
 * request target over TETHER_HTTP_MAX_URI_BYTES (414), header fields over
 * TETHER_HTTP_MAX_HEAD_BYTES (431), a NUL byte (%00) anywhere in the path
 * or query (400), a body over max_body_bytes (413). Heads too big for
 * libmicrohttpd's buffer (TETHER_HTTP_CONNECTION_MEMORY) still get its own
 * HTML page: it offers no hook for those.
 *
 * Long polls (http.h, tether_http_park_t) are suspended with
 * MHD_suspend_connection, so a waiting client holds no worker thread; one
 * waker thread polls them and resumes them when answered. At most
 * max_parked wait at once (503 beyond), and stopping the server answers
 * every one of them first (libmicrohttpd cannot stop with a suspended
 * connection).
 *
 * With a metrics registry (tether/metrics.h), the server counts into it,
 * for every server built on this layer alike:
 *   tether_http_requests_total{route,status_class}   answered requests
 *   tether_http_request_duration_seconds{route}      from request line to sent
 *   tether_http_connections_open                     open connections
 *   tether_http_connections_refused_total{reason}    per_source: over
 *       max_connections_per_source; head_deadline: closed without a
 *       complete request head in time
 *   tether_http_long_polls_waiting                   parked requests
 *   tether_http_tls_sessions_total{handshake}        TLS connections that carried a
 *       request: full handshake, or resumed (a session ticket)
 * route is the handler's response->route ("unmatched" without one).
 */
#ifndef TETHER_HTTP_SERVER_H
#define TETHER_HTTP_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/http_handler.h"
#include "tether/error.h"
#include "tether/metrics.h"

#define TETHER_HTTP_MAX_URI_BYTES 4096   /* the request target, raw (414 above) */
#define TETHER_HTTP_MAX_HEAD_BYTES 16384 /* header names and values (431 above) */
/* libmicrohttpd's buffer per connection: twice the head limit, so a head
 * just over it still gets the JSON 431. At 32 KiB or less libmicrohttpd
 * takes it from malloc; above, it maps fresh pages for every connection
 * (an mmap, a munmap and a page fault per page touched). */
#define TETHER_HTTP_CONNECTION_MEMORY 32768

typedef struct tether_http_server_options {
    const char *host; /* IP literal to bind */
    bool ipv6;
    uint16_t port;
    const char *cert_pem; /* server certificate chain, PEM; NULL (with key_pem): plain HTTP */
    const char *key_pem;  /* its private key, PEM (copied by the TLS library) */
    size_t max_body_bytes;
    /* Connection limits; every one but connection_timeout_seconds must be
     * non-zero (0 is no idle timeout). */
    unsigned max_connections;              /* in total */
    unsigned max_connections_per_source;   /* from one IP address */
    unsigned connection_timeout_seconds;   /* idle, while a request is read or answered */
    unsigned request_head_timeout_seconds; /* TLS handshake and request head */
    unsigned max_requests_per_connection;  /* 0: no bound */
    /* TLS session resumption by session tickets (RFC 5077), so that a
     * client's next connection is an abbreviated handshake: tickets are
     * accepted this many seconds; 0: none. The ticket master key is made
     * at open and lives in memory only (a restart invalidates every
     * ticket); GnuTLS derives the keys that encrypt tickets from it and
     * rotates them with this period. */
    unsigned session_ticket_seconds;
    unsigned threads;
    unsigned max_parked;            /* long polls waiting at once; 0: none (503) */
    tether_http_handler_fn handler; /* called from the server's threads */
    void *handler_arg;              /* must outlive the server */
    tether_metrics_t *metrics;      /* NULL: none; else must outlive the server */
} tether_http_server_options_t;

/* The server's metrics (above), each NULL when it has no registry. */
typedef struct tether_http_server_metrics {
    tether_metric_t *requests;
    tether_metric_t *duration;
    tether_metric_series_t *connections_open;
    tether_metric_series_t *refused_per_source;
    tether_metric_series_t *closed_head_deadline;
    tether_metric_series_t *long_polls_waiting;
    tether_metric_series_t *tls_full;
    tether_metric_series_t *tls_resumed;
} tether_http_server_metrics_t;

/* Registers the server's metrics in registry and fills out (zeroed on
 * entry). Exposed so that tests and other servers get the same names. */
TETHER_MUST_CHECK tether_status_t tether_http_server_metrics_add(
    tether_metrics_t *registry, tether_http_server_metrics_t *out);

struct request_state;
struct tether_http_reaper;
struct tether_http_tickets;

typedef struct tether_http_server {
    struct MHD_Daemon *daemon;
    size_t max_body_bytes;
    unsigned max_requests_per_connection;
    tether_http_handler_fn handler;
    void *handler_arg;
    /* Parked requests, guarded by park_lock. */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond; /* on CLOCK_MONOTONIC */
    bool park_ready;          /* park_lock and park_cond initialised */
    pthread_t waker;
    bool waker_running;
    bool closing;             /* answer at once; park nothing more */
    uint64_t wakeups;         /* bumped by tether_http_server_wake */
    struct request_state *parked;
    unsigned parked_count;
    unsigned max_parked;
    atomic_uint resumed; /* answered long polls not yet sent (a leaf: no lock) */
    struct tether_http_reaper *reaper; /* request-head deadlines (http_connections.h) */
    struct tether_http_tickets *tickets; /* session ticket key; NULL: no resumption */
    tether_http_server_metrics_t metrics;
    struct tether_http_stream *streams; /* streamed responses being sent (park_lock) */
} tether_http_server_t;

/* Parses a listen address, "HOST:PORT" (an IPv4 literal) or "[HOST]:PORT"
 * (an IPv6 literal), for the servers' configurations: host names are
 * refused, since the address is bound and certified. host (host_size bytes,
 * at least INET6_ADDRSTRLEN) gets the literal without brackets. TETHER_ERR_PARSE
 * otherwise; nothing is written then. */
TETHER_MUST_CHECK tether_status_t tether_http_listen_parse(const char *text, char *host,
                                                           size_t host_size, uint16_t *port,
                                                           bool *ipv6);

void tether_http_server_init(tether_http_server_t *server);

/* Binds and starts serving. The server struct must stay at its address
 * until tether_http_server_free. */
TETHER_MUST_CHECK tether_status_t tether_http_server_open(tether_http_server_t *server,
                                                          const tether_http_server_options_t *opts);

/* Makes the waker poll every parked request now (something they may wait
 * for happened). Any thread; a server not opened is fine. */
void tether_http_server_wake(tether_http_server_t *server);

/* Answers every parked request (a final poll), stops accepting, finishes or
 * drops open connections, joins the threads. */
void tether_http_server_free(tether_http_server_t *server);

#endif
