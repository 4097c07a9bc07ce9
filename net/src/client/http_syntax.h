/*
 * Character classes of RFC 3986 (URIs) and RFC 9110 (HTTP fields), shared by
 * the URL parser, the response parser and the request writer. Locale-free
 * on purpose: <ctype.h> answers depend on the locale.
 */
#ifndef TETHER_NET_HTTP_SYNTAX_H
#define TETHER_NET_HTTP_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

static inline bool syntax_is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool syntax_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline int syntax_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* RFC 9110 5.6.2 tchar: the characters of a token (field names, methods). */
static inline bool syntax_is_tchar(int c)
{
    if (syntax_is_alpha(c) || syntax_is_digit(c))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

/* RFC 9110 5.5 field-vchar, SP and HTAB: what a field value may hold
 * (obs-text, bytes 0x80-0xff, included). No CR, LF, NUL or DEL. */
static inline bool syntax_is_field_char(int c)
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/* RFC 3986 2.3 unreserved. */
static inline bool syntax_is_unreserved(int c)
{
    return syntax_is_alpha(c) || syntax_is_digit(c) || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* RFC 3986 3.3 pchar without pct-encoded (checked by the callers). */
static inline bool syntax_is_pchar(int c)
{
    if (syntax_is_unreserved(c))
        return true;
    switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+':
    case ',': case ';': case '=': case ':': case '@':
        return true;
    default:
        return false;
    }
}

/* Case-insensitive comparison of n ASCII bytes. */
static inline bool syntax_equal_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (syntax_lower((unsigned char)a[i]) != syntax_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

#endif
