/*
 * fleetd's HTTPS server on libmicrohttpd: an internal polling thread with a
 * small thread pool, connection limit and idle timeout, request bodies
 * bounded while they arrive (413 past the limit), one JSON log line per
 * request (method, path, status, duration, peer; never a header or body).
 */
#ifndef TETHER_FLEET_HTTP_SERVER_H
#define TETHER_FLEET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "tether/error.h"

typedef struct tether_http_server_options {
    const char *host; /* IP literal to bind */
    bool ipv6;
    uint16_t port;
    const char *cert_pem; /* server certificate chain, PEM */
    const char *key_pem;  /* its private key, PEM (copied by the TLS library) */
    size_t max_body_bytes;
    unsigned max_connections;
    unsigned connection_timeout_seconds;
    unsigned threads;
    tether_http_handler_fn handler; /* called from the server's threads */
    void *handler_arg;              /* must outlive the server */
} tether_http_server_options_t;

typedef struct tether_http_server {
    struct MHD_Daemon *daemon;
    size_t max_body_bytes;
    tether_http_handler_fn handler;
    void *handler_arg;
} tether_http_server_t;

void tether_http_server_init(tether_http_server_t *server);

/* Binds and starts serving. The server struct must stay at its address
 * until tether_http_server_free. */
TETHER_MUST_CHECK tether_status_t tether_http_server_open(tether_http_server_t *server,
                                                          const tether_http_server_options_t *opts);

/* Stops accepting, finishes or drops open connections, joins the threads. */
void tether_http_server_free(tether_http_server_t *server);

#endif
