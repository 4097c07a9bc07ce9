/*
 * The fleet base URL parser. Whatever it accepts is consistent (bounded
 * host, port in range, prefix without trailing '/', authority matching the
 * parts) and survives a round trip: the URL rebuilt from the parts parses
 * to the same parts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_url_t url, again;
    const char *problem = NULL;
    char text[TETHER_URL_MAX_LENGTH + 64], expected[sizeof(url.authority)];
    size_t host_len, prefix_len;
    int n;

    if (tether_url_parse((const char *)data, size, &url, &problem) != TETHER_OK) {
        if (problem == NULL || url.host[0] != '\0' || url.port != 0)
            abort();
        return 0;
    }
    host_len = strnlen(url.host, sizeof(url.host));
    prefix_len = strnlen(url.prefix, sizeof(url.prefix));
    if (problem != NULL || host_len == 0 || host_len > TETHER_URL_MAX_HOST || url.port == 0 ||
        prefix_len > TETHER_URL_MAX_PREFIX ||
        (prefix_len > 0 && (url.prefix[0] != '/' || url.prefix[prefix_len - 1] == '/')))
        abort();
    if (url.host_type != TETHER_URL_HOST_DNS && url.host_type != TETHER_URL_HOST_IPV4 &&
        url.host_type != TETHER_URL_HOST_IPV6)
        abort();
    snprintf(expected, sizeof(expected),
             url.host_type == TETHER_URL_HOST_IPV6 ? "[%s]:%u" : "%s:%u", url.host,
             (unsigned)url.port);
    if (strcmp(expected, url.authority) != 0 || (unsigned)atoi(url.port_text) != url.port)
        abort();
    /* Nothing that could split a request line or a header survives. */
    for (size_t i = 0; i < sizeof(url.authority) && url.authority[i] != '\0'; i++) {
        if (url.authority[i] <= ' ' || url.authority[i] == '@' || url.authority[i] == '/')
            abort();
    }
    for (size_t i = 0; i < prefix_len; i++) {
        if (url.prefix[i] <= ' ' || url.prefix[i] == '?' || url.prefix[i] == '#')
            abort();
    }

    n = snprintf(text, sizeof(text), "https://%s%s", url.authority, url.prefix);
    if (n < 0 || (size_t)n >= sizeof(text))
        abort();
    if (tether_url_parse(text, (size_t)n, &again, &problem) != TETHER_OK ||
        memcmp(&url, &again, sizeof(url)) != 0)
        abort();
    return 0;
}
