/*
 * The read-ahead under the servers' TLS reads (net/src/server/http_tls_input.h):
 * one read takes what the socket holds and serves GnuTLS's small reads in
 * order; "nothing yet" only when nothing is held and the socket is empty;
 * the end of the stream after what is held.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_tls_input.h"

typedef struct pair {
    int ours;   /* the server's socket, non-blocking */
    int theirs; /* the client's */
} pair_t;

static void pair_open(pair_t *pair)
{
    int fds[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK), 0);
    pair->ours = fds[0];
    pair->theirs = fds[1];
}

static void pair_close(pair_t *pair)
{
    close(pair->ours);
    if (pair->theirs >= 0)
        close(pair->theirs);
}

static void send_all(int fd, const uint8_t *data, size_t len)
{
    assert_int_equal(send(fd, data, len, 0), (ssize_t)len);
}

static int waiting_in_socket(int fd)
{
    int waiting = -1;

    assert_int_equal(ioctl(fd, FIONREAD, &waiting), 0);
    return waiting;
}

/* Three records' bytes sent at once: GnuTLS's first read (a record header)
 * takes them all from the socket, and its reads get them back in order,
 * each no longer than asked; then "nothing yet". */
static void one_read_serves_the_flight(void **state)
{
    pair_t pair;
    tether_http_tls_input_t input;
    uint8_t flight[60], got[60];
    const size_t pieces[] = {5, 10, 5, 20, 5, 15};
    size_t at = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(flight); i++)
        flight[i] = (uint8_t)(i * 7 + 1);
    pair_open(&pair);
    tether_http_tls_input_init(&input, pair.ours);
    send_all(pair.theirs, flight, sizeof(flight));
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        assert_int_equal(tether_http_tls_input_pull(&input, got + at, pieces[i]),
                         (ssize_t)pieces[i]);
        if (i == 0)
            assert_int_equal(waiting_in_socket(pair.ours), 0);
        at += pieces[i];
    }
    assert_memory_equal(got, flight, sizeof(flight));
    errno = 0;
    assert_int_equal(tether_http_tls_input_pull(&input, got, 5), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    pair_close(&pair);
}

/* A read for more than is held gets what is held, even with more bytes in
 * the socket: the next read takes those. */
static void held_bytes_first(void **state)
{
    pair_t pair;
    tether_http_tls_input_t input;
    uint8_t first[10], second[50], got[100];

    (void)state;
    memset(first, 'a', sizeof(first));
    memset(second, 'b', sizeof(second));
    pair_open(&pair);
    tether_http_tls_input_init(&input, pair.ours);
    send_all(pair.theirs, first, sizeof(first));
    assert_int_equal(tether_http_tls_input_pull(&input, got, 5), 5);
    send_all(pair.theirs, second, sizeof(second));
    assert_int_equal(tether_http_tls_input_pull(&input, got, sizeof(got)), 5);
    assert_memory_equal(got, first, 5);
    assert_int_equal(tether_http_tls_input_pull(&input, got, sizeof(got)), 50);
    assert_memory_equal(got, second, 50);
    pair_close(&pair);
}

/* A read at least as large as the buffer (a big record's rest) goes to the
 * caller's memory directly, whole. */
static void large_read_direct(void **state)
{
    pair_t pair;
    tether_http_tls_input_t input;
    static uint8_t data[TETHER_HTTP_TLS_INPUT_BYTES * 2], got[TETHER_HTTP_TLS_INPUT_BYTES * 2];

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i % 251);
    pair_open(&pair);
    tether_http_tls_input_init(&input, pair.ours);
    send_all(pair.theirs, data, sizeof(data));
    assert_int_equal(tether_http_tls_input_pull(&input, got, sizeof(got)), (ssize_t)sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    assert_int_equal(input.end, 0);
    pair_close(&pair);
}

/* The peer's close reads as the end of the stream once what was held has
 * been read. */
static void end_after_held(void **state)
{
    pair_t pair;
    tether_http_tls_input_t input;
    const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t got[8];

    (void)state;
    pair_open(&pair);
    tether_http_tls_input_init(&input, pair.ours);
    send_all(pair.theirs, bytes, sizeof(bytes));
    close(pair.theirs);
    pair.theirs = -1;
    assert_int_equal(tether_http_tls_input_pull(&input, got, 5), 5);
    assert_int_equal(tether_http_tls_input_pull(&input, got + 5, 5), 3);
    assert_memory_equal(got, bytes, sizeof(bytes));
    assert_int_equal(tether_http_tls_input_pull(&input, got, 5), 0);
    pair_close(&pair);
}

/* Readable when bytes are held, even with the socket empty; when the
 * socket holds some; not when neither. */
static void pull_timeout_sees_held_bytes(void **state)
{
    pair_t pair;
    tether_http_tls_input_t input;
    const uint8_t bytes[10] = {0};
    uint8_t got[5];

    (void)state;
    pair_open(&pair);
    tether_http_tls_input_init(&input, pair.ours);
    assert_int_equal(tether_http_tls_input_pull_timeout(&input, 0), 0);
    send_all(pair.theirs, bytes, sizeof(bytes));
    assert_int_equal(tether_http_tls_input_pull_timeout(&input, 0), 1);
    assert_int_equal(tether_http_tls_input_pull(&input, got, sizeof(got)), 5);
    assert_int_equal(waiting_in_socket(pair.ours), 0);
    assert_int_equal(tether_http_tls_input_pull_timeout(&input, 0), 1);
    assert_int_equal(tether_http_tls_input_pull(&input, got, sizeof(got)), 5);
    assert_int_equal(tether_http_tls_input_pull_timeout(&input, 0), 0);
    pair_close(&pair);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_read_serves_the_flight),
        cmocka_unit_test(held_bytes_first),
        cmocka_unit_test(large_read_direct),
        cmocka_unit_test(end_after_held),
        cmocka_unit_test(pull_timeout_sees_held_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
