/* POST /v1/challenge and POST /v1/token (exchange_api.h). */
#include "exchange_api.h"
#include "exchange_measured_boot.h"
#include "fleet_metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_mu.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/crypto.h"
#include "tether/evidence.h"
#include "tether/fleet_policy.h"
#include "tether/fleet_vocabulary.h"
#include "tether/json_strict.h"
#include "tether/log.h"
#include "tether/random.h"
#include "tether/tpm2_public.h"
#include "token_form.h"
#include "usage_document.h"
#include "validate.h"

#define WHY_SIZE 256

typedef struct exchange_call {
    tether_exchange_api_t *api;
    const tether_http_request_t *request;
    tether_http_response_t *response;
    const char *remote; /* for log lines and the sighting */
    int64_t now;
    tether_fleet_metrics_t *metrics; /* NULL: not counted */
    const char *outcome; /* retry, or a refusal's tether_error; NULL: issued */
} exchange_call_t;

/* What POST /v1/token works with, on the heap (about 122 KiB, kept per
 * thread: work_get) and wiped after each request: the evidence is a bearer
 * credential while its nonce lives, and the answer a token. */
typedef struct token_work {
    tether_token_form_t form;
    tether_evidence_t ev;
    tether_store_exchange_device_t device;
    TPM2B_PUBLIC ek;
    TPM2B_PUBLIC ak;
    TPM2B_PUBLIC device_key;
    TPM2B_NV_PUBLIC counter;
    TPM2B_NAME ak_qualified_name;
    TPM2B_NAME counter_name;
    TPM2B_DIGEST reference;
    TPMS_CLOCK_INFO last_clock;
    tether_evidence_policy_t policy;
    tether_evidence_result_t result;
    tether_evidence_code_t code;
    uint8_t fingerprint[TETHER_STORE_FINGERPRINT_SIZE];
    uint8_t nonce_hash[TETHER_STORE_NONCE_HASH_SIZE];
    bool retry;
    char jkt[TETHER_JWK_THUMBPRINT_SIZE];
    char scope[TETHER_TOKEN_FORM_VALUE_MAX + 1];
    char audience[TETHER_TOKEN_FORM_VALUE_MAX + 1];
    char jti[TETHER_STORE_JTI_SIZE];
    tether_usage_document_t usage;
    tether_store_device_usage_t usage_tokens[TETHER_USAGE_DOCUMENT_MAX_TOKENS];
    tether_store_exchange_t exchange;
    tether_store_exchange_result_t recorded;
    /* The fleet policy version the token's tether claim is made from. */
    tether_store_policy_t stored_policy;
    tether_policy_document_t policy_document;
    bool policy_current; /* policy_document is the device's policy now */
    /* Measured boot: the device's logs, and why they were refused. */
    tether_exchange_eventlogs_t eventlogs;
    tether_measured_boot_refusal_t refusal;
    char token[TETHER_JWS_MAX_LEN + 1];
    /* The 200 answer issue() made, sent by answer_send(). */
    cJSON *answer;
    int64_t answer_exp;
    char why[WHY_SIZE];
} token_work_t;

void tether_exchange_api_init(tether_exchange_api_t *api, tether_store_t *store,
                              tether_issuer_keys_t *keys, const tether_token_policy_t *policy,
                              const uint8_t nonce_key[TETHER_NONCE_KEY_SIZE])
{
    if (api == NULL)
        return;
    memset(api, 0, sizeof(*api));
    api->store = store;
    api->keys = keys;
    api->policy = policy;
    if (nonce_key != NULL)
        memcpy(api->nonce_key, nonce_key, sizeof(api->nonce_key));
}

void tether_exchange_api_free(tether_exchange_api_t *api)
{
    if (api != NULL)
        tether_wipe(api, sizeof(*api));
}

/* ---- answers and log lines ---- */

/* {"error", "error_description", "tether_error"}: the OAuth code for
 * generic clients, tether's own for the agent and dashboards. */
static void respond(exchange_call_t *call, unsigned status, const char *error,
                    const char *tether_error, const char *description)
{
    cJSON *json = cJSON_CreateObject();

    if (json == NULL || cJSON_AddStringToObject(json, "error", error) == NULL ||
        cJSON_AddStringToObject(json, "error_description", description) == NULL ||
        cJSON_AddStringToObject(json, "tether_error", tether_error) == NULL) {
        cJSON_Delete(json);
        tether_http_respond_error(call->response, 500, "server_error", "out of memory");
        return;
    }
    tether_http_respond_json(call->response, status, json);
}

static void refuse(exchange_call_t *call, const char *what, const char *device_id,
                   unsigned status, const char *error, const char *tether_error,
                   const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Answers a refusal and logs it (never a token, nonce or evidence: the
 * reasons come from parsers and checks that do not echo them). */
static void refuse(exchange_call_t *call, const char *what, const char *device_id,
                   unsigned status, const char *error, const char *tether_error, const char *fmt,
                   ...)
{
    char description[WHY_SIZE + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(description, sizeof(description), fmt, ap);
    va_end(ap);
    tether_warn("exchange", "%s refused: device=%s outcome=%s status=%u remote=%s reason=%s", what,
                device_id != NULL && device_id[0] != '\0' ? device_id : "-", tether_error, status,
                call->remote, description);
    call->outcome = tether_error;
    respond(call, status, error, tether_error, description);
}

static void server_error(exchange_call_t *call, const char *what, tether_status_t rc)
{
    tether_error("exchange", "%s failed: %s", what, tether_strerror(rc));
    call->outcome = "server_error";
    respond(call, 500, "server_error", "server_error",
            "the fleet could not complete the exchange; see the server log");
}

/* The refusal for a device that may not exchange (403 on both endpoints). */
static void refuse_status(exchange_call_t *call, const char *what, const char *device_id,
                          tether_device_status_t status)
{
    switch (status) {
    case TETHER_DEVICE_REVOKED:
        refuse(call, what, device_id, 403, "invalid_grant", "device_revoked",
               "this device is revoked: it gets no tokens until an operator reinstates it and "
               "it enrols again");
        break;
    case TETHER_DEVICE_QUARANTINED:
        refuse(call, what, device_id, 403, "invalid_grant", "device_quarantined",
               "this device is quarantined (suspected clone): it gets no tokens until an "
               "operator checks it, reinstates it and it enrols again");
        break;
    default:
        refuse(call, what, device_id, 403, "invalid_grant", "device_not_active",
               "this device is not enrolled (status %s): enrol it first (tether-agent enroll)",
               tether_device_status_name(status));
        break;
    }
}

static void refuse_unknown(exchange_call_t *call, const char *what, const char *device_id)
{
    refuse(call, what, device_id, 403, "invalid_grant", "unknown_device",
           "no device with this id is enrolled in this fleet (tether-agent enroll enrols one)");
}

/* The evidence's device id alphabet (tether/evidence.h). */
static bool device_id_syntax(const char *id, size_t len)
{
    if (len == 0 || len > TETHER_EVIDENCE_MAX_DEVICE_ID)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- POST /v1/challenge ---- */

/* {"device_id": "..."} and nothing else; *id points into *json. */
static bool challenge_body(exchange_call_t *call, cJSON **json, const char **id)
{
    const tether_http_request_t *request = call->request;
    const cJSON *member;

    *json = NULL;
    if (tether_json_parse_object((const char *)request->body, request->body_len, json) !=
            TETHER_OK ||
        (member = cJSON_GetObjectItemCaseSensitive(*json, "device_id")) == NULL ||
        cJSON_GetArraySize(*json) != 1 || !cJSON_IsString(member) ||
        !device_id_syntax(member->valuestring, strlen(member->valuestring))) {
        refuse(call, "challenge", NULL, 400, "invalid_request", "invalid_request",
               "the body must be {\"device_id\": \"dev_...\"} and nothing else");
        return false;
    }
    *id = member->valuestring;
    return true;
}

/* The device's policy document (a database row: read strictly), for the
 * challenge's PCR selection and measured boot. */
typedef struct challenge_policy {
    tether_store_policy_t stored;
    tether_policy_document_t document;
    char why[WHY_SIZE];
} challenge_policy_t;

static tether_status_t challenge_policy_load(exchange_call_t *call, const char *id,
                                             challenge_policy_t *p)
{
    tether_status_t rc = tether_store_device_policy(call->api->store, id, &p->stored);

    if (rc == TETHER_OK)
        rc = tether_policy_document_parse((const uint8_t *)p->stored.document,
                                          strlen(p->stored.document), &p->document, p->why,
                                          sizeof(p->why));
    if (rc == TETHER_ERR_PARSE || rc == TETHER_ERR_TOO_LARGE)
        tether_error("exchange", "policy %s of device %s: %s", p->stored.name, id, p->why);
    return rc;
}

/*
 * The members of a challenge, in one place for the answer of POST
 * /v1/challenge and for the next challenge that comes with each token:
 * "nonce" (tether/nonce.h), "expires_in" (seconds from now),
 * "pcr_selection" (what the quote must cover) and, for a device whose
 * policy doc has measured boot, "measured_boot" with the hashes of the
 * logs the store holds for it (exchange_measured_boot.h), and for a
 * window that opens later "valid_in" (seconds from now to opens_at).
 *
 * Every nonce lives TETHER_CHALLENGE_TTL seconds from the opening of its
 * window: a challenge's opens now, the next challenge's at the device's
 * scheduled refresh. So the expiry minus the TTL is always when the nonce
 * became usable, which the clone rule (store.h, NONCE_SUPERSEDED) and
 * usage reconciliation take as its issue time, and evidence_ok refuses a
 * nonce used before its window (nonce_not_yet_valid).
 */
static tether_status_t challenge_members(exchange_call_t *call, const char *device_id,
                                         const tether_policy_document_t *doc, int64_t opens_at,
                                         cJSON *json)
{
    uint8_t nonce[TETHER_NONCE_SIZE];
    char nonce_text[TETHER_NONCE_TEXT_LEN + 1];
    tether_status_t rc;

    if ((rc = tether_nonce_issue(call->api->nonce_key, sizeof(call->api->nonce_key),
                                 (uint64_t)opens_at, TETHER_CHALLENGE_TTL, nonce)) != TETHER_OK ||
        (rc = tether_base64url_encode(nonce, sizeof(nonce), nonce_text, sizeof(nonce_text),
                                      NULL)) != TETHER_OK)
        return rc;
    if (cJSON_AddStringToObject(json, "nonce", nonce_text) == NULL ||
        cJSON_AddNumberToObject(json, "expires_in",
                                (double)(opens_at + TETHER_CHALLENGE_TTL - call->now)) == NULL ||
        (opens_at > call->now &&
         cJSON_AddNumberToObject(json, "valid_in", (double)(opens_at - call->now)) == NULL))
        return TETHER_ERR_NO_MEMORY;
    return tether_exchange_measured_boot_challenge(call->api->store, device_id, doc,
                                                   call->api->policy, json);
}

static void handle_challenge(exchange_call_t *call)
{
    tether_exchange_api_t *api = call->api;
    tether_store_device_t device;
    challenge_policy_t *policy = NULL;
    cJSON *body = NULL, *json = NULL;
    const char *id = NULL;
    tether_status_t rc;

    if (!challenge_body(call, &body, &id))
        goto out;
    rc = tether_fleet_device_id_valid(id, strlen(id))
             ? tether_store_device_get(api->store, id, &device)
             : TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_ERR_NOT_FOUND) {
        refuse_unknown(call, "challenge", id);
        goto out;
    }
    if (rc != TETHER_OK) {
        server_error(call, "challenge", rc);
        goto out;
    }
    if (device.status != TETHER_DEVICE_ACTIVE) {
        refuse_status(call, "challenge", id, device.status);
        goto out;
    }
    if ((policy = calloc(1, sizeof(*policy))) == NULL) {
        server_error(call, "challenge", TETHER_ERR_NO_MEMORY);
        goto out;
    }
    if ((rc = challenge_policy_load(call, id, policy)) != TETHER_OK) {
        server_error(call, "reading the device's policy", rc);
        goto out;
    }
    json = cJSON_CreateObject();
    rc = json != NULL ? challenge_members(call, id, &policy->document, call->now, json)
                      : TETHER_ERR_NO_MEMORY;
    if (rc != TETHER_OK) {
        server_error(call, "issuing a challenge", rc);
        goto out;
    }
    tether_http_respond_json(call->response, 200, json);
    json = NULL;
out:
    cJSON_Delete(json);
    free(policy);
    cJSON_Delete(body);
}

/* ---- POST /v1/token ---- */

/* Steps 1-2: the form, its grant and token type, the scope and audience
 * the device may have. */
static bool form_ok(exchange_call_t *call, token_work_t *w)
{
    const tether_http_request_t *request = call->request;
    const tether_token_policy_t *policy = call->api->policy;
    tether_status_t rc;

    rc = tether_token_form_parse((const char *)request->body, request->body_len, &w->form, w->why,
                                 sizeof(w->why));
    if (rc == TETHER_ERR_TOO_LARGE) {
        refuse(call, "exchange", NULL, 413, "payload_too_large", "payload_too_large", "%s",
               w->why);
        return false;
    }
    if (rc != TETHER_OK) {
        refuse(call, "exchange", NULL, 400, "invalid_request", "malformed_request", "%s", w->why);
        return false;
    }
    if (strcmp(w->form.grant_type, TETHER_GRANT_TOKEN_EXCHANGE) != 0) {
        refuse(call, "exchange", NULL, 400, "unsupported_grant_type", "unsupported_grant_type",
               "this endpoint takes grant_type=" TETHER_GRANT_TOKEN_EXCHANGE " (RFC 8693)");
        return false;
    }
    if (strcmp(w->form.subject_token_type, TETHER_EVIDENCE_TOKEN_TYPE) != 0) {
        refuse(call, "exchange", NULL, 400, "invalid_request", "unsupported_token_type",
               "subject_token_type must be " TETHER_EVIDENCE_TOKEN_TYPE
               " (the TPM evidence of tether-agent)");
        return false;
    }
    if (tether_token_scope_choose(policy, w->form.scope, w->scope, sizeof(w->scope)) !=
        TETHER_OK) {
        refuse(call, "exchange", NULL, 400, "invalid_scope", "invalid_scope",
               "a requested scope is not one this fleet grants (%s)", policy->scopes);
        return false;
    }
    if (tether_token_audience_choose(policy, w->form.audience, w->audience, sizeof(w->audience)) !=
        TETHER_OK) {
        refuse(call, "exchange", NULL, 400, "invalid_target", "invalid_target",
               "the requested audience is not one this fleet issues tokens for (%s)",
               policy->audiences);
        return false;
    }
    return true;
}

/* Steps 3-5: the evidence parses; its device is known, active, enrolled. */
static bool device_ok(exchange_call_t *call, token_work_t *w)
{
    const char *id;
    tether_status_t rc;

    if (tether_evidence_parse(w->form.subject_token, w->form.subject_token_len, &w->ev, w->why,
                              sizeof(w->why)) != TETHER_OK) {
        refuse(call, "exchange", NULL, 400, "invalid_grant",
               tether_evidence_code_name(TETHER_EVIDENCE_MALFORMED), "the evidence: %s", w->why);
        return false;
    }
    id = w->ev.device_id;
    rc = tether_fleet_device_id_valid(id, strlen(id))
             ? tether_store_exchange_device_get(call->api->store, id, &w->device)
             : TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_ERR_NOT_FOUND) {
        refuse_unknown(call, "exchange", id);
        return false;
    }
    if (rc != TETHER_OK) {
        server_error(call, "reading the device", rc);
        return false;
    }
    if (w->device.device.status != TETHER_DEVICE_ACTIVE) {
        refuse_status(call, "exchange", id, w->device.device.status);
        return false;
    }
    return true;
}

/* The marshalled TPM structures of the device row, exactly. */
static bool unmarshal_public(const uint8_t *data, size_t len, TPM2B_PUBLIC *out)
{
    size_t offset = 0;

    return Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, len, &offset, out) == TSS2_RC_SUCCESS &&
           offset == len;
}

static bool unmarshal_nv_public(const uint8_t *data, size_t len, TPM2B_NV_PUBLIC *out)
{
    size_t offset = 0;

    return Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal(data, len, &offset, out) == TSS2_RC_SUCCESS &&
           offset == len;
}

/* Step 7's policy, from what enrolment stored and the last exchange. */
static tether_status_t build_policy(exchange_call_t *call, token_work_t *w)
{
    const tether_store_exchange_device_t *d = &w->device;
    tether_evidence_policy_t *p = &w->policy;
    tether_status_t rc;

    if (!unmarshal_public(d->ek_public, d->ek_public_len, &w->ek) ||
        !unmarshal_public(d->ak_public, d->ak_public_len, &w->ak) ||
        !unmarshal_public(d->device_key_public, d->device_key_public_len, &w->device_key) ||
        !unmarshal_nv_public(d->counter_public, d->counter_public_len, &w->counter))
        return TETHER_ERR_PARSE; /* the row was written by enrolment: the database is damaged */
    if ((rc = tether_evidence_ak_qualified_name(&w->ek.publicArea, &w->ak.publicArea,
                                                &w->ak_qualified_name)) != TETHER_OK ||
        (rc = tether_evidence_counter_name(&w->counter.nvPublic, &w->counter_name)) != TETHER_OK)
        return rc;
    p->ak = &w->ak.publicArea;
    p->ak_qualified_name = &w->ak_qualified_name;
    p->counter_name = &w->counter_name;
    p->pcr_selection = call->api->policy->pcr_selection;
    /* Measured boot: the quote covers the policy's PCRs too, and the
     * reference values take the place of the first digest's (the logs
     * say why the PCRs hold what they hold: a kernel the policy admits
     * changes them). */
    if (w->policy_document.has_measured_boot) {
        tether_exchange_pcr_selection(tether_exchange_pcr_mask(&p->pcr_selection) |
                                          w->policy_document.measured_boot.pcr_mask,
                                      &p->pcr_selection);
    } else if (d->pcr_digest_len > 0) {
        /* Trust on first use: with no reference yet, any digest is
         * accepted and the first accepted one becomes the device's
         * reference. */
        if (d->pcr_digest_len > sizeof(w->reference.buffer))
            return TETHER_ERR_PARSE;
        w->reference.size = (UINT16)d->pcr_digest_len;
        memcpy(w->reference.buffer, d->pcr_digest, d->pcr_digest_len);
        p->pcr_digests = &w->reference;
        p->pcr_digest_count = 1;
    }
    /* A retry of the last accepted exchange carries that exchange's clock:
     * it is not checked against itself (evidence.h). */
    if (d->has_last) {
        w->last_clock.clock = d->last.clock.clock;
        w->last_clock.resetCount = d->last.clock.reset_count;
        w->last_clock.restartCount = d->last.clock.restart_count;
        w->last_clock.safe = d->last.clock.safe ? TPM2_YES : TPM2_NO;
        p->last_clock = &w->last_clock;
        p->retry_of_last = w->retry;
    }
    return TETHER_OK;
}

/* The counter and clockInfo lib's verification read from the evidence
 * (evidence.h: also after a clock_regression refusal). */
static void sighting_from_result(const tether_evidence_result_t *result,
                                 tether_store_sighting_t *s)
{
    s->counter = result->counter;
    s->clock.clock = result->clock.clock;
    s->clock.reset_count = result->clock.resetCount;
    s->clock.restart_count = result->clock.restartCount;
    s->clock.safe = result->clock.safe == TPM2_YES;
}

static void set_sighting_origin(exchange_call_t *call, tether_store_sighting_t *s)
{
    snprintf(s->address, sizeof(s->address), "%s", call->remote);
    s->at = call->now;
}

static bool policy_load(exchange_call_t *call, token_work_t *w, const char *name,
                        int64_t version);

/* Steps 6-7: the nonce, then the TPM's evidence against the enrolment and
 * the device's policy (its measured boot decides the PCR selection). A
 * clock regression goes on to the store (the second clone signal). */
static bool evidence_ok(exchange_call_t *call, token_work_t *w, bool *clock_regression)
{
    const char *id = w->ev.device_id;
    tether_status_t rc;

    *clock_regression = false;
    rc = tether_evidence_check_nonce(&w->ev, call->api->nonce_key, NULL,
                                     sizeof(call->api->nonce_key), (uint64_t)call->now, &w->code,
                                     w->why, sizeof(w->why));
    if (rc != TETHER_OK && w->code == TETHER_EVIDENCE_INTERNAL_ERROR) {
        server_error(call, "checking the nonce", rc);
        return false;
    }
    if (rc != TETHER_OK) {
        refuse(call, "exchange", id, 400, "invalid_grant", tether_evidence_code_name(w->code),
               "%s; ask POST /v1/challenge for a new nonce", w->why);
        return false;
    }
    /* The MAC holds, so the expiry is the fleet's own (challenge_members). */
    if (tether_nonce_expiry(w->ev.nonce) >
        (uint64_t)call->now + TETHER_CHALLENGE_TTL + TETHER_NONCE_WINDOW_LEEWAY) {
        refuse(call, "exchange", id, 400, "invalid_grant",
               TETHER_FLEET_EXCHANGE_NONCE_NOT_YET_VALID,
               "this evidence answers a next challenge whose window opens in %" PRIu64 " s, at "
               "the device's scheduled refresh; use it then, or ask POST /v1/challenge for a "
               "nonce to use now",
               tether_nonce_expiry(w->ev.nonce) - TETHER_CHALLENGE_TTL - (uint64_t)call->now);
        return false;
    }
    if (tether_evidence_fingerprint(&w->ev, w->fingerprint) != TETHER_OK ||
        tether_sha256(w->ev.nonce, sizeof(w->ev.nonce), w->nonce_hash) != TETHER_OK) {
        server_error(call, "fingerprinting the evidence", TETHER_ERR_CRYPTO);
        return false;
    }
    w->retry = w->device.has_last &&
               tether_ct_equal(w->device.last_fingerprint, w->fingerprint, sizeof(w->fingerprint));
    if (!policy_load(call, w, NULL, 0))
        return false;
    if ((rc = build_policy(call, w)) != TETHER_OK) {
        server_error(call, "reading the enrolment of the device", rc);
        return false;
    }
    rc = tether_evidence_verify(&w->ev, &w->policy, &w->result, &w->code, w->why, sizeof(w->why));
    if (rc == TETHER_OK)
        return true;
    if (w->code == TETHER_EVIDENCE_CLOCK_REGRESSION) {
        *clock_regression = true;
        return true;
    }
    if (w->code == TETHER_EVIDENCE_INTERNAL_ERROR) {
        server_error(call, "verifying the evidence", rc);
        return false;
    }
    refuse(call, "exchange", id, 400, "invalid_grant", tether_evidence_code_name(w->code), "%s",
           w->why);
    return false;
}

/* The usage document the TPM signed with the nonce (usage_document.h):
 * strictly parsed, its tokens handed to the exchange's transaction. */
static bool usage_ok(exchange_call_t *call, token_work_t *w)
{
    tether_store_exchange_t *ex = &w->exchange;
    tether_status_t rc;

    rc = tether_usage_document_parse(w->ev.usage, w->ev.usage_len, &w->usage, w->why,
                                     sizeof(w->why));
    if (rc != TETHER_OK) {
        refuse(call, "exchange", w->ev.device_id, 400, "invalid_grant",
               TETHER_FLEET_EXCHANGE_USAGE_INVALID,
               "%s; the usage document must be the canonical form of version 1 "
               "(agent/README.md)",
               w->why);
        return false;
    }
    for (size_t i = 0; i < w->usage.token_count; i++) {
        const tether_usage_document_token_t *t = &w->usage.tokens[i];

        w->usage_tokens[i] = (tether_store_device_usage_t){
            .jti = t->jti, .proofs = t->proofs, .requests = t->requests, .bearer = t->bearer};
    }
    ex->usage = w->usage_tokens;
    ex->usage_count = w->usage.token_count;
    ex->usage_action = call->api->policy->usage_mismatch_action;
    return true;
}

/* Measured boot (exchange_measured_boot.h), for a device whose policy has
 * it: the logs named by the form replay to the verified quote's PCRs and
 * keep to the reference values. A refusal is answered as a pcr_mismatch
 * (400 invalid_grant: what the evidence proves is not what the policy
 * allows), changes no device state (the counter the device incremented
 * stays unaccepted, a gap) and is written as an alert. */
static bool measured_boot_ok(exchange_call_t *call, token_work_t *w)
{
    const char *id = w->ev.device_id;
    tether_measured_boot_quote_t quote;
    tether_exchange_eventlogs_fault_t fault;
    tether_measured_boot_refusal_t *refusal = &w->refusal;
    char *details;
    tether_status_t rc;

    if (!w->policy_document.has_measured_boot)
        return true;
    rc = tether_exchange_eventlogs_resolve(call->api->store, id, &w->form, &w->eventlogs, &fault,
                                           w->why, sizeof(w->why));
    if (fault == TETHER_EXCHANGE_EVENTLOGS_SERVER) {
        server_error(call, w->why, rc);
        return false;
    }
    if (fault == TETHER_EXCHANGE_EVENTLOGS_MALFORMED) {
        refuse(call, "exchange", id, 400, "invalid_request", "malformed_request", "%s", w->why);
        return false;
    }
    if (fault == TETHER_EXCHANGE_EVENTLOGS_UNKNOWN) {
        refuse(call, "exchange", id, 400, "invalid_grant", TETHER_FLEET_EXCHANGE_EVENTLOG_UNKNOWN,
               "%s", w->why);
        return false;
    }
    /* The selection lib verified the quote against, and its digest. */
    memset(&quote, 0, sizeof(quote));
    quote.pcr_mask = tether_exchange_pcr_mask(&w->policy.pcr_selection);
    if (w->result.pcr_digest.size != sizeof(quote.pcr_digest)) {
        refuse(call, "exchange", id, 400, "invalid_grant",
               tether_evidence_code_name(TETHER_EVIDENCE_PCR_MISMATCH),
               "the quote's PCR digest is not a SHA-256");
        return false;
    }
    memcpy(quote.pcr_digest, w->result.pcr_digest.buffer, sizeof(quote.pcr_digest));
    rc = tether_measured_boot_check(&w->policy_document.measured_boot, w->eventlogs.platform.bytes,
                                    w->eventlogs.platform.len, w->eventlogs.tether.bytes,
                                    w->eventlogs.tether.len, &quote, refusal);
    if (rc == TETHER_OK)
        return true;
    if (rc != TETHER_ERR_VERIFY || refusal->code == NULL) {
        server_error(call, "checking the event logs", rc);
        return false;
    }
    if (strcmp(refusal->code, TETHER_MEASURED_BOOT_REPLAY_MISMATCH) == 0)
        tether_exchange_measured_boot_name_change(call->api->store, id, &w->eventlogs, refusal);
    details = tether_exchange_measured_boot_alert(refusal, w->stored_policy.name,
                                                  w->stored_policy.version);
    if (details == NULL ||
        (rc = tether_store_alert_add(call->api->store, id, TETHER_FLEET_ALERT_MEASURED_BOOT_REFUSED,
                                     details, call->now)) != TETHER_OK) {
        cJSON_free(details);
        server_error(call, "recording the measured-boot alert",
                     details == NULL ? TETHER_ERR_NO_MEMORY : rc);
        return false;
    }
    cJSON_free(details);
    if (refusal->has_event)
        refuse(call, "exchange", id, 400, "invalid_grant", refusal->code,
               "measured boot: %s (%s log, PCR %u, event %zu, type 0x%" PRIx32 ", digest %s); "
               "policy %s version %lld",
               refusal->text, refusal->log, refusal->pcr, refusal->event, refusal->type,
               refusal->digest_hex[0] != '\0' ? refusal->digest_hex : "-", w->stored_policy.name,
               (long long)w->stored_policy.version);
    else
        refuse(call, "exchange", id, 400, "invalid_grant", refusal->code,
               "measured boot: %s; policy %s version %lld", refusal->text, w->stored_policy.name,
               (long long)w->stored_policy.version);
    return false;
}

/* A token of the device used by someone else: the device is quarantined
 * (usage_mismatch_action quarantine) or only alerted. */
static void log_usage_mismatch(exchange_call_t *call, const token_work_t *w)
{
    const tether_store_usage_comparison_t *m = &w->recorded.mismatch;

    tether_error("exchange", "usage mismatch: device=%s jti=%.8s gateway_accepted=%" PRId64
                             " device_made=%" PRId64 " bearer_handouts=%" PRId64 " tokens=%zu "
                             "remote=%s: %s",
                 w->ev.device_id, m->jti, m->gateway_accepted, m->device_made, m->bearer,
                 w->recorded.usage_mismatches, call->remote,
                 w->recorded.decision == TETHER_STORE_EXCHANGE_USAGE_MISMATCH
                     ? "device quarantined, its tokens revoked"
                     : "alert only (usage_mismatch_action = alert)");
}

/* Loads into w the version version of the policy name, or the current
 * version of the policy the device follows when name is NULL, and reads
 * its document (a database row: read strictly). Answers 500 on failure. */
static bool policy_load(exchange_call_t *call, token_work_t *w, const char *name,
                        int64_t version)
{
    tether_store_policy_t *p = &w->stored_policy;
    tether_status_t rc;

    rc = name == NULL ? tether_store_device_policy(call->api->store, w->ev.device_id, p)
                      : tether_store_policy_get(call->api->store, name, version, p);
    if (rc == TETHER_OK)
        rc = tether_policy_document_parse((const uint8_t *)p->document, strlen(p->document),
                                          &w->policy_document, w->why, sizeof(w->why));
    if (rc != TETHER_OK) {
        tether_error("exchange", "policy %s version %lld of device %s: %s",
                     name != NULL ? name : "(current)", (long long)version, w->ev.device_id,
                     rc == TETHER_ERR_PARSE || rc == TETHER_ERR_TOO_LARGE ? w->why
                                                                           : tether_strerror(rc));
        server_error(call, "reading the device's policy", rc);
        return false;
    }
    w->policy_current = name == NULL;
    return true;
}

/*
 * When the next challenge's window opens: where the agent refreshes, at
 * 2/3 of the token's remaining life, give or take 5 % (fleetd draws the
 * jitter that spreads a fleet's refreshes; the agent refreshes when the
 * window opens: agent/README.md).
 */
static tether_status_t next_window_opens(const exchange_call_t *call, int64_t exp,
                                         int64_t *opens_at)
{
    int64_t remaining = exp > call->now ? exp - call->now : 1;
    uint32_t draw = 0;
    tether_status_t rc;

    *opens_at = 0;
    if ((rc = tether_random_bytes(&draw, sizeof(draw))) != TETHER_OK)
        return rc;
    *opens_at = call->now + remaining * 2 / 3 - remaining / 20 +
                (int64_t)(draw % (uint64_t)(remaining / 10 + 1));
    return TETHER_OK;
}

/* The answer's "next_challenge": the nonce for the device's next exchange,
 * so that its refresh is one request (POST /v1/token only), with what a
 * challenge for doc would carry. */
static tether_status_t add_next_challenge(exchange_call_t *call, const char *device_id,
                                          const tether_policy_document_t *doc, int64_t exp,
                                          cJSON *json)
{
    cJSON *next = cJSON_AddObjectToObject(json, "next_challenge");
    int64_t opens_at;
    tether_status_t rc;

    if (next == NULL)
        return TETHER_ERR_NO_MEMORY;
    if ((rc = next_window_opens(call, exp, &opens_at)) != TETHER_OK)
        return rc;
    return challenge_members(call, device_id, doc, opens_at, next);
}

/* A token answer that is not sent: its strings may hold a copy of the
 * token. */
static void answer_discard(cJSON *json)
{
    for (cJSON *item = json != NULL ? json->child : NULL; item != NULL; item = item->next)
        if (cJSON_IsString(item) && item->valuestring != NULL)
            tether_wipe(item->valuestring, strlen(item->valuestring));
    cJSON_Delete(json);
}

/* The 200 answer with a signed token into w->answer, which answer_send()
 * completes and sends. Called with the keys locked. */
static void issue(exchange_call_t *call, token_work_t *w, const tether_token_facts_t *facts,
                  const char *kid, const char *what)
{
    const char *kid_used = NULL;
    size_t len = 0;
    tether_status_t rc;
    cJSON *claims = tether_token_claims(call->api->policy, facts), *json = NULL;

    if (claims == NULL) {
        server_error(call, "building the claims", TETHER_ERR_NO_MEMORY);
        return;
    }
    rc = tether_issuer_keys_sign_locked(call->api->keys, kid, claims, w->token, sizeof(w->token),
                                        &len, &kid_used);
    cJSON_Delete(claims);
    if (rc != TETHER_OK) {
        /* The exchange is recorded: the agent's retry of this evidence
         * gets this token's id. */
        server_error(call, "signing the token", rc);
        return;
    }
    json = cJSON_CreateObject();
    if (json == NULL || cJSON_AddStringToObject(json, "access_token", w->token) == NULL ||
        cJSON_AddStringToObject(json, "issued_token_type", TETHER_TOKEN_TYPE_ACCESS_TOKEN) ==
            NULL ||
        cJSON_AddStringToObject(json, "token_type", "Bearer") == NULL ||
        cJSON_AddNumberToObject(json, "expires_in", (double)(facts->exp - call->now)) == NULL ||
        cJSON_AddStringToObject(json, "scope", facts->scope) == NULL) {
        answer_discard(json);
        server_error(call, "answering", TETHER_ERR_NO_MEMORY);
        return;
    }
    tether_info("exchange", "%s: device=%s counter=%" PRIu64 " jti=%.8s kid=%.8s expires_in=%lld "
                            "remote=%s",
                what, facts->device_id, facts->counter, facts->jti, kid_used,
                (long long)(facts->exp - call->now), call->remote);
    w->answer = json;
    w->answer_exp = facts->exp;
}

/* Sends w->answer with its next challenge, made as a challenge asked for
 * now would be: from the device's policy now, and after the accepted
 * exchange's event logs are kept (keep_eventlogs), so that it names them
 * and the device's next refresh sends their hashes only. Called without
 * the keys' lock. */
static void answer_send(exchange_call_t *call, token_work_t *w)
{
    challenge_policy_t *current = NULL;
    const tether_policy_document_t *doc = &w->policy_document;
    tether_status_t rc = TETHER_OK;

    /* A retry's token is issued again under the policy version it was
     * issued under; the next exchange is checked against today's. */
    if (!w->policy_current) {
        current = calloc(1, sizeof(*current));
        rc = current != NULL ? challenge_policy_load(call, w->ev.device_id, current)
                             : TETHER_ERR_NO_MEMORY;
        if (current != NULL)
            doc = &current->document;
    }
    if (rc == TETHER_OK)
        rc = add_next_challenge(call, w->ev.device_id, doc, w->answer_exp, w->answer);
    if (rc == TETHER_OK) {
        tether_http_respond_json(call->response, 200, w->answer);
    } else {
        answer_discard(w->answer);
        server_error(call, "answering", rc);
    }
    w->answer = NULL;
    free(current);
}

static void clone_detected(exchange_call_t *call, token_work_t *w)
{
    const tether_store_exchange_result_t *r = &w->recorded;
    const char *id = w->ev.device_id;
    uint64_t highest = r->has_last ? r->last.counter : 0;
    const char *signal = r->decision == TETHER_STORE_EXCHANGE_CLONE ? "counter_not_increasing"
                                                                    : "clock_regression";

    tether_error("exchange", "clone detected: device=%s signal=%s counter=%" PRIu64
                             " highest_accepted=%" PRIu64 " remote=%s last_remote=%s: device "
                             "quarantined, its tokens revoked",
                 id, signal, w->exchange.sighting.counter, highest, call->remote,
                 r->has_last ? r->last.address : "-");
    if (call->metrics != NULL)
        tether_fleet_metrics_count(call->metrics->clone_alerts, signal, NULL);
    if (r->decision == TETHER_STORE_EXCHANGE_CLONE)
        refuse(call, "exchange", id, 403, "invalid_grant", "clone_detected",
               "clone detected: this evidence's counter (%" PRIu64 ") is not above the highest "
               "this fleet accepted (%" PRIu64 "), so two TPM states hold this device's keys; "
               "the device is quarantined and its tokens revoked",
               w->exchange.sighting.counter, highest);
    else
        refuse(call, "exchange", id, 403, "invalid_grant", "clone_detected",
               "clone detected: the TPM clock went back (clock_regression: %s), so two TPM "
               "states hold this device's keys; the device is quarantined and its tokens "
               "revoked",
               w->why);
}

/* The logs whose bytes an accepted exchange brought become the ones the
 * challenge names. A failure costs the device its next exchange's bytes
 * again (the challenge names the older log), never a token. */
static void keep_eventlogs(exchange_call_t *call, const token_work_t *w)
{
    const tether_exchange_eventlogs_t *logs = &w->eventlogs;
    tether_status_t rc;

    if (!w->policy_document.has_measured_boot)
        return;
    rc = tether_exchange_eventlogs_keep(call->api->store, w->ev.device_id, logs, call->now);
    if (rc != TETHER_OK)
        tether_warn("exchange", "measured boot: device=%s: keeping its event logs failed (%s); "
                                "its next exchange sends them again",
                    w->ev.device_id, tether_strerror(rc));
    else
        tether_info("exchange", "measured boot: device=%s platform_log=%s (%zu bytes) "
                                "tether_log=%s (%zu bytes)",
                    w->ev.device_id, logs->platform.sent ? "received" : "held",
                    logs->platform.len, logs->tether.sent ? "received" : "held",
                    logs->tether.len);
}

/* Steps 8-9: one transaction decides, then the token is signed. */
static void record_and_issue(exchange_call_t *call, token_work_t *w, bool clock_regression)
{
    tether_exchange_api_t *api = call->api;
    tether_store_exchange_t *ex = &w->exchange;
    tether_store_exchange_result_t *r = &w->recorded;
    tether_token_facts_t facts;
    const char *id = w->ev.device_id;
    tether_status_t rc;

    memset(&facts, 0, sizeof(facts));
    ex->device_id = id;
    memcpy(ex->fingerprint, w->fingerprint, sizeof(ex->fingerprint));
    memcpy(ex->nonce_hash, w->nonce_hash, sizeof(ex->nonce_hash));
    /* Checked by tether_evidence_check_nonce: the fleet's own word. */
    ex->nonce_expires_at = (int64_t)tether_nonce_expiry(w->ev.nonce);
    ex->nonce_issued_at = ex->nonce_expires_at - TETHER_CHALLENGE_TTL;
    set_sighting_origin(call, &ex->sighting);
    sighting_from_result(&w->result, &ex->sighting);
    ex->clock_regression = clock_regression;
    if (!clock_regression) {
        tether_status_t jkt_rc;
        tether_ec_key_t pk;

        /* A device under measured boot keeps no first digest: its
         * reference values decide (build_policy). */
        if (!w->policy_document.has_measured_boot) {
            ex->pcr_digest = w->result.pcr_digest.buffer;
            ex->pcr_digest_len = w->result.pcr_digest.size;
        }
        /* cnf.jkt: the device key enrolment certified with the AK. */
        tether_ec_key_init(&pk);
        jkt_rc = tether_tpm2_public_to_ec_key(&w->device_key.publicArea, &pk);
        if (jkt_rc == TETHER_OK)
            jkt_rc = tether_jwk_thumbprint_key(&pk, w->jkt, sizeof(w->jkt));
        tether_ec_key_free(&pk);
        if (jkt_rc != TETHER_OK || (rc = tether_token_jti_new(w->jti)) != TETHER_OK) {
            server_error(call, "preparing the token", jkt_rc != TETHER_OK ? jkt_rc : rc);
            return;
        }
        ex->jti = w->jti;
        ex->scope = w->scope;
        ex->audience = w->audience;
        ex->policy = w->stored_policy.name;
        ex->policy_version = w->stored_policy.version;
        ex->exp = call->now + (int64_t)w->policy_document.lifetime_seconds;
        if (w->policy_document.thresholds[TETHER_THRESHOLD_SOURCE_NETWORKS].set &&
            !tether_policy_source_allowed(&w->policy_document, call->remote))
            ex->source_threshold =
                &w->policy_document.thresholds[TETHER_THRESHOLD_SOURCE_NETWORKS];
    }
    /* From the kid's choice to the signature: a rotation meanwhile would
     * not see this token when it computes the old key's not_after. */
    tether_issuer_keys_lock(api->keys);
    ex->kid = tether_issuer_keys_active_kid(api->keys);
    rc = tether_store_exchange_record(api->store, ex, call->now, r);
    if (rc != TETHER_OK) {
        server_error(call, "recording the exchange", rc);
        goto out;
    }
    facts.device_id = id;
    facts.jkt = w->jkt;
    facts.policy_name = w->stored_policy.name;
    facts.policy_version = w->stored_policy.version;
    facts.policy_document = &w->policy_document;
    if (r->usage_mismatches > 0)
        log_usage_mismatch(call, w);
    if (r->source_alerted)
        tether_warn("exchange", "source outside the policy: device=%s remote=%s policy=%s "
                                "version=%lld: %s",
                    id, call->remote, w->stored_policy.name,
                    (long long)w->stored_policy.version,
                    r->decision == TETHER_STORE_EXCHANGE_SOURCE_REFUSED
                        ? "device quarantined, its tokens revoked"
                        : "alert only, token issued");
    switch (r->decision) {
    case TETHER_STORE_EXCHANGE_SOURCE_REFUSED:
        refuse(call, "exchange", id, 403, "invalid_grant", TETHER_FLEET_EXCHANGE_SOURCE_REFUSED,
               "this exchange comes from %s, outside the sources of policy %s: the device is "
               "quarantined and its tokens revoked",
               call->remote != NULL ? call->remote : "an unknown address",
               w->stored_policy.name);
        break;
    case TETHER_STORE_EXCHANGE_USAGE_MISMATCH:
        refuse(call, "exchange", id, 403, "invalid_grant", TETHER_FLEET_EXCHANGE_USAGE_MISMATCH,
               "relying parties accepted %" PRId64 " requests on token %.8s..., this device "
               "made %" PRId64 ": another party holds its token; the device is quarantined and "
               "its tokens revoked",
               r->mismatch.gateway_accepted, r->mismatch.jti, r->mismatch.device_made);
        break;
    case TETHER_STORE_EXCHANGE_ACCEPT:
        facts.jti = ex->jti;
        facts.scope = ex->scope;
        facts.audience = ex->audience;
        facts.iat = call->now;
        facts.exp = ex->exp;
        facts.counter = ex->sighting.counter;
        issue(call, w, &facts, ex->kid, "token issued");
        break;
    case TETHER_STORE_EXCHANGE_RETRY:
        /* The same token again: same jti, iat, exp and claims, signed by
         * the key that signed it if it is still loaded. */
        if (r->token.revoked || r->token.exp <= call->now) {
            refuse(call, "exchange", id, 400, "invalid_grant",
                   tether_evidence_code_name(TETHER_EVIDENCE_NONCE_EXPIRED),
                   "the token issued for this evidence is %s; start a new exchange with POST "
                   "/v1/challenge",
                   r->token.revoked ? "revoked" : "expired");
            break;
        }
        if (r->token.policy_version == 0) {
            refuse(call, "exchange", id, 400, "invalid_grant",
                   tether_evidence_code_name(TETHER_EVIDENCE_NONCE_EXPIRED),
                   "the token issued for this evidence predates the record of its policy, so "
                   "it cannot be issued again; start a new exchange with POST /v1/challenge");
            break;
        }
        /* The claims of the policy version it was issued under, even if
         * the device has been moved or its policy updated since. */
        if ((strcmp(r->token.policy, w->stored_policy.name) != 0 ||
             r->token.policy_version != w->stored_policy.version) &&
            !policy_load(call, w, r->token.policy, r->token.policy_version))
            break;
        facts.jti = r->token.jti;
        facts.scope = r->token.scope;
        facts.audience = r->token.audience;
        facts.iat = r->token.issued_at;
        facts.exp = r->token.exp;
        facts.counter = r->token.counter;
        call->outcome = "retry"; /* a failure in issue() says server_error */
        issue(call, w, &facts, r->token.kid[0] != '\0' ? r->token.kid : NULL,
              "token issued again for a retry");
        break;
    case TETHER_STORE_EXCHANGE_CLONE:
    case TETHER_STORE_EXCHANGE_CLOCK_REGRESSION:
        clone_detected(call, w);
        break;
    case TETHER_STORE_EXCHANGE_NOT_ACTIVE:
        refuse_status(call, "exchange", id, r->status);
        break;
    case TETHER_STORE_EXCHANGE_NONCE_REUSED:
        refuse(call, "exchange", id, 400, "invalid_grant", TETHER_FLEET_EXCHANGE_NONCE_REUSED,
               "this nonce was used by an accepted exchange already (a replayed evidence); "
               "start a new exchange with POST /v1/challenge");
        break;
    case TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED:
        refuse(call, "exchange", id, 400, "invalid_grant",
               tether_evidence_code_name(TETHER_EVIDENCE_NONCE_EXPIRED),
               "this evidence answers a nonce issued before the device's last accepted "
               "exchange, so it is older than that exchange; start a new exchange with POST "
               "/v1/challenge");
        break;
    }
out:
    tether_issuer_keys_unlock(api->keys);
    /* Outside the keys' lock; before the answer's next challenge is made
     * (answer_send), so that it names these logs, as the device's next
     * challenge asked for would. */
    if (rc == TETHER_OK && r->decision == TETHER_STORE_EXCHANGE_ACCEPT)
        keep_eventlogs(call, w);
    if (w->answer != NULL)
        answer_send(call, w);
}

/* Each thread keeps its token_work_t (122 KiB) from its first POST
 * /v1/token to its exit, zeroed between requests by the wipe that ends each
 * one: a calloc and free per exchange zeroed it a second time, and glibc
 * returned its pages to the kernel at each free, so every request faulted
 * them in again. */
static pthread_key_t work_key;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;
static bool work_key_ready; /* pthread_key_create succeeded */

static void work_release(void *arg)
{
    tether_wipe(arg, sizeof(token_work_t));
    free(arg);
}

static void work_key_create(void)
{
    work_key_ready = pthread_key_create(&work_key, work_release) == 0;
}

/* A zeroed token_work_t for this request: this thread's, or (when no
 * thread key can be had) one of its own, which *kept says the caller
 * releases. NULL without memory. */
static token_work_t *work_get(bool *kept)
{
    token_work_t *w;

    *kept = pthread_once(&work_once, work_key_create) == 0 && work_key_ready;
    if (*kept && (w = pthread_getspecific(work_key)) != NULL)
        return w;
    if ((w = calloc(1, sizeof(*w))) != NULL && *kept)
        *kept = pthread_setspecific(work_key, w) == 0;
    return w;
}

static void handle_token(exchange_call_t *call)
{
    bool clock_regression = false, kept;
    token_work_t *w = work_get(&kept);

    if (w == NULL) {
        server_error(call, "exchange", TETHER_ERR_NO_MEMORY);
        return;
    }
    if (form_ok(call, w) && device_ok(call, w) && evidence_ok(call, w, &clock_regression) &&
        (clock_regression || (usage_ok(call, w) && measured_boot_ok(call, w))))
        record_and_issue(call, w, clock_regression);
    tether_exchange_eventlogs_free(&w->eventlogs);
    if (kept)
        tether_wipe(w, sizeof(*w)); /* and zeroed for this thread's next request */
    else
        work_release(w);
}

/* ---- entry points (router.c has checked method, query, media type and size) ---- */

/* Counts the answer: a token endpoint's "issued" is a new token signed. */
static void count(exchange_call_t *call, bool token_endpoint)
{
    const char *outcome = call->outcome;

    if (call->metrics == NULL)
        return;
    if (outcome == NULL)
        outcome = call->response->status < 300 ? "issued" : "server_error";
    tether_fleet_metrics_count(token_endpoint ? call->metrics->exchanges
                                              : call->metrics->challenges,
                               outcome, NULL);
    if (token_endpoint && strcmp(outcome, "issued") == 0)
        tether_metric_add(call->metrics->tokens_issued, 1);
}

static void run(tether_route_call_t *route, void (*handle)(exchange_call_t *call))
{
    exchange_call_t call;
    const char *remote = route->request->remote;

    memset(&call, 0, sizeof(call));
    call.api = route->router->exchange;
    call.request = route->request;
    call.response = route->response;
    call.remote = remote != NULL && remote[0] != '\0' ? remote : "-";
    call.now = call.api->clock != NULL ? call.api->clock() : (int64_t)time(NULL);
    call.metrics = route->router->metrics;
    handle(&call);
    count(&call, handle == handle_token);
    tether_wipe(&call, sizeof(call));
}

void tether_exchange_api_challenge(tether_route_call_t *call)
{
    run(call, handle_challenge);
}

void tether_exchange_api_token(tether_route_call_t *call)
{
    run(call, handle_token);
}
