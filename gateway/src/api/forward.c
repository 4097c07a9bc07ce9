/* The proxy's stage in tether-gate's pipeline (forward.h). */
#include "forward.h"

#include <stdio.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/log.h"

#define CONNECT_TIMEOUT_MS 5000
#define MAX_RESPONSE_BYTES (16 * 1024 * 1024)

void tether_gate_forward_init(tether_gate_forward_t *forward)
{
    if (forward == NULL)
        return;
    memset(forward, 0, sizeof(*forward));
    tether_gate_upstream_init(&forward->upstream);
    for (size_t i = 0; i < TETHER_GATE_CONFIG_MAX_POLICIES; i++) {
        tether_gate_policy_init(&forward->ceilings[i]);
        tether_gate_proxy_init(&forward->proxies[i]);
    }
}

/*
 * Splits a comma-separated list (at most TETHER_GATE_CONFIG_MODELS_MAX
 * bytes) into the globs of copy, at most TETHER_GATE_MAX_GLOBS; *count
 * is set on entry. An empty list gives none. false when there are more.
 */
static bool split_models(const char *list, char copy[TETHER_GATE_CONFIG_MODELS_MAX + 1],
                         const char *globs[TETHER_GATE_MAX_GLOBS], size_t *count)
{
    char *next, *save = NULL;

    *count = 0;
    snprintf(copy, TETHER_GATE_CONFIG_MODELS_MAX + 1, "%s", list);
    for (next = strtok_r(copy, ",", &save); next != NULL; next = strtok_r(NULL, ",", &save)) {
        if (*count == TETHER_GATE_MAX_GLOBS)
            return false;
        globs[(*count)++] = next;
    }
    return true;
}

/* The ceilings of one configured policy. */
static tether_status_t open_ceilings(tether_gate_policy_t *ceilings,
                                     const tether_gate_config_t *config,
                                     const tether_gate_config_policy_t *policy, char *why,
                                     size_t why_size)
{
    char models[TETHER_GATE_CONFIG_MODELS_MAX + 1];
    const char *globs[TETHER_GATE_MAX_GLOBS];
    tether_gate_price_t prices[TETHER_GATE_CONFIG_MAX_PRICES];
    tether_gate_policy_options_t opts;

    memset(&opts, 0, sizeof(opts));
    if (!split_models(policy->models, models, globs, &opts.model_count))
        return tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                              "policy %s: more than %d model globs", policy->name,
                              TETHER_GATE_MAX_GLOBS);
    for (size_t i = 0; i < config->price_count; i++) {
        prices[i].model_glob = config->prices[i].model;
        prices[i].prompt_per_1k = config->prices[i].prompt_per_1k_micros;
        prices[i].completion_per_1k = config->prices[i].completion_per_1k_micros;
    }
    opts.models = globs;
    opts.prices = prices;
    opts.price_count = config->price_count;
    opts.requests_per_minute = policy->requests_per_minute;
    opts.tokens_per_minute = policy->tokens_per_minute;
    opts.spend_per_day = policy->spend_per_day_micros;
    opts.default_max_tokens = policy->max_tokens;
    opts.max_devices = config->max_devices;
    return tether_gate_policy_open(ceilings, &opts, why, why_size);
}

tether_status_t tether_gate_forward_open(tether_gate_forward_t *forward,
                                         const tether_gate_config_t *config, const char *key_file,
                                         const char *ca_file, tether_gate_monitor_t *monitor,
                                         char *why, size_t why_size)
{
    tether_gate_upstream_options_t upstream;
    tether_gate_proxy_options_t proxy;
    tether_status_t rc;

    if (forward == NULL || config == NULL || monitor == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    forward->config = config;
    memset(&upstream, 0, sizeof(upstream));
    upstream.base_url = config->upstream;
    upstream.ca_file = ca_file;
    upstream.key_file = key_file;
    upstream.max_transfers = config->upstream_max_transfers;
    upstream.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    upstream.timeout_ms = config->upstream_timeout_seconds * 1000u;
    upstream.idle_timeout_ms = config->upstream_idle_timeout_seconds * 1000u;
    upstream.max_response_bytes = MAX_RESPONSE_BYTES;
    if ((rc = tether_gate_upstream_open(&forward->upstream, &upstream, why, why_size)) !=
        TETHER_OK)
        return rc;
    memset(&proxy, 0, sizeof(proxy));
    proxy.upstream = &forward->upstream;
    proxy.stream_queue_bytes = TETHER_GATE_STREAM_QUEUE_BYTES;
    proxy.on_outcome = tether_gate_monitor_outcome;
    proxy.outcome_arg = monitor;
    for (; forward->count < config->policy_count; forward->count++) {
        size_t i = forward->count;

        proxy.policy = &forward->ceilings[i];
        if ((rc = open_ceilings(&forward->ceilings[i], config, &config->policies[i], why,
                                why_size)) != TETHER_OK)
            return rc;
        if ((rc = tether_gate_proxy_open(&forward->proxies[i], &proxy)) != TETHER_OK) {
            tether_gate_policy_free(&forward->ceilings[i]);
            return tether_explain(rc, why, why_size, "policy %s: cannot set up the proxy",
                                  config->policies[i].name);
        }
    }
    return TETHER_OK;
}

void tether_gate_forward_free(tether_gate_forward_t *forward)
{
    if (forward == NULL)
        return;
    for (size_t i = 0; i < forward->count; i++) {
        tether_gate_proxy_free(&forward->proxies[i]);
        tether_gate_policy_free(&forward->ceilings[i]);
    }
    tether_gate_upstream_free(&forward->upstream);
    memset(forward, 0, sizeof(*forward));
}

void tether_gate_forward_handle(tether_gate_forward_t *forward,
                                const tether_gate_identity_t *identity,
                                const tether_http_request_t *request,
                                tether_http_response_t *response)
{
    char models[TETHER_GATE_CONFIG_MODELS_MAX + 1];
    const char *globs[TETHER_GATE_MAX_GLOBS];
    tether_gate_caller_t caller;
    size_t i;

    /* Authorization refused any token whose policy is not configured. */
    for (i = 0; i < forward->count; i++)
        if (strcmp(forward->config->policies[i].name, identity->policy) == 0)
            break;
    memset(&caller, 0, sizeof(caller));
    /* A token without tether.models may call no model: the fleet names
     * them in every token, so none here is a fault, not a wildcard. */
    if (i == forward->count ||
        !split_models(identity->models, models, globs, &caller.model_count)) {
        tether_error("gate", "device %s: policy %s or the token's models cannot be used",
                     identity->device, identity->policy);
        tether_http_respond_error(response, 500, "server_error",
                                  "the token's policy or models cannot be used here");
        return;
    }
    caller.device = identity->device;
    caller.jti = identity->jti;
    caller.models = globs;
    tether_gate_proxy_handle(&forward->proxies[i], &caller, request, response);
}
