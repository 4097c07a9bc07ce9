/*
 * tether-gate's ceilings, decided after authorization: which models a device
 * may call, how many requests and tokens per minute, how much it may spend
 * per UTC day. Pure logic and thread-safe: one mutex guards the per-device
 * table; nothing here does I/O or reads a clock (callers pass the time).
 *
 * Spend never passes the ceiling, streams included: before a request is
 * forwarded its worst case (prompt bound + max_tokens x choices, priced with
 * the price table) is reserved; when the answer is complete the reservation
 * is settled with the real usage, or released when the request failed
 * before upstream could charge for it. A reservation is admitted only while
 * spent + every outstanding reservation + its own worst case stays at or
 * under the ceiling, so no interleaving of concurrent requests can overshoot.
 *
 * Amounts are integers in micro-units of the price table's currency
 * (1 USD = 1000000), prices per 1000 tokens; every sum and product is
 * checked for overflow.
 */
#ifndef TETHER_GATE_POLICY_H
#define TETHER_GATE_POLICY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_GATE_MAX_MODEL_BYTES 128  /* a model name or glob */
#define TETHER_GATE_MAX_DEVICE_BYTES 128 /* a device id */
#define TETHER_GATE_MAX_GLOBS 64         /* per allow list */
#define TETHER_GATE_MAX_PRICES 256

/* One row of the price table: the first row whose glob matches the model
 * prices it; a model no row matches is refused. */
typedef struct tether_gate_price {
    const char *model_glob;
    uint64_t prompt_per_1k;     /* micro-units per 1000 prompt tokens */
    uint64_t completion_per_1k; /* micro-units per 1000 completion tokens */
} tether_gate_price_t;

/* A policy's ceilings. Copied by tether_gate_policy_open: nothing here needs
 * to outlive the call. A ceiling of 0 is no ceiling. */
typedef struct tether_gate_policy_options {
    const char *const *models; /* globs ("*", "?"); a model must match one */
    size_t model_count;
    const tether_gate_price_t *prices;
    size_t price_count;
    uint64_t requests_per_minute;
    uint64_t tokens_per_minute;
    uint64_t spend_per_day; /* micro-units per UTC day */
    uint64_t default_max_tokens; /* injected when a request names none; > 0 */
    uint32_t max_devices;        /* size of the per-device table; > 0 */
} tether_gate_policy_options_t;

typedef struct tether_gate_device tether_gate_device_t;

typedef struct tether_gate_policy {
    pthread_mutex_t lock;
    bool lock_ready;
    char (*models)[TETHER_GATE_MAX_MODEL_BYTES];
    size_t model_count;
    tether_gate_price_t *prices; /* model_glob points into price_globs */
    char (*price_globs)[TETHER_GATE_MAX_MODEL_BYTES];
    size_t price_count;
    uint64_t requests_per_minute;
    uint64_t tokens_per_minute;
    uint64_t spend_per_day;
    uint64_t default_max_tokens;
    /* The per-device table: max_devices entries allocated at open, a hash
     * index over them and a list from most to least recently used. */
    tether_gate_device_t *devices;
    uint32_t max_devices;
    uint32_t used_devices;
    uint32_t *index; /* index_size slots: entry number + 1, 0 when empty */
    uint32_t index_size;
    tether_gate_device_t *recent; /* most recently used */
    tether_gate_device_t *oldest;
} tether_gate_policy_t;

/* What one request asks for, as the proxy read it from the request body.
 * Every pointer lives for the call only. */
typedef struct tether_gate_demand {
    const char *device;              /* the verified device id */
    const char *model;               /* the request body's "model" */
    const char *const *token_models; /* the token's tether.models claim (globs) */
    size_t token_model_count;
    uint64_t prompt_bound; /* an upper bound of the prompt's tokens */
    uint64_t completion_bound; /* max_tokens x choices; 0 for embeddings */
} tether_gate_demand_t;

/* The code of TETHER_GATE_MODEL_NOT_ALLOWED, which the fleet's usage
 * reports count on their own (refused_models). */
#define TETHER_GATE_CODE_MODEL_NOT_ALLOWED "model_not_allowed"

typedef enum tether_gate_refusal_kind {
    TETHER_GATE_ALLOWED = 0,
    TETHER_GATE_MODEL_NOT_ALLOWED,  /* 403 model_not_allowed */
    TETHER_GATE_MODEL_NOT_PRICED,   /* 403 model_not_priced */
    TETHER_GATE_RATE_LIMITED,       /* 429 rate_limited, Retry-After */
    TETHER_GATE_TOKENS_LIMITED,     /* 429 token_limit_reached, Retry-After */
    TETHER_GATE_SPEND_LIMITED,      /* 429 spend_limit_reached, Retry-After */
    TETHER_GATE_OVER_CEILING,       /* 400 request_over_ceiling: could never fit */
    TETHER_GATE_DEVICE_TABLE_FULL,  /* 503 too_many_devices, Retry-After */
} tether_gate_refusal_kind_t;

/* A decision as data: the caller turns it into the HTTP answer. */
typedef struct tether_gate_policy_refusal {
    tether_gate_refusal_kind_t kind;
    unsigned status;              /* 0 when allowed */
    const char *code;             /* static; NULL when allowed */
    uint64_t retry_after_seconds; /* for 429 and 503: when a request would fit */
    char description[192];        /* a sentence for the client */
} tether_gate_policy_refusal_t;

/* A held reservation; caller-owned, settled or released exactly once
 * (further calls do nothing). The policy must outlive it. */
typedef struct tether_gate_reservation {
    tether_gate_device_t *device; /* NULL when not held */
    uint64_t cost;                /* micro-units reserved */
    uint64_t tokens;              /* tokens reserved against the minute */
    uint64_t prompt_per_1k;
    uint64_t completion_per_1k;
} tether_gate_reservation_t;

void tether_gate_policy_init(tether_gate_policy_t *policy);

/* Copies options. TETHER_ERR_INVALID_ARGUMENT (with a sentence in why) for
 * an empty model list, a glob or table over its bound, a default_max_tokens
 * or max_devices of 0. */
TETHER_MUST_CHECK tether_status_t tether_gate_policy_open(tether_gate_policy_t *policy,
                                                          const tether_gate_policy_options_t *opts,
                                                          char *why, size_t why_size);

/* Accepts NULL; every reservation must have been settled or released. */
void tether_gate_policy_free(tether_gate_policy_t *policy);

/* Whether name matches glob: "*" any run of characters, "?" one character,
 * everything else itself. Linear in the lengths times the stars (no
 * exponential backtracking). */
bool tether_gate_glob_match(const char *glob, const char *name);

/* Whether the model passes both the token's and the policy's lists. */
bool tether_gate_policy_model_allowed(const tether_gate_policy_t *policy, const char *model,
                                      const char *const *token_models, size_t token_model_count);

/*
 * Decides a request at now_ms (Unix time in milliseconds; the UTC day is
 * taken from it). *reservation and *refusal are cleared on entry. TETHER_OK:
 * allowed and reserved (settle or release it). TETHER_ERR_VERIFY: refused,
 * *refusal says why and nothing was counted. TETHER_ERR_INVALID_ARGUMENT:
 * a NULL or oversized argument.
 */
TETHER_MUST_CHECK tether_status_t tether_gate_policy_reserve(tether_gate_policy_t *policy,
                                                             const tether_gate_demand_t *demand,
                                                             int64_t now_ms,
                                                             tether_gate_reservation_t *reservation,
                                                             tether_gate_policy_refusal_t *refusal);

/* Charges the real usage (prompt and completion tokens from the response)
 * to the device's day and minute, and returns the reservation. *cost gets
 * the cost charged. TETHER_ERR_TOO_LARGE: the usage cost more than was
 * reserved (upstream ignored max_tokens, or the prompt bound failed): it is
 * charged all the same, so the ledger stays true, and the caller logs it. */
TETHER_MUST_CHECK tether_status_t tether_gate_policy_settle(tether_gate_policy_t *policy,
                                                            tether_gate_reservation_t *reservation,
                                                            uint64_t prompt_tokens,
                                                            uint64_t completion_tokens,
                                                            int64_t now_ms, uint64_t *cost);

/* Returns the reservation uncharged (the request failed before upstream
 * answered); the request still counts against requests per minute. */
void tether_gate_policy_release(tether_gate_policy_t *policy,
                                tether_gate_reservation_t *reservation);

/* The cost of a usage at these prices, rounded up; TETHER_ERR_TOO_LARGE on
 * overflow. */
TETHER_MUST_CHECK tether_status_t tether_gate_price_cost(uint64_t prompt_per_1k,
                                                         uint64_t completion_per_1k,
                                                         uint64_t prompt_tokens,
                                                         uint64_t completion_tokens,
                                                         uint64_t *cost);

/* A device's standing, for tests and /metrics: spent today (settled) and
 * reserved (outstanding). TETHER_ERR_NOT_FOUND when the device is unknown. */
TETHER_MUST_CHECK tether_status_t tether_gate_policy_spend(tether_gate_policy_t *policy,
                                                           const char *device, int64_t now_ms,
                                                           uint64_t *spent, uint64_t *reserved);

#endif
