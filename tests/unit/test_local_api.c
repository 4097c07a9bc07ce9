#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes),
        cmocka_unit_test(incomplete_and_malformed),
        cmocka_unit_test(acl),
        cmocka_unit_test(peer_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
