/*
 * Secret-token format checks and the leaked-token scanner on arbitrary
 * bytes. The scanner must report spans inside the text, in order, without
 * overlap, each a plausible compact JWS; a format check that passes must
 * mean a token of exactly that shape.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/jose.h"
#include "tether/secret_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_spans(const char *text, size_t size, const tether_token_span_t *spans, size_t count)
{
    size_t end = 0;

    for (size_t i = 0; i < count; i++) {
        size_t dots = 0;
        if (spans[i].offset < end || spans[i].len == 0 || spans[i].offset > size ||
            spans[i].len > size - spans[i].offset || spans[i].len > TETHER_JWS_MAX_LEN)
            abort();
        for (size_t j = spans[i].offset; j < spans[i].offset + spans[i].len; j++)
            if (text[j] == '.')
                dots++;
        if (dots != 2 || text[spans[i].offset] != 'e')
            abort();
        end = spans[i].offset + spans[i].len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    tether_token_span_t spans[8], all[64];
    size_t count = 0, count_all = 0;
    tether_status_t rc;

    for (int kind = TETHER_SECRET_ADMIN; kind <= TETHER_SECRET_BOOTSTRAP; kind++) {
        const char *prefix = tether_secret_token_prefix((tether_secret_kind_t)kind);
        rc = tether_secret_token_check_format(text, size, (tether_secret_kind_t)kind);
        if (rc == TETHER_OK &&
            (size != strlen(prefix) + TETHER_SECRET_BODY_LEN + TETHER_SECRET_CHECKSUM_LEN ||
             memcmp(text, prefix, strlen(prefix)) != 0))
            abort();
    }
    (void)tether_crc32(data, size);

    rc = tether_secret_token_find_jwts(text, size, spans, 8, &count);
    if (rc != TETHER_OK && rc != TETHER_ERR_TOO_LARGE)
        abort();
    check_spans(text, size, spans, count);
    /* a larger span array finds the same first spans */
    if (tether_secret_token_find_jwts(text, size, all, 64, &count_all) == TETHER_ERR_INVALID_ARGUMENT ||
        count_all < count || memcmp(all, spans, count * sizeof(spans[0])) != 0)
        abort();
    check_spans(text, size, all, count_all);
    return 0;
}
