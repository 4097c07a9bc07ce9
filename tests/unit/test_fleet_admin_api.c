/* The admin API's routing, authentication, roles and refusals, in process
 * (no HTTP): requests go straight to the handler over a real SQLite store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "admin_api.h"
#include "fleet_fixture.h"
#include "route.h"
#include "store.h"
#include "tether/secret_token.h"

#define EK1 "1111111111111111111111111111111111111111111111111111111111111111"
#define EK2 "2222222222222222222222222222222222222222222222222222222222222222"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    tether_store_t store;
    tether_admin_api_t api;
    char all[TETHER_SECRET_TOKEN_SIZE];
    char read[TETHER_SECRET_TOKEN_SIZE];
    char security[TETHER_SECRET_TOKEN_SIZE];
    char authorization[128];
    tether_http_response_t response;
    cJSON *json;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char path[FLEET_FIXTURE_PATH_SIZE];

    if (f == NULL || fleet_fixture_open("api", f->dir, path, &f->store) != 0)
        return -1;
    tether_admin_api_init(&f->api, &f->store, 3600);
    fleet_fixture_admin_token(&f->store, f->all, TETHER_ROLE_ALL);
    fleet_fixture_admin_token(&f->store, f->read, TETHER_ROLE_READ);
    fleet_fixture_admin_token(&f->store, f->security, TETHER_ROLE_SECURITY);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    cJSON_Delete(f->json);
    tether_http_response_clear(&f->response);
    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

/* Sends a request; returns the status and keeps the parsed body in f->json. */
static unsigned call(fixture_t *f, const char *method, const char *path, const char *token,
                     const char *content_type, const char *body)
{
    tether_http_request_t request;
    char plain[128];
    char *query;

    /* The server hands the query over apart from the path: do the same. */
    memset(&request, 0, sizeof(request));
    snprintf(plain, sizeof(plain), "%s", path);
    if ((query = strchr(plain, '?')) != NULL) {
        *query++ = '\0';
        request.query[0].key = query;
        request.query[0].value = "";
        if ((query = strchr(query, '=')) != NULL) {
            *query++ = '\0';
            request.query[0].value = query;
        }
        request.query_count = 1;
    }
    request.method = method;
    request.path = plain;
    if (token != NULL) {
        snprintf(f->authorization, sizeof(f->authorization), "Bearer %s", token);
        request.authorization = f->authorization;
    }
    request.content_type = content_type;
    request.body = (const uint8_t *)body;
    request.body_len = body != NULL ? strlen(body) : 0;
    return fleet_fixture_route(&(tether_router_t){.store = &f->store, .admin = &f->api}, &request,
                               &f->response, &f->json, false);
}

static const char *text(const fixture_t *f, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->json, name);

    return cJSON_IsString(item) ? item->valuestring : "";
}

static int device_count(fixture_t *f)
{
    assert_int_equal(call(f, "GET", "/v1/admin/devices", f->read, NULL, NULL), 200);
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "devices"));
}

static void routing_and_authentication(void **state)
{
    fixture_t *f = *state;
    char bad[TETHER_SECRET_TOKEN_SIZE];

    assert_int_equal(call(f, "GET", "/v1/health", NULL, NULL, NULL), 200);
    assert_int_equal(call(f, "GET", "/v2/anything", NULL, NULL, NULL), 404);
    assert_int_equal(call(f, "GET", "/v1/admin/devices", NULL, NULL, NULL), 401);
    assert_string_equal(text(f, "error"), "unauthorized");
    assert_non_null(f->response.www_authenticate);
    /* Unauthenticated callers learn nothing about which paths exist. */
    assert_int_equal(call(f, "GET", "/v1/admin/nothing", NULL, NULL, NULL), 401);
    assert_int_equal(call(f, "GET", "/v1/admin/devices", "tthr_adm_short", NULL, NULL), 401);
    assert_string_equal(text(f, "error"), "invalid_token");
    memcpy(bad, f->all, sizeof(bad));
    bad[12] = bad[12] == 'a' ? 'b' : 'a';
    assert_int_equal(call(f, "GET", "/v1/admin/devices", bad, NULL, NULL), 401);
    assert_int_equal(call(f, "GET", "/v1/admin/nothing", f->all, NULL, NULL), 404);
    assert_int_equal(call(f, "PUT", "/v1/admin/devices", f->all, NULL, NULL), 405);
    assert_string_equal(f->response.allow, "GET, POST");
    assert_int_equal(call(f, "GET", "/v1/admin/devices/", f->all, NULL, NULL), 404);
}

/* An id too long for the route's parameter is an unknown device or token,
 * not an unknown endpoint; a number is spelt one way only. */
static void long_and_padded_ids(void **state)
{
    fixture_t *f = *state;
    char path[128]; /* what call() takes */

    snprintf(path, sizeof(path), "/v1/admin/devices/%064d", 0);
    assert_int_equal(call(f, "GET", path, f->all, NULL, NULL), 404);
    assert_string_equal(text(f, "error_description"), "no device with this id");
    snprintf(path, sizeof(path), "/v1/admin/devices/%080d/revoke", 0);
    assert_int_equal(call(f, "POST", path, f->all, "application/json", "{\"reason\": \"r\"}"),
                     404);
    assert_string_equal(text(f, "error_description"), "no device with this id");
    snprintf(path, sizeof(path), "/v1/admin/devices/%064d/nothing", 0);
    assert_int_equal(call(f, "GET", path, f->all, NULL, NULL), 404);
    assert_string_equal(text(f, "error_description"), "no such admin endpoint");
    assert_int_equal(call(f, "POST", "/v1/admin/tokens", f->all, "application/json",
                          "{\"name\": \"ci\", \"roles\": [\"read\"]}"),
                     201);
    snprintf(path, sizeof(path), "/v1/admin/tokens/0%d",
             cJSON_GetObjectItemCaseSensitive(f->json, "id")->valueint);
    assert_int_equal(call(f, "DELETE", path, f->security, NULL, NULL), 404);
    assert_string_equal(text(f, "error_description"), "no admin token with this id");
    assert_int_equal(call(f, "GET", "/v1/admin/alerts?after=01", f->security, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/admin/alerts?after=00", f->security, NULL, NULL), 400);
}

static void roles_enforced(void **state)
{
    fixture_t *f = *state;
    const char *allow = "{\"ek_sha256\": \"" EK1 "\", \"name\": \"gw\"}";

    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->read, "application/json", allow), 403);
    assert_string_equal(text(f, "error"), "insufficient_scope");
    assert_int_equal(call(f, "GET", "/v1/admin/devices", f->security, NULL, NULL), 403);
    assert_int_equal(call(f, "GET", "/v1/admin/alerts", f->read, NULL, NULL), 403);
    assert_int_equal(call(f, "POST", "/v1/admin/tokens", f->security, "application/json",
                          "{\"name\": \"x\", \"roles\": [\"read\"]}"),
                     403);
    assert_int_equal(device_count(f), 0);
}

static void devices_and_refusals(void **state)
{
    fixture_t *f = *state;
    const char *allow = "{\"ek_sha256\": \"" EK1 "\", \"name\": \"gw\"}";
    char path[128];

    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->all, "application/json", allow), 201);
    snprintf(path, sizeof(path), "/v1/admin/devices/%s", text(f, "id"));
    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->all, "application/json; charset=utf-8",
                          allow),
                     200);
    assert_int_equal(call(f, "GET", path, f->read, NULL, NULL), 200);
    assert_string_equal(text(f, "name"), "gw");
    assert_int_equal(call(f, "GET", path, f->read, "application/json", "{}"), 400);
    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->all, "text/plain", allow), 415);
    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->all, "application/json",
                          "{\"ek_sha256\": \"" EK2 "\", \"name\": \"gw2\", \"x\": 1}"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/admin/devices/import", f->all, "text/csv",
                          "ek_sha256,name\n" EK2 ",ok\nbad,row\n"),
                     400);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "errors")), 1);
    assert_int_equal(call(f, "POST", "/v1/admin/devices/import", f->all, "text/csv",
                          "ek_sha256,name\n" EK2 ",ok\n" EK1 ",renamed\n"),
                     409);
    assert_int_equal(device_count(f), 1);
    assert_int_equal(call(f, "POST", "/v1/admin/devices/import", f->all, "text/csv",
                          "ek_sha256,name\n" EK2 ",ok\n" EK1 ",gw\n"),
                     200);
    assert_int_equal(device_count(f), 2);
}

static void status_changes(void **state)
{
    fixture_t *f = *state;
    char path[128];

    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->all, "application/json",
                          "{\"ek_sha256\": \"" EK1 "\", \"name\": \"gw\"}"),
                     201);
    snprintf(path, sizeof(path), "/v1/admin/devices/%s/revoke", text(f, "id"));
    assert_int_equal(call(f, "POST", path, f->read, "application/json", "{\"reason\": \"x\"}"), 403);
    assert_int_equal(call(f, "POST", path, f->security, "application/json", "{\"reason\": \"x\"}"),
                     200);
    assert_string_equal(text(f, "status"), "revoked");
    assert_int_equal(call(f, "POST", path, f->security, "application/json", "{\"reason\": \"x\"}"),
                     409);
    assert_int_equal(call(f, "POST", "/v1/admin/devices/dev_000000000000000000000000/quarantine",
                          f->security, "application/json", "{\"reason\": \"x\"}"),
                     404);
}

static void secrets(void **state)
{
    fixture_t *f = *state;
    const cJSON *id;
    char path[64];

    assert_int_equal(call(f, "POST", "/v1/admin/bootstrap-tokens", f->all, "application/json",
                          "{\"ttl_seconds\": 3600}"),
                     201);
    assert_int_equal(tether_secret_token_check_format(text(f, "token"), strlen(text(f, "token")),
                                                      TETHER_SECRET_BOOTSTRAP),
                     TETHER_OK);
    assert_int_equal(call(f, "POST", "/v1/admin/bootstrap-tokens", f->all, "application/json",
                          "{\"ttl_seconds\": 3601}"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/admin/tokens", f->all, "application/json",
                          "{\"name\": \"ci\", \"roles\": [\"read\"]}"),
                     201);
    id = cJSON_GetObjectItemCaseSensitive(f->json, "id");
    assert_true(cJSON_IsNumber(id));
    snprintf(path, sizeof(path), "/v1/admin/tokens/%d", id->valueint);
    assert_int_equal(call(f, "DELETE", path, f->security, NULL, NULL), 200);
    assert_int_equal(call(f, "DELETE", path, f->security, NULL, NULL), 409);
    assert_int_equal(call(f, "DELETE", "/v1/admin/tokens/abc", f->security, NULL, NULL), 404);
    assert_int_equal(call(f, "GET", "/v1/admin/alerts?after=0", f->security, NULL, NULL), 200);
    assert_int_equal(call(f, "GET", "/v1/admin/alerts?after=-1", f->security, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/admin/alerts?before=1", f->security, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/admin/tokens?x=1", f->security, NULL, NULL), 400);
}

/* Revoking the last token with the fleet role (or security) is a 409 that
 * names the role, and the token keeps working. */
static void last_token_refused(void **state)
{
    fixture_t *f = *state;
    char path[64];

    assert_int_equal(call(f, "GET", "/v1/admin/tokens", f->security, NULL, NULL), 200);
    /* Tokens are made in setup's order: all (1), read (2), security (3). */
    assert_int_equal(call(f, "DELETE", "/v1/admin/tokens/1", f->security, NULL, NULL), 409);
    assert_string_equal(text(f, "error"), "conflict");
    assert_non_null(strstr(text(f, "error_description"), "last active admin token with the fleet"));
    assert_int_equal(call(f, "GET", "/v1/admin/devices", f->all, NULL, NULL), 200);
    /* The security token may go (all still holds security); then all is the
     * last holder of both roles and may not revoke itself. */
    assert_int_equal(call(f, "DELETE", "/v1/admin/tokens/3", f->all, NULL, NULL), 200);
    assert_int_equal(call(f, "DELETE", "/v1/admin/tokens/1", f->all, NULL, NULL), 409);
    assert_non_null(strstr(text(f, "error_description"), "fleet,security roles"));
    assert_int_equal(call(f, "POST", "/v1/admin/tokens", f->all, "application/json",
                          "{\"name\": \"spare\", \"roles\": [\"fleet\", \"security\"]}"),
                     201);
    snprintf(path, sizeof(path), "/v1/admin/tokens/%d",
             cJSON_GetObjectItemCaseSensitive(f->json, "id")->valueint);
    assert_int_equal(call(f, "DELETE", "/v1/admin/tokens/1", f->all, NULL, NULL), 200);
    assert_int_equal(call(f, "DELETE", path, f->read, NULL, NULL), 403);
}

/* The route table's own checks (router.c), answered before any handler. */
static void route_table_checks(void **state)
{
    fixture_t *f = *state;
    tether_http_request_t request;
    char authorization[32 + TETHER_SECRET_TOKEN_SIZE];

    /* Health is public and GET only. */
    assert_int_equal(call(f, "POST", "/v1/health", NULL, NULL, NULL), 405);
    assert_string_equal(f->response.allow, "GET");
    assert_string_equal(text(f, "error"), "method_not_allowed");
    /* The 403 names the role the route needs. */
    assert_int_equal(call(f, "GET", "/v1/admin/alerts", f->read, NULL, NULL), 403);
    assert_string_equal(text(f, "error_description"),
                        "this request needs an admin token with the security role");
    /* A route without a body refuses one. */
    assert_int_equal(call(f, "GET", "/v1/admin/keys", f->read, "application/json", "{}"), 400);
    assert_string_equal(text(f, "error"), "invalid_request");
    /* An API the router does not serve is not found, token or not. */
    assert_int_equal(call(f, "POST", "/v1/token", NULL, "application/x-www-form-urlencoded", "a"),
                     404);
    assert_int_equal(call(f, "POST", "/v1/introspect", f->all, "application/x-www-form-urlencoded",
                          "token=x"),
                     404);
    /* A query parameter the route allows, but twice: refused before the
     * handler reads either value. */
    memset(&request, 0, sizeof(request));
    snprintf(authorization, sizeof(authorization), "Bearer %s", f->security);
    request.method = "GET";
    request.path = "/v1/admin/alerts";
    request.authorization = authorization;
    request.query[0] = (tether_http_query_t){"after", "1"};
    request.query[1] = (tether_http_query_t){"after", "2"};
    request.query_count = 2;
    tether_http_response_clear(&f->response);
    tether_router_handle(&(tether_router_t){.store = &f->store, .admin = &f->api}, &request,
                         &f->response);
    assert_int_equal(f->response.status, 400);
    request.query_count = 1;
    request.query_overflow = true;
    tether_http_response_clear(&f->response);
    tether_router_handle(&(tether_router_t){.store = &f->store, .admin = &f->api}, &request,
                         &f->response);
    assert_int_equal(f->response.status, 400);
}

/* GET /v1/admin/alerts?after=AFTER&wait=WAIT; 0 when the request was
 * parked (the server would then hold it). */
static unsigned alerts_wait(fixture_t *f, const char *after, const char *wait)
{
    tether_http_request_t request;

    memset(&request, 0, sizeof(request));
    request.method = "GET";
    request.path = "/v1/admin/alerts";
    request.query[0].key = "after";
    request.query[0].value = after;
    request.query[1].key = "wait";
    request.query[1].value = wait;
    request.query_count = 2;
    snprintf(f->authorization, sizeof(f->authorization), "Bearer %s", f->security);
    request.authorization = f->authorization;
    return fleet_fixture_route(&(tether_router_t){.store = &f->store, .admin = &f->api}, &request,
                               &f->response, &f->json, true);
}

static int alert_count(const char *body)
{
    cJSON *json = cJSON_Parse(body);
    int count = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "alerts"));

    cJSON_Delete(json);
    return count;
}

/* The parked request's park, taken over as the server does. */
static tether_http_park_t take_park(fixture_t *f)
{
    tether_http_park_t park = f->response.park;

    memset(&f->response.park, 0, sizeof(f->response.park));
    return park;
}

/* A poll that answers (final or not): the alerts in its 200; the park is
 * then released, as the server does. */
static int poll_answer(tether_http_park_t *park, bool final)
{
    tether_http_response_t answer;
    int count;

    memset(&answer, 0, sizeof(answer));
    assert_true(park->poll(park->arg, final, &answer));
    assert_int_equal(answer.status, 200);
    count = alert_count(answer.body);
    tether_http_response_clear(&answer);
    park->release(park->arg);
    return count;
}

/* The alerts' long poll as the server drives it (tetherctl alerts
 * --follow): park, poll until an alert is written, final poll. */
static void alerts_long_poll(void **state)
{
    fixture_t *f = *state;
    tether_http_park_t park;
    tether_http_response_t answer;

    memset(&answer, 0, sizeof(answer));
    assert_int_equal(alerts_wait(f, "0", "x"), 400);
    /* Nothing yet: parked, the wait capped at 30 s. */
    assert_int_equal(alerts_wait(f, "0", "3600"), 0);
    assert_non_null(f->response.park.poll);
    assert_int_equal(f->response.park.timeout_ms, 30000);
    tether_http_response_clear(&f->response); /* releases the park (ASan checks) */

    assert_int_equal(alerts_wait(f, "0", "5"), 0);
    park = take_park(f);
    assert_false(park.poll(park.arg, false, &answer));
    /* Written by any store user (no hook): the next poll finds it. */
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "clone_detected", "{}", 1700000000),
                     TETHER_OK);
    assert_int_equal(poll_answer(&park, false), 1);

    /* After the last one: the wait ends with an empty list. */
    assert_int_equal(alerts_wait(f, "1", "1"), 0);
    park = take_park(f);
    assert_false(park.poll(park.arg, false, &answer));
    assert_int_equal(poll_answer(&park, true), 0);

    /* Something newer already, or no wait: answered at once. */
    assert_int_equal(alerts_wait(f, "0", "30"), 200);
    assert_null(f->response.park.poll);
    assert_int_equal(alerts_wait(f, "1", "0"), 200);
    assert_null(f->response.park.poll);
}

#define DOC(models)                                                                           \
    "{\"version\":1,\"tokens\":{\"models\":[" models "],\"cost_ceiling\":0,"                  \
    "\"lifetime_seconds\":300},\"thresholds\":[{\"kind\":\"requests_per_minute\","            \
    "\"value\":20,\"action\":\"quarantine\"}],\"sources\":[]}"

static int64_t number(const fixture_t *f, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->json, name);

    return cJSON_IsNumber(item) ? (int64_t)item->valuedouble : -1;
}

/* Policies: the fleet role writes, each write a new version; read-only
 * reads any version; a device follows a policy that exists. */
static void policies(void **state)
{
    fixture_t *f = *state;
    char path[128], id[64];

    assert_int_equal(call(f, "POST", "/v1/admin/policies/edge", f->read, "application/json",
                          DOC("\"*\"")),
                     403);
    assert_int_equal(call(f, "POST", "/v1/admin/policies/edge", f->all, "application/json",
                          DOC("\"*\"")),
                     201);
    assert_int_equal(number(f, "version"), 1);
    assert_int_equal(call(f, "POST", "/v1/admin/policies/edge", f->all, "application/json",
                          DOC("\"*\"")),
                     409);
    assert_int_equal(call(f, "POST", "/v1/admin/policies/other/versions", f->all,
                          "application/json", DOC("\"*\"")),
                     404);
    /* The one strict reader refuses, and says why. */
    assert_int_equal(call(f, "POST", "/v1/admin/policies/edge/versions", f->all,
                          "application/json", DOC("\"b\",\"a\"")),
                     400);
    assert_non_null(strstr(text(f, "error_description"), "ascending"));
    assert_int_equal(call(f, "POST", "/v1/admin/policies/Edge", f->all, "application/json",
                          DOC("\"*\"")),
                     400);
    assert_int_equal(call(f, "POST", "/v1/admin/policies/edge/versions", f->all,
                          "application/json", DOC("\"gpt-4o*\"")),
                     201);
    assert_int_equal(number(f, "version"), 2);
    assert_int_equal(call(f, "GET", "/v1/admin/policies/edge", f->read, NULL, NULL), 200);
    assert_int_equal(number(f, "version"), 2);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                               cJSON_GetObjectItemCaseSensitive(
                                                   cJSON_GetObjectItemCaseSensitive(f->json,
                                                                                    "policy"),
                                                   "tokens"),
                                               "models"),
                                           0)
                            ->valuestring,
                        "gpt-4o*");
    assert_int_equal(call(f, "GET", "/v1/admin/policies/edge?version=1", f->read, NULL, NULL),
                     200);
    assert_int_equal(number(f, "version"), 1);
    assert_int_equal(call(f, "GET", "/v1/admin/policies/edge?version=3", f->read, NULL, NULL),
                     404);
    assert_int_equal(call(f, "GET", "/v1/admin/policies/edge?version=0", f->read, NULL, NULL),
                     400);
    assert_int_equal(call(f, "GET", "/v1/admin/policies", f->read, NULL, NULL), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "policies")),
                     1);
    /* A device names a policy. */
    assert_int_equal(call(f, "POST", "/v1/admin/devices", f->all, "application/json",
                          "{\"ek_sha256\":\"" EK1 "\",\"name\":\"cam\"}"),
                     201);
    snprintf(id, sizeof(id), "%s", text(f, "id"));
    snprintf(path, sizeof(path), "/v1/admin/devices/%s/policy", id);
    assert_int_equal(call(f, "POST", path, f->read, "application/json", "{\"policy\":\"edge\"}"),
                     403);
    assert_int_equal(call(f, "POST", path, f->all, "application/json", "{\"policy\":\"none\"}"),
                     404);
    assert_int_equal(call(f, "POST", path, f->all, "application/json", "{\"policy\":\"-x\"}"),
                     400);
    assert_int_equal(call(f, "POST", path, f->all, "application/json", "{\"policy\":\"edge\"}"),
                     200);
    assert_string_equal(text(f, "policy"), "edge");
    assert_int_equal(number(f, "version"), 2);
}

/* A policy whose tokens could not be signed (its models and sources past
 * TETHER_TOKEN_POLICY_CLAIMS_MAX bytes of each token) is refused when
 * written, saying why; the same models without the networks fit. */
static void policies_fit_a_token(void **state)
{
    fixture_t *f = *state;
    char doc[TETHER_POLICY_DOCUMENT_MAX + 1], models[32 * 131 + 1] = "", sources[32 * 46 + 1] = "";

    for (unsigned i = 0; i < TETHER_POLICY_MAX_MODELS; i++) {
        size_t n = strlen(models);

        snprintf(models + n, sizeof(models) - n, "%s\"m%03u%0124d\"", i == 0 ? "" : ",", i, 0);
    }
    for (unsigned i = 0; i < TETHER_POLICY_MAX_SOURCES; i++) {
        size_t n = strlen(sources);

        snprintf(sources + n, sizeof(sources) - n,
                 "%s\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:f%03x/128\"", i == 0 ? "" : ",", i);
    }
    snprintf(doc, sizeof(doc),
             "{\"version\":1,\"tokens\":{\"models\":[%s],\"cost_ceiling\":0,"
             "\"lifetime_seconds\":300},\"thresholds\":[],\"sources\":[%s]}",
             models, sources);
    assert_int_equal(call(f, "POST", "/v1/admin/policies/wide", f->all, "application/json", doc),
                     400);
    assert_non_null(strstr(text(f, "error_description"), "bytes of each token"));
    snprintf(doc, sizeof(doc),
             "{\"version\":1,\"tokens\":{\"models\":[%s],\"cost_ceiling\":0,"
             "\"lifetime_seconds\":300},\"thresholds\":[],\"sources\":[]}",
             models);
    assert_int_equal(call(f, "POST", "/v1/admin/policies/wide", f->all, "application/json", doc),
                     201);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(routing_and_authentication, setup, teardown),
        cmocka_unit_test_setup_teardown(roles_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(long_and_padded_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(devices_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(status_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(last_token_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(route_table_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(alerts_long_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(policies, setup, teardown),
        cmocka_unit_test_setup_teardown(policies_fit_a_token, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
