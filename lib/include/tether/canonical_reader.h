/*
 * A cursor over untrusted bytes for the readers of one canonical form
 * (fleetd's usage document, the fleet policy document): such a reader
 * matches the exact text it expects, byte by byte, so nothing but that form
 * can pass. Borrows data and why for its life; holds no other state.
 */
#ifndef TETHER_CANONICAL_READER_H
#define TETHER_CANONICAL_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

typedef struct tether_canonical_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    const char *what; /* names the input in why: "usage document" */
    char *why;        /* the refusal's sentence; why_size 0: none */
    size_t why_size;
} tether_canonical_reader_t;

/* Writes "<what>, byte <pos>: <the message>" into why; TETHER_ERR_PARSE. */
tether_status_t tether_canonical_fail(tether_canonical_reader_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether the bytes at the position are text (consumed if so). */
bool tether_canonical_take(tether_canonical_reader_t *r, const char *text);

/* text at the position (consumed), or a refusal "expected <text>". */
tether_status_t tether_canonical_expect(tether_canonical_reader_t *r, const char *text);

#endif
