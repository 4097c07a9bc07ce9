/*
 * fleetd's numbers in paths and queries (tether_fleet_decimal_parse, e.g.
 * the revocation feed's after) on arbitrary bytes: a number is accepted
 * exactly when it is written the one canonical way and is within the bound,
 * and then it reads back as the same text.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The same rule, written another way (strtoull), to compare with. */
static bool canonical(const char *text, uint64_t max)
{
    unsigned long long value;
    char *end = NULL;
    size_t len = strlen(text);

    if (len == 0 || len > 20 || strspn(text, "0123456789") != len ||
        (text[0] == '0' && len > 1))
        return false;
    errno = 0;
    value = strtoull(text, &end, 10);
    return errno == 0 && *end == '\0' && value <= max;
}

static void check(const char *text, uint64_t max)
{
    uint64_t value = 1;
    char again[32];
    bool ok = tether_fleet_decimal_parse(text, max, &value);

    if (ok != canonical(text, max))
        abort();
    if (!ok) {
        if (value != 0)
            abort(); /* set on entry */
        return;
    }
    snprintf(again, sizeof(again), "%" PRIu64, value);
    if (value > max || strcmp(again, text) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[64];

    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check(text, UINT64_MAX);
    check(text, 1ULL << 53);
    check(text, 30);
    check(text, 0);
    return 0;
}
