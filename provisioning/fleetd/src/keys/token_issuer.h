/*
 * What an access token of this fleet says (DESIGN.md, "Attested token
 * exchange", step 5): an RFC 9068 JWT whose claims come from the fleet's
 * configuration (the token policy) and from the verified exchange (the
 * facts). Pure: no clock, no store, no key (issuer_keys.h signs).
 *
 * Claims: iss, sub (device id), aud, client_id (device id), iat, nbf (= iat),
 * exp, jti (16 random bytes, hex), scope, cnf {"jkt": RFC 7638 thumbprint of
 * the enrolled device key}, and tether {"counter", "policy", "policy_version",
 * "models": [...], "cost_ceiling", "sources": [...]} from the version of the
 * fleet policy (fleet_policy.h) the device followed when the token was
 * issued ("sources" only when the policy lists networks: gateways refuse
 * requests from outside them); exp is iat + that policy's lifetime_seconds.
 */
#ifndef TETHER_FLEET_TOKEN_ISSUER_H
#define TETHER_FLEET_TOKEN_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <tss2/tss2_tpm2_types.h>

#include "config.h"
#include "store.h"
#include "tether/error.h"
#include "tether/fleet_policy.h"

#define TETHER_GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TETHER_TOKEN_TYPE_ACCESS_TOKEN "urn:ietf:params:oauth:token-type:access_token"

/* The fleet's token policy, from fleetd.conf. */
typedef struct tether_token_policy {
    char issuer[TETHER_CONFIG_VALUE_MAX];
    char audiences[TETHER_CONFIG_VALUE_MAX]; /* comma-separated; the first is the default */
    char scopes[TETHER_CONFIG_VALUE_MAX];    /* space-separated; all by default */
    unsigned lifetime_seconds;               /* clamped */
    char models[TETHER_CONFIG_VALUE_MAX];    /* comma-separated */
    char cost_ceiling[32];                   /* a JSON number as written */
    char pcr_selection_text[TETHER_CONFIG_VALUE_MAX];
    TPML_PCR_SELECTION pcr_selection;
    /* What a token found used by someone else does (usage_mismatch_action). */
    tether_store_usage_action_t usage_mismatch_action;
} tether_token_policy_t;

/* Fills policy from a parsed configuration. TETHER_ERR_PARSE for values
 * the configuration parser would have refused. */
TETHER_MUST_CHECK tether_status_t tether_token_policy_from_config(
    const tether_fleet_config_t *config, tether_token_policy_t *policy);

/* "sha256:0,1,2" (tether_fleet_config_pcr_selection_valid) as a TPM
 * selection of the SHA-256 bank (sizeofSelect 3). */
TETHER_MUST_CHECK tether_status_t tether_token_pcr_selection_parse(const char *text,
                                                                   TPML_PCR_SELECTION *selection);

/* The audience for a request: requested ("" for the default) must be one of
 * the policy's audiences (TETHER_ERR_VERIFY otherwise: RFC 8693
 * invalid_target). */
TETHER_MUST_CHECK tether_status_t tether_token_audience_choose(const tether_token_policy_t *policy,
                                                               const char *requested, char *out,
                                                               size_t out_size);

/* The scope for a request: every scope-token of requested ("" for all of
 * the policy's) must be one of the policy's (TETHER_ERR_VERIFY otherwise:
 * RFC 6749 invalid_scope). */
TETHER_MUST_CHECK tether_status_t tether_token_scope_choose(const tether_token_policy_t *policy,
                                                            const char *requested, char *out,
                                                            size_t out_size);

/* A new token id: 32 lowercase hex digits of 16 random bytes. */
TETHER_MUST_CHECK tether_status_t tether_token_jti_new(char out[TETHER_STORE_JTI_SIZE]);

/* What the exchange established. Strings are borrowed for the call. */
typedef struct tether_token_facts {
    const char *device_id;
    const char *jkt;      /* RFC 7638 thumbprint of the device key */
    const char *jti;
    const char *scope;
    const char *audience;
    int64_t iat;
    int64_t exp;
    uint64_t counter;
    /* The fleet policy version the tether claim is made from. */
    const char *policy_name;
    int64_t policy_version;
    const tether_policy_document_t *policy_document;
} tether_token_facts_t;

/* The claims object (the caller deletes it), or NULL when out of memory. */
cJSON *tether_token_claims(const tether_token_policy_t *policy, const tether_token_facts_t *facts);

/* The JSON text a policy's models and sources take in each token's tether
 * claim, at most: with the rest of the claims (about 600 bytes with a
 * 64-byte issuer) the signed token stays within TETHER_JWS_MAX_LEN. */
#define TETHER_TOKEN_POLICY_CLAIMS_MAX 5000

/* Whether the tokens of a policy could be signed: TETHER_ERR_TOO_LARGE
 * with a sentence in why when its models and sources would take more than
 * TETHER_TOKEN_POLICY_CLAIMS_MAX bytes of each token (32 models of 128
 * bytes and 32 IPv6 networks would not fit). Checked when a policy is
 * written, so no exchange fails on it. */
TETHER_MUST_CHECK tether_status_t tether_token_policy_fits(const tether_policy_document_t *doc,
                                                           char *why, size_t why_size);

#endif
