/* tether-gate's ceilings (gateway/src/policy): model lists, per-minute
 * buckets, the day's spend with reserve/settle/release, the bounded device
 * table, and the spend ceiling under concurrent reservations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "tether/gate/policy.h"

#define DAY_MS 86400000LL
/* 2026-12-06T12:00:00Z */
#define NOON_MS (20428LL * DAY_MS + DAY_MS / 2)

static const char *const all_models[] = {"*"};
static const char *const gpt_models[] = {"gpt-4o*", "text-embedding-*"};
/* 2.5 and 10 per 1000 tokens, in micro-units */
static const tether_gate_price_t prices[] = {
    {"gpt-4o-mini", 150, 600},
    {"gpt-4o*", 2500, 10000},
    {"text-embedding-*", 20, 0},
};

static tether_gate_policy_options_t options(void)
{
    tether_gate_policy_options_t opts;

    memset(&opts, 0, sizeof(opts));
    opts.models = gpt_models;
    opts.model_count = 2;
    opts.prices = prices;
    opts.price_count = 3;
    opts.default_max_tokens = 256;
    opts.max_devices = 8;
    return opts;
}

static void open_policy(tether_gate_policy_t *policy, const tether_gate_policy_options_t *opts)
{
    char why[160] = "";

    tether_gate_policy_init(policy);
    assert_int_equal(tether_gate_policy_open(policy, opts, why, sizeof(why)), TETHER_OK);
}

static tether_gate_demand_t demand(const char *device, const char *model, uint64_t prompt,
                                   uint64_t completion)
{
    tether_gate_demand_t d;

    memset(&d, 0, sizeof(d));
    d.device = device;
    d.model = model;
    d.token_models = all_models;
    d.token_model_count = 1;
    d.prompt_bound = prompt;
    d.completion_bound = completion;
    return d;
}

/* Asserts a known device's standing at now. */
static void assert_standing(tether_gate_policy_t *policy, const char *device, int64_t now,
                            uint64_t spent, uint64_t reserved)
{
    uint64_t got_spent = 1, got_reserved = 1;

    assert_int_equal(tether_gate_policy_spend(policy, device, now, &got_spent, &got_reserved),
                     TETHER_OK);
    assert_int_equal(got_spent, spent);
    assert_int_equal(got_reserved, reserved);
}

/* ---- globs and prices ------------------------------------------------------- */

static void glob_matching(void **state)
{
    char name[4097];

    (void)state;
    assert_true(tether_gate_glob_match("*", ""));
    assert_true(tether_gate_glob_match("gpt-4o*", "gpt-4o"));
    assert_true(tether_gate_glob_match("gpt-4o*", "gpt-4o-mini"));
    assert_true(tether_gate_glob_match("gpt-?o", "gpt-4o"));
    assert_true(tether_gate_glob_match("*-mini", "gpt-4o-mini"));
    assert_true(tether_gate_glob_match("a*b*c", "aXbYbZc"));
    assert_false(tether_gate_glob_match("gpt-4o*", "gpt-4"));
    assert_false(tether_gate_glob_match("gpt-?o", "gpt-o"));
    assert_false(tether_gate_glob_match("llama", "llama3"));
    assert_false(tether_gate_glob_match("a*b*c", "aXbYbZ"));
    assert_false(tether_gate_glob_match(NULL, "x"));
    /* A name built against backtracking matchers answers at once. */
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_false(tether_gate_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", name));
}

static void models_are_the_intersection(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    static const char *const token_minis[] = {"*-mini"};

    (void)state;
    open_policy(&policy, &opts);
    assert_true(tether_gate_policy_model_allowed(&policy, "gpt-4o-mini", all_models, 1));
    assert_true(tether_gate_policy_model_allowed(&policy, "gpt-4o-mini", token_minis, 1));
    /* allowed by the policy, not by the token */
    assert_false(tether_gate_policy_model_allowed(&policy, "gpt-4o", token_minis, 1));
    /* allowed by the token, not by the policy */
    assert_false(tether_gate_policy_model_allowed(&policy, "o1-mini", token_minis, 1));
    /* a token naming no model allows none */
    assert_false(tether_gate_policy_model_allowed(&policy, "gpt-4o", token_minis, 0));
    tether_gate_policy_free(&policy);
}

static void cost_rounds_up_and_refuses_overflow(void **state)
{
    uint64_t cost = 1;

    (void)state;
    assert_int_equal(tether_gate_price_cost(2500, 10000, 1000, 100, &cost), TETHER_OK);
    assert_int_equal(cost, 3500);
    /* 1 token at 1 micro-unit per 1000 costs 1, never 0 */
    assert_int_equal(tether_gate_price_cost(1, 0, 1, 0, &cost), TETHER_OK);
    assert_int_equal(cost, 1);
    assert_int_equal(tether_gate_price_cost(0, 0, 5, 5, &cost), TETHER_OK);
    assert_int_equal(cost, 0);
    assert_int_equal(tether_gate_price_cost(UINT64_MAX / 2, 0, 3, 0, &cost), TETHER_ERR_TOO_LARGE);
    assert_int_equal(cost, 0);
    assert_int_equal(tether_gate_price_cost(UINT64_MAX / 2, UINT64_MAX / 2, 1, 1, &cost),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(tether_gate_price_cost(1, 1, UINT64_MAX, 0, &cost), TETHER_ERR_TOO_LARGE);
}

static void open_refuses_unusable_options(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts;
    char why[160];
    char long_glob[200];

    (void)state;
    opts = options();
    opts.model_count = 0;
    tether_gate_policy_init(&policy);
    assert_int_equal(tether_gate_policy_open(&policy, &opts, why, sizeof(why)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(why, "no model"));
    opts = options();
    opts.default_max_tokens = 0;
    assert_int_equal(tether_gate_policy_open(&policy, &opts, why, sizeof(why)),
                     TETHER_ERR_INVALID_ARGUMENT);
    opts = options();
    opts.max_devices = 0;
    assert_int_equal(tether_gate_policy_open(&policy, &opts, why, sizeof(why)),
                     TETHER_ERR_INVALID_ARGUMENT);
    opts = options();
    memset(long_glob, 'x', sizeof(long_glob) - 1);
    long_glob[sizeof(long_glob) - 1] = '\0';
    {
        const char *const globs[] = {long_glob};
        opts.models = globs;
        opts.model_count = 1;
        assert_int_equal(tether_gate_policy_open(&policy, &opts, why, sizeof(why)),
                         TETHER_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(why, "model glob 1"));
    }
    tether_gate_policy_free(&policy);
    tether_gate_policy_free(NULL);
}

/* ---- refusals ----------------------------------------------------------------- */

static void refuses_models_and_unpriced(void **state)
{
    static const char *const policy_all[] = {"*"};
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t r;
    tether_gate_policy_refusal_t why;
    tether_gate_demand_t d = demand("dev-1", "llama3", 10, 10);
    uint64_t spent, reserved;

    (void)state;
    opts.models = policy_all;
    opts.model_count = 1;
    open_policy(&policy, &opts);
    /* in neither price row: refused though every model is allowed */
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_MODEL_NOT_PRICED);
    assert_int_equal(why.status, 403);
    assert_string_equal(why.code, "model_not_priced");
    assert_null(r.device);
    tether_gate_policy_free(&policy);

    opts = options();
    open_policy(&policy, &opts);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_MODEL_NOT_ALLOWED);
    assert_int_equal(why.status, 403);
    assert_string_equal(why.code, "model_not_allowed");
    /* nothing counted: the device was never even entered */
    assert_int_equal(tether_gate_policy_spend(&policy, "dev-1", NOON_MS, &spent, &reserved),
                     TETHER_ERR_NOT_FOUND);
    tether_gate_policy_free(&policy);
}

static void requests_per_minute_bucket(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t r;
    tether_gate_policy_refusal_t why;
    tether_gate_demand_t d = demand("dev-1", "gpt-4o-mini", 10, 10);

    (void)state;
    opts.requests_per_minute = 2;
    open_policy(&policy, &opts);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_OK);
        tether_gate_policy_release(&policy, &r);
    }
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_RATE_LIMITED);
    assert_int_equal(why.status, 429);
    assert_string_equal(why.code, "rate_limited");
    /* one request comes back every 30 s */
    assert_int_equal(why.retry_after_seconds, 30);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + 29000, &r, &why),
                     TETHER_ERR_VERIFY);
    assert_int_equal(why.retry_after_seconds, 1);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + 30000, &r, &why), TETHER_OK);
    tether_gate_policy_release(&policy, &r);
    /* another device has its own bucket */
    d.device = "dev-2";
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + 30000, &r, &why), TETHER_OK);
    tether_gate_policy_release(&policy, &r);
    tether_gate_policy_free(&policy);
}

static void tokens_per_minute_refunds_unused(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t a, b;
    tether_gate_policy_refusal_t why;
    tether_gate_demand_t d = demand("dev-1", "gpt-4o-mini", 400, 500);
    uint64_t cost;

    (void)state;
    opts.tokens_per_minute = 1000;
    open_policy(&policy, &opts);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &a, &why), TETHER_OK);
    /* 900 reserved: a second worst case of 900 does not fit */
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &b, &why), TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_TOKENS_LIMITED);
    assert_string_equal(why.code, "token_limit_reached");
    assert_true(why.retry_after_seconds >= 1 && why.retry_after_seconds <= 60);
    /* the answer used 100 of 900: the rest comes back */
    assert_int_equal(tether_gate_policy_settle(&policy, &a, 60, 40, NOON_MS, &cost), TETHER_OK);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &b, &why), TETHER_OK);
    tether_gate_policy_release(&policy, &b);
    /* a worst case over the whole minute can never fit */
    d.completion_bound = 1000;
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &b, &why), TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_OVER_CEILING);
    assert_int_equal(why.status, 400);
    tether_gate_policy_free(&policy);
}

static void spend_reserve_settle_release(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t a, b;
    tether_gate_policy_refusal_t why;
    /* worst case: 1000 x 2500 + 1000 x 10000 = 12500 micro-units */
    tether_gate_demand_t d = demand("dev-1", "gpt-4o", 1000, 1000);
    uint64_t cost;

    (void)state;
    opts.spend_per_day = 30000;
    open_policy(&policy, &opts);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &a, &why), TETHER_OK);
    assert_int_equal(a.cost, 12500);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &b, &why), TETHER_OK);
    assert_standing(&policy, "dev-1", NOON_MS, 0, 25000);
    /* a third worst case would pass 30000 while two are in flight; settled
     * spend leaves room, so the wait is short */
    {
        tether_gate_reservation_t c;
        assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &c, &why),
                         TETHER_ERR_VERIFY);
        assert_int_equal(why.kind, TETHER_GATE_SPEND_LIMITED);
        assert_int_equal(why.status, 429);
        assert_string_equal(why.code, "spend_limit_reached");
        assert_int_equal(why.retry_after_seconds, 1);
        assert_null(c.device);
    }
    /* settled with the real usage: 200 prompt + 300 completion */
    assert_int_equal(tether_gate_policy_settle(&policy, &a, 200, 300, NOON_MS, &cost), TETHER_OK);
    assert_int_equal(cost, 3500);
    assert_null(a.device);
    /* settling twice does nothing */
    assert_int_equal(tether_gate_policy_settle(&policy, &a, 200, 300, NOON_MS, &cost),
                     TETHER_ERR_INVALID_ARGUMENT);
    tether_gate_policy_release(&policy, &b);
    tether_gate_policy_release(&policy, &b);
    assert_standing(&policy, "dev-1", NOON_MS, 3500, 0);
    tether_gate_policy_free(&policy);
}

static void spend_waits_for_the_next_utc_day(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t r;
    tether_gate_policy_refusal_t why;
    tether_gate_demand_t d = demand("dev-1", "gpt-4o", 1000, 1000);
    uint64_t cost;

    (void)state;
    opts.spend_per_day = 20000;
    open_policy(&policy, &opts);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_OK);
    assert_int_equal(tether_gate_policy_settle(&policy, &r, 1000, 1000, NOON_MS, &cost),
                     TETHER_OK);
    assert_int_equal(cost, 12500);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_SPEND_LIMITED);
    /* noon: twelve hours to the next UTC day */
    assert_int_equal(why.retry_after_seconds, 43200);
    /* the next day starts from nothing */
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + DAY_MS / 2, &r, &why),
                     TETHER_OK);
    tether_gate_policy_release(&policy, &r);
    assert_standing(&policy, "dev-1", NOON_MS + DAY_MS / 2, 0, 0);
    /* a worst case over the day's ceiling can never fit */
    d.completion_bound = 2000;
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + DAY_MS / 2, &r, &why),
                     TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_OVER_CEILING);
    tether_gate_policy_free(&policy);
}

static void overrun_is_charged_and_reported(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t r;
    tether_gate_policy_refusal_t why;
    tether_gate_demand_t d = demand("dev-1", "gpt-4o", 100, 100);
    uint64_t cost;

    (void)state;
    opts.spend_per_day = 1000000;
    open_policy(&policy, &opts);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_OK);
    /* upstream answered with more than max_tokens */
    assert_int_equal(tether_gate_policy_settle(&policy, &r, 100, 500, NOON_MS, &cost),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(cost, 5250);
    assert_standing(&policy, "dev-1", NOON_MS, 5250, 0);
    tether_gate_policy_free(&policy);
}

static void device_table_is_bounded(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    tether_gate_reservation_t r;
    tether_gate_policy_refusal_t why;
    tether_gate_demand_t d = demand("dev-a", "gpt-4o-mini", 10, 10);
    uint64_t cost, spent, reserved;

    (void)state;
    opts.max_devices = 2;
    opts.spend_per_day = 1000000;
    open_policy(&policy, &opts);
    /* dev-a spends today, dev-b only reserves and releases */
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_OK);
    assert_int_equal(tether_gate_policy_settle(&policy, &r, 10, 10, NOON_MS, &cost), TETHER_OK);
    d.device = "dev-b";
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS, &r, &why), TETHER_OK);
    tether_gate_policy_release(&policy, &r);
    /* full, and both were active within two minutes: refuse, forget nothing */
    d.device = "dev-c";
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + 1000, &r, &why),
                     TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_DEVICE_TABLE_FULL);
    assert_int_equal(why.status, 503);
    /* later: dev-b (nothing spent) may go, dev-a (spent today) may not */
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + 180000, &r, &why),
                     TETHER_OK);
    assert_int_equal(tether_gate_policy_settle(&policy, &r, 10, 10, NOON_MS + 180000, &cost),
                     TETHER_OK);
    assert_int_equal(tether_gate_policy_spend(&policy, "dev-b", NOON_MS, &spent, &reserved),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(tether_gate_policy_spend(&policy, "dev-a", NOON_MS, &spent, &reserved),
                     TETHER_OK);
    assert_true(spent > 0);
    /* dev-a and dev-c spent today: forgotten only on another day */
    d.device = "dev-d";
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + 400000, &r, &why),
                     TETHER_ERR_VERIFY);
    assert_int_equal(why.kind, TETHER_GATE_DEVICE_TABLE_FULL);
    assert_int_equal(tether_gate_policy_reserve(&policy, &d, NOON_MS + DAY_MS, &r, &why),
                     TETHER_OK);
    tether_gate_policy_release(&policy, &r);
    assert_int_equal(tether_gate_policy_spend(&policy, "dev-a", NOON_MS, &spent, &reserved),
                     TETHER_ERR_NOT_FOUND);
    tether_gate_policy_free(&policy);
}

/* ---- concurrency: the ceiling holds under any interleaving ------------------- */

#define THREADS 8
#define ROUNDS 4000
#define CEILING 2000000ull

typedef struct worker {
    tether_gate_policy_t *policy;
    unsigned seed;
    unsigned violations;
    unsigned admitted;
} worker_t;

static void *reserve_and_settle(void *arg)
{
    worker_t *w = arg;
    tether_gate_reservation_t held[4];
    size_t count = 0;

    memset(held, 0, sizeof(held));
    for (int i = 0; i < ROUNDS; i++) {
        unsigned roll = (unsigned)rand_r(&w->seed);
        /* prompt and completion bounds equal: half the tokens is either bound */
        tether_gate_demand_t d = demand(roll % 2 ? "dev-x" : "dev-y", "gpt-4o", 1 + roll % 500,
                                        1 + roll % 500);
        tether_gate_policy_refusal_t why;
        uint64_t spent, reserved, cost;

        if (count < 4 && tether_gate_policy_reserve(w->policy, &d, NOON_MS, &held[count], &why) ==
                             TETHER_OK) {
            count++;
            w->admitted++;
        }
        if (count > 0 && (roll >> 4) % 3 == 0) {
            tether_gate_reservation_t *r = &held[--count];
            /* a real usage at or under the worst case, or a failure */
            if ((roll >> 12) % 5 == 0) {
                tether_gate_policy_release(w->policy, r);
            } else {
                uint64_t p = (roll >> 14) % (r->tokens / 2 + 1);
                uint64_t c = (roll >> 20) % (r->tokens / 2 + 1);
                if (tether_gate_policy_settle(w->policy, r, p, c, NOON_MS, &cost) != TETHER_OK)
                    w->violations++;
            }
        }
        if (tether_gate_policy_spend(w->policy, d.device, NOON_MS, &spent, &reserved) ==
                TETHER_OK &&
            spent + reserved > CEILING)
            w->violations++;
    }
    while (count > 0)
        tether_gate_policy_release(w->policy, &held[--count]);
    return NULL;
}

static void spend_never_passes_ceiling_concurrently(void **state)
{
    tether_gate_policy_t policy;
    tether_gate_policy_options_t opts = options();
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    unsigned admitted = 0;
    uint64_t spent, reserved;

    (void)state;
    opts.spend_per_day = CEILING;
    open_policy(&policy, &opts);
    for (unsigned i = 0; i < THREADS; i++) {
        workers[i] = (worker_t){&policy, 1234u + i, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, reserve_and_settle, &workers[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].violations, 0);
        admitted += workers[i].admitted;
    }
    /* the ceiling was reached: later reservations were refused */
    assert_true(admitted < THREADS * ROUNDS);
    for (const char *const *dev = (const char *const[]){"dev-x", "dev-y", NULL}; *dev; dev++) {
        assert_int_equal(tether_gate_policy_spend(&policy, *dev, NOON_MS, &spent, &reserved),
                         TETHER_OK);
        assert_true(spent <= CEILING);
        assert_true(spent > CEILING / 2);
        assert_int_equal(reserved, 0);
    }
    tether_gate_policy_free(&policy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(glob_matching),
        cmocka_unit_test(models_are_the_intersection),
        cmocka_unit_test(cost_rounds_up_and_refuses_overflow),
        cmocka_unit_test(open_refuses_unusable_options),
        cmocka_unit_test(refuses_models_and_unpriced),
        cmocka_unit_test(requests_per_minute_bucket),
        cmocka_unit_test(tokens_per_minute_refunds_unused),
        cmocka_unit_test(spend_reserve_settle_release),
        cmocka_unit_test(spend_waits_for_the_next_utc_day),
        cmocka_unit_test(overrun_is_charged_and_reported),
        cmocka_unit_test(device_table_is_bounded),
        cmocka_unit_test(spend_never_passes_ceiling_concurrently),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
