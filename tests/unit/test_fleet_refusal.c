/* How the agent reads a refusal from the fleet (enrolment and exchange). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_refusal.h"

static void refusal_of(const char *status_line, const char *body, tether_fleet_refusal_t *out)
{
    char raw[2048];
    tether_https_response_t resp;
    tether_http_limits_t limits = {.max_header_bytes = 1024, .max_body_bytes = 1024};
    int n = snprintf(raw, sizeof(raw), "%s\r\nContent-Length: %zu\r\n\r\n%s", status_line,
                     strlen(body), body);

    assert_true(n > 0 && (size_t)n < sizeof(raw));
    tether_https_response_init(&resp);
    assert_int_equal(tether_http_response_parse((const uint8_t *)raw, (size_t)n, true, &limits,
                                                &resp, NULL),
                     TETHER_OK);
    tether_fleet_refusal_parse(&resp, out);
    tether_https_response_free(&resp);
}

static void codes_and_description(void **state)
{
    tether_fleet_refusal_t r;

    (void)state;
    refusal_of("HTTP/1.1 403 Forbidden",
               "{\"error\":\"access_denied\",\"tether_error\":\"clone_detected\","
               "\"error_description\":\"the counter went back\"}",
               &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error, "access_denied");
    assert_string_equal(r.tether_error, "clone_detected");
    assert_string_equal(tether_fleet_refusal_code(&r, "http_error"), "clone_detected");
    assert_string_equal(tether_fleet_refusal_description(&r), "the counter went back");

    refusal_of("HTTP/1.1 400 Bad Request", "{\"error\":\"invalid_request\"}", &r);
    assert_string_equal(tether_fleet_refusal_code(&r, "http_error"), "invalid_request");
    assert_string_equal(tether_fleet_refusal_description(&r), "no description");
}

/* Whatever the body, a refusal is still reported, with the fallbacks. */
static void bodies_that_say_nothing(void **state)
{
    static const char *const bodies[] = {
        "", "<html>busy</html>", "[\"error\"]", "{\"error\":7,\"error_description\":null}",
        "{\"error\":\"a\",\"error\":\"b\"}", /* duplicate members: refused by the strict parser */
    };
    tether_fleet_refusal_t r;

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        refusal_of("HTTP/1.1 503 Service Unavailable", bodies[i], &r);
        assert_int_equal(r.status, 503);
        assert_string_equal(tether_fleet_refusal_code(&r, "http_error"), "http_error");
        assert_string_equal(tether_fleet_refusal_description(&r), "no description");
    }
}

/* Members longer than the fields are cut, never overflow. */
static void long_members_are_cut(void **state)
{
    char body[1024], code[200];
    tether_fleet_refusal_t r;

    (void)state;
    memset(code, 'c', sizeof(code) - 1);
    code[sizeof(code) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"error\":\"%s\",\"error_description\":\"%s%s\"}", code, code,
             code);
    refusal_of("HTTP/1.1 401 Unauthorized", body, &r);
    assert_int_equal(strlen(r.error), sizeof(r.error) - 1);
    assert_int_equal(strlen(r.description), sizeof(r.description) - 1);
    assert_int_equal(memcmp(r.error, code, sizeof(r.error) - 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codes_and_description),
        cmocka_unit_test(bodies_that_say_nothing),
        cmocka_unit_test(long_members_are_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
