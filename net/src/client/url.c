/*
 * Base URLs of the fleet: "https://HOST[:PORT][/prefix]" and nothing else.
 * The URL comes from configuration, so every refusal names its reason; it
 * is strict because whatever it accepts ends up in the Host header, the
 * certificate check and every request line.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "http_syntax.h"
#include "tether/bytes.h"
#include "tether/url.h"

#define SCHEME "https://"
#define SCHEME_LEN (sizeof(SCHEME) - 1)
#define IPV6_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1 */

/* RFC 3986 3.2.2 IPv4address: four dec-octets without leading zeros (a
 * leading zero means octal to inet_aton and friends). */
static bool is_ipv4(const char *s, size_t len)
{
    size_t i = 0;

    for (unsigned octet = 0; octet < 4; octet++) {
        size_t start = i;
        unsigned value = 0;

        if (octet > 0) {
            if (i >= len || s[i] != '.')
                return false;
            start = ++i;
        }
        while (i < len && syntax_is_digit(s[i]) && i - start < 3)
            value = value * 10 + (unsigned)(s[i++] - '0');
        if (i == start || value > 255 || (i - start > 1 && s[start] == '0'))
            return false;
    }
    return i == len;
}

static bool is_ipv6(const char *s, size_t len)
{
    char text[IPV6_TEXT_MAX + 1];
    struct in6_addr addr;

    if (len == 0 || len > IPV6_TEXT_MAX)
        return false;
    /* inet_pton accepts exactly the RFC 4291 2.2 forms; no zone ids. */
    for (size_t i = 0; i < len; i++) {
        if (tether_hex_digit(s[i]) < 0 && s[i] != ':' && s[i] != '.')
            return false;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, &addr) == 1;
}

/* RFC 1123 2.1 host names: labels of letters, digits and hyphens, 1..63
 * long, not starting or ending with '-'. *numeric_tail is set when the last
 * label is all digits (then it can only be an IPv4 address). */
static bool is_dns_name(const char *s, size_t len, bool *numeric_tail)
{
    size_t label = 0;
    bool digits_only = true;

    if (len == 0 || len > TETHER_URL_MAX_HOST)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            *numeric_tail = digits_only;
            label = 0;
            digits_only = true;
            continue;
        }
        if (!syntax_is_alpha(s[i]) && !syntax_is_digit(s[i]) && s[i] != '-')
            return false;
        if (label == 0 && s[i] == '-')
            return false;
        if (!syntax_is_digit(s[i]))
            digits_only = false;
        label++;
    }
    return true;
}

static tether_status_t parse_port(const char *s, size_t len, tether_url_t *url, const char **why)
{
    unsigned value = 0;

    if (len == 0) {
        *why = "the URL has a ':' but no port after it";
        return TETHER_ERR_PARSE;
    }
    if (len > 5 || (len > 1 && s[0] == '0')) {
        *why = "the port must be a number from 1 to 65535 (no leading zeros)";
        return TETHER_ERR_PARSE;
    }
    for (size_t i = 0; i < len; i++) {
        if (!syntax_is_digit(s[i])) {
            *why = "the port must be a number from 1 to 65535";
            return TETHER_ERR_PARSE;
        }
        value = value * 10 + (unsigned)(s[i] - '0');
    }
    if (value < 1 || value > 65535) {
        *why = "the port must be a number from 1 to 65535";
        return TETHER_ERR_PARSE;
    }
    url->port = (uint16_t)value;
    return TETHER_OK;
}

static tether_status_t parse_host(const char *s, size_t len, tether_url_t *url, const char **why)
{
    bool numeric_tail = false;

    if (len == 0) {
        *why = "the URL has no host";
        return TETHER_ERR_PARSE;
    }
    if (s[0] == '[') {
        if (len < 2 || s[len - 1] != ']' || !is_ipv6(s + 1, len - 2)) {
            *why = "the host in brackets is not an IPv6 address";
            return TETHER_ERR_PARSE;
        }
        url->host_type = TETHER_URL_HOST_IPV6;
        memcpy(url->host, s + 1, len - 2);
        url->host[len - 2] = '\0';
        return TETHER_OK;
    }
    if (len > TETHER_URL_MAX_HOST) {
        *why = "the host name is longer than 253 characters";
        return TETHER_ERR_TOO_LARGE;
    }
    if (is_ipv4(s, len)) {
        url->host_type = TETHER_URL_HOST_IPV4;
    } else if (is_dns_name(s, len, &numeric_tail) && !numeric_tail) {
        url->host_type = TETHER_URL_HOST_DNS;
    } else {
        *why = "the host is neither a DNS name (letters, digits, '-' and dots) nor an IP address";
        return TETHER_ERR_PARSE;
    }
    memcpy(url->host, s, len);
    url->host[len] = '\0';
    return TETHER_OK;
}

/* RFC 3986 3.3 path-abempty, with no empty segment (except one trailing
 * '/', dropped) and no dot segment, which servers would normalise away. */
static tether_status_t parse_prefix(const char *s, size_t len, tether_url_t *url, const char **why)
{
    size_t segment = 0, dots = 0;

    if (len > 0 && s[len - 1] == '/')
        len--;
    if (len > TETHER_URL_MAX_PREFIX) {
        *why = "the URL's path is longer than 512 characters";
        return TETHER_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (i > 0 && segment == 0) {
                *why = "the URL's path has an empty segment (\"//\")";
                return TETHER_ERR_PARSE;
            }
            if (i > 0 && segment == dots && dots <= 2) {
                *why = "the URL's path has a \".\" or \"..\" segment";
                return TETHER_ERR_PARSE;
            }
            segment = dots = 0;
            continue;
        }
        if (s[i] == '%') {
            if (i + 2 >= len || tether_hex_digit(s[i + 1]) < 0 || tether_hex_digit(s[i + 2]) < 0) {
                *why = "the URL's path has a '%' not followed by two hex digits";
                return TETHER_ERR_PARSE;
            }
            i += 2;
        } else if (!syntax_is_pchar(s[i])) {
            *why = "the URL's path has a character that must be percent-encoded";
            return TETHER_ERR_PARSE;
        }
        if (s[i] == '.')
            dots++;
        segment++;
    }
    memcpy(url->prefix, s, len);
    url->prefix[len] = '\0';
    return TETHER_OK;
}

tether_status_t tether_url_parse(const char *text, size_t len, tether_url_t *url,
                                 const char **problem)
{
    const char *why = NULL;
    const char *authority, *host_end, *end;
    tether_status_t rc = TETHER_ERR_PARSE;

    if (url == NULL || (text == NULL && len > 0)) {
        why = "no URL given";
        rc = TETHER_ERR_INVALID_ARGUMENT;
        goto out;
    }
    memset(url, 0, sizeof(*url));
    if (len > TETHER_URL_MAX_LENGTH) {
        why = "the URL is longer than 1024 characters";
        rc = TETHER_ERR_TOO_LARGE;
        goto out;
    }
    /* Anything outside visible ASCII (spaces, controls, NUL, UTF-8) would
     * need encoding; a '#' or '?' has no meaning in a base URL. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= 0x20 || c >= 0x7f) {
            why = "the URL holds a space, a control or a non-ASCII character";
            goto out;
        }
        if (c == '#' || c == '?') {
            why = "a base URL may not hold a query ('?') or a fragment ('#')";
            goto out;
        }
        if (c == '\\') {
            why = "the URL holds a backslash";
            goto out;
        }
    }
    if (len < SCHEME_LEN || !syntax_equal_nocase(text, SCHEME, SCHEME_LEN)) {
        why = (len >= 7 && syntax_equal_nocase(text, "http://", 7))
                  ? "the URL must use https://, not plain http://"
                  : "the URL must start with https://";
        goto out;
    }
    authority = text + SCHEME_LEN;
    end = text + len;
    host_end = memchr(authority, '/', (size_t)(end - authority));
    if (host_end == NULL)
        host_end = end;
    if (memchr(authority, '@', (size_t)(host_end - authority)) != NULL) {
        why = "the URL may not hold a user name or password ('@')";
        goto out;
    }
    {
        const char *port_sep = NULL;
        const char *p = authority;

        if (p < host_end && *p == '[') {
            const char *close = memchr(p, ']', (size_t)(host_end - p));
            if (close == NULL) {
                why = "the URL has a '[' without its ']'";
                goto out;
            }
            if (close + 1 < host_end) {
                if (close[1] != ':') {
                    why = "only ':' and a port may follow the ']' of an IPv6 address";
                    goto out;
                }
                port_sep = close + 1;
            }
        } else {
            port_sep = memchr(p, ':', (size_t)(host_end - p));
        }
        if ((rc = parse_host(p, (size_t)((port_sep ? port_sep : host_end) - p), url, &why)) !=
            TETHER_OK)
            goto out;
        if (port_sep != NULL) {
            if ((rc = parse_port(port_sep + 1, (size_t)(host_end - port_sep - 1), url, &why)) !=
                TETHER_OK)
                goto out;
        } else {
            url->port = TETHER_URL_DEFAULT_PORT;
        }
    }
    if ((rc = parse_prefix(host_end, (size_t)(end - host_end), url, &why)) != TETHER_OK)
        goto out;
    snprintf(url->port_text, sizeof(url->port_text), "%u", (unsigned)url->port);
    snprintf(url->authority, sizeof(url->authority),
             url->host_type == TETHER_URL_HOST_IPV6 ? "[%s]:%u" : "%s:%u", url->host,
             (unsigned)url->port);
    rc = TETHER_OK;

out:
    if (rc != TETHER_OK && url != NULL)
        memset(url, 0, sizeof(*url));
    if (problem != NULL)
        *problem = rc == TETHER_OK ? NULL : why;
    return rc;
}
