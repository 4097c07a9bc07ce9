/*
 * DPoP proof verification (tether_dpop_verify) on untrusted input. The first
 * byte picks what the rest is:
 *   0: a whole proof, as the DPoP header of a request brings it;
 *   1: the claims (payload bytes) of a proof that the fuzzer signs with the
 *      bound key, so the claim checks behind the signature are reached;
 *   2: an htu for tether_dpop_htu_normalize.
 * Beyond memory errors (the sanitizers), it checks that a correctly signed
 * proof never fails on its signature or key, that a refusal always names a
 * failure, and that a normalised htu normalises to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/dpop.h"
#include "tether/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private key of RFC 7515 appendix A.3, so seeds can be made elsewhere. */
static const uint8_t device_d[32] = {
    0x8e, 0x9b, 0x10, 0x9e, 0x71, 0x90, 0x98, 0xbf, 0x98, 0x04, 0x87, 0xdf, 0x1f, 0x5d, 0x77, 0xe9,
    0xcb, 0x29, 0x60, 0x6e, 0xbe, 0xd2, 0x26, 0x3b, 0x5f, 0x57, 0xc2, 0x13, 0xdf, 0x84, 0xf4, 0xb2,
};

static tether_ec_key_t device;
static cJSON *header;
static char jkt[TETHER_JWK_THUMBPRINT_SIZE];
static tether_dpop_expect_t expect;

static void setup(void)
{
    static int done;
    cJSON *jwk = NULL;

    if (done)
        return;
    tether_ec_key_init(&device);
    if (tether_ec_key_parse_private(&device, device_d) != TETHER_OK ||
        tether_jwk_thumbprint_key(&device, jkt, sizeof(jkt)) != TETHER_OK ||
        tether_jwk_write(&device, &jwk) != TETHER_OK || (header = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(header, "typ", "dpop+jwt") == NULL ||
        cJSON_AddStringToObject(header, "alg", "ES256") == NULL ||
        !cJSON_AddItemToObject(header, "jwk", jwk))
        abort();
    expect.htm = "POST";
    expect.htu = "https://gate.example/v1/chat/completions";
    expect.access_token = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln";
    expect.access_token_len = strlen(expect.access_token);
    expect.jkt = jkt;
    expect.now = 1700000000;
    expect.max_age = 60;
    expect.leeway = 5;
    done = 1;
}

static void verify(const char *proof, size_t len, int signed_by_device)
{
    tether_dpop_result_t result;
    tether_dpop_failure_t failure;
    char why[128];
    tether_status_t rc = tether_dpop_verify(proof, len, &expect, &result, &failure, why,
                                            sizeof(why));

    if (rc == TETHER_OK && (failure != TETHER_DPOP_OK || result.jti[0] == '\0'))
        abort();
    if (rc != TETHER_OK && (rc != TETHER_ERR_VERIFY || failure == TETHER_DPOP_OK))
        abort();
    if (signed_by_device &&
        (failure == TETHER_DPOP_BAD_SIGNATURE || failure == TETHER_DPOP_WRONG_KEY ||
         failure == TETHER_DPOP_BAD_KEY || failure == TETHER_DPOP_WRONG_TYPE))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char proof[TETHER_DPOP_MAX_LEN + 1];
    char once[TETHER_DPOP_HTU_MAX + 1], twice[TETHER_DPOP_HTU_MAX + 1];
    size_t len = 0;

    setup();
    if (size == 0)
        return 0;
    switch (data[0]) {
    case 0:
        verify((const char *)data + 1, size - 1, 0);
        break;
    case 1:
        if (tether_jws_sign(header, data + 1, size - 1, &device, proof, sizeof(proof), &len) ==
            TETHER_OK)
            verify(proof, len, 1);
        break;
    case 2:
        if (tether_dpop_htu_normalize((const char *)data + 1, size - 1, once, sizeof(once)) ==
            TETHER_OK) {
            if (tether_dpop_htu_normalize(once, strlen(once), twice, sizeof(twice)) != TETHER_OK ||
                strcmp(once, twice) != 0)
                abort();
        }
        break;
    default:
        break;
    }
    return 0;
}
