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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
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

static tether_http_watched_t *watch(tether_http_reaper_t *reaper, int fd,
                                    const tether_http_source_t *source)
{
    tether_http_watched_t *watched = NULL;

    assert_int_equal(tether_http_reaper_watch(reaper, fd, source, &watched), TETHER_OK);
    return watched;
}

static tether_http_source_t ipv4_source(const char *text)
{
    struct sockaddr_in in4;
    tether_http_source_t source;

    memset(&in4, 0, sizeof(in4));
    in4.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &in4.sin_addr), 1);
    tether_http_source_from((const struct sockaddr *)&in4, &source);
    return source;
}

/* Each source address holds at most its share; a refusal is counted, and a
 * closed connection gives its place back. Unknown sources are not held to
 * a share. */
static void per_source_share(void **state)
{
    tether_metrics_t metrics;
    tether_metric_t *refused = NULL, *closed = NULL;
    tether_http_reaper_t reaper;
    tether_http_watched_t *held[2], *other, *refused_entry = (void *)1;
    tether_http_source_t a = ipv4_source("192.0.2.1"), b = ipv4_source("192.0.2.2");
    struct timespec later;
    char *text = NULL;
    size_t len = 0;

    (void)state;
    tether_metrics_init(&metrics);
    assert_int_equal(tether_metrics_add(&metrics,
                                        &(tether_metric_def_t){"refused_total", "r",
                                                               TETHER_METRIC_COUNTER, {NULL},
                                                               NULL, 0, 1},
                                        &refused),
                     TETHER_OK);
    assert_int_equal(tether_metrics_add(&metrics,
                                        &(tether_metric_def_t){"closed_total", "c",
                                                               TETHER_METRIC_COUNTER, {NULL},
                                                               NULL, 0, 1},
                                        &closed),
                     TETHER_OK);
    tether_http_reaper_init(&reaper);
    reaper.refused_per_source = tether_metric_series(refused, NULL, NULL);
    reaper.closed_head_deadline = tether_metric_series(closed, NULL, NULL);
    assert_int_equal(tether_http_reaper_open(&reaper, 5000, 2), TETHER_OK);
    held[0] = watch(&reaper, -1, &a);
    held[1] = watch(&reaper, -1, &a);
    assert_int_equal(tether_http_reaper_watch(&reaper, -1, &a, &refused_entry),
                     TETHER_ERR_TOO_LARGE);
    assert_null(refused_entry);
    other = watch(&reaper, -1, &b); /* another source has its own share */
    for (size_t i = 0; i < 3; i++)
        assert_non_null(watch(&reaper, -1, NULL));
    tether_http_reaper_forget(&reaper, held[0]);
    held[0] = watch(&reaper, -1, &a); /* a place given back */
    /* Never served and overdue: counted as closed by the head deadline
     * (fd -1: shutdown fails harmlessly). */
    clock_gettime(CLOCK_MONOTONIC, &later);
    tether_http_timespec_add_ms(&later, 6000);
    tether_http_reaper_request_done(&reaper, other); /* an idle keep-alive: not counted */
    assert_int_equal(tether_http_reaper_sweep(&reaper, &later), 6);
    assert_int_equal(tether_metrics_write(&metrics, &text, &len), TETHER_OK);
    assert_non_null(strstr(text, "\nrefused_total 1\n"));
    assert_non_null(strstr(text, "\nclosed_total 5\n"));
    free(text);
    tether_http_reaper_free(&reaper);
    tether_metrics_free(&metrics);
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
    assert_int_equal(tether_http_reaper_open(&reaper, 5000, 32), TETHER_OK);
    assert_non_null(stalled = watch(&reaper, a[0], NULL));
    assert_non_null(served = watch(&reaper, b[0], NULL));
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
    assert_int_equal(tether_http_reaper_open(&reaper, 0, 32), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_reaper_open(&reaper, 1000, 0), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_http_reaper_open(&reaper, 1000, 32), TETHER_OK);
    assert_int_equal(tether_http_reaper_open(&reaper, 1000, 32), TETHER_ERR_INVALID_ARGUMENT);
    assert_non_null(watch(&reaper, -1, NULL));
    assert_non_null(watch(&reaper, -1, NULL));
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
        cmocka_unit_test(per_source_share),
        cmocka_unit_test(free_drops_what_is_left),
        cmocka_unit_test(open_file_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
