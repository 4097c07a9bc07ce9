/*
 * net: the base URL parser, the HTTP response parser and the HTTPS client's
 * checks that need no server (set-up errors, request validation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tether/http_response.h"
#include "tether/https_client.h"
#include "tether/url.h"

/* ---- URL -------------------------------------------------------------- */

static tether_status_t url(const char *text, tether_url_t *out)
{
    const char *problem = "unset";
    tether_status_t rc = tether_url_parse(text, strlen(text), out, &problem);

    if (rc == TETHER_OK)
        assert_null(problem);
    else
        assert_non_null(problem);
    return rc;
}

static void url_good(void **state)
{
    tether_url_t u;

    (void)state;
    assert_int_equal(url("https://fleet.example.com", &u), TETHER_OK);
    assert_int_equal(u.host_type, TETHER_URL_HOST_DNS);
    assert_string_equal(u.host, "fleet.example.com");
    assert_int_equal(u.port, 443);
    assert_string_equal(u.port_text, "443");
    assert_string_equal(u.authority, "fleet.example.com:443");
    assert_string_equal(u.prefix, "");

    assert_int_equal(url("https://127.0.0.1:8443", &u), TETHER_OK);
    assert_int_equal(u.host_type, TETHER_URL_HOST_IPV4);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8443);
    assert_string_equal(u.authority, "127.0.0.1:8443");

    assert_int_equal(url("https://[::1]:8443/api/", &u), TETHER_OK);
    assert_int_equal(u.host_type, TETHER_URL_HOST_IPV6);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authority, "[::1]:8443");
    assert_string_equal(u.prefix, "/api");

    assert_int_equal(url("https://[2001:db8::10.0.0.1]", &u), TETHER_OK);
    assert_string_equal(u.host, "2001:db8::10.0.0.1");
    assert_int_equal(u.port, 443);

    assert_int_equal(url("HTTPS://Fleet-1.example:65535/a/b%20c;v=1/x@y:z", &u), TETHER_OK);
    assert_string_equal(u.host, "Fleet-1.example");
    assert_int_equal(u.port, 65535);
    assert_string_equal(u.prefix, "/a/b%20c;v=1/x@y:z");

    assert_int_equal(url("https://h:1/", &u), TETHER_OK);
    assert_int_equal(u.port, 1);
    assert_string_equal(u.prefix, "");

    assert_int_equal(url("https://localhost/tether/.../v0", &u), TETHER_OK);
    assert_string_equal(u.prefix, "/tether/.../v0");
    assert_int_equal(url("https://0.0.0.0", &u), TETHER_OK);
    assert_int_equal(url("https://255.255.255.255", &u), TETHER_OK);
    assert_int_equal(url("https://1host.2.example", &u), TETHER_OK);
}

static void url_bounds(void **state)
{
    char text[TETHER_URL_MAX_LENGTH + 16];
    char label[70];
    tether_url_t u;

    (void)state;
    /* 63-character labels are fine, 64 are not. */
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(text, sizeof(text), "https://%s.example", label);
    assert_int_equal(url(text, &u), TETHER_OK);
    snprintf(text, sizeof(text), "https://%sa.example", label);
    assert_int_equal(url(text, &u), TETHER_ERR_PARSE);

    /* A 253-character name is fine, 254 is not. */
    snprintf(text, sizeof(text), "https://%s.%s.%s.%s", label, label, label, label);
    text[8 + 253] = '\0';
    assert_int_equal(url(text, &u), TETHER_OK);
    assert_int_equal(strlen(u.host), 253);
    snprintf(text, sizeof(text), "https://%s.%s.%s.%s", label, label, label, label);
    text[8 + 254] = '\0';
    assert_int_equal(url(text, &u), TETHER_ERR_TOO_LARGE);

    /* Prefix of 512 characters; 513 is over. */
    strcpy(text, "https://h/");
    memset(text + 10, 'p', 511);
    text[10 + 511] = '\0';
    assert_int_equal(url(text, &u), TETHER_OK);
    assert_int_equal(strlen(u.prefix), 512);
    strcat(text, "q");
    assert_int_equal(url(text, &u), TETHER_ERR_TOO_LARGE);

    /* The whole text. */
    memset(text, 'a', sizeof(text));
    memcpy(text, "https://h/", 10);
    text[TETHER_URL_MAX_LENGTH + 1] = '\0';
    assert_int_equal(url(text, &u), TETHER_ERR_TOO_LARGE);

    /* An embedded NUL is not the end of the URL. */
    assert_int_equal(tether_url_parse("https://h\0x", 11, &u, NULL), TETHER_ERR_PARSE);
    /* Only len bytes are read: no NUL needed. */
    assert_int_equal(tether_url_parse("https://h:1234567", 13, &u, NULL), TETHER_OK);
    assert_int_equal(u.port, 123);

    assert_int_equal(tether_url_parse(NULL, 0, &u, NULL), TETHER_ERR_PARSE);
    assert_int_equal(tether_url_parse("https://h", 9, NULL, NULL), TETHER_ERR_INVALID_ARGUMENT);
}

static void url_bad(void **state)
{
    static const char *const bad[] = {
        "", "https://", "http://fleet.example", "ftp://fleet.example", "https:/fleet",
        "https//fleet", "fleet.example", "//fleet.example", "https:fleet",
        /* user info, query, fragment */
        "https://user@fleet", "https://user:pw@fleet:443", "https://@fleet",
        "https://fleet#frag", "https://fleet/#", "https://fleet/?q=1", "https://fleet?",
        /* spaces, controls, non-ASCII, backslash */
        "https://fle et", "https://fleet/a b", "https://fleet\t", " https://fleet",
        "https://fleet\r\n", "https://fl\xc3\xa9t", "https://fleet\x7f", "https://fleet\\x",
        /* ports */
        "https://fleet:", "https://fleet:0", "https://fleet:65536", "https://fleet:99999",
        "https://fleet:123456", "https://fleet:08443", "https://fleet:12a", "https://fleet:-1",
        "https://fleet:+1", "https://fleet:1:2", "https://fleet: 1",
        /* DNS names */
        "https://-fleet", "https://fleet-", "https://fl_eet", "https://a..b", "https://fleet.",
        "https://.fleet", "https://a.-b", "https://a.b-", "https://*.example",
        /* IPv4 look-alikes */
        "https://1.2.3", "https://256.1.1.1", "https://01.2.3.4", "https://1.2.3.4.5",
        "https://123", "https://1.2.3.04", "https://1.2.3.1000", "https://example.123",
        "https://0x7f.0.0.1",
        /* IPv6 */
        "https://[::1", "https://::1", "https://[::1]x", "https://[::1]:", "https://[]",
        "https://[fe80::1%25eth0]", "https://[1.2.3.4]", "https://[::g]", "https://[v1.x]",
        "https://[1:2:3:4:5:6:7:8:9]", "https://a[::1]",
        /* paths */
        "https://fleet//a", "https://fleet/a//b", "https://fleet/a/../b", "https://fleet/./a",
        "https://fleet/a/..", "https://fleet/a/.", "https://fleet/%zz", "https://fleet/%4",
        "https://fleet/a%", "https://fleet/a\"b", "https://fleet/<x>", "https://fleet/a|b",
        "https://fleet//",
    };
    tether_url_t u;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tether_status_t rc = url(bad[i], &u);
        if (rc == TETHER_OK)
            fail_msg("accepted bad URL \"%s\"", bad[i]);
        assert_int_equal(rc, TETHER_ERR_PARSE);
        /* Zeroed on failure. */
        assert_string_equal(u.host, "");
        assert_int_equal(u.port, 0);
    }
}

static void url_problems(void **state)
{
    const char *problem = NULL;
    tether_url_t u;

    (void)state;
    assert_int_equal(tether_url_parse("http://x", 8, &u, &problem), TETHER_ERR_PARSE);
    assert_non_null(strstr(problem, "https://"));
    assert_int_equal(tether_url_parse("https://a@b", 11, &u, &problem), TETHER_ERR_PARSE);
    assert_non_null(strstr(problem, "user"));
    assert_int_equal(tether_url_parse("https://b:0", 11, &u, &problem), TETHER_ERR_PARSE);
    assert_non_null(strstr(problem, "port"));
}

/* ---- HTTP response ---------------------------------------------------- */

static const tether_http_limits_t default_limits = {
    .max_header_bytes = TETHER_HTTP_DEFAULT_MAX_HEADER_BYTES,
    .max_body_bytes = TETHER_HTTP_DEFAULT_MAX_BODY_BYTES,
};

/* Parses a whole response (the server closed after it). */
static tether_status_t parse_closed(const char *text, tether_https_response_t *resp)
{
    return tether_http_response_parse((const uint8_t *)text, strlen(text), true, &default_limits,
                                      resp, NULL);
}

static tether_status_t parse_with(const char *text, size_t len, bool closed,
                                  const tether_http_limits_t *limits,
                                  tether_https_response_t *resp, bool *complete)
{
    tether_status_t rc =
        tether_http_response_parse((const uint8_t *)text, len, closed, limits, resp, complete);

    if (rc != TETHER_OK) {
        assert_non_null(resp->problem);
        assert_null(resp->body);
        assert_int_equal(resp->status, 0);
    }
    return rc;
}

/* Every strict prefix of a framed response is a valid beginning, the whole
 * is complete, and the same holds after the close for the whole. */
static void check_incremental(const char *text, int status, const char *body)
{
    tether_https_response_t resp;
    size_t len = strlen(text);
    bool complete = true;

    tether_https_response_init(&resp);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(parse_with(text, i, false, &default_limits, &resp, &complete), TETHER_OK);
        if (complete)
            fail_msg("complete after %zu of %zu bytes", i, len);
        assert_null(resp.body);
    }
    assert_int_equal(parse_with(text, len, false, &default_limits, &resp, &complete), TETHER_OK);
    assert_true(complete);
    assert_int_equal(resp.status, status);
    assert_int_equal(resp.body_len, strlen(body));
    assert_memory_equal(resp.body, body, resp.body_len + 1);
    assert_int_equal(parse_closed(text, &resp), TETHER_OK);
    assert_int_equal(resp.status, status);
    assert_string_equal((const char *)resp.body, body);
    tether_https_response_free(&resp);
}

static void response_content_length(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 13\r\n"
                               "X-Spaces: \t a  b \t\r\n"
                               "X-Empty:\r\n"
                               "X-Obs: caf\xc3\xa9\r\n"
                               "\r\n"
                               "{\"ok\": true }";
    tether_https_response_t resp;
    bool complete = false;

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(parse_closed(text, &resp), TETHER_OK);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 13);
    assert_string_equal((const char *)resp.body, "{\"ok\": true }");
    assert_int_equal(resp.header_count, 5);
    assert_string_equal(tether_https_response_header(&resp, "content-type"), "application/json");
    assert_string_equal(tether_https_response_header(&resp, "CONTENT-LENGTH"), "13");
    assert_string_equal(tether_https_response_header(&resp, "X-Spaces"), "a  b");
    assert_string_equal(tether_https_response_header(&resp, "x-empty"), "");
    assert_string_equal(tether_https_response_header(&resp, "x-obs"), "caf\xc3\xa9");
    assert_null(tether_https_response_header(&resp, "X-Missing"));
    assert_null(tether_https_response_header(&resp, "Content"));
    assert_null(tether_https_response_header(NULL, "x"));

    /* The same bytes while the connection is still open. */
    assert_int_equal(parse_with(text, strlen(text), false, &default_limits, &resp, &complete),
                     TETHER_OK);
    assert_true(complete);
    assert_int_equal(resp.body_len, 13);
    tether_https_response_free(&resp);

    check_incremental(text, 200, "{\"ok\": true }");
    check_incremental("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201, "");
    check_incremental("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x");
    check_incremental("HTTP/1.1 404 Not Found\r\ncontent-length: 00003\r\n\r\nnah", 404, "nah");
}

static void response_content_length_errors(void **state)
{
    static const char *const protocol[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nContent-Length: 1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        /* data after the end */
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        /* cut short by the close */
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        /* both framings: a smuggling vector */
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    };
    tether_https_response_t resp;
    tether_http_limits_t small = {.max_header_bytes = 1024, .max_body_bytes = 10};
    bool complete = true;

    (void)state;
    tether_https_response_init(&resp);
    for (size_t i = 0; i < sizeof(protocol) / sizeof(protocol[0]); i++) {
        tether_status_t rc = parse_closed(protocol[i], &resp);
        if (rc != TETHER_ERR_PROTOCOL)
            fail_msg("case %zu: got %d, not TETHER_ERR_PROTOCOL", i, rc);
        assert_non_null(resp.problem);
    }
    /* Incomplete but open: wait for more. */
    assert_int_equal(parse_with(protocol[11], strlen(protocol[11]), false, &default_limits, &resp,
                                &complete),
                     TETHER_OK);
    assert_false(complete);

    /* Over the body limit: refused from the header alone. */
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 39, false, &small,
                                &resp, &complete),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 49,
                                true, &small, &resp, NULL),
                     TETHER_OK);
    assert_int_equal(parse_closed("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n"
                                  "\r\n",
                                  &resp),
                     TETHER_ERR_TOO_LARGE);
    tether_https_response_free(&resp);
}

static void response_chunked(void **state)
{
    static const char wiki[] = "HTTP/1.1 200 OK\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "\r\n"
                               "4\r\nWiki\r\n"
                               "5\r\npedia\r\n"
                               "E\r\n in\r\n\r\nchunks.\r\n"
                               "0\r\n"
                               "\r\n";
    tether_https_response_t resp;

    (void)state;
    tether_https_response_init(&resp);
    check_incremental(wiki, 200, "Wikipedia in\r\n\r\nchunks.");

    /* Extensions (checked, ignored), upper/lower case hex, leading zeros,
     * the coding's name in any case. */
    check_incremental("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
                      "3;name=value\r\nabc\r\n"
                      "000a ; a ; b = \"q\\\"x;y\" ;c=tok\r\n0123456789\r\n"
                      "B;x\r\nhello world\r\n"
                      "0;last\r\n\r\n",
                      200, "abc0123456789hello world");

    /* Trailer fields: checked, not merged into the header. */
    check_incremental("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "2\r\nhi\r\n0\r\nExpires: never\r\nX-Checksum: 1\r\n\r\n",
                      200, "hi");
    assert_int_equal(parse_closed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "2\r\nhi\r\n0\r\nX-Trailer: t\r\n\r\n",
                                  &resp),
                     TETHER_OK);
    assert_null(tether_https_response_header(&resp, "X-Trailer"));
    assert_string_equal(tether_https_response_header(&resp, "Transfer-Encoding"), "chunked");

    /* Empty body. */
    check_incremental("HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "0\r\n\r\n",
                      500, "");
    tether_https_response_free(&resp);
}

static void response_chunked_errors(void **state)
{
#define CHUNKED "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    static const char *const protocol[] = {
        CHUNKED "g\r\nx\r\n0\r\n\r\n",          /* not hex */
        CHUNKED "\r\nx\r\n0\r\n\r\n",           /* no size */
        CHUNKED "-1\r\nx\r\n0\r\n\r\n",         /* sign */
        CHUNKED "+1\r\nx\r\n0\r\n\r\n",
        CHUNKED "0x1\r\nx\r\n0\r\n\r\n",        /* C notation */
        CHUNKED " 1\r\nx\r\n0\r\n\r\n",         /* leading space */
        CHUNKED "1 \r\nx\r\n0\r\n\r\n",         /* trailing space without extension */
        CHUNKED "1;\r\nx\r\n0\r\n\r\n",         /* extension without a name */
        CHUNKED "1;=v\r\nx\r\n0\r\n\r\n",
        CHUNKED "1;a=\r\nx\r\n0\r\n\r\n",       /* '=' without a value */
        CHUNKED "1;a=\"open\r\nx\r\n0\r\n\r\n", /* unterminated quoted string */
        CHUNKED "1;a=b c\r\nx\r\n0\r\n\r\n",
        CHUNKED "1;a=\"\x01\"\r\nx\r\n0\r\n\r\n",
        CHUNKED "1\r\nxy\r\n0\r\n\r\n",         /* longer than its size */
        CHUNKED "2\r\nx\r\n0\r\n\r\n",          /* shorter than its size */
        CHUNKED "1\r\nx0\r\n\r\n",              /* no CRLF after the data */
        CHUNKED "1\nx\r\n0\r\n\r\n",            /* bare LF */
        CHUNKED "1\r\nx\r\n0\r\n\r\nextra",     /* data after the end */
        CHUNKED "1\r\nx\r\n0\r\nbad trailer\r\n\r\n",
        CHUNKED "1\r\nx\r\n0\r\n folded: t\r\n\r\n",
        /* truncated by the close */
        CHUNKED "",
        CHUNKED "5\r\nab",
        CHUNKED "5",
        CHUNKED "1\r\nx\r\n",
        CHUNKED "1\r\nx\r\n0\r\n",
        CHUNKED "1\r\nx\r\n0\r\nX-T: 1\r\n",
        /* other codings, several fields, HTTP/1.0 */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nx",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    tether_https_response_t resp;
    tether_http_limits_t small = {.max_header_bytes = 1024, .max_body_bytes = 10};
    bool complete = true;
    char *many;
    size_t len = 0;

    (void)state;
    tether_https_response_init(&resp);
    for (size_t i = 0; i < sizeof(protocol) / sizeof(protocol[0]); i++) {
        tether_status_t rc = parse_closed(protocol[i], &resp);
        if (rc != TETHER_ERR_PROTOCOL)
            fail_msg("case %zu: got %d, not TETHER_ERR_PROTOCOL", i, rc);
        assert_null(resp.body);
    }
    /* Truncated ones are fine while the connection is open. */
    assert_int_equal(parse_with(CHUNKED "5\r\nab", strlen(CHUNKED "5\r\nab"), false,
                                &default_limits, &resp, &complete),
                     TETHER_OK);
    assert_false(complete);

    /* Size limits: one chunk, the sum of chunks, absurd sizes. */
    assert_int_equal(parse_with(CHUNKED "b\r\n", strlen(CHUNKED "b\r\n"), false, &small, &resp,
                                &complete),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse_with(CHUNKED "a\r\n0123456789\r\n0\r\n\r\n",
                                strlen(CHUNKED "a\r\n0123456789\r\n0\r\n\r\n"), true, &small,
                                &resp, NULL),
                     TETHER_OK);
    assert_int_equal(parse_with(CHUNKED "6\r\n012345\r\n5\r\n",
                                strlen(CHUNKED "6\r\n012345\r\n5\r\n"), false, &small, &resp,
                                &complete),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse_closed(CHUNKED "FFFFFFFFFFFFFFFFFFFFFFFF\r\n", &resp),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse_closed(CHUNKED "00000000000000000000000000000001\r\nx\r\n0\r\n\r\n",
                                  &resp),
                     TETHER_OK);

    /* Framing overhead: tens of thousands of one-byte chunks. */
    many = malloc(200000);
    assert_non_null(many);
    len = (size_t)snprintf(many, 200000, CHUNKED);
    for (int i = 0; i < 20000; i++) {
        memcpy(many + len, "1\r\nx\r\n", 6);
        len += 6;
    }
    memcpy(many + len, "0\r\n\r\n", 5);
    len += 5;
    assert_int_equal(parse_with(many, len, true, &default_limits, &resp, NULL),
                     TETHER_ERR_TOO_LARGE);
    /* A long extension line alone is framing too. */
    len = (size_t)snprintf(many, 200000, CHUNKED "1;x=");
    memset(many + len, 'v', 70000);
    len += 70000;
    assert_int_equal(parse_with(many, len, false, &default_limits, &resp, &complete),
                     TETHER_ERR_TOO_LARGE);
    free(many);
    tether_https_response_free(&resp);
#undef CHUNKED
}

static void response_read_to_close(void **state)
{
    /* What openssl s_server -WWW sends. */
    static const char text[] = "HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nhello\r\nworld";
    tether_https_response_t resp;
    tether_http_limits_t small = {.max_header_bytes = 1024, .max_body_bytes = 5};
    bool complete = true;

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(parse_closed(text, &resp), TETHER_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal((const char *)resp.body, "hello\r\nworld");
    /* Never complete while the connection is open. */
    assert_int_equal(parse_with(text, strlen(text), false, &default_limits, &resp, &complete),
                     TETHER_OK);
    assert_false(complete);
    /* Header only, then the close: an empty body. */
    assert_int_equal(parse_closed("HTTP/1.1 200 OK\r\n\r\n", &resp), TETHER_OK);
    assert_int_equal(resp.body_len, 0);
    assert_string_equal((const char *)resp.body, "");
    /* Bounded while reading, and at the end. */
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\n\r\n123456", 25, false, &small, &resp,
                                &complete),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\n\r\n12345", 24, false, &small, &resp,
                                &complete),
                     TETHER_OK);
    assert_false(complete);
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\n\r\n12345", 24, true, &small, &resp, NULL),
                     TETHER_OK);
    /* Binary bodies keep their NULs; the extra NUL is after body_len. */
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\n\r\na\0b", 22, true, &default_limits, &resp,
                                NULL),
                     TETHER_OK);
    assert_int_equal(resp.body_len, 3);
    assert_memory_equal(resp.body, "a\0b\0", 4);
    tether_https_response_free(&resp);
}

static void response_no_body_statuses(void **state)
{
    tether_https_response_t resp;

    (void)state;
    tether_https_response_init(&resp);
    check_incremental("HTTP/1.1 204 No Content\r\n\r\n", 204, "");
    /* 304 may announce the length of what it does not send. */
    check_incremental("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 304, "");
    assert_int_equal(parse_closed("HTTP/1.1 204 No Content\r\n\r\nbody", &resp),
                     TETHER_ERR_PROTOCOL);

    /* Interim responses are skipped. */
    check_incremental("HTTP/1.1 100 Continue\r\n\r\n"
                      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
                      200, "x");
    assert_int_equal(parse_closed("HTTP/1.1 100 Continue\r\n\r\n"
                                  "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 0\r\n\r\n",
                                  &resp),
                     TETHER_OK);
    assert_int_equal(resp.header_count, 2);
    assert_int_equal(parse_closed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                                  &resp),
                     TETHER_ERR_PROTOCOL);
    assert_int_equal(parse_closed("HTTP/1.1 100 Continue\r\n\r\n", &resp), TETHER_ERR_PROTOCOL);
    {
        char text[1024] = "";
        for (int i = 0; i < 8; i++)
            strcat(text, "HTTP/1.1 100 Continue\r\n\r\n");
        strcat(text, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_int_equal(parse_closed(text, &resp), TETHER_ERR_PROTOCOL);
    }
    tether_https_response_free(&resp);
}

static void response_status_lines(void **state)
{
    static const char *const good[] = {
        "HTTP/1.1 200 OK\r\n\r\n",     "HTTP/1.1 200\r\n\r\n",
        "HTTP/1.1 200 \r\n\r\n",       "HTTP/1.0 599 Whatever it is\r\n\r\n",
        "HTTP/1.1 401 \xe4rger\r\n\r\n", "HTTP/1.1 418 I'm a\tteapot\r\n\r\n",
    };
    static const char *const bad[] = {
        "HTTP/1.1 600 Too Far\r\n\r\n", "HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",     "HTTP/1.1 2x0 OK\r\n\r\n",   "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200\tOK\r\n\r\n",     "HTTP/1.2 200 OK\r\n\r\n",   "HTTP/2 200 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",      "HTTP/0.9 200 OK\r\n\r\n",   "http/1.1 200 OK\r\n\r\n",
        "HTTPS/1.1 200 OK\r\n\r\n",     "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 O\x7fK\r\n\r\n",
        " HTTP/1.1 200 OK\r\n\r\n",     "\r\nHTTP/1.1 200 OK\r\n\r\n", "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 200 OK\n\n",          "HTTP/1.1 200 OK\r\r\n\r\n", "HTTP/1.1 200 OK\r\n\n",
        "<html>", "\x16\x03\x01\x00\x05hello",
    };
    tether_https_response_t resp;

    (void)state;
    tether_https_response_init(&resp);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (parse_closed(good[i], &resp) != TETHER_OK)
            fail_msg("refused good status line %zu: %s", i, resp.problem);
    }
    assert_int_equal(parse_closed("HTTP/1.1 503 Busy\r\n\r\n", &resp), TETHER_OK);
    assert_int_equal(resp.status, 503);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tether_status_t rc = parse_closed(bad[i], &resp);
        if (rc != TETHER_ERR_PROTOCOL)
            fail_msg("case %zu: got %d, not TETHER_ERR_PROTOCOL", i, rc);
    }
    /* No answer at all. */
    assert_int_equal(tether_http_response_parse((const uint8_t *)"", 0, true, &default_limits,
                                                &resp, NULL),
                     TETHER_ERR_PROTOCOL);
    assert_non_null(strstr(resp.problem, "without answering"));
    tether_https_response_free(&resp);
}

static void response_header_lines(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", /* space before the colon */
        "HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\n\r\n",  /* obs-fold */
        "HTTP/1.1 200 OK\r\n\tX-A: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\x01\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\x7f\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n", /* bare CR */
        "HTTP/1.1 200 OK\r\nX-A: b\nX-B: c\r\n\r\n", /* bare LF */
        "HTTP/1.1 200 OK\r\nX-A: b\r\n\n",
        "HTTP/1.1 200 OK\r\nX-A: b", /* header cut short */
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK",
    };
    tether_https_response_t resp;

    (void)state;
    tether_https_response_init(&resp);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tether_status_t rc = parse_closed(bad[i], &resp);
        if (rc != TETHER_ERR_PROTOCOL)
            fail_msg("case %zu: got %d, not TETHER_ERR_PROTOCOL", i, rc);
    }
    /* A NUL in a value. */
    assert_int_equal(parse_with("HTTP/1.1 200 OK\r\nX-A: b\0c\r\n\r\n", 29, true, &default_limits,
                                &resp, NULL),
                     TETHER_ERR_PROTOCOL);
    tether_https_response_free(&resp);
}

static void response_header_limits(void **state)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nX-A: 123456\r\n\r\n"; /* 32 bytes */
    tether_http_limits_t limits = {.max_header_bytes = 32, .max_body_bytes = 100};
    tether_https_response_t resp;
    bool complete = true;
    char *text;
    size_t len;

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(strlen(head), 32);
    assert_int_equal(parse_with(head, 32, true, &limits, &resp, NULL), TETHER_OK);
    limits.max_header_bytes = 31;
    assert_int_equal(parse_with(head, 32, true, &limits, &resp, NULL), TETHER_ERR_TOO_LARGE);
    /* Refused as soon as the limit is passed, before the end arrives. */
    limits.max_header_bytes = 20;
    assert_int_equal(parse_with(head, 25, false, &limits, &resp, &complete), TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse_with(head, 19, false, &limits, &resp, &complete), TETHER_OK);
    assert_false(complete);
    /* Interim responses count against the same limit. */
    limits.max_header_bytes = 40;
    assert_int_equal(parse_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 44, true,
                                &limits, &resp, NULL),
                     TETHER_ERR_TOO_LARGE);

    /* The default 16 KiB, and the count of fields. */
    text = malloc(64 * 1024);
    assert_non_null(text);
    len = (size_t)snprintf(text, 64 * 1024, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(text + len, 'b', 16 * 1024);
    len += 16 * 1024;
    memcpy(text + len, "\r\n\r\n", 4);
    len += 4;
    assert_int_equal(parse_with(text, len, true, &default_limits, &resp, NULL),
                     TETHER_ERR_TOO_LARGE);
    len = (size_t)snprintf(text, 64 * 1024, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 129; i++)
        len += (size_t)snprintf(text + len, 64 * 1024 - len, "X-%d: v\r\n", i);
    len += (size_t)snprintf(text + len, 64 * 1024 - len, "\r\n");
    assert_int_equal(parse_with(text, len, true, &default_limits, &resp, NULL),
                     TETHER_ERR_TOO_LARGE);
    len = (size_t)snprintf(text, 64 * 1024, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 128; i++)
        len += (size_t)snprintf(text + len, 64 * 1024 - len, "X-%d: v%d\r\n", i, i);
    len += (size_t)snprintf(text + len, 64 * 1024 - len, "\r\n");
    assert_int_equal(parse_with(text, len, true, &default_limits, &resp, NULL), TETHER_OK);
    assert_int_equal(resp.header_count, 128);
    assert_string_equal(tether_https_response_header(&resp, "x-127"), "v127");
    free(text);
    tether_https_response_free(&resp);
}

static void response_arguments(void **state)
{
    tether_https_response_t resp;
    tether_http_limits_t limits = default_limits;
    bool complete = true;
    const uint8_t *ok = (const uint8_t *)"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(tether_http_response_parse(ok, 38, true, &limits, NULL, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_response_parse(ok, 38, true, NULL, &resp, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_response_parse(NULL, 5, true, &limits, &resp, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_response_parse(ok, 38, false, &limits, &resp, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    limits.max_header_bytes = 0;
    assert_int_equal(tether_http_response_parse(ok, 38, true, &limits, &resp, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    limits.max_header_bytes = TETHER_HTTP_LIMIT_MAX_HEADER_BYTES + 1;
    assert_int_equal(tether_http_response_parse(ok, 38, true, &limits, &resp, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    limits = default_limits;
    limits.max_body_bytes = TETHER_HTTP_LIMIT_MAX_BODY_BYTES + 1;
    assert_int_equal(tether_http_response_parse(ok, 38, true, &limits, &resp, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    /* Empty and open: wait. */
    assert_int_equal(tether_http_response_parse(NULL, 0, false, &default_limits, &resp, &complete),
                     TETHER_OK);
    assert_false(complete);
    /* Parsing again replaces (and frees) the previous response. */
    assert_int_equal(tether_http_response_parse(ok, 38, true, &default_limits, &resp, NULL),
                     TETHER_OK);
    assert_int_equal(tether_http_response_parse(ok, 38, true, &default_limits, &resp, NULL),
                     TETHER_OK);
    assert_int_equal(resp.status, 200);
    tether_https_response_free(&resp);
    assert_null(resp.body);
    assert_int_equal(resp.status, 0);
    tether_https_response_free(&resp); /* twice is fine */
    tether_https_response_free(NULL);
}

/* RFC 9112 9.3: only an HTTP/1.1 response framed by itself, without
 * "Connection: close", leaves the connection open for another request. */
static void response_persistence(void **state)
{
    static const struct {
        const char *text;
        bool persistent;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true},
        {"HTTP/1.1 204 No Content\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false},
        {"HTTP/1.1 200 OK\r\nconnection: Keep-Alive , CLOSE\r\nContent-Length: 0\r\n\r\n",
         false},
        {"HTTP/1.1 200 OK\r\nConnection: Upgrade\r\nConnection: close\r\n"
         "Content-Length: 0\r\n\r\n",
         false},
        {"HTTP/1.1 200 OK\r\n\r\nread to the close", false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
        /* An interim response's fields are not the final response's. */
        {"HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         true},
    };
    tether_https_response_t resp;

    (void)state;
    tether_https_response_init(&resp);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_closed(cases[i].text, &resp), TETHER_OK);
        if (resp.persistent != cases[i].persistent)
            fail_msg("case %zu: persistent %d, expected %d", i, resp.persistent,
                     cases[i].persistent);
    }
    tether_https_response_free(&resp);
}

/* ---- Client without a server ------------------------------------------ */

/* Self-signed, P-256, valid 2026-2126; only parsed here, never used. */
static const char test_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkzCCATmgAwIBAgIUODt1T35mTOw8LlR2/v52IIrYRZwwCgYIKoZIzj0EAwIw\n"
    "HjEcMBoGA1UEAwwTdGV0aGVyLXVuaXQtdGVzdC1jYTAgFw0yNjExMjQwNjI4MDZa\n"
    "GA8yMTI2MTAzMTA2MjgwNlowHjEcMBoGA1UEAwwTdGV0aGVyLXVuaXQtdGVzdC1j\n"
    "YTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGjj9rlpvx+JZwwEzP31K4NTDyyB\n"
    "x1BJLvR/xv1bjbpREtuKQOKub+oL1nChi4xdxW7da4GGIHXIYolr+fXhqryjUzBR\n"
    "MB0GA1UdDgQWBBROsh4DavjexGcYYef3MBIrZh2a1DAfBgNVHSMEGDAWgBROsh4D\n"
    "avjexGcYYef3MBIrZh2a1DAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA\n"
    "MEUCIQC7lvaNQuVrIu+UEI71wluY5h/+uiHs9VRijU1A7KVt4wIgGkNoYFqSRHgO\n"
    "9HMfllck9K9Z5srn7uIINRRZfVw2Akk=\n"
    "-----END CERTIFICATE-----\n";

typedef struct files {
    char ca[256];
    char garbage[256];
    char missing[256];
} files_t;

static void write_temp(char *path, size_t size, const char *name, const char *content)
{
    const char *dir = getenv("TMPDIR");
    FILE *f;

    snprintf(path, size, "%s/tether-net-test-%ld-%s", dir != NULL ? dir : "/tmp", (long)getpid(),
             name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int files_setup(void **state)
{
    files_t *files = calloc(1, sizeof(*files));

    if (files == NULL)
        return -1;
    write_temp(files->ca, sizeof(files->ca), "ca.pem", test_ca_pem);
    write_temp(files->garbage, sizeof(files->garbage), "garbage.pem",
               "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    write_temp(files->missing, sizeof(files->missing), "missing.pem", "");
    unlink(files->missing);
    *state = files;
    return 0;
}

static int files_teardown(void **state)
{
    files_t *files = *state;

    unlink(files->ca);
    unlink(files->garbage);
    free(files);
    return 0;
}

static void client_life_cycle(void **state)
{
    files_t *files = *state;
    tether_https_client_t client;

    tether_https_client_init(&client);
    assert_int_equal(client.connect_timeout_ms, TETHER_HTTPS_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(client.io_timeout_ms, TETHER_HTTPS_DEFAULT_IO_TIMEOUT_MS);
    assert_int_equal(client.limits.max_header_bytes, 16 * 1024);
    assert_int_equal(client.limits.max_body_bytes, 1024 * 1024);
    assert_false(client.ready);
    tether_https_client_free(&client); /* only initialised */
    tether_https_client_free(NULL);

    tether_https_client_init(&client);
    assert_int_equal(tether_https_client_setup(&client, "https://127.0.0.1:8443/v0/", files->ca),
                     TETHER_OK);
    assert_true(client.ready);
    assert_string_equal(client.url.authority, "127.0.0.1:8443");
    assert_string_equal(client.url.prefix, "/v0");
    assert_string_equal(client.error, "");
    assert_int_equal(tether_https_client_setup(&client, "https://127.0.0.1:8443", files->ca),
                     TETHER_ERR_STATE);
    tether_https_client_free(&client);
    assert_false(client.ready);
}

static void client_setup_errors(void **state)
{
    files_t *files = *state;
    tether_https_client_t client;

    tether_https_client_init(&client);
    assert_int_equal(tether_https_client_setup(&client, "http://fleet:8443", files->ca),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(client.error, "https://"));
    assert_false(client.ready);

    assert_int_equal(tether_https_client_setup(&client, "https://fleet:8443", files->missing),
                     TETHER_ERR_IO);
    assert_non_null(strstr(client.error, files->missing));
    assert_non_null(strstr(client.error, "No such file"));

    assert_int_equal(tether_https_client_setup(&client, "https://fleet:8443", files->garbage),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(client.error, files->garbage));

    assert_int_equal(tether_https_client_setup(&client, NULL, files->ca),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_client_setup(NULL, "https://fleet", files->ca),
                     TETHER_ERR_INVALID_ARGUMENT);
    /* A failed setup may be tried again. */
    assert_int_equal(tether_https_client_setup(&client, "https://fleet:8443", files->ca),
                     TETHER_OK);
    tether_https_client_free(&client);
}

static void client_request_checks(void **state)
{
    files_t *files = *state;
    tether_https_client_t client;
    tether_https_response_t resp;
    const char *auth[] = {"Authorization: Bearer sekrit-token", NULL};
    const char *injected[] = {"Authorization: Bearer sekrit\r\nX-Evil: 1", NULL};
    const char *host[] = {"host: evil.example", NULL};
    const char *length[] = {"Content-length: 5", NULL};
    const char *encoding[] = {"Transfer-Encoding: chunked", NULL};
    const char *no_colon[] = {"Authorization Bearer sekrit", NULL};
    const char *space_name[] = {"X Y: 1", NULL};
    const char *too_many[TETHER_HTTPS_MAX_EXTRA_HEADERS + 2];

    tether_https_client_init(&client);
    tether_https_response_init(&resp);
    /* Before setup. */
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_STATE);
    assert_int_equal(tether_https_client_setup(&client, "https://127.0.0.1:1", files->ca),
                     TETHER_OK);

    /* Each of these is refused before any connection is tried. */
    assert_int_equal(tether_https_request(&client, "HEAD", "/", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "get", "/", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, NULL, "/", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "v1/token", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/a b", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/a\r\nX: y", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/a#f", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/a%2", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "POST", "/", "text/plain\r\nX: y",
                                          (const uint8_t *)"x", 1, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "POST", "/", "", (const uint8_t *)"x", 1, NULL,
                                          &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "POST", "/", NULL, NULL, 5, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);

    /* Header injection and framing fields; the value never reaches the
     * message, since it may be a credential. */
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, injected, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_null(strstr(client.error, "sekrit"));
    assert_non_null(strstr(client.error, "Authorization"));
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, host, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, length, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, encoding, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, no_colon, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_null(strstr(client.error, "sekrit"));
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, space_name, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < TETHER_HTTPS_MAX_EXTRA_HEADERS + 1; i++)
        too_many[i] = "X-A: b";
    too_many[TETHER_HTTPS_MAX_EXTRA_HEADERS + 1] = NULL;
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, too_many, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);

    /* Settings out of range. */
    client.io_timeout_ms = 0;
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, auth, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    client.io_timeout_ms = 1000;
    client.limits.max_body_bytes = TETHER_HTTP_LIMIT_MAX_BODY_BYTES + 1;
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, auth, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_null(resp.body);

    assert_int_equal(tether_https_request(NULL, "GET", "/", NULL, NULL, 0, NULL, &resp),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_https_request(&client, "GET", "/", NULL, NULL, 0, NULL, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_https_client_free(&client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_good),
        cmocka_unit_test(url_bounds),
        cmocka_unit_test(url_bad),
        cmocka_unit_test(url_problems),
        cmocka_unit_test(response_content_length),
        cmocka_unit_test(response_content_length_errors),
        cmocka_unit_test(response_chunked),
        cmocka_unit_test(response_chunked_errors),
        cmocka_unit_test(response_read_to_close),
        cmocka_unit_test(response_no_body_statuses),
        cmocka_unit_test(response_status_lines),
        cmocka_unit_test(response_header_lines),
        cmocka_unit_test(response_header_limits),
        cmocka_unit_test(response_arguments),
        cmocka_unit_test(response_persistence),
        cmocka_unit_test_setup_teardown(client_life_cycle, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(client_setup_errors, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(client_request_checks, files_setup, files_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
