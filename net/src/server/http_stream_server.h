/*
 * The server's side of a streamed response (tether/http_stream.h): only
 * http_server.c and http_respond.c use these.
 */
#ifndef TETHER_HTTP_STREAM_SERVER_H
#define TETHER_HTTP_STREAM_SERVER_H

#include <microhttpd.h>

#include "tether/http_server.h"
#include "tether/http_stream.h"

/* A libmicrohttpd response sending the stream on connection, registered
 * with server so that stopping it can end the stream. Takes over the
 * response's hold; on failure (NULL) the hold is given up as well. */
struct MHD_Response *tether_http_stream_attach(tether_http_stream_t *stream,
                                               tether_http_server_t *server,
                                               struct MHD_Connection *connection);

/* The consumer's read, as libmicrohttpd's content reader: up to max queued
 * bytes; MHD_CONTENT_READER_END_OF_STREAM after a complete body,
 * MHD_CONTENT_READER_END_WITH_ERROR after a cut one or once the stream was
 * stopped; 0 when the queue is empty, with the connection suspended until
 * the producer writes or finishes (not when no connection is attached). */
ssize_t tether_http_stream_read(tether_http_stream_t *stream, char *buf, size_t max);

/* The consumer gives up a stream it never sent (the producer sees the
 * client gone) and drops the response's hold. */
void tether_http_stream_abandon(tether_http_stream_t *stream);

/* At stop: ends every registered stream (cut short), resuming suspended
 * connections, and waits up to drain_ms for the server to let them go. */
void tether_http_stream_stop_all(tether_http_server_t *server, unsigned drain_ms);

#endif
