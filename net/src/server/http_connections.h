/*
 * Connection bookkeeping of the HTTP server that libmicrohttpd does not do:
 * the file descriptors a connection limit needs, and a deadline for each
 * request head.
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client that
 * trickles a header line every few seconds (slowloris), or an idle TLS
 * handshake kept alive, never meets it and holds its connection slot for
 * as long as it likes. The reaper gives every connection head_timeout from
 * its accept (TLS handshake included), and from the end of each request on
 * a kept-alive connection, to deliver a complete request head; past it the
 * socket is shut down, which libmicrohttpd sees as the peer leaving.
 *
 * It also holds each source address to its share of the connections
 * (max_per_source) itself, rather than leaving that to libmicrohttpd,
 * which refuses silently: so each refusal can be counted. A connection
 * over the share is shut down at once, before its TLS handshake.
 */
#ifndef TETHER_HTTP_CONNECTIONS_H
#define TETHER_HTTP_CONNECTIONS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "tether/error.h"
#include "tether/metrics.h"

/* Descriptors the process needs besides its connections: the listening
 * socket, each thread's event and wake-up descriptors, the store, logs,
 * files read at start. */
#define TETHER_HTTP_FD_RESERVE 64

/* Where a connection comes from: an IPv4 or IPv6 address (family 0:
 * unknown, never limited). */
typedef struct tether_http_source {
    int family; /* AF_INET, AF_INET6 or 0 */
    uint8_t address[16];
} tether_http_source_t;

/* One open connection (libmicrohttpd's socket context). */
typedef struct tether_http_watched {
    struct tether_http_watched *prev;
    struct tether_http_watched *next;
    int fd;
    tether_http_source_t source;
    struct timespec deadline; /* CLOCK_MONOTONIC; for the head awaited */
    bool in_request;          /* its head arrived: the request is being served */
    bool reaped;              /* shut down already */
    bool served;              /* answered a request before: idle keep-alive, not an attack */
    unsigned requests;        /* request heads received on this connection */
    /* The server's read-ahead under TLS (http_tls_input.h), NULL for plain
     * HTTP; the server frees it when the connection closes, never the reaper. */
    struct tether_http_tls_input *tls_input;
} tether_http_watched_t;

typedef struct tether_http_reaper {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* on CLOCK_MONOTONIC: the thread's stop signal */
    bool ready;           /* lock and cond initialised */
    pthread_t thread;
    bool running;
    bool stopping;
    unsigned head_timeout_ms;
    unsigned max_per_source;        /* open connections from one source address */
    tether_http_watched_t *watched; /* every open connection */
    /* Counted refusals, each NULL (not counted) or a series the caller
     * owns, set before the reaper opens. */
    tether_metric_series_t *refused_per_source; /* over max_per_source */
    tether_metric_series_t *closed_head_deadline; /* no complete head in time, never served */
} tether_http_reaper_t;

/* Initialises a mutex and a condition variable on CLOCK_MONOTONIC: both,
 * or neither (TETHER_ERR_NO_MEMORY). */
TETHER_MUST_CHECK tether_status_t tether_http_lock_init(pthread_mutex_t *lock,
                                                        pthread_cond_t *cond);

/* t += ms; and whether a is before b. */
void tether_http_timespec_add_ms(struct timespec *t, unsigned ms);
bool tether_http_timespec_before(const struct timespec *a, const struct timespec *b);

/* Makes sure the process may open max_connections sockets plus
 * TETHER_HTTP_FD_RESERVE: raises the soft RLIMIT_NOFILE up to the hard
 * limit when needed. TETHER_ERR_INVALID_ARGUMENT (logged, with what to do)
 * when the hard limit is too low. */
TETHER_MUST_CHECK tether_status_t tether_http_fd_limit_check(unsigned max_connections);

void tether_http_reaper_init(tether_http_reaper_t *reaper);

/* Starts the thread that sweeps the connections a few times a second.
 * max_per_source must not be 0. */
TETHER_MUST_CHECK tether_status_t tether_http_reaper_open(tether_http_reaper_t *reaper,
                                                          unsigned head_timeout_ms,
                                                          unsigned max_per_source);

/* The source of a peer address (sa may be NULL: unknown). */
void tether_http_source_from(const struct sockaddr *sa, tether_http_source_t *source);

/* A connection was accepted on fd from source (NULL: unknown): its head is
 * due head_timeout from now. *watched (NULL on entry) gets the entry, the
 * caller's until tether_http_reaper_forget. TETHER_ERR_TOO_LARGE (counted
 * in refused_per_source) when the source holds max_per_source connections
 * already: the caller closes it. TETHER_ERR_NO_MEMORY. Any thread. */
TETHER_MUST_CHECK tether_status_t tether_http_reaper_watch(tether_http_reaper_t *reaper, int fd,
                                                           const tether_http_source_t *source,
                                                           tether_http_watched_t **watched);

/* A complete request head arrived on the connection: no deadline while the
 * request is served. Returns how many heads the connection has received,
 * this one included. */
unsigned tether_http_reaper_head_received(tether_http_reaper_t *reaper,
                                          tether_http_watched_t *watched);

/* The request was answered: the next head on this connection is due
 * head_timeout from now. */
void tether_http_reaper_request_done(tether_http_reaper_t *reaper,
                                     tether_http_watched_t *watched);

/* The connection closes: drops and frees the entry. Called before its
 * descriptor is closed, so the reaper never shuts down a reused number. */
void tether_http_reaper_forget(tether_http_reaper_t *reaper, tether_http_watched_t *watched);

/* Shuts down every connection whose head is overdue at now; returns how
 * many. The thread calls it; tests call it with a chosen now. */
unsigned tether_http_reaper_sweep(tether_http_reaper_t *reaper, const struct timespec *now);

/* Stops the thread and frees every entry left. NULL and an unopened
 * reaper are fine. */
void tether_http_reaper_free(tether_http_reaper_t *reaper);

#endif
