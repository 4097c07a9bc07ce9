/* The exchange's answers: refusals and errors, and the token answer
 * (exchange_internal.h). */
#include "exchange_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/random.h"

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

/* Answers a refusal and logs it (never a token, nonce or evidence: the
 * reasons come from parsers and checks that do not echo them). */
void exchange_refuse(exchange_call_t *call, const char *what, const char *device_id,
                     unsigned status, const char *error, const char *tether_error, const char *fmt,
                     ...)
{
    char description[EXCHANGE_WHY_SIZE + 128];
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

void exchange_server_error(exchange_call_t *call, const char *what, tether_status_t rc)
{
    tether_error("exchange", "%s failed: %s", what, tether_strerror(rc));
    call->outcome = "server_error";
    respond(call, 500, "server_error", "server_error",
            "the fleet could not complete the exchange; see the server log");
}

/* The refusal for a device that may not exchange (403 on both endpoints). */
void exchange_refuse_status(exchange_call_t *call, const char *what, const char *device_id,
                            tether_device_status_t status)
{
    switch (status) {
    case TETHER_DEVICE_REVOKED:
        exchange_refuse(
            call, what, device_id, 403, "invalid_grant", "device_revoked",
            "this device is revoked: it gets no tokens until an operator reinstates it and "
            "it enrols again");
        break;
    case TETHER_DEVICE_QUARANTINED:
        exchange_refuse(call, what, device_id, 403, "invalid_grant", "device_quarantined",
                        "this device is quarantined (suspected clone): it gets no tokens until an "
                        "operator checks it, reinstates it and it enrols again");
        break;
    default:
        exchange_refuse(
            call, what, device_id, 403, "invalid_grant", "device_not_active",
            "this device is not enrolled (status %s): enrol it first (tether-agent enroll)",
            tether_device_status_name(status));
        break;
    }
}

void exchange_refuse_unknown(exchange_call_t *call, const char *what, const char *device_id)
{
    exchange_refuse(
        call, what, device_id, 403, "invalid_grant", "unknown_device",
        "no device with this id is enrolled in this fleet (tether-agent enroll enrols one)");
}

/* ---- the token answer ---- */

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
    return exchange_challenge_members(call, device_id, doc, opens_at, next);
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

/* The 200 answer with a signed token into w->answer, which exchange_answer_send()
 * completes and sends. Called with the keys locked. */
void exchange_answer_issue(exchange_call_t *call, token_work_t *w,
                           const tether_token_facts_t *facts, const char *kid, const char *what)
{
    const char *kid_used = NULL;
    size_t len = 0;
    tether_status_t rc;
    cJSON *claims = tether_token_claims(call->api->policy, facts), *json = NULL;

    if (claims == NULL) {
        exchange_server_error(call, "building the claims", TETHER_ERR_NO_MEMORY);
        return;
    }
    rc = tether_issuer_keys_sign_locked(call->api->keys, kid, claims, w->token, sizeof(w->token),
                                        &len, &kid_used);
    cJSON_Delete(claims);
    if (rc != TETHER_OK) {
        /* The exchange is recorded: the agent's retry of this evidence
         * gets this token's id. */
        exchange_server_error(call, "signing the token", rc);
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
        exchange_server_error(call, "answering", TETHER_ERR_NO_MEMORY);
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
void exchange_answer_send(exchange_call_t *call, token_work_t *w)
{
    exchange_challenge_policy_t *current = NULL;
    const tether_policy_document_t *doc = &w->policy_document;
    tether_status_t rc = TETHER_OK;

    /* A retry's token is issued again under the policy version it was
     * issued under; the next exchange is checked against today's. */
    if (!w->policy_current) {
        current = calloc(1, sizeof(*current));
        rc = current != NULL ? exchange_challenge_policy_load(call, w->ev.device_id, current)
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
        exchange_server_error(call, "answering", rc);
    }
    w->answer = NULL;
    free(current);
}
