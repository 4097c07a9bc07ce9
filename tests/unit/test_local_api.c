#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "local_api.h"

static tether_status_t parse(const char *text, tether_local_route_t *route)
{
    return tether_local_request_parse(text, strlen(text), route);
}

static void routes(void **state)
{
    tether_local_route_t r;

    (void)state;
    assert_int_equal(parse("GET /v1/token HTTP/1.1\r\nHost: x\r\n\r\n", &r), TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_TOKEN);
    assert_int_equal(parse("GET /v1/status HTTP/1.0\r\n\r\n", &r), TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_STATUS);
    assert_int_equal(parse("GET /v1/tokens HTTP/1.1\r\n\r\n", &r), TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_NOT_FOUND);
    assert_int_equal(parse("POST /v1/token HTTP/1.1\r\n\r\n", &r), TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_BAD_METHOD);
    assert_int_equal(parse("GET /v1/token?x=1 HTTP/1.1\r\n\r\n", &r), TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_NOT_FOUND);
}

static void incomplete_and_malformed(void **state)
{
    tether_local_route_t r;
    char big[TETHER_LOCAL_MAX_REQUEST + 10];

    (void)state;
    assert_int_equal(parse("GET /v1/token HTTP/1.1\r\n", &r), TETHER_ERR_STATE);
    assert_int_equal(parse("", &r), TETHER_ERR_STATE);
    assert_int_equal(parse("GET /v1/token HTTP/1.1\n\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("GET /v1/token\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("GET  /v1/token HTTP/1.1\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("GET v1/token HTTP/1.1\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("GET /v1/token HTTP/2.0\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("GET /v1/\x7ftoken HTTP/1.1\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("GET /v1/token HTTP/1.1\rX\r\n\r\n", &r), TETHER_ERR_PARSE);
    assert_int_equal(tether_local_request_parse("GET /\0 HTTP/1.1\r\n\r\n", 20, &r),
                     TETHER_ERR_PARSE);
    memset(big, 'a', sizeof(big));
    assert_int_equal(tether_local_request_parse(big, sizeof(big), &r), TETHER_ERR_TOO_LARGE);
}

static void acl(void **state)
{
    tether_local_acl_t list = {.uids = {1234}, .uid_count = 1, .gids = {99}, .gid_count = 1};

    (void)state;
    assert_true(tether_local_acl_allows(&list, geteuid(), 5)); /* the agent's own user */
    assert_true(tether_local_acl_allows(&list, 1234, 5));
    assert_true(tether_local_acl_allows(&list, 4321, 99));
    if (geteuid() != 4321)
        assert_false(tether_local_acl_allows(&list, 4321, 5));
}

static void peer_credentials(void **state)
{
    int pair[2], pipe_fds[2];
    uid_t uid = 0;
    gid_t gid = 0;
    char why[128];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    assert_int_equal(tether_local_peer_credentials(pair[0], &uid, &gid, why, sizeof(why)),
                     TETHER_OK);
    assert_int_equal(uid, geteuid());
    assert_int_equal(gid, getegid());
    close(pair[0]);
    close(pair[1]);

    /* A descriptor that is no socket: the call fails, and the out-params
     * hold no id at all rather than what they held before. */
    assert_int_equal(pipe(pipe_fds), 0);
    uid = geteuid();
    gid = getegid();
    assert_int_equal(tether_local_peer_credentials(pipe_fds[0], &uid, &gid, why, sizeof(why)),
                     TETHER_ERR_IO);
    assert_int_equal(uid, (uid_t)-1);
    assert_int_equal(gid, (gid_t)-1);
    assert_non_null(strstr(why, "SO_PEERCRED"));
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}


/* POST /v1/dpop is whole only with the body its Content-Length names. */
static void dpop_request_framing(void **state)
{
    static const char head[] = "POST /v1/dpop HTTP/1.1\r\ncontent-length:  7 \r\n\r\n";
    char text[256], big[TETHER_LOCAL_MAX_REQUEST + 64];
    tether_local_route_t r;
    const char *body;
    size_t body_len;

    (void)state;
    snprintf(text, sizeof(text), "%s{\"a\":1}", head);
    assert_int_equal(tether_local_request_parse_body(text, strlen(text), &r, &body, &body_len),
                     TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_DPOP);
    assert_int_equal(body_len, 7);
    assert_memory_equal(body, "{\"a\":1}", 7);
    /* Head alone, or part of the body: more is needed. */
    assert_int_equal(parse(head, &r), TETHER_ERR_STATE);
    snprintf(text, sizeof(text), "%s{\"a\"", head);
    assert_int_equal(parse(text, &r), TETHER_ERR_STATE);
    /* Bytes after the body, no length, two lengths, a length that is not
     * a number, chunked framing: refused. */
    snprintf(text, sizeof(text), "%s{\"a\":1}GET", head);
    assert_int_equal(parse(text, &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("POST /v1/dpop HTTP/1.1\r\n\r\n{}", &r), TETHER_ERR_PARSE);
    assert_int_equal(parse("POST /v1/dpop HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2"
                           "\r\n\r\n{}", &r),
                     TETHER_ERR_PARSE);
    assert_int_equal(parse("POST /v1/dpop HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", &r),
                     TETHER_ERR_PARSE);
    assert_int_equal(parse("POST /v1/dpop HTTP/1.1\r\nContent-Length: 2\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n{}", &r),
                     TETHER_ERR_PARSE);
    /* A body that cannot fit the request's bound is refused at once. */
    assert_int_equal(parse("POST /v1/dpop HTTP/1.1\r\nContent-Length: 4096\r\n\r\n", &r),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(parse("POST /v1/dpop HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", &r),
                     TETHER_ERR_TOO_LARGE);
    /* Head and body filling the bound exactly, and one byte more. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "POST /v1/dpop HTTP/1.1\r\nContent-Length: 4048\r\n\r\n", 48);
    assert_int_equal(tether_local_request_parse(big, TETHER_LOCAL_MAX_REQUEST, &r), TETHER_OK);
    memcpy(big, "POST /v1/dpop HTTP/1.1\r\nContent-Length: 4049\r\n\r\n", 48);
    assert_int_equal(tether_local_request_parse(big, TETHER_LOCAL_MAX_REQUEST, &r),
                     TETHER_ERR_TOO_LARGE);
    /* Other methods on the route; the body of a GET is not read. */
    assert_int_equal(parse("GET /v1/dpop HTTP/1.1\r\n\r\n", &r), TETHER_OK);
    assert_int_equal(r, TETHER_LOCAL_BAD_METHOD);
    assert_int_equal(tether_local_request_parse_body("GET /v1/token HTTP/1.1\r\n\r\n", 26, &r,
                                                     &body, &body_len),
                     TETHER_OK);
    assert_null(body);
    assert_int_equal(body_len, 0);
}

static tether_status_t dpop_body(const char *json, tether_local_dpop_request_t *req)
{
    char why[128];

    return tether_local_dpop_request_parse(json, strlen(json), req, why, sizeof(why));
}

static void dpop_body_fields(void **state)
{
    tether_local_dpop_request_t req;
    char long_url[TETHER_DPOP_HTU_MAX + 64], json[TETHER_DPOP_HTU_MAX + 128];

    (void)state;
    assert_int_equal(dpop_body("{\"method\":\"POST\",\"url\":\"https://gate.example/v1/chat/"
                               "completions\"}", &req),
                     TETHER_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, "https://gate.example/v1/chat/completions");
    assert_string_equal(req.nonce, "");
    assert_int_equal(dpop_body("{\"nonce\":\"n-1_x\",\"url\":\"http://127.0.0.1:8080/v1/models\","
                               "\"method\":\"GET\"}", &req),
                     TETHER_OK);
    assert_string_equal(req.nonce, "n-1_x");

    /* Each refusal leaves req empty. */
    const char *bad[] = {
        "",
        "[]",
        "{\"method\":\"POST\"}",
        "{\"url\":\"https://g/\"}",
        "{\"method\":\"post\",\"url\":\"https://g/\"}",
        "{\"method\":\"\",\"url\":\"https://g/\"}",
        "{\"method\":\"POSTPOSTPOSTPOSTP\",\"url\":\"https://g/\"}",
        "{\"method\":\"POST\",\"url\":\"ftp://g/\"}",
        "{\"method\":\"POST\",\"url\":\"/v1/chat\"}",
        "{\"method\":\"POST\",\"url\":\"https://u@g/\"}",
        "{\"method\":\"POST\",\"url\":1}",
        "{\"method\":\"POST\",\"url\":\"https://g/\",\"nonce\":\"\"}",
        "{\"method\":\"POST\",\"url\":\"https://g/\",\"nonce\":\"a b\"}",
        "{\"method\":\"POST\",\"url\":\"https://g/\",\"nonce\":\"a\\\"b\"}",
        "{\"method\":\"POST\",\"url\":\"https://g/\",\"nonce\":null}",
        "{\"method\":\"POST\",\"url\":\"https://g/\",\"extra\":1}",
        "{\"method\":\"POST\",\"method\":\"GET\",\"url\":\"https://g/\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(dpop_body(bad[i], &req), TETHER_ERR_PARSE);
        assert_string_equal(req.method, "");
        assert_string_equal(req.url, "");
    }
    /* The URL's bound. */
    memset(long_url, 'a', sizeof(long_url));
    memcpy(long_url, "https://g/", 10);
    long_url[TETHER_DPOP_HTU_MAX] = '\0';
    snprintf(json, sizeof(json), "{\"method\":\"GET\",\"url\":\"%s\"}", long_url);
    assert_int_equal(dpop_body(json, &req), TETHER_OK);
    long_url[TETHER_DPOP_HTU_MAX] = 'a';
    long_url[TETHER_DPOP_HTU_MAX + 1] = '\0';
    snprintf(json, sizeof(json), "{\"method\":\"GET\",\"url\":\"%s\"}", long_url);
    assert_int_equal(dpop_body(json, &req), TETHER_ERR_PARSE);
}

/* ---- the local server: many callers, each with its own state ---------- */

typedef struct server_fixture {
    char dir[80];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    tether_local_acl_t acl;
    int handled;
    char body[64]; /* the body the last request handed to the route */
    tether_local_server_t server; /* last: its table is large */
} server_fixture_t;

/* The routes' stand-in: names the route it was asked for. */
static void fake_route(void *context, int fd, tether_local_route_t route, const char *body,
                       size_t body_len)
{
    server_fixture_t *f = context;

    f->handled++;
    snprintf(f->body, sizeof(f->body), "%.*s", (int)body_len, body != NULL ? body : "");
    tether_local_respond(fd, 200, route == TETHER_LOCAL_TOKEN  ? "{\"route\":\"token\"}"
                                  : route == TETHER_LOCAL_DPOP ? "{\"route\":\"dpop\"}"
                                                               : "{\"route\":\"status\"}");
}

static int server_setup(void **state)
{
    server_fixture_t *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    char why[128];

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/tether-local-test.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/agent.sock", f->dir);
    tether_local_server_init(&f->server, &f->acl, fake_route, f);
    if (tether_local_server_open(&f->server, f->path, why, sizeof(why)) != TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int server_teardown(void **state)
{
    server_fixture_t *f = *state;

    tether_local_server_close(&f->server, f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A caller: connected without waiting (the backlog takes it), reads time
 * out after 2 s so that no test can hang. */
static int caller(const server_fixture_t *f)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timeval two = {.tv_sec = 2};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

    assert_true(fd >= 0);
    strcpy(addr.sun_path, f->path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two, sizeof(two)), 0);
    return fd;
}

static void send_text(int fd, const char *text)
{
    assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* One round of the agent's loop for the server: poll (at most 50 ms), serve
 * as if the clock read now_ms. */
static void serve_round(server_fixture_t *f, int64_t now_ms)
{
    struct pollfd fds[TETHER_LOCAL_POLLFDS];
    size_t n = tether_local_server_pollfds(&f->server, fds);

    assert_true(poll(fds, n, 50) >= 0);
    tether_local_server_serve(&f->server, fds, n, now_ms);
}

/* The whole answer on fd, NUL-terminated in buf (the server closes after). */
static void answer(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;

    while (len < size - 1 && (n = recv(fd, buf + len, size - 1 - len, 0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
}

/* Sends text on fd, runs a round at now_ms and reads the whole answer into
 * buf, which must hold `expected`. */
static void ask(server_fixture_t *f, int fd, const char *text, int64_t now_ms,
                const char *expected)
{
    char buf[512];

    send_text(fd, text);
    serve_round(f, now_ms);
    answer(fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, expected));
}

static void silent_caller_delays_no_other(void **state)
{
    server_fixture_t *f = *state;
    int silent = caller(f), normal = caller(f);
    char buf[512];

    serve_round(f, 0); /* both accepted, neither has sent */
    assert_int_equal(f->server.count, 2);
    ask(f, normal, "GET /v1/token HTTP/1.1\r\n\r\n", 10, "{\"route\":\"token\"}");
    assert_int_equal(f->server.count, 1); /* the silent one waits */
    assert_int_equal(tether_local_server_deadline(&f->server), TETHER_LOCAL_REQUEST_TIMEOUT_MS);

    /* At its deadline the silent caller gets its answer, a bad request. */
    serve_round(f, TETHER_LOCAL_REQUEST_TIMEOUT_MS);
    answer(silent, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 400"));
    assert_int_equal(f->server.count, 0);
    assert_int_equal(tether_local_server_deadline(&f->server), INT64_MAX);
    assert_int_equal(f->handled, 1);
    close(silent);
    close(normal);
}

static void request_in_pieces(void **state)
{
    server_fixture_t *f = *state;
    int fd = caller(f);

    send_text(fd, "GET /v1/st");
    serve_round(f, 0);
    serve_round(f, 0);
    assert_int_equal(f->handled, 0);
    ask(f, fd, "atus HTTP/1.1\r\nHost: x\r\n\r\n", 5, "{\"route\":\"status\"}");
    assert_int_equal(f->handled, 1);
    close(fd);
}

/* The route gets the body; a request for the route sent in pieces waits
 * for all of it. */
static void dpop_body_reaches_the_route(void **state)
{
    server_fixture_t *f = *state;
    int fd = caller(f);

    send_text(fd, "POST /v1/dpop HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\"");
    serve_round(f, 0);
    assert_int_equal(f->handled, 0);
    ask(f, fd, ":\"b\"}", 5, "{\"route\":\"dpop\"}");
    assert_int_equal(f->handled, 1);
    assert_string_equal(f->body, "{\"a\":\"b\"}");
    close(fd);
}

static void beyond_the_bound_busy(void **state)
{
    server_fixture_t *f = *state;
    int first, second;

    f->server.max_connections = 1;
    first = caller(f);
    second = caller(f);
    ask(f, second, "GET /v1/token HTTP/1.1\r\n\r\n", 0, "{\"error\":\"busy\"");
    assert_int_equal(f->server.count, 1);
    ask(f, first, "GET /v1/status HTTP/1.1\r\n\r\n", 1, "HTTP/1.1 200");
    assert_int_equal(f->handled, 1);
    close(first);
    close(second);
}

/* A burst of callers waits in the backlog while the loop is busy: far more
 * than the 16 the agent once allowed, none refused by the kernel. */
static void backlog_takes_a_burst(void **state)
{
    server_fixture_t *f = *state;
    int fds[100];

    for (size_t i = 0; i < 100; i++) {
        fds[i] = caller(f);
        assert_true(fds[i] >= 0);
    }
    for (size_t i = 0; i < 100; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes),
        cmocka_unit_test(incomplete_and_malformed),
        cmocka_unit_test(dpop_request_framing),
        cmocka_unit_test(dpop_body_fields),
        cmocka_unit_test(acl),
        cmocka_unit_test(peer_credentials),
        cmocka_unit_test_setup_teardown(silent_caller_delays_no_other, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(request_in_pieces, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(dpop_body_reaches_the_route, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(beyond_the_bound_busy, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(backlog_takes_a_burst, server_setup, server_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
