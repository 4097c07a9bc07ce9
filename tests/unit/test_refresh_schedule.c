/* The agent's refresh scheduler: when to ask the fleet next. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refresh_schedule.h"

#define NOW 1000000 /* any monotonic time */

static tether_refresh_plan_t after_token(int64_t issued, unsigned lifetime_s, uint32_t random)
{
    tether_refresh_input_t in = {.last_outcome = TETHER_REFRESH_TOKEN,
                                 .has_token = true,
                                 .issued_ms = issued,
                                 .expiry_ms = issued + (int64_t)lifetime_s * 1000,
                                 .now_ms = issued + 120,
                                 .random = random};
    tether_refresh_plan_t plan;

    tether_refresh_schedule(&in, &plan);
    return plan;
}

static tether_refresh_plan_t after_retry(unsigned failures, uint32_t random)
{
    tether_refresh_input_t in = {.last_outcome = TETHER_REFRESH_RETRY,
                                 .now_ms = NOW,
                                 .failures = failures,
                                 .random = random};
    tether_refresh_plan_t plan;

    tether_refresh_schedule(&in, &plan);
    return plan;
}

static void backoff_doubles(void **state)
{
    (void)state;
    assert_int_equal(tether_refresh_backoff_ms(0), 1000);
    assert_int_equal(tether_refresh_backoff_ms(1), 1000);
    assert_int_equal(tether_refresh_backoff_ms(2), 2000);
    assert_int_equal(tether_refresh_backoff_ms(3), 4000);
    assert_int_equal(tether_refresh_backoff_ms(6), 32000);
    assert_int_equal(after_retry(4, 0).backoff_ms, 8000);
}

static void backoff_cap(void **state)
{
    (void)state;
    assert_int_equal(tether_refresh_backoff_ms(7), TETHER_REFRESH_BACKOFF_CAP_MS);
    assert_int_equal(tether_refresh_backoff_ms(40), TETHER_REFRESH_BACKOFF_CAP_MS);
    assert_int_equal(tether_refresh_backoff_ms(UINT32_MAX), TETHER_REFRESH_BACKOFF_CAP_MS);
    /* Even the largest draw waits no longer than the cap. */
    assert_int_equal(after_retry(1000, 30000).next_exchange_ms, NOW + 60000);
}

/* A retry waits between half the backoff and the whole of it. */
static void retry_jitter_bounds(void **state)
{
    static const uint32_t draws[] = {0, 1, 999, 1000, 1001, 30000, 123456789, UINT32_MAX};

    (void)state;
    for (unsigned failures = 1; failures <= 9; failures++) {
        unsigned backoff = tether_refresh_backoff_ms(failures);
        for (size_t i = 0; i < sizeof(draws) / sizeof(draws[0]); i++) {
            tether_refresh_plan_t plan = after_retry(failures, draws[i]);
            assert_int_equal(plan.backoff_ms, backoff);
            assert_true(plan.next_exchange_ms >= NOW + backoff / 2);
            assert_true(plan.next_exchange_ms <= NOW + backoff);
        }
    }
    assert_int_equal(after_retry(1, 0).next_exchange_ms, NOW + 500);
    assert_int_equal(after_retry(1, 500).next_exchange_ms, NOW + 1000);
    assert_int_equal(after_retry(1, 501).next_exchange_ms, NOW + 500);
}

/* After a token: 2/3 of the lifetime from the request's start, +-5 %. */
static void token_jitter_bounds(void **state)
{
    static const uint32_t draws[] = {0, 1, 14999, 15000, 15001, 29999, 30000, UINT32_MAX};

    (void)state;
    for (size_t i = 0; i < sizeof(draws) / sizeof(draws[0]); i++) {
        tether_refresh_plan_t plan = after_token(NOW, 300, draws[i]);
        assert_true(plan.next_exchange_ms >= NOW + 200000 - 15000);
        assert_true(plan.next_exchange_ms <= NOW + 200000 + 15000);
        assert_int_equal(plan.backoff_ms, 0);
    }
    assert_int_equal(after_token(NOW, 300, 0).next_exchange_ms, NOW + 185000);
    assert_int_equal(after_token(NOW, 300, 30000).next_exchange_ms, NOW + 215000);
    assert_int_equal(after_token(NOW, 300, 15000).next_exchange_ms, NOW + 200000);
    /* The longest lifetime the fleet may give (a day). */
    assert_int_equal(after_token(NOW, 86400, 0).next_exchange_ms, NOW + 57600000 - 4320000);
    /* Always before the expiry. */
    for (unsigned lifetime = 1; lifetime <= 600; lifetime++)
        assert_true(after_token(NOW, lifetime, UINT32_MAX).next_exchange_ms <
                    NOW + (int64_t)lifetime * 1000);
}

/* The token goes at its expiry, whether the refresh succeeds or not. */
static void fail_closed_at_expiry(void **state)
{
    tether_refresh_input_t in = {.last_outcome = TETHER_REFRESH_RETRY,
                                 .has_token = true,
                                 .issued_ms = NOW - 250000,
                                 .expiry_ms = NOW + 50000,
                                 .now_ms = NOW,
                                 .failures = 9,
                                 .random = UINT32_MAX};
    tether_refresh_plan_t plan;

    (void)state;
    assert_int_equal(after_token(NOW, 300, 7).drop_token_ms, NOW + 300000);
    tether_refresh_schedule(&in, &plan);
    assert_int_equal(plan.drop_token_ms, NOW + 50000);
    /* The next try (up to 60 s away) is later than the expiry: the token is
     * dropped first, not kept until the retry. */
    in.random = 30000;
    tether_refresh_schedule(&in, &plan);
    assert_true(plan.next_exchange_ms > plan.drop_token_ms);
    /* No token held: nothing to drop. */
    in.has_token = false;
    tether_refresh_schedule(&in, &plan);
    assert_int_equal(plan.drop_token_ms, TETHER_REFRESH_NEVER);
}

/* A final refusal: no exchange until SIGHUP, the token goes now. */
static void refusal_stops(void **state)
{
    tether_refresh_input_t in = {.last_outcome = TETHER_REFRESH_REFUSED,
                                 .has_token = true,
                                 .issued_ms = NOW - 1000,
                                 .expiry_ms = NOW + 299000,
                                 .now_ms = NOW,
                                 .failures = 3,
                                 .random = 12345};
    tether_refresh_plan_t plan;

    (void)state;
    tether_refresh_schedule(&in, &plan);
    assert_int_equal(plan.next_exchange_ms, TETHER_REFRESH_NEVER);
    assert_int_equal(plan.drop_token_ms, NOW);
    assert_int_equal(plan.backoff_ms, 0);
}

/* With a next challenge held, the refresh is when its window opens (the
 * fleet's schedule); a time outside the token's life is not followed. */
static void next_challenge_sets_the_refresh(void **state)
{
    tether_refresh_input_t in = {.last_outcome = TETHER_REFRESH_TOKEN,
                                 .has_token = true,
                                 .issued_ms = NOW,
                                 .expiry_ms = NOW + 300000,
                                 .next_challenge_ms = NOW + 190123,
                                 .now_ms = NOW + 120,
                                 .random = 7};
    tether_refresh_plan_t plan, own = after_token(NOW, 300, 7);

    (void)state;
    tether_refresh_schedule(&in, &plan);
    assert_int_equal(plan.next_exchange_ms, NOW + 190123);
    assert_int_equal(plan.drop_token_ms, NOW + 300000);
    /* After the token's expiry, or before the request: the agent's own. */
    in.next_challenge_ms = NOW + 300000;
    tether_refresh_schedule(&in, &plan);
    assert_int_equal(plan.next_exchange_ms, own.next_exchange_ms);
    in.next_challenge_ms = NOW;
    tether_refresh_schedule(&in, &plan);
    assert_int_equal(plan.next_exchange_ms, own.next_exchange_ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles),
        cmocka_unit_test(backoff_cap),
        cmocka_unit_test(retry_jitter_bounds),
        cmocka_unit_test(token_jitter_bounds),
        cmocka_unit_test(next_challenge_sets_the_refresh),
        cmocka_unit_test(fail_closed_at_expiry),
        cmocka_unit_test(refusal_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
