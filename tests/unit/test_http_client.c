/*
 * net: the request path shared by every transport (tether/http_client.h),
 * over an in-memory transport and over the socket transport on a
 * socketpair: what goes on the wire, how the end of the stream frames the
 * response, and how transport failures are reported.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tether/http_client.h"
#include "tether/transport.h"

/* An in-memory peer: records what is sent, answers with a fixed response
 * in small pieces, then ends the stream with `end`. */
typedef struct memory_peer {
    char sent[1024];
    size_t sent_len;
    const char *answer;
    size_t answered;
    int end;        /* 0, TETHER_TRANSPORT_CUT or a negative error code */
    int send_error; /* when not 0, every send fails with it */
} memory_peer_t;

static int memory_send(void *context, const uint8_t *buf, size_t len)
{
    memory_peer_t *p = context;

    if (p->send_error != 0)
        return p->send_error;
    if (len > sizeof(p->sent) - p->sent_len)
        len = sizeof(p->sent) - p->sent_len;
    memcpy(p->sent + p->sent_len, buf, len);
    p->sent_len += len;
    return (int)len;
}

static int memory_recv(void *context, uint8_t *buf, size_t len)
{
    memory_peer_t *p = context;
    size_t left = strlen(p->answer) - p->answered;

    if (left == 0)
        return p->end;
    if (len > 7)
        len = 7; /* small pieces: the parser must cope with any split */
    if (len > left)
        len = left;
    memcpy(buf, p->answer + p->answered, len);
    p->answered += len;
    return (int)len;
}

static const tether_http_limits_t limits = {.max_header_bytes = 4096, .max_body_bytes = 4096};

static tether_status_t exchange_with(memory_peer_t *peer, const tether_http_client_request_t *req,
                                     tether_https_response_t *resp,
                                     tether_http_client_failure_t *failure)
{
    tether_transport_t t = {.send = memory_send, .recv = memory_recv, .context = peer};

    return tether_http_client_exchange(&t, req, &limits, resp, failure);
}

static const tether_http_client_request_t get_token = {
    .method = "GET", .authority = "localhost", .prefix = "", .path = "/v1/token"};

static void request_on_the_wire(void **state)
{
    static const char *const headers[] = {"Authorization: Bearer x", NULL};
    memory_peer_t peer = {.answer = "HTTP/1.1 204 No Content\r\n\r\n", .end = 0};
    tether_http_client_request_t req = {.method = "POST",
                                        .authority = "fleet:8443",
                                        .prefix = "/base",
                                        .path = "/v1/token?a=1",
                                        .content_type = "application/json",
                                        .body = (const uint8_t *)"{}",
                                        .body_len = 2,
                                        .extra_headers = headers};
    tether_https_response_t resp;
    tether_http_client_failure_t failure;

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(exchange_with(&peer, &req, &resp, &failure), TETHER_OK);
    assert_int_equal(resp.status, 204);
    peer.sent[peer.sent_len] = '\0';
    assert_string_equal(peer.sent, "POST /base/v1/token?a=1 HTTP/1.1\r\nHost: fleet:8443\r\n"
                                   "User-Agent: tether\r\nConnection: close\r\n"
                                   "Content-Type: application/json\r\nContent-Length: 2\r\n"
                                   "Authorization: Bearer x\r\n\r\n{}");

    /* Kept alive: HTTP/1.1's default, no Connection field. */
    req.keep_alive = true;
    peer.sent_len = 0;
    peer.answered = 0;
    assert_int_equal(exchange_with(&peer, &req, &resp, &failure), TETHER_OK);
    peer.sent[peer.sent_len] = '\0';
    assert_string_equal(peer.sent, "POST /base/v1/token?a=1 HTTP/1.1\r\nHost: fleet:8443\r\n"
                                   "User-Agent: tether\r\n"
                                   "Content-Type: application/json\r\nContent-Length: 2\r\n"
                                   "Authorization: Bearer x\r\n\r\n{}");
    tether_https_response_free(&resp);
}

/* A proven end (0) frames a body read to the close; an unproven one
 * (TETHER_TRANSPORT_CUT) only ends a response already complete. */
static void end_of_stream(void **state)
{
    memory_peer_t peer = {.answer = "HTTP/1.1 200 OK\r\n\r\nhello", .end = 0};
    tether_https_response_t resp;
    tether_http_client_failure_t failure;

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_OK);
    assert_string_equal((const char *)resp.body, "hello");

    peer = (memory_peer_t){.answer = "HTTP/1.1 200 OK\r\n\r\nhello", .end = TETHER_TRANSPORT_CUT};
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_ERR_PROTOCOL);
    assert_non_null(strstr(failure.text, "before the end of the response"));
    assert_false(failure.nothing_received);
    assert_null(resp.body);

    peer = (memory_peer_t){.answer = "", .end = TETHER_TRANSPORT_CUT};
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_ERR_PROTOCOL);
    assert_non_null(strstr(failure.text, "without answering"));
    /* Nothing came: on a kept connection, a close racing the request. */
    assert_true(failure.nothing_received);

    peer = (memory_peer_t){.answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                           .end = TETHER_TRANSPORT_CUT};
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_OK);
    assert_string_equal((const char *)resp.body, "ok");

    /* A proven end before the length is reached is a cut response too. */
    peer = (memory_peer_t){.answer = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok", .end = 0};
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_ERR_PROTOCOL);
    tether_https_response_free(&resp);
}

static void transport_failures(void **state)
{
    memory_peer_t peer = {.answer = "HTTP/1.1 200 OK\r\n", .end = -42};
    tether_https_response_t resp;
    tether_http_client_failure_t failure;

    (void)state;
    tether_https_response_init(&resp);
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_ERR_IO);
    assert_int_equal(failure.transport_error, -42);
    assert_false(failure.while_sending);
    assert_false(failure.nothing_received);

    peer = (memory_peer_t){.answer = "", .end = -42};
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_ERR_IO);
    assert_true(failure.nothing_received);

    peer = (memory_peer_t){.answer = "HTTP/1.1 200 OK\r\n\r\n", .send_error = -7};
    assert_int_equal(exchange_with(&peer, &get_token, &resp, &failure), TETHER_ERR_IO);
    assert_int_equal(failure.transport_error, -7);
    assert_true(failure.nothing_received);
    assert_true(failure.while_sending);
    assert_null(resp.body);
}

/* Refused before anything is sent, with the same checks as the TLS client. */
static void refused_requests(void **state)
{
    static const char *const framing[] = {"Content-Length: 5", NULL};
    memory_peer_t peer = {.answer = "HTTP/1.1 200 OK\r\n\r\n"};
    tether_http_client_request_t req = get_token;
    tether_http_limits_t bad_limits = {.max_header_bytes = 0, .max_body_bytes = 10};
    tether_transport_t t = {.send = memory_send, .recv = memory_recv, .context = &peer};
    tether_https_response_t resp;
    tether_http_client_failure_t failure;

    (void)state;
    tether_https_response_init(&resp);
    req.method = "HEAD";
    assert_int_equal(exchange_with(&peer, &req, &resp, &failure), TETHER_ERR_INVALID_ARGUMENT);
    req = get_token;
    req.path = "/a b";
    assert_int_equal(exchange_with(&peer, &req, &resp, &failure), TETHER_ERR_INVALID_ARGUMENT);
    req = get_token;
    req.extra_headers = framing;
    assert_int_equal(exchange_with(&peer, &req, &resp, &failure), TETHER_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(failure.text, "Content-Length"));
    req = get_token;
    req.authority = "local\r\nhost";
    assert_int_equal(exchange_with(&peer, &req, &resp, &failure), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_client_exchange(&t, &get_token, &bad_limits, &resp, &failure),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(peer.sent_len, 0);
}

/* The socket transport on a socketpair: the agent's local client's path. */
static void socket_transport(void **state)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}\r\n";
    tether_socket_t sock;
    tether_transport_t t;
    tether_https_response_t resp;
    tether_http_client_failure_t failure;
    char request[512];
    ssize_t n;
    int pair[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    assert_int_equal(write(pair[1], answer, sizeof(answer) - 1), (ssize_t)(sizeof(answer) - 1));
    tether_socket_init(&sock, 1000, 5000);
    sock.fd = pair[0];
    assert_int_equal(fcntl(sock.fd, F_SETFL, O_NONBLOCK), 0);
    t = tether_socket_transport(&sock);
    tether_https_response_init(&resp);
    assert_int_equal(tether_http_client_exchange(&t, &get_token, &limits, &resp, &failure),
                     TETHER_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal((const char *)resp.body, "{}\r\n");
    n = read(pair[1], request, sizeof(request) - 1);
    assert_true(n > 0);
    request[n] = '\0';
    assert_string_equal(request, "GET /v1/token HTTP/1.1\r\nHost: localhost\r\n"
                                 "User-Agent: tether\r\nConnection: close\r\n\r\n");

    /* A peer that says nothing: the I/O timeout, not a hang. */
    sock.io_timeout_ms = 50;
    assert_int_equal(tether_http_client_exchange(&t, &get_token, &limits, &resp, &failure),
                     TETHER_ERR_IO);
    assert_int_equal(failure.transport_error, TETHER_SOCKET_TIMEOUT);
    assert_false(sock.deadline_passed);

    /* A peer that closed: its end is a proven end on a local socket. */
    close(pair[1]);
    assert_int_equal(tether_http_client_exchange(&t, &get_token, &limits, &resp, &failure),
                     TETHER_ERR_IO);
    assert_int_equal(failure.transport_error, TETHER_SOCKET_RESET);
    assert_true(failure.while_sending);
    tether_socket_close(&sock);
    assert_int_equal(sock.fd, -1);
    tether_socket_close(&sock); /* twice is harmless */
    tether_https_response_free(&resp);
}

static void unix_connect_errors(void **state)
{
    char long_path[200];
    tether_socket_t sock;

    (void)state;
    tether_socket_init(&sock, 1000, 1000);
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(tether_socket_connect_unix(&sock, long_path), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_socket_connect_unix(&sock, "/nonexistent/tether.sock"),
                     TETHER_ERR_NETWORK);
    assert_int_not_equal(sock.error_number, 0);
    assert_int_equal(sock.fd, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_on_the_wire),
        cmocka_unit_test(end_of_stream),
        cmocka_unit_test(transport_failures),
        cmocka_unit_test(refused_requests),
        cmocka_unit_test(socket_transport),
        cmocka_unit_test(unix_connect_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
