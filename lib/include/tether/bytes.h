/*
 * Small byte helpers: hex, constant-time compare, wiping.
 */
#ifndef TETHER_BYTES_H
#define TETHER_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

/* Writes 2*len lowercase hex digits and a NUL to out, which holds out_size
 * bytes. TETHER_ERR_TOO_LARGE if out_size < 2*len+1. */
tether_status_t tether_hex_encode(const uint8_t *in, size_t len, char *out, size_t out_size);

/* Decodes hex (either case, no separators) into out. *out_len gets the byte
 * count. TETHER_ERR_PARSE on an odd length or a non-hex digit,
 * TETHER_ERR_TOO_LARGE when out_size is too small. out is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_hex_decode(const char *hex, size_t hex_len, uint8_t *out,
                                                    size_t out_size, size_t *out_len);

/* The value of one hex digit (either case), or -1 for any other character. */
int tether_hex_digit(int c);

/* Compares two equal-length buffers in time independent of their contents. */
TETHER_MUST_CHECK bool tether_ct_equal(const void *a, const void *b, size_t len);

/* Wipes a buffer in a way the compiler may not remove (NULL is accepted). */
void tether_wipe(void *buf, size_t len);

#endif
