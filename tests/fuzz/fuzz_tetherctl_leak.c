/*
 * tetherctl revoke-leaked's check of each candidate token found in a
 * leaked text (ctl_leak_check, after tether_secret_token_find_jwts): the
 * text is anyone's (a log, a paste). The first byte picks what the rest is:
 *   0: the leaked text itself, every candidate checked;
 *   1: the claims of a token signed with the fleet's key (kid k1), so the
 *      claim checks behind the signature are reached.
 * A verdict's fields stay within their bounds and printable; only a token
 * the fleet's key signed can be "ours".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/jose.h"
#include "tether/secret_token.h"
#include "tetherctl.h"

#define ISSUER "https://fleet.example:8443"
#define SPANS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private key of RFC 7515 appendix A.3 signs as the fleet. */
static const uint8_t fleet_d[32] = {
    0x8e, 0x9b, 0x10, 0x9e, 0x71, 0x90, 0x98, 0xbf, 0x98, 0x04, 0x87, 0xdf, 0x1f, 0x5d, 0x77, 0xe9,
    0xcb, 0x29, 0x60, 0x6e, 0xbe, 0xd2, 0x26, 0x3b, 0x5f, 0x57, 0xc2, 0x13, 0xdf, 0x84, 0xf4, 0xb2,
};

static tether_ec_key_t fleet;
static tether_jwt_key_t fleet_keys[1];
static const tether_jwt_keyset_t keyset = {fleet_keys, 1};

static void setup(void)
{
    static bool done;

    if (done)
        return;
    tether_ec_key_init(&fleet);
    if (tether_ec_key_parse_private(&fleet, fleet_d) != TETHER_OK)
        abort();
    fleet_keys[0].kid = "k1";
    fleet_keys[0].key = &fleet;
    done = true;
}

static bool printable(const char *field, size_t size)
{
    const char *end = memchr(field, '\0', size);

    if (end == NULL)
        return false;
    for (const char *p = field; p < end; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

static void check(const char *token, size_t len, bool signed_by_fleet)
{
    ctl_leak_token_t out;

    memset(&out, 0xa5, sizeof(out));
    ctl_leak_check(token, len, &keyset, ISSUER, &out);
    if (!printable(out.prefix, sizeof(out.prefix)) || !printable(out.jti, sizeof(out.jti)) ||
        !printable(out.device_id, sizeof(out.device_id)) || !printable(out.why, sizeof(out.why)) ||
        (out.verdict == CTL_LEAK_OURS && (!signed_by_fleet || out.device_id[0] == '\0')))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char token[TETHER_JWS_MAX_LEN + 1];
    tether_token_span_t spans[SPANS];
    size_t count = 0, len = 0;
    cJSON *header;

    setup();
    if (size < 1 || size > 4 * TETHER_JWS_MAX_LEN)
        return 0;
    if (data[0] == 0) {
        (void)tether_secret_token_find_jwts((const char *)data + 1, size - 1, spans, SPANS,
                                            &count);
        for (size_t i = 0; i < count; i++)
            check((const char *)data + 1 + spans[i].offset, spans[i].len, false);
        return 0;
    }
    header = cJSON_Parse("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}");
    if (header == NULL)
        abort();
    if (tether_jws_sign(header, data + 1, size - 1, &fleet, token, sizeof(token), &len) ==
        TETHER_OK)
        check(token, len, true);
    cJSON_Delete(header);
    return 0;
}
