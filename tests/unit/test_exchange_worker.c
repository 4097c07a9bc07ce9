/*
 * The exchange worker (agent/src/exchange_worker.c): results reach the loop
 * through the event fd, a new token is swapped in and the one it replaces
 * wiped, a failure leaves the held token alone.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "exchange_worker.h"

static void alloc_token(tether_secure_buffer_t *buf, const char *text)
{
    assert_int_equal(tether_secure_buffer_alloc(buf, TETHER_TOKEN_MAX + 1, 1), TETHER_OK);
    strcpy((char *)buf->data, text);
}

static bool all_zero(const tether_secure_buffer_t *buf)
{
    for (size_t i = 0; i < buf->size; i++)
        if (buf->data[i] != 0)
            return false;
    return true;
}

/* A result as the thread leaves it, collected: the new token moves into the
 * caller's buffer, the buffer of the old one comes back to the worker wiped. */
static void new_token_swapped_in_old_one_wiped(void **state)
{
    tether_exchange_worker_t w;
    tether_secure_buffer_t held;
    tether_exchange_result_t r;
    unsigned char *new_data, *old_data;

    (void)state;
    tether_exchange_worker_init(&w);
    alloc_token(&w.token, "new-token");
    alloc_token(&held, "old-token");
    new_data = w.token.data;
    old_data = held.data;
    assert_false(tether_exchange_worker_collect(&w, &held, &r)); /* nothing came yet */
    assert_string_equal((const char *)held.data, "old-token");

    w.result.outcome = TETHER_EXCHANGE_OK;
    w.result.expires_in = 300;
    w.done = true;
    assert_true(tether_exchange_worker_collect(&w, &held, &r));
    assert_int_equal(r.outcome, TETHER_EXCHANGE_OK);
    assert_int_equal(r.expires_in, 300);
    assert_ptr_equal(held.data, new_data); /* swapped, not copied */
    assert_string_equal((const char *)held.data, "new-token");
    assert_ptr_equal(w.token.data, old_data);
    assert_true(all_zero(&w.token));
    assert_false(tether_exchange_worker_collect(&w, &held, &r)); /* taken once */
    tether_secure_buffer_free(&held);
    tether_exchange_worker_free(&w);
}

/* A real thread whose exchange fails at once (its client is not set up):
 * the event fd wakes the caller, the outcome is a retry, and the held
 * token is left as it was. */
static void failure_wakes_the_loop_and_keeps_the_token(void **state)
{
    tether_exchange_worker_t w;
    tether_https_client_t client;
    tether_tpm_t tpm;
    tether_agent_state_t agent_state;
    tether_secure_buffer_t held, incoming;
    tether_exchange_result_t r;
    tether_usage_t usage = {.token_requests = 3, .exchanges = 1};
    struct pollfd p;
    char why[128];

    (void)state;
    memset(&agent_state, 0, sizeof(agent_state));
    tether_https_client_init(&client);
    tether_tpm_init(&tpm);
    tether_exchange_worker_init(&w);
    alloc_token(&held, "held-token");
    alloc_token(&incoming, "");
    assert_int_equal(tether_exchange_worker_start(&w, &client, &tpm, NULL, &agent_state, &incoming, why,
                                                  sizeof(why)),
                     TETHER_OK);
    assert_null(incoming.data); /* the worker's now */
    tether_exchange_worker_request(&w, &usage);
    p = (struct pollfd){.fd = tether_exchange_worker_fd(&w), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(tether_exchange_worker_collect(&w, &held, &r));
    assert_int_equal(r.outcome, TETHER_EXCHANGE_RETRY);
    assert_string_equal(r.code, "unreachable");
    assert_string_equal((const char *)held.data, "held-token");
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 0), 0); /* the event was consumed */
    tether_exchange_worker_free(&w);
    tether_secure_buffer_free(&held);
    tether_https_client_free(&client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_token_swapped_in_old_one_wiped),
        cmocka_unit_test(failure_wakes_the_loop_and_keeps_the_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
