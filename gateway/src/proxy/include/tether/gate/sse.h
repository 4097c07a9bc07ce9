/*
 * A strict, bounded reader of server-sent events (WHATWG HTML, "Server-sent
 * events", 9.2.6 "Interpreting an event stream") for the answers an
 * upstream streams: bytes arrive in pieces of any size, split anywhere
 * (inside a line, between CR and LF); each event's data is handed to a
 * callback when its blank line arrives. Lines end with CRLF, LF or CR;
 * lines starting with ':' are comments; "data" lines join with "\n"; the
 * other fields (event, id, retry) are read and ignored; a field without a
 * colon is a field with an empty value. Nothing is allocated after init,
 * nothing is logged. Fuzzed (tests/fuzz/fuzz_gate_sse.c).
 *
 * Bounded: a line, or an event's data, over TETHER_SSE_MAX_EVENT_BYTES, and
 * a NUL byte anywhere, fail the stream (TETHER_ERR_TOO_LARGE or
 * TETHER_ERR_PARSE); it stays failed. The proxy still passes the bytes on
 * to the client: only the usage count is lost, and the request is then
 * charged its reserved worst case.
 */
#ifndef TETHER_GATE_SSE_H
#define TETHER_GATE_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_SSE_MAX_EVENT_BYTES (64u * 1024u) /* a chunk of a completion is far smaller */

/* Called once per event with data (data_len bytes plus a NUL, valid until
 * the call returns). A non-OK status fails the stream with it. */
typedef tether_status_t (*tether_sse_event_fn)(void *arg, const char *data, size_t data_len);

typedef struct tether_sse_parser {
    char *line; /* the line being read; TETHER_SSE_MAX_EVENT_BYTES + 1 */
    size_t line_len;
    char *data; /* the event's data so far; TETHER_SSE_MAX_EVENT_BYTES + 1 */
    size_t data_len;
    bool has_data;   /* a data field was seen since the last event */
    bool after_cr;   /* the last byte was CR: an LF next belongs to it */
    bool at_start;   /* nothing read yet: a UTF-8 BOM may come */
    size_t bom_seen; /* bytes of a leading BOM matched so far */
    tether_status_t failed; /* TETHER_OK until the stream fails */
    size_t events;
    tether_sse_event_fn on_event;
    void *arg;
} tether_sse_parser_t;

void tether_sse_parser_init(tether_sse_parser_t *parser);

/* Allocates the buffers; on_event and arg must outlive the parser. */
TETHER_MUST_CHECK tether_status_t tether_sse_parser_setup(tether_sse_parser_t *parser,
                                                          tether_sse_event_fn on_event, void *arg);

/* Reads the next len bytes; returns the stream's status (the first failure
 * sticks). */
TETHER_MUST_CHECK tether_status_t tether_sse_parser_feed(tether_sse_parser_t *parser,
                                                         const uint8_t *bytes, size_t len);

/* Wipes and frees the buffers; accepts NULL. An event not ended by a blank
 * line is dropped, as the specification says. */
void tether_sse_parser_free(tether_sse_parser_t *parser);

#endif
