#include "tether/secret_token.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/sha256.h>

#include "tether/json_strict.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/jose.h"
#include "tether/random.h"

static const char *const prefixes[] = {
    [TETHER_SECRET_ADMIN] = "tthr_adm_",
    [TETHER_SECRET_BOOTSTRAP] = "tthr_boot_",
};

const char *tether_secret_token_prefix(tether_secret_kind_t kind)
{
    if ((unsigned)kind >= sizeof(prefixes) / sizeof(prefixes[0]))
        return NULL;
    return prefixes[kind];
}

uint32_t tether_crc32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* All ones when lo <= c <= hi, else zero; c, lo, hi < 256. */
static uint32_t mask_in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
    uint32_t below = (c - lo) >> 31;
    uint32_t above = (hi - c) >> 31;
    return (below | above) - 1u;
}

/* Base62 digit of v (0..61), without a table indexed by the secret value. */
static char base62_digit(uint32_t v)
{
    return (char)((mask_in_range(v, 0, 9) & (v + '0')) |
                  (mask_in_range(v, 10, 35) & (v - 10 + 'A')) |
                  (mask_in_range(v, 36, 61) & (v - 36 + 'a')));
}

/* Zero when c is a base62 character, all ones otherwise. */
static uint32_t base62_invalid(char ch)
{
    uint32_t c = (uint8_t)ch;
    return ~(mask_in_range(c, '0', '9') | mask_in_range(c, 'A', 'Z') | mask_in_range(c, 'a', 'z'));
}

static void checksum_text(const char *data, size_t len, char out[TETHER_SECRET_CHECKSUM_LEN])
{
    uint32_t crc = tether_crc32(data, len);

    /* 62^6 > 2^32, so six digits hold every CRC value. */
    for (int i = TETHER_SECRET_CHECKSUM_LEN - 1; i >= 0; i--) {
        out[i] = base62_digit(crc % 62);
        crc /= 62;
    }
}

tether_status_t tether_secret_token_generate(tether_secret_kind_t kind, char *out, size_t out_size)
{
    const char *prefix = tether_secret_token_prefix(kind);
    uint8_t random[64];
    size_t prefix_len, filled = 0, total;
    tether_status_t rc = TETHER_OK;

    if (prefix == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    prefix_len = strlen(prefix);
    total = prefix_len + TETHER_SECRET_BODY_LEN + TETHER_SECRET_CHECKSUM_LEN;
    if (out_size < total + 1)
        return TETHER_ERR_TOO_LARGE;
    memcpy(out, prefix, prefix_len);
    /* Rejection sampling: bytes 248..255 would make 0..7 likelier than the
     * rest under "mod 62" (248 = 4 * 62), so they are drawn again. */
    while (filled < TETHER_SECRET_BODY_LEN) {
        if ((rc = tether_random_bytes(random, sizeof(random))) != TETHER_OK)
            goto out;
        for (size_t i = 0; i < sizeof(random) && filled < TETHER_SECRET_BODY_LEN; i++)
            if (random[i] < 248)
                out[prefix_len + filled++] = base62_digit(random[i] % 62u);
    }
    checksum_text(out, prefix_len + TETHER_SECRET_BODY_LEN, out + prefix_len + TETHER_SECRET_BODY_LEN);
    out[total] = '\0';
out:
    tether_wipe(random, sizeof(random));
    if (rc != TETHER_OK)
        tether_wipe(out, out_size);
    return rc;
}

tether_status_t tether_secret_token_check_format(const char *token, size_t len,
                                                 tether_secret_kind_t expected)
{
    const char *prefix = tether_secret_token_prefix(expected);
    char checksum[TETHER_SECRET_CHECKSUM_LEN];
    uint32_t invalid = 0;
    size_t prefix_len, signed_len;
    tether_status_t rc;

    if (prefix == NULL || (token == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    prefix_len = strlen(prefix);
    signed_len = prefix_len + TETHER_SECRET_BODY_LEN;
    if (len != signed_len + TETHER_SECRET_CHECKSUM_LEN || memcmp(token, prefix, prefix_len) != 0)
        return TETHER_ERR_PARSE;
    for (size_t i = prefix_len; i < len; i++)
        invalid |= base62_invalid(token[i]);
    if (invalid != 0)
        return TETHER_ERR_PARSE;
    checksum_text(token, signed_len, checksum);
    rc = tether_ct_equal(checksum, token + signed_len, sizeof(checksum)) ? TETHER_OK
                                                                          : TETHER_ERR_VERIFY;
    tether_wipe(checksum, sizeof(checksum));
    return rc;
}

tether_status_t tether_secret_token_hash(const char *token, size_t len,
                                         uint8_t hash[TETHER_SECRET_HASH_SIZE])
{
    if ((token == NULL && len > 0) || hash == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (mbedtls_sha256_ret((const unsigned char *)token, len, hash, 0) != 0)
        return TETHER_ERR_CRYPTO;
    return TETHER_OK;
}

/* ---- finding access tokens in text ------------------------------------- */

/* Longest header segment decoded while scanning: a tether header is about
 * 60 characters; this bounds the work per candidate. */
#define SCAN_HEADER_MAX 1024

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* A segment that could be base64url of a JSON object: '{' encodes to 'e'
 * as the first character. */
static bool could_be_json_object(const char *seg, size_t len)
{
    return len >= 2 && len % 4 != 1 && seg[0] == 'e';
}

static bool is_access_token_header(const char *seg, size_t len)
{
    uint8_t decoded[TETHER_BASE64URL_DECODED_LEN(SCAN_HEADER_MAX)];
    size_t decoded_len = 0;
    cJSON *header = NULL;
    const cJSON *typ;
    bool found = false;

    if (!could_be_json_object(seg, len) || len > SCAN_HEADER_MAX)
        return false;
    if (tether_base64url_decode(seg, len, decoded, sizeof(decoded), &decoded_len) != TETHER_OK)
        return false;
    if (decoded_len == 0 || decoded[0] != '{')
        goto out;
    if (tether_json_parse_object((const char *)decoded, decoded_len, &header) != TETHER_OK)
        goto out;
    typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
    found = cJSON_IsString(typ) && typ->valuestring != NULL &&
            (strcasecmp(typ->valuestring, "at+jwt") == 0 ||
             strcasecmp(typ->valuestring, "application/at+jwt") == 0);
out:
    cJSON_Delete(header);
    tether_wipe(decoded, decoded_len);
    return found;
}

struct segment {
    size_t start, len;
};

struct scan {
    tether_token_span_t *spans;
    size_t max_spans, count;
    bool overflow;
};

/* Looks at every three consecutive segments of one run of base64url
 * characters and dots. Each segment is decoded as a header at most once. */
static void scan_run(const char *text, size_t start, size_t end, struct scan *scan)
{
    struct segment window[3];
    size_t have = 0, seg_start = start;

    for (size_t i = start; i <= end && !scan->overflow; i++) {
        if (i < end && text[i] != '.')
            continue;
        window[have].start = seg_start;
        window[have].len = i - seg_start;
        have++;
        seg_start = i + 1;
        if (have < 3)
            continue;
        if (window[1].len > 0 && window[2].len > 0 && window[2].len % 4 != 1 &&
            could_be_json_object(text + window[1].start, window[1].len) &&
            window[2].start + window[2].len - window[0].start <= TETHER_JWS_MAX_LEN &&
            is_access_token_header(text + window[0].start, window[0].len)) {
            if (scan->count == scan->max_spans) {
                scan->overflow = true;
                return;
            }
            scan->spans[scan->count].offset = window[0].start;
            scan->spans[scan->count].len = window[2].start + window[2].len - window[0].start;
            scan->count++;
            have = 0; /* a token's segments never start another one */
        } else {
            window[0] = window[1];
            window[1] = window[2];
            have = 2;
        }
    }
}

tether_status_t tether_secret_token_find_jwts(const char *text, size_t len,
                                              tether_token_span_t *spans, size_t max_spans,
                                              size_t *count)
{
    struct scan scan = {spans, max_spans, 0, false};
    size_t i = 0;

    if (count == NULL || (text == NULL && len > 0) || (spans == NULL && max_spans > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    *count = 0;
    while (i < len && !scan.overflow) {
        size_t run_start;
        if (!is_token_char(text[i]) && text[i] != '.') {
            i++;
            continue;
        }
        run_start = i;
        while (i < len && (is_token_char(text[i]) || text[i] == '.'))
            i++;
        scan_run(text, run_start, i, &scan);
    }
    *count = scan.count;
    return scan.overflow ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}
