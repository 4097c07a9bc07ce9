#include "tether/gate/policy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"

#define MS_PER_MINUTE 60000
#define MS_PER_DAY 86400000
/* Rate ceilings are bounded so that a bucket (ceiling x MS_PER_MINUTE units)
 * stays far from int64 overflow. */
#define MAX_REQUESTS_PER_MINUTE 1000000000ull
#define MAX_TOKENS_PER_MINUTE 1000000000000ull
/* An idle device is forgotten only once its buckets have refilled from the
 * deepest debt a settle can leave (one minute below empty): two minutes. */
#define FORGET_AFTER_MS (2 * MS_PER_MINUTE)
/* How many of the least recently used entries are tried when the table is
 * full; bounds the work done under the lock. */
#define EVICTION_SCAN 32

/* Token buckets: a level in units of 1/MS_PER_MINUTE of a request (or
 * token), refilled by the per-minute ceiling every millisecond, so that a
 * full minute's worth is ceiling x MS_PER_MINUTE and no division is needed.
 * A token bucket rather than a sliding window: its state is two integers
 * per device (a sliding log would keep a timestamp per request), and unlike
 * a fixed window it never lets twice the ceiling through across a minute's
 * edge. The level may go below zero when a settle charges more tokens than
 * were reserved (a debt, floored at one minute's worth). */
typedef struct bucket {
    int64_t level;
} bucket_t;

struct tether_gate_device {
    char id[TETHER_GATE_MAX_DEVICE_BYTES + 1];
    uint32_t hash;
    tether_gate_device_t *chain; /* next in the same index slot */
    tether_gate_device_t *newer; /* usage list */
    tether_gate_device_t *older;
    int64_t refilled_ms; /* when the buckets were last brought up to date */
    int64_t last_ms;     /* the last reserve, settle or release */
    bucket_t requests;
    bucket_t tokens;
    int64_t day;       /* UTC day number of spent */
    uint64_t spent;    /* settled today, micro-units */
    uint64_t reserved; /* outstanding reservations, micro-units (any day) */
    uint32_t in_flight;
};

static uint32_t hash_id(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *id != '\0'; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h;
}

void tether_gate_policy_init(tether_gate_policy_t *policy)
{
    if (policy != NULL)
        memset(policy, 0, sizeof(*policy));
}

static bool copy_bounded(char *out, size_t out_size, const char *in)
{
    size_t len = in != NULL ? strnlen(in, out_size) : out_size;

    if (len == 0 || len >= out_size)
        return false;
    memcpy(out, in, len + 1);
    return true;
}

static tether_status_t check_options(const tether_gate_policy_options_t *opts, char *why,
                                     size_t why_size)
{
    tether_status_t rc = TETHER_OK;

    if (opts->model_count == 0 || opts->models == NULL)
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "the policy allows no model: list at least one glob");
    else if (opts->model_count > TETHER_GATE_MAX_GLOBS)
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "the policy lists %zu model globs; at most %d are allowed",
                            opts->model_count, TETHER_GATE_MAX_GLOBS);
    else if (opts->price_count > TETHER_GATE_MAX_PRICES ||
             (opts->price_count > 0 && opts->prices == NULL))
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "the price table holds %zu rows; at most %d are allowed",
                            opts->price_count, TETHER_GATE_MAX_PRICES);
    else if (opts->requests_per_minute > MAX_REQUESTS_PER_MINUTE ||
             opts->tokens_per_minute > MAX_TOKENS_PER_MINUTE)
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "a per-minute ceiling is over its bound (%llu requests, %llu tokens)",
                            MAX_REQUESTS_PER_MINUTE, MAX_TOKENS_PER_MINUTE);
    else if (opts->default_max_tokens == 0)
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "the default max_tokens must be at least 1");
    else if (opts->max_devices == 0 || opts->max_devices > UINT32_MAX / 4)
        rc = tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size,
                            "the device table must hold between 1 and %u devices",
                            UINT32_MAX / 4);
    return rc;
}

tether_status_t tether_gate_policy_open(tether_gate_policy_t *policy,
                                        const tether_gate_policy_options_t *opts, char *why,
                                        size_t why_size)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (policy == NULL || opts == NULL || policy->lock_ready)
        goto out;
    if ((rc = check_options(opts, why, why_size)) != TETHER_OK)
        goto out;
    rc = TETHER_ERR_NO_MEMORY;
    policy->models = calloc(opts->model_count, sizeof(*policy->models));
    policy->prices = calloc(opts->price_count + 1, sizeof(*policy->prices));
    policy->price_globs = calloc(opts->price_count + 1, sizeof(*policy->price_globs));
    policy->devices = calloc(opts->max_devices, sizeof(*policy->devices));
    for (policy->index_size = 16; policy->index_size < opts->max_devices * 2u;)
        policy->index_size *= 2u;
    policy->index = calloc(policy->index_size, sizeof(*policy->index));
    if (policy->models == NULL || policy->prices == NULL || policy->price_globs == NULL ||
        policy->devices == NULL || policy->index == NULL)
        goto out;
    rc = TETHER_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < opts->model_count; i++) {
        if (!copy_bounded(policy->models[i], sizeof(policy->models[i]), opts->models[i])) {
            rc = tether_explain(rc, why, why_size, "model glob %zu is empty or over %d bytes",
                                i + 1, TETHER_GATE_MAX_MODEL_BYTES - 1);
            goto out;
        }
    }
    for (size_t i = 0; i < opts->price_count; i++) {
        if (!copy_bounded(policy->price_globs[i], sizeof(policy->price_globs[i]),
                          opts->prices[i].model_glob)) {
            rc = tether_explain(rc, why, why_size, "price row %zu: the model is empty or over "
                                "%d bytes", i + 1, TETHER_GATE_MAX_MODEL_BYTES - 1);
            goto out;
        }
        policy->prices[i] = opts->prices[i];
        policy->prices[i].model_glob = policy->price_globs[i];
    }
    policy->model_count = opts->model_count;
    policy->price_count = opts->price_count;
    policy->requests_per_minute = opts->requests_per_minute;
    policy->tokens_per_minute = opts->tokens_per_minute;
    policy->spend_per_day = opts->spend_per_day;
    policy->default_max_tokens = opts->default_max_tokens;
    policy->max_devices = opts->max_devices;
    if (pthread_mutex_init(&policy->lock, NULL) != 0) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    policy->lock_ready = true;
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK && policy != NULL && !policy->lock_ready)
        tether_gate_policy_free(policy);
    return rc;
}

void tether_gate_policy_free(tether_gate_policy_t *policy)
{
    if (policy == NULL)
        return;
    if (policy->lock_ready)
        pthread_mutex_destroy(&policy->lock);
    free(policy->models);
    free(policy->prices);
    free(policy->price_globs);
    if (policy->devices != NULL)
        tether_wipe(policy->devices, (size_t)policy->max_devices * sizeof(*policy->devices));
    free(policy->devices);
    free(policy->index);
    tether_wipe(policy, sizeof(*policy));
}

static bool matches_any(const char *model, const char *const *globs, size_t count)
{
    bool found = false;

    for (size_t i = 0; i < count && !found; i++)
        found = tether_gate_glob_match(globs[i], model);
    return found;
}

bool tether_gate_policy_model_allowed(const tether_gate_policy_t *policy, const char *model,
                                      const char *const *token_models, size_t token_model_count)
{
    bool in_policy = false;

    if (policy == NULL || model == NULL || token_models == NULL)
        return false;
    for (size_t i = 0; i < policy->model_count && !in_policy; i++)
        in_policy = tether_gate_glob_match(policy->models[i], model);
    return in_policy && matches_any(model, token_models, token_model_count);
}

tether_status_t tether_gate_price_cost(uint64_t prompt_per_1k, uint64_t completion_per_1k,
                                       uint64_t prompt_tokens, uint64_t completion_tokens,
                                       uint64_t *cost)
{
    uint64_t prompt, completion, sum;
    tether_status_t rc = TETHER_ERR_TOO_LARGE;

    if (cost == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *cost = 0;
    /* Rounded up once, on the sum: a charge is never below the real price. */
    if (__builtin_mul_overflow(prompt_per_1k, prompt_tokens, &prompt) ||
        __builtin_mul_overflow(completion_per_1k, completion_tokens, &completion) ||
        __builtin_add_overflow(prompt, completion, &sum) || sum > UINT64_MAX - 999u)
        goto out;
    *cost = (sum + 999u) / 1000u;
    rc = TETHER_OK;
out:
    return rc;
}

static const tether_gate_price_t *find_price(const tether_gate_policy_t *policy,
                                             const char *model)
{
    const tether_gate_price_t *price = NULL;

    for (size_t i = 0; i < policy->price_count && price == NULL; i++) {
        if (tether_gate_glob_match(policy->prices[i].model_glob, model))
            price = &policy->prices[i];
    }
    return price;
}

/* --- the per-device table (callers hold the lock) --- */

static uint32_t device_number(const tether_gate_policy_t *policy, const tether_gate_device_t *d)
{
    return (uint32_t)(d - policy->devices);
}

static void unlink_recent(tether_gate_policy_t *policy, tether_gate_device_t *d)
{
    if (d->newer != NULL)
        d->newer->older = d->older;
    else
        policy->recent = d->older;
    if (d->older != NULL)
        d->older->newer = d->newer;
    else
        policy->oldest = d->newer;
    d->newer = NULL;
    d->older = NULL;
}

static void push_recent(tether_gate_policy_t *policy, tether_gate_device_t *d)
{
    d->older = policy->recent;
    d->newer = NULL;
    if (policy->recent != NULL)
        policy->recent->newer = d;
    policy->recent = d;
    if (policy->oldest == NULL)
        policy->oldest = d;
}

static tether_gate_device_t *find_device(tether_gate_policy_t *policy, const char *id,
                                         uint32_t hash)
{
    uint32_t slot = policy->index[hash & (policy->index_size - 1u)];
    tether_gate_device_t *d = slot != 0 ? &policy->devices[slot - 1u] : NULL;

    while (d != NULL && (d->hash != hash || strcmp(d->id, id) != 0))
        d = d->chain;
    return d;
}

static void unlink_index(tether_gate_policy_t *policy, tether_gate_device_t *d)
{
    uint32_t *slot = &policy->index[d->hash & (policy->index_size - 1u)];
    tether_gate_device_t *prev = NULL;
    tether_gate_device_t *p = *slot != 0 ? &policy->devices[*slot - 1u] : NULL;

    while (p != NULL && p != d) {
        prev = p;
        p = p->chain;
    }
    if (p == NULL)
        return;
    if (prev != NULL)
        prev->chain = d->chain;
    else
        *slot = d->chain != NULL ? device_number(policy, d->chain) + 1u : 0u;
    d->chain = NULL;
}

/* An entry may be forgotten when forgetting it changes no decision: nothing
 * in flight, its buckets full again, and nothing spent today. Spend is never
 * forgotten early: a full table of active devices refuses new ones (503)
 * rather than let a device spend its day twice. */
static bool forgettable(const tether_gate_device_t *d, int64_t now_ms, int64_t today)
{
    return d->in_flight == 0 && now_ms - d->last_ms >= FORGET_AFTER_MS &&
           (d->day != today || d->spent == 0);
}

static tether_gate_device_t *take_device(tether_gate_policy_t *policy, const char *id,
                                         uint32_t hash, int64_t now_ms, int64_t today)
{
    tether_gate_device_t *d = NULL;

    if (policy->used_devices < policy->max_devices) {
        d = &policy->devices[policy->used_devices++];
    } else {
        tether_gate_device_t *candidate = policy->oldest;

        for (unsigned tried = 0; candidate != NULL && tried < EVICTION_SCAN && d == NULL;
             tried++, candidate = candidate->newer) {
            if (forgettable(candidate, now_ms, today))
                d = candidate;
        }
        if (d == NULL)
            return NULL;
        unlink_index(policy, d);
        unlink_recent(policy, d);
    }
    memset(d, 0, sizeof(*d));
    memcpy(d->id, id, strlen(id) + 1);
    d->hash = hash;
    d->refilled_ms = now_ms;
    d->last_ms = now_ms;
    d->requests.level = (int64_t)(policy->requests_per_minute * MS_PER_MINUTE);
    d->tokens.level = (int64_t)(policy->tokens_per_minute * MS_PER_MINUTE);
    d->day = today;
    {
        uint32_t *slot = &policy->index[hash & (policy->index_size - 1u)];

        d->chain = *slot != 0 ? &policy->devices[*slot - 1u] : NULL;
        *slot = device_number(policy, d) + 1u;
    }
    push_recent(policy, d);
    return d;
}

static void refill(bucket_t *bucket, uint64_t per_minute, int64_t elapsed_ms)
{
    int64_t capacity = (int64_t)(per_minute * MS_PER_MINUTE);

    /* A minute refills an empty bucket; two cover the deepest debt. */
    if (elapsed_ms > FORGET_AFTER_MS)
        elapsed_ms = FORGET_AFTER_MS;
    bucket->level += elapsed_ms * (int64_t)per_minute;
    if (bucket->level > capacity)
        bucket->level = capacity;
}

/* Brings the buckets and the day up to now; a clock that went back refills
 * nothing. */
static void bring_up_to_date(const tether_gate_policy_t *policy, tether_gate_device_t *d,
                             int64_t now_ms, int64_t today)
{
    if (now_ms > d->refilled_ms) {
        refill(&d->requests, policy->requests_per_minute, now_ms - d->refilled_ms);
        refill(&d->tokens, policy->tokens_per_minute, now_ms - d->refilled_ms);
        d->refilled_ms = now_ms;
    }
    if (today > d->day) {
        /* Reservations made yesterday stay outstanding against today too:
         * conservative, and they settle into the day they end in. */
        d->day = today;
        d->spent = 0;
    }
    d->last_ms = now_ms;
}

/* The time until a bucket holds need units, in whole seconds rounded up
 * (at least one, so that a client never retries at once). */
static uint64_t seconds_until(const bucket_t *bucket, int64_t need, uint64_t per_minute)
{
    uint64_t missing = (uint64_t)(need - bucket->level);
    uint64_t ms = (missing + per_minute - 1u) / per_minute;

    return ms < 1000u ? 1u : (ms + 999u) / 1000u;
}

static void refuse(tether_gate_policy_refusal_t *refusal, tether_gate_refusal_kind_t kind,
                   unsigned status, const char *code, uint64_t retry_after, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void refuse(tether_gate_policy_refusal_t *refusal, tether_gate_refusal_kind_t kind,
                   unsigned status, const char *code, uint64_t retry_after, const char *fmt, ...)
{
    va_list ap;

    refusal->kind = kind;
    refusal->status = status;
    refusal->code = code;
    refusal->retry_after_seconds = retry_after;
    va_start(ap, fmt);
    vsnprintf(refusal->description, sizeof(refusal->description), fmt, ap);
    va_end(ap);
}

/* The checks that need no device state: the model, its price, and whether
 * the worst case could ever fit a ceiling. */
static bool admissible(const tether_gate_policy_t *policy, const tether_gate_demand_t *demand,
                       tether_gate_reservation_t *reservation, tether_gate_policy_refusal_t *refusal)
{
    const tether_gate_price_t *price;

    if (!tether_gate_policy_model_allowed(policy, demand->model, demand->token_models,
                                          demand->token_model_count)) {
        refuse(refusal, TETHER_GATE_MODEL_NOT_ALLOWED, 403, TETHER_GATE_CODE_MODEL_NOT_ALLOWED, 0,
               "this device may not use the model named in the request");
        return false;
    }
    if ((price = find_price(policy, demand->model)) == NULL) {
        refuse(refusal, TETHER_GATE_MODEL_NOT_PRICED, 403, "model_not_priced",
               0, "the gateway has no price for this model, so it cannot bound its cost");
        return false;
    }
    reservation->prompt_per_1k = price->prompt_per_1k;
    reservation->completion_per_1k = price->completion_per_1k;
    if (__builtin_add_overflow(demand->prompt_bound, demand->completion_bound,
                               &reservation->tokens) ||
        tether_gate_price_cost(price->prompt_per_1k, price->completion_per_1k,
                               demand->prompt_bound, demand->completion_bound,
                               &reservation->cost) != TETHER_OK ||
        (policy->tokens_per_minute > 0 && reservation->tokens > policy->tokens_per_minute) ||
        (policy->spend_per_day > 0 && reservation->cost > policy->spend_per_day)) {
        refuse(refusal, TETHER_GATE_OVER_CEILING, 400, "request_over_ceiling", 0,
               "the request's worst case (%" PRIu64 " tokens) is over a ceiling of this "
               "policy even when unused: send a smaller prompt or max_tokens",
               reservation->tokens);
        return false;
    }
    return true;
}

/* The checks against the device's minute and day; on success takes the
 * request and its worst case. */
static bool fits_device(const tether_gate_policy_t *policy, tether_gate_device_t *d,
                        int64_t now_ms, const tether_gate_reservation_t *reservation,
                        tether_gate_policy_refusal_t *refusal)
{
    int64_t one_request = MS_PER_MINUTE;
    /* Bounded by tokens_per_minute (admissible) whenever it is used. */
    int64_t tokens =
        policy->tokens_per_minute > 0 ? (int64_t)reservation->tokens * MS_PER_MINUTE : 0;
    uint64_t committed; /* past the ceiling only after an overrun was charged */

    if (__builtin_add_overflow(d->spent, d->reserved, &committed))
        committed = UINT64_MAX;

    if (policy->requests_per_minute > 0 && d->requests.level < one_request) {
        refuse(refusal, TETHER_GATE_RATE_LIMITED, 429, "rate_limited",
               seconds_until(&d->requests, one_request, policy->requests_per_minute),
               "this device has used its %" PRIu64 " requests per minute",
               policy->requests_per_minute);
        return false;
    }
    if (policy->tokens_per_minute > 0 && d->tokens.level < tokens) {
        refuse(refusal, TETHER_GATE_TOKENS_LIMITED, 429, "token_limit_reached",
               seconds_until(&d->tokens, tokens, policy->tokens_per_minute),
               "this device has used its %" PRIu64 " tokens per minute",
               policy->tokens_per_minute);
        return false;
    }
    if (policy->spend_per_day > 0 && (committed > policy->spend_per_day ||
                                      reservation->cost > policy->spend_per_day - committed)) {
        /* When what is settled leaves room, requests in flight will give
         * some back within seconds; else the next UTC day will. */
        uint64_t to_midnight = (uint64_t)(MS_PER_DAY - now_ms % MS_PER_DAY + 999) / 1000u;
        bool soon = d->spent <= policy->spend_per_day &&
                    reservation->cost <= policy->spend_per_day - d->spent;

        refuse(refusal, TETHER_GATE_SPEND_LIMITED, 429, "spend_limit_reached",
               soon ? 1u : to_midnight,
               "this device has reached its spend ceiling for the day (UTC)");
        return false;
    }
    if (policy->requests_per_minute > 0)
        d->requests.level -= one_request;
    if (policy->tokens_per_minute > 0)
        d->tokens.level -= tokens;
    d->reserved += reservation->cost;
    d->in_flight++;
    return true;
}

tether_status_t tether_gate_policy_reserve(tether_gate_policy_t *policy,
                                           const tether_gate_demand_t *demand, int64_t now_ms,
                                           tether_gate_reservation_t *reservation,
                                           tether_gate_policy_refusal_t *refusal)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    tether_gate_device_t *d;
    int64_t today;
    uint32_t hash;
    bool locked = false;

    if (reservation != NULL)
        memset(reservation, 0, sizeof(*reservation));
    if (refusal != NULL)
        memset(refusal, 0, sizeof(*refusal));
    if (policy == NULL || !policy->lock_ready || demand == NULL || reservation == NULL ||
        refusal == NULL || demand->device == NULL || demand->model == NULL ||
        demand->token_models == NULL || now_ms < 0 ||
        strnlen(demand->device, TETHER_GATE_MAX_DEVICE_BYTES + 1) > TETHER_GATE_MAX_DEVICE_BYTES ||
        demand->device[0] == '\0')
        goto out;
    rc = TETHER_ERR_VERIFY;
    if (!admissible(policy, demand, reservation, refusal))
        goto out;
    today = now_ms / MS_PER_DAY;
    hash = hash_id(demand->device);
    pthread_mutex_lock(&policy->lock);
    locked = true;
    if ((d = find_device(policy, demand->device, hash)) != NULL) {
        unlink_recent(policy, d);
        push_recent(policy, d);
    } else if ((d = take_device(policy, demand->device, hash, now_ms, today)) == NULL) {
        refuse(refusal, TETHER_GATE_DEVICE_TABLE_FULL, 503, "too_many_devices", 1,
               "the gateway is tracking as many active devices as it may; retry shortly");
        goto out;
    }
    bring_up_to_date(policy, d, now_ms, today);
    if (!fits_device(policy, d, now_ms, reservation, refusal))
        goto out;
    reservation->device = d;
    rc = TETHER_OK;
out:
    if (locked)
        pthread_mutex_unlock(&policy->lock);
    if (rc != TETHER_OK && reservation != NULL)
        memset(reservation, 0, sizeof(*reservation));
    return rc;
}

/* Returns a reservation's worst case; the caller holds the lock. */
static void give_back(tether_gate_device_t *d, const tether_gate_reservation_t *reservation)
{
    d->reserved -= reservation->cost;
    d->in_flight--;
}

static void charge_tokens(const tether_gate_policy_t *policy, tether_gate_device_t *d,
                          uint64_t reserved, uint64_t used)
{
    int64_t capacity = (int64_t)(policy->tokens_per_minute * MS_PER_MINUTE);
    uint64_t difference = used > reserved ? used - reserved : reserved - used;
    int64_t units;

    if (policy->tokens_per_minute == 0)
        return;
    /* A difference over a minute's worth counts as a minute's worth. */
    if (difference > policy->tokens_per_minute)
        difference = policy->tokens_per_minute;
    units = (int64_t)difference * MS_PER_MINUTE;
    if (used > reserved)
        d->tokens.level = d->tokens.level - units < -capacity ? -capacity : d->tokens.level - units;
    else
        d->tokens.level = d->tokens.level + units > capacity ? capacity : d->tokens.level + units;
}

tether_status_t tether_gate_policy_settle(tether_gate_policy_t *policy,
                                          tether_gate_reservation_t *reservation,
                                          uint64_t prompt_tokens, uint64_t completion_tokens,
                                          int64_t now_ms, uint64_t *cost)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    tether_gate_device_t *d;
    uint64_t charged = 0, used = UINT64_MAX;

    if (cost != NULL)
        *cost = 0;
    if (policy == NULL || !policy->lock_ready || reservation == NULL || cost == NULL ||
        reservation->device == NULL || now_ms < 0)
        goto out;
    /* A usage whose price overflows is charged as the whole day's ceiling:
     * it can only come from a broken upstream. */
    if (tether_gate_price_cost(reservation->prompt_per_1k, reservation->completion_per_1k,
                               prompt_tokens, completion_tokens, &charged) != TETHER_OK)
        charged = policy->spend_per_day > 0 ? policy->spend_per_day : UINT64_MAX;
    if (__builtin_add_overflow(prompt_tokens, completion_tokens, &used))
        used = UINT64_MAX;
    d = reservation->device;
    pthread_mutex_lock(&policy->lock);
    bring_up_to_date(policy, d, now_ms, now_ms / MS_PER_DAY);
    give_back(d, reservation);
    charge_tokens(policy, d, reservation->tokens, used);
    d->spent = __builtin_add_overflow(d->spent, charged, &d->spent) ? UINT64_MAX : d->spent;
    pthread_mutex_unlock(&policy->lock);
    *cost = charged;
    rc = charged > reservation->cost ? TETHER_ERR_TOO_LARGE : TETHER_OK;
    memset(reservation, 0, sizeof(*reservation));
out:
    return rc;
}

void tether_gate_policy_release(tether_gate_policy_t *policy,
                                tether_gate_reservation_t *reservation)
{
    if (policy == NULL || !policy->lock_ready || reservation == NULL ||
        reservation->device == NULL)
        return;
    pthread_mutex_lock(&policy->lock);
    give_back(reservation->device, reservation);
    charge_tokens(policy, reservation->device, reservation->tokens, 0);
    pthread_mutex_unlock(&policy->lock);
    memset(reservation, 0, sizeof(*reservation));
}

tether_status_t tether_gate_policy_spend(tether_gate_policy_t *policy, const char *device,
                                         int64_t now_ms, uint64_t *spent, uint64_t *reserved)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    tether_gate_device_t *d;

    if (spent != NULL)
        *spent = 0;
    if (reserved != NULL)
        *reserved = 0;
    if (policy == NULL || !policy->lock_ready || device == NULL || spent == NULL ||
        reserved == NULL || now_ms < 0)
        return rc;
    pthread_mutex_lock(&policy->lock);
    rc = TETHER_ERR_NOT_FOUND;
    if ((d = find_device(policy, device, hash_id(device))) != NULL) {
        *spent = d->day == now_ms / MS_PER_DAY ? d->spent : 0;
        *reserved = d->reserved;
        rc = TETHER_OK;
    }
    pthread_mutex_unlock(&policy->lock);
    return rc;
}
