/* Text in event data, decoded to UTF-8 (eventlog_text.h). */
#include "eventlog_text.h"

#include <string.h>

size_t tether_eventlog_text_capacity(size_t log_size)
{
    return log_size * 2 + 1;
}

static bool printable_ascii(uint32_t c)
{
    return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r';
}

/* Appends code point c as UTF-8 at out[*len], keeping room for the NUL. */
static bool put_utf8(uint32_t c, char *out, size_t out_size, size_t *len)
{
    uint8_t b[4];
    size_t n;

    if (c < 0x80) {
        b[0] = (uint8_t)c;
        n = 1;
    } else if (c < 0x800) {
        b[0] = (uint8_t)(0xC0 | c >> 6);
        b[1] = (uint8_t)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        b[0] = (uint8_t)(0xE0 | c >> 12);
        b[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        b[2] = (uint8_t)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | c >> 18);
        b[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
        b[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        b[3] = (uint8_t)(0x80 | (c & 0x3F));
        n = 4;
    }
    if (n >= out_size - *len)
        return false;
    memcpy(out + *len, b, n);
    *len += n;
    return true;
}

bool tether_eventlog_utf16_to_utf8(const uint8_t *in, size_t units, bool ascii_only, char *out,
                                   size_t out_size, size_t *out_len)
{
    size_t len = 0;

    *out_len = 0;
    if (out_size == 0)
        return false;
    out[0] = '\0';
    for (size_t i = 0; i < units; i++) {
        uint32_t c = (uint32_t)in[2 * i] | (uint32_t)in[2 * i + 1] << 8;

        if (c >= 0xD800 && c < 0xDC00) {
            uint32_t low;

            if (i + 1 == units)
                return false;
            low = (uint32_t)in[2 * i + 2] | (uint32_t)in[2 * i + 3] << 8;
            if (low < 0xDC00 || low >= 0xE000)
                return false;
            c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
            i++;
        } else if (c >= 0xDC00 && c < 0xE000) {
            return false;
        }
        if (c < 0x80 ? !printable_ascii(c) : ascii_only || (c >= 0x80 && c < 0xA0))
            return false;
        if (!put_utf8(c, out, out_size, &len))
            return false;
    }
    out[len] = '\0';
    *out_len = len;
    return true;
}

bool tether_eventlog_text_decode(const uint8_t *data, size_t size, char *out, size_t out_size,
                                 size_t *out_len)
{
    size_t ascii = size, units = size / 2;
    bool is_ascii = true;

    *out_len = 0;
    while (ascii > 0 && data[ascii - 1] == 0)
        ascii--;
    for (size_t i = 0; i < ascii && is_ascii; i++)
        is_ascii = printable_ascii(data[i]);
    if (ascii > 0 && is_ascii) {
        if (ascii >= out_size)
            return false;
        memcpy(out, data, ascii);
        out[ascii] = '\0';
        *out_len = ascii;
        return true;
    }
    if (size % 2 != 0)
        return false;
    while (units > 0 && data[2 * units - 2] == 0 && data[2 * units - 1] == 0)
        units--;
    return units > 0 && tether_eventlog_utf16_to_utf8(data, units, true, out, out_size, out_len);
}
