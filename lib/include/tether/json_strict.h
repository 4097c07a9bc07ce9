/*
 * JSON parsing strict enough for security decisions on
 * signed headers and claims. cJSON alone is lenient in ways that let two
 * parsers read one text differently; see json_strict.c.
 */
#ifndef TETHER_JSON_STRICT_H
#define TETHER_JSON_STRICT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tether/error.h"

/* Parses text[0..len) (need not be NUL-terminated) as one JSON object and
 * sets *out (freed by the caller with cJSON_Delete). TETHER_ERR_PARSE when
 * the text is not exactly one object, is not valid UTF-8, holds a NUL byte,
 * a "\u0000" escape or a raw control character in a string, or repeats a
 * member name in any object at any depth. */
TETHER_MUST_CHECK tether_status_t tether_json_parse_object(const char *text, size_t len, cJSON **out);

#endif
