/* POST /v1/introspect and GET /v1/revocations: routing, authentication,
 * roles, and the long poll of the feed. */
#include "relying_party_api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "introspect_request.h"
#include "tether/bytes.h"
#include "tether/log.h"
#include "validate.h"

#define INTROSPECT_PATH "/v1/introspect"
#define FEED_PATH "/v1/revocations"
#define FEED_ROLES (TETHER_ROLE_RELYING_PARTY | TETHER_ROLE_SECURITY | TETHER_ROLE_READ)
#define SEQ_MAX (1LL << 53) /* what a JSON number carries exactly */

void tether_rp_api_init(tether_rp_api_t *api, tether_admin_api_t *admin, tether_store_t *store)
{
    if (api == NULL)
        return;
    memset(api, 0, sizeof(*api));
    api->admin = admin;
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

bool tether_rp_api_owns(const char *path)
{
    return path != NULL && (strcmp(path, INTROSPECT_PATH) == 0 || strcmp(path, FEED_PATH) == 0);
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

/* The media type of a Content-Type header, ignoring parameters and case. */
static bool media_type_is(const char *content_type, const char *expected)
{
    size_t len = strlen(expected);

    if (content_type == NULL || strncasecmp(content_type, expected, len) != 0)
        return false;
    return content_type[len] == '\0' || content_type[len] == ';' || content_type[len] == ' ';
}

/* Authenticated and holding one of roles: true. Otherwise the response is
 * filled (401, 403, 500). */
static bool authorize(tether_rp_api_t *api, const tether_http_request_t *request,
                      tether_http_response_t *response, unsigned roles, const char *needed,
                      tether_store_admin_token_t *caller)
{
    if (!tether_admin_authenticate(api->admin, request, response, caller))
        return false;
    if ((caller->roles & roles) != 0)
        return true;
    tether_http_respond_error(response, 403, "insufficient_scope", needed);
    return false;
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

static void handle_introspect(tether_rp_api_t *api, const tether_http_request_t *request,
                              tether_http_response_t *response)
{
    tether_introspect_request_t *form = NULL;
    tether_introspect_result_t result;
    tether_store_admin_token_t caller;
    char message[TETHER_INTROSPECT_MESSAGE_SIZE];
    tether_status_t rc;
    cJSON *answer;

    memset(&result, 0, sizeof(result));
    if (strcmp(request->method, "POST") != 0) {
        response->allow = "POST";
        tether_http_respond_error(response, 405, "method_not_allowed", "use POST");
        return;
    }
    if (!authorize(api, request, response, TETHER_ROLE_RELYING_PARTY,
                   "this request needs an admin token with the relying-party role", &caller))
        return;
    if (request->query_count > 0 || request->query_overflow) {
        bad_request(response, "this request takes no query parameters");
        return;
    }
    if (!media_type_is(request->content_type, "application/x-www-form-urlencoded")) {
        tether_http_respond_error(response, 415, "unsupported_media_type",
                                  "send Content-Type: application/x-www-form-urlencoded");
        return;
    }
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
    log_decision(&caller, &result);
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

static void handle_feed(tether_rp_api_t *api, const tether_http_request_t *request,
                        tether_http_response_t *response)
{
    tether_store_admin_token_t caller;
    long long after = 0, wait = 0;
    bool seen_after = false, seen_wait = false;
    feed_wait_t *waiting;
    size_t count = 0;

    if (strcmp(request->method, "GET") != 0) {
        response->allow = "GET";
        tether_http_respond_error(response, 405, "method_not_allowed", "use GET");
        return;
    }
    if (!authorize(api, request, response, FEED_ROLES,
                   "this request needs an admin token with the relying-party, security or read "
                   "role", &caller))
        return;
    if (request->query_overflow) {
        bad_request(response, "too many query parameters");
        return;
    }
    for (size_t i = 0; i < request->query_count; i++) {
        const tether_http_query_t *q = &request->query[i];

        if (strcmp(q->key, "after") == 0 && !seen_after) {
            seen_after = true;
            if (!parse_number(q->value, SEQ_MAX, &after)) {
                bad_request(response, "after must be a revocation seq (a non-negative integer)");
                return;
            }
        } else if (strcmp(q->key, "wait") == 0 && !seen_wait) {
            seen_wait = true;
            if (!parse_number(q->value, 1000000000LL, &wait)) {
                bad_request(response, "wait must be a number of seconds (0 to 30)");
                return;
            }
        } else {
            bad_request(response, "unknown or repeated query parameter (after, wait)");
            return;
        }
    }
    if (request->body_len > 0) {
        bad_request(response, "this request takes no body");
        return;
    }
    if (wait > TETHER_FEED_MAX_WAIT)
        wait = TETHER_FEED_MAX_WAIT;
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

void tether_rp_api_handle(void *arg, const tether_http_request_t *request,
                          tether_http_response_t *response)
{
    tether_rp_api_t *api = arg;

    if (strcmp(request->path, INTROSPECT_PATH) == 0)
        handle_introspect(api, request, response);
    else if (strcmp(request->path, FEED_PATH) == 0)
        handle_feed(api, request, response);
    else
        tether_http_respond_error(response, 404, "not_found", "no such endpoint");
}
