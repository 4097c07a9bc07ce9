/* Introspection decisions, the revocation feed and the relying-party role,
 * in process over a real SQLite store: tokens are signed here with a key the
 * test controls, with matching issued_tokens rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "admin_api.h"
#include "client_auth.h"
#include "fleet_fixture.h"
#include "route.h"
#include "introspect.h"
#include "introspect_request.h"
#include "relying_party_api.h"
#include "revocation_feed.h"
#include "store.h"
#include "tetherctl.h"
#include "tether/base64url.h"
#include "tether/jose.h"
#include "tether/random.h"
#include "tether/secret_token.h"

#define ISSUER "https://fleet.example.test"
#define KID "test-key-1"
#define NOW 1700000000
#define EK1 "1111111111111111111111111111111111111111111111111111111111111111"
#define EK2 "2222222222222222222222222222222222222222222222222222222222222222"
#define DEV1 "dev_111111111111111111111111"
#define DEV2 "dev_222222222222222222222222"
#define JTI1 "0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    tether_admin_api_t admin;
    tether_rp_api_t rp;
    tether_router_t router;
    tether_ec_key_t key;      /* the fleet's signing key, as far as the test knows */
    tether_ec_key_t other; /* someone else's */
    tether_jwt_key_t jwt_key;
    tether_jwt_keyset_t keyset;
    const char *issuer;
    int acquired; /* acquire/release balance */
    char token[TETHER_JWS_MAX_LEN + 1];
    /* admin tokens */
    char all[TETHER_SECRET_TOKEN_SIZE];
    char rp_token[TETHER_SECRET_TOKEN_SIZE];
    char fleet[TETHER_SECRET_TOKEN_SIZE];
    char read[TETHER_SECRET_TOKEN_SIZE];
    char security[TETHER_SECRET_TOKEN_SIZE];
    char authorization[128];
    tether_http_response_t response;
    cJSON *json;
    int hook_calls;
} fixture_t;

/* ---- helpers ---------------------------------------------------------------- */

static tether_status_t test_acquire(void *arg, int64_t now, tether_jwt_keyset_t *keys,
                                    const char **issuer)
{
    fixture_t *f = arg;

    (void)now;
    f->acquired++;
    *keys = f->keyset;
    *issuer = f->issuer;
    return TETHER_OK;
}

static void test_release(void *arg)
{
    fixture_t *f = arg;

    f->acquired--;
}

static void new_key(tether_ec_key_t *key)
{
    tether_ec_key_init(key);
    assert_int_equal(tether_ec_key_generate(key), TETHER_OK);
}

static void count_hook(void *arg)
{
    ((fixture_t *)arg)->hook_calls++;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    tether_introspect_keys_t keys;
    tether_store_allow_t rows[2];

    if (f == NULL || fleet_fixture_open("revoc", f->dir, f->db, &f->store) != 0)
        return -1;
    tether_store_set_revocation_hook(&f->store, count_hook, f);
    tether_admin_api_init(&f->admin, &f->store, 3600);
    tether_rp_api_init(&f->rp, &f->store);
    f->router = (tether_router_t){.store = &f->store, .admin = &f->admin, .relying_party = &f->rp};
    new_key(&f->key);
    new_key(&f->other);
    f->jwt_key.kid = KID;
    f->jwt_key.key = &f->key;
    f->keyset.keys = &f->jwt_key;
    f->keyset.count = 1;
    f->issuer = ISSUER;
    keys.acquire = test_acquire;
    keys.release = test_release;
    keys.arg = f;
    tether_rp_api_set_keys(&f->rp, &keys);
    fleet_fixture_admin_token(&f->store, f->all, TETHER_ROLE_ALL);
    fleet_fixture_admin_token(&f->store, f->rp_token, TETHER_ROLE_RELYING_PARTY);
    fleet_fixture_admin_token(&f->store, f->fleet, TETHER_ROLE_FLEET);
    fleet_fixture_admin_token(&f->store, f->read, TETHER_ROLE_READ);
    fleet_fixture_admin_token(&f->store, f->security, TETHER_ROLE_SECURITY);
    /* Two enrolled devices (status active is what enrolment leaves). */
    memset(rows, 0, sizeof(rows));
    strcpy(rows[0].id, DEV1);
    strcpy(rows[0].ek_sha256, EK1);
    strcpy(rows[0].name, "one");
    strcpy(rows[1].id, DEV2);
    strcpy(rows[1].ek_sha256, EK2);
    strcpy(rows[1].name, "two");
    if (tether_store_device_import(&f->store, rows, 2, NOW - 1000, NULL, NULL) != TETHER_OK)
        return -1;
    fleet_db_exec(f->db, "UPDATE devices SET status = 'active'");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(f->acquired, 0);
    cJSON_Delete(f->json);
    tether_http_response_clear(&f->response);
    tether_rp_api_free(&f->rp);
    fleet_fixture_close(f->dir, &f->store);
    tether_ec_key_free(&f->key);
    tether_ec_key_free(&f->other);
    free(f);
    return 0;
}

/* The claims fleetd puts in an access token (RFC 9068 and tether's). */
static cJSON *claims_for(const char *sub, const char *jti, int64_t iat, int64_t exp)
{
    cJSON *claims = cJSON_CreateObject();
    cJSON *cnf = cJSON_AddObjectToObject(claims, "cnf");
    cJSON *tether = cJSON_AddObjectToObject(claims, "tether");

    cJSON_AddStringToObject(claims, "iss", ISSUER);
    cJSON_AddStringToObject(claims, "sub", sub);
    cJSON_AddStringToObject(claims, "aud", "tether");
    cJSON_AddStringToObject(claims, "client_id", sub);
    cJSON_AddStringToObject(claims, "scope", "models:read");
    cJSON_AddNumberToObject(claims, "iat", (double)iat);
    cJSON_AddNumberToObject(claims, "nbf", (double)iat);
    cJSON_AddNumberToObject(claims, "exp", (double)exp);
    cJSON_AddStringToObject(claims, "jti", jti);
    cJSON_AddStringToObject(cnf, "jkt", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    cJSON_AddNumberToObject(tether, "counter", 7);
    return claims;
}

/* Signs claims (deleted here) into f->token with key under kid. */
static const char *sign(fixture_t *f, cJSON *claims, tether_ec_key_t *key, const char *kid)
{
    size_t len = 0;

    assert_int_equal(tether_jwt_sign(kid, claims, key, f->token, sizeof(f->token), &len),
                     TETHER_OK);
    cJSON_Delete(claims);
    return f->token;
}

/* A token of DEV1 issued at NOW - 60, valid 300 s, recorded as issued. */
static const char *issue(fixture_t *f, const char *jti)
{
    assert_int_equal(tether_store_issued_token_add(&f->store, jti, DEV1, NOW + 240, NOW - 60),
                     TETHER_OK);
    return sign(f, claims_for(DEV1, jti, NOW - 60, NOW + 240), &f->key, KID);
}

static tether_introspect_reason_t decide(fixture_t *f, const char *token, int64_t now)
{
    tether_introspect_result_t result;
    tether_introspect_reason_t reason;

    assert_int_equal(tether_introspect_token(&f->store, &f->rp.keys, token, strlen(token), now,
                                             &result),
                     TETHER_OK);
    if (result.reason == TETHER_INTROSPECT_ACTIVE)
        assert_non_null(result.claims);
    else
        assert_null(result.claims);
    reason = result.reason;
    tether_introspect_result_clear(&result);
    return reason;
}

/* Sends a request to the relying-party API; returns the status and keeps
 * the parsed body (when there is one) in f->json. */
static unsigned call(fixture_t *f, const char *method, const char *path, const char *query,
                     const char *token, const char *content_type, const char *body)
{
    tether_http_request_t request;
    char query_copy[128];

    memset(&request, 0, sizeof(request));
    request.method = method;
    request.path = path;
    if (query != NULL) {
        /* "a=1&b=2", split as the server does */
        char *p = query_copy;
        snprintf(query_copy, sizeof(query_copy), "%s", query);
        while (p != NULL && *p != '\0' && request.query_count < TETHER_HTTP_MAX_QUERY) {
            char *amp = strchr(p, '&');
            char *eq;
            if (amp != NULL)
                *amp++ = '\0';
            eq = strchr(p, '=');
            if (eq != NULL)
                *eq++ = '\0';
            request.query[request.query_count].key = p;
            request.query[request.query_count].value = eq != NULL ? eq : "";
            request.query_count++;
            p = amp;
        }
    }
    if (token != NULL) {
        snprintf(f->authorization, sizeof(f->authorization), "Bearer %s", token);
        request.authorization = f->authorization;
    }
    request.content_type = content_type;
    request.body = (const uint8_t *)body;
    request.body_len = body != NULL ? strlen(body) : 0;
    return fleet_fixture_route(&f->router, &request, &f->response, &f->json, true);
}

static unsigned introspect(fixture_t *f, const char *token_param)
{
    char body[TETHER_JWS_MAX_LEN + 64];

    snprintf(body, sizeof(body), "token=%s&token_type_hint=access_token", token_param);
    return call(f, "POST", "/v1/introspect", NULL, f->rp_token,
                "application/x-www-form-urlencoded", body);
}

static const char *error_of(fixture_t *f)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(f->json, "error");
    return cJSON_IsString(error) ? error->valuestring : "";
}

/* ---- introspection decisions ----------------------------------------------------- */

static void active_token(void **state)
{
    fixture_t *f = *state;
    const char *token = issue(f, JTI1);

    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_ACTIVE);
    /* nbf/iat within the replicas' leeway are fine */
    sign(f, claims_for(DEV1, JTI1, NOW + 20, NOW + 300), &f->key, KID);
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_ACTIVE);
}

static void signature_and_key(void **state)
{
    fixture_t *f = *state;

    issue(f, JTI1);
    /* The right kid, another key: a forgery. */
    sign(f, claims_for(DEV1, JTI1, NOW - 60, NOW + 240), &f->other, KID);
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_BAD_SIGNATURE);
    sign(f, claims_for(DEV1, JTI1, NOW - 60, NOW + 240), &f->other, "not-ours");
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_UNKNOWN_KEY);
    /* A changed claim breaks the signature. */
    issue(f, "feedfacefeedfacefeedfacefeedface");
    f->token[strcspn(f->token, ".") + 3] ^= 1;
    assert_int_not_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_ACTIVE);
    assert_int_equal(decide(f, "not a token", NOW), TETHER_INTROSPECT_MALFORMED);
    assert_int_equal(decide(f, "", NOW), TETHER_INTROSPECT_MALFORMED);
}

static void issuer_checked_audience_not(void **state)
{
    fixture_t *f = *state;
    cJSON *claims;

    issue(f, JTI1);
    claims = claims_for(DEV1, JTI1, NOW - 60, NOW + 240);
    cJSON_ReplaceItemInObject(claims, "iss", cJSON_CreateString("https://evil.example"));
    sign(f, claims, &f->key, KID);
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_WRONG_ISSUER);
    /* Any audience: the relying party checks aud from the answer. */
    claims = claims_for(DEV1, JTI1, NOW - 60, NOW + 240);
    cJSON_ReplaceItemInObject(claims, "aud", cJSON_CreateStringArray(
                                                 (const char *[]){"gw-a", "gw-b"}, 2));
    sign(f, claims, &f->key, KID);
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_ACTIVE);
}

static void times(void **state)
{
    fixture_t *f = *state;
    const char *token = issue(f, JTI1); /* exp NOW + 240 */

    assert_int_equal(decide(f, token, NOW + 239), TETHER_INTROSPECT_ACTIVE);
    /* No leeway on expiry: the fleet's clock decides. */
    assert_int_equal(decide(f, token, NOW + 240), TETHER_INTROSPECT_EXPIRED);
    assert_int_equal(decide(f, token, NOW + 250), TETHER_INTROSPECT_EXPIRED);
    assert_int_equal(decide(f, token, NOW + 100000), TETHER_INTROSPECT_EXPIRED);
    /* iat beyond the leeway */
    assert_int_equal(decide(f, token, NOW - 60 - TETHER_INTROSPECT_LEEWAY - 1),
                     TETHER_INTROSPECT_NOT_YET_VALID);
}

static void unknown_jti(void **state)
{
    fixture_t *f = *state;

    /* Signed by the fleet's key, never recorded (e.g. a store rolled back). */
    sign(f, claims_for(DEV1, JTI1, NOW - 60, NOW + 240), &f->key, KID);
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_UNKNOWN_JTI);
    /* Recorded for another device than sub. */
    assert_int_equal(tether_store_issued_token_add(&f->store, JTI1, DEV2, NOW + 240, NOW - 60),
                     TETHER_OK);
    assert_int_equal(decide(f, f->token, NOW), TETHER_INTROSPECT_UNKNOWN_JTI);
}

static void revocation_seen_at_once(void **state)
{
    fixture_t *f = *state;
    const char *token = issue(f, JTI1);

    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_ACTIVE);
    assert_int_equal(tether_store_device_change_status(&f->store, DEV1, TETHER_DEVICE_REVOKE,
                                                       "stolen", NOW, NULL),
                     TETHER_OK);
    /* The very next introspection, no cache in between. */
    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_TOKEN_REVOKED);
    /* Reinstating the device does not bring its tokens back. */
    assert_int_equal(tether_store_device_change_status(&f->store, DEV1, TETHER_DEVICE_REINSTATE,
                                                       "found", NOW, NULL),
                     TETHER_OK);
    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_TOKEN_REVOKED);
}

static void device_not_active(void **state)
{
    fixture_t *f = *state;
    const char *token = issue(f, JTI1);

    /* The device's status alone decides too (a token row not marked, e.g.
     * written by a replica after the revocation swept the rows). */
    fleet_db_exec(f->db, "UPDATE devices SET status = 'quarantined' WHERE id = '" DEV1 "'");
    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_DEVICE_NOT_ACTIVE);
    fleet_db_exec(f->db, "UPDATE devices SET status = 'allowed' WHERE id = '" DEV1 "'");
    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_DEVICE_NOT_ACTIVE);
    fleet_db_exec(f->db, "UPDATE devices SET status = 'active' WHERE id = '" DEV1 "'");
    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_ACTIVE);
}

static void no_keys(void **state)
{
    fixture_t *f = *state;
    tether_introspect_keys_t none = {NULL, NULL, NULL};
    tether_introspect_result_t result;
    const char *token = issue(f, JTI1);

    assert_int_equal(tether_introspect_token(&f->store, &none, token, strlen(token), NOW,
                                             &result),
                     TETHER_OK);
    assert_int_equal(result.reason, TETHER_INTROSPECT_NO_KEYS);
    f->keyset.count = 0;
    assert_int_equal(decide(f, token, NOW), TETHER_INTROSPECT_NO_KEYS);
}

/* ---- POST /v1/introspect ---------------------------------------------------------- */

static void introspect_endpoint(void **state)
{
    fixture_t *f = *state;
    char token[TETHER_JWS_MAX_LEN + 1];
    const cJSON *j;

    /* A real now: the endpoint reads the clock. */
    assert_int_equal(tether_store_issued_token_add(&f->store, JTI1, DEV1, time(NULL) + 300,
                                                   time(NULL)),
                     TETHER_OK);
    sign(f, claims_for(DEV1, JTI1, time(NULL) - 1, time(NULL) + 300), &f->key, KID);
    strcpy(token, f->token);
    assert_int_equal(introspect(f, token), 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "active")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f->json, "token_type")->valuestring,
                        "Bearer");
    for (size_t i = 0; i < 11; i++) {
        static const char *const names[] = {"iss", "sub", "aud", "client_id", "scope", "exp",
                                            "iat", "nbf", "jti", "cnf", "tether"};
        assert_non_null(cJSON_GetObjectItemCaseSensitive(f->json, names[i]));
    }
    j = cJSON_GetObjectItemCaseSensitive(f->json, "cnf");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "jkt"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f->json, "sub")->valuestring, DEV1);
    assert_int_equal(f->acquired, 0);

    /* Revoked: only {"active": false}, nothing about why. */
    assert_int_equal(tether_store_device_change_status(&f->store, DEV1, TETHER_DEVICE_REVOKE,
                                                       "leak", time(NULL), NULL),
                     TETHER_OK);
    assert_int_equal(introspect(f, token), 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(f->json, "active")));
    assert_int_equal(cJSON_GetArraySize(f->json), 1);
    /* Anything at all: inactive, not an error. */
    assert_int_equal(introspect(f, "hello"), 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(f->json, "active")));
}

static void introspect_refusals(void **state)
{
    fixture_t *f = *state;
    const char *form = "application/x-www-form-urlencoded";

    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, NULL, form, "token=x"), 401);
    assert_non_null(f->response.www_authenticate);
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, "tthr_adm_nope", form, "token=x"),
                     401);
    /* Only relying-party may introspect. */
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->fleet, form, "token=x"), 403);
    assert_string_equal(error_of(f), "insufficient_scope");
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->all, form, "token=x"), 403);
    assert_int_equal(call(f, "GET", "/v1/introspect", NULL, f->rp_token, NULL, NULL), 405);
    assert_string_equal(f->response.allow, "POST");
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->rp_token, "application/json",
                          "{\"token\": \"x\"}"),
                     415);
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->rp_token, form, "token="), 400);
    assert_string_equal(error_of(f), "invalid_request");
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->rp_token, form,
                          "token=a&token=b"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->rp_token, form, "token=%zz"),
                     400);
    assert_int_equal(call(f, "POST", "/v1/introspect", "x=1", f->rp_token, form, "token=a"), 400);
    /* Media type parameters and case do not matter. */
    assert_int_equal(call(f, "POST", "/v1/introspect", NULL, f->rp_token,
                          "Application/X-WWW-Form-Urlencoded; charset=utf-8", "token=a"),
                     200);
}

/* ---- the form parser ---------------------------------------------------------------- */

static void form_parser(void **state)
{
    tether_introspect_request_t req;
    char message[TETHER_INTROSPECT_MESSAGE_SIZE];
    char *big;
    size_t big_len = TETHER_JWS_MAX_LEN + 16;

    (void)state;
#define PARSE(body)                                                                           \
    tether_introspect_request_parse((body), strlen(body), &req, message, sizeof(message))
    assert_int_equal(PARSE("token=a.b.c"), TETHER_OK);
    assert_string_equal(req.token, "a.b.c");
    assert_int_equal(req.token_len, 5);
    assert_int_equal(PARSE("token_type_hint=access_token&token=a%2Eb+c&other=1&&"), TETHER_OK);
    assert_string_equal(req.token, "a.b c");
    assert_int_equal(PARSE("&token=x&unknown"), TETHER_OK);
    /* A parameter without a value counts as absent, and only once. */
    assert_int_equal(PARSE("token=&token=y"), TETHER_OK);
    assert_string_equal(req.token, "y");
    assert_int_equal(PARSE("to%6Ben=z"), TETHER_OK);
    assert_string_equal(req.token, "z");
    assert_int_equal(PARSE(""), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token="), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token=a&token=b"), TETHER_ERR_PARSE);
    assert_string_equal(req.token, ""); /* wiped */
    assert_int_equal(PARSE("token_type_hint=a&token_type_hint=b&token=c"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token=a%"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token=a%4"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token=a%4g"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token=a%00b"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("token=a&x=%zz"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&"
                           "token=x"),
                     TETHER_OK);
    assert_int_equal(PARSE("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&"
                           "p=16&token=x"),
                     TETHER_ERR_PARSE);
    /* A raw NUL is no form byte either. */
    assert_int_equal(tether_introspect_request_parse("token=a\0b", 9, &req, message,
                                                     sizeof(message)),
                     TETHER_ERR_PARSE);
    /* Longer than any token: kept out, flagged. */
    big = malloc(big_len + 7);
    assert_non_null(big);
    memcpy(big, "token=", 6);
    memset(big + 6, 'A', big_len);
    big[6 + big_len] = '\0';
    assert_int_equal(PARSE(big), TETHER_OK);
    assert_true(req.too_long);
    assert_int_equal(req.token_len, 0);
    free(big);
#undef PARSE
    tether_introspect_request_clear(&req);
}

/* ---- OAuth client authentication (RFC 6749 section 2.3.1) ------------------------- */

/* "Basic " and the padded base64 (RFC 4648 section 4) of text into out. */
static void basic_header(const char *text, char *out, size_t out_size)
{
    char encoded[512];
    size_t len = 0;

    assert_int_equal(tether_base64url_encode((const uint8_t *)text, strlen(text), encoded,
                                             sizeof(encoded), &len),
                     TETHER_OK);
    for (size_t i = 0; i < len; i++)
        encoded[i] = encoded[i] == '-' ? '+' : encoded[i] == '_' ? '/' : encoded[i];
    while (len % 4 != 0)
        encoded[len++] = '=';
    encoded[len] = '\0';
    assert_true((size_t)snprintf(out, out_size, "Basic %s", encoded) < out_size);
}

static void client_auth_parser(void **state)
{
    tether_client_credentials_t creds;
    char message[TETHER_CLIENT_MESSAGE_SIZE];
    char header[600];
    char long_secret[TETHER_CLIENT_SECRET_MAX + 8];

    (void)state;
#define BASIC(text) (basic_header((text), header, sizeof(header)), header + 6)
#define PARSE(value) tether_client_auth_parse_basic((value), &creds, message, sizeof(message))
    assert_int_equal(PARSE(BASIC("12:tthr_adm_secret")), TETHER_OK);
    assert_string_equal(creds.id, "12");
    assert_string_equal(creds.secret, "tthr_adm_secret");
    assert_int_equal(creds.secret_len, 15);
    /* Each part is form-urlencoded (RFC 6749 section 2.3.1); the password
     * may hold ':' (RFC 7617 section 2). */
    assert_int_equal(PARSE(BASIC("1%32:a%3Ab+c:d")), TETHER_OK);
    assert_string_equal(creds.id, "12");
    assert_string_equal(creds.secret, "a:b c:d");
    /* The three paddings. */
    assert_int_equal(PARSE(BASIC("1:a")), TETHER_OK);
    assert_int_equal(PARSE(BASIC("1:ab")), TETHER_OK);
    assert_int_equal(PARSE(BASIC("1:abc")), TETHER_OK);
    assert_int_equal(PARSE("MTphYg=="), TETHER_OK);
    assert_string_equal(creds.secret, "ab");
    assert_int_equal(PARSE("MTphYg"), TETHER_ERR_PARSE);    /* unpadded */
    assert_int_equal(PARSE("MTphYg="), TETHER_ERR_PARSE);   /* short of padding */
    assert_int_equal(PARSE("MTph===="), TETHER_ERR_PARSE);  /* padding where none belongs */
    assert_int_equal(PARSE("MTphYh=="), TETHER_ERR_PARSE);  /* unused bits set */
    assert_string_equal(creds.secret, ""); /* wiped */
    /* base64's '+' and '/', not base64url's '-' and '_'. */
    assert_int_equal(PARSE("MTI6Pj4+Pz8/"), TETHER_OK);
    assert_string_equal(creds.secret, ">>>???");
    assert_int_equal(PARSE("MTI6Pj4-Pz8_"), TETHER_ERR_PARSE);
    assert_int_equal(PARSE(""), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("===="), TETHER_ERR_PARSE);
    assert_int_equal(PARSE("MT phYg=="), TETHER_ERR_PARSE);
    assert_int_equal(PARSE(BASIC("12")), TETHER_ERR_PARSE);       /* no ':' */
    assert_int_equal(PARSE(BASIC(":secret")), TETHER_ERR_PARSE);  /* no id */
    assert_int_equal(PARSE(BASIC("12:")), TETHER_ERR_PARSE);      /* no secret */
    assert_int_equal(PARSE(BASIC("12:a%00b")), TETHER_ERR_PARSE); /* a NUL */
    assert_int_equal(PARSE(BASIC("12:a%zz")), TETHER_ERR_PARSE);
    assert_int_equal(PARSE(BASIC("12345678901234567:s")), TETHER_ERR_PARSE); /* id too long */
    memset(long_secret, 'a', sizeof(long_secret));
    memcpy(long_secret, "1:", 2);
    long_secret[TETHER_CLIENT_SECRET_MAX + 2] = '\0';
    assert_int_equal(PARSE(BASIC(long_secret)), TETHER_OK);
    long_secret[TETHER_CLIENT_SECRET_MAX + 2] = 'a';
    long_secret[TETHER_CLIENT_SECRET_MAX + 3] = '\0';
    assert_int_equal(PARSE(BASIC(long_secret)), TETHER_ERR_PARSE);
    assert_non_null(strstr(message, "too long"));
#undef PARSE
#undef BASIC
    tether_client_credentials_clear(&creds);
}

/* An introspection request with this Authorization header (NULL: none). */
static unsigned introspect_as(fixture_t *f, const char *authorization, const char *body)
{
    tether_http_request_t request;

    memset(&request, 0, sizeof(request));
    request.method = "POST";
    request.path = "/v1/introspect";
    request.authorization = authorization;
    request.content_type = "application/x-www-form-urlencoded";
    request.body = (const uint8_t *)body;
    request.body_len = strlen(body);
    return fleet_fixture_route(&f->router, &request, &f->response, &f->json, false);
}

static long long token_id(fixture_t *f, const char *token)
{
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    tether_store_admin_token_t row;

    assert_int_equal(tether_secret_token_hash(token, strlen(token), hash), TETHER_OK);
    assert_int_equal(tether_store_admin_token_find(&f->store, hash, &row), TETHER_OK);
    return (long long)row.id;
}

/* A stock relying party (mod_auth_openidc, ...) authenticates as an OAuth
 * client: Basic or client_secret_post, id = the admin token's id, secret
 * = the token; the relying-party role is still required. */
static void introspect_client_auth(void **state)
{
    fixture_t *f = *state;
    char credentials[128], header[256], body[TETHER_JWS_MAX_LEN + 256];
    const char *bad = "Basic realm=\"tether-fleetd\"";
    long long rp = token_id(f, f->rp_token);
    char token[TETHER_JWS_MAX_LEN + 1];

    assert_int_equal(tether_store_issued_token_add(&f->store, JTI1, DEV1, time(NULL) + 300,
                                                   time(NULL)),
                     TETHER_OK);
    sign(f, claims_for(DEV1, JTI1, time(NULL) - 1, time(NULL) + 300), &f->key, KID);
    strcpy(token, f->token);
    snprintf(body, sizeof(body), "token=%s", token);
    /* client_secret_basic */
    snprintf(credentials, sizeof(credentials), "%lld:%s", rp, f->rp_token);
    basic_header(credentials, header, sizeof(header));
    assert_int_equal(introspect_as(f, header, body), 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "active")));
    header[0] = 'b'; /* the scheme is case-insensitive (RFC 7235 section 2.1) */
    assert_int_equal(introspect_as(f, header, body), 200);
    /* client_secret_post */
    snprintf(body, sizeof(body), "client_id=%lld&token=%s&client_secret=%s", rp, token,
             f->rp_token);
    assert_int_equal(introspect_as(f, NULL, body), 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "active")));
    /* One method per request. */
    assert_int_equal(introspect_as(f, header, body), 400);
    assert_string_equal(error_of(f), "invalid_request");
    snprintf(header, sizeof(header), "Bearer %s", f->rp_token);
    assert_int_equal(introspect_as(f, header, body), 400);
    /* Another token's id, no id, a revoked or unknown token: invalid_client. */
    snprintf(body, sizeof(body), "client_id=%lld&token=x&client_secret=%s", rp + 1, f->rp_token);
    assert_int_equal(introspect_as(f, NULL, body), 401);
    assert_string_equal(error_of(f), "invalid_client");
    assert_string_equal(f->response.www_authenticate, bad);
    snprintf(body, sizeof(body), "token=x&client_secret=%s", f->rp_token);
    assert_int_equal(introspect_as(f, NULL, body), 401);
    snprintf(credentials, sizeof(credentials), "%lld:tthr_adm_nope", rp);
    basic_header(credentials, header, sizeof(header));
    assert_int_equal(introspect_as(f, header, "token=x"), 401);
    assert_string_equal(error_of(f), "invalid_client");
    assert_int_equal(introspect_as(f, "Basic !!!!", "token=x"), 401);
    assert_string_equal(f->response.www_authenticate, bad);
    /* The role is checked as for a bearer token. */
    snprintf(credentials, sizeof(credentials), "%lld:%s", token_id(f, f->all), f->all);
    basic_header(credentials, header, sizeof(header));
    assert_int_equal(introspect_as(f, header, "token=x"), 403);
    assert_string_equal(error_of(f), "insufficient_scope");
    snprintf(credentials, sizeof(credentials), "%lld:%s", rp, f->rp_token);
    basic_header(credentials, header, sizeof(header));
    assert_int_equal(tether_store_admin_token_revoke(&f->store, rp, NOW, &(unsigned){0}),
                     TETHER_OK);
    assert_int_equal(introspect_as(f, header, "token=x"), 401);
    /* The body's client_id alone is no authentication. */
    assert_int_equal(introspect_as(f, NULL, "token=x&client_id=2"), 401);
    assert_string_equal(error_of(f), "unauthorized");
}

/* ---- the revocation feed ---------------------------------------------------------------- */

static void feed_page(void **state)
{
    fixture_t *f = *state;
    cJSON *answer = NULL;
    const cJSON *list, *entry;
    size_t count = 99;

    assert_int_equal(tether_revocation_feed_page(&f->store, 0, &answer, &count), TETHER_OK);
    assert_int_equal(count, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(answer, "revocations")),
                     0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(answer, "last_seq")->valueint, 0);
    cJSON_Delete(answer);

    assert_int_equal(tether_store_device_change_status(&f->store, DEV1, TETHER_DEVICE_REVOKE,
                                                       "stolen laptop", NOW, NULL),
                     TETHER_OK);
    assert_int_equal(tether_store_device_change_status(&f->store, DEV2, TETHER_DEVICE_QUARANTINE,
                                                       "clone", NOW + 1, NULL),
                     TETHER_OK);
    assert_int_equal(f->hook_calls, 2);
    assert_int_equal(tether_store_device_change_status(&f->store, DEV2, TETHER_DEVICE_REINSTATE,
                                                       "ok", NOW + 2, NULL),
                     TETHER_OK);
    assert_int_equal(f->hook_calls, 2); /* a reinstate appends nothing */
    assert_int_equal(tether_revocation_feed_page(&f->store, 0, &answer, &count), TETHER_OK);
    assert_int_equal(count, 2);
    list = cJSON_GetObjectItemCaseSensitive(answer, "revocations");
    entry = cJSON_GetArrayItem(list, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(entry, "seq")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "device_id")->valuestring, DEV1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(entry, "jti")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "reason")->valuestring,
                        "stolen laptop");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(entry, "created_at")->valueint, NOW);
    entry = cJSON_GetArrayItem(list, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(entry, "seq")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "device_id")->valuestring, DEV2);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(answer, "last_seq")->valueint, 2);
    cJSON_Delete(answer);
    /* after: strictly newer */
    assert_int_equal(tether_revocation_feed_page(&f->store, 1, &answer, &count), TETHER_OK);
    assert_int_equal(count, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(answer, "last_seq")->valueint, 2);
    cJSON_Delete(answer);
    /* nothing newer: last_seq is what the client had */
    assert_int_equal(tether_revocation_feed_page(&f->store, 7, &answer, &count), TETHER_OK);
    assert_int_equal(count, 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(answer, "last_seq")->valueint, 7);
    cJSON_Delete(answer);
}

#define ZEROS "00000000000000000000000000000000"

static void feed_pages_of_500(void **state)
{
    fixture_t *f = *state;
    cJSON *answer = NULL;
    const cJSON *list;
    size_t count = 0;
    int64_t head = 0;

    /* jti: i in 32 decimal digits, zero-padded (SQL both stores take). */
    fleet_db_exec(f->db,
                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 620) "
                  "INSERT INTO revocations (device_id, jti, reason, created_at) "
                  "SELECT '" DEV1 "', substr('" ZEROS "' || i, length('" ZEROS "' || i) - 31), "
                  "'bulk', 1700000000 + i FROM n");
    assert_int_equal(tether_revocation_feed_page(&f->store, 0, &answer, &count), TETHER_OK);
    assert_int_equal(count, TETHER_FLEET_FEED_PAGE);
    list = cJSON_GetObjectItemCaseSensitive(answer, "revocations");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "seq")->valueint,
                     1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 499), "seq")
                         ->valueint,
                     500);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "jti")
                            ->valuestring,
                        "00000000000000000000000000000001");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(answer, "last_seq")->valueint, 500);
    cJSON_Delete(answer);
    assert_int_equal(tether_revocation_feed_page(&f->store, 500, &answer, &count), TETHER_OK);
    assert_int_equal(count, 120);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(answer, "last_seq")->valueint, 620);
    cJSON_Delete(answer);
    assert_int_equal(tether_store_revocation_head(&f->store, &head), TETHER_OK);
    assert_int_equal(head, 620);
}

/* Another process appends (a second handle on the file stands for it): the
 * feed's head sees it within TETHER_FEED_HEAD_MAX_AGE_MS without a notify;
 * this process's own revocations are seen at once after a notify. */
static void feed_head_cache(void **state)
{
    fixture_t *f = *state;
    tether_store_t replica;
    int64_t head = -1;

    tether_store_init(&replica);
    assert_int_equal(tether_store_open(&replica, f->db, 1), TETHER_OK);
    assert_int_equal(tether_revocation_feed_head(&f->rp.feed, &head), TETHER_OK);
    assert_int_equal(head, 0);
    assert_int_equal(tether_store_device_change_status(&replica, DEV1, TETHER_DEVICE_REVOKE,
                                                       "elsewhere", NOW, NULL),
                     TETHER_OK);
    assert_int_equal(tether_revocation_feed_head(&f->rp.feed, &head), TETHER_OK);
    assert_int_equal(head, 0); /* cached */
    usleep((TETHER_FEED_HEAD_MAX_AGE_MS + 100) * 1000);
    assert_int_equal(tether_revocation_feed_head(&f->rp.feed, &head), TETHER_OK);
    assert_int_equal(head, 1);
    assert_int_equal(tether_store_device_change_status(&f->store, DEV2, TETHER_DEVICE_REVOKE,
                                                       "here", NOW, NULL),
                     TETHER_OK);
    tether_rp_api_revoked(&f->rp); /* what fleetd's store hook does */
    assert_int_equal(tether_revocation_feed_head(&f->rp.feed, &head), TETHER_OK);
    assert_int_equal(head, 2);
    tether_store_free(&replica);
}

static void feed_endpoint(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(call(f, "GET", "/v1/revocations", NULL, NULL, NULL, NULL), 401);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0", f->fleet, NULL, NULL), 403);
    assert_string_equal(error_of(f), "insufficient_scope");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(f->json, "error_description")->valuestring,
        "this request needs an admin token with the read, security or relying-party role");
    /* relying-party, security or read */
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0", f->rp_token, NULL, NULL), 200);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0", f->security, NULL, NULL), 200);
    assert_int_equal(call(f, "GET", "/v1/revocations", NULL, f->read, NULL, NULL), 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(f->json, "last_seq")->valueint, 0);
    assert_int_equal(call(f, "POST", "/v1/revocations", NULL, f->rp_token, NULL, NULL), 405);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=-1", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=x", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=01", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "wait=00", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "wait=1s", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=1&after=2", f->rp_token, NULL,
                          NULL),
                     400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "since=1", f->rp_token, NULL, NULL), 400);
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0&wait=0", f->rp_token, NULL,
                          "x"),
                     400);
    assert_int_equal(call(f, "GET", "/v1/other", NULL, f->rp_token, NULL, NULL), 404);
}

/* The long poll as the server drives it: park, poll, final poll. */
static void feed_long_poll(void **state)
{
    fixture_t *f = *state;
    tether_http_park_t park;
    tether_http_response_t answer;
    cJSON *json;

    memset(&answer, 0, sizeof(answer));
    /* Nothing newer: the handler parks, with the wait capped at 30 s. */
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0&wait=3600", f->rp_token, NULL,
                          NULL),
                     0);
    assert_null(f->response.body);
    assert_non_null(f->response.park.poll);
    assert_int_equal(f->response.park.timeout_ms, 30000);
    tether_http_response_clear(&f->response); /* releases the park (ASan checks) */

    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0&wait=5", f->rp_token, NULL, NULL),
                     0);
    park = f->response.park;
    memset(&f->response.park, 0, sizeof(f->response.park)); /* the server takes it over */
    assert_int_equal(park.timeout_ms, 5000);
    assert_false(park.poll(park.arg, false, &answer));
    assert_null(answer.body);
    /* A revocation here: the hook's notify makes the next poll see it. */
    assert_int_equal(tether_store_device_change_status(&f->store, DEV1, TETHER_DEVICE_REVOKE,
                                                       "leak", NOW, NULL),
                     TETHER_OK);
    tether_rp_api_revoked(&f->rp);
    assert_true(park.poll(park.arg, false, &answer));
    assert_int_equal(answer.status, 200);
    json = cJSON_Parse(answer.body);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "revocations")), 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(json, "last_seq")->valueint, 1);
    cJSON_Delete(json);
    tether_http_response_clear(&answer);
    park.release(park.arg);

    /* The wait ends: the final poll answers an empty page, last_seq = after. */
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=1&wait=1", f->rp_token, NULL, NULL),
                     0);
    park = f->response.park;
    memset(&f->response.park, 0, sizeof(f->response.park));
    assert_false(park.poll(park.arg, false, &answer));
    assert_true(park.poll(park.arg, true, &answer));
    json = cJSON_Parse(answer.body);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(json, "revocations")), 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(json, "last_seq")->valueint, 1);
    cJSON_Delete(json);
    tether_http_response_clear(&answer);
    park.release(park.arg);

    /* Something newer already: answered at once, no park. */
    assert_int_equal(call(f, "GET", "/v1/revocations", "after=0&wait=30", f->rp_token, NULL,
                          NULL),
                     200);
    assert_null(f->response.park.poll);
}

/* ---- the relying-party role ----------------------------------------------------------- */

static unsigned admin_call(fixture_t *f, const char *method, const char *path, const char *token,
                           const char *body)
{
    tether_http_request_t request;

    memset(&request, 0, sizeof(request));
    request.method = method;
    request.path = path;
    snprintf(f->authorization, sizeof(f->authorization), "Bearer %s", token);
    request.authorization = f->authorization;
    request.content_type = body != NULL ? "application/json" : NULL;
    request.body = (const uint8_t *)body;
    request.body_len = body != NULL ? strlen(body) : 0;
    return fleet_fixture_route(&f->router, &request, &f->response, &f->json, false);
}

static void relying_party_role(void **state)
{
    fixture_t *f = *state;
    const char *body = "{\"name\": \"gateway\", \"roles\": [\"relying-party\"]}";
    char text[64];
    unsigned roles = 0;
    const cJSON *tokens, *token;
    bool listed = false;

    assert_int_equal(tether_roles_format(TETHER_ROLE_KNOWN, text, sizeof(text)), TETHER_OK);
    assert_string_equal(text, "read,fleet,security,relying-party");
    assert_int_equal(tether_roles_parse("relying-party,read", &roles), TETHER_OK);
    assert_int_equal(roles, TETHER_ROLE_RELYING_PARTY | TETHER_ROLE_READ);
    {
        /* tetherctl's --role */
        const char *names[TETHER_ROLE_COUNT];
        size_t n = 0;

        assert_int_equal(ctl_roles_parse("relying-party", names, &n), TETHER_OK);
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "relying-party");
        assert_int_equal(ctl_roles_parse("read,fleet,security,relying-party", names, &n),
                         TETHER_OK);
        assert_int_equal(n, 4);
        assert_int_equal(ctl_roles_parse("relying_party", names, &n), TETHER_ERR_PARSE);
    }
    /* A security token may grant relying-party (fleets made before the
     * role existed have no token holding it); a fleet or read one not. */
    assert_int_equal(admin_call(f, "POST", "/v1/admin/tokens", f->security, body), 201);
    assert_int_equal(admin_call(f, "POST", "/v1/admin/tokens", f->all, body), 201);
    assert_int_equal(admin_call(f, "POST", "/v1/admin/tokens", f->fleet, body), 403);
    assert_int_equal(admin_call(f, "POST", "/v1/admin/tokens", f->security,
                                "{\"name\": \"x\", \"roles\": [\"relying-party\", \"read\"]}"),
                     403);
    assert_int_equal(admin_call(f, "POST", "/v1/admin/tokens", f->security,
                                "{\"name\": \"x\", \"roles\": [\"relying_party\"]}"),
                     400);
    assert_int_equal(admin_call(f, "GET", "/v1/admin/tokens", f->security, NULL), 200);
    tokens = cJSON_GetObjectItemCaseSensitive(f->json, "tokens");
    cJSON_ArrayForEach(token, tokens)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(token, "roles");
        if (cJSON_GetArraySize(r) == 1 &&
            strcmp(cJSON_GetArrayItem(r, 0)->valuestring, "relying-party") == 0)
            listed = true;
    }
    assert_true(listed);
    /* A relying-party token opens no admin endpoint. */
    assert_int_equal(admin_call(f, "GET", "/v1/admin/devices", f->rp_token, NULL), 403);
    assert_int_equal(admin_call(f, "GET", "/v1/admin/alerts", f->rp_token, NULL), 403);
}

/* ---- revoke-leaked's check (tetherctl) ------------------------------------------------ */

static void leak_check(void **state)
{
    fixture_t *f = *state;
    cJSON *jwks = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(jwks, "keys");
    cJSON *jwk = NULL, *claims;
    ctl_jwks_t keys;
    tether_jwt_keyset_t set;
    ctl_leak_token_t out;

    /* What /.well-known/jwks.json holds: ours, and keys to skip. */
    assert_int_equal(tether_jwk_write(&f->key, &jwk), TETHER_OK);
    cJSON_AddStringToObject(jwk, "kid", KID);
    cJSON_AddItemToArray(list, jwk);
    cJSON_AddItemToArray(list, cJSON_Parse("{\"kty\": \"RSA\", \"kid\": \"r\", \"n\": \"AQAB\", "
                                           "\"e\": \"AQAB\"}"));
    assert_int_equal(tether_jwk_write(&f->other, &jwk), TETHER_OK);
    cJSON_AddItemToArray(list, jwk); /* no kid */
    assert_int_equal(ctl_jwks_parse(jwks, &keys), TETHER_OK);
    assert_int_equal(keys.count, 1);
    assert_int_equal(keys.skipped, 2);
    set.keys = keys.keys;
    set.count = keys.count;

    /* Ours, long expired: still ours (it names its device). */
    sign(f, claims_for(DEV1, JTI1, 1000, 1300), &f->key, KID);
    out.line = 12;
    ctl_leak_check(f->token, strlen(f->token), &set, ISSUER, &out);
    assert_int_equal(out.verdict, CTL_LEAK_OURS);
    assert_int_equal(out.line, 12);
    assert_string_equal(out.device_id, DEV1);
    assert_string_equal(out.jti, JTI1);
    assert_int_equal(out.exp, 1300);
    assert_int_equal(strlen(out.prefix), CTL_LEAK_PREFIX_LEN);
    assert_memory_equal(out.prefix, f->token, CTL_LEAK_PREFIX_LEN);
    /* Without the fleet's metadata the issuer is not checked. */
    ctl_leak_check(f->token, strlen(f->token), &set, NULL, &out);
    assert_int_equal(out.verdict, CTL_LEAK_OURS);
    ctl_leak_check(f->token, strlen(f->token), &set, "https://other.fleet", &out);
    assert_int_equal(out.verdict, CTL_LEAK_WRONG_ISSUER);
    assert_string_equal(out.device_id, "");

    /* Another signer, with our kid or its own. */
    sign(f, claims_for(DEV1, JTI1, NOW, NOW + 300), &f->other, KID);
    ctl_leak_check(f->token, strlen(f->token), &set, ISSUER, &out);
    assert_int_equal(out.verdict, CTL_LEAK_NOT_OURS);
    assert_string_equal(out.device_id, "");
    sign(f, claims_for(DEV1, JTI1, NOW, NOW + 300), &f->other, "someone-else");
    ctl_leak_check(f->token, strlen(f->token), &set, ISSUER, &out);
    assert_int_equal(out.verdict, CTL_LEAK_NOT_OURS);
    assert_non_null(strstr(out.why, "someone-else"));

    /* Ours, without sub: nothing to revoke. */
    claims = claims_for(DEV1, JTI1, NOW, NOW + 300);
    cJSON_DeleteItemFromObject(claims, "sub");
    sign(f, claims, &f->key, KID);
    ctl_leak_check(f->token, strlen(f->token), &set, ISSUER, &out);
    assert_int_equal(out.verdict, CTL_LEAK_MALFORMED);
    ctl_leak_check("eyJ.eyJ.x", 9, &set, ISSUER, &out);
    assert_int_equal(out.verdict, CTL_LEAK_MALFORMED);

    ctl_jwks_free(&keys);
    cJSON_Delete(jwks);
    jwks = cJSON_Parse("{\"keys\": 1}");
    assert_int_equal(ctl_jwks_parse(jwks, &keys), TETHER_ERR_PARSE);
    cJSON_Delete(jwks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(active_token, setup, teardown),
        cmocka_unit_test_setup_teardown(signature_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(issuer_checked_audience_not, setup, teardown),
        cmocka_unit_test_setup_teardown(times, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_jti, setup, teardown),
        cmocka_unit_test_setup_teardown(revocation_seen_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(device_not_active, setup, teardown),
        cmocka_unit_test_setup_teardown(no_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(introspect_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(introspect_refusals, setup, teardown),
        cmocka_unit_test(form_parser),
        cmocka_unit_test(client_auth_parser),
        cmocka_unit_test_setup_teardown(introspect_client_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(feed_page, setup, teardown),
        cmocka_unit_test_setup_teardown(feed_pages_of_500, setup, teardown),
        cmocka_unit_test_setup_teardown(feed_head_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(feed_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(feed_long_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(relying_party_role, setup, teardown),
        cmocka_unit_test_setup_teardown(leak_check, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
