#include "validate.h"

#include <string.h>

#include "tether/bytes.h"
#include "tether/random.h"

#define DEVICE_ID_PREFIX "dev_"
#define DEVICE_ID_RANDOM_BYTES 12
#define ENROLLMENT_ID_PREFIX "enr_"
#define ENROLLMENT_ID_RANDOM_BYTES 16

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

/* prefix followed by lowercase hex digits, len bytes in all. */
static bool random_id_valid(const char *id, size_t len, const char *prefix, size_t expected_len)
{
    const size_t prefix_len = strlen(prefix);

    if (id == NULL || len != expected_len || memcmp(id, prefix, prefix_len) != 0)
        return false;
    for (size_t i = prefix_len; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return true;
}

/* prefix and the hex of random_len random bytes into out (out_size bytes). */
static tether_status_t random_id_new(char *out, size_t out_size, const char *prefix,
                                     size_t random_len)
{
    const size_t prefix_len = strlen(prefix);
    unsigned char random[ENROLLMENT_ID_RANDOM_BYTES];
    tether_status_t rc;

    if (out == NULL || random_len > sizeof(random) || out_size < prefix_len)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_random_bytes(random, random_len)) != TETHER_OK)
        return rc;
    memcpy(out, prefix, prefix_len);
    return tether_hex_encode(random, random_len, out + prefix_len, out_size - prefix_len);
}

bool tether_fleet_decimal_parse(const char *text, uint64_t max, uint64_t *value)
{
    uint64_t v = 0;
    size_t i = 0;

    *value = 0;
    if (text == NULL || (text[0] == '0' && text[1] != '\0'))
        return false;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        unsigned digit = (unsigned)(text[i] - '0');
        if (digit > max || v > (max - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (i == 0 || text[i] != '\0')
        return false;
    *value = v;
    return true;
}

bool tether_fleet_device_id_valid(const char *id, size_t len)
{
    return random_id_valid(id, len, DEVICE_ID_PREFIX, TETHER_STORE_DEVICE_ID_SIZE - 1);
}

tether_status_t tether_fleet_device_id_new(char out[TETHER_STORE_DEVICE_ID_SIZE])
{
    return random_id_new(out, TETHER_STORE_DEVICE_ID_SIZE, DEVICE_ID_PREFIX,
                         DEVICE_ID_RANDOM_BYTES);
}

bool tether_fleet_enrollment_id_valid(const char *id, size_t len)
{
    return random_id_valid(id, len, ENROLLMENT_ID_PREFIX, TETHER_STORE_ENROLLMENT_ID_SIZE - 1);
}

tether_status_t tether_fleet_enrollment_id_new(char out[TETHER_STORE_ENROLLMENT_ID_SIZE])
{
    return random_id_new(out, TETHER_STORE_ENROLLMENT_ID_SIZE, ENROLLMENT_ID_PREFIX,
                         ENROLLMENT_ID_RANDOM_BYTES);
}
