/*
 * One name or value of an application/x-www-form-urlencoded form, decoded
 * as HTML's parser does it ('+' is a space, %XX a byte), but stricter where
 * a lenient reading could let two parsers disagree: a '%' not followed by
 * two hex digits is an error, not a literal, and so is a decoded NUL. The
 * introspection body and the user id and password of HTTP Basic client
 * authentication (RFC 6749 section 2.3.1) are decoded this way. Pure.
 */
#ifndef TETHER_FLEET_FORM_URLENCODED_H
#define TETHER_FLEET_FORM_URLENCODED_H

#include <stdbool.h>
#include <stddef.h>

/* Where a decoded name or value goes. */
typedef struct tether_form_sink {
    char *out;       /* NULL: decode only to validate */
    size_t size;     /* bytes available in out, NUL included */
    size_t len;      /* bytes decoded so far */
    bool overflowed; /* more than size - 1 bytes */
} tether_form_sink_t;

/* Decodes text[0..len) into sink, NUL-terminated when it has room (cut
 * then, with overflowed set). false for a bad escape or a NUL. */
bool tether_form_decode(const char *text, size_t len, tether_form_sink_t *sink);

#endif
