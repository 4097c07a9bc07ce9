/*
 * JWS and access-token verification on untrusted input. The first byte picks
 * what the rest is:
 *   0: a whole token, as a relying party receives it (tether_jwt_verify and
 *      tether_jws_verify);
 *   1: the claims (payload bytes) of a token that the fuzzer signs with the
 *      trusted key, so the claim checks behind the signature are reached;
 *   2: the protected header text of a token signed with the trusted key.
 * Beyond memory errors (the sanitizers), it checks that a correctly signed
 * token never fails as a bad signature, and that results are consistent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/base64url.h"
#include "tether/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private key of RFC 7515 appendix A.3, so seeds can be made elsewhere. */
static const uint8_t issuer_d[32] = {
    0x8e, 0x9b, 0x10, 0x9e, 0x71, 0x90, 0x98, 0xbf, 0x98, 0x04, 0x87, 0xdf, 0x1f, 0x5d, 0x77, 0xe9,
    0xcb, 0x29, 0x60, 0x6e, 0xbe, 0xd2, 0x26, 0x3b, 0x5f, 0x57, 0xc2, 0x13, 0xdf, 0x84, 0xf4, 0xb2,
};

static const char valid_claims[] =
    "{\"iss\":\"https://fleet.example.com\",\"sub\":\"device-0001\",\"aud\":\"tether-gate\","
    "\"client_id\":\"tether-agent\",\"jti\":\"1\",\"iat\":1700000000,\"exp\":1700000300}";

static tether_ec_key_t issuer;
static tether_jwt_key_t trusted[1];
static const tether_jwt_keyset_t keyset = {trusted, 1};
static const tether_jwt_expect_t expect = {"https://fleet.example.com", "tether-gate", 1700000000,
                                           TETHER_JWT_DEFAULT_LEEWAY};

static void setup(void)
{
    static int done;

    if (done)
        return;
    tether_ec_key_init(&issuer);
    if (tether_ec_key_parse_private(&issuer, issuer_d) != TETHER_OK)
        abort();
    trusted[0].kid = "k1";
    trusted[0].key = &issuer;
    done = 1;
}

/* BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature). */
static size_t sign_raw(const uint8_t *header, size_t header_len, const uint8_t *payload,
                       size_t payload_len, char *out, size_t out_size)
{
    uint8_t digest[32], sig[64];
    size_t n = 0, m = 0;

    if (tether_base64url_encode(header, header_len, out, out_size, &n) != TETHER_OK || n + 1 >= out_size)
        return 0;
    out[n++] = '.';
    if (tether_base64url_encode(payload, payload_len, out + n, out_size - n, &m) != TETHER_OK)
        return 0;
    n += m;
    if (n + 1 + 87 > out_size)
        return 0;
    if (tether_sha256(out, n, digest) != TETHER_OK ||
        tether_ec_sign_digest(&issuer, digest, sig) != TETHER_OK)
        abort();
    out[n++] = '.';
    if (tether_base64url_encode(sig, sizeof(sig), out + n, out_size - n, &m) != TETHER_OK)
        abort();
    return n + m;
}

static tether_status_t verify(const char *token, size_t len)
{
    cJSON *claims = NULL;
    tether_status_t rc = tether_jwt_verify(token, len, &keyset, &expect, &claims);

    if ((rc == TETHER_OK) != (claims != NULL))
        abort();
    cJSON_Delete(claims);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char token[2 * TETHER_JWS_MAX_LEN];
    static uint8_t payload[TETHER_JWS_MAX_LEN];
    tether_status_t rc;
    size_t len = 0;

    setup();
    if (size == 0)
        return 0;
    switch (data[0]) {
    case 0: {
        cJSON *header = NULL;
        (void)verify((const char *)data + 1, size - 1);
        rc = tether_jws_verify((const char *)data + 1, size - 1, &issuer, &header, payload,
                               sizeof(payload), &len);
        if ((rc == TETHER_OK) != (header != NULL))
            abort();
        cJSON_Delete(header);
        break;
    }
    case 1: {
        static const char header[] = "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}";
        len = sign_raw((const uint8_t *)header, strlen(header), data + 1, size - 1, token,
                       sizeof(token));
        if (len == 0)
            break;
        rc = verify(token, len);
        if (len <= TETHER_JWS_MAX_LEN &&
            (rc == TETHER_ERR_VERIFY || rc == TETHER_ERR_UNKNOWN_KEY || rc == TETHER_ERR_UNSUPPORTED))
            abort(); /* the signature and header are right: only the claims may fail */
        break;
    }
    case 2:
        len = sign_raw(data + 1, size - 1, (const uint8_t *)valid_claims, strlen(valid_claims), token,
                       sizeof(token));
        if (len == 0)
            break;
        rc = verify(token, len);
        if (rc == TETHER_ERR_VERIFY)
            abort(); /* only k1 is trusted, and k1 signed */
        break;
    default:
        break;
    }
    return 0;
}
