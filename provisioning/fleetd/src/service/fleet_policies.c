/* The "default" policy from the configuration (fleet_policies.h). */
#include "fleet_policies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/log.h"

static int model_order(const void *a, const void *b)
{
    return strcmp(a, b);
}

tether_status_t tether_fleet_policy_from_token_policy(const tether_token_policy_t *policy,
                                                      tether_policy_document_t *doc, char *why,
                                                      size_t why_size)
{
    char text[TETHER_POLICY_DOCUMENT_MAX + 1];
    tether_policy_document_t built;
    const char *p = policy->models;
    size_t len = 0, kept = 0;
    char *dot;
    tether_status_t rc;

    memset(doc, 0, sizeof(*doc));
    memset(&built, 0, sizeof(built));
    if (why_size > 0)
        why[0] = '\0';
    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        if (built.model_count == TETHER_POLICY_MAX_MODELS || n > TETHER_POLICY_MODEL_MAX) {
            snprintf(why, why_size, "models: more than %d, or one longer than %d bytes",
                     TETHER_POLICY_MAX_MODELS, TETHER_POLICY_MODEL_MAX);
            return TETHER_ERR_PARSE;
        }
        memcpy(built.models[built.model_count++], p, n);
        p += n + (p[n] == ',');
    }
    qsort(built.models, built.model_count, sizeof(built.models[0]), model_order);
    for (size_t i = 0; i < built.model_count; i++)
        if (kept == 0 || strcmp(built.models[kept - 1], built.models[i]) != 0)
            memmove(built.models[kept++], built.models[i], sizeof(built.models[0]));
    built.model_count = kept;
    len = strlen(policy->cost_ceiling);
    if (len >= sizeof(built.cost_ceiling)) {
        snprintf(why, why_size, "cost_ceiling is longer than a policy's decimal");
        return TETHER_ERR_PARSE;
    }
    memcpy(built.cost_ceiling, policy->cost_ceiling, len + 1);
    if ((dot = strchr(built.cost_ceiling, '.')) != NULL) {
        size_t end = strlen(built.cost_ceiling);

        while (end > 0 && built.cost_ceiling[end - 1] == '0')
            built.cost_ceiling[--end] = '\0';
        if (built.cost_ceiling[end - 1] == '.')
            built.cost_ceiling[end - 1] = '\0';
    }
    built.lifetime_seconds = policy->lifetime_seconds;
    /* Written, then read by the one strict reader: nothing else decides
     * what a policy may hold. */
    len = 0;
    if ((rc = tether_policy_document_write(&built, text, sizeof(text), &len)) != TETHER_OK) {
        snprintf(why, why_size, "the models do not fit in a policy document");
        return rc;
    }
    return tether_policy_document_parse((const uint8_t *)text, len, doc, why, why_size);
}

tether_status_t tether_fleet_policy_default_ensure(tether_store_t *store,
                                                   const tether_token_policy_t *policy,
                                                   int64_t now)
{
    char text[TETHER_POLICY_DOCUMENT_MAX + 1], why[256];
    tether_policy_document_t doc;
    tether_store_policy_t current;
    int64_t version = 0;
    size_t len = 0;
    tether_status_t rc;

    rc = tether_store_policy_get(store, TETHER_POLICY_DEFAULT_NAME, 0, &current);
    if (rc != TETHER_ERR_NOT_FOUND)
        return rc;
    if ((rc = tether_fleet_policy_from_token_policy(policy, &doc, why, sizeof(why))) !=
        TETHER_OK) {
        tether_error("run", "the default policy from models/cost_ceiling: %s", why);
        return rc;
    }
    if ((rc = tether_policy_document_write(&doc, text, sizeof(text), &len)) != TETHER_OK)
        return rc;
    rc = tether_store_policy_write(store, TETHER_POLICY_DEFAULT_NAME, text, true, now, &version);
    if (rc == TETHER_OK)
        tether_info("run", "policy \"default\" version 1 written from the configuration: %s",
                    text);
    return rc;
}
