/*
 * The AI endpoint's pure parts: the app's request head, the upstream URL
 * rule (plain http only to loopback), the DPoP nonce challenge, and the
 * gateway's Retry-After passed on to the app.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ai_proxy.h"

static tether_status_t head(const char *text, tether_ai_request_t *req)
{
    return tether_ai_request_parse(text, strlen(text), req);
}

static void request_keeps_only_what_goes_upstream(void **state)
{
    tether_ai_request_t req;
    static const char text[] = "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
                               "Host: 127.0.0.1:9\r\nAuthorization: Bearer sk-app-secret\r\n"
                               "content-type:  application/json \r\nAccept: text/event-stream\r\n"
                               "DPoP: forged\r\nContent-Length: 12\r\n\r\n{\"model\":1}";

    (void)state;
    assert_int_equal(head(text, &req), TETHER_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.target, "/v1/chat/completions?x=1");
    assert_string_equal(req.content_type, "application/json");
    assert_string_equal(req.accept, "text/event-stream");
    assert_int_equal(req.body_len, 12);
    assert_int_equal(req.head_len, strlen(text) - 11);
    assert_int_equal(head("GET /v1/models HTTP/1.1\r\n\r\n", &req), TETHER_OK);
    assert_int_equal(req.body_len, 0);
    assert_string_equal(req.content_type, "");
}

static void request_refusals(void **state)
{
    tether_ai_request_t req;
    char big[TETHER_AI_MAX_HEAD + 8];

    (void)state;
    assert_int_equal(head("GET /v1/models HTTP/1.1\r\n", &req), TETHER_ERR_STATE);
    assert_int_equal(head("get /v1/models HTTP/1.1\r\n\r\n", &req), TETHER_ERR_PARSE);
    assert_int_equal(head("GET http://x/v1 HTTP/1.1\r\n\r\n", &req), TETHER_ERR_PARSE);
    assert_int_equal(head("GET /v1/a#b HTTP/1.1\r\n\r\n", &req), TETHER_ERR_PARSE);
    assert_int_equal(head("GET /v1 HTTP/2\r\n\r\n", &req), TETHER_ERR_PARSE);
    assert_int_equal(head("GET /v1 HTTP/1.1\r\nX: a\nb\r\n\r\n", &req), TETHER_ERR_PARSE);
    assert_int_equal(head("POST /v1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &req),
                     TETHER_ERR_PARSE);
    assert_int_equal(head("POST /v1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                          &req),
                     TETHER_ERR_PARSE);
    assert_int_equal(head("POST /v1 HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", &req),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(head("POST /v1 HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n", &req),
                     TETHER_OK);
    memset(big, 'a', sizeof(big));
    assert_int_equal(tether_ai_request_parse(big, sizeof(big), &req), TETHER_ERR_TOO_LARGE);
    assert_string_equal(req.method, "");
}

static tether_status_t upstream(const char *url, char *origin, char *prefix)
{
    char why[256];

    return tether_ai_upstream_parse(url, origin, 128, prefix, 128, why, sizeof(why));
}

static void upstream_plain_only_to_loopback(void **state)
{
    char origin[128], prefix[128];

    (void)state;
    assert_int_equal(upstream("https://gate.example/v1", origin, prefix), TETHER_OK);
    assert_string_equal(origin, "https://gate.example:443");
    assert_string_equal(prefix, "/v1");
    assert_int_equal(upstream("http://127.0.0.1:8080/v1", origin, prefix), TETHER_OK);
    assert_string_equal(origin, "http://127.0.0.1:8080");
    assert_int_equal(upstream("http://127.0.0.1/v1", origin, prefix), TETHER_OK);
    assert_string_equal(origin, "http://127.0.0.1:80");
    assert_int_equal(upstream("http://[::1]:9/v1", origin, prefix), TETHER_OK);
    assert_string_equal(origin, "http://[::1]:9");
    assert_int_equal(upstream("http://192.0.2.1/v1", origin, prefix), TETHER_ERR_PARSE);
    assert_string_equal(origin, "");
    assert_int_equal(upstream("http://localhost/v1", origin, prefix), TETHER_ERR_PARSE);
    assert_int_equal(upstream("http://128.0.0.1/v1", origin, prefix), TETHER_ERR_PARSE);
    assert_int_equal(upstream("ftp://127.0.0.1/v1", origin, prefix), TETHER_ERR_PARSE);
    assert_int_equal(upstream("https://u@gate.example/v1", origin, prefix), TETHER_ERR_PARSE);
}

static void feed(tether_ai_challenge_t *c, const char *line)
{
    tether_ai_challenge_header(c, line, strlen(line));
}

static void nonce_challenge(void **state)
{
    tether_ai_challenge_t c;

    (void)state;
    memset(&c, 0, sizeof(c));
    feed(&c, "Content-Type: application/json\r\n");
    feed(&c, "www-authenticate: DPoP error=\"use_dpop_nonce\", error_description=\"x\"\r\n");
    feed(&c, "DPoP-Nonce: eyJ7S_zG.eyJH0-Z.HX4w-7v\r\n");
    assert_true(c.use_dpop_nonce);
    assert_string_equal(c.nonce, "eyJ7S_zG.eyJH0-Z.HX4w-7v");
    assert_true(tether_ai_challenge_retry(401, &c));
    /* Only a 401 asks for a retry. */
    assert_false(tether_ai_challenge_retry(400, &c));
    assert_false(tether_ai_challenge_retry(200, &c));
}

static void no_retry_without_a_usable_nonce(void **state)
{
    tether_ai_challenge_t c;
    char long_nonce[TETHER_DPOP_NONCE_MAX + 32];

    (void)state;
    /* Another error, or a Bearer challenge: no retry. */
    memset(&c, 0, sizeof(c));
    feed(&c, "WWW-Authenticate: DPoP error=\"invalid_dpop_proof\"\r\n");
    feed(&c, "DPoP-Nonce: n1\r\n");
    assert_false(tether_ai_challenge_retry(401, &c));
    memset(&c, 0, sizeof(c));
    feed(&c, "WWW-Authenticate: Bearer error=\"use_dpop_nonce\"\r\n");
    feed(&c, "DPoP-Nonce: n1\r\n");
    assert_false(tether_ai_challenge_retry(401, &c));
    /* The challenge without a nonce, or with one that is not 1*NQCHAR. */
    memset(&c, 0, sizeof(c));
    feed(&c, "WWW-Authenticate: DPoP error=\"use_dpop_nonce\"\r\n");
    assert_false(tether_ai_challenge_retry(401, &c));
    feed(&c, "DPoP-Nonce: a\"b\r\n");
    assert_string_equal(c.nonce, "");
    assert_false(tether_ai_challenge_retry(401, &c));
    feed(&c, "DPoP-Nonce: \r\n");
    assert_false(tether_ai_challenge_retry(401, &c));
    snprintf(long_nonce, sizeof(long_nonce), "DPoP-Nonce: %0*d", TETHER_DPOP_NONCE_MAX + 1, 7);
    feed(&c, long_nonce);
    assert_string_equal(c.nonce, "");
    /* A later well-formed nonce replaces nothing but its own slot. */
    feed(&c, "DPoP-Nonce: n2");
    assert_string_equal(c.nonce, "n2");
    assert_true(tether_ai_challenge_retry(401, &c));
}

static bool retry_after(const char *line, char value[TETHER_AI_RETRY_AFTER_MAX + 1])
{
    return tether_ai_retry_after_header(line, strlen(line), value);
}

static void retry_after_passed_on(void **state)
{
    char value[TETHER_AI_RETRY_AFTER_MAX + 1] = "";
    char long_line[TETHER_AI_RETRY_AFTER_MAX + 32];

    (void)state;
    /* A gateway's 429 or 503: delta-seconds or an HTTP-date, any case. */
    assert_true(retry_after("Retry-After: 3600\r\n", value));
    assert_string_equal(value, "3600");
    assert_true(retry_after("retry-after: Sun, 06 Nov 1994 08:49:37 GMT\r\n", value));
    assert_string_equal(value, "Sun, 06 Nov 1994 08:49:37 GMT");
    /* Other headers, and values the agent must not write into its own
     * response head (line breaks, quotes, empty, too long), leave it alone. */
    strcpy(value, "7");
    assert_false(retry_after("Content-Type: text/plain\r\n", value));
    assert_false(retry_after("Retry-After: 1\rSet-Cookie: a=b", value));
    assert_false(retry_after("Retry-After: \"1\"", value));
    assert_false(retry_after("Retry-After: \r\n", value));
    snprintf(long_line, sizeof(long_line), "Retry-After: %0*d", TETHER_AI_RETRY_AFTER_MAX + 1, 5);
    assert_false(retry_after(long_line, value));
    assert_string_equal(value, "7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_keeps_only_what_goes_upstream),
        cmocka_unit_test(request_refusals),
        cmocka_unit_test(upstream_plain_only_to_loopback),
        cmocka_unit_test(nonce_challenge),
        cmocka_unit_test(no_retry_without_a_usable_nonce),
        cmocka_unit_test(retry_after_passed_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
