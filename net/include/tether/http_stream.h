/*
 * A response body streamed while it is produced (server-sent events from an
 * upstream, for tether-gate): a bounded byte queue between one producer
 * thread and the server, which sends what is queued as it arrives. Nothing
 * is buffered whole: a producer that gets ahead of the client blocks in
 * tether_http_stream_write until the client has taken bytes (back-pressure
 * reaches the upstream), and a client that goes away makes the next write
 * fail, so the producer can abort its upstream transfer.
 *
 * The server sends the queue from libmicrohttpd's content reader; with the
 * queue empty it suspends the connection (holding no thread) and a write
 * resumes it. A suspended connection is not watched for a disconnect, so a
 * client that leaves while nothing arrives is noticed at the next write.
 * Stopping the server ends every stream (cut short) first.
 */
#ifndef TETHER_HTTP_STREAM_H
#define TETHER_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"
#include "tether/http_handler.h"

#define TETHER_HTTP_STREAM_MAX_CAPACITY (16u * 1024u * 1024u)

typedef struct tether_http_stream tether_http_stream_t;

/* A stream with a queue of capacity bytes (1..TETHER_HTTP_STREAM_MAX_CAPACITY),
 * held by two owners: the producer (until tether_http_stream_finish) and the
 * response it is set in (until the server or tether_http_response_clear is
 * done with it). */
TETHER_MUST_CHECK tether_status_t tether_http_stream_create(size_t capacity,
                                                            tether_http_stream_t **stream);

/* Producer: queues len bytes, waiting while the queue is full.
 * TETHER_ERR_STATE when the client is gone (or the server stops): abort. */
TETHER_MUST_CHECK tether_status_t tether_http_stream_write(tether_http_stream_t *stream,
                                                           const uint8_t *bytes, size_t len);

/* Producer: the body is complete (complete true), or cut short (false: the
 * connection is closed after what is queued, so the client sees a broken
 * stream rather than a short one). Drops the producer's hold. */
void tether_http_stream_finish(tether_http_stream_t *stream, bool complete);

#endif
