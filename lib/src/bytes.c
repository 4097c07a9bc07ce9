#include "tether/bytes.h"

#include <mbedtls/constant_time.h>
#include <mbedtls/platform_util.h>

tether_status_t tether_hex_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";

    if (out == NULL || (in == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len > (SIZE_MAX - 1) / 2 || out_size < 2 * len + 1)
        return TETHER_ERR_TOO_LARGE;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return TETHER_OK;
}

int tether_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

tether_status_t tether_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_size,
                                  size_t *out_len)
{
    if (hex == NULL || out_len == NULL || (out == NULL && out_size > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    *out_len = 0;
    if (hex_len % 2 != 0)
        return TETHER_ERR_PARSE;
    if (hex_len / 2 > out_size)
        return TETHER_ERR_TOO_LARGE;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = tether_hex_digit(hex[2 * i]);
        int lo = tether_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            tether_wipe(out, out_size);
            return TETHER_ERR_PARSE;
        }
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    *out_len = hex_len / 2;
    return TETHER_OK;
}

bool tether_ct_equal(const void *a, const void *b, size_t len)
{
    return mbedtls_ct_memcmp(a, b, len) == 0;
}

void tether_wipe(void *buf, size_t len)
{
    if (buf != NULL && len > 0)
        mbedtls_platform_zeroize(buf, len);
}
