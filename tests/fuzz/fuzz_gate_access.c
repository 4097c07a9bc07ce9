/*
 * tether-gate's authorization of a request (tether_gate_access_check): the
 * Authorization header any client sends, the claims of a token the fleet
 * signed (so the checks behind the signature are reached: the identity
 * copied from sub, jti, tether.policy, tether.models and tether.sources
 * into bounded fields, revocation, the policy's bearer rule, the source
 * check) and the DPoP header.
 *
 * Input: one flags byte, then the claims up to the first NUL byte, then
 * the DPoP header (none when absent). Flags bit 0: the "Bearer" scheme
 * rather than "DPoP"; bit 1: the claims' bytes are sent as the whole
 * Authorization header instead, unsigned. The checker's caches live across
 * inputs, as in the gateway.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "access.h"
#include "revocations.h"
#include "tether/dpop.h"
#include "tether/jose.h"

#define NOW 1700000000
#define MONO 1000
#define FLEET "https://fleet.example:8443"
#define HTU "http://127.0.0.1:8480/v1/chat/completions"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private key of RFC 7515 appendix A.3 signs as the fleet, kid k1. */
static const uint8_t issuer_d[32] = {
    0x8e, 0x9b, 0x10, 0x9e, 0x71, 0x90, 0x98, 0xbf, 0x98, 0x04, 0x87, 0xdf, 0x1f, 0x5d, 0x77, 0xe9,
    0xcb, 0x29, 0x60, 0x6e, 0xbe, 0xd2, 0x26, 0x3b, 0x5f, 0x57, 0xc2, 0x13, 0xdf, 0x84, 0xf4, 0xb2,
};

static tether_gate_config_t config;
static tether_gate_fleet_keys_t keys;
static tether_gate_revocations_t revocations;
static tether_gate_access_t access;
static tether_ec_key_t issuer;

/* The unit tests' gateway (test_gate_access.c): policies "default" and
 * "scripts" (bearer allowed), one device (for the tokens issued at or
 * before 1700000000) and one token revoked. */
static void setup(void)
{
    static bool done;
    cJSON *jwks, *jwk = NULL, *page;

    if (done)
        return;
    tether_gate_config_init(&config);
    strcpy(config.fleet, FLEET);
    config.policy_count = 2;
    tether_gate_config_policy_init(&config.policies[0], "default");
    tether_gate_config_policy_init(&config.policies[1], "scripts");
    config.policies[1].allow_bearer = true;
    tether_gate_fleet_keys_init(&keys);
    tether_gate_revocations_init(&revocations);
    tether_gate_access_init(&access);
    tether_ec_key_init(&issuer);
    jwks = cJSON_CreateObject();
    if (tether_ec_key_parse_private(&issuer, issuer_d) != TETHER_OK ||
        tether_gate_fleet_keys_open(&keys, FLEET) != TETHER_OK ||
        tether_gate_revocations_open(&revocations, 64, 60) != TETHER_OK ||
        tether_gate_access_open(&access, &config, &keys, &revocations) != TETHER_OK ||
        tether_jwk_write(&issuer, &jwk) != TETHER_OK || jwks == NULL ||
        cJSON_AddStringToObject(jwk, "kid", "k1") == NULL ||
        !cJSON_AddItemToArray(cJSON_AddArrayToObject(jwks, "keys"), jwk) ||
        tether_gate_fleet_keys_set(&keys, jwks) != TETHER_OK)
        abort();
    cJSON_Delete(jwks);
    page = cJSON_Parse("{\"revocations\":[{\"seq\":1,\"device_id\":\"dev_revoked\",\"jti\":null,"
                       "\"created_at\":1700000000},{\"seq\":2,\"device_id\":\"dev_a\","
                       "\"jti\":\"revoked-jti\",\"created_at\":1700000000}],\"last_seq\":2}");
    if (page == NULL || tether_gate_revocations_apply(&revocations, page, NOW, MONO) != TETHER_OK)
        abort();
    cJSON_Delete(page);
    done = true;
}

static bool terminated(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char token[TETHER_JWS_MAX_LEN + 1], authorization[TETHER_JWS_MAX_LEN + 16];
    static char header_text[TETHER_JWS_MAX_LEN + 1], proof[TETHER_DPOP_MAX_LEN + 1];
    tether_gate_access_request_t request = {authorization, NULL, "POST", HTU};
    tether_gate_identity_t identity;
    tether_gate_refusal_t refusal;
    const uint8_t *claims, *nul;
    size_t claims_len;
    cJSON *header;

    setup();
    if (size < 1 || size > 2 * TETHER_JWS_MAX_LEN)
        return 0;
    claims = data + 1;
    nul = memchr(claims, '\0', size - 1);
    claims_len = nul != NULL ? (size_t)(nul - claims) : size - 1;
    if (nul != NULL) {
        size_t proof_len = size - 1 - claims_len - 1;
        if (proof_len > TETHER_DPOP_MAX_LEN)
            return 0;
        memcpy(proof, nul + 1, proof_len);
        proof[proof_len] = '\0';
        request.dpop = proof;
    }
    if (data[0] & 2) {
        if (claims_len > TETHER_JWS_MAX_LEN)
            return 0;
        memcpy(header_text, claims, claims_len);
        header_text[claims_len] = '\0';
        request.authorization = header_text;
    } else {
        header = cJSON_Parse("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}");
        if (header == NULL)
            abort();
        if (tether_jws_sign(header, claims, claims_len, &issuer, token, sizeof(token), NULL) !=
            TETHER_OK) {
            cJSON_Delete(header);
            return 0;
        }
        cJSON_Delete(header);
        strcpy(authorization, data[0] & 1 ? "Bearer " : "DPoP ");
        strcat(authorization, token);
    }
    if (tether_gate_access_check(&access, &request, NOW, MONO, &identity, &refusal) ==
        TETHER_OK) {
        if (identity.device[0] == '\0' || identity.jti[0] == '\0' || identity.policy[0] == '\0' ||
            !terminated(identity.device, sizeof(identity.device)) ||
            !terminated(identity.jti, sizeof(identity.jti)) ||
            !terminated(identity.jkt, sizeof(identity.jkt)) ||
            !terminated(identity.policy, sizeof(identity.policy)) ||
            !terminated(identity.models, sizeof(identity.models)) ||
            (strcmp(identity.device, "dev_revoked") == 0 && identity.iat <= 1700000000) ||
            strcmp(identity.jti, "revoked-jti") == 0 || refusal.status != 0 ||
            identity.source_count > TETHER_GATE_SOURCES_MAX)
            abort();
        /* tether.sources as read: canonical networks, strictly ascending;
         * the check against a client answers or refuses with 403. */
        for (size_t i = 1; i < identity.source_count; i++)
            if (tether_cidr_compare(&identity.sources[i - 1], &identity.sources[i]) >= 0)
                abort();
        switch (tether_gate_access_check_source(&identity, "10.1.2.3", &refusal)) {
        case TETHER_OK:
            break;
        case TETHER_ERR_VERIFY:
            if (refusal.status != 403 || identity.source_count == 0)
                abort();
            break;
        default:
            abort();
        }
    } else if ((refusal.status != 400 && refusal.status != 401 && refusal.status != 403 &&
                refusal.status != 503) ||
               refusal.error == NULL || refusal.tether_error == NULL ||
               !terminated(refusal.description, sizeof(refusal.description))) {
        abort();
    }
    return 0;
}
