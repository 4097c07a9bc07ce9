/*
 * JWK parsing and thumbprints on untrusted JSON (a DPoP proof's "jwk"
 * header, a JWKS document). When a JWK parses as a P-256 key, writing the key
 * back and thumbprinting it must give the thumbprint of the input: x and y
 * have exactly one accepted encoding.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char from_json[TETHER_JWK_THUMBPRINT_SIZE], from_key[TETHER_JWK_THUMBPRINT_SIZE];
    tether_ec_key_t pk;
    cJSON *jwk, *written = NULL;
    tether_status_t thumbprint_rc;

    if (size > 16384)
        return 0;
    jwk = cJSON_ParseWithLength((const char *)data, size);
    if (jwk == NULL)
        return 0;
    thumbprint_rc = tether_jwk_thumbprint(jwk, from_json, sizeof(from_json));
    if (thumbprint_rc == TETHER_OK && strlen(from_json) != TETHER_JWK_THUMBPRINT_SIZE - 1)
        abort();
    tether_ec_key_init(&pk);
    if (tether_jwk_parse(jwk, &pk) == TETHER_OK) {
        if (thumbprint_rc != TETHER_OK)
            abort();
        if (tether_jwk_thumbprint_key(&pk, from_key, sizeof(from_key)) != TETHER_OK ||
            strcmp(from_json, from_key) != 0)
            abort();
        if (tether_jwk_write(&pk, &written) != TETHER_OK)
            abort();
        cJSON_Delete(written);
    } else if (tether_ec_key_is_set(&pk)) {
        abort(); /* a failed parse leaves pk empty */
    }
    tether_ec_key_free(&pk);
    cJSON_Delete(jwk);
    return 0;
}
