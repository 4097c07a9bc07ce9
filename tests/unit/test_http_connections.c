/*
 * The HTTP server's connection bookkeeping (net/src/server/http_connections.h):
 * request-head deadlines shut the overdue sockets down, and the open-file
 * limit is checked (and raised) for the connection limit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_connections.h"

/* Whether the peer of our end has been shut down: end of stream on recv. */
static bool peer_shut_down(int fd)
{
    char byte;

    return recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

static void head_deadlines(void **state)
{
    tether_http_reaper_t reaper;
    tether_http_watched_t *stalled, *served;
    int a[2], b[2];
    struct timespec now, later;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    tether_http_reaper_init(&reaper);
    /* Long enough that the thread's own sweeps reap nothing during the test. */
    assert_int_equal(tether_http_reaper_open(&reaper, 5000), TETHER_OK);
    assert_non_null(stalled = tether_http_reaper_watch(&reaper, a[0]));
    assert_non_null(served = tether_http_reaper_watch(&reaper, b[0]));
    tether_http_reaper_head_received(&reaper, served);

    clock_gettime(CLOCK_MONOTONIC, &now);
    assert_int_equal(tether_http_reaper_sweep(&reaper, &now), 0);
    assert_false(peer_shut_down(a[1]));
    assert_int_equal(errno, EAGAIN);

    later = now;
    tether_http_timespec_add_ms(&later, 6000);
    assert_int_equal(tether_http_reaper_sweep(&reaper, &later), 1);
    assert_true(peer_shut_down(a[1]));
    assert_false(peer_shut_down(b[1])); /* its request is being served: no deadline */
    assert_int_equal(tether_http_reaper_sweep(&reaper, &later), 0); /* once only */

    /* Answered: the next head is due from now on. */
    tether_http_reaper_request_done(&reaper, served);
    assert_int_equal(tether_http_reaper_sweep(&reaper, &now), 0);
    assert_false(peer_shut_down(b[1]));
    tether_http_timespec_add_ms(&later, 5000);
    assert_int_equal(tether_http_reaper_sweep(&reaper, &later), 1);
    assert_true(peer_shut_down(b[1]));

    tether_http_reaper_forget(&reaper, stalled);
    tether_http_reaper_forget(&reaper, served);
    assert_null(reaper.watched);
    tether_http_reaper_free(&reaper);
    tether_http_reaper_free(&reaper); /* freed twice, and NULL: fine */
    tether_http_reaper_free(NULL);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

static void free_drops_what_is_left(void **state)
{
    tether_http_reaper_t reaper;

    (void)state;
    tether_http_reaper_init(&reaper);
    assert_int_equal(tether_http_reaper_open(&reaper, 0), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_reaper_open(&reaper, 1000), TETHER_OK);
    assert_int_equal(tether_http_reaper_open(&reaper, 1000), TETHER_ERR_INVALID_ARGUMENT);
    assert_non_null(tether_http_reaper_watch(&reaper, -1));
    assert_non_null(tether_http_reaper_watch(&reaper, -1));
    tether_http_reaper_free(&reaper); /* leak-checked under ASan and valgrind */
    assert_false(reaper.ready);
}

/* Works with this process's hard limit as it is (valgrind lets a program
 * change only the soft one) and puts the soft limit back. */
static void open_file_limit(void **state)
{
    struct rlimit limit;
    rlim_t hard;

    (void)state;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max > UINT32_MAX ||
        limit.rlim_max < 2 * TETHER_HTTP_FD_RESERVE)
        skip(); /* no hard limit to run into, or too low to leave room */
    hard = limit.rlim_max;

    /* max_connections + TETHER_HTTP_FD_RESERVE fits under the hard limit:
     * the soft limit is raised to what is needed. */
    limit.rlim_cur = TETHER_HTTP_FD_RESERVE;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &limit), 0);
    assert_int_equal(tether_http_fd_limit_check((unsigned)(hard - TETHER_HTTP_FD_RESERVE)),
                     TETHER_OK);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &limit), 0);
    assert_true(limit.rlim_cur == hard);

    /* One more does not fit: refused, and the soft limit left alone. */
    limit.rlim_cur = TETHER_HTTP_FD_RESERVE;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &limit), 0);
    assert_int_equal(tether_http_fd_limit_check((unsigned)(hard - TETHER_HTTP_FD_RESERVE + 1)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &limit), 0);
    assert_true(limit.rlim_cur == TETHER_HTTP_FD_RESERVE);
    limit.rlim_cur = hard;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &limit), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_deadlines),
        cmocka_unit_test(free_drops_what_is_left),
        cmocka_unit_test(open_file_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
