/* POST /v1/introspect and GET /v1/revocations (router.c authenticates the
 * caller and checks its role), and the long poll of the feed. */
#include "relying_party_api.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "introspect_request.h"
#include "tether/bytes.h"
#include "tether/log.h"
#include "validate.h"

#define SEQ_MAX (1LL << 53) /* what a JSON number carries exactly */

void tether_rp_api_init(tether_rp_api_t *api, tether_store_t *store)
{
    if (api == NULL)
        return;
    memset(api, 0, sizeof(*api));
    api->store = store;
    tether_revocation_feed_init(&api->feed, store);
}

void tether_rp_api_set_keys(tether_rp_api_t *api, const tether_introspect_keys_t *keys)
{
    if (api != NULL && keys != NULL)
        api->keys = *keys;
}

void tether_rp_api_free(tether_rp_api_t *api)
{
    if (api == NULL)
        return;
    tether_revocation_feed_free(&api->feed);
    memset(api, 0, sizeof(*api));
}

void tether_rp_api_revoked(tether_rp_api_t *api)
{
    if (api != NULL)
        tether_revocation_feed_notify(&api->feed);
}

static void bad_request(tether_http_response_t *response, const char *message)
{
    tether_http_respond_error(response, 400, "invalid_request", message);
}

/* ---- POST /v1/introspect ---- */

static void log_decision(const tether_store_admin_token_t *caller,
                         const tether_introspect_result_t *result)
{
    const char *reason = tether_introspect_reason_name(result->reason);

    /* A revoked token still in use is worth a line; the rest (every API
     * call of a gateway may introspect) only at debug. */
    if (result->reason == TETHER_INTROSPECT_TOKEN_REVOKED ||
        result->reason == TETHER_INTROSPECT_DEVICE_NOT_ACTIVE)
        tether_info("introspect", "inactive token presented: reason=%s device=%s jti=%s "
                                  "device_status=%s caller=%lld",
                    reason, result->device_id, result->jti,
                    tether_device_status_name(result->device_status), (long long)caller->id);
    else
        tether_debug("introspect", "active=%s reason=%s device=%s jti=%s caller=%lld",
                     result->reason == TETHER_INTROSPECT_ACTIVE ? "true" : "false", reason,
                     result->device_id[0] != '\0' ? result->device_id : "-",
                     result->jti[0] != '\0' ? result->jti : "-", (long long)caller->id);
}

void tether_rp_api_introspect(tether_route_call_t *call)
{
    tether_rp_api_t *api = call->router->relying_party;
    const tether_http_request_t *request = call->request;
    tether_http_response_t *response = call->response;
    tether_introspect_request_t *form = NULL;
    tether_introspect_result_t result;
    char message[TETHER_INTROSPECT_MESSAGE_SIZE];
    tether_status_t rc;
    cJSON *answer;

    memset(&result, 0, sizeof(result));
    /* 8 KiB: on the heap rather than a worker thread's stack. */
    if ((form = malloc(sizeof(*form))) == NULL) {
        tether_http_respond_error(response, 500, "server_error", "out of memory");
        return;
    }
    if (tether_introspect_request_parse((const char *)request->body, request->body_len, form,
                                        message, sizeof(message)) != TETHER_OK) {
        bad_request(response, message);
        goto out;
    }
    if (form->too_long)
        result.reason = TETHER_INTROSPECT_MALFORMED;
    else if ((rc = tether_introspect_token(api->store, &api->keys, form->token, form->token_len,
                                           (int64_t)time(NULL), &result)) != TETHER_OK) {
        tether_error("introspect", "no decision: %s", tether_strerror(rc));
        tether_http_respond_error(response, 500, "server_error",
                                  "the token could not be checked; see the server log");
        goto out;
    }
    log_decision(&call->caller, &result);
    if ((answer = tether_introspect_answer(&result)) == NULL)
        tether_http_respond_error(response, 500, "server_error", "out of memory");
    else
        tether_http_respond_json(response, 200, answer);
out:
    tether_introspect_result_clear(&result);
    tether_introspect_request_clear(form);
    free(form);
}

/* ---- GET /v1/revocations ---- */

/* A decimal number from 0 to max (validate.h: no sign, spaces or leading
 * zeros). */
static bool parse_number(const char *text, long long max, long long *value)
{
    uint64_t v = 0;
    bool ok = tether_fleet_decimal_parse(text, (uint64_t)max, &v);

    *value = (long long)v;
    return ok;
}

/* A waiting feed request: what the waker's polls need. */
typedef struct feed_wait {
    tether_rp_api_t *api;
    int64_t after;
} feed_wait_t;

/* Fills response with the page after after; false on a store failure (the
 * response then holds a 500). */
static bool respond_page(tether_store_t *store, int64_t after, tether_http_response_t *response,
                         size_t *count)
{
    cJSON *answer = NULL;
    tether_status_t rc = tether_revocation_feed_page(store, after, &answer, count);

    if (rc != TETHER_OK) {
        tether_error("feed", "cannot read the revocation feed: %s", tether_strerror(rc));
        tether_http_respond_error(response, 500, "server_error",
                                  "the revocation feed could not be read; see the server log");
        return false;
    }
    tether_http_respond_json(response, 200, answer);
    return true;
}

static bool feed_poll(void *arg, bool final, tether_http_response_t *response)
{
    feed_wait_t *wait = arg;
    int64_t head = 0;

    if (!final) {
        if (tether_revocation_feed_head(&wait->api->feed, &head) != TETHER_OK) {
            tether_http_respond_error(response, 500, "server_error",
                                      "the revocation feed could not be read; see the server log");
            return true;
        }
        if (head <= wait->after)
            return false;
    }
    (void)respond_page(wait->api->store, wait->after, response, NULL);
    return true;
}

static void feed_release(void *arg)
{
    free(arg);
}

void tether_rp_api_feed(tether_route_call_t *call)
{
    tether_rp_api_t *api = call->router->relying_party;
    const tether_http_request_t *request = call->request;
    tether_http_response_t *response = call->response;
    long long after = 0, wait = 0;
    feed_wait_t *waiting;
    size_t count = 0;

    /* The route allows after and wait, each once. */
    for (size_t i = 0; i < request->query_count; i++) {
        const tether_http_query_t *q = &request->query[i];

        if (strcmp(q->key, "after") == 0) {
            if (!parse_number(q->value, SEQ_MAX, &after)) {
                bad_request(response, "after must be a revocation seq (a non-negative integer)");
                return;
            }
        } else if (!parse_number(q->value, 1000000000LL, &wait)) {
            bad_request(response, "wait must be a number of seconds (0 to 30)");
            return;
        }
    }
    if (wait > TETHER_FLEET_FEED_MAX_WAIT)
        wait = TETHER_FLEET_FEED_MAX_WAIT;
    if (!respond_page(api->store, (int64_t)after, response, &count) || count > 0 || wait == 0)
        return;
    /* Nothing newer yet: wait for a revocation or the end of wait. */
    tether_http_response_clear(response);
    if ((waiting = calloc(1, sizeof(*waiting))) == NULL) {
        tether_http_respond_error(response, 500, "server_error", "out of memory");
        return;
    }
    waiting->api = api;
    waiting->after = (int64_t)after;
    response->park.poll = feed_poll;
    response->park.release = feed_release;
    response->park.arg = waiting;
    response->park.timeout_ms = (unsigned)wait * 1000u;
}
