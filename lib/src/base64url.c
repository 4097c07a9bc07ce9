#include "tether/base64url.h"

#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"

/* All ones when lo <= c <= hi, else zero; c, lo, hi < 256. No branch and no
 * table lookup, so the timing does not depend on the character (the same
 * idea as mbedTLS's constant-time base64 for PEM keys). */
static uint32_t mask_in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
    uint32_t below = (c - lo) >> 31;
    uint32_t above = (hi - c) >> 31;
    return (below | above) - 1u;
}

static char encode_sextet(uint32_t v)
{
    uint32_t c = (mask_in_range(v, 0, 25) & (v + 'A')) |
                 (mask_in_range(v, 26, 51) & (v - 26 + 'a')) |
                 (mask_in_range(v, 52, 61) & (v - 52 + '0')) |
                 (mask_in_range(v, 62, 62) & (uint32_t)'-') |
                 (mask_in_range(v, 63, 63) & (uint32_t)'_');
    return (char)c;
}

/* The 6-bit value of c, or all ones (as uint32_t) when c is not in the
 * base64url alphabet. */
static uint32_t decode_char(char ch)
{
    uint32_t c = (uint8_t)ch;
    uint32_t upper = mask_in_range(c, 'A', 'Z');
    uint32_t lower = mask_in_range(c, 'a', 'z');
    uint32_t digit = mask_in_range(c, '0', '9');
    uint32_t dash = mask_in_range(c, '-', '-');
    uint32_t underscore = mask_in_range(c, '_', '_');
    uint32_t valid = upper | lower | digit | dash | underscore;
    uint32_t v = (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) |
                 (dash & 62u) | (underscore & 63u);
    return v | ~valid;
}

tether_status_t tether_base64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size,
                                        size_t *out_len)
{
    size_t o = 0, i = 0;

    if (out_len != NULL)
        *out_len = 0;
    if (out == NULL || (in == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len > (SIZE_MAX / 4) * 3 - 3 || out_size < TETHER_BASE64URL_ENCODED_LEN(len) + 1)
        return TETHER_ERR_TOO_LARGE;
    for (; i + 3 <= len; i += 3) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = encode_sextet(w >> 18);
        out[o++] = encode_sextet((w >> 12) & 63);
        out[o++] = encode_sextet((w >> 6) & 63);
        out[o++] = encode_sextet(w & 63);
    }
    if (len - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[o++] = encode_sextet(w >> 18);
        out[o++] = encode_sextet((w >> 12) & 63);
    } else if (len - i == 2) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = encode_sextet(w >> 18);
        out[o++] = encode_sextet((w >> 12) & 63);
        out[o++] = encode_sextet((w >> 6) & 63);
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return TETHER_OK;
}

tether_status_t tether_base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_size,
                                        size_t *out_len)
{
    uint32_t bad = 0;
    size_t o = 0, i = 0;

    if (out_len == NULL || (in == NULL && len > 0) || (out == NULL && out_size > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    /* A lone trailing character carries 6 bits: never a whole byte. */
    if (len % 4 == 1) {
        tether_wipe(out, out_size);
        return TETHER_ERR_PARSE;
    }
    if (TETHER_BASE64URL_DECODED_LEN(len) > out_size) {
        tether_wipe(out, out_size);
        return TETHER_ERR_TOO_LARGE;
    }
    for (; i + 4 <= len; i += 4) {
        uint32_t a = decode_char(in[i]), b = decode_char(in[i + 1]);
        uint32_t c = decode_char(in[i + 2]), d = decode_char(in[i + 3]);
        uint32_t w = (a << 18) | (b << 12) | (c << 6) | d;
        bad |= (a | b | c | d) & ~63u;
        out[o++] = (uint8_t)(w >> 16);
        out[o++] = (uint8_t)(w >> 8);
        out[o++] = (uint8_t)w;
    }
    if (len - i == 2) {
        uint32_t a = decode_char(in[i]), b = decode_char(in[i + 1]);
        bad |= (a | b) & ~63u;
        bad |= b & 0x0f; /* bits that fall off the end must be zero (RFC 4648 3.5) */
        out[o++] = (uint8_t)((a << 2) | (b >> 4));
    } else if (len - i == 3) {
        uint32_t a = decode_char(in[i]), b = decode_char(in[i + 1]), c = decode_char(in[i + 2]);
        bad |= (a | b | c) & ~63u;
        bad |= c & 0x03;
        out[o++] = (uint8_t)((a << 2) | (b >> 4));
        out[o++] = (uint8_t)((b << 4) | (c >> 2));
    }
    if (bad != 0) {
        tether_wipe(out, out_size);
        return TETHER_ERR_PARSE;
    }
    *out_len = o;
    return TETHER_OK;
}

tether_status_t tether_base64url_add_member(cJSON *obj, const char *member, const uint8_t *data,
                                            size_t len)
{
    size_t text_size = TETHER_BASE64URL_ENCODED_LEN(len) + 1;
    char *text;
    tether_status_t rc;

    if (obj == NULL || member == NULL || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((text = malloc(text_size)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    rc = tether_base64url_encode(data, len, text, text_size, NULL);
    if (rc == TETHER_OK && cJSON_AddStringToObject(obj, member, text) == NULL)
        rc = TETHER_ERR_NO_MEMORY;
    free(text);
    return rc;
}

tether_status_t tether_base64url_get_member(const cJSON *obj, const char *member, uint8_t *buf,
                                            size_t size, size_t *len, char *why, size_t why_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, member);

    if (len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *len = 0;
    if (member == NULL || buf == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "\"%s\" is missing or not a string",
                              member);
    if (tether_base64url_decode(item->valuestring, strlen(item->valuestring), buf, size, len) !=
            TETHER_OK ||
        *len == 0) {
        tether_wipe(buf, size);
        *len = 0;
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "\"%s\" is not base64url of 1 to %zu bytes", member, size);
    }
    return TETHER_OK;
}
