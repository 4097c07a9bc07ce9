/* POST /v1/challenge, and the members of every challenge
 * (exchange_internal.h). */
#include "exchange_internal.h"

#include <stdlib.h>
#include <string.h>

#include "tether/base64url.h"
#include "tether/json_strict.h"
#include "tether/log.h"
#include "tether/nonce.h"
#include "validate.h"

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
        exchange_refuse(call, "challenge", NULL, 400, "invalid_request", "invalid_request",
                        "the body must be {\"device_id\": \"dev_...\"} and nothing else");
        return false;
    }
    *id = member->valuestring;
    return true;
}

tether_status_t exchange_challenge_policy_load(exchange_call_t *call, const char *id,
                                               exchange_challenge_policy_t *p)
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
 * became usable, which the clone rule (store_exchange.h, NONCE_SUPERSEDED) and
 * usage reconciliation take as its issue time, and evidence_ok refuses a
 * nonce used before its window (nonce_not_yet_valid).
 */
tether_status_t exchange_challenge_members(exchange_call_t *call, const char *device_id,
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

void exchange_challenge_handle(exchange_call_t *call)
{
    tether_exchange_api_t *api = call->api;
    tether_store_device_t device;
    exchange_challenge_policy_t *policy = NULL;
    cJSON *body = NULL, *json = NULL;
    const char *id = NULL;
    tether_status_t rc;

    if (!challenge_body(call, &body, &id))
        goto out;
    rc = tether_fleet_device_id_valid(id, strlen(id))
             ? tether_store_device_get(api->store, id, &device)
             : TETHER_ERR_NOT_FOUND;
    if (rc == TETHER_ERR_NOT_FOUND) {
        exchange_refuse_unknown(call, "challenge", id);
        goto out;
    }
    if (rc != TETHER_OK) {
        exchange_server_error(call, "challenge", rc);
        goto out;
    }
    if (device.status != TETHER_DEVICE_ACTIVE) {
        exchange_refuse_status(call, "challenge", id, device.status);
        goto out;
    }
    if ((policy = calloc(1, sizeof(*policy))) == NULL) {
        exchange_server_error(call, "challenge", TETHER_ERR_NO_MEMORY);
        goto out;
    }
    if ((rc = exchange_challenge_policy_load(call, id, policy)) != TETHER_OK) {
        exchange_server_error(call, "reading the device's policy", rc);
        goto out;
    }
    json = cJSON_CreateObject();
    rc = json != NULL ? exchange_challenge_members(call, id, &policy->document, call->now, json)
                      : TETHER_ERR_NO_MEMORY;
    if (rc != TETHER_OK) {
        exchange_server_error(call, "issuing a challenge", rc);
        goto out;
    }
    tether_http_respond_json(call->response, 200, json);
    json = NULL;
out:
    cJSON_Delete(json);
    free(policy);
    cJSON_Delete(body);
}
