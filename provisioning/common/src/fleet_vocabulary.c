/* The fleet's shared names (fleet_vocabulary.h). */
#include "tether/fleet_vocabulary.h"

#include <stdio.h>
#include <string.h>

/* Index i is role bit 1u << i. */
static const char *const role_names[TETHER_ROLE_COUNT] = {"read", "fleet", "security",
                                                           "relying-party"};

static const char *const status_names[] = {
    [TETHER_DEVICE_ALLOWED] = "allowed",       [TETHER_DEVICE_PENDING] = "pending",
    [TETHER_DEVICE_ACTIVE] = "active",         [TETHER_DEVICE_REVOKED] = "revoked",
    [TETHER_DEVICE_QUARANTINED] = "quarantined",
};

const char *tether_role_name(unsigned bit)
{
    for (unsigned i = 0; i < TETHER_ROLE_COUNT; i++) {
        if (bit == 1u << i)
            return role_names[i];
    }
    return NULL;
}

unsigned tether_role_bit(const char *name, size_t len)
{
    for (unsigned i = 0; name != NULL && i < TETHER_ROLE_COUNT; i++) {
        if (strlen(role_names[i]) == len && memcmp(role_names[i], name, len) == 0)
            return 1u << i;
    }
    return 0;
}

tether_status_t tether_roles_format(unsigned roles, char *out, size_t out_size)
{
    size_t used = 0;

    if (out == NULL || out_size == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    out[0] = '\0';
    for (unsigned i = 0; i < TETHER_ROLE_COUNT; i++) {
        int n;
        if ((roles & (1u << i)) == 0)
            continue;
        n = snprintf(out + used, out_size - used, "%s%s", used > 0 ? "," : "", role_names[i]);
        if (n < 0 || (size_t)n >= out_size - used)
            return TETHER_ERR_TOO_LARGE;
        used += (size_t)n;
    }
    return TETHER_OK;
}

tether_status_t tether_roles_parse(const char *text, unsigned *roles)
{
    unsigned set = 0;

    if (text == NULL || roles == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *roles = 0;
    while (*text != '\0') {
        size_t len = strcspn(text, ",");
        unsigned bit = tether_role_bit(text, len);
        if (bit == 0)
            return TETHER_ERR_PARSE;
        set |= bit;
        text += len;
        if (*text == ',' && *++text == '\0')
            return TETHER_ERR_PARSE;
    }
    if (set == 0)
        return TETHER_ERR_PARSE;
    *roles = set;
    return TETHER_OK;
}

const char *tether_device_status_name(tether_device_status_t status)
{
    if ((unsigned)status >= sizeof(status_names) / sizeof(status_names[0]))
        return "unknown";
    return status_names[status];
}

tether_status_t tether_device_status_parse(const char *name, tether_device_status_t *status)
{
    if (name == NULL || status == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *status = (tether_device_status_t)i;
            return TETHER_OK;
        }
    }
    return TETHER_ERR_PARSE;
}
