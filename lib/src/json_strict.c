#include "tether/json_strict.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"

/*
 * Why a pre-pass around cJSON 1.7.15:
 * - cJSON stores strings NUL-terminated, so "iss":"https://a\u0000.evil"
 *   would read as "https://a" here and differently elsewhere.
 * - cJSON accepts raw control characters in strings and does not check
 *   UTF-8 (RFC 8259 sections 7 and 8.1 forbid both).
 * - cJSON keeps duplicate member names and returns the first; other JSON
 *   parsers return the last. RFC 7515 section 4 lets a JWS parser either
 *   reject duplicates or take the last; we reject, at every depth, so a
 *   relying party in another language cannot see other claims than we do.
 * - cJSON skips a UTF-8 byte order mark and ignores what follows the value
 *   unless told otherwise.
 */

/* Length of the valid UTF-8 sequence at s[0..len), or 0 (RFC 3629 section 4). */
static size_t utf8_sequence(const uint8_t *s, size_t len)
{
    uint8_t c = s[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (len < n)
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* overlong */
    else if (c == 0xed)
        hi = 0x9f; /* UTF-16 surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

static bool text_acceptable(const char *text, size_t len)
{
    const uint8_t *s = (const uint8_t *)text;
    bool in_string = false;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_sequence(s + i, len - i);
        if (n == 0 || s[i] == 0)
            return false;
        if (n > 1) {
            i += n;
            continue;
        }
        if (in_string) {
            if (s[i] < 0x20)
                return false;
            if (s[i] == '"') {
                in_string = false;
            } else if (s[i] == '\\') {
                if (i + 1 >= len)
                    return false;
                if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
                    return false;
                i++; /* the escaped character is checked by cJSON */
                if (s[i] == 0)
                    return false;
            }
        } else if (s[i] == '"') {
            in_string = true;
        }
        i++;
    }
    return true;
}

static bool has_duplicates(const cJSON *item)
{
    for (const cJSON *a = item->child; a != NULL; a = a->next) {
        if (cJSON_IsObject(item)) {
            for (const cJSON *b = a->next; b != NULL; b = b->next)
                if (a->string != NULL && b->string != NULL && strcmp(a->string, b->string) == 0)
                    return true;
        }
        /* Depth is bounded by cJSON's nesting limit (CJSON_NESTING_LIMIT). */
        if ((cJSON_IsObject(a) || cJSON_IsArray(a)) && has_duplicates(a))
            return true;
    }
    return false;
}

static bool only_whitespace(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    return true;
}

tether_status_t tether_json_parse_object(const char *text, size_t len, cJSON **out)
{
    const char *end = NULL;
    char *copy = NULL;
    cJSON *json = NULL;
    tether_status_t rc;

    if (out == NULL || (text == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (len == 0 || !text_acceptable(text, len) || (uint8_t)text[0] == 0xef) {
        rc = TETHER_ERR_PARSE; /* 0xef starts a byte order mark, never a JSON value */
        goto out;
    }
    /* A NUL-terminated copy, so no read by the parser can leave the buffer. */
    if ((copy = malloc(len + 1)) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    json = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (json == NULL || end == NULL || end < copy || end > copy + len ||
        !only_whitespace(end, copy + len) || !cJSON_IsObject(json) || has_duplicates(json)) {
        rc = TETHER_ERR_PARSE;
        goto out;
    }
    *out = json;
    json = NULL;
    rc = TETHER_OK;
out:
    cJSON_Delete(json);
    if (copy != NULL)
        tether_wipe(copy, len + 1); /* part of a bearer token */
    free(copy);
    return rc;
}
