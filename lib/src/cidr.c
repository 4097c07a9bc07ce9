/* IP networks in their canonical CIDR text (cidr.h). */
#include "tether/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static bool host_bits_zero(const tether_cidr_t *c)
{
    unsigned bytes = c->family == AF_INET ? 4 : 16;

    for (unsigned i = 0; i < bytes; i++) {
        unsigned bit = i * 8;
        unsigned keep = c->prefix >= bit + 8 ? 8 : c->prefix > bit ? c->prefix - bit : 0;

        if (keep < 8 && (c->address[i] & (0xffu >> keep)) != 0)
            return false;
    }
    return true;
}

tether_status_t tether_cidr_parse(const char *text, tether_cidr_t *cidr, char *why,
                                  size_t why_size)
{
    char address[TETHER_CIDR_TEXT_SIZE], again[INET6_ADDRSTRLEN];
    const char *slash, *digits;
    unsigned prefix = 0, max;
    size_t len;
    tether_status_t rc = TETHER_ERR_PARSE;

    if (cidr != NULL)
        memset(cidr, 0, sizeof(*cidr));
    if (text == NULL || cidr == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = strlen(text);
    if (len >= sizeof(address)) {
        tether_explain(rc, why, why_size, "%.60s... is longer than a network", text);
        goto out;
    }
    memcpy(address, text, len + 1);
    if ((slash = strchr(text, '/')) == NULL) {
        tether_explain(rc, why, why_size, "%s has no /prefix", text);
        goto out;
    }
    address[slash - text] = '\0';
    cidr->family = strchr(address, ':') != NULL ? AF_INET6 : AF_INET;
    max = cidr->family == AF_INET ? 32 : 128;
    if (inet_pton(cidr->family, address, cidr->address) != 1 ||
        inet_ntop(cidr->family, cidr->address, again, sizeof(again)) == NULL ||
        strcmp(again, address) != 0) {
        tether_explain(rc, why, why_size, "%s is not an address in its canonical form", address);
        goto out;
    }
    digits = slash + 1;
    if (digits[0] == '\0' || strspn(digits, "0123456789") != strlen(digits) ||
        strlen(digits) > 3 || (digits[0] == '0' && digits[1] != '\0')) {
        tether_explain(rc, why, why_size, "%s has a prefix that is not a plain number", address);
        goto out;
    }
    for (; *digits != '\0'; digits++)
        prefix = prefix * 10 + (unsigned)(*digits - '0');
    if (prefix > max) {
        tether_explain(rc, why, why_size, "%s has a prefix above %u", address, max);
        goto out;
    }
    cidr->prefix = prefix;
    if (!host_bits_zero(cidr)) {
        tether_explain(rc, why, why_size, "%s/%u has host bits set", address, prefix);
        goto out;
    }
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK)
        memset(cidr, 0, sizeof(*cidr));
    return rc;
}

tether_status_t tether_cidr_format(const tether_cidr_t *cidr, char *out, size_t size)
{
    char address[INET6_ADDRSTRLEN];
    int n;

    if (out != NULL && size > 0)
        out[0] = '\0';
    if (cidr == NULL || out == NULL || (cidr->family != AF_INET && cidr->family != AF_INET6))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (inet_ntop(cidr->family, cidr->address, address, sizeof(address)) == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(out, size, "%s/%u", address, cidr->prefix);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            out[0] = '\0';
        return TETHER_ERR_TOO_LARGE;
    }
    return TETHER_OK;
}

int tether_cidr_compare(const tether_cidr_t *a, const tether_cidr_t *b)
{
    int c;

    if (a->family != b->family)
        return a->family == AF_INET ? -1 : 1;
    if ((c = memcmp(a->address, b->address, sizeof(a->address))) != 0)
        return c < 0 ? -1 : 1;
    return a->prefix < b->prefix ? -1 : a->prefix > b->prefix;
}

bool tether_cidr_contains(const tether_cidr_t *network, int family, const uint8_t *address)
{
    unsigned full, rest;

    if (family != network->family)
        return false;
    full = network->prefix / 8;
    rest = network->prefix % 8;
    if (memcmp(network->address, address, full) != 0)
        return false;
    return rest == 0 ||
           ((network->address[full] ^ address[full]) & (uint8_t)(0xffu << (8 - rest))) == 0;
}

bool tether_cidr_list_allows(const tether_cidr_t *list, size_t count, const char *address)
{
    uint8_t bytes[16];
    int family = AF_INET;

    if (count == 0)
        return true;
    if (address == NULL)
        return false;
    if (inet_pton(AF_INET, address, bytes) != 1) {
        family = AF_INET6;
        if (inet_pton(AF_INET6, address, bytes) != 1)
            return false;
    }
    for (size_t i = 0; i < count; i++)
        if (tether_cidr_contains(&list[i], family, bytes))
            return true;
    return false;
}
