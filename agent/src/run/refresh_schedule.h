/*
 * When the agent asks the fleet for its next token (DESIGN.md, "Attested
 * token exchange": every ~2/3 of the token lifetime). Pure: no clock, no
 * randomness of its own, so every branch is unit-tested with chosen inputs.
 *
 *   after a token:      when the next challenge that came with it opens (the
 *                       fleet scheduled it: 2/3 of the token's life, give or
 *                       take 5 %); without one, about 2/3 of its lifetime
 *                       after the request began, give or take 5 % (jitter,
 *                       so a fleet's devices spread out);
 *   after a failure:    a backoff of 1 s doubling per consecutive failure up
 *                       to 60 s, with full jitter in its upper half;
 *   after a refusal:    never (until an operator acts and sends SIGHUP);
 *   always:             a token is held no longer than its expiry (fail
 *                       closed), whatever the next exchange time.
 */
#ifndef TETHER_AGENT_REFRESH_SCHEDULE_H
#define TETHER_AGENT_REFRESH_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#define TETHER_REFRESH_BACKOFF_FIRST_MS 1000u
#define TETHER_REFRESH_BACKOFF_CAP_MS 60000u
#define TETHER_REFRESH_NEVER INT64_MAX

typedef enum tether_refresh_outcome {
    TETHER_REFRESH_TOKEN,   /* a new token came */
    TETHER_REFRESH_RETRY,   /* the exchange failed in a way that may heal */
    TETHER_REFRESH_REFUSED, /* the fleet (or the TPM) said no for good */
} tether_refresh_outcome_t;

typedef struct tether_refresh_input {
    tether_refresh_outcome_t last_outcome;
    /* Monotonic milliseconds. issued_ms is when the exchange that gave the
     * held token began, expiry_ms when that token stops being valid; both
     * only read while has_token. */
    bool has_token;
    int64_t issued_ms;
    int64_t expiry_ms;
    /* When the next challenge held with the token opens; 0: none held.
     * Followed only between the request's start and the token's expiry. */
    int64_t next_challenge_ms;
    int64_t now_ms;
    /* Consecutive failed exchanges, the last one included (read after a
     * retry only; 0 is taken as 1). */
    unsigned failures;
    uint32_t random; /* a uniform draw, e.g. from tether_random_bytes */
} tether_refresh_input_t;

typedef struct tether_refresh_plan {
    int64_t next_exchange_ms; /* TETHER_REFRESH_NEVER after a refusal */
    /* When to drop the held token: its expiry, now after a refusal,
     * TETHER_REFRESH_NEVER when no token is held. */
    int64_t drop_token_ms;
    unsigned backoff_ms; /* the backoff used after a retry, else 0 */
} tether_refresh_plan_t;

/* The backoff after `failures` consecutive failures: 1 s, 2 s, 4 s, ...,
 * at most TETHER_REFRESH_BACKOFF_CAP_MS. */
unsigned tether_refresh_backoff_ms(unsigned failures);

/* Fills plan from in (plan is zeroed first). */
void tether_refresh_schedule(const tether_refresh_input_t *in, tether_refresh_plan_t *plan);

#endif
