/*
 * base64url without padding (RFC 4648 section 5, as JOSE uses it: RFC 7515
 * section 2 "Base64url Encoding"). Decoding is strict, so that one byte
 * string has exactly one accepted text form: no '=' padding, no whitespace,
 * no characters outside [A-Za-z0-9_-], no length of the form 4k+1, and the
 * unused low bits of the last character must be zero. The character mapping
 * is branch-free, so decoding a bearer token does not index tables by its
 * secret characters.
 */
#ifndef TETHER_BASE64URL_H
#define TETHER_BASE64URL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tether/error.h"

/* Characters needed for len bytes, without the terminating NUL. */
#define TETHER_BASE64URL_ENCODED_LEN(len) (((len) / 3) * 4 + ((len) % 3 == 0 ? 0 : (len) % 3 + 1))

/* Bytes that a valid text of enc_len characters decodes to. */
#define TETHER_BASE64URL_DECODED_LEN(enc_len) (((enc_len) / 4) * 3 + ((enc_len) % 4 == 0 ? 0 : (enc_len) % 4 - 1))

/* Writes the encoding of in[0..len) and a NUL to out, which holds out_size
 * bytes. *out_len (may be NULL) gets the character count without the NUL.
 * TETHER_ERR_TOO_LARGE when out_size < TETHER_BASE64URL_ENCODED_LEN(len)+1. */
tether_status_t tether_base64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size,
                                        size_t *out_len);

/* Decodes in[0..len) (need not be NUL-terminated) into out, which holds
 * out_size bytes; *out_len gets the byte count. TETHER_ERR_PARSE for any text
 * that is not the canonical unpadded encoding of some bytes,
 * TETHER_ERR_TOO_LARGE when out_size is too small. out is wiped on error. */
TETHER_MUST_CHECK tether_status_t tether_base64url_decode(const char *in, size_t len, uint8_t *out,
                                                          size_t out_size, size_t *out_len);

/* ---- binary members of JSON objects (tether's wire formats) ----------- */

/* Adds member to obj: a string, the encoding of data[0..len). Both are
 * borrowed for the call. TETHER_ERR_NO_MEMORY when it cannot. */
tether_status_t tether_base64url_add_member(cJSON *obj, const char *member, const uint8_t *data,
                                            size_t len);

/* Decodes obj's required member, the base64url string of 1 to size bytes,
 * into buf; *len gets the byte count. TETHER_ERR_PARSE otherwise, with a
 * sentence naming the member in why (why_size bytes; why may be NULL); buf
 * is wiped then. */
TETHER_MUST_CHECK tether_status_t tether_base64url_get_member(const cJSON *obj, const char *member,
                                                              uint8_t *buf, size_t size,
                                                              size_t *len, char *why,
                                                              size_t why_size);

#endif
