#include "validate.h"

#include <string.h>

#include "tether/bytes.h"
#include "tether/random.h"

#define DEVICE_ID_PREFIX "dev_"
#define DEVICE_ID_RANDOM_BYTES 12

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '@' || c == '+' || c == '-' || c == ' ';
}

bool tether_fleet_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > TETHER_STORE_NAME_MAX)
        return false;
    if (name[0] == ' ' || name[len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!name_char(name[i]))
            return false;
    }
    return true;
}

bool tether_fleet_reason_valid(const char *reason, size_t len)
{
    if (reason == NULL || len == 0 || len > TETHER_STORE_REASON_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (reason[i] < 0x20 || reason[i] > 0x7e)
            return false;
    }
    return true;
}

static bool hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

tether_status_t tether_fleet_ek_sha256_normalize(const char *hex, size_t len,
                                                 char out[TETHER_STORE_EK_SHA256_SIZE])
{
    if (hex == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len != TETHER_STORE_EK_SHA256_SIZE - 1)
        return TETHER_ERR_PARSE;
    for (size_t i = 0; i < len; i++) {
        if (!hex_digit(hex[i]))
            return TETHER_ERR_PARSE;
        out[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
    }
    out[len] = '\0';
    return TETHER_OK;
}

bool tether_fleet_device_id_valid(const char *id, size_t len)
{
    const size_t prefix = sizeof(DEVICE_ID_PREFIX) - 1;

    if (id == NULL || len != TETHER_STORE_DEVICE_ID_SIZE - 1 ||
        memcmp(id, DEVICE_ID_PREFIX, prefix) != 0)
        return false;
    for (size_t i = prefix; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return true;
}

tether_status_t tether_fleet_device_id_new(char out[TETHER_STORE_DEVICE_ID_SIZE])
{
    const size_t prefix = sizeof(DEVICE_ID_PREFIX) - 1;
    unsigned char random[DEVICE_ID_RANDOM_BYTES];
    tether_status_t rc;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_random_bytes(random, sizeof(random))) != TETHER_OK)
        return rc;
    memcpy(out, DEVICE_ID_PREFIX, prefix);
    return tether_hex_encode(random, sizeof(random), out + prefix,
                             TETHER_STORE_DEVICE_ID_SIZE - prefix);
}
