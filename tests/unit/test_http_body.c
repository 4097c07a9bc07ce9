/*
 * Request bodies in the servers' layer (net/src/server/http_server.c): the
 * body buffer starts small and doubles up to max_body_bytes, so each size
 * around a step (the first buffer, one doubling, several, the limit itself)
 * must reach the handler byte for byte, and one byte over the limit must be
 * refused whether declared (Content-Length) or only sent (chunked). A real
 * server on loopback, a raw socket as the client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "loopback_port.h"
#include "tether/http_server.h"

#define LIMIT 100000
#define PIECE 7000 /* the client writes the body in pieces: several appends */

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 131 + 7) % 251);
}

/* Answers {"len": body_len, "intact": whether every byte is the pattern's}. */
static void echo(void *arg, const tether_http_request_t *request, tether_http_response_t *response)
{
    cJSON *body = cJSON_CreateObject();
    bool intact = true;

    (void)arg;
    for (size_t i = 0; i < request->body_len; i++)
        intact = intact && request->body[i] == pattern(i);
    cJSON_AddNumberToObject(body, "len", (double)request->body_len);
    cJSON_AddBoolToObject(body, "intact", intact);
    tether_http_respond_json(response, 200, body);
}

static void send_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close early (413): the answer tells */
        p += n;
        len -= (size_t)n;
    }
}

/* POSTs len pattern bytes (chunked: without Content-Length) and returns
 * the status; *answer gets the body's start. */
static unsigned post(uint16_t port, size_t len, bool chunked, char *answer, size_t answer_size)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char head[256], *reply = calloc(1, 65536), *start;
    uint8_t *body = malloc(len + 1);
    size_t got = 0;
    unsigned status = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_non_null(reply);
    assert_non_null(body);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&in4, sizeof(in4)), 0);
    for (size_t i = 0; i < len; i++)
        body[i] = pattern(i);
    if (chunked)
        snprintf(head, sizeof(head),
                 "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n");
    else
        snprintf(head, sizeof(head),
                 "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 len);
    send_all(fd, head, strlen(head));
    for (size_t o = 0; o < len; o += PIECE) {
        size_t piece = len - o < PIECE ? len - o : PIECE;
        if (chunked) {
            snprintf(head, sizeof(head), "%zx\r\n", piece);
            send_all(fd, head, strlen(head));
        }
        send_all(fd, body + o, piece);
        if (chunked)
            send_all(fd, "\r\n", 2);
    }
    if (chunked)
        send_all(fd, "0\r\n\r\n", 5);
    while (got < 65535 && (n = recv(fd, reply + got, 65535 - got, 0)) > 0)
        got += (size_t)n;
    close(fd);
    assert_int_equal(sscanf(reply, "HTTP/1.1 %u", &status), 1);
    start = strstr(reply, "\r\n\r\n");
    snprintf(answer, answer_size, "%s", start != NULL ? start + 4 : "");
    free(reply);
    free(body);
    return status;
}

static void bodies_around_each_step(void **state)
{
    static const size_t sizes[] = {1, 16383, 16384, 16385, 32769, 65537, LIMIT - 1, LIMIT};
    tether_http_server_t server;
    uint16_t port = loopback_port_free();
    tether_http_server_options_t opts = {
        .host = "127.0.0.1", .port = port, .max_body_bytes = LIMIT, .max_connections = 16,
        .max_connections_per_source = 16, .connection_timeout_seconds = 5,
        .request_head_timeout_seconds = 5, .threads = 1, .handler = echo};
    char answer[256], expected[64];

    (void)state;
    tether_http_server_init(&server);
    assert_int_equal(tether_http_server_open(&server, &opts), TETHER_OK);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int chunked = 0; chunked < 2; chunked++) {
            assert_int_equal(post(port, sizes[i], chunked, answer, sizeof(answer)), 200);
            snprintf(expected, sizeof(expected), "{\"len\":%zu,\"intact\":true}", sizes[i]);
            assert_string_equal(answer, expected);
        }
    }
    /* One byte over: refused before reading (declared) or once read (chunked). */
    assert_int_equal(post(port, LIMIT + 1, false, answer, sizeof(answer)), 413);
    assert_int_equal(post(port, LIMIT + 1, true, answer, sizeof(answer)), 413);
    assert_non_null(strstr(answer, "payload_too_large"));
    tether_http_server_free(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bodies_around_each_step),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
