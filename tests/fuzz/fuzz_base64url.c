/*
 * base64url: decoding never reads or writes out of bounds, and whatever it
 * accepts is canonical (re-encoding gives back the same text), so one byte
 * string has one accepted form. Encoding round-trips any bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/base64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t decoded_size = TETHER_BASE64URL_DECODED_LEN(size);
    size_t text_size = TETHER_BASE64URL_ENCODED_LEN(size) + 1;
    uint8_t *decoded = malloc(decoded_size + 1);
    uint8_t *back = malloc(size + 1);
    char *text = malloc(text_size > size + 1 ? text_size : size + 1);
    size_t len = 0, text_len = 0, back_len = 0;

    if (decoded == NULL || back == NULL || text == NULL)
        abort();

    /* as text: accepted only if canonical */
    if (tether_base64url_decode((const char *)data, size, decoded, decoded_size, &len) == 0) {
        if (len != decoded_size)
            abort();
        if (tether_base64url_encode(decoded, len, text, size + 1, &text_len) != 0)
            abort();
        if (text_len != size || memcmp(text, data, size) != 0)
            abort();
    }
    /* exactly-sized buffers are enough; one byte less is refused */
    if (size % 4 != 1 && decoded_size > 0 &&
        tether_base64url_decode((const char *)data, size, decoded, decoded_size - 1, &len) == 0)
        abort();

    /* as bytes: encode, then decode back */
    if (tether_base64url_encode(data, size, text, text_size, &text_len) != 0 ||
        text_len != text_size - 1 || text[text_len] != '\0')
        abort();
    if (tether_base64url_decode(text, text_len, back, size, &back_len) != 0 || back_len != size ||
        (size > 0 && memcmp(back, data, size) != 0))
        abort();
    if (tether_base64url_encode(data, size, text, text_size - 1, &text_len) == 0)
        abort();

    free(decoded);
    free(back);
    free(text);
    return 0;
}
