/*
 * A byte stream under the HTTP request path, in the manner of coreMQTT's
 * TransportInterface_t: two function pointers over a context the caller
 * owns. The same request writer and response reader (tether/http_client.h)
 * run over TLS to the fleet (tether/https_client.h) and over a plain socket
 * to the agent's Unix socket (tether_socket_t below).
 *
 * Each call waits as long as its transport allows (its own timeouts) and
 * never returns "try again": a short count is progress, anything else an
 * end or a failure.
 */
#ifndef TETHER_TRANSPORT_H
#define TETHER_TRANSPORT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

/* recv's answer when the stream ended without proof that the peer meant to
 * end it (TCP closed under TLS without close_notify: a truncation an
 * attacker can cause). Only a response whose own framing is complete may be
 * accepted then. Chosen far from any transport's error codes. */
#define TETHER_TRANSPORT_CUT INT_MIN

typedef struct tether_transport {
    /* Sends 1..len bytes of buf: returns how many (> 0), or a negative code
     * of the transport when it failed. */
    int (*send)(void *context, const uint8_t *buf, size_t len);
    /* Receives up to len bytes into buf: returns how many (> 0); 0 when the
     * peer ended the stream in a way that cannot be forged (TLS
     * close_notify, the close of a local socket); TETHER_TRANSPORT_CUT (see
     * above); or another negative code of the transport when it failed. */
    int (*recv)(void *context, uint8_t *buf, size_t len);
    /* Passed to both; owned by the caller and valid while they are used. */
    void *context;
} tether_transport_t;

/* ---- A stream socket with timeouts ------------------------------------ */

/* Negative codes of the socket transport's send and recv. */
#define TETHER_SOCKET_TIMEOUT (-1) /* no progress within the I/O timeout or the deadline */
#define TETHER_SOCKET_RESET (-2)   /* the peer reset or closed the connection under us */
#define TETHER_SOCKET_FAILED (-3)  /* send or recv failed otherwise: see error_number */
#define TETHER_SOCKET_POLL_FAILED (-4) /* poll failed: see error_number */

/*
 * A connected non-blocking stream socket. Every wait is a poll() bounded by
 * io_timeout_ms and by deadline_ms (CLOCK_MONOTONIC), so no peer, however
 * slow, holds a request past its deadline. send uses MSG_NOSIGNAL: a peer
 * that has gone gives TETHER_SOCKET_RESET, not SIGPIPE.
 */
typedef struct tether_socket {
    int fd;                  /* -1 when closed; owned: closed by _close */
    uint64_t deadline_ms;    /* monotonic ms: the end of the whole exchange */
    unsigned io_timeout_ms;  /* longest wait for any one step */
    bool deadline_passed;    /* the last timeout was the deadline's, not the I/O one */
    int error_number;        /* errno of the last failure */
} tether_socket_t;

/* Milliseconds of CLOCK_MONOTONIC, the clock of deadline_ms. */
uint64_t tether_socket_now_ms(void);

/* An unconnected socket (fd -1) with the given timeouts, the deadline
 * request_timeout_ms from now. Cannot fail. */
void tether_socket_init(tether_socket_t *s, unsigned io_timeout_ms, unsigned request_timeout_ms);

/*
 * Waits for events on fd, at most max_wait_ms and never past deadline_ms.
 * 1: ready (or an error the next call reports), 0: timed out, -1: poll
 * failed (errno says why).
 */
int tether_socket_wait(int fd, short events, uint64_t deadline_ms, unsigned max_wait_ms);

/*
 * Connects s to the Unix stream socket at path. TETHER_OK;
 * TETHER_ERR_INVALID_ARGUMENT for a path too long for sockaddr_un;
 * TETHER_ERR_NETWORK when nothing accepts there (errno in s->error_number).
 */
TETHER_MUST_CHECK tether_status_t tether_socket_connect_unix(tether_socket_t *s, const char *path);

/* The transport's send and recv; context is a connected tether_socket_t. */
int tether_socket_send(void *context, const uint8_t *buf, size_t len);
int tether_socket_recv(void *context, uint8_t *buf, size_t len);

/* The interface over s (which must outlive its use). */
tether_transport_t tether_socket_transport(tether_socket_t *s);

/* Closes the descriptor; accepts a socket never connected. */
void tether_socket_close(tether_socket_t *s);

#endif
