/* Who may pass (access.h). */
#include "access.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/random.h"

#define JKT_LEN (TETHER_JWK_THUMBPRINT_SIZE - 1)

void tether_gate_access_init(tether_gate_access_t *access)
{
    if (access == NULL)
        return;
    memset(access, 0, sizeof(*access));
    tether_gate_table_init(&access->tokens);
    tether_gate_table_init(&access->replay);
}

tether_status_t tether_gate_access_open(tether_gate_access_t *access,
                                        const tether_gate_config_t *config,
                                        tether_gate_fleet_keys_t *keys,
                                        tether_gate_revocations_t *revocations)
{
    tether_status_t rc;

    if (access == NULL || config == NULL || keys == NULL || revocations == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    access->config = config;
    access->keys = keys;
    access->revocations = revocations;
    if ((rc = tether_gate_table_open(&access->tokens, config->token_cache_entries,
                                     sizeof(tether_gate_identity_t))) != TETHER_OK ||
        (rc = tether_gate_table_open(&access->replay, config->replay_cache_entries, 0)) !=
            TETHER_OK)
        return rc;
    return tether_random_bytes(access->nonce_key, sizeof(access->nonce_key));
}

void tether_gate_access_free(tether_gate_access_t *access)
{
    if (access == NULL)
        return;
    tether_gate_table_free(&access->tokens);
    tether_gate_table_free(&access->replay);
    tether_wipe(access->nonce_key, sizeof(access->nonce_key));
    memset(access, 0, sizeof(*access));
}

tether_status_t tether_gate_access_nonce(tether_gate_access_t *access, int64_t now, char *out,
                                         size_t out_size)
{
    uint8_t nonce[TETHER_NONCE_SIZE];
    tether_status_t rc;

    if (access == NULL || out == NULL || now < 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_nonce_issue(access->nonce_key, sizeof(access->nonce_key), (uint64_t)now,
                                 TETHER_GATE_NONCE_TTL, nonce)) != TETHER_OK)
        return rc;
    return tether_base64url_encode(nonce, sizeof(nonce), out, out_size, NULL);
}

static tether_status_t refuse(tether_gate_refusal_t *refusal, unsigned status, const char *error,
                              const char *tether_error, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static tether_status_t refuse(tether_gate_refusal_t *refusal, unsigned status, const char *error,
                              const char *tether_error, const char *fmt, ...)
{
    va_list ap;

    refusal->status = status;
    refusal->error = error;
    refusal->tether_error = tether_error;
    va_start(ap, fmt);
    vsnprintf(refusal->description, sizeof(refusal->description), fmt, ap);
    va_end(ap);
    return TETHER_ERR_VERIFY;
}

/* ---- the Authorization header ----------------------------------------- */

/* RFC 9110 section 11.2 token68. */
static bool is_token68(const char *text, size_t len)
{
    size_t i = 0;

    for (; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'))
            break;
    }
    if (i == 0)
        return false;
    while (i < len && text[i] == '=')
        i++;
    return i == len;
}

/* Splits "SCHEME token" into the scheme's kind and the token. */
static tether_status_t parse_authorization(const char *header, bool *bearer, const char **token,
                                           size_t *token_len, tether_gate_refusal_t *refusal)
{
    size_t scheme_len;

    *bearer = false;
    *token = NULL;
    *token_len = 0;
    if (header == NULL)
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN, TETHER_GATE_TOKEN_MISSING,
                      "send the access token as \"Authorization: DPoP <token>\" with a DPoP proof");
    scheme_len = strcspn(header, " ");
    if (scheme_len == 4 && strncasecmp(header, "DPoP", 4) == 0)
        *bearer = false;
    else if (scheme_len == 6 && strncasecmp(header, "Bearer", 6) == 0)
        *bearer = true;
    else
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_REQUEST, TETHER_GATE_TOKEN_MALFORMED,
                      "the Authorization scheme must be DPoP");
    if (header[scheme_len] != ' ' || (*token_len = strlen(header + scheme_len + 1)) == 0 ||
        *token_len > TETHER_JWS_MAX_LEN || !is_token68(header + scheme_len + 1, *token_len)) {
        *token_len = 0;
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_REQUEST, TETHER_GATE_TOKEN_MALFORMED,
                      "the Authorization header is not \"DPoP <token>\"");
    }
    *token = header + scheme_len + 1;
    return TETHER_OK;
}

/* ---- the access token ------------------------------------------------- */

static const char *token_code(tether_status_t rc)
{
    switch (rc) {
    case TETHER_ERR_UNSUPPORTED:
        return TETHER_GATE_TOKEN_UNSUPPORTED;
    case TETHER_ERR_VERIFY:
        return TETHER_GATE_TOKEN_BAD_SIGNATURE;
    case TETHER_ERR_UNKNOWN_KEY:
        return TETHER_GATE_TOKEN_UNKNOWN_KEY;
    case TETHER_ERR_EXPIRED:
        return TETHER_GATE_TOKEN_EXPIRED;
    case TETHER_ERR_NOT_YET_VALID:
        return TETHER_GATE_TOKEN_NOT_YET_VALID;
    case TETHER_ERR_WRONG_ISSUER:
        return TETHER_GATE_TOKEN_WRONG_ISSUER;
    case TETHER_ERR_WRONG_AUDIENCE:
        return TETHER_GATE_TOKEN_WRONG_AUDIENCE;
    default:
        return TETHER_GATE_TOKEN_INVALID;
    }
}

static bool copy_string(const cJSON *item, char *out, size_t out_size)
{
    const char *value = cJSON_GetStringValue(item);
    size_t n;

    if (value == NULL || (n = strlen(value)) == 0 || n >= out_size)
        return false;
    memcpy(out, value, n + 1);
    return true;
}

/* A NumericDate an int64_t holds exactly. */
static bool is_time(const cJSON *item)
{
    return cJSON_IsNumber(item) && item->valuedouble >= 0 &&
           item->valuedouble <= 9007199254740991.0;
}

/* tether.sources, when present: 1 to TETHER_GATE_SOURCES_MAX networks in
 * their canonical text, strictly ascending, as the fleet writes them from
 * its policy. Anything else makes the token invalid here: a claim that
 * narrows where the token may be used is never half read. */
static bool sources_from_claim(const cJSON *sources, tether_gate_identity_t *identity)
{
    const cJSON *item;

    if (sources == NULL)
        return true;
    if (!cJSON_IsArray(sources) || sources->child == NULL)
        return false;
    cJSON_ArrayForEach(item, sources)
    {
        tether_cidr_t *c = &identity->sources[identity->source_count];
        const char *text = cJSON_GetStringValue(item);

        if (text == NULL || identity->source_count == TETHER_GATE_SOURCES_MAX ||
            tether_cidr_parse(text, c, NULL, 0) != TETHER_OK ||
            (identity->source_count > 0 && tether_cidr_compare(c - 1, c) >= 0))
            return false;
        identity->source_count++;
    }
    return true;
}

/* The identity a verified token's claims give; false when a claim the
 * gateway needs is missing or over its bound. */
static bool identity_from_claims(const cJSON *claims, tether_gate_identity_t *identity)
{
    const cJSON *cnf = cJSON_GetObjectItemCaseSensitive(claims, "cnf");
    const cJSON *tether = cJSON_GetObjectItemCaseSensitive(claims, "tether");
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(tether, "models"), *model;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(claims, "iat");
    size_t o = 0;

    if (!copy_string(cJSON_GetObjectItemCaseSensitive(claims, "sub"), identity->device,
                     sizeof(identity->device)) ||
        !copy_string(cJSON_GetObjectItemCaseSensitive(claims, "jti"), identity->jti,
                     sizeof(identity->jti)) ||
        !copy_string(cJSON_GetObjectItemCaseSensitive(tether, "policy"), identity->policy,
                     sizeof(identity->policy)) ||
        !is_time(exp) || !is_time(iat))
        return false;
    identity->exp = (int64_t)exp->valuedouble;
    identity->iat = (int64_t)iat->valuedouble;
    /* cnf.jkt is checked when a proof is (a bearer-only policy needs none). */
    if (cnf != NULL &&
        !copy_string(cJSON_GetObjectItemCaseSensitive(cnf, "jkt"), identity->jkt,
                     sizeof(identity->jkt)))
        return false;
    if (!sources_from_claim(cJSON_GetObjectItemCaseSensitive(tether, "sources"), identity))
        return false;
    if (models == NULL)
        return true;
    if (!cJSON_IsArray(models))
        return false;
    cJSON_ArrayForEach(model, models)
    {
        const char *name = cJSON_GetStringValue(model);
        size_t n = name != NULL ? strlen(name) : 0;
        if (n == 0 || strchr(name, ',') != NULL || o + n + 1 >= sizeof(identity->models))
            return false;
        if (o > 0)
            identity->models[o++] = ',';
        memcpy(identity->models + o, name, n + 1);
        o += n;
    }
    return true;
}

/* The identity of token, from the cache or verified now. */
static tether_status_t verify_token(tether_gate_access_t *access, const char *token, size_t len,
                                    const uint8_t hash[TETHER_SHA256_SIZE], int64_t now,
                                    int64_t mono_now, tether_gate_identity_t *identity,
                                    tether_gate_refusal_t *refusal)
{
    const tether_gate_config_t *config = access->config;
    tether_jwt_expect_t expect = {config->fleet, config->audience, now,
                                  config->clock_leeway_seconds};
    cJSON *claims = NULL;
    tether_status_t rc;

    /* A cached token stays valid until exp + leeway, as tether_jwt_verify
     * would judge it. */
    if (tether_gate_table_get(&access->tokens, hash, now, identity))
        return TETHER_OK;
    rc = tether_gate_fleet_keys_verify(access->keys, token, len, &expect, mono_now, &claims);
    if (rc == TETHER_ERR_UNKNOWN_KEY && tether_gate_fleet_keys_count(access->keys) == 0) {
        rc = refuse(refusal, 503, TETHER_GATE_OAUTH_UNAVAILABLE, TETHER_GATE_FLEET_KEYS_UNAVAILABLE,
                    "the fleet's signing keys could not be fetched yet; try again shortly");
        goto out;
    }
    if (rc != TETHER_OK) {
        rc = refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN, token_code(rc),
                    "the access token is not valid here: %s", tether_strerror(rc));
        goto out;
    }
    if (!identity_from_claims(claims, identity)) {
        rc = refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN, TETHER_GATE_TOKEN_INVALID,
                    "the access token lacks sub, jti, iat, exp or tether.policy, or a claim is "
                    "too long or malformed");
        goto out;
    }
    /* Full: the token is verified again next time, which costs time only. */
    (void)tether_gate_table_put(&access->tokens, hash,
                                identity->exp + (int64_t)config->clock_leeway_seconds, now,
                                identity);
out:
    cJSON_Delete(claims);
    return rc;
}

/* ---- the checks after the token --------------------------------------- */

static tether_status_t check_revocation(tether_gate_access_t *access,
                                        const tether_gate_identity_t *identity, int64_t now,
                                        int64_t mono_now, tether_gate_refusal_t *refusal)
{
    switch (tether_gate_revocations_check(access->revocations, identity->device, identity->jti,
                                          identity->iat, now, mono_now)) {
    case TETHER_GATE_NOT_REVOKED:
        return TETHER_OK;
    case TETHER_GATE_REVOKED_DEVICE:
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN, TETHER_GATE_DEVICE_REVOKED,
                      "the fleet revoked this device");
    case TETHER_GATE_REVOKED_TOKEN:
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN, TETHER_GATE_TOKEN_REVOKED,
                      "the fleet revoked this access token");
    case TETHER_GATE_FEED_OVERFLOW:
        return refuse(refusal, 503, TETHER_GATE_OAUTH_UNAVAILABLE, TETHER_GATE_CODE_FEED_STALE,
                      "the gateway's revocation lists are full; it refuses every request");
    case TETHER_GATE_FEED_STALE:
    default:
        return refuse(refusal, 503, TETHER_GATE_OAUTH_UNAVAILABLE, TETHER_GATE_CODE_FEED_STALE,
                      "the fleet's revocation feed was not reached for over %u s; every request "
                      "is refused until it is",
                      access->config->feed_staleness_seconds);
    }
}

static tether_status_t check_nonce(tether_gate_access_t *access, const char *nonce_text,
                                   int64_t now, tether_gate_refusal_t *refusal)
{
    uint8_t nonce[TETHER_NONCE_SIZE];
    size_t len = 0;
    tether_status_t rc = TETHER_ERR_VERIFY;

    if (nonce_text[0] != '\0' &&
        tether_base64url_decode(nonce_text, strlen(nonce_text), nonce, sizeof(nonce), &len) ==
            TETHER_OK)
        rc = tether_nonce_check(access->nonce_key, sizeof(access->nonce_key), nonce, len,
                                (uint64_t)now);
    if (rc == TETHER_OK)
        return TETHER_OK;
    refusal->nonce = true;
    return refuse(refusal, 401, TETHER_GATE_OAUTH_USE_DPOP_NONCE, TETHER_GATE_DPOP_NONCE_REQUIRED,
                  "make the proof again with the nonce in the DPoP-Nonce header");
}

static tether_status_t check_proof(tether_gate_access_t *access,
                                   const tether_gate_access_request_t *request, const char *token,
                                   size_t token_len, const uint8_t hash[TETHER_SHA256_SIZE],
                                   const tether_gate_identity_t *identity, int64_t now,
                                   tether_gate_refusal_t *refusal)
{
    const tether_gate_config_t *config = access->config;
    tether_dpop_expect_t expect = {
        .htm = request->htm,
        .htu = request->htu,
        .access_token = token,
        .access_token_len = token_len,
        .access_token_sha256 = hash,
        .jkt = identity->jkt,
        .now = now,
        .max_age = config->dpop_max_age_seconds,
        .leeway = config->clock_leeway_seconds,
    };
    uint8_t replay_input[TETHER_SHA256_SIZE + TETHER_DPOP_JTI_MAX], replay_key[TETHER_SHA256_SIZE];
    tether_dpop_result_t result;
    tether_dpop_failure_t failure;
    size_t jti_len;
    tether_status_t rc;

    if (request->dpop == NULL)
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_DPOP_PROOF, TETHER_GATE_DPOP_MISSING,
                      "a DPoP proof (the DPoP header) must come with a DPoP access token");
    if (strlen(identity->jkt) != JKT_LEN)
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN, TETHER_GATE_TOKEN_UNBOUND,
                      "the access token is bound to no key (no cnf.jkt)");
    rc = tether_dpop_verify(request->dpop, strlen(request->dpop), &expect, &result, &failure,
                            refusal->description, sizeof(refusal->description));
    if (rc == TETHER_ERR_VERIFY) {
        refusal->status = 401;
        refusal->error = TETHER_GATE_OAUTH_INVALID_DPOP_PROOF;
        refusal->tether_error = tether_dpop_failure_name(failure);
        return rc;
    }
    if (rc != TETHER_OK)
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_DPOP_PROOF,
                      tether_dpop_failure_name(TETHER_DPOP_MALFORMED), "the DPoP proof is unusable");
    if (config->dpop_nonce && (rc = check_nonce(access, result.nonce, now, refusal)) != TETHER_OK)
        return rc;
    /* Keyed per token: SHA-256(SHA-256(token) || jti), kept while a proof
     * with this iat would still be accepted. */
    jti_len = strlen(result.jti);
    memcpy(replay_input, hash, TETHER_SHA256_SIZE);
    memcpy(replay_input + TETHER_SHA256_SIZE, result.jti, jti_len);
    if ((rc = tether_sha256(replay_input, TETHER_SHA256_SIZE + jti_len, replay_key)) != TETHER_OK)
        return refuse(refusal, 503, TETHER_GATE_OAUTH_UNAVAILABLE, TETHER_GATE_REPLAY_CACHE_FULL,
                      "the replay check failed");
    switch (tether_gate_table_add(&access->replay, replay_key,
                                  result.iat + (int64_t)config->dpop_max_age_seconds + 1, now,
                                  NULL)) {
    case TETHER_GATE_TABLE_ADDED:
        return TETHER_OK;
    case TETHER_GATE_TABLE_HELD:
        return refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_DPOP_PROOF, TETHER_GATE_DPOP_REPLAYED,
                      "this DPoP proof was used before: make a fresh proof for each request");
    case TETHER_GATE_TABLE_FULL:
    default:
        return refuse(refusal, 503, TETHER_GATE_OAUTH_UNAVAILABLE, TETHER_GATE_REPLAY_CACHE_FULL,
                      "the gateway's replay cache is full; try again shortly");
    }
}

tether_status_t tether_gate_access_check(tether_gate_access_t *access,
                                         const tether_gate_access_request_t *request, int64_t now,
                                         int64_t mono_now, tether_gate_identity_t *identity,
                                         tether_gate_refusal_t *refusal)
{
    uint8_t hash[TETHER_SHA256_SIZE];
    const tether_gate_config_policy_t *policy;
    const char *token;
    size_t token_len;
    bool bearer;
    tether_status_t rc;

    if (identity != NULL)
        memset(identity, 0, sizeof(*identity));
    if (refusal != NULL)
        memset(refusal, 0, sizeof(*refusal));
    if (access == NULL || request == NULL || request->htm == NULL || request->htu == NULL ||
        identity == NULL || refusal == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = parse_authorization(request->authorization, &bearer, &token, &token_len, refusal)) !=
        TETHER_OK)
        goto out;
    if ((rc = tether_sha256(token, token_len, hash)) != TETHER_OK ||
        (rc = verify_token(access, token, token_len, hash, now, mono_now, identity, refusal)) !=
            TETHER_OK ||
        (rc = check_revocation(access, identity, now, mono_now, refusal)) != TETHER_OK)
        goto out;
    if ((policy = tether_gate_config_policy(access->config, identity->policy)) == NULL) {
        rc = refuse(refusal, 403, TETHER_GATE_OAUTH_INSUFFICIENT_SCOPE, TETHER_GATE_POLICY_UNKNOWN,
                    "the token's policy is not configured on this gateway");
        goto out;
    }
    if (bearer) {
        if (!policy->allow_bearer)
            rc = refuse(refusal, 401, TETHER_GATE_OAUTH_INVALID_TOKEN,
                        TETHER_GATE_BEARER_NOT_ALLOWED,
                        "bearer tokens are refused here: send \"Authorization: DPoP\" with a proof");
        identity->bearer = true;
        goto out;
    }
    rc = check_proof(access, request, token, token_len, hash, identity, now, refusal);
out:
    tether_wipe(hash, sizeof(hash));
    if (rc != TETHER_OK && identity != NULL)
        memset(identity, 0, sizeof(*identity));
    return rc;
}

tether_status_t tether_gate_access_check_source(const tether_gate_identity_t *identity,
                                                const char *remote,
                                                tether_gate_refusal_t *refusal)
{
    if (refusal != NULL)
        memset(refusal, 0, sizeof(*refusal));
    if (identity == NULL || refusal == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (tether_cidr_list_allows(identity->sources, identity->source_count, remote))
        return TETHER_OK;
    return refuse(refusal, 403, TETHER_GATE_OAUTH_INSUFFICIENT_SCOPE, TETHER_GATE_SOURCE_REFUSED,
                  "this token may be used only from its policy's source networks, and %s is "
                  "outside them",
                  remote != NULL ? remote : "an unknown address");
}
