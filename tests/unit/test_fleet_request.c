/* Admin API request bodies and value checks: strict JSON, bounds, roles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "admin_request.h"
#include "validate.h"

#define EK "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

static tether_status_t allow(const char *body, tether_admin_allow_request_t *req, char *message)
{
    return tether_admin_parse_allow(body, strlen(body), req, message, TETHER_ADMIN_MESSAGE_SIZE);
}

static void allow_good(void **state)
{
    tether_admin_allow_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];

    (void)state;
    assert_int_equal(allow(" {\"ek_sha256\": \"" EK "\", \"name\": \"edge 7\"}\n", &req, message),
                     TETHER_OK);
    assert_string_equal(req.ek_sha256,
                        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    assert_string_equal(req.name, "edge 7");
}

static void allow_refused(void **state)
{
    static const char *const bodies[] = {
        "",
        "[]",
        "null",
        "{\"ek_sha256\": \"" EK "\"}",                                   /* missing name */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"x\", \"extra\": 1}",     /* unknown field */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"x\", \"name\": \"y\"}", /* repeated */
        "{\"ek_sha256\": \"" EK "\", \"name\": 5}",                      /* type */
        "{\"ek_sha256\": \"abc\", \"name\": \"x\"}",                      /* short hex */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"\"}",                   /* empty name */
        "{\"ek_sha256\": \"" EK "\", \"name\": \" x\"}",                 /* leading space */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"a\\nb\"}",              /* control char */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"a\\u0000b\"}",          /* NUL escape */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"x\"} {}",               /* two values */
        "{\"ek_sha256\": \"" EK "\", \"name\": \"x\"",                   /* truncated */
        "{\"ek_sha256\": \"" EK "\", \"name\": "
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", /* 65 chars */
    };
    tether_admin_allow_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        message[0] = '\0';
        assert_int_equal(allow(bodies[i], &req, message), TETHER_ERR_PARSE);
        assert_true(message[0] != '\0');
    }
    assert_int_equal(allow("{\"ek_sha256\": \"" EK "\", \"name\": \"x\", \"extra\": 1}", &req,
                           message),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(message, "unknown field \"extra\""));
}

static void embedded_nul_refused(void **state)
{
    static const char body[] = "{\"ek_sha256\": \"" EK "\", \"name\": \"x\"}\0";
    tether_admin_allow_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];

    (void)state;
    assert_int_equal(tether_admin_parse_allow(body, sizeof(body), &req, message, sizeof(message)),
                     TETHER_ERR_PARSE);
}

static void reason(void **state)
{
    tether_admin_reason_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    char body[400];

    (void)state;
    strcpy(body, "{\"reason\": \"stolen from \\\"site 4\\\"\"}");
    assert_int_equal(tether_admin_parse_reason(body, strlen(body), &req, message, sizeof(message)),
                     TETHER_OK);
    assert_string_equal(req.reason, "stolen from \"site 4\"");
    strcpy(body, "{}");
    assert_int_equal(tether_admin_parse_reason(body, strlen(body), &req, message, sizeof(message)),
                     TETHER_ERR_PARSE);
    strcpy(body, "{\"reason\": \"\xc3\xa9t\xc3\xa9\"}");
    assert_int_equal(tether_admin_parse_reason(body, strlen(body), &req, message, sizeof(message)),
                     TETHER_ERR_PARSE);
    strcpy(body, "{\"reason\": \"");
    memset(body + strlen(body), 'r', TETHER_STORE_REASON_MAX + 1);
    strcpy(body + 12 + TETHER_STORE_REASON_MAX + 1, "\"}");
    assert_int_equal(tether_admin_parse_reason(body, strlen(body), &req, message, sizeof(message)),
                     TETHER_ERR_PARSE);
}

static void bootstrap(void **state)
{
    tether_admin_bootstrap_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    const char *body;

    (void)state;
    body = "{\"ttl_seconds\": 600}";
    assert_int_equal(tether_admin_parse_bootstrap(body, strlen(body), 3600, &req, message,
                                                  sizeof(message)),
                     TETHER_OK);
    assert_int_equal(req.ttl_seconds, 600);
    assert_int_equal(req.uses, 1);
    body = "{\"ttl_seconds\": 3600, \"uses\": 1000}";
    assert_int_equal(tether_admin_parse_bootstrap(body, strlen(body), 3600, &req, message,
                                                  sizeof(message)),
                     TETHER_OK);
    assert_int_equal(req.uses, 1000);
    static const char *const bad[] = {
        "{\"ttl_seconds\": 3601}",          "{\"ttl_seconds\": 59}",
        "{\"ttl_seconds\": 600.5}",         "{\"ttl_seconds\": \"600\"}",
        "{\"ttl_seconds\": 600, \"uses\": 0}", "{\"ttl_seconds\": 600, \"uses\": 1001}",
        "{\"ttl_seconds\": 1e400}",         "{\"ttl_seconds\": true}",
        "{\"uses\": 2}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tether_admin_parse_bootstrap(bad[i], strlen(bad[i]), 3600, &req, message,
                                                      sizeof(message)),
                         TETHER_ERR_PARSE);
}

static void admin_token(void **state)
{
    tether_admin_token_request_t req;
    char message[TETHER_ADMIN_MESSAGE_SIZE];
    const char *body;

    (void)state;
    body = "{\"name\": \"ci\", \"roles\": [\"read\", \"fleet\"]}";
    assert_int_equal(tether_admin_parse_token(body, strlen(body), &req, message, sizeof(message)),
                     TETHER_OK);
    assert_int_equal(req.roles, TETHER_ROLE_READ | TETHER_ROLE_FLEET);
    assert_string_equal(req.name, "ci");
    static const char *const bad[] = {
        "{\"name\": \"ci\", \"roles\": []}",
        "{\"name\": \"ci\", \"roles\": [\"admin\"]}",
        "{\"name\": \"ci\", \"roles\": [\"read\", \"read\"]}",
        "{\"name\": \"ci\", \"roles\": [\"read,fleet\"]}",
        "{\"name\": \"ci\", \"roles\": [1]}",
        "{\"name\": \"ci\", \"roles\": \"read\"}",
        "{\"roles\": [\"read\"]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tether_admin_parse_token(bad[i], strlen(bad[i]), &req, message,
                                                  sizeof(message)),
                         TETHER_ERR_PARSE);
}

static void values(void **state)
{
    char id[TETHER_STORE_DEVICE_ID_SIZE];
    char other[TETHER_STORE_DEVICE_ID_SIZE];

    (void)state;
    assert_true(tether_fleet_name_valid("a", 1));
    assert_false(tether_fleet_name_valid("a ", 2));
    assert_false(tether_fleet_name_valid("a,b", 3));
    assert_true(tether_fleet_reason_valid("anything ~!", 11));
    assert_false(tether_fleet_reason_valid("", 0));
    assert_int_equal(tether_fleet_device_id_new(id), TETHER_OK);
    assert_int_equal(tether_fleet_device_id_new(other), TETHER_OK);
    assert_true(tether_fleet_device_id_valid(id, strlen(id)));
    assert_string_not_equal(id, other);
    assert_false(tether_fleet_device_id_valid("dev_00", 6));
    assert_false(tether_fleet_device_id_valid("dev_00000000000000000000000G", 28));
    assert_false(tether_fleet_device_id_valid("xev_000000000000000000000000", 28));
}

static void decimals(void **state)
{
    uint64_t value = 7;

    (void)state;
    assert_true(tether_fleet_decimal_parse("0", 10, &value));
    assert_int_equal(value, 0);
    assert_true(tether_fleet_decimal_parse("10", 10, &value));
    assert_int_equal(value, 10);
    assert_false(tether_fleet_decimal_parse("11", 10, &value));
    assert_int_equal(value, 0); /* set on entry */
    assert_false(tether_fleet_decimal_parse("01", 10, &value));
    assert_false(tether_fleet_decimal_parse("00", 10, &value));
    assert_false(tether_fleet_decimal_parse("", 10, &value));
    assert_false(tether_fleet_decimal_parse("+1", 10, &value));
    assert_false(tether_fleet_decimal_parse("-1", 10, &value));
    assert_false(tether_fleet_decimal_parse(" 1", 10, &value));
    assert_false(tether_fleet_decimal_parse("1 ", 10, &value));
    assert_false(tether_fleet_decimal_parse("1x", 10, &value));
    assert_false(tether_fleet_decimal_parse("9", 5, &value));
    assert_false(tether_fleet_decimal_parse(NULL, 10, &value));
    assert_true(tether_fleet_decimal_parse("18446744073709551615", UINT64_MAX, &value));
    assert_true(value == UINT64_MAX);
    assert_false(tether_fleet_decimal_parse("18446744073709551616", UINT64_MAX, &value));
    assert_false(tether_fleet_decimal_parse("99999999999999999999999", UINT64_MAX, &value));
    assert_true(tether_fleet_decimal_parse("9007199254740992", 1ULL << 53, &value));
    assert_false(tether_fleet_decimal_parse("9007199254740993", 1ULL << 53, &value));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allow_good), cmocka_unit_test(allow_refused),
        cmocka_unit_test(embedded_nul_refused), cmocka_unit_test(reason),
        cmocka_unit_test(bootstrap),  cmocka_unit_test(admin_token),
        cmocka_unit_test(values), cmocka_unit_test(decimals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
