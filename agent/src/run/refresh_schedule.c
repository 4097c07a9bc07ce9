#include "refresh_schedule.h"

#include <string.h>

unsigned tether_refresh_backoff_ms(unsigned failures)
{
    unsigned backoff = TETHER_REFRESH_BACKOFF_FIRST_MS;

    for (unsigned i = 1; i < failures && backoff < TETHER_REFRESH_BACKOFF_CAP_MS; i++)
        backoff *= 2;
    return backoff < TETHER_REFRESH_BACKOFF_CAP_MS ? backoff : TETHER_REFRESH_BACKOFF_CAP_MS;
}

void tether_refresh_schedule(const tether_refresh_input_t *in, tether_refresh_plan_t *plan)
{
    memset(plan, 0, sizeof(*plan));
    plan->drop_token_ms = in->has_token ? in->expiry_ms : TETHER_REFRESH_NEVER;
    switch (in->last_outcome) {
    case TETHER_REFRESH_TOKEN: {
        /* The lifetime as the fleet stated it (at most a day), measured
         * from the start of the request so that its duration counts. */
        int64_t lifetime = in->expiry_ms - in->issued_ms;
        if (lifetime < 0)
            lifetime = 0;
        /* The fleet's schedule, when it sent one that makes sense: its
         * nonce cannot be used earlier, and a refresh then is one request. */
        if (in->next_challenge_ms > in->issued_ms && in->next_challenge_ms < in->expiry_ms) {
            plan->next_exchange_ms = in->next_challenge_ms;
            break;
        }
        plan->next_exchange_ms = in->issued_ms + lifetime * 2 / 3 - lifetime / 20 +
                                 (int64_t)(in->random % (uint64_t)(lifetime / 10 + 1));
        break;
    }
    case TETHER_REFRESH_RETRY:
        plan->backoff_ms = tether_refresh_backoff_ms(in->failures);
        /* Full jitter in the upper half, so a fleet coming back is not hit
         * by every device at once. */
        plan->next_exchange_ms = in->now_ms + plan->backoff_ms / 2 +
                                 in->random % (plan->backoff_ms / 2 + 1);
        break;
    case TETHER_REFRESH_REFUSED:
    default:
        /* Neither a refusal for good nor a TPM lockout heals by asking
         * again; the token goes at once. */
        plan->next_exchange_ms = TETHER_REFRESH_NEVER;
        plan->drop_token_ms = in->now_ms;
        break;
    }
}
