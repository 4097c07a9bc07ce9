/*
 * Streamed responses of the servers' layer (net/src/server/http_stream.c):
 * the bounded queue between a producer and the server's reader, read here
 * as the server would, without a connection.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "http_stream_server.h"

static void pause_ms(long ms)
{
    struct timespec t = {0, ms * 1000000L};

    nanosleep(&t, NULL);
}

static void order_across_the_ring(void **state)
{
    tether_http_stream_t *stream;
    char buf[16];

    (void)state;
    assert_int_equal(tether_http_stream_create(8, &stream), TETHER_OK);
    assert_int_equal(tether_http_stream_write(stream, (const uint8_t *)"abcdef", 6), TETHER_OK);
    assert_int_equal(tether_http_stream_read(stream, buf, 4), 4);
    assert_memory_equal(buf, "abcd", 4);
    /* "ghijk" wraps around the end of the ring */
    assert_int_equal(tether_http_stream_write(stream, (const uint8_t *)"ghijk", 5), TETHER_OK);
    assert_int_equal(tether_http_stream_read(stream, buf, sizeof(buf)), 4); /* to the ring's end */
    assert_int_equal(tether_http_stream_read(stream, buf + 4, sizeof(buf) - 4), 3);
    assert_memory_equal(buf, "efghijk", 7);
    /* empty, not finished: nothing yet */
    assert_int_equal(tether_http_stream_read(stream, buf, sizeof(buf)), 0);
    tether_http_stream_finish(stream, true);
    assert_int_equal(tether_http_stream_read(stream, buf, sizeof(buf)),
                     MHD_CONTENT_READER_END_OF_STREAM);
    tether_http_stream_abandon(stream);
}

static void a_cut_stream_ends_with_an_error(void **state)
{
    tether_http_stream_t *stream;
    char buf[4];

    (void)state;
    assert_int_equal(tether_http_stream_create(4, &stream), TETHER_OK);
    assert_int_equal(tether_http_stream_write(stream, (const uint8_t *)"xy", 2), TETHER_OK);
    tether_http_stream_finish(stream, false);
    /* what was queued still goes out, then the error closes the connection */
    assert_int_equal(tether_http_stream_read(stream, buf, sizeof(buf)), 2);
    assert_int_equal(tether_http_stream_read(stream, buf, sizeof(buf)),
                     MHD_CONTENT_READER_END_WITH_ERROR);
    tether_http_stream_abandon(stream);
    assert_int_equal(tether_http_stream_create(0, &stream), TETHER_ERR_INVALID_ARGUMENT);
    assert_null(stream);
}

typedef struct producer {
    tether_http_stream_t *stream;
    const char *text;
    atomic_bool done;
    tether_status_t rc;
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;

    p->rc = tether_http_stream_write(p->stream, (const uint8_t *)p->text, strlen(p->text));
    atomic_store(&p->done, true);
    tether_http_stream_finish(p->stream, p->rc == TETHER_OK);
    return NULL;
}

static void a_full_queue_holds_the_producer(void **state)
{
    producer_t p = {NULL, "0123456789", false, TETHER_ERR_IO};
    pthread_t thread;
    char buf[16];
    size_t got = 0;
    ssize_t n;

    (void)state;
    assert_int_equal(tether_http_stream_create(4, &p.stream), TETHER_OK);
    assert_int_equal(pthread_create(&thread, NULL, produce, &p), 0);
    pause_ms(50);
    /* 4 of 10 bytes fit: the producer waits for the reader */
    assert_false(atomic_load(&p.done));
    while ((n = tether_http_stream_read(p.stream, buf + got, 3)) != MHD_CONTENT_READER_END_OF_STREAM) {
        assert_true(n >= 0);
        got += (size_t)n;
        if (n == 0)
            pause_ms(1);
    }
    pthread_join(thread, NULL);
    assert_int_equal(p.rc, TETHER_OK);
    assert_int_equal(got, 10);
    assert_memory_equal(buf, "0123456789", 10);
    tether_http_stream_abandon(p.stream);
}

static void a_client_gone_fails_the_producer(void **state)
{
    producer_t p = {NULL, "0123456789", false, TETHER_OK};
    pthread_t thread;

    (void)state;
    assert_int_equal(tether_http_stream_create(4, &p.stream), TETHER_OK);
    assert_int_equal(pthread_create(&thread, NULL, produce, &p), 0);
    pause_ms(50);
    assert_false(atomic_load(&p.done));
    /* the server lets the response go (the client closed): the blocked
     * write returns, so the producer can abort its upstream transfer */
    tether_http_stream_abandon(p.stream);
    pthread_join(thread, NULL);
    assert_int_equal(p.rc, TETHER_ERR_STATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_across_the_ring),
        cmocka_unit_test(a_cut_stream_ends_with_an_error),
        cmocka_unit_test(a_full_queue_holds_the_producer),
        cmocka_unit_test(a_client_gone_fails_the_producer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
