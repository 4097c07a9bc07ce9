/*
 * A read-ahead under GnuTLS on a server connection's socket.
 *
 * GnuTLS reads each record in two pieces, its 5-byte header and then the
 * rest, a recv() for each: a client's flight of several records (a
 * handshake's last messages with the first request, a request's head and
 * body) costs the server two system calls a record. Here one recv() takes
 * what the socket holds, up to TETHER_HTTP_TLS_INPUT_BYTES, and GnuTLS's
 * reads are served from it.
 *
 * It answers "nothing yet" (-1, errno EAGAIN) only when it holds nothing
 * and the socket has nothing either: libmicrohttpd's edge-triggered
 * polling waits for the socket's next readiness only after EAGAIN, so
 * bytes held here are read on as bytes held by the kernel would be.
 *
 * The bytes held are TLS records as they came from the network
 * (ciphertext), nothing to wipe.
 */
#ifndef TETHER_HTTP_TLS_INPUT_H
#define TETHER_HTTP_TLS_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A client's flight here is under 2 KiB (a resumed handshake's end with
 * its request, a token request's head and body); a larger read (a big
 * record's rest) goes straight to the caller's buffer. */
#define TETHER_HTTP_TLS_INPUT_BYTES 4096

typedef struct tether_http_tls_input {
    int fd;
    size_t start; /* buffer[start..end) is held, not yet read by GnuTLS */
    size_t end;
    uint8_t buffer[TETHER_HTTP_TLS_INPUT_BYTES];
} tether_http_tls_input_t;

/* Nothing held; reads from fd (a non-blocking stream socket). */
void tether_http_tls_input_init(tether_http_tls_input_t *input, int fd);

/* GnuTLS's pull function (gnutls_pull_func; arg is the input): up to size
 * bytes, from what is held or else from one recv(); 0 at the end of the
 * stream, -1 with errno as recv() sets it (EAGAIN: nothing to read). Never
 * more than what is held when something is. */
ssize_t tether_http_tls_input_pull(void *arg, void *data, size_t size);

/* GnuTLS's pull timeout function (gnutls_pull_timeout_func): 1 when bytes
 * are held or the socket becomes readable within ms (GnuTLS's indefinite
 * timeout waits), 0 when not, -1 with errno on error. GnuTLS needs it
 * beside a pull function of its caller's: its own would take the transport
 * pointer for a descriptor. */
int tether_http_tls_input_pull_timeout(void *arg, unsigned int ms);

#endif
