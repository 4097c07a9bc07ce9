/* Token policy and claims (token_issuer.h). */
#include "token_issuer.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/cidr.h"
#include "tether/jose.h"
#include "tether/random.h"

#define JTI_BYTES 16

tether_status_t tether_token_pcr_selection_parse(const char *text, TPML_PCR_SELECTION *sel)
{
    const char *p;

    if (text == NULL || sel == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(sel, 0, sizeof(*sel));
    if (!tether_fleet_config_pcr_selection_valid(text))
        return TETHER_ERR_PARSE;
    sel->count = 1;
    sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel->pcrSelections[0].sizeofSelect = 3;
    for (p = strchr(text, ':') + 1; *p != '\0';) {
        unsigned pcr = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            pcr = pcr * 10 + (unsigned)(*p - '0');
        sel->pcrSelections[0].pcrSelect[pcr / 8] |= (uint8_t)(1u << (pcr % 8));
        if (*p == ',')
            p++;
    }
    return TETHER_OK;
}

tether_status_t tether_token_policy_from_config(const tether_fleet_config_t *config,
                                                tether_token_policy_t *policy)
{
    tether_status_t rc;

    if (config == NULL || policy == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(policy, 0, sizeof(*policy));
    if ((rc = tether_fleet_config_issuer(config, policy->issuer, sizeof(policy->issuer))) !=
            TETHER_OK ||
        (rc = tether_token_pcr_selection_parse(config->pcr_selection, &policy->pcr_selection)) !=
            TETHER_OK)
        return rc;
    if (!tether_fleet_config_list_valid(config->audience) ||
        !tether_fleet_config_scope_valid(config->scope) ||
        !tether_fleet_config_list_valid(config->models) ||
        !tether_fleet_config_decimal_valid(config->cost_ceiling))
        return TETHER_ERR_PARSE;
    snprintf(policy->audiences, sizeof(policy->audiences), "%s", config->audience);
    snprintf(policy->scopes, sizeof(policy->scopes), "%s", config->scope);
    snprintf(policy->models, sizeof(policy->models), "%s", config->models);
    snprintf(policy->cost_ceiling, sizeof(policy->cost_ceiling), "%s", config->cost_ceiling);
    policy->usage_mismatch_action = strcmp(config->usage_mismatch_action, "alert") == 0
                                        ? TETHER_STORE_USAGE_ALERT
                                        : TETHER_STORE_USAGE_QUARANTINE;
    snprintf(policy->pcr_selection_text, sizeof(policy->pcr_selection_text), "%s",
             config->pcr_selection);
    policy->lifetime_seconds = tether_fleet_config_token_lifetime(config);
    return TETHER_OK;
}

/* Whether item[0..len) is one of the sep-separated entries of list. */
static bool list_has(const char *list, char sep, const char *item, size_t len)
{
    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, sep);
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, item, len) == 0)
            return true;
        p += n;
        if (*p == sep)
            p++;
    }
    return false;
}

static tether_status_t copy_out(char *out, size_t out_size, const char *text, size_t len)
{
    if (len >= out_size)
        return TETHER_ERR_TOO_LARGE;
    memcpy(out, text, len);
    out[len] = '\0';
    return TETHER_OK;
}

tether_status_t tether_token_audience_choose(const tether_token_policy_t *policy,
                                             const char *requested, char *out, size_t out_size)
{
    if (policy == NULL || requested == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (requested[0] == '\0')
        return copy_out(out, out_size, policy->audiences, strcspn(policy->audiences, ","));
    if (strchr(requested, ',') != NULL ||
        !list_has(policy->audiences, ',', requested, strlen(requested)))
        return TETHER_ERR_VERIFY;
    return copy_out(out, out_size, requested, strlen(requested));
}

tether_status_t tether_token_scope_choose(const tether_token_policy_t *policy,
                                          const char *requested, char *out, size_t out_size)
{
    if (policy == NULL || requested == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (requested[0] == '\0')
        return copy_out(out, out_size, policy->scopes, strlen(policy->scopes));
    for (const char *p = requested; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n == 0 || !list_has(policy->scopes, ' ', p, n))
            return TETHER_ERR_VERIFY;
        p += n;
        if (*p == ' ')
            p++;
    }
    return copy_out(out, out_size, requested, strlen(requested));
}

tether_status_t tether_token_jti_new(char out[TETHER_STORE_JTI_SIZE])
{
    uint8_t random[JTI_BYTES];
    tether_status_t rc;

    _Static_assert(TETHER_STORE_JTI_SIZE == 2 * JTI_BYTES + 1, "jti is 16 bytes in hex");
    if ((rc = tether_random_bytes(random, sizeof(random))) == TETHER_OK)
        rc = tether_hex_encode(random, sizeof(random), out, TETHER_STORE_JTI_SIZE);
    tether_wipe(random, sizeof(random));
    return rc;
}

/* "sources": the policy's networks in their canonical text and order, so
 * gateways refuse requests from elsewhere (at most
 * TETHER_POLICY_MAX_SOURCES, about 1.5 KiB at worst); absent when the
 * policy names none (any source). */
static bool add_sources(cJSON *claim, const tether_policy_document_t *doc)
{
    char network[TETHER_CIDR_TEXT_SIZE];
    cJSON *sources;

    if (doc->source_count == 0)
        return true;
    if ((sources = cJSON_AddArrayToObject(claim, "sources")) == NULL)
        return false;
    for (size_t i = 0; i < doc->source_count; i++) {
        cJSON *item = NULL;

        if (tether_cidr_format(&doc->sources[i], network, sizeof(network)) != TETHER_OK ||
            (item = cJSON_CreateString(network)) == NULL || !cJSON_AddItemToArray(sources, item)) {
            cJSON_Delete(item);
            return false;
        }
    }
    return true;
}

/* The tether claim: {"counter", "policy", "policy_version", "models",
 * "cost_ceiling"[, "sources"]}. */
static cJSON *tether_claim(const tether_token_facts_t *facts)
{
    const tether_policy_document_t *doc = facts->policy_document;
    cJSON *claim = cJSON_CreateObject();
    cJSON *models = NULL;
    char counter[24], version[24];

    snprintf(counter, sizeof(counter), "%" PRIu64, facts->counter);
    snprintf(version, sizeof(version), "%" PRId64, facts->policy_version);
    /* Counters are exact integers (a double would round above 2^53); the
     * cost ceiling is the policy's decimal as written, which the policy
     * reader checked to be a JSON number. */
    if (claim == NULL || cJSON_AddRawToObject(claim, "counter", counter) == NULL ||
        cJSON_AddStringToObject(claim, "policy", facts->policy_name) == NULL ||
        cJSON_AddRawToObject(claim, "policy_version", version) == NULL ||
        (models = cJSON_AddArrayToObject(claim, "models")) == NULL ||
        cJSON_AddRawToObject(claim, "cost_ceiling", doc->cost_ceiling) == NULL)
        goto fail;
    for (size_t i = 0; i < doc->model_count; i++) {
        cJSON *item = cJSON_CreateString(doc->models[i]);

        if (item == NULL || !cJSON_AddItemToArray(models, item)) {
            cJSON_Delete(item);
            goto fail;
        }
    }
    if (!add_sources(claim, doc))
        goto fail;
    return claim;
fail:
    cJSON_Delete(claim);
    return NULL;
}

cJSON *tether_token_claims(const tether_token_policy_t *policy, const tether_token_facts_t *facts)
{
    cJSON *claims, *cnf = NULL, *tether = NULL;

    if (policy == NULL || facts == NULL || facts->device_id == NULL || facts->jkt == NULL ||
        facts->jti == NULL || facts->scope == NULL || facts->audience == NULL ||
        facts->policy_name == NULL || facts->policy_version < 1 ||
        facts->policy_document == NULL)
        return NULL;
    if ((claims = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(claims, "iss", policy->issuer) == NULL ||
        cJSON_AddStringToObject(claims, "sub", facts->device_id) == NULL ||
        cJSON_AddStringToObject(claims, "aud", facts->audience) == NULL ||
        cJSON_AddStringToObject(claims, "client_id", facts->device_id) == NULL ||
        cJSON_AddNumberToObject(claims, "iat", (double)facts->iat) == NULL ||
        cJSON_AddNumberToObject(claims, "nbf", (double)facts->iat) == NULL ||
        cJSON_AddNumberToObject(claims, "exp", (double)facts->exp) == NULL ||
        cJSON_AddStringToObject(claims, "jti", facts->jti) == NULL ||
        cJSON_AddStringToObject(claims, "scope", facts->scope) == NULL ||
        (cnf = cJSON_AddObjectToObject(claims, "cnf")) == NULL ||
        cJSON_AddStringToObject(cnf, "jkt", facts->jkt) == NULL ||
        (tether = tether_claim(facts)) == NULL ||
        !cJSON_AddItemToObject(claims, "tether", tether)) {
        cJSON_Delete(tether);
        cJSON_Delete(claims);
        return NULL;
    }
    return claims;
}

tether_status_t tether_token_policy_fits(const tether_policy_document_t *doc, char *why,
                                         size_t why_size)
{
    char network[TETHER_CIDR_TEXT_SIZE];
    size_t bytes = sizeof("\"models\":[]") - 1;

    if (doc == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* Each name quoted and separated; a policy's names and networks hold
     * nothing JSON escapes. */
    for (size_t i = 0; i < doc->model_count; i++)
        bytes += strlen(doc->models[i]) + 3;
    if (doc->source_count > 0)
        bytes += sizeof(",\"sources\":[]") - 1;
    for (size_t i = 0; i < doc->source_count; i++) {
        if (tether_cidr_format(&doc->sources[i], network, sizeof(network)) != TETHER_OK)
            return TETHER_ERR_INVALID_ARGUMENT;
        bytes += strlen(network) + 3;
    }
    if (bytes > TETHER_TOKEN_POLICY_CLAIMS_MAX)
        return tether_explain(TETHER_ERR_TOO_LARGE, why, why_size,
                              "the policy's models and sources would take %zu bytes of each "
                              "token, above %d (a token must stay within %d bytes): name fewer "
                              "or shorter models (globs) or fewer networks",
                              bytes, TETHER_TOKEN_POLICY_CLAIMS_MAX, TETHER_JWS_MAX_LEN);
    return TETHER_OK;
}
