#include "form_urlencoded.h"

#include "tether/bytes.h"

static void put(tether_form_sink_t *sink, char c)
{
    if (sink->out != NULL && sink->len + 1 < sink->size)
        sink->out[sink->len] = c;
    else
        sink->overflowed = true;
    sink->len++;
}

bool tether_form_decode(const char *text, size_t len, tether_form_sink_t *sink)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (c == '%') {
            int hi, lo;

            if (len - i < 3 || (hi = tether_hex_digit((unsigned char)text[i + 1])) < 0 ||
                (lo = tether_hex_digit((unsigned char)text[i + 2])) < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0')
            return false;
        put(sink, c);
    }
    if (sink->out != NULL && sink->size > 0)
        sink->out[sink->len < sink->size ? sink->len : sink->size - 1] = '\0';
    return true;
}
