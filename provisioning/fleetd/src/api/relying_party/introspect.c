#include "introspect.h"

#include <string.h>

#include "tether/bytes.h"

static const char *const reason_names[] = {
    [TETHER_INTROSPECT_ACTIVE] = "active",
    [TETHER_INTROSPECT_NO_KEYS] = "no_keys",
    [TETHER_INTROSPECT_MALFORMED] = "malformed",
    [TETHER_INTROSPECT_UNKNOWN_KEY] = "unknown_key",
    [TETHER_INTROSPECT_BAD_SIGNATURE] = "bad_signature",
    [TETHER_INTROSPECT_WRONG_ISSUER] = "wrong_issuer",
    [TETHER_INTROSPECT_EXPIRED] = "expired",
    [TETHER_INTROSPECT_NOT_YET_VALID] = "not_yet_valid",
    [TETHER_INTROSPECT_UNKNOWN_JTI] = "unknown_jti",
    [TETHER_INTROSPECT_TOKEN_REVOKED] = "token_revoked",
    [TETHER_INTROSPECT_DEVICE_NOT_ACTIVE] = "device_not_active",
};

/* The claims an active answer repeats (RFC 7662 section 2.2, RFC 9068). */
static const char *const answer_claims[] = {
    "iss", "sub", "aud", "client_id", "scope", "exp", "iat", "nbf", "jti", "cnf", "tether",
};

const char *tether_introspect_reason_name(tether_introspect_reason_t reason)
{
    if ((unsigned)reason >= sizeof(reason_names) / sizeof(reason_names[0]))
        return "unknown";
    return reason_names[reason];
}

void tether_introspect_result_clear(tether_introspect_result_t *result)
{
    if (result == NULL)
        return;
    cJSON_Delete(result->claims);
    memset(result, 0, sizeof(*result));
}

/* What the verifier's refusal means here. */
static tether_introspect_reason_t reason_of(tether_status_t rc)
{
    switch (rc) {
    case TETHER_ERR_UNKNOWN_KEY:
        return TETHER_INTROSPECT_UNKNOWN_KEY;
    case TETHER_ERR_VERIFY:
        return TETHER_INTROSPECT_BAD_SIGNATURE;
    case TETHER_ERR_WRONG_ISSUER:
        return TETHER_INTROSPECT_WRONG_ISSUER;
    case TETHER_ERR_EXPIRED:
        return TETHER_INTROSPECT_EXPIRED;
    case TETHER_ERR_NOT_YET_VALID:
        return TETHER_INTROSPECT_NOT_YET_VALID;
    default: /* PARSE, TOO_LARGE, UNSUPPORTED (alg none, crit): not an access token */
        return TETHER_INTROSPECT_MALFORMED;
    }
}

/* Copies a string claim for the log, keeping printable ASCII only. */
static void copy_for_log(char *out, size_t size, const cJSON *item)
{
    const char *text = cJSON_IsString(item) && item->valuestring != NULL ? item->valuestring : "";
    size_t i = 0;

    for (; text[i] != '\0' && i + 1 < size; i++)
        out[i] = (text[i] > 0x20 && text[i] < 0x7f) ? text[i] : '?';
    out[i] = '\0';
}

/* Steps 1 and 2: the signature and the times. */
static tether_status_t verify(const tether_introspect_keys_t *keys, const char *token, size_t len,
                              int64_t now, tether_introspect_result_t *result)
{
    tether_jwt_keyset_t set = {NULL, 0};
    tether_jwt_expect_t expect;
    const char *issuer = NULL;
    const cJSON *exp;
    tether_status_t rc;

    if (keys == NULL || keys->acquire == NULL ||
        keys->acquire(keys->arg, now, &set, &issuer) != TETHER_OK) {
        result->reason = TETHER_INTROSPECT_NO_KEYS;
        return TETHER_OK;
    }
    if (set.count == 0 || issuer == NULL) {
        result->reason = TETHER_INTROSPECT_NO_KEYS;
        goto out;
    }
    memset(&expect, 0, sizeof(expect));
    expect.issuer = issuer;
    expect.audience = TETHER_JWT_ANY_AUDIENCE;
    expect.now = now;
    expect.leeway = TETHER_INTROSPECT_LEEWAY;
    rc = tether_jwt_verify(token, len, &set, &expect, &result->claims);
    if (rc == TETHER_ERR_NO_MEMORY || rc == TETHER_ERR_INVALID_ARGUMENT ||
        rc == TETHER_ERR_CRYPTO) {
        /* No decision: the fault is ours (or the key set's), not the token's. */
        if (keys->release != NULL)
            keys->release(keys->arg);
        return rc;
    }
    if (rc != TETHER_OK) {
        result->reason = reason_of(rc);
        goto out;
    }
    /* The leeway above is for iat and nbf; expiry is the issuer's own
     * clock, strictly (RFC 7519 4.1.4). exp was checked to be an integer. */
    exp = cJSON_GetObjectItemCaseSensitive(result->claims, "exp");
    if (now >= (int64_t)exp->valuedouble)
        result->reason = TETHER_INTROSPECT_EXPIRED;
out:
    if (keys->release != NULL)
        keys->release(keys->arg);
    return TETHER_OK;
}

tether_status_t tether_introspect_token(tether_store_t *store, const tether_introspect_keys_t *keys,
                                        const char *token, size_t len, int64_t now,
                                        tether_introspect_result_t *result)
{
    tether_store_token_state_t state;
    const cJSON *jti, *sub;
    tether_status_t rc;

    if (result == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(result, 0, sizeof(*result));
    if (store == NULL || (token == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len == 0 || len > TETHER_JWS_MAX_LEN) {
        result->reason = TETHER_INTROSPECT_MALFORMED;
        return TETHER_OK;
    }
    if ((rc = verify(keys, token, len, now, result)) != TETHER_OK ||
        result->reason != TETHER_INTROSPECT_ACTIVE)
        goto out;
    /* Signed by the fleet from here on: jti and sub are strings (checked by
     * tether_jwt_verify). */
    jti = cJSON_GetObjectItemCaseSensitive(result->claims, "jti");
    sub = cJSON_GetObjectItemCaseSensitive(result->claims, "sub");
    copy_for_log(result->jti, sizeof(result->jti), jti);
    copy_for_log(result->device_id, sizeof(result->device_id), sub);
    rc = tether_store_token_state(store, jti->valuestring, &state);
    if (rc == TETHER_ERR_NOT_FOUND) {
        result->reason = TETHER_INTROSPECT_UNKNOWN_JTI;
        rc = TETHER_OK;
        goto out;
    }
    if (rc != TETHER_OK)
        goto out;
    result->device_status = state.device_status;
    if (strcmp(state.device_id, sub->valuestring) != 0)
        result->reason = TETHER_INTROSPECT_UNKNOWN_JTI;
    else if (state.revoked)
        result->reason = TETHER_INTROSPECT_TOKEN_REVOKED;
    else if (state.device_status != TETHER_DEVICE_ACTIVE)
        result->reason = TETHER_INTROSPECT_DEVICE_NOT_ACTIVE;
out:
    if (rc != TETHER_OK || result->reason != TETHER_INTROSPECT_ACTIVE) {
        cJSON_Delete(result->claims);
        result->claims = NULL;
    }
    return rc;
}

cJSON *tether_introspect_answer(const tether_introspect_result_t *result)
{
    cJSON *json = cJSON_CreateObject();
    bool active = result != NULL && result->reason == TETHER_INTROSPECT_ACTIVE &&
                  result->claims != NULL;

    if (json == NULL || cJSON_AddBoolToObject(json, "active", active) == NULL)
        goto fail;
    if (!active)
        return json;
    for (size_t i = 0; i < sizeof(answer_claims) / sizeof(answer_claims[0]); i++) {
        const cJSON *claim = cJSON_GetObjectItemCaseSensitive(result->claims, answer_claims[i]);
        cJSON *copy;

        if (claim == NULL)
            continue;
        if ((copy = cJSON_Duplicate(claim, true)) == NULL)
            goto fail;
        if (!cJSON_AddItemToObject(json, answer_claims[i], copy)) {
            cJSON_Delete(copy);
            goto fail;
        }
    }
    if (cJSON_AddStringToObject(json, "token_type", "Bearer") != NULL)
        return json;
fail:
    cJSON_Delete(json);
    return NULL;
}
